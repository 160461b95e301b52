//! Power-cut campaigns: the verbs run on the power-cut file system (`e2e::powercut`), which is cut
//! at many points during each run and once after it returned. After a cut during a run, each
//! target is absent, old, or the complete new content; after a cut that follows a successful
//! return, everything the verb reported done is there (for `durability full`; `old-or-new`
//! promises old or new only; `none` promises nothing after a power cut and is only counted).
//!
//! Each campaign prints its figures (requests of an uncut run, cuts, violations); run with
//! `--nocapture` to see them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test
#![allow(clippy::print_stderr)] // the campaigns' figures

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use e2e::powercut::{Campaign, CampaignReport, PowerCut, quiet};

/// Cuts per campaign during the operation (plus one after it returned): enough to land in every
/// phase (temps written, synced, renamed, directory synced) without a long CI run.
const CUTS: u64 = 40;

/// Distinct, non-empty contents of `len` bytes.
fn content(seed: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) as u8).collect()
}

/// Outcome of a campaign for the report line and the assertions.
#[derive(Debug, Default)]
struct Tally {
    /// After a cut during the run: a target neither absent/old nor complete new.
    torn: u64,
    /// After a cut following a successful return: something reported done is missing.
    lost: u64,
}

fn say(name: &str, report: &CampaignReport, tally: &Tally) {
    eprintln!(
        "power-cut campaign {name}: {} requests per run, {} cuts during, {} after return; \
         {} torn, {} lost after return",
        report.requests, report.cuts_during, report.cuts_after, tally.torn, tally.lost
    );
}

fn mount() -> Option<PowerCut> {
    PowerCut::mount()
}

// ---- write -------------------------------------------------------------------------------------

fn write_campaign(level: &str) -> Option<(CampaignReport, Tally)> {
    let fs = mount()?;
    let old = content(1, 3000);
    let new = content(2, 700_000);
    fs::write(fs.path().join("target"), &old).unwrap();
    fs.sync_all();
    let input = tempfile::NamedTempFile::new().unwrap();
    fs::write(input.path(), &new).unwrap();
    let target = fs.path().join("target");
    let mut tally = Tally::default();
    let campaign = Campaign { fs: &fs, start: fs.snapshot() };
    let report = campaign.run(
        CUTS,
        || {},
        || {
            let mut cmd = quiet(e2e::xtask());
            cmd.args(["write", "--durability", level]).arg(&target);
            cmd.stdin(Stdio::from(fs::File::open(input.path()).unwrap()));
            cmd.spawn().unwrap()
        },
        |returned, code| {
            let now = fs::read(&target).unwrap_or_default();
            let whole = now == old || now == new;
            tally.torn += u64::from(!whole);
            if returned && code == Some(0) && level == "full" {
                tally.lost += u64::from(now != new);
            }
        },
    );
    say(&format!("write --durability {level}"), &report, &tally);
    Some((report, tally))
}

#[test]
fn write_full_and_old_or_new_survive_every_cut() {
    for level in ["full", "old-or-new"] {
        let Some((report, tally)) = write_campaign(level) else { return };
        assert!(report.cuts_during >= 10, "{level}: too few cuts: {report:?}");
        assert_eq!((tally.torn, tally.lost), (0, 0), "write --durability {level}: {tally:?}");
    }
    // `none` promises nothing after a power cut: counted, not asserted.
    let _ = write_campaign("none");
}

// ---- once --------------------------------------------------------------------------------------

#[test]
fn once_is_absent_or_complete_at_every_cut() {
    let Some(fs) = mount() else { return };
    let new = content(3, 500_000);
    let src = tempfile::NamedTempFile::new().unwrap();
    fs::write(src.path(), &new).unwrap();
    let target = fs.path().join("artifact");
    let mut tally = Tally::default();
    let campaign = Campaign { fs: &fs, start: fs.snapshot() };
    let report = campaign.run(
        CUTS,
        || {},
        || {
            let mut cmd = quiet(e2e::xtask());
            cmd.arg("once").arg(&target).args(["--", "cp"]).arg(src.path()).arg("{}");
            cmd.spawn().unwrap()
        },
        |returned, code| {
            let now = fs::read(&target).ok();
            tally.torn += u64::from(!(now.is_none() || now.as_deref() == Some(&new[..])));
            if returned && code == Some(0) {
                tally.lost += u64::from(now.as_deref() != Some(&new[..]));
            }
        },
    );
    say("once", &report, &tally);
    assert!(report.cuts_during >= 10, "too few cuts: {report:?}");
    assert_eq!((tally.torn, tally.lost), (0, 0), "{tally:?}");
}

// ---- copy --------------------------------------------------------------------------------------

/// Relative path to content.
type Contents = BTreeMap<PathBuf, Vec<u8>>;

/// A source tree with a folder large enough to be synced in batches (24 files), a small one
/// (2 files: the per-file path), a nested folder and a symlink; and the older destination.
fn copy_trees(fs: &PowerCut) -> (tempfile::TempDir, Contents, Contents) {
    let src = tempfile::tempdir().unwrap();
    let mut new = BTreeMap::new();
    let mut old = BTreeMap::new();
    for i in 0..24u32 {
        new.insert(
            PathBuf::from(format!("roms/game{i:02}.bin")),
            content(10 + i, 3000 + 977 * i as usize),
        );
    }
    for i in 0..2u32 {
        new.insert(PathBuf::from(format!("small/s{i}.txt")), content(50 + i, 100 + i as usize));
    }
    new.insert(PathBuf::from("roms/nested/deep.bin"), content(60, 40_000));
    for (rel, bytes) in &new {
        let path = src.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
    // The destination already holds older versions of some files (different sizes: recopied).
    let dst = fs.path().join("dst");
    for rel in ["roms/game00.bin", "roms/game05.bin", "small/s0.txt"] {
        let bytes = content(90, 10);
        let path = dst.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, &bytes).unwrap();
        old.insert(PathBuf::from(rel), bytes);
    }
    fs.sync_all();
    (src, new, old)
}

fn copy_campaign(fs: &PowerCut, level: &str) -> (CampaignReport, Tally) {
    let (src, new, old) = copy_trees(fs);
    let dst = fs.path().join("dst");
    let mut tally = Tally::default();
    let campaign = Campaign { fs, start: fs.snapshot() };
    let report = campaign.run(
        CUTS,
        || {},
        || {
            let mut cmd = quiet(e2e::xtask());
            cmd.args(["copy", "--jobs", "2", "--durability", level]).arg(src.path()).arg(&dst);
            cmd.spawn().unwrap()
        },
        |returned, code| {
            for (rel, want) in &new {
                let now = fs::read(dst.join(rel)).ok();
                let fine = match &now {
                    None => true,
                    Some(bytes) => bytes == want || old.get(rel) == Some(bytes),
                };
                tally.torn += u64::from(!fine);
                if returned && code == Some(0) && level == "full" {
                    tally.lost += u64::from(now.as_ref() != Some(want));
                }
            }
        },
    );
    say(&format!("copy --durability {level}"), &report, &tally);
    (report, tally)
}

#[test]
fn copy_leaves_each_file_absent_old_or_complete_at_every_cut() {
    for level in ["full", "old-or-new"] {
        let Some(fs) = mount() else { return };
        let (report, tally) = copy_campaign(&fs, level);
        assert!(report.cuts_during >= 10, "{level}: too few cuts: {report:?}");
        assert_eq!((tally.torn, tally.lost), (0, 0), "copy --durability {level}: {tally:?}");
    }
    let Some(fs) = mount() else { return };
    let _ = copy_campaign(&fs, "none");
}

// ---- seal --------------------------------------------------------------------------------------

/// A checkpoint as a training loop writes it: files never synced, in the snapshot directory.
fn write_checkpoint(dir: &Path) {
    fs::create_dir_all(dir.join("shards")).unwrap();
    fs::write(dir.join("config.json"), br#"{"lr": 0.1}"#).unwrap();
    for i in 0..6u32 {
        fs::write(dir.join(format!("shards/w{i}.bin")), content(100 + i, 20_000)).unwrap();
    }
}

#[test]
fn a_sealed_snapshot_verifies_after_any_cut() {
    let Some(fs) = mount() else { return };
    let snap = fs.path().join("snap-0001");
    let mut tally = Tally::default();
    let campaign = Campaign { fs: &fs, start: fs.snapshot() };
    let report = campaign.run(
        CUTS,
        || write_checkpoint(&snap),
        || {
            let mut cmd = quiet(e2e::xtask());
            cmd.arg("seal").arg(&snap);
            cmd.spawn().unwrap()
        },
        |returned, code| {
            let sealed = snap.join("manifest.xxh128").exists();
            let verifies = sealed
                && snapshot_verify::verify(&snap, &Default::default(), &())
                    .is_ok_and(|r| r.is_ok());
            // A manifest that survived vouches for its files: they must verify.
            tally.torn += u64::from(sealed && !verifies);
            if returned && code == Some(0) {
                tally.lost += u64::from(!verifies);
            }
        },
    );
    say("seal", &report, &tally);
    assert!(report.cuts_during >= 10, "too few cuts: {report:?}");
    assert_eq!((tally.torn, tally.lost), (0, 0), "{tally:?}");
}

// ---- StatusWriter ------------------------------------------------------------------------------

const STATUS_DIR: &str = "POWERCUT_STATUS_DIR";

/// Not a test on its own: the child process of the StatusWriter campaign (does nothing unless
/// the campaign set [`STATUS_DIR`]). Writes status.json three times, the last with "done".
#[test]
fn status_writer_child() {
    let Some(dir) = std::env::var_os(STATUS_DIR) else { return };
    let dir = PathBuf::from(dir);
    let status = toolkit::StatusWriter::acquire(dir.join("daemon.pid"), &dir).unwrap();
    for step in ["1", "2", "done"] {
        status.write("status.json", status_bytes(step).as_slice()).unwrap();
    }
}

fn status_bytes(step: &str) -> Vec<u8> {
    let mut bytes = format!(r#"{{"step": "{step}", "pad": ""#).into_bytes();
    bytes.extend(std::iter::repeat_n(b'x', 20_000));
    bytes.extend_from_slice(b"\"}\n");
    bytes
}

fn spawn_status_child(dir: &Path) -> Child {
    let mut cmd = quiet(std::process::Command::new(std::env::current_exe().unwrap()));
    cmd.args(["--exact", "status_writer_child", "--test-threads", "1"]).env(STATUS_DIR, dir);
    cmd.spawn().unwrap()
}

#[test]
fn status_writer_keeps_a_whole_status_at_every_cut() {
    let Some(fs) = mount() else { return };
    let dir = fs.path().join("run");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("status.json"), status_bytes("0")).unwrap();
    fs.sync_all();
    let steps: Vec<Vec<u8>> = ["0", "1", "2", "done"].iter().map(|s| status_bytes(s)).collect();
    let mut tally = Tally::default();
    let campaign = Campaign { fs: &fs, start: fs.snapshot() };
    let report = campaign.run(
        CUTS,
        || {},
        || spawn_status_child(&dir),
        |returned, code| {
            let now = fs::read(dir.join("status.json")).unwrap_or_default();
            tally.torn += u64::from(!steps.contains(&now));
            if returned && code == Some(0) {
                tally.lost += u64::from(now != status_bytes("done"));
            }
        },
    );
    say("StatusWriter", &report, &tally);
    assert!(report.cuts_during >= 10, "too few cuts: {report:?}");
    assert_eq!((tally.torn, tally.lost), (0, 0), "{tally:?}");
}

// ---- a file system that cannot sync ----------------------------------------------------------

/// `fsync` failing with EIO, EINVAL or ENOTSUP: each verb fails, names the path and the file
/// system, and renames nothing onto unsynced data.
#[test]
fn a_file_system_that_cannot_sync_is_an_error_and_nothing_is_renamed() {
    let Some(fs) = mount() else { return };
    let old = content(1, 100);
    fs::write(fs.path().join("target"), &old).unwrap();
    write_checkpoint(&fs.path().join("snap"));
    fs.sync_all();
    let src = tempfile::tempdir().unwrap();
    for i in 0..6 {
        fs::write(src.path().join(format!("f{i}")), content(i, 5000)).unwrap();
    }
    for errno in [5, 22, 95] {
        fs.fail_syncs(Some(errno));

        let mut cmd = e2e::xtask();
        cmd.arg("write").arg(fs.path().join("target")).stdin(Stdio::piped());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(&content(2, 5000)).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        e2e::assert_exit(&out, 2);
        assert!(stderr.contains("target") && stderr.contains("fuse"), "errno {errno}: {stderr}");
        assert_eq!(fs::read(fs.path().join("target")).unwrap(), old, "errno {errno}");
        eprintln!("errno {errno}: {}", stderr.lines().next().unwrap_or_default());

        let out =
            e2e::xtask().arg("copy").arg(src.path()).arg(fs.path().join("dst")).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "errno {errno}: {stderr}");
        assert!(stderr.contains("fuse"), "errno {errno}: {stderr}");
        eprintln!(
            "errno {errno}: {}",
            stderr.lines().find(|l| l.contains("fuse")).unwrap_or_default()
        );
        for i in 0..6 {
            let copied = fs.path().join(format!("dst/f{i}"));
            assert!(!copied.exists(), "errno {errno}: {copied:?} renamed onto unsynced data");
        }

        let out = e2e::xtask().arg("seal").arg(fs.path().join("snap")).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "errno {errno}: {stderr}");
        assert!(stderr.contains("fuse"), "errno {errno}: {stderr}");
        assert!(!fs.path().join("snap/manifest.xxh128").exists(), "errno {errno}");
        fs.fail_syncs(None);
        eprintln!("errno {errno}: {}", stderr.lines().next().unwrap_or_default());
    }
}

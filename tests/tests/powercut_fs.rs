//! The power-cut file system catches the bugs it exists for: data never synced, a rename before
//! the data sync, a rename whose directory was never synced; and it lets a correct writer through.
//! Writers are coreutils (`cp`, `mv`, `sync FILE`, which fsyncs FILE) or this process itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test
#![allow(clippy::print_stderr)] // the campaign's figures

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use e2e::powercut::{Campaign, Cut, PowerCut, quiet};

const OLD: &[u8] = b"old content\n";

fn new_content() -> Vec<u8> {
    (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect()
}

/// A file system holding a durable `target` with [`OLD`].
fn with_old_target() -> Option<PowerCut> {
    let fs = PowerCut::mount()?;
    fs::write(fs.path().join("target"), OLD).unwrap();
    fs.sync_all();
    Some(fs)
}

fn fsync_dir(dir: &Path) {
    // The directory's entries become durable (the step the third writer skips).
    fs::File::open(dir).unwrap().sync_all().unwrap();
}

#[test]
fn cp_then_sync_command_loses_the_copy() {
    let Some(fs) = PowerCut::mount() else { return };
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("data"), new_content()).unwrap();
    let dst = fs.path().join("data");
    let status = Command::new("cp").arg(src.path().join("data")).arg(&dst).status().unwrap();
    assert!(status.success());
    // sync(1) without arguments calls sync(2): on FUSE the kernel sends no request for it.
    assert!(Command::new("sync").status().unwrap().success());
    assert_eq!(fs::read(&dst).unwrap(), new_content(), "the copy is there before the cut");
    fs.cut();
    fs.resume();
    assert!(!dst.exists(), "an unsynced copy must not survive a power cut");
}

#[test]
fn rename_before_data_sync_leaves_an_empty_file() {
    let Some(fs) = with_old_target() else { return };
    let tmp = fs.path().join(".target.tmp");
    fs::File::create(&tmp).unwrap().write_all(&new_content()).unwrap();
    fs::rename(&tmp, fs.path().join("target")).unwrap();
    fsync_dir(fs.path());
    fs.cut();
    fs.resume();
    let after = fs::read(fs.path().join("target")).unwrap();
    assert_eq!(after.len(), 0, "the rename is durable, the data it names is not");
}

#[test]
fn skipped_directory_sync_loses_the_rename() {
    let Some(fs) = with_old_target() else { return };
    let tmp = fs.path().join(".target.tmp");
    let mut file = fs::File::create(&tmp).unwrap();
    file.write_all(&new_content()).unwrap();
    // The data becomes durable, but not the names.
    file.sync_all().unwrap();
    fs::rename(&tmp, fs.path().join("target")).unwrap();
    fs.cut();
    fs.resume();
    assert_eq!(fs::read(fs.path().join("target")).unwrap(), OLD, "the rename was lost");
    assert!(!tmp.exists(), "the temp's name was never durable either");
}

#[test]
fn a_journal_commit_without_the_data_leaves_an_empty_file() {
    let Some(fs) = with_old_target() else { return };
    let tmp = fs.path().join(".target.tmp");
    fs::File::create(&tmp).unwrap().write_all(&new_content()).unwrap();
    fs::rename(&tmp, fs.path().join("target")).unwrap();
    // No sync at all: the names are committed by the cut, the data is not.
    fs.cut_with(Cut::NamesCommitted);
    fs.resume();
    assert_eq!(fs::read(fs.path().join("target")).unwrap().len(), 0);
}

#[test]
fn a_correct_writer_is_durable_on_return() {
    let Some(fs) = with_old_target() else { return };
    let tmp = fs.path().join(".target.tmp");
    let mut file = fs::File::create(&tmp).unwrap();
    file.write_all(&new_content()).unwrap();
    // The data before the rename that names it.
    file.sync_all().unwrap();
    fs::rename(&tmp, fs.path().join("target")).unwrap();
    fsync_dir(fs.path());
    fs.cut();
    fs.resume();
    assert_eq!(fs::read(fs.path().join("target")).unwrap(), new_content());
}

#[test]
fn hard_links_symlinks_and_directories_follow_their_directory_sync() {
    let Some(fs) = PowerCut::mount() else { return };
    let root = fs.path();
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/f"), b"f").unwrap();
    fs::File::open(root.join("d/f")).unwrap().sync_all().unwrap();
    fs::hard_link(root.join("d/f"), root.join("d/g")).unwrap();
    std::os::unix::fs::symlink("f", root.join("d/s")).unwrap();
    fsync_dir(&root.join("d"));
    // `d` itself was never recorded in the root: all of it is gone.
    fs.cut();
    fs.resume();
    assert!(!root.join("d").exists());

    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/f"), b"f").unwrap();
    fs::File::open(root.join("d/f")).unwrap().sync_all().unwrap();
    fs::hard_link(root.join("d/f"), root.join("d/g")).unwrap();
    std::os::unix::fs::symlink("f", root.join("d/s")).unwrap();
    fsync_dir(&root.join("d"));
    fsync_dir(root);
    fs::remove_file(root.join("d/g")).unwrap();
    fs.cut();
    fs.resume();
    assert_eq!(fs::read(root.join("d/g")).unwrap(), b"f", "the unlink was never synced");
    assert_eq!(fs::read_link(root.join("d/s")).unwrap(), Path::new("f"));
    assert_eq!(fs::read(root.join("d/s")).unwrap(), b"f");
}

#[test]
fn a_failing_sync_is_reported_to_the_caller() {
    let Some(fs) = PowerCut::mount() else { return };
    fs::write(fs.path().join("f"), b"x").unwrap();
    fs.fail_syncs(Some(5)); // EIO
    let err = fs::File::open(fs.path().join("f")).unwrap().sync_all().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5));
    fs.fail_syncs(None);
}

/// `cp` to a temp, optionally `sync` it, `mv` onto the target, `sync` the directory.
fn shell_writer(fs: &PowerCut, src: &Path, sync_data: bool) -> Command {
    let sync_tmp = if sync_data { "sync \"$2/.tmp\" &&" } else { "" };
    let script =
        format!("cp \"$1\" \"$2/.tmp\" && {sync_tmp} mv \"$2/.tmp\" \"$2/target\" && sync \"$2\"");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script, "sh"]).arg(src).arg(fs.path());
    quiet(cmd)
}

/// Runs a power-cut campaign over `shell_writer`; the number of cuts after which `target` was
/// neither the old nor the complete new content, or not the new one after a successful run.
fn campaign_violations(sync_data: bool) -> (u64, e2e::powercut::CampaignReport) {
    let fs = with_old_target().expect("checked by the caller");
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("new"), new_content()).unwrap();
    let campaign = Campaign { fs: &fs, start: fs.snapshot() };
    let mut violations = 0;
    let report = campaign.run(
        60,
        || {},
        || shell_writer(&fs, &src.path().join("new"), sync_data).spawn().unwrap(),
        |returned, code| {
            let now = fs::read(fs.path().join("target")).unwrap_or_default();
            let ok = if returned && code == Some(0) {
                now == new_content()
            } else {
                now == OLD || now == new_content()
            };
            violations += u64::from(!ok);
        },
    );
    (violations, report)
}

#[test]
fn campaign_passes_a_correct_writer_and_catches_a_rename_before_the_data_sync() {
    if PowerCut::mount().is_none() || e2e::require_tool("cp").is_none() {
        return;
    }
    let (violations, report) = campaign_violations(true);
    eprintln!("correct writer: {report:?}, {violations} violations");
    assert!(report.cuts_during >= 10, "too few cuts: {report:?}");
    assert_eq!(violations, 0, "{report:?}");

    let (violations, report) = campaign_violations(false);
    eprintln!("writer without the data sync: {report:?}, {violations} violations");
    assert!(violations > 0, "the campaign missed a rename before the data sync: {report:?}");
}

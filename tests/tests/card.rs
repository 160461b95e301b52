//! `cargo xtask copy` onto a real exFAT file system through FUSE (an image on a loop device,
//! `mount.exfat-fuse`), the cards ROM collections are copied to: names that differ only by case
//! refused with every pair named, a rerun that copies nothing although the card keeps whole
//! seconds, a rerun onto a nearly full card, clusters of 128 KiB counted, names the card cannot
//! store refused before a byte is written, and a copy verified from the media read back after a
//! remount. Needs root and FUSE: skipped loudly without, failed under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test
#![allow(clippy::print_stderr)] // skipped checks say so loudly

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, UNIX_EPOCH};

use e2e::assert_exit;
use e2e::card::Card;

fn copy(args: &[&str], src: &Path, dst: &Path) -> Output {
    e2e::xtask().arg("copy").args(args).arg(src).arg(dst).output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// How many warnings of this kind a `--json` report holds.
fn warnings_of(report: &serde_json::Value, kind: &str) -> usize {
    report["warnings"].as_array().unwrap().iter().filter(|w| w["kind"] == kind).count()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A file with deterministic bytes and an mtime with nanoseconds (which exFAT cannot keep).
fn put(path: &Path, seed: u64, len: usize) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, e2e::content(seed, len)).unwrap();
    let mtime = UNIX_EPOCH + Duration::new(1_600_000_001 + seed * 7, 123_456_789);
    fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
}

/// A small ROM collection: a few platform folders of files from empty to 200 KB.
fn roms(src: &Path) -> u64 {
    let mut files = 0;
    for (d, platform) in ["NES", "SNES", "Game Boy", "Mega Drive"].iter().enumerate() {
        for f in 0..6u64 {
            let seed = d as u64 * 10 + f;
            put(
                &src.join(platform).join(format!("Game {f}.rom")),
                seed,
                (seed as usize * 9_973) % 200_000,
            );
            files += 1;
        }
    }
    files
}

/// Everything on the card below its root, sorted (empty for a fresh card).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    names.sort();
    names
}

#[test]
fn names_that_differ_only_by_case_are_refused_with_every_pair_named_and_nothing_written() {
    let Some(card) = Card::exfat(16 << 20, 4096) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    put(&src.join("Zelda.nes"), 1, 1000);
    put(&src.join("zelda.nes"), 2, 1000);
    put(&src.join("SNES/a.sfc"), 3, 100);
    put(&src.join("snes/b.sfc"), 4, 100);
    put(&src.join("Ärger.gb"), 5, 10);
    put(&src.join("ärger.gb"), 6, 10);
    put(&src.join("other.nes"), 7, 10);

    let dst = card.path().join("roms");
    let out = copy(&[], &src, &dst);
    assert_exit(&out, 2);
    let err = stderr(&out);
    for pair in [("Zelda.nes", "zelda.nes"), ("SNES", "snes"), ("Ärger.gb", "ärger.gb")] {
        assert!(
            err.lines().any(|l| l.contains(pair.0) && l.contains(pair.1)),
            "{pair:?} not named in:\n{err}"
        );
    }
    assert_eq!(listing(card.path()), Vec::<String>::new(), "nothing may be written");
}

#[test]
fn a_rerun_of_an_unchanged_collection_onto_exfat_copies_nothing() {
    let Some(card) = Card::exfat(16 << 20, 4096) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = roms(&src);
    let dst = card.path().join("roms");
    let first = copy(&["--json"], &src, &dst);
    assert_exit(&first, 0);
    assert_eq!(json(&first)["copied"], files);

    let again = copy(&["--json"], &src, &dst);
    assert_exit(&again, 0);
    assert_eq!(
        (json(&again)["copied"].as_u64(), json(&again)["skipped"].as_u64()),
        (Some(0), Some(files))
    );
    // The card keeps no modes: said once, not per file.
    let kinds: Vec<String> = json(&again)["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["modes_not_kept"], "{:#}", json(&again));

    // A file that really changed (same size, a second later) is still copied.
    put(&src.join("NES/Game 1.rom"), 99, 9_973);
    let changed = copy(&["--json"], &src, &dst);
    assert_exit(&changed, 0);
    assert_eq!(json(&changed)["copied"], 1);
}

#[test]
fn a_rerun_onto_a_card_more_than_half_full_is_not_refused() {
    let Some(card) = Card::exfat(16 << 20, 4096) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..10u64 {
        put(&src.join(format!("disc {i}.iso")), i, 1_000_000);
    }
    let dst = card.path().join("roms");
    assert_exit(&copy(&[], &src, &dst), 0);

    let dry = copy(&["--dry-run"], &src, &dst);
    assert_exit(&dry, 0);
    let again = copy(&["--json"], &src, &dst);
    assert_exit(&again, 0);
    assert_eq!(json(&again)["copied"], 0);
    // Replacing every file by one of the same size needs no new space either.
    let checksum = copy(&["--checksum", "--json"], &src, &dst);
    assert_exit(&checksum, 0);
}

#[test]
fn tiny_files_that_need_more_clusters_than_the_card_has_are_refused_before_a_byte_is_written() {
    // 64 MiB in clusters of 128 KiB: about 490 clusters free. 600 files of 1 KiB need 600
    // clusters, although they are 600 KiB.
    let Some(card) = Card::exfat(64 << 20, 128 << 10) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..600u64 {
        put(&src.join(format!("tiny/{i:04}.sav")), i, 1024);
    }
    let dst = card.path().join("saves");
    let out = copy(&[], &src, &dst);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("not enough free space"), "{}", stderr(&out));
    assert_eq!(listing(card.path()), Vec::<String>::new(), "nothing may be written");

    // A dry run reports the shortfall instead of refusing.
    let dry = copy(&["--dry-run", "--json"], &src, &dst);
    let report = json(&dry);
    assert_eq!(report["totals"]["needed"], 600 * (128 << 10) + (128 << 10) * 2, "{report:#}");
    assert!(report["shortfall"].as_u64().is_some_and(|s| s > 0), "{report:#}");
}

#[test]
fn names_the_card_cannot_store_are_refused_each_with_its_reason_before_a_byte_is_written() {
    let Some(card) = Card::exfat(16 << 20, 4096) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let bad = ["a:b.nes", "what?.nes", "trailing dot.", "trailing space ", "pipe|.gb"];
    for (i, name) in bad.iter().enumerate() {
        put(&src.join("nes").join(name), i as u64, 10);
    }
    put(&src.join("nes/fine.nes"), 9, 10);
    let dst = card.path().join("roms");
    let out = copy(&[], &src, &dst);
    assert_exit(&out, 2);
    let err = stderr(&out);
    for name in bad {
        assert!(err.lines().any(|l| l.contains(name)), "{name:?} not named in:\n{err}");
    }
    assert_eq!(listing(card.path()), Vec::<String>::new(), "nothing may be written");
}

#[test]
fn a_copy_verified_from_the_media_reads_back_identically_after_a_remount() {
    let Some(mut card) = Card::exfat(16 << 20, 4096) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = roms(&src);
    let dst = card.path().join("roms");
    let out = copy(&["--verify=media", "--json"], &src, &dst);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["copied"], files);
    assert_eq!(json(&out)["verified_from"], "media");

    card.remount();
    let dst = card.path().join("roms");
    let hashes = |root: &Path| {
        let mut opts = checksum::TreeOptions::default();
        opts.algo = checksum::Algo::Xxh128;
        opts.jobs = Some(1);
        let tree = checksum::hash_tree(root, &opts, &()).unwrap();
        assert!(tree.errors.is_empty(), "{:?}", tree.errors);
        tree.files.into_iter().map(|e| (e.rel, e.len, e.digest)).collect::<Vec<_>>()
    };
    assert_eq!(hashes(&src), hashes(&dst));
}

#[test]
fn the_copier_folds_names_at_least_as_coarsely_as_exfat_does() {
    let Some(card) = Card::exfat(16 << 20, 4096) else { return };
    // Every BMP character with a case mapping: create it on the card, then look up its upper- and
    // lower-case spellings. Whatever the card resolves to the same file, the copier's folding must
    // treat as the same name, or it would let two source files land on one card file.
    let dir = card.path();
    let mut checked = 0;
    for c in (0u32..0x1_0000).filter_map(char::from_u32) {
        let others: Vec<String> = [c.to_uppercase().to_string(), c.to_lowercase().to_string()]
            .into_iter()
            .filter(|o| *o != c.to_string())
            .collect();
        if others.is_empty() {
            continue;
        }
        let name = format!("x{c}");
        let path = dir.join(&name);
        if fs::write(&path, b"").is_err() {
            continue; // a name this card cannot store is refused by another rule
        }
        for other in others {
            let spelled = format!("x{other}");
            if fs::symlink_metadata(dir.join(&spelled)).is_ok() {
                assert_eq!(
                    folder_copier::fold_name(name.as_ref()),
                    folder_copier::fold_name(spelled.as_ref()),
                    "the card takes {name:?} and {spelled:?} for one name; the copier does not"
                );
                checked += 1;
            }
        }
        fs::remove_file(&path).unwrap();
    }
    assert!(checked > 500, "only {checked} spellings were resolved by the card");
}

#[test]
fn an_exfat_card_through_fuse_is_probed_for_what_it_is() {
    let Some(card) = Card::exfat(64 << 20, 128 << 10) else { return };
    let dest = folder_copier::Destination::probe(card.path());
    assert_eq!(dest.family, folder_copier::FsFamily::Exfat, "{dest:?}");
    assert_eq!(dest.case, folder_copier::CaseRule::Insensitive, "{dest:?}");
    assert_eq!(dest.cluster, 128 << 10, "{dest:?}");
    assert!(dest.time_granularity >= Duration::from_millis(10), "{dest:?}");
    assert!(!dest.keeps_modes, "{dest:?}");
    assert!(!dest.keeps_holes, "{dest:?}");
    assert_eq!(listing(card.path()), Vec::<String>::new(), "the probe leaves nothing");
}

#[test]
fn media_verification_rereads_each_synced_temp_through_a_fresh_descriptor_with_its_pages_dropped() {
    let Some(strace) = e2e::require_tool("strace") else { return };
    let Some(card) = Card::exfat(16 << 20, 4096) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = roms(&src);
    let log = tmp.path().join("strace.log");
    let out = std::process::Command::new(strace)
        .env_remove("LD_LIBRARY_PATH")
        .args(["-f", "-qq", "-y", "-o"])
        .arg(&log)
        .args(["-e", "trace=openat,fsync,syncfs,fadvise64,rename,renameat,renameat2"])
        .arg(e2e::xtask_path())
        .args(["copy", "--verify", "media"])
        .arg(&src)
        .arg(card.path().join("roms"))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let trace: Vec<String> = fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
    let mut checked = 0;
    for (r, line) in trace.iter().enumerate() {
        let is_rename = line.contains(" rename(") || line.contains(" renameat");
        if !is_rename || !line.contains(".tmp\"") {
            continue;
        }
        let quoted = line.split('"').nth(1).unwrap();
        let name = Path::new(quoted).file_name().unwrap().to_str().unwrap();
        let quoted_name = format!("{name}\"");
        let opens = |l: &String, flag: &str| {
            l.contains("openat(") && l.contains(&quoted_name) && l.contains(flag)
        };
        let created = trace[..r].iter().position(|l| opens(l, "O_CREAT")).expect("created");
        let reopened = trace[..r]
            .iter()
            .rposition(|l| opens(l, "O_RDONLY"))
            .unwrap_or_else(|| panic!("{name} renamed without being opened again to read it"));
        let synced = trace[created..reopened]
            .iter()
            .any(|l| l.contains("syncfs(") || (l.contains("fsync(") && l.contains(name)));
        assert!(synced, "{name} read back before it was synced");
        let dropped = trace[reopened..r].iter().any(|l| {
            l.contains("fadvise64(") && l.contains(name) && l.contains("POSIX_FADV_DONTNEED")
        });
        assert!(dropped, "{name} read back without its cached pages dropped");
        checked += 1;
    }
    // Empty files are renamed too: every file went through the check.
    assert_eq!(checked, files, "{}", trace.join("\n"));
}

#[test]
fn extended_attributes_the_card_cannot_take_are_warned_about_once_and_the_copy_goes_on() {
    let Some(card) = Card::exfat(16 << 20, 4096) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..3u64 {
        let path = src.join(format!("nes/{i}.nes"));
        put(&path, i, 1000);
        let flags = rustix::fs::XattrFlags::empty();
        rustix::fs::setxattr(&path, "user.region", b"PAL", flags).unwrap();
    }
    let out = copy(&["--json"], &src, &card.path().join("roms"));
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(report["copied"], 3);
    assert_eq!(warnings_of(&report, "xattrs_not_kept"), 1, "{report:#}");
}

#[test]
fn owners_the_card_cannot_keep_are_warned_about_once_and_the_copy_goes_on() {
    let Some(card) = Card::exfat(16 << 20, 4096) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..3u64 {
        let path = src.join(format!("gba/{i}.gba"));
        put(&path, i, 1000);
        // The card fixture needs root, so this chown is allowed; exfat-fuse answers its own with EPERM.
        std::os::unix::fs::chown(&path, Some(1234), Some(2345)).unwrap();
    }
    let out = copy(&["--json"], &src, &card.path().join("roms"));
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(report["copied"], 3);
    assert_eq!(warnings_of(&report, "owners_not_kept"), 1, "{report:#}");
}

#[test]
fn on_fat32_a_file_over_4_gib_is_refused_before_a_byte_is_written_and_a_refused_chmod_is_a_warning()
{
    let Some(card) = Card::fat32(64 << 20) else { return };
    let dest = folder_copier::Destination::probe(card.path());
    assert_eq!(dest.family, folder_copier::FsFamily::Fat, "{dest:?}");
    assert_eq!(dest.time_granularity, Duration::from_secs(2), "{dest:?}");
    assert_eq!(dest.case, folder_copier::CaseRule::Insensitive, "{dest:?}");

    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    put(&src.join("snes/small.sfc"), 1, 1000);
    // 4 GiB exactly: one byte more than FAT32 holds; sparse, so it costs nothing here.
    let big = src.join("psx/disc.bin");
    fs::create_dir_all(big.parent().unwrap()).unwrap();
    fs::File::create(&big).unwrap().set_len(4 << 30).unwrap();
    let dst = card.path().join("roms");
    let out = copy(&[], &src, &dst);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).lines().any(|l| l.contains("psx/disc.bin") && l.contains("4294967295")),
        "{}",
        stderr(&out)
    );
    assert_eq!(listing(card.path()), Vec::<String>::new(), "nothing may be written");

    // fusefat refuses every chmod (ENOSYS): the copy goes on without modes, with one warning.
    fs::remove_file(&big).unwrap();
    let out = copy(&["--json"], &src, &dst);
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(report["copied"], 1, "{report:#}");
    assert_eq!(warnings_of(&report, "modes_not_kept"), 1, "{report:#}");
    assert_eq!(fs::read(dst.join("snes/small.sfc")).unwrap().len(), 1000);
    // Not asserted: a rerun skipping everything. fusefat stamps the current time on a rename,
    // so the mtime set before it is lost and each rerun copies again (exFAT keeps it).
}

//! Behaviour of `folder_copier` on real trees in temp directories: what is copied and kept, what is
//! skipped, what is refused before anything is written, and how failures stay contained.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use folder_copier::{
    Action, Collision, CopyOptions, CopyProgress, CopyReport, DirStats, Durability, Error,
    FileError, FileOutcome, PlanTotals, RetryPolicy, Warning, copy, execute, plan,
};

struct Scratch {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        fs::create_dir(root.join("src")).unwrap();
        Scratch { _dir: dir, root }
    }
    fn src(&self) -> PathBuf {
        self.root.join("src")
    }
    fn dst(&self) -> PathBuf {
        self.root.join("dst")
    }
}

/// Deterministic content of `len` bytes that differs per `seed`.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write(path: &Path, bytes: &[u8], mode: u32, mtime_sec: i64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    let t = std::time::UNIX_EPOCH + Duration::new(mtime_sec as u64, 123_456_789);
    fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
}

/// Everything about a tree that the copy must keep: per relative path, the kind, the bytes or the
/// link target, the mode, and the mtime (files and directories; symlinks' too).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(root).unwrap().to_owned();
        let meta = entry.path().symlink_metadata().unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("link {:?} mtime {}", fs::read_link(entry.path()).unwrap(), meta.mtime())
        } else if meta.is_dir() {
            format!(
                "dir mode {:o} mtime {}.{}",
                meta.mode() & 0o7777,
                meta.mtime(),
                meta.mtime_nsec()
            )
        } else {
            // Bytes compared directly, independently of the crate's hashing.
            let bytes = fs::read(entry.path()).unwrap();
            format!(
                "file {} bytes sum {} mode {:o} mtime {}.{}",
                bytes.len(),
                bytes.iter().enumerate().fold(0u64, |h, (i, b)| h
                    .wrapping_mul(31)
                    .wrapping_add(u64::from(*b) ^ i as u64)),
                meta.mode() & 0o7777,
                meta.mtime(),
                meta.mtime_nsec()
            )
        };
        out.insert(rel, what);
    }
    out
}

/// Asserts DST holds exactly SRC, byte for byte, with modes and mtimes (the roots' too).
fn assert_same_tree(src: &Path, dst: &Path) {
    let (a, b) = (snapshot(src), snapshot(dst));
    for (rel, what) in &a {
        assert_eq!(b.get(rel), Some(what), "{} differs", rel.display());
    }
    assert_eq!(
        a.len(),
        b.len(),
        "extra entries in {}: {:?}",
        dst.display(),
        b.keys().filter(|k| !a.contains_key(*k)).collect::<Vec<_>>()
    );
    let (sm, dm) = (fs::metadata(src).unwrap(), fs::metadata(dst).unwrap());
    assert_eq!(sm.mode() & 0o7777, dm.mode() & 0o7777, "root mode");
    assert_eq!((sm.mtime(), sm.mtime_nsec()), (dm.mtime(), dm.mtime_nsec()), "root mtime");
}

fn temps_in(root: impl AsRef<Path>) -> Vec<PathBuf> {
    let root = root.as_ref();
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| atomic_io::is_temp_name(e.file_name()))
        .map(|e| e.path().to_owned())
        .collect()
}

/// Whether this process may give files away (root); without it a test that needs it skips
/// loudly, and fails on CI, which runs as root.
#[allow(clippy::print_stderr)] // the loud skip, as in the test functions themselves
fn may_give_files_away(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        assert!(std::env::var_os("CI").is_none_or(|v| v != "true"), "CI runs {test} as root");
        eprintln!("SKIPPED {test}: giving files away needs root");
    }
    root
}

fn ok(report: &CopyReport) {
    assert!(report.failed.is_empty(), "failures: {:#?}", report.failed);
    assert!(!report.interrupted);
}

/// 30 folders of varied files (empty, tiny, several buffers long), modes, symlinks, empty dirs.
fn many_folders(s: &Scratch) -> u64 {
    let src = s.src();
    let mut files = 0;
    for d in 0..30u64 {
        let dir = src.join(format!("platform-{d:02}/sub"));
        for f in 0..(d % 5 + 1) {
            let len = match (d + f) % 6 {
                0 => 0,
                1 => 1,
                2 => 4095,
                3 => 256 * 1024 + 17,
                4 => 3 * 256 * 1024,
                _ => 70_000,
            };
            let mode = if f % 2 == 0 { 0o644 } else { 0o755 };
            write(
                &dir.join(format!("game-{f}.rom")),
                &content(d * 100 + f, len),
                mode,
                1_500_000_000 + (d * 7 + f) as i64,
            );
            files += 1;
        }
        symlink("sub/game-0.rom", src.join(format!("platform-{d:02}/first"))).unwrap();
    }
    symlink("/nonexistent/target", src.join("dangling")).unwrap();
    fs::create_dir_all(src.join("empty/nested-empty")).unwrap();
    fs::set_permissions(src.join("empty"), fs::Permissions::from_mode(0o750)).unwrap();
    write(&src.join("top.txt"), b"top\n", 0o600, 1_600_000_000);
    write(&src.join("locked/read-only"), b"ro", 0o444, 1_600_000_000);
    write(&src.join("locked/setuid"), b"su", 0o4755, 1_600_000_000);
    fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o555)).unwrap();
    files + 3
}

#[test]
fn many_folders_copy_identically_and_a_second_run_skips_everything() {
    let s = Scratch::new();
    let files = many_folders(&s);
    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&report);
    assert_eq!(report.copied, files);
    assert_eq!(report.links, 31);
    assert!(report.verified);
    assert_same_tree(&s.src(), &s.dst());
    assert!(temps_in(s.dst()).is_empty());

    let again = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&again);
    assert_eq!((again.copied, again.links, again.skipped), (0, 0, files + 31));
    assert_same_tree(&s.src(), &s.dst());

    // A chmod alone (same size and mtime) is applied without copying; a touched file is copied
    // into its read-only directory.
    fs::set_permissions(s.src().join("top.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    write(&s.src().join("locked/read-only"), b"RO", 0o444, 1_700_000_000);
    fs::set_permissions(s.src().join("locked"), fs::Permissions::from_mode(0o555)).unwrap();
    let third = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&third);
    assert_eq!(third.copied, 1);
    assert_same_tree(&s.src(), &s.dst());
}

#[test]
fn one_large_folder_copies_identically_with_any_number_of_jobs() {
    for jobs in [1, 3] {
        let s = Scratch::new();
        for f in 0..600u64 {
            let len = (f as usize * 977) % 40_000;
            write(
                &s.src().join(format!("f{f:04}")),
                &content(f, len),
                0o640,
                1_400_000_000 + f as i64,
            );
        }
        let mut opts = CopyOptions::default();
        opts.jobs = Some(jobs);
        let recorder = Recorder::default();
        let report = copy(s.src(), s.dst(), &opts, &recorder).unwrap();
        ok(&report);
        assert_eq!(report.copied, 600);
        assert_same_tree(&s.src(), &s.dst());
        // With 3 jobs the folder runs as 3 slices; it is still reported done once, with all counts.
        let dirs = recorder.dirs.lock().unwrap().clone();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        assert_eq!((dirs[0].1.copied, dirs[0].1.failed), (600, 0));
    }
}

#[test]
fn owners_are_kept_where_the_process_may_give_files_away_and_set_id_bits_survive_the_chown() {
    if !may_give_files_away("owners_are_kept_where_the_process_may_give_files_away") {
        return;
    }
    let s = Scratch::new();
    write(&s.src().join("bin/tool"), b"#!/bin/sh\n", 0o4755, 1_000_000_000);
    write(&s.src().join("bin/notes"), b"notes", 0o640, 1_000_000_000);
    for (name, mode) in [("bin/tool", 0o4755), ("bin/notes", 0o640)] {
        let path = s.src().join(name);
        std::os::unix::fs::chown(&path, Some(1234), Some(2345)).unwrap();
        // The chown cleared the set-id bit; put it back, as the copy must.
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&report);
    assert!(report.warnings.is_empty(), "{:#?}", report.warnings);
    for (name, mode) in [("bin/tool", 0o4755), ("bin/notes", 0o640)] {
        let meta = fs::metadata(s.dst().join(name)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 2345), "{name}: owner not kept");
        assert_eq!(meta.mode() & 0o7777, mode, "{name}: mode lost to the chown");
    }
}

#[test]
fn owners_of_directories_and_symlinks_are_kept_too_and_links_are_not_followed() {
    if !may_give_files_away("owners_of_directories_and_symlinks_are_kept_too") {
        return;
    }
    let s = Scratch::new();
    write(&s.src().join("games/nes/Game.nes"), b"rom", 0o644, 1_000_000_000);
    fs::create_dir(s.src().join("games/empty")).unwrap();
    symlink("nes/Game.nes", s.src().join("games/latest")).unwrap();
    symlink("nes/Game.nes", s.src().join("games/previous")).unwrap();
    // A file in the way of one link: that link is made under a temp name and renamed over it.
    write(&s.dst().join("games/previous"), b"old", 0o644, 1_000_000_000);
    let chown = |rel: &str, uid, gid| {
        std::os::unix::fs::lchown(s.src().join(rel), Some(uid), Some(gid)).unwrap();
    };
    chown("", 1001, 1002);
    chown("games", 1234, 2345);
    chown("games/nes", 1235, 2346);
    chown("games/empty", 1236, 2347);
    chown("games/latest", 1237, 2348);
    chown("games/previous", 1238, 2349);
    // The link's target keeps its own owner: a chown that followed the link would change it.
    chown("games/nes/Game.nes", 4321, 5432);
    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&report);
    assert!(report.warnings.is_empty(), "{:#?}", report.warnings);
    for (rel, owner) in [
        ("", (1001, 1002)),
        ("games", (1234, 2345)),
        ("games/nes", (1235, 2346)),
        ("games/empty", (1236, 2347)),
        ("games/latest", (1237, 2348)),
        ("games/previous", (1238, 2349)),
        ("games/nes/Game.nes", (4321, 5432)),
    ] {
        let meta = fs::symlink_metadata(s.dst().join(rel)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), owner, "{rel:?}: owner not kept");
    }
    assert_same_tree(&s.src(), &s.dst());
}

#[test]
fn a_destination_that_cannot_be_created_is_refused_naming_it_and_the_cause() {
    // sysfs takes no new names, not even from root (EPERM; EROFS where it is mounted read-only).
    if !Path::new("/sys/kernel").is_dir() {
        assert!(std::env::var_os("CI").is_none_or(|v| v != "true"), "CI has /sys");
        eprintln!("SKIPPED a_destination_that_cannot_be_created...: no sysfs at /sys");
        return;
    }
    let s = Scratch::new();
    write(&s.src().join("a"), b"a", 0o644, 1_500_000_000);
    let dst = Path::new("/sys/folder-copier-cannot-create");
    let err = copy(s.src(), dst, &CopyOptions::default(), &()).unwrap_err();
    assert!(matches!(err, Error::CreateDestination { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "failed to create destination directory /sys/folder-copier-cannot-create"
    );
    assert!(std::error::Error::source(&err).is_some(), "the cause is kept: {err:?}");
    // The probe could not create its temp file there either, and its note says why.
    let dest = folder_copier::Destination::probe(Path::new("/sys"));
    let said = dest.notes.join("\n");
    assert!(said.contains("cannot probe /sys (failed to create a temp file in /sys"), "{said}");
    assert!(said.contains("(os error "), "the probe's note lost its cause: {said}");
}

#[test]
fn durability_none_and_no_verify_still_copy_identically() {
    let s = Scratch::new();
    many_folders(&s);
    let mut opts = CopyOptions::default();
    opts.durability = Durability::None;
    opts.verify = false;
    let report = copy(s.src(), s.dst(), &opts, &()).unwrap();
    ok(&report);
    assert!(!report.verified);
    assert_same_tree(&s.src(), &s.dst());
}

#[test]
fn changed_files_are_copied_again_and_checksum_mode_compares_content() {
    let s = Scratch::new();
    let a = s.src().join("a");
    write(&a, b"version 1", 0o644, 1_500_000_000);
    ok(&copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap());

    // Same size and mtime, other content: skipped by default, copied with `checksum`.
    write(&a, b"version 2", 0o644, 1_500_000_000);
    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    assert_eq!((report.copied, report.skipped), (0, 1));
    let mut opts = CopyOptions::default();
    opts.checksum = true;
    let planned = plan(s.src(), s.dst(), &opts).unwrap();
    assert_eq!(planned.entries().next().unwrap().action, Action::Compare);
    let report = copy(s.src(), s.dst(), &opts, &()).unwrap();
    assert_eq!((report.copied, report.skipped), (1, 0));
    assert_eq!(fs::read(s.dst().join("a")).unwrap(), b"version 2");

    // Same content, other mtime: copied by default (mtime differs), skipped with `checksum`.
    write(&a, b"version 2", 0o644, 1_600_000_000);
    assert_eq!(copy(s.src(), s.dst(), &opts, &()).unwrap().skipped, 1);
    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    assert_eq!(report.copied, 1);
    assert_same_tree(&s.src(), &s.dst());
}

#[test]
fn fifos_are_skipped_with_a_warning_and_never_opened() {
    let s = Scratch::new();
    let fifo = s.src().join("pipe");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    fs::write(s.src().join("a"), b"a").unwrap();
    // Opening the FIFO for reading would block this test forever: no writer ever comes.
    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&report);
    assert_eq!(report.copied, 1);
    assert!(
        report
            .warnings
            .contains(&Warning::SkippedSpecial { path: fifo, kind: checksum::FileKind::Fifo })
    );
    assert!(!s.dst().join("pipe").exists());
}

#[test]
fn destination_inside_source_is_refused() {
    let s = Scratch::new();
    fs::write(s.src().join("a"), b"a").unwrap();
    fs::create_dir(s.src().join("sub")).unwrap();
    symlink(s.src().join("sub"), s.root.join("alias")).unwrap();
    for dst in [
        s.src(),
        s.src().join("sub"),
        s.src().join("new/deeper"),
        s.root.join("alias/x"),
        s.src().join("sub/../sub"),
    ] {
        let err = plan(s.src(), &dst, &CopyOptions::default()).unwrap_err();
        assert!(matches!(err, Error::DestinationInsideSource { .. }), "{}: {err}", dst.display());
    }
    assert!(!s.src().join("new").exists() && !s.src().join("sub/x").exists());
    // A sibling whose name starts like SRC is not inside it.
    plan(s.src(), s.root.join("src2"), &CopyOptions::default()).unwrap();
}

#[test]
fn source_inside_destination_is_refused_only_when_a_file_would_land_in_the_source() {
    let s = Scratch::new();
    let inner = s.src().join("inner");
    fs::create_dir_all(inner.join("inner")).unwrap();
    fs::write(inner.join("inner/x"), b"x").unwrap();
    // SRC = src/inner, DST = src: inner/x lands on src/inner/x, inside SRC.
    let err = plan(&inner, s.src(), &CopyOptions::default()).unwrap_err();
    assert!(matches!(err, Error::DestinationOverlapsSource { .. }), "{err}");
    // Without the colliding name it is a plain copy up one level.
    fs::rename(inner.join("inner"), inner.join("other")).unwrap();
    let report = copy(&inner, s.src(), &CopyOptions::default(), &()).unwrap();
    ok(&report);
    assert_eq!(fs::read(s.src().join("other/x")).unwrap(), b"x");
}

#[test]
fn case_collisions_are_reported_before_anything_is_written() {
    let s = Scratch::new();
    fs::write(s.src().join("Game.rom"), b"1").unwrap();
    fs::write(s.src().join("game.rom"), b"2").unwrap();
    fs::create_dir_all(s.src().join("Dir/x")).unwrap();
    fs::create_dir_all(s.src().join("dir/x")).unwrap();
    fs::write(s.src().join("aaa"), b"a").unwrap();
    let mut opts = CopyOptions::default();
    opts.case_insensitive = true;
    let err = copy(s.src(), s.dst(), &opts, &()).unwrap_err();
    let Error::Collisions { collisions, .. } = &err else { panic!("{err}") };
    assert!(
        collisions
            .contains(&Collision::CaseFold { first: "Game.rom".into(), second: "game.rom".into() }),
        "{collisions:?}"
    );
    assert!(
        collisions.contains(&Collision::CaseFold { first: "Dir".into(), second: "dir".into() }),
        "{collisions:?}"
    );
    assert_eq!(
        collisions.len(),
        2,
        "paths under a colliding directory are not repeated: {collisions:?}"
    );
    assert!(!s.dst().exists(), "nothing may be written");
    // This file system is case-sensitive: without the flag the probe says so and all is copied.
    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&report);
    assert_eq!(report.copied, 3);
}

#[test]
fn a_source_file_that_is_its_destination_is_a_collision() {
    let s = Scratch::new();
    fs::write(s.src().join("a"), b"a").unwrap();
    fs::write(s.src().join("b"), b"b").unwrap();
    fs::create_dir(s.dst()).unwrap();
    fs::hard_link(s.src().join("a"), s.dst().join("a")).unwrap();
    let err = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap_err();
    assert!(
        matches!(&err, Error::Collisions { collisions, .. } if matches!(collisions[0], Collision::SameFile { .. })),
        "{err}"
    );
    assert!(!s.dst().join("b").exists(), "nothing may be written");
}

#[test]
fn too_little_space_is_reported_before_anything_is_written() {
    let s = Scratch::new();
    fs::write(s.src().join("a"), vec![1; 10_000]).unwrap();
    fs::write(s.src().join("b"), vec![2; 10]).unwrap();
    // 10,000 bytes take 3 blocks of 4 KiB, 10 bytes one, the new DST one: 20 KiB needed.
    let mut opts = CopyOptions::default();
    opts.available_space = |_| Ok(20 * 1024 - 1);
    let plan = folder_copier::plan(s.src(), s.dst(), &opts).unwrap();
    assert_eq!((plan.totals().needed, plan.totals().shortfall), (20 * 1024, 1), "a plan reports");
    let err = copy(s.src(), s.dst(), &opts, &()).unwrap_err();
    let Error::NoSpace { needed, available, .. } = err else { panic!("{err}") };
    assert_eq!((needed, available), (20 * 1024, 20 * 1024 - 1));
    assert!(!s.dst().exists(), "nothing may be written");
    let mut failing = CopyOptions::default();
    failing.available_space = |_| Err(std::io::Error::other("statvfs broke"));
    assert!(matches!(copy(s.src(), s.dst(), &failing, &()), Err(Error::FreeSpace { .. })));
    assert!(!s.dst().exists(), "nothing may be written");
    let mut enough = CopyOptions::default();
    enough.available_space = |_| Ok(20 * 1024);
    ok(&copy(s.src(), s.dst(), &enough, &()).unwrap());
}

#[test]
fn a_rerun_needs_no_space_and_a_same_size_replacement_only_its_temp() {
    let s = Scratch::new();
    for i in 0..20u8 {
        fs::write(s.src().join(format!("f{i}")), vec![i; 50_000]).unwrap();
    }
    ok(&copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap());
    let mut full = CopyOptions::default();
    full.available_space = |_| Ok(0);
    let plan = folder_copier::plan(s.src(), s.dst(), &full).unwrap();
    assert_eq!(plan.totals().needed, 0, "an unchanged collection needs no space");
    let again = copy(s.src(), s.dst(), &full, &()).unwrap();
    assert_eq!((again.copied, again.skipped), (0, 20));
    let mut checksum = full.clone();
    checksum.checksum = true;
    assert_eq!(folder_copier::plan(s.src(), s.dst(), &checksum).unwrap().totals().needed, 0);

    // One file rewritten with the same size: it frees what it takes once renamed, but its temp
    // needs room until then.
    fs::write(s.src().join("f3"), vec![99; 50_000]).unwrap();
    let mut one = CopyOptions::default();
    one.jobs = Some(1);
    one.available_space = |_| Ok(0);
    let plan = folder_copier::plan(s.src(), s.dst(), &one).unwrap();
    assert_eq!(plan.totals().needed, 53_248, "the temp of one 50,000-byte file in 4 KiB blocks");
    assert!(matches!(copy(s.src(), s.dst(), &one, &()), Err(Error::NoSpace { .. })));
}

#[test]
fn mtimes_are_compared_within_the_modify_window() {
    let s = Scratch::new();
    fs::write(s.src().join("a"), b"abc").unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_600_000_000, 700_000_000);
    fs::File::options().write(true).open(s.src().join("a")).unwrap().set_modified(t).unwrap();
    ok(&copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap());
    // What a card keeping whole seconds would hold.
    let kept = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    fs::File::options().write(true).open(s.dst().join("a")).unwrap().set_modified(kept).unwrap();

    let mut exact = CopyOptions::default();
    exact.modify_window = Some(std::time::Duration::ZERO);
    assert_eq!(folder_copier::plan(s.src(), s.dst(), &exact).unwrap().totals().to_copy, 1);
    let mut second = CopyOptions::default();
    second.modify_window = Some(std::time::Duration::from_secs(1));
    let again = copy(s.src(), s.dst(), &second, &()).unwrap();
    assert_eq!((again.copied, again.skipped), (0, 1));
    let probed = folder_copier::plan(s.src(), s.dst(), &CopyOptions::default()).unwrap();
    assert_eq!(probed.totals().to_copy, 1, "this file system keeps nanoseconds: exact");
}

#[test]
fn symlinks_planted_in_the_destination_are_replaced_never_written_through() {
    let s = Scratch::new();
    fs::create_dir_all(s.src().join("d")).unwrap();
    fs::write(s.src().join("file"), b"new content").unwrap();
    fs::write(s.src().join("d/inner"), b"inner").unwrap();
    symlink("real-target", s.src().join("link")).unwrap();
    let outside = s.root.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), b"precious").unwrap();
    fs::create_dir(s.dst()).unwrap();
    symlink(outside.join("victim"), s.dst().join("file")).unwrap();
    symlink(&outside, s.dst().join("d")).unwrap();
    fs::write(s.dst().join("link"), b"a file where a link goes").unwrap();

    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&report);
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"precious");
    assert!(!outside.join("inner").exists(), "written through a planted directory symlink");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    assert!(fs::symlink_metadata(s.dst().join("file")).unwrap().is_file());
    assert!(fs::symlink_metadata(s.dst().join("d")).unwrap().is_dir());
    assert_same_tree(&s.src(), &s.dst());
}

#[test]
fn names_that_are_not_utf8_are_copied_like_any_other() {
    let s = Scratch::new();
    let src = s.src();
    let bad_dir = src.join(OsStr::from_bytes(b"dir\xe9"));
    fs::create_dir(&bad_dir).unwrap();
    for (name, mtime) in [(&b"caf\xe9.nes"[..], 1), (b"\xff\xfe", 2), (b"x\xe9", 3), (b"x\xe8", 4)]
    {
        write(&src.join(OsStr::from_bytes(name)), name, 0o640, 1_600_000_000 + mtime);
    }
    write(&bad_dir.join("inner.nes"), b"utf-8 name in a latin-1 folder", 0o644, 1_600_000_100);
    write(&bad_dir.join("caf\u{e9}.nes"), b"utf-8 e-acute", 0o644, 1_600_000_101);
    symlink(OsStr::from_bytes(b"caf\xe9.nes"), src.join(OsStr::from_bytes(b"link-\xfe"))).unwrap();
    write(&src.join("fine"), b"fine", 0o644, 1_600_000_200);

    let planned = plan(s.src(), s.dst(), &CopyOptions::default()).unwrap();
    assert!(planned.problems().is_empty(), "{:#?}", planned.problems());
    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    assert!(report.failed.is_empty(), "{:#?}", report.failed);
    assert_eq!(report.copied, 7);
    assert_same_tree(&s.src(), &s.dst());
    assert!(temps_in(s.dst()).is_empty());
    // A rerun finds every one of them up to date: none skipped as odd, none copied again.
    let again = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    assert_eq!((again.copied, again.failed.len()), (0, 0), "{again:#?}");
    // Refusals show the name escaped, reversibly, never with U+FFFD.
    let err = copy(&bad_dir, bad_dir.join("inner"), &CopyOptions::default(), &()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(r"dir\xe9 into ") && !text.contains('\u{fffd}'), "{text}");
}

#[test]
fn one_failed_file_does_not_stop_the_others_and_is_not_retried_when_final() {
    let s = Scratch::new();
    for name in ["a", "b", "c"] {
        fs::write(s.src().join(name), name).unwrap();
    }
    fs::create_dir_all(s.dst().join("b/occupied")).unwrap(); // a directory where a file goes
    let opts = CopyOptions::default();
    let planned = plan(s.src(), s.dst(), &opts).unwrap();
    fs::remove_file(s.src().join("c")).unwrap(); // gone between plan and copy: ENOENT, final
    let report = execute(planned, &opts, &()).unwrap();
    assert_eq!(report.copied, 1);
    assert_eq!(report.retries, 0, "ENOENT and a directory in the way are not retried");
    let failed: Vec<_> =
        report.failed.iter().map(|f| f.path.file_name().unwrap().to_owned()).collect();
    assert_eq!(failed, ["b", "c"]);
    assert!(matches!(report.failed[0].error, FileError::InTheWay { .. }));
    assert!(
        matches!(&report.failed[1].error, FileError::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    assert_eq!(fs::read(s.dst().join("a")).unwrap(), b"a");
}

/// Changes a source file while it is being copied (`meddle`, by default an append), on the first
/// `times` attempts.
struct Meddler {
    path: PathBuf,
    times: AtomicU64,
    retries: Mutex<Vec<String>>,
    meddle: fn(&Path),
}

fn append(path: &Path) {
    let mut f = fs::File::options().append(true).open(path).unwrap();
    std::io::Write::write_all(&mut f, b"more").unwrap();
}

impl Meddler {
    fn new(path: &Path, times: u64) -> Meddler {
        let times = AtomicU64::new(times);
        Meddler { path: path.to_owned(), times, retries: Mutex::default(), meddle: append }
    }
}

impl CopyProgress for Meddler {
    fn bytes_copied(&self, _bytes: u64) {
        if self.times.load(Ordering::SeqCst) > 0 {
            self.times.fetch_sub(1, Ordering::SeqCst);
            (self.meddle)(&self.path);
        }
    }
    fn retry(&self, rel: &Path, error: &FileError, next_attempt: u32, _delay: Duration) {
        self.retries.lock().unwrap().push(format!("{} #{next_attempt}: {error}", rel.display()));
    }
}

#[test]
fn a_source_that_changes_while_copied_is_retried_then_reported_never_recorded() {
    let mut fast = RetryPolicy::default();
    fast.tries = 3;
    fast.first_delay = Duration::from_millis(1);
    let mut opts = CopyOptions::default();
    opts.retry = fast;

    // Changes once: the second attempt copies the file as it is now.
    let s = Scratch::new();
    let big = s.src().join("big");
    fs::write(&big, content(1, 600_000)).unwrap();
    let meddler = Meddler::new(&big, 1);
    let report = copy(s.src(), s.dst(), &opts, &meddler).unwrap();
    ok(&report);
    assert_eq!(report.retries, 1);
    assert!(meddler.retries.lock().unwrap()[0].contains("changed while it was copied"));
    assert_eq!(fs::read(s.dst().join("big")).unwrap(), fs::read(&big).unwrap());

    // Changes on every attempt: reported, and the destination never gets a copy.
    let s = Scratch::new();
    let big = s.src().join("big");
    fs::write(&big, content(2, 600_000)).unwrap();
    fs::write(s.src().join("other"), b"other").unwrap();
    let meddler = Meddler::new(&big, u64::MAX);
    let report = copy(s.src(), s.dst(), &opts, &meddler).unwrap();
    assert_eq!(report.retries, 2);
    assert_eq!(report.failed.len(), 1);
    assert!(
        matches!(report.failed[0].error, FileError::SourceChanged { .. }),
        "{}",
        report.failed[0]
    );
    assert!(!s.dst().join("big").exists());
    assert_eq!(fs::read(s.dst().join("other")).unwrap(), b"other");
    assert!(temps_in(s.dst()).is_empty());
}

#[test]
fn a_source_whose_status_changes_while_copied_is_retried_and_copied_as_it_is_now() {
    // A chmod moves only the ctime: size and mtime stay, the bytes read are all there.
    let mut opts = CopyOptions::default();
    opts.retry.tries = 3;
    opts.retry.first_delay = Duration::from_millis(1);
    let s = Scratch::new();
    let big = s.src().join("big");
    write(&big, &content(3, 600_000), 0o644, 1_500_000_000);
    let chmod = |path: &Path| fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    let meddler = Meddler { meddle: chmod, ..Meddler::new(&big, 1) };
    let report = copy(s.src(), s.dst(), &opts, &meddler).unwrap();
    ok(&report);
    assert_eq!(report.retries, 1, "{:?}", meddler.retries.lock().unwrap());
    assert_eq!(fs::metadata(s.dst().join("big")).unwrap().mode() & 0o7777, 0o600);
    assert_same_tree(&s.src(), &s.dst());
}

/// Sets the cancel flag once `after` files are done.
struct CancelAfter {
    flag: Arc<AtomicBool>,
    after: u64,
    done: AtomicU64,
}

impl CopyProgress for CancelAfter {
    fn file_done(&self, _rel: &Path, _len: u64, _outcome: FileOutcome) {
        if self.done.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn cancelling_stops_new_work_removes_temps_and_returns_a_partial_report() {
    let s = Scratch::new();
    for f in 0..200u64 {
        write(
            &s.src().join(format!("d{}/f{f:03}", f % 4)),
            &content(f, 5000),
            0o644,
            1_500_000_000,
        );
    }
    let flag = Arc::new(AtomicBool::new(false));
    let mut opts = CopyOptions::default();
    opts.cancel = Some(flag.clone());
    opts.jobs = Some(2);
    let progress = CancelAfter { flag: flag.clone(), after: 10, done: AtomicU64::new(0) };
    let report = copy(s.src(), s.dst(), &opts, &progress).unwrap();
    assert!(report.interrupted);
    assert!(!report.is_success());
    assert!(report.failed.is_empty(), "{:#?}", report.failed);
    assert!(report.copied >= 10 && report.copied < 200, "copied {}", report.copied);
    assert_eq!(report.copied + report.not_attempted, 200);
    assert!(temps_in(s.dst()).is_empty(), "temps left: {:?}", temps_in(s.dst()));
    // Every destination file present is complete.
    for entry in walkdir::WalkDir::new(s.dst())
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
    {
        let rel = entry.path().strip_prefix(s.dst()).unwrap();
        assert_eq!(fs::read(entry.path()).unwrap(), fs::read(s.src().join(rel)).unwrap());
    }

    flag.store(false, Ordering::SeqCst);
    let rest = copy(s.src(), s.dst(), &opts, &()).unwrap();
    ok(&rest);
    assert_eq!(rest.copied + rest.skipped, 200);
    assert_eq!(rest.skipped, report.copied);
    assert_same_tree(&s.src(), &s.dst());
}

/// A tree of files, symlinks and hard links in four directories: 60 entries.
fn mixed_tree(s: &Scratch) -> u64 {
    for f in 0..40u64 {
        write(
            &s.src().join(format!("d{}/f{f:02}", f % 4)),
            &content(f, 3000),
            0o644,
            1_500_000_000,
        );
    }
    for l in 0..10u64 {
        symlink(format!("f{l:02}"), s.src().join(format!("d{}/link{l}", l % 4))).unwrap();
        let first = s.src().join(format!("d{}/f{l:02}", l % 4));
        fs::hard_link(first, s.src().join(format!("d{}/zz-hard{l}", (l + 1) % 4))).unwrap();
    }
    60
}

/// Counts the `file_done` events, and cancels after `after` of them (never with 0).
struct CountAndCancel {
    cancel: CancelAfter,
    events: AtomicU64,
}

impl CopyProgress for CountAndCancel {
    fn file_done(&self, rel: &Path, len: u64, outcome: FileOutcome) {
        self.events.fetch_add(1, Ordering::SeqCst);
        self.cancel.file_done(rel, len, outcome);
    }
}

#[test]
fn every_entry_gets_exactly_one_outcome_even_when_cancelled() {
    for (after, cancelled_before) in [(0, true), (5, false), (25, false), (0, false)] {
        let s = Scratch::new();
        let total = mixed_tree(&s);
        let flag = Arc::new(AtomicBool::new(cancelled_before));
        let mut opts = CopyOptions::default();
        opts.cancel = Some(flag.clone());
        opts.jobs = Some(2);
        let progress = CountAndCancel {
            cancel: CancelAfter { flag: flag.clone(), after, done: AtomicU64::new(0) },
            events: AtomicU64::new(0),
        };
        let r = copy(s.src(), s.dst(), &opts, &progress).unwrap();
        assert!(r.failed.is_empty(), "{:#?}", r.failed);
        let given = r.copied + r.links + r.hard_links + r.skipped + r.failed.len() as u64;
        let case = format!("cancelled after {after} (before the start: {cancelled_before}): {r}");
        assert_eq!(given + r.not_attempted, total, "{case}");
        assert_eq!(progress.events.load(Ordering::SeqCst), given, "{case}");
        if cancelled_before {
            assert_eq!(r.not_attempted, total, "{case}");
        }
        if after == 0 && !cancelled_before {
            ok(&r);
            assert_eq!((r.copied, r.links, r.hard_links), (40, 10, 10));
        }
    }
}

#[test]
fn leftover_temps_of_a_killed_copy_are_removed_by_the_next_copy() {
    let s = Scratch::new();
    fs::create_dir_all(s.src().join("d")).unwrap();
    fs::write(s.src().join("d/a"), b"a").unwrap();
    fs::create_dir_all(s.dst().join("d")).unwrap();
    let orphan = s.dst().join("d/.a.atomic-Ab3dE6gH9j.tmp");
    fs::write(&orphan, b"half of a").unwrap();
    let orphan_link = s.dst().join("d/.l.atomic-Zz3dE6gH9j.tmp");
    symlink("t", &orphan_link).unwrap();
    let unrelated = s.dst().join("d/notes.tmp");
    fs::write(&unrelated, b"mine").unwrap();

    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&report);
    assert!(!orphan.exists() && fs::symlink_metadata(&orphan_link).is_err());
    assert!(unrelated.exists());
    assert!(report.warnings.contains(&Warning::RemovedTemp { path: orphan }));
    assert!(report.warnings.contains(&Warning::RemovedTemp { path: orphan_link }));
}

#[test]
fn files_named_like_temps_in_the_source_are_skipped_with_a_warning() {
    let s = Scratch::new();
    let temp = s.src().join(".x.atomic-Ab3dE6gH9j.tmp");
    fs::write(&temp, b"someone's work in progress").unwrap();
    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&report);
    assert_eq!(report.copied, 0);
    assert_eq!(report.warnings, [Warning::SkippedTemp { path: temp }]);
}

#[derive(Default)]
struct Recorder {
    planned: Mutex<Option<PlanTotals>>,
    done: Mutex<Vec<(PathBuf, u64, FileOutcome)>>,
    dirs: Mutex<Vec<(PathBuf, DirStats)>>,
    bytes: AtomicU64,
}

impl CopyProgress for Recorder {
    fn planned(&self, totals: &PlanTotals) {
        *self.planned.lock().unwrap() = Some(*totals);
    }
    fn bytes_copied(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn file_done(&self, rel: &Path, len: u64, outcome: FileOutcome) {
        self.done.lock().unwrap().push((rel.to_owned(), len, outcome));
    }
    fn dir_done(&self, rel: &Path, stats: &DirStats) {
        self.dirs.lock().unwrap().push((rel.to_owned(), *stats));
    }
}

#[test]
fn progress_reports_totals_files_bytes_and_directories() {
    let s = Scratch::new();
    fs::create_dir_all(s.src().join("x/y")).unwrap();
    fs::write(s.src().join("x/a"), vec![0; 300_000]).unwrap();
    fs::write(s.src().join("x/y/b"), b"bb").unwrap();
    symlink("a", s.src().join("x/l")).unwrap();
    let recorder = Recorder::default();
    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &recorder).unwrap();
    ok(&report);
    let totals = recorder.planned.lock().unwrap().unwrap();
    assert_eq!((totals.dirs, totals.files, totals.links, totals.bytes), (3, 2, 1, 300_002));
    assert_eq!(recorder.bytes.load(Ordering::Relaxed), 300_002);
    let mut done = recorder.done.lock().unwrap().clone();
    done.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        done,
        [
            (PathBuf::from("x/a"), 300_000, FileOutcome::Copied),
            (PathBuf::from("x/l"), 0, FileOutcome::Copied),
            (PathBuf::from("x/y/b"), 2, FileOutcome::Copied),
        ]
    );
    let mut dirs = recorder.dirs.lock().unwrap().clone();
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(dirs.len(), 3);
    let (dir, stats) = &dirs[1];
    assert_eq!(dir, Path::new("x"));
    assert_eq!((stats.copied, stats.skipped, stats.failed, stats.bytes), (2, 0, 0, 300_000));
}

#[test]
fn a_destination_given_as_a_symlink_to_a_directory_is_followed() {
    let s = Scratch::new();
    fs::write(s.src().join("a"), b"a").unwrap();
    fs::create_dir(s.root.join("real")).unwrap();
    symlink(s.root.join("real"), s.dst()).unwrap();
    ok(&copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap());
    assert_eq!(fs::read(s.root.join("real/a")).unwrap(), b"a");
    assert!(fs::symlink_metadata(s.dst()).unwrap().file_type().is_symlink());
}

#[test]
fn bad_roots_are_refused() {
    let s = Scratch::new();
    fs::write(s.root.join("file"), b"").unwrap();
    let opts = CopyOptions::default();
    assert!(matches!(plan(s.root.join("missing"), s.dst(), &opts), Err(Error::Inspect { .. })));
    assert!(matches!(
        plan(s.root.join("file"), s.dst(), &opts),
        Err(Error::SourceNotDirectory { .. })
    ));
    assert!(matches!(
        plan(s.src(), s.root.join("file"), &opts),
        Err(Error::DestinationNotDirectory { .. })
    ));
}

#[test]
fn sparse_files_stay_sparse_where_the_destination_keeps_holes() {
    use std::os::unix::fs::FileExt;
    let s = Scratch::new();
    let path = s.src().join("disk.img");
    let file = fs::File::create(&path).unwrap();
    // 64 MiB: a header, an island of data in the middle, and a trailing hole.
    file.set_len(64 << 20).unwrap();
    file.write_all_at(b"boot sector", 0).unwrap();
    file.write_all_at(&content(5, 100_000), 32 << 20).unwrap();
    drop(file);
    let allocated = |p: &Path| fs::metadata(p).unwrap().blocks() * 512;
    assert!(allocated(&path) < 1 << 20, "the source is sparse on this file system");

    let plan = folder_copier::plan(s.src(), s.dst(), &CopyOptions::default()).unwrap();
    assert!(plan.totals().needed < 1 << 20, "space counted allocated: {:?}", plan.totals());
    let report = execute(plan, &CopyOptions::default(), &()).unwrap();
    ok(&report);
    let copied = s.dst().join("disk.img");
    assert!(allocated(&copied) < 1 << 20, "the copy holds {} bytes", allocated(&copied));
    assert_eq!(fs::read(&copied).unwrap(), fs::read(&path).unwrap());
}

#[test]
fn hard_links_inside_the_source_stay_hard_links_and_a_rerun_keeps_them() {
    let s = Scratch::new();
    fs::write(s.src().join("game.rom"), content(1, 50_000)).unwrap();
    fs::create_dir(s.src().join("favourites")).unwrap();
    fs::hard_link(s.src().join("game.rom"), s.src().join("favourites/game.rom")).unwrap();
    fs::hard_link(s.src().join("game.rom"), s.src().join("z-alias.rom")).unwrap();
    let inode = |p: PathBuf| fs::metadata(p).unwrap().ino();

    let plan = folder_copier::plan(s.src(), s.dst(), &CopyOptions::default()).unwrap();
    assert!(plan.totals().needed < 2 * 50_000, "one copy's space: {:?}", plan.totals());
    let report = execute(plan, &CopyOptions::default(), &()).unwrap();
    ok(&report);
    assert_eq!((report.copied, report.hard_links), (1, 2));
    let first = inode(s.dst().join("game.rom"));
    assert_eq!(inode(s.dst().join("favourites/game.rom")), first);
    assert_eq!(inode(s.dst().join("z-alias.rom")), first);
    assert_eq!(fs::read(s.dst().join("z-alias.rom")).unwrap(), content(1, 50_000));

    let again = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&again);
    assert_eq!((again.copied, again.hard_links, again.skipped), (0, 0, 3));
    assert_eq!(inode(s.dst().join("z-alias.rom")), first);
}

#[test]
fn extended_attributes_are_copied_where_the_destination_takes_them() {
    let s = Scratch::new();
    let path = s.src().join("game.rom");
    fs::write(&path, b"rom").unwrap();
    let flags = rustix::fs::XattrFlags::empty();
    rustix::fs::setxattr(&path, "user.region", b"PAL", flags).unwrap();
    rustix::fs::setxattr(&path, "user.comment", b"", flags).unwrap();
    let report = copy(s.src(), s.dst(), &CopyOptions::default(), &()).unwrap();
    ok(&report);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let dst = s.dst().join("game.rom");
    let mut value = [0u8; 16];
    let len = rustix::fs::getxattr(&dst, "user.region", &mut value[..]).unwrap();
    assert_eq!(&value[..len], b"PAL");
    assert_eq!(rustix::fs::getxattr(&dst, "user.comment", &mut value[..]).unwrap(), 0);
}

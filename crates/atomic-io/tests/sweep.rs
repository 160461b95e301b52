//! `sweep` removes orphaned temps and only those: never a live writer's temp (same process, other
//! open file description), never a file outside the pattern, never through a symlink.
//! The other-process case is in tests/tests/atomic_write.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use atomic_io::sweep::{SweepOptions, sweep};
use atomic_io::{AtomicFile, WriteOptions};

fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    (dir, path)
}

const ORPHAN: &str = ".model.bin.atomic-Zz09aB12cD.tmp";

#[test]
fn removes_orphans_recursively_and_nothing_else() {
    let (_t, dir) = tempdir();
    fs::create_dir_all(dir.join("a/b")).unwrap();
    let orphans = [dir.join(ORPHAN), dir.join("a/b").join(ORPHAN)];
    for orphan in &orphans {
        fs::write(orphan, b"partial").unwrap();
    }
    let keep = [
        "model.bin",
        ".model.bin.tmp",
        "model.bin.atomic-Zz09aB12cD.tmp",
        ".model.bin.atomic-short.tmp",
        "a/.x.atomic-Zz09aB12cD.tmp~",
    ];
    for name in keep {
        fs::write(dir.join(name), b"keep").unwrap();
    }
    // A directory named like a temp is not a temp file.
    fs::create_dir(dir.join("a").join(ORPHAN)).unwrap();

    let report = sweep(&dir, &SweepOptions::default()).unwrap();
    let removed: Vec<PathBuf> = orphans.to_vec();
    let mut got = report.removed.clone();
    got.sort();
    let mut want = removed.clone();
    want.sort();
    assert_eq!(got, want);
    assert!(report.busy.is_empty() && report.errors.is_empty(), "{report:?}");
    for orphan in &orphans {
        assert!(!orphan.exists());
    }
    for name in keep {
        assert!(dir.join(name).exists(), "{name} must not be touched");
    }
    assert!(dir.join("a").join(ORPHAN).is_dir());
}

#[test]
fn a_live_writers_temp_is_busy_and_survives() {
    let (_t, dir) = tempdir();
    let mut live = AtomicFile::create(dir.join("live"), &WriteOptions::default()).unwrap();
    live.append(b"in progress").unwrap();
    let report = sweep(&dir, &SweepOptions::default()).unwrap();
    assert_eq!(report.busy, [live.temp_path()]);
    assert!(report.removed.is_empty());
    assert!(live.temp_path().exists());
    // The writer is unharmed and commits.
    live.append(b", done").unwrap();
    live.commit().unwrap();
    assert_eq!(fs::read(dir.join("live")).unwrap(), b"in progress, done");
}

#[test]
fn a_staged_temp_is_still_busy() {
    let (_t, dir) = tempdir();
    let staged =
        AtomicFile::create(dir.join("s"), &WriteOptions::default()).unwrap().stage().unwrap();
    let report = sweep(&dir, &SweepOptions::default()).unwrap();
    assert_eq!(report.busy, [staged.temp_path()]);
    staged.commit().unwrap();
}

#[test]
fn dry_run_lists_but_removes_nothing() {
    let (_t, dir) = tempdir();
    fs::write(dir.join(ORPHAN), b"x").unwrap();
    let mut dry_run = SweepOptions::default();
    dry_run.dry_run = true;
    let report = sweep(&dir, &dry_run).unwrap();
    assert_eq!(report.removed, [dir.join(ORPHAN)]);
    assert!(dir.join(ORPHAN).exists());
}

#[test]
fn symlinks_are_never_followed() {
    let (_t, dir) = tempdir();
    let (_o, outside) = tempdir();
    fs::write(outside.join(ORPHAN), b"elsewhere").unwrap();
    symlink(&outside, dir.join("link-to-dir")).unwrap();
    // A symlink named like a temp, pointing at an orphan-looking file.
    symlink(outside.join(ORPHAN), dir.join(".y.atomic-Zz09aB12cD.tmp")).unwrap();
    let report = sweep(&dir, &SweepOptions::default()).unwrap();
    assert!(report.removed.is_empty() && report.errors.is_empty(), "{report:?}");
    assert!(outside.join(ORPHAN).exists());
    assert!(fs::symlink_metadata(dir.join(".y.atomic-Zz09aB12cD.tmp")).is_ok());
}

#[test]
fn an_unreadable_root_is_an_error() {
    let (_t, dir) = tempdir();
    let err = sweep(dir.join("missing"), &SweepOptions::default()).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

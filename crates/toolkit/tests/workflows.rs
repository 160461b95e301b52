//! The composed workflows with real files and threads: one fetch among racers, a corrupt cache
//! rebuilt once, a bad download never visible; a copy sealed only when complete; status files
//! written by one instance at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use std::path::{Path, PathBuf};
use toolkit::prelude::*;
use toolkit::{CheckError, Error, dir_lock, folder_copier, snapshot_verify};

fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    (dir, path)
}

fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| toolkit::atomic_io::is_temp_name(n))
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
}

const WEIGHTS: &[u8] = b"the one true set of model weights, 0123456789";

#[test]
fn racing_threads_fetch_once_and_all_see_the_verified_file() {
    let (_d, dir) = tempdir();
    let target = dir.join("model.bin");
    let expected = hash_bytes(Algo::Xxh128, WEIGHTS);
    let fetches = AtomicUsize::new(0);
    let outcomes: Vec<OnceOutcome> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    fetch_once(
                        &target,
                        expected,
                        &OnceOptions::default(),
                        |f| {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            // A slow download, so the others really wait.
                            std::thread::sleep(std::time::Duration::from_millis(100));
                            f.append(WEIGHTS)
                        },
                        &(),
                    )
                    .unwrap()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| o.produced()).count(), 1, "{outcomes:?}");
    assert_eq!(std::fs::read(&target).unwrap(), WEIGHTS);
    assert!(temps(&dir).is_empty());
}

#[test]
fn a_corrupt_cached_file_is_fetched_again_once_and_reported() {
    let (_d, dir) = tempdir();
    let target = dir.join("model.bin");
    std::fs::write(&target, b"half a download").unwrap();
    let expected = hash_bytes(Algo::Xxh128, WEIGHTS);
    let outcome =
        fetch_once(&target, expected, &OnceOptions::default(), |f| f.append(WEIGHTS), &()).unwrap();
    match outcome {
        OnceOutcome::Rebuilt { reason } => assert!(reason.contains("expected"), "{reason}"),
        other => panic!("not reported as rebuilt: {other:?}"),
    }
    assert_eq!(std::fs::read(&target).unwrap(), WEIGHTS);
}

#[test]
fn a_download_with_the_wrong_digest_is_an_error_naming_both_and_never_the_target() {
    let (_d, dir) = tempdir();
    let target = dir.join("model.bin");
    let expected = hash_bytes(Algo::Xxh128, WEIGHTS);
    let got = hash_bytes(Algo::Xxh128, b"a different file");
    let err = fetch_once(
        &target,
        expected,
        &OnceOptions::default(),
        |f| f.append(b"a different file"),
        &(),
    )
    .unwrap_err();
    let Error::DirLock(dir_lock::Error::Verify { source, .. }) = &err else { panic!("{err:?}") };
    assert!(err.to_string().contains("model.bin"), "{err}");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(
        cause,
        Some(format!("xxh128 is {got}, expected {expected}")),
        "said once, as the cause"
    );
    // The verifier's error comes back typed, not as words.
    let check = source.downcast_ref::<CheckError>();
    assert!(
        matches!(check, Some(CheckError::Mismatch { found, .. }) if *found == got),
        "{check:?}"
    );
    assert!(!target.exists());
    assert!(temps(&dir).is_empty(), "{:?}", temps(&dir));
}

/// Counts what a copy and a seal tell.
#[derive(Default)]
struct Told {
    copied: AtomicUsize,
    sealed: AtomicUsize,
}

impl CopyProgress for Told {
    fn file_done(&self, _rel: &Path, _len: u64, _outcome: folder_copier::FileOutcome) {
        self.copied.fetch_add(1, Ordering::SeqCst);
    }
}

impl snapshot_verify::SnapshotProgress for Told {
    fn file_done(&self, _rel: &Path, _len: u64) {
        self.sealed.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn copy_and_seal_seals_a_complete_copy_that_verify_then_checks() {
    let (_d, root) = tempdir();
    for (rel, len) in [("snes/a.sfc", 300_000usize), ("snes/b.sfc", 10), ("gba/c.gba", 70_000)] {
        let path = root.join("roms").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![len as u8; len]).unwrap();
    }
    let told = Told::default();
    let done =
        copy_and_seal(root.join("roms"), root.join("backup"), &CopyOptions::default(), &told)
            .unwrap();
    assert_eq!((done.copy.copied, done.sealed.files), (3, 3));
    // One progress follows both: three files copied, then each hashed by both passes of the seal.
    let copied = told.copied.load(Ordering::SeqCst);
    assert_eq!((copied, told.sealed.load(Ordering::SeqCst)), (3, 6));
    assert_eq!(done.sealed.manifest, root.join("backup/manifest.xxh128"));
    let report = verify(root.join("backup"), &VerifyOptions::default(), &()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    std::fs::write(root.join("backup/gba/c.gba"), vec![0u8; 70_000]).unwrap();
    let report = verify(root.join("backup"), &VerifyOptions::default(), &()).unwrap();
    assert_eq!(report.problems.len(), 1);
    assert!(report.problems[0].path.ends_with("gba/c.gba"), "{:?}", report.problems);
}

#[test]
fn an_interrupted_copy_is_not_sealed() {
    let (_d, root) = tempdir();
    std::fs::create_dir_all(root.join("roms")).unwrap();
    std::fs::write(root.join("roms/a.bin"), b"aaaa").unwrap();
    let cancel = Arc::new(AtomicBool::new(true));
    let mut opts = CopyOptions::default();
    opts.cancel = Some(cancel);
    let err = copy_and_seal(root.join("roms"), root.join("backup"), &opts, &()).unwrap_err();
    match &err {
        Error::CopyIncomplete { dst, report } => {
            assert_eq!(*dst, root.join("backup"));
            assert!(report.interrupted);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("was not sealed"), "{err}");
    assert!(!root.join("backup/manifest.xxh128").exists());
}

#[test]
fn one_status_writer_at_a_time_and_its_files_are_whole() {
    let (_d, dir) = tempdir();
    let pid = dir.join("trainer.pid");
    let status = StatusWriter::acquire(&pid, &dir).unwrap();
    let second = StatusWriter::acquire(&pid, &dir).unwrap_err();
    assert!(matches!(second, Error::DirLock(dir_lock::Error::AlreadyRunning { .. })), "{second:?}");
    for step in 0..20 {
        status.write("status.json", format!("{{\"step\": {step}}}").as_bytes()).unwrap();
    }
    assert_eq!(std::fs::read_to_string(dir.join("status.json")).unwrap(), "{\"step\": 19}");
    assert!(temps(&dir).is_empty());
    drop(status);
    // The next instance starts once the first is gone.
    StatusWriter::acquire(&pid, &dir).unwrap();
}

#[test]
fn the_pid_file_is_never_replaced_as_a_status_file() {
    let (_d, dir) = tempdir();
    let status = StatusWriter::acquire(dir.join("d.pid"), &dir).unwrap();
    let err = status.write("d.pid", b"{}").unwrap_err();
    assert!(matches!(err, Error::StatusIsPidFile { .. }), "{err:?}");
    std::os::unix::fs::symlink("d.pid", dir.join("status.json")).unwrap();
    let err = status.write("status.json", b"{}").unwrap_err();
    assert!(err.to_string().contains("is the instance's pid file"), "{err}");
    // The lock still holds: a second instance is refused.
    assert!(StatusWriter::acquire(dir.join("d.pid"), &dir).is_err());
}

/// A status name is a name inside the writer's directory: `..`, an absolute path or an empty name
/// would write somewhere else (or nowhere), so each is refused, naming the name and why, and
/// nothing is written anywhere.
#[test]
fn status_names_that_leave_the_directory_are_refused() {
    let (_d, root) = tempdir();
    let run = root.join("run");
    std::fs::create_dir(&run).unwrap();
    let status = StatusWriter::acquire(run.join("d.pid"), &run).unwrap();
    let outside = root.join("outside.json");
    let refused = [
        ("../outside.json", "it holds `..`, which can lead out of the directory"),
        ("sub/../../outside.json", "it holds `..`, which can lead out of the directory"),
        (outside.to_str().unwrap(), "it is an absolute path"),
        ("", "it names no file in the directory"),
        (".", "it names no file in the directory"),
    ];
    for (name, reason) in refused {
        let err = status.write(name, b"{}").unwrap_err();
        assert!(
            matches!(&err, Error::StatusName { name: n, .. } if n.as_os_str() == name),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("refused the status file name {}: {reason}", toolkit::names::shown(name))
        );
    }
    assert!(!outside.exists());
    let left: Vec<_> = std::fs::read_dir(&run).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["d.pid"]);
    // A name in a subdirectory that stays inside is still a status file.
    std::fs::create_dir(run.join("sub")).unwrap();
    status.write("sub/./progress.json", b"{}").unwrap();
    assert_eq!(std::fs::read(run.join("sub/progress.json")).unwrap(), b"{}");
}

/// Names that are not UTF-8 (a Latin-1 folder holding UTF-8 files, names that differ only in an
/// invalid byte) go through every workflow exactly like UTF-8 ones.
#[test]
fn names_that_are_not_utf8_go_through_every_workflow() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let os = |b: &'static [u8]| OsStr::from_bytes(b);
    let (_d, root) = tempdir();

    // copy_and_seal: everything copied, the seal lists every name, verify passes.
    let src = root.join(os(b"roms-\xe9"));
    std::fs::create_dir_all(src.join(os(b"dir\xe9"))).unwrap();
    let files: [&[u8]; 5] =
        [b"caf\xe9.nes", b"\xff\xfe", b"x\xe9", b"x\xe8", "dir\u{e9}-utf8.nes".as_bytes()];
    for name in files {
        std::fs::write(src.join(os(name)), name).unwrap();
    }
    std::fs::write(src.join(os(b"dir\xe9/inner.nes")), b"inner").unwrap();
    let dst = root.join(os(b"card-\xff"));
    let mirrored = copy_and_seal(&src, &dst, &CopyOptions::default(), &()).unwrap();
    assert_eq!(mirrored.copy.copied, 6, "{:?}", mirrored.copy);
    let manifest = std::fs::read(mirrored.sealed.manifest).unwrap();
    for name in [&b"  caf\xe9.nes\n"[..], b"  \xff\xfe\n", b"  dir\xe9/inner.nes\n"] {
        assert!(manifest.windows(name.len()).any(|w| w == name), "{}", manifest.escape_ascii());
    }
    assert!(verify(&dst, &VerifyOptions::default(), &()).unwrap().is_ok());

    // fetch_once: the target, its temp and its sidecar lock all carry the odd name.
    let target = root.join(os(b"model-\xe9.bin"));
    let expected = hash_bytes(Algo::Xxh128, WEIGHTS);
    let outcome =
        fetch_once(&target, expected, &OnceOptions::default(), |f| f.append(WEIGHTS), &()).unwrap();
    assert!(outcome.produced());
    assert_eq!(std::fs::read(&target).unwrap(), WEIGHTS);
    assert!(root.join(os(b"model-\xe9.bin.lock")).exists());

    // StatusWriter: pid file and status files with odd names.
    let run = root.join(os(b"run-\xfe"));
    std::fs::create_dir(&run).unwrap();
    let status = StatusWriter::acquire(run.join(os(b"d\xe9.pid")), &run).unwrap();
    status.write(os(b"status-\xe9.json"), b"{}").unwrap();
    assert_eq!(std::fs::read(run.join(os(b"status-\xe9.json"))).unwrap(), b"{}");
    let err = status.write(os(b"d\xe9.pid"), b"{}").unwrap_err();
    assert!(err.to_string().contains(r"d\xe9.pid is the instance's pid file"), "{err}");
    assert!(temps(&run).is_empty() && temps(&root).is_empty());
}

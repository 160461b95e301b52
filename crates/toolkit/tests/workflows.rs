//! The composed workflows with real files and threads: one fetch among racers, a corrupt cache
//! rebuilt once, a bad download never visible; a copy sealed only when complete; status files
//! written by one instance at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use camino::{Utf8Path, Utf8PathBuf};
use toolkit::prelude::*;
use toolkit::{Error, dir_lock};

fn tempdir() -> (tempfile::TempDir, Utf8PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
    (dir, path)
}

fn temps(dir: &Utf8Path) -> Vec<String> {
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
                    fetch_once(&target, expected, &OnceOptions::default(), |f| {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        // A slow download, so the others really wait.
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        f.append(WEIGHTS)
                    })
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
        fetch_once(&target, expected, &OnceOptions::default(), |f| f.append(WEIGHTS)).unwrap();
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
    let err =
        fetch_once(&target, expected, &OnceOptions::default(), |f| f.append(b"a different file"))
            .unwrap_err();
    assert!(matches!(err, Error::DirLock(dir_lock::Error::Verify { .. })), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("model.bin"), "{msg}");
    assert!(msg.contains(&format!("xxh128 is {got}, expected {expected}")), "{msg}");
    assert!(!target.exists());
    assert!(temps(&dir).is_empty(), "{:?}", temps(&dir));
}

#[test]
fn copy_and_seal_seals_a_complete_copy_that_verify_then_checks() {
    let (_d, root) = tempdir();
    for (rel, len) in [("snes/a.sfc", 300_000usize), ("snes/b.sfc", 10), ("gba/c.gba", 70_000)] {
        let path = root.join("roms").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![len as u8; len]).unwrap();
    }
    let done = copy_and_seal(root.join("roms"), root.join("backup"), &CopyOptions::default(), &())
        .unwrap();
    assert_eq!((done.copy.copied, done.sealed.files), (3, 3));
    assert_eq!(done.sealed.manifest, root.join("backup/manifest.xxh128"));
    let report = verify(root.join("backup"), &VerifyOptions::default()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    std::fs::write(root.join("backup/gba/c.gba"), vec![0u8; 70_000]).unwrap();
    let report = verify(root.join("backup"), &VerifyOptions::default()).unwrap();
    assert_eq!(report.problems.len(), 1);
    assert!(report.problems[0].path.ends_with("gba/c.gba"), "{:?}", report.problems);
}

#[test]
fn an_interrupted_copy_is_not_sealed() {
    let (_d, root) = tempdir();
    std::fs::create_dir_all(root.join("roms")).unwrap();
    std::fs::write(root.join("roms/a.bin"), b"aaaa").unwrap();
    let cancel = Arc::new(AtomicBool::new(true));
    let opts = CopyOptions { cancel: Some(cancel), ..CopyOptions::default() };
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

//! The reusable crash-injection harness (`e2e::crash`) over every verb that writes: each is
//! SIGKILLed at every N-th occurrence of each file-system system call (read/write within a
//! budget), and in a second campaign made to fail there with ENOSPC, EIO and EACCES; then its
//! invariant is checked and `sweep` must leave no temp. (`copy` has its own file, `copy_crash.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::fs;
use std::path::Path;

use e2e::crash::{CrashTest, inject_errors, run};
use e2e::{require_tool, xtask};

/// `write`: the target is the old or the complete new content.
fn write_case(work: &Path, body: &mut dyn FnMut(&CrashTest<'_>)) {
    let new: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let stdin = work.join("new");
    fs::write(&stdin, &new).unwrap();
    body(&CrashTest {
        name: "write",
        setup: &|dir: &Path| {
            fs::write(dir.join("target"), b"old content").unwrap();
            let mut cmd = xtask();
            cmd.arg("write").arg(dir.join("target"));
            cmd
        },
        check: &|dir: &Path| match fs::read(dir.join("target")) {
            Ok(bytes) if bytes == b"old content" || bytes == new => Ok(()),
            Ok(bytes) => Err(format!("target has {} bytes: neither old nor new", bytes.len())),
            Err(e) => Err(format!("target unreadable: {e}")),
        },
        stdin: Some(&stdin),
        ..CrashTest::default()
    });
}

#[test]
fn write_survives_a_kill_anywhere() {
    let Some(strace) = require_tool("strace") else { return };
    let work = tempfile::tempdir().unwrap();
    write_case(work.path(), &mut |test| {
        run(&strace, &work.path().join("runs"), test).assert_clean("write", 20);
    });
}

#[test]
fn write_reports_every_injected_error_and_keeps_the_old_content() {
    let Some(strace) = require_tool("strace") else { return };
    let work = tempfile::tempdir().unwrap();
    write_case(work.path(), &mut |test| {
        inject_errors(&strace, &work.path().join("runs"), test, 3).assert_clean("write");
    });
}

/// `seal`: the manifest is absent, or complete and verifying.
fn seal_case(body: &mut dyn FnMut(&CrashTest<'_>)) {
    body(&CrashTest {
        name: "seal",
        setup: &|dir: &Path| {
            let snap = dir.join("snap");
            fs::create_dir_all(snap.join("weights")).unwrap();
            fs::write(snap.join("config.json"), br#"{"lr": 0.001}"#).unwrap();
            for i in 0..3u8 {
                fs::write(snap.join(format!("weights/part{i}.bin")), vec![i + 1; 300_000]).unwrap();
            }
            let mut cmd = xtask();
            cmd.arg("seal").arg(&snap);
            cmd
        },
        check: &|dir: &Path| {
            let snap = dir.join("snap");
            if !snap.join("manifest.xxh128").exists() {
                return Ok(());
            }
            let opts = snapshot_verify::VerifyOptions::default();
            let snap = snap.to_str().expect("temp dirs are UTF-8 here");
            match snapshot_verify::verify(snap, &opts, &()) {
                Ok(report) if report.problems.is_empty() => Ok(()),
                Ok(report) => Err(format!("manifest present but problems: {:?}", report.problems)),
                Err(e) => Err(format!("manifest present but invalid: {e}")),
            }
        },
        ..CrashTest::default()
    });
}

#[test]
fn seal_survives_a_kill_anywhere() {
    let Some(strace) = require_tool("strace") else { return };
    let work = tempfile::tempdir().unwrap();
    seal_case(&mut |test| run(&strace, &work.path().join("runs"), test).assert_clean("seal", 20));
}

#[test]
fn seal_reports_every_injected_error_and_never_leaves_a_bad_manifest() {
    let Some(strace) = require_tool("strace") else { return };
    let work = tempfile::tempdir().unwrap();
    seal_case(&mut |test| {
        inject_errors(&strace, &work.path().join("runs"), test, 3).assert_clean("seal");
    });
}

/// `once`: the target is absent or the complete verified artifact, also when a bad target is being
/// rebuilt (then: the old bad bytes or the artifact). The producer is a child (`cp`), so a kill
/// may land in it: `once` must then exit 1 with the target untouched.
fn once_case(work: &Path, old: Option<&[u8]>, body: &mut dyn FnMut(&CrashTest<'_>)) {
    let artifact: Vec<u8> = (0..600_000u32).map(|i| (i % 241) as u8).collect();
    let source = work.join("artifact");
    fs::write(&source, &artifact).unwrap();
    let digest = checksum::hash_bytes(checksum::Algo::Xxh128, &artifact).to_string();
    body(&CrashTest {
        name: "once",
        setup: &|dir: &Path| {
            if let Some(old) = old {
                fs::write(dir.join("model.bin"), old).unwrap();
            }
            let mut cmd = xtask();
            cmd.current_dir(dir).args(["once", "--xxh128", &digest, "model.bin", "--"]);
            cmd.arg("cp").arg(&source).arg("{}");
            cmd
        },
        check: &|dir: &Path| match fs::read(dir.join("model.bin")) {
            Ok(bytes) if bytes == artifact || Some(bytes.as_slice()) == old => Ok(()),
            Ok(bytes) => Err(format!("model.bin has {} bytes: neither old nor new", bytes.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && old.is_none() => Ok(()),
            Err(e) => Err(format!("model.bin unreadable: {e}")),
        },
        clean_failure: Some((1, " exited with ")),
        ..CrashTest::default()
    });
}

const CORRUPT: &[u8] = b"corrupt cached model";

#[test]
fn once_survives_a_kill_anywhere() {
    let Some(strace) = require_tool("strace") else { return };
    let work = tempfile::tempdir().unwrap();
    for (label, old) in [("fresh", None), ("rebuild", Some(CORRUPT))] {
        once_case(work.path(), old, &mut |test| {
            let summary = run(&strace, &work.path().join(label), test);
            summary.assert_clean(&format!("once ({label})"), 20);
        });
    }
}

#[test]
fn once_reports_every_injected_error_and_never_leaves_a_partial_target() {
    let Some(strace) = require_tool("strace") else { return };
    let work = tempfile::tempdir().unwrap();
    for (label, old) in [("fresh", None), ("rebuild", Some(CORRUPT))] {
        once_case(work.path(), old, &mut |test| {
            let summary = inject_errors(&strace, &work.path().join(label), test, 2);
            summary.assert_clean(&format!("once ({label})"));
        });
    }
}

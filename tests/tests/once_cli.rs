//! `cargo xtask once` with many real processes: exactly one production, everyone sees the same
//! bytes, a killed producer is taken over, a timed-out waiter leaves the producer alone. Producers
//! that must be mid-write say "started" on stdout and then wait on their stdin, which the test
//! controls; waiters are known to be waiting when they say so on stderr. No sleeps synchronise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::io::Read;
use std::path::Path;
use std::process::Command;

use e2e::once::{
    kill_and_take_over, race_to_agree, start_paused_producer, start_waiter, stderr_of,
};
use e2e::{assert_exit, wait_within, xtask};

fn once(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = in_dir(dir);
    cmd.arg("once").args(args);
    cmd
}

/// The CLI, run in `dir`.
fn in_dir(dir: &Path) -> Command {
    let mut cmd = xtask();
    cmd.current_dir(dir);
    cmd
}

/// Names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn eight_processes_one_production_per_round_same_bytes_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let target = format!("artifact-{round}");
        let count = dir.path().join(format!("count-{round}"));
        // The producer is slow (the workload, not synchronisation) and writes random bytes, so two
        // productions could never look alike. Each process then prints the bytes it sees.
        let producer = format!(
            "echo $$ >> {count}; head -c 200000 /dev/urandom > {{}}; sleep 0.2",
            count = count.display()
        );
        let script =
            format!("\"$0\" once {target} -- sh -c '{producer}' && od -An -tx1 {target} | cksum");
        race_to_agree(&script, e2e::xtask_path().as_os_str(), &[dir.path(); 8], round);
        let productions = std::fs::read_to_string(&count).unwrap().lines().count();
        assert_eq!(productions, 1, "round {round}: exactly one production");
        assert_eq!(std::fs::metadata(dir.path().join(&target)).unwrap().len(), 200_000);
    }
    assert!(!entries(dir.path()).iter().any(|n| n.ends_with(".tmp")), "no temp left behind");
}

#[test]
fn a_producer_killed_mid_write_is_taken_over_and_the_target_is_never_partial() {
    let dir = tempfile::tempdir().unwrap();
    let mut producer = start_paused_producer(in_dir(dir.path()), &[], "T", "half-", "never");
    assert!(!dir.path().join("T").exists(), "nothing visible while the producer writes");
    let (mut waiter, mut err, said) =
        start_waiter(&mut once(dir.path(), &["T", "--", "sh", "-c", "printf complete > {}"]));
    assert!(
        said.starts_with(&format!("waiting for lock on T.lock, held by pid {}", producer.id())),
        "{said}"
    );
    kill_and_take_over(&mut producer, &mut waiter, &mut err, "T");
    assert_eq!(std::fs::read_to_string(dir.path().join("T")).unwrap(), "complete");
}

#[test]
fn a_waiter_that_times_out_names_the_holder_and_leaves_its_result_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut producer =
        start_paused_producer(in_dir(dir.path()), &[], "model.bin", "first-", "second");
    let out =
        once(dir.path(), &["--timeout", "0.5", "model.bin", "--", "sh", "-c", "printf x > {}"])
            .output()
            .unwrap();
    assert_exit(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("held by pid {} (", producer.id())), "{err}");
    assert!(err.contains("model.bin not touched"), "{err}");
    assert!(!dir.path().join("model.bin").exists());
    drop(producer.stdin.take()); // let the producer finish
    assert_eq!(wait_within(&mut producer), Some(0), "{}", stderr_of(&mut producer));
    assert_eq!(std::fs::read_to_string(dir.path().join("model.bin")).unwrap(), "first-second");
    // And now everyone reuses it.
    let out =
        once(dir.path(), &["--timeout", "0.5", "model.bin", "--", "false", "{}"]).output().unwrap();
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("reused model.bin"));
}

#[test]
fn a_waiter_reuses_what_the_producer_made() {
    let dir = tempfile::tempdir().unwrap();
    let mut producer = start_paused_producer(in_dir(dir.path()), &[], "T", "made-", "by-one");
    let (mut waiter, mut err, said) =
        start_waiter(&mut once(dir.path(), &["T", "--", "sh", "-c", "printf other > {}"]));
    assert!(said.starts_with("waiting for lock on T.lock"), "{said}");
    drop(producer.stdin.take());
    assert_eq!(wait_within(&mut producer), Some(0));
    assert_eq!(wait_within(&mut waiter), Some(0));
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(rest.contains(&format!("waited for the producer by pid {}", producer.id())), "{rest}");
    assert!(rest.contains("reused T"), "{rest}");
    assert_eq!(std::fs::read_to_string(dir.path().join("T")).unwrap(), "made-by-one");
}

#[test]
fn verification_failures_leave_the_target_untouched_and_a_bad_target_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ref"), b"expected bytes").unwrap();
    let hash = xtask().args(["hash", "ref"]).current_dir(d).output().unwrap();
    assert_exit(&hash, 0);
    let hex = String::from_utf8_lossy(&hash.stdout).split_whitespace().next().unwrap().to_owned();

    // Wrong content for the hash: exit 1, nothing at the target, no temp left.
    let out =
        once(d, &["--xxh128", &hex, "T", "--", "sh", "-c", "printf wrong > {}"]).output().unwrap();
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed verification"));
    // An empty result and a failing command are refused too.
    assert_exit(&once(d, &["T", "--", "true", "{}"]).output().unwrap(), 1);
    assert_exit(&once(d, &["T", "--", "sh", "-c", "printf x > {}; exit 3"]).output().unwrap(), 1);
    assert_eq!(entries(d), ["T.lock", "ref"]);

    // A target that fails verification is rebuilt once.
    std::fs::write(d.join("T"), b"stale").unwrap();
    let out = once(d, &["--xxh128", &hex, "T", "--", "cp", "ref", "{}"]).output().unwrap();
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("rebuilt"), "{out:?}");
    assert_eq!(std::fs::read(d.join("T")).unwrap(), b"expected bytes");
    let out = once(d, &["--xxh128", &hex, "T", "--", "false", "{}"]).output().unwrap();
    assert_exit(&out, 0);

    // Usage errors.
    assert_exit(&once(d, &["T2", "--", "true"]).output().unwrap(), 2);
    assert_exit(&once(d, &["--xxh128", "zz", "T2", "--", "true", "{}"]).output().unwrap(), 2);
}

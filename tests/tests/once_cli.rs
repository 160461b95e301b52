//! `cargo xtask once` with many real processes: exactly one production, everyone sees the same
//! bytes, a killed producer is taken over, a timed-out waiter leaves the producer alone. Producers
//! that must be mid-write say "started" on stdout and then wait on their stdin, which the test
//! controls; waiters are known to be waiting when they say so on stderr. No sleeps synchronise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};

use e2e::{assert_exit, read_line_within, wait_within, xtask};

fn once(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = xtask();
    cmd.arg("once").args(args).current_dir(dir);
    cmd
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
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
    let x = e2e::xtask_path().to_str().unwrap().to_owned();
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
        let mut children: Vec<Child> = (0..8)
            .map(|_| {
                Command::new("sh")
                    .args(["-c", &script, &x])
                    .current_dir(dir.path())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut seen = Vec::new();
        for child in &mut children {
            let err = stderr_of(child);
            assert_eq!(wait_within(child), Some(0), "round {round}: {err}");
            let mut out = String::new();
            child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            seen.push(out);
        }
        let productions = std::fs::read_to_string(&count).unwrap().lines().count();
        assert_eq!(productions, 1, "round {round}: exactly one production");
        assert!(seen.iter().all(|s| *s == seen[0] && !s.is_empty()), "round {round}: {seen:?}");
        assert_eq!(std::fs::metadata(dir.path().join(&target)).unwrap().len(), 200_000);
    }
    assert!(!entries(dir.path()).iter().any(|n| n.ends_with(".tmp")), "no temp left behind");
}

/// Starts a producer of `target` that writes `first` into its temp, says "started", waits for its
/// stdin to close, then appends `rest`. It runs in its own process group so the test can kill the
/// whole of it.
fn start_paused_producer(
    dir: &Path,
    target: &str,
    extra: &[&str],
    first: &str,
    rest: &str,
) -> Child {
    let producer =
        format!("printf {first} > {{}}; echo started; read x || :; printf {rest} >> {{}}");
    let mut args = extra.to_vec();
    args.extend([target, "--", "sh", "-c", &producer]);
    let mut child = once(dir, &args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    assert_eq!(read_line_within(child.stdout.take().unwrap()), "started\n");
    child
}

/// Starts `once ARGS` with stderr piped and returns it with the first line it said (a waiter
/// says "waiting for lock on ..." once it waits).
fn start_waiter(dir: &Path, args: &[&str]) -> (Child, BufReader<ChildStderr>, String) {
    let mut waiter = once(dir, args).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(waiter.stderr.take().unwrap());
    let mut said = String::new();
    err.read_line(&mut said).unwrap();
    (waiter, err, said)
}

#[test]
fn a_producer_killed_mid_write_is_taken_over_and_the_target_is_never_partial() {
    let dir = tempfile::tempdir().unwrap();
    let mut producer = start_paused_producer(dir.path(), "T", &[], "half-", "never");
    assert!(!dir.path().join("T").exists(), "nothing visible while the producer writes");
    let (mut waiter, mut err, said) =
        start_waiter(dir.path(), &["T", "--", "sh", "-c", "printf complete > {}"]);
    assert!(
        said.starts_with(&format!("waiting for lock on T.lock, held by pid {}", producer.id())),
        "{said}"
    );
    let pgid = format!("-{}", producer.id());
    assert!(Command::new("kill").args(["-KILL", "--", &pgid]).status().unwrap().success());
    producer.wait().unwrap();
    assert_eq!(wait_within(&mut waiter), Some(0));
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("produced T"), "{rest}");
    assert_eq!(std::fs::read_to_string(dir.path().join("T")).unwrap(), "complete");
}

#[test]
fn a_waiter_that_times_out_names_the_holder_and_leaves_its_result_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut producer = start_paused_producer(dir.path(), "model.bin", &[], "first-", "second");
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
    let mut producer = start_paused_producer(dir.path(), "T", &[], "made-", "by-one");
    let (mut waiter, mut err, said) =
        start_waiter(dir.path(), &["T", "--", "sh", "-c", "printf other > {}"]);
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

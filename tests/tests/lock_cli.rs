//! `cargo xtask lock` against util-linux `flock(1)` and against itself, in real processes. Holders
//! run `sh -c 'echo ready; read x || :'`: the test reads "ready" before acting and closes the holder's
//! stdin to release it. Waiters are known to be waiting when they say so on stderr. No sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::io::Read;
use std::process::{Child, ChildStdin, Command, Stdio};

use e2e::{assert_exit, read_line_within, require_tool, wait_within, xtask};

const HOLD: &str = "echo ready; read x || :";

/// A process holding a lock until its stdin is closed.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Holder {
    /// Spawns `cmd` (which runs `sh -c HOLD`) and waits until it prints "ready".
    fn start(cmd: &mut Command) -> Holder {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let stdin = child.stdin.take();
        let line = read_line_within(child.stdout.take().unwrap());
        assert_eq!(line, "ready\n", "the holder did not start");
        Holder { child, stdin }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes its stdin and returns its exit code.
    fn release(mut self) -> Option<i32> {
        drop(self.stdin.take());
        wait_within(&mut self.child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn xtask_lock(args: &[&str]) -> Command {
    let mut cmd = xtask();
    cmd.arg("lock").args(args);
    cmd
}

fn flock(args: &[&str]) -> Option<Command> {
    let path = require_tool("flock")?;
    let mut cmd = Command::new(path);
    cmd.args(args);
    Some(cmd)
}

#[test]
fn xtask_lock_sees_a_flock1_holder_and_names_it() {
    let Some(mut hold) = flock(&["F", "sh", "-c", HOLD]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::start(hold.current_dir(dir.path()));
    let out =
        xtask_lock(&["--nonblock", "F", "--", "true"]).current_dir(dir.path()).output().unwrap();
    assert_exit(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("held by pid {} (", holder.pid())), "{err}");
    assert!(err.contains("flock F sh -c"), "names the holder's command: {err}");
    assert_eq!(holder.release(), Some(0));
    let out =
        xtask_lock(&["--nonblock", "F", "--", "true"]).current_dir(dir.path()).output().unwrap();
    assert_exit(&out, 0);
}

#[test]
fn flock1_sees_an_xtask_lock_holder() {
    let Some(mut probe) = flock(&["-n", "F", "true"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::start(xtask_lock(&["F", "--", "sh", "-c", HOLD]).current_dir(dir.path()));
    let out = probe.current_dir(dir.path()).output().unwrap();
    assert_exit(&out, 1);
    let out = flock(&["-n", "-s", "F", "true"]).unwrap().current_dir(dir.path()).output().unwrap();
    assert_exit(&out, 1);
    assert_eq!(holder.release(), Some(0));
    let out = probe.output().unwrap();
    assert_exit(&out, 0);
}

#[test]
fn shared_locks_coexist_across_tools_and_exclusive_excludes_them() {
    let Some(mut shared_probe) = flock(&["-n", "-s", "F", "true"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let reader = Holder::start(
        xtask_lock(&["--shared", "F", "--", "sh", "-c", HOLD]).current_dir(dir.path()),
    );
    assert_exit(&shared_probe.current_dir(dir.path()).output().unwrap(), 0);
    let out =
        xtask_lock(&["-s", "-n", "F", "--", "true"]).current_dir(dir.path()).output().unwrap();
    assert_exit(&out, 0);
    let out = xtask_lock(&["-n", "F", "--", "true"]).current_dir(dir.path()).output().unwrap();
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("pid {}", reader.pid())));
    assert_eq!(reader.release(), Some(0));

    let writer = Holder::start(xtask_lock(&["F", "--", "sh", "-c", HOLD]).current_dir(dir.path()));
    assert_exit(&shared_probe.output().unwrap(), 1);
    let out =
        xtask_lock(&["-s", "-n", "F", "--", "true"]).current_dir(dir.path()).output().unwrap();
    assert_exit(&out, 1);
    assert_eq!(writer.release(), Some(0));
}

#[test]
fn a_timed_out_waiter_names_the_holder_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::start(xtask_lock(&["F", "--", "sh", "-c", HOLD]).current_dir(dir.path()));
    let out = xtask_lock(&["--timeout", "0.5", "F", "--", "true"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("waiting for lock on F, held by pid {} (", holder.pid())),
        "{err}"
    );
    assert!(err.contains("gave up waiting for the lock on F"), "{err}");
    assert!(err.contains(" since "), "the toolkit's holder says since when: {err}");
    // The holder still holds it.
    let out = xtask_lock(&["-n", "F", "--", "true"]).current_dir(dir.path()).output().unwrap();
    assert_exit(&out, 1);
    assert_eq!(holder.release(), Some(0));
    assert!(dir.path().join("F").exists(), "the lock file is never deleted");
}

#[test]
fn a_waiter_gets_the_lock_when_the_holder_is_sigkilled() {
    let dir = tempfile::tempdir().unwrap();
    // -o: the command does not inherit the lock, so the lock process is its only holder.
    let holder =
        Holder::start(xtask_lock(&["-o", "F", "--", "sh", "-c", HOLD]).current_dir(dir.path()));
    let mut waiter = xtask_lock(&["F", "--", "sh", "-c", "echo got"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let said = read_line_within(waiter.stderr.take().unwrap());
    assert!(
        said.starts_with(&format!("waiting for lock on F, held by pid {}", holder.pid())),
        "{said}"
    );
    let status = Command::new("kill").args(["-KILL", &holder.pid().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(wait_within(&mut waiter), Some(0), "the waiter took over within the deadline");
    let mut out = String::new();
    waiter.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out, "got\n");
}

#[test]
fn flock1_forms_give_flock1_exit_codes_and_output() {
    let Some(flock_bin) = require_tool("flock") else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = |program: &std::path::Path, args: &[&str]| {
        let mut cmd = Command::new(program);
        if program == e2e::xtask_path() {
            cmd.arg("lock");
        }
        cmd.args(args).current_dir(dir.path()).env("SHELL", "/bin/sh").output().unwrap()
    };
    let both = |args: &[&str]| {
        let theirs = run(&flock_bin, args);
        let ours = run(e2e::xtask_path(), args);
        assert_eq!(
            (ours.status.code(), String::from_utf8_lossy(&ours.stdout)),
            (theirs.status.code(), String::from_utf8_lossy(&theirs.stdout)),
            "lock {args:?} (ours, left) differs from flock {args:?}; our stderr: {}",
            String::from_utf8_lossy(&ours.stderr)
        );
        ours.status.code()
    };
    assert_eq!(both(&["F", "sh", "-c", "echo \"$0 $1\"; exit 7", "a", "b"]), Some(7));
    assert_eq!(both(&["F", "-c", "echo shell; exit 3"]), Some(3));
    assert_eq!(both(&["-x", "F", "true"]), Some(0));
    assert_eq!(both(&["-s", "F", "true"]), Some(0));
    assert_eq!(both(&["-o", "-n", "F", "true"]), Some(0));
    assert_eq!(both(&["-n", "-w", "5", "F", "true"]), Some(0));
    assert_eq!(both(&["-E", "0", "--exclusive", "--nonblock", "F", "true"]), Some(0));
    assert_eq!(both(&["F", "sh", "-c", "kill -9 $$"]), Some(128 + 9));

    // While an exclusive holder holds F: -n, -w and -E, exclusive and shared.
    let mut hold = Command::new(&flock_bin);
    let holder = Holder::start(hold.args(["F", "sh", "-c", HOLD]).current_dir(dir.path()));
    assert_eq!(both(&["-n", "F", "echo never"]), Some(1));
    assert_eq!(both(&["-s", "-n", "F", "echo never"]), Some(1));
    assert_eq!(both(&["-n", "-E", "42", "F", "echo never"]), Some(42));
    assert_eq!(both(&["-w", "0.05", "F", "echo never"]), Some(1));
    assert_eq!(both(&["-w", "0", "-E", "9", "F", "-c", "echo never"]), Some(9));
    assert_eq!(holder.release(), Some(0));

    // Where the toolkit's contract differs from flock(1)'s sysexits codes (64, 66, 69).
    let ours = |args: &[&str]| run(e2e::xtask_path(), args);
    assert_exit(&ours(&["F"]), 2);
    assert_exit(&ours(&["F", "-c", "true", "extra"]), 2);
    assert_exit(&ours(&["-E", "256", "F", "true"]), 2);
    assert_exit(&ours(&["--timeout", "-1", "F", "true"]), 2);
    assert_exit(&ours(&["missing-dir/F", "true"]), 2);
    assert_exit(&ours(&["F", "/nonexistent/command"]), 127);
    // And where it accepts more: `--` before the command.
    assert_exit(&ours(&["F", "--", "sh", "-c", "exit 5"]), 5);
}

#[test]
fn the_command_keeps_the_lock_as_with_flock1_unless_o() {
    let Some(flock_bin) = require_tool("flock") else { return };
    let dir = tempfile::tempdir().unwrap();
    let probe = || {
        let mut cmd = Command::new(&flock_bin);
        cmd.args(["-n", "F", "true"]).current_dir(dir.path()).status().unwrap().code()
    };
    for (tool, close, still_held) in [
        (&*flock_bin, false, Some(1)),
        (e2e::xtask_path(), false, Some(1)),
        (&*flock_bin, true, Some(0)),
        (e2e::xtask_path(), true, Some(0)),
    ] {
        let mut cmd = Command::new(tool);
        if tool == e2e::xtask_path() {
            cmd.arg("lock");
        }
        if close {
            cmd.arg("-o");
        }
        let mut holder = Holder::start(cmd.args(["F", "sh", "-c", HOLD]).current_dir(dir.path()));
        // Kill the lock process only; its command (sh) lives on with the descriptor or without.
        holder.child.kill().unwrap();
        holder.child.wait().unwrap();
        assert_eq!(probe(), still_held, "{tool:?} -o={close}: the command holds the lock?");
        drop(holder.stdin.take()); // sh reads EOF and ends
        let mut wait = Command::new(&flock_bin);
        let freed = wait.args(["-w", "30", "F", "true"]).current_dir(dir.path()).status().unwrap();
        assert_eq!(freed.code(), Some(0), "freed when the command ended");
    }
}

#[test]
fn a_file_system_without_flock_is_named_and_nothing_runs_unlocked() {
    // ENOLCK is what an NFS mount without a lock manager returns; strace makes every flock fail so.
    let Some(strace) = require_tool("strace") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(strace)
        .env_remove("LD_LIBRARY_PATH")
        .args([
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=flock",
            "-e",
            "inject=flock:error=ENOLCK",
        ])
        .arg(e2e::xtask_path())
        .args(["lock", "F", "--", "touch", "ran"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot lock F: the file system (") && err.contains("does not support flock"),
        "{err}"
    );
    assert!(!dir.path().join("ran").exists(), "the command ran without the lock");
}

#[test]
fn an_interrupted_flock_is_retried_not_reported() {
    // EINTR on the first, non-blocking try and then on the blocking wait (strace's `when=1..2`):
    // both must be retried, and the command run under the lock.
    let Some(strace) = require_tool("strace") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(&strace)
        .env_remove("LD_LIBRARY_PATH")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=flock"])
        .args(["-e", "inject=flock:error=EINTR:when=1..2"])
        .arg(e2e::xtask_path())
        .args(["lock", "F", "--", "touch", "ran"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(dir.path().join("ran").exists(), "an EINTR stopped the command");
}

/// A file's bytes and mtime, after setting the mtime to an old time so that any write would show.
fn aged_fingerprint(path: &std::path::Path) -> (Vec<u8>, std::time::SystemTime) {
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(old).unwrap();
    fingerprint(path)
}

fn fingerprint(path: &std::path::Path) -> (Vec<u8>, std::time::SystemTime) {
    (std::fs::read(path).unwrap(), std::fs::metadata(path).unwrap().modified().unwrap())
}

#[test]
fn locking_a_data_file_a_script_or_a_symlink_leaves_every_byte_and_the_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.txt");
    std::fs::write(&data, "important data").unwrap();
    let data_before = aged_fingerprint(&data);
    let out = xtask_lock(&["data.txt", "--", "true"]).current_dir(dir.path()).output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(fingerprint(&data), data_before, "the locked data file is untouched");

    // flock(1)'s own pattern: a script that locks itself and runs under the lock.
    let script = dir.path().join("job.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         [ \"$JOB_LOCKED\" = 1 ] || JOB_LOCKED=1 exec \"$LOCK_BIN\" lock -n \"$0\" -- \"$0\" \"$@\"\n\
         echo \"ran under the lock: $*\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script_before = aged_fingerprint(&script);
    let out = Command::new(&script)
        .arg("x")
        .env("LOCK_BIN", e2e::xtask_path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran under the lock: x\n");
    assert_eq!(fingerprint(&script), script_before, "the script that locked itself is intact");

    // A symlink planted at the lock path: the lock is taken through it, nothing written through it.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink("victim", dir.path().join("x.lock")).unwrap();
    let victim_before = aged_fingerprint(&victim);
    let out = xtask_lock(&["x.lock", "--", "true"]).current_dir(dir.path()).output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(fingerprint(&victim), victim_before, "nothing written through the symlink");
    assert!(dir.path().join("x.lock").is_symlink());
}

/// A holder `/proc/locks` cannot see (here: one outside the waiter's pid namespace, as a holder on
/// another host of a network file system is) is named from the holder information in the lock
/// file, and the message says so.
#[test]
fn a_holder_proc_locks_cannot_see_is_named_from_the_lock_file() {
    let Some(unshare) = require_tool("unshare") else { return };
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::start(xtask_lock(&["F", "sh", "-c", HOLD]).current_dir(dir.path()));
    let out = Command::new(unshare)
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(e2e::xtask_path())
        .args(["lock", "-n", "F", "true"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("held by pid {} (", holder.pid())), "{err}");
    assert!(err.contains(", as written in the lock file (not seen in /proc/locks)"), "{err}");
    assert_eq!(holder.release(), Some(0));
}

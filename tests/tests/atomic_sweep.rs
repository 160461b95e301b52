//! `cargo xtask sweep` against writers in other processes: a writer paused mid-write is reported
//! busy and left alone (and still commits afterwards); once it is killed, its temp is removed.
//! Also: SIGINT or SIGTERM during `cargo xtask write` never touch the target, and leave only a temp
//! that `sweep` removes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{assert_exit, xtask};

/// A `cargo xtask write` paused mid-write: it has read `first` from its stdin (which stays open)
/// and written it to its temp file.
struct PausedWriter {
    child: Child,
    stdin: ChildStdin,
    temp: PathBuf,
}

fn spawn_paused_writer(target: &Path, first: &[u8]) -> PausedWriter {
    let mut child = xtask()
        .arg("write")
        .arg(target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(first).unwrap();
    stdin.flush().unwrap();
    // Wait (bounded) until its temp file holds what we sent: it is then created, locked, written.
    let dir = target.parent().unwrap();
    let prefix = format!(".{}.atomic-", target.file_name().unwrap().to_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let temp = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).find(|p| {
            p.file_name().unwrap().to_str().unwrap().starts_with(&prefix)
                && fs::metadata(p).is_ok_and(|m| m.len() == first.len() as u64)
        });
        if let Some(temp) = temp {
            return PausedWriter { child, stdin, temp };
        }
        assert!(Instant::now() < deadline, "the writer never wrote its temp file");
        assert!(child.try_wait().unwrap().is_none(), "the writer exited early");
        std::thread::sleep(Duration::from_millis(10)); // polling a condition, bounded above
    }
}

fn sweep(dir: &Path, flags: &[&str]) -> String {
    let out = xtask().arg("sweep").args(flags).arg(dir).output().unwrap();
    assert_exit(&out, 0);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_live_writers_temp_is_busy_and_its_writer_unharmed_until_it_dies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("survivor"), b"old survivor").unwrap();
    fs::write(dir.join("victim"), b"old victim").unwrap();
    let mut survivor = spawn_paused_writer(&dir.join("survivor"), b"first half, ");
    let mut victim = spawn_paused_writer(&dir.join("victim"), &[b'v'; 4096]);

    for flags in [&["--dry-run"][..], &[]] {
        let out = sweep(dir, flags);
        for temp in [&survivor.temp, &victim.temp] {
            assert!(out.contains(&format!("busy {}", temp.display())), "{flags:?}: {out}");
            assert!(temp.exists(), "sweep {flags:?} removed a live writer's temp");
        }
        assert!(!out.contains("remove"), "{flags:?}: {out}");
    }

    // The survivor finishes normally after the sweeps.
    survivor.stdin.write_all(b"second half").unwrap();
    drop(survivor.stdin);
    assert_exit(&survivor.child.wait_with_output().unwrap(), 0);
    assert_eq!(fs::read(dir.join("survivor")).unwrap(), b"first half, second half");

    // The victim dies mid-write: its lock dies with it, and the next sweep removes its temp.
    victim.child.kill().unwrap(); // SIGKILL
    let status = victim.child.wait().unwrap();
    assert_eq!(status.signal(), Some(9));
    drop(victim.stdin);
    assert!(victim.temp.exists());
    assert_eq!(sweep(dir, &["--dry-run"]), format!("would remove {}\n", victim.temp.display()));
    assert!(victim.temp.exists(), "--dry-run removed something");
    assert_eq!(sweep(dir, &[]), format!("removed {}\n", victim.temp.display()));
    assert!(!victim.temp.exists());
    assert_eq!(fs::read(dir.join("victim")).unwrap(), b"old victim");
    let mut names: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["survivor", "victim"]);
}

#[test]
fn sigint_or_sigterm_mid_write_remove_the_temp_exit_130_and_never_touch_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let target = dir.join("target");
    for signal in ["INT", "TERM"] {
        fs::write(&target, b"old").unwrap();
        let writer = spawn_paused_writer(&target, &[b'n'; 300_000]);
        // The shell's builtin `kill`: no outside tool needed.
        let status = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {}", writer.child.id())])
            .status()
            .unwrap();
        assert!(status.success());
        let out = writer.child.wait_with_output().unwrap();
        drop(writer.stdin);
        // The handler removes the temp at once and exits 130; nothing is left for sweep.
        assert_exit(&out, 130);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("interrupted by SIG{signal}")), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"old", "SIG{signal} touched the target");
        assert!(!writer.temp.exists(), "SIG{signal} left the temp");
        assert_eq!(sweep(dir, &[]), "");
    }
    let names: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["target"]);
}

#[test]
fn sweep_of_a_missing_directory_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = xtask().arg("sweep").arg(tmp.path().join("missing")).output().unwrap();
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
}

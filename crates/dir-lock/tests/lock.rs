//! Behavioural tests of dir-lock with real lock files and, where a second holder is needed, a real
//! second process (`examples/hold.rs`), synchronised through its stdout ("ready") and stdin (EOF
//! releases). No sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dir_lock::{
    Error, Holder, InstanceGuard, LockFile, LockKind, LockOptions, OnceOptions, OnceOutcome, Wait,
    WaitProgress, holders, produce_once,
};

fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    (dir, path)
}

/// The `hold` example, built once per test binary.
fn hold_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--quiet", "-p", "dir-lock", "--example", "hold"])
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--message-format=json")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("\"compiler-artifact\"") && l.contains("\"executable\":\""))
            .find_map(|l| {
                let start = l.find("\"executable\":\"")? + "\"executable\":\"".len();
                let end = start + l[start..].find('"')?;
                Some(PathBuf::from(&l[start..end]))
            })
            .expect("no executable for the hold example")
    })
}

/// A second process holding a lock until dropped (or killed).
struct Holding {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Holding {
    /// Starts `hold MODE PATH` and waits until it says "ready".
    fn start(mode: &str, path: &Path) -> Holding {
        let mut child = Command::new(hold_bin())
            .arg(mode)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n", "hold {mode} {} did not get its lock", path.display());
        Holding { child, stdin }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn release(mut self) {
        drop(self.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        let _ = self.stdin.take().map(|mut s| s.flush());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const NONBLOCK_X: LockOptions = LockOptions::new(LockKind::Exclusive, Wait::NonBlock);
const NONBLOCK_S: LockOptions = LockOptions::new(LockKind::Shared, Wait::NonBlock);

#[test]
fn same_file_twice_in_one_thread_is_a_typed_error_not_a_deadlock() {
    let (_d, dir) = tempdir();
    let path = dir.join("a.lock");
    let first = LockFile::acquire(&path, &LockOptions::default(), &()).unwrap();
    // Blocking would deadlock if the second flock were attempted.
    let err = LockFile::acquire(&path, &LockOptions::default(), &()).unwrap_err();
    assert!(matches!(err, Error::AlreadyHeldByThisProcess { .. }), "{err}");
    assert!(err.to_string().contains("a.lock"), "{err}");
    // Another name for the same inode is the same lock.
    std::fs::hard_link(&path, dir.join("b.lock")).unwrap();
    let err = LockFile::acquire(dir.join("b.lock"), &NONBLOCK_S, &()).unwrap_err();
    assert!(matches!(err, Error::AlreadyHeldByThisProcess { .. }), "{err}");
    drop(first);
    LockFile::acquire(&path, &LockOptions::default(), &()).unwrap();
}

#[test]
fn another_thread_waits_for_this_processes_lock() {
    let (_d, dir) = tempdir();
    let path = dir.join("t.lock");
    let first = LockFile::acquire(&path, &LockOptions::default(), &()).unwrap();
    let err = std::thread::scope(|s| s.spawn(|| LockFile::acquire(&path, &NONBLOCK_X, &())).join())
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::WouldBlock { .. }), "{err}");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| LockFile::acquire(&path, &LockOptions::default(), &()));
        drop(first);
        waiter.join().unwrap().expect("taken once the other thread released it");
    });
}

#[test]
fn lock_file_is_created_0644_and_not_truncated_before_the_lock_is_held() {
    let (_d, dir) = tempdir();
    let path = dir.join("new.lock");
    drop(LockFile::acquire(&path, &NONBLOCK_S, &()).unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o644, 0, "mode {mode:o}");
    assert!(path.exists(), "a lock file is never deleted");

    // A holder's text survives a waiter that fails to get the lock, and a shared holder.
    let holder = Holding::start("exclusive", &path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(&format!("{}\n", holder.pid())), "{text}");
    LockFile::acquire(&path, &NONBLOCK_X, &()).unwrap_err();
    LockFile::acquire(&path, &NONBLOCK_S, &()).unwrap_err();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    holder.release();
    drop(LockFile::acquire(&path, &NONBLOCK_S, &()).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "shared holders write nothing");
}

#[test]
fn shared_locks_coexist_and_exclusive_excludes_shared() {
    let (_d, dir) = tempdir();
    let path = dir.join("s.lock");
    let reader = Holding::start("shared", &path);
    let mine = LockFile::acquire(&path, &NONBLOCK_S, &()).expect("shared locks coexist");
    match LockFile::acquire(dir.join("s.lock"), &NONBLOCK_X, &()) {
        Err(Error::AlreadyHeldByThisProcess { .. }) => {}
        other => panic!("expected the same-process error, got {other:?}"),
    }
    drop(mine);
    let err = LockFile::acquire(&path, &NONBLOCK_X, &()).unwrap_err();
    let Error::WouldBlock { holders, .. } = &err else { panic!("{err}") };
    assert!(holders.iter().any(|h| h.pid == Some(reader.pid())), "{err}");
    reader.release();

    let writer = Holding::start("exclusive", &path);
    let err = LockFile::acquire(&path, &NONBLOCK_S, &()).unwrap_err();
    assert!(err.to_string().contains(&format!("pid {}", writer.pid())), "{err}");
    writer.release();
    LockFile::acquire(&path, &NONBLOCK_S, &()).unwrap();
}

#[test]
fn holders_names_pid_command_host_and_time() {
    let (_d, dir) = tempdir();
    let path = dir.join("h.lock");
    let holder = Holding::start("exclusive", &path);
    let found = holders(&path).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].pid, Some(holder.pid()));
    assert!(found[0].command.as_deref().unwrap().contains("hold exclusive"), "{found:?}");
    assert!(found[0].host.is_some() && found[0].since.is_some(), "{found:?}");
    assert!(found[0].to_string().contains(" since "), "{}", found[0]);
    holder.release();
    assert_eq!(holders(&path).unwrap(), Vec::<Holder>::new(), "stale text is not a holder");
}

#[test]
fn a_timed_out_waiter_names_the_holder_and_does_not_disturb_it() {
    let (_d, dir) = tempdir();
    let path = dir.join("m.lock");
    let holder = Holding::start("exclusive", &path);
    let before = std::fs::read_to_string(&path).unwrap();
    struct Count(AtomicUsize);
    impl WaitProgress for Count {
        fn waiting(&self, _: &Path, holders: &[Holder], _: Duration) {
            assert!(!holders.is_empty());
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let told = Count(AtomicUsize::new(0));
    let opts = LockOptions::new(LockKind::Exclusive, Wait::Timeout(Duration::from_secs(1)));
    let err = LockFile::acquire(&path, &opts, &told).unwrap_err();
    let Error::Timeout { holders, .. } = &err else { panic!("{err}") };
    assert_eq!(holders[0].pid, Some(holder.pid()));
    assert!(err.to_string().contains(&format!("held by pid {}", holder.pid())), "{err}");
    assert_eq!(told.0.load(Ordering::SeqCst), 1, "told once after the grace period");
    // The holder still holds it, and its text is intact.
    assert_eq!(dir_lock::holders(&path).unwrap()[0].pid, Some(holder.pid()));
    LockFile::acquire(&path, &NONBLOCK_S, &()).unwrap_err();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    holder.release();
}

#[test]
fn a_blocked_waiter_is_told_who_holds_it_and_gets_it_when_the_holder_is_killed() {
    let (_d, dir) = tempdir();
    let path = dir.join("k.lock");
    let holder = std::sync::Mutex::new(Some(Holding::start("exclusive", &path)));
    let pid = holder.lock().unwrap().as_ref().unwrap().pid();
    // The observer kills the holder the first time it is told: no sleep decides anything.
    struct KillOnWait<'a>(&'a std::sync::Mutex<Option<Holding>>, u32);
    impl WaitProgress for KillOnWait<'_> {
        fn waiting(&self, _: &Path, holders: &[Holder], _: Duration) {
            assert_eq!(holders[0].pid, Some(self.1));
            if let Some(h) = self.0.lock().unwrap().take() {
                h.kill();
            }
        }
    }
    let lock =
        LockFile::acquire(&path, &LockOptions::default(), &KillOnWait(&holder, pid)).unwrap();
    assert_eq!(lock.waited_for().unwrap()[0].pid, Some(pid));
    assert!(holder.lock().unwrap().is_none(), "taken only after the holder died");
}

#[test]
fn instance_guard_refuses_a_second_instance_and_admits_one_after_a_kill() {
    let (_d, dir) = tempdir();
    let pid_file = dir.join("daemon.pid");
    let first = Holding::start("instance", &pid_file);
    let err = InstanceGuard::acquire(&pid_file).unwrap_err();
    let Error::AlreadyRunning { pid, .. } = &err else { panic!("{err}") };
    assert_eq!(*pid, Some(first.pid()));
    assert!(
        err.to_string().starts_with(&format!("already running: pid {} (", first.pid())),
        "{err}"
    );
    // A second process is refused too, with the same message.
    let out = Command::new(hold_bin()).arg("instance").arg(&pid_file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("pid {}", first.pid())));

    let stale = first.pid();
    first.kill();
    assert!(std::fs::read_to_string(&pid_file).unwrap().starts_with(&stale.to_string()));
    let _guard = InstanceGuard::acquire(&pid_file).expect("a killed daemon never blocks the next");
    let text = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(text.lines().next(), Some(std::process::id().to_string().as_str()));
}

fn non_empty(p: &Path) -> Result<(), String> {
    match std::fs::metadata(p) {
        Ok(m) if m.len() > 0 => Ok(()),
        Ok(_) => Err("empty".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn produce_once_produces_then_reuses_without_a_lock() {
    let (_d, dir) = tempdir();
    let target = dir.join("model.bin");
    let made =
        produce_once(&target, &OnceOptions::default(), non_empty, |f| f.write_all(b"w"), &())
            .unwrap();
    assert_eq!(made, OnceOutcome::Produced { waited_for: None });
    std::fs::remove_file(dir.join("model.bin.lock")).unwrap();
    let again = produce_once(
        &target,
        &OnceOptions::default(),
        non_empty,
        |_| -> Result<(), String> { panic!("produced twice") },
        &(),
    )
    .unwrap();
    assert_eq!(again, OnceOutcome::Reused);
    assert_eq!(entries(&dir), ["model.bin"], "the fast path takes no lock");
}

#[test]
fn produce_once_rebuilds_an_invalid_target_once() {
    let (_d, dir) = tempdir();
    let target = dir.join("model.bin");
    std::fs::write(&target, b"").unwrap();
    let made =
        produce_once(&target, &OnceOptions::default(), non_empty, |f| f.write_all(b"ok"), &())
            .unwrap();
    assert_eq!(made, OnceOutcome::Rebuilt { reason: "empty".into() });
    assert_eq!(std::fs::read(&target).unwrap(), b"ok");
}

#[test]
fn a_failed_or_unverified_production_leaves_the_target_untouched() {
    let (_d, dir) = tempdir();
    let target = dir.join("model.bin");
    std::fs::write(&target, b"").unwrap();
    // The producer writes something that fails verification: an error, not a loop.
    let err =
        produce_once(&target, &OnceOptions::default(), non_empty, |_| Ok::<_, String>(()), &())
            .unwrap_err();
    assert!(matches!(err, Error::Verify { .. }), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"");
    let err = produce_once(
        &target,
        &OnceOptions::default(),
        non_empty,
        |f| {
            f.write_all(b"partial")?;
            Err::<(), _>(std::io::Error::other("network down"))
        },
        &(),
    )
    .unwrap_err();
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("network down"), "the cause is the source, said once");
    assert!(!err.to_string().contains("network down"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"");
    assert_eq!(entries(&dir), ["model.bin", "model.bin.lock"], "no temp left behind");
}

/// A verifier's own error type, with a cause of its own.
#[derive(Debug)]
struct Rejected {
    cause: std::io::Error,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rejected")
    }
}

impl std::error::Error for Rejected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

#[test]
fn the_verifiers_typed_error_comes_back_as_the_source_and_a_rebuild_keeps_its_causes() {
    let (_d, dir) = tempdir();
    let target = dir.join("model.bin");
    std::fs::write(&target, b"old").unwrap();
    let reject = |_: &Path| Err(Rejected { cause: std::io::Error::other("bad magic") });
    let err = produce_once(&target, &OnceOptions::default(), reject, |f| f.write_all(b"new"), &())
        .unwrap_err();
    let Error::Verify { source, .. } = &err else { panic!("{err}") };
    let rejected = source.downcast_ref::<Rejected>().expect("the verifier's own type");
    assert_eq!(rejected.cause.to_string(), "bad magic");
    assert_eq!(std::fs::read(&target).unwrap(), b"old", "a rejected product is never renamed");

    // An old target the verifier rejects is rebuilt; the outcome keeps the words of the whole chain.
    // (It is checked twice before the lock is taken and after, then the new one once.)
    let checks = AtomicUsize::new(0);
    let reject_old = |_: &Path| {
        if checks.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(Rejected { cause: std::io::Error::other("bad magic") })
        } else {
            Ok(())
        }
    };
    let made =
        produce_once(&target, &OnceOptions::default(), reject_old, |f| f.write_all(b"new"), &())
            .unwrap();
    assert_eq!(made, OnceOutcome::Rebuilt { reason: "rejected: bad magic".into() });
}

#[test]
fn threads_of_one_process_produce_once() {
    let (_d, dir) = tempdir();
    let target = dir.join("shared.bin");
    let produced = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                produce_once(
                    &target,
                    &OnceOptions::default(),
                    non_empty,
                    |f| {
                        produced.fetch_add(1, Ordering::SeqCst);
                        f.write_all(b"once")
                    },
                    &(),
                )
                .unwrap()
            });
        }
    });
    assert_eq!(produced.load(Ordering::SeqCst), 1);
    assert_eq!(std::fs::read(&target).unwrap(), b"once");
}

/// A file's bytes and mtime, set to an old mtime first so that any write would show.
fn fingerprint(path: &Path) -> (Vec<u8>, std::time::SystemTime) {
    (std::fs::read(path).unwrap(), std::fs::symlink_metadata(path).unwrap().modified().unwrap())
}

fn age(path: &Path) {
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(old).unwrap();
}

#[test]
fn locking_a_data_file_a_script_or_a_symlink_to_a_file_changes_no_byte_and_no_mtime() {
    let (_d, dir) = tempdir();
    let data = dir.join("data.txt");
    std::fs::write(&data, "important data").unwrap();
    let script = dir.join("job.sh");
    std::fs::write(&script, "#!/bin/sh\nflock -en \"$0\" \"$0\" \"$@\"\necho working\n").unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "42\n").unwrap(); // looks like a bare pid file, but is not ours
    let link = dir.join("x.lock");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    // Even a file holding only holder information is not written through a symlink.
    let other = dir.join("other.lock");
    std::fs::write(&other, "42\nformat=safefs-lock-holder/1\nhost=h\n").unwrap();
    let other_link = dir.join("y.lock");
    std::os::unix::fs::symlink(&other, &other_link).unwrap();
    for path in [&data, &script, &victim, &other] {
        age(path);
    }
    let before: Vec<_> = [&data, &script, &victim, &other].map(|p| fingerprint(p)).into();
    let link_before = std::fs::read_link(&link).unwrap();

    for path in [&data, &script, &link, &other_link] {
        drop(LockFile::acquire(path, &LockOptions::default(), &()).unwrap());
        drop(LockFile::acquire(path, &NONBLOCK_S, &()).unwrap());
        // Through another process too, and with a waiter turned away meanwhile.
        let other = Holding::start("exclusive", path);
        LockFile::acquire(path, &NONBLOCK_X, &()).unwrap_err();
        other.release();
    }
    let _ = InstanceGuard::acquire(&data).unwrap();

    let after: Vec<_> = [&data, &script, &victim, &other].map(|p| fingerprint(p)).into();
    assert_eq!(after, before, "data file, script and symlink target unchanged, mtime included");
    assert_eq!(std::fs::read_link(&link).unwrap(), link_before, "the symlink stays a symlink");
}

#[test]
fn a_dangling_symlink_is_refused_and_nothing_is_created_through_it() {
    let (_d, dir) = tempdir();
    let link = dir.join("x.lock");
    std::os::unix::fs::symlink(dir.join("planted"), &link).unwrap();
    let err = LockFile::acquire(&link, &LockOptions::default(), &()).unwrap_err();
    assert!(matches!(err, Error::DanglingSymlink { .. }), "{err}");
    assert!(err.to_string().contains("x.lock"), "{err}");
    assert!(!dir.join("planted").exists(), "no file created through the symlink");
}

#[test]
fn holder_information_goes_into_a_created_lock_file_even_when_a_shared_holder_created_it() {
    let (_d, dir) = tempdir();
    let path = dir.join("c.lock");
    drop(LockFile::acquire(&path, &NONBLOCK_S, &()).unwrap());
    let holder = Holding::start("exclusive", &path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(&format!("{}\nformat=safefs-lock-holder/1\n", holder.pid())),
        "{text}"
    );
    holder.release();
}

#[test]
fn a_directory_is_locked_as_flock1_locks_one_and_left_as_it_was() {
    let (_d, dir) = tempdir();
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("keep"), b"x").unwrap();
    // flock(1) locks a directory (`flock DIR cmd`); so does `lock`, writing nothing into it.
    drop(LockFile::acquire(&data, &LockOptions::default(), &()).unwrap());
    drop(LockFile::acquire(&data, &NONBLOCK_X, &()).unwrap());
    assert_eq!(entries(&data), ["keep"]);
}

//! `cargo xtask write` as a whole process: crash injection at every system call that matters
//! (strace `inject=...:signal=SIGKILL`), error injection (ENOSPC, EIO), the fsync/rename order, and
//! the behaviours of the CLI contract (modes, owners, symlinks, no-clobber, refusals, concurrent
//! processes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test
#![allow(clippy::print_stderr)] // the crash test reports how many kill points it tried

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use e2e::{assert_exit, require_tool, xtask, xtask_path};

/// Every system call that creates, writes, syncs, renames, links, removes, locks or closes a file.
/// `?` makes strace accept names the architecture lacks (`open`, `rename`, ... on aarch64).
const TRACED: &str = "trace=?open,?creat,openat,read,write,writev,pwrite64,ftruncate,fsync,\
                      fdatasync,?rename,renameat,renameat2,?link,linkat,?unlink,unlinkat,flock,\
                      fchmod,fchown,close";

/// Content that says who wrote it and how long it is; large enough for several 256 KiB writes.
fn content(tag: &str, len: usize) -> Vec<u8> {
    let mut out = format!("{tag} len {len}\n").into_bytes();
    let mut x: u32 = tag.bytes().fold(0x9e37_79b9_u32, |h, b| h.rotate_left(5) ^ u32::from(b)) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push(x as u8);
    }
    out
}

/// File names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// Runs `cargo xtask write [flags] target` with `stdin_file` as stdin, under `strace` with `strace_args`.
fn traced_write(
    strace: &Path,
    strace_args: &[&str],
    flags: &[&str],
    target: &Path,
    stdin_file: &Path,
) -> Output {
    Command::new(strace)
        // cargo test's LD_LIBRARY_PATH makes the loader probe dozens of paths: kill points that
        // only repeat "killed before main".
        .env_remove("LD_LIBRARY_PATH")
        .args(["-f", "-qq"])
        .args(strace_args)
        .arg(xtask_path())
        .arg("write")
        .args(flags)
        .arg(target)
        .stdin(File::open(stdin_file).unwrap())
        .output()
        .unwrap()
}

/// Runs `cargo xtask sweep dir` and returns the temps it removed; fails on busy temps or errors.
fn sweep_cli(dir: &Path) -> Vec<String> {
    let out = xtask().arg("sweep").arg(dir).output().unwrap();
    assert_exit(&out, 0);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("busy"), "no writer is alive, yet sweep saw a busy temp:\n{stdout}");
    stdout
        .lines()
        .map(|l| {
            let path =
                l.strip_prefix("removed ").unwrap_or_else(|| panic!("unexpected line {l:?}"));
            Path::new(path).file_name().unwrap().to_str().unwrap().to_owned()
        })
        .collect()
}

/// Counts each system call's occurrences in an strace log (`-f` format: `PID name(args) = ret`).
fn count_syscalls(log: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in log.lines() {
        let rest = line.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
        if let Some(paren) = rest.find('(') {
            let name = &rest[..paren];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                *counts.entry(name.to_owned()).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// One crash scenario: the state before, the flags, extra strace injections that hold throughout.
struct Scenario {
    name: &'static str,
    flags: &'static [&'static str],
    /// The target's content before the write; `None`: absent.
    old: Option<Vec<u8>>,
    /// Injections for every run (e.g. force the no-clobber fallback); their syscall is not killed.
    extra: &'static [&'static str],
    skip: &'static [&'static str],
}

#[test]
fn a_kill_at_any_system_call_leaves_the_old_or_new_content_and_only_sweepable_temps() {
    let Some(strace) = require_tool("strace") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let new_path = tmp.path().join("new-content");
    let new = content("new", 600_000); // three 256 KiB writes
    fs::write(&new_path, &new).unwrap();
    let old = content("old", 100_000);
    let scenarios = [
        Scenario {
            name: "replace, durability full",
            flags: &[],
            old: Some(old.clone()),
            extra: &[],
            skip: &[],
        },
        Scenario {
            name: "replace, durability none",
            flags: &["--durability", "none"],
            old: Some(old.clone()),
            extra: &[],
            skip: &[],
        },
        Scenario {
            name: "no-clobber, renameat2",
            flags: &["--no-clobber"],
            old: None,
            extra: &[],
            skip: &[],
        },
        Scenario {
            name: "no-clobber, link+unlink fallback",
            flags: &["--no-clobber"],
            old: None,
            extra: &["-e", "inject=renameat2:error=EINVAL"],
            skip: &["renameat2"],
        },
    ];
    let mut kill_points = 0;
    let mut swept = 0;
    let mut violations = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        let dir = tmp.path().join(format!("s{i}"));
        let target = dir.join("target.bin");
        let reset = || {
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir(&dir).unwrap();
            if let Some(old) = &scenario.old {
                fs::write(&target, old).unwrap();
            }
        };

        // A clean traced run: which system calls, how many times each.
        reset();
        let log = tmp.path().join(format!("clean{i}.log"));
        let mut args = vec!["-o", log.to_str().unwrap(), "-e", TRACED];
        args.extend(scenario.extra);
        let out = traced_write(&strace, &args, scenario.flags, &target, &new_path);
        assert_exit(&out, 0);
        assert_eq!(fs::read(&target).unwrap(), new, "{}: clean run", scenario.name);
        assert_eq!(names(&dir), ["target.bin"], "{}: clean run", scenario.name);
        let counts = count_syscalls(&fs::read_to_string(&log).unwrap());
        eprintln!("crash injection: {}: clean run made {counts:?}", scenario.name);
        for must in ["openat", "write", "flock", "close"] {
            assert!(counts.contains_key(must), "{}: no {must} in {counts:?}", scenario.name);
        }

        for (syscall, &count) in &counts {
            if scenario.skip.contains(&syscall.as_str()) {
                continue;
            }
            for n in 1..=count {
                reset();
                let inject = format!("inject={syscall}:signal=SIGKILL:when={n}");
                let mut args = vec!["-o", "/dev/null", "-e", TRACED, "-e", &inject];
                args.extend(scenario.extra);
                let out = traced_write(&strace, &args, scenario.flags, &target, &new_path);
                kill_points += 1;
                let at = format!("{}: SIGKILL at {syscall} #{n}", scenario.name);
                if out.status.signal() != Some(9) {
                    violations.push(format!("{at}: not killed ({:?})", out.status));
                }
                match (fs::read(&target), &scenario.old) {
                    (Ok(got), _) if got == new => {}
                    (Ok(got), Some(old)) if got == *old => {}
                    (Err(e), None) if e.kind() == std::io::ErrorKind::NotFound => {}
                    (Ok(got), _) => violations
                        .push(format!("{at}: target has {} bytes, neither old nor new", got.len())),
                    (Err(e), _) => violations.push(format!("{at}: target unreadable: {e}")),
                }
                let before: Vec<String> =
                    names(&dir).into_iter().filter(|n| n != "target.bin").collect();
                let removed = sweep_cli(&dir);
                swept += removed.len();
                if removed != before {
                    violations.push(format!("{at}: left {before:?}, sweep removed {removed:?}"));
                }
                let after: Vec<String> =
                    names(&dir).into_iter().filter(|n| n != "target.bin").collect();
                if !after.is_empty() {
                    violations.push(format!("{at}: left after sweep: {after:?}"));
                }
            }
        }
    }
    eprintln!(
        "crash injection: {kill_points} kill points tried in {} scenarios, {swept} leftover temps \
         swept, {} violations",
        scenarios.len(),
        violations.len()
    );
    assert!(kill_points >= 60, "too few kill points ({kill_points}): is strace injecting?");
    assert!(violations.is_empty(), "violations:\n{}", violations.join("\n"));
}

/// A directory holding `target.bin` with old content, and the new content in a file beside it.
struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    target: PathBuf,
    new_path: PathBuf,
    old: Vec<u8>,
    new: Vec<u8>,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    fs::create_dir(&dir).unwrap();
    let target = dir.join("target.bin");
    let old = content("old", 50_000);
    fs::write(&target, &old).unwrap();
    let new = content("new", 600_000);
    let new_path = tmp.path().join("new-content");
    fs::write(&new_path, &new).unwrap();
    Setup { dir, target, new_path, old, new, _tmp: tmp }
}

/// Runs `write` under strace with one error injection and checks the failure is clean.
fn assert_injected_failure(inject: &str, cause: &str, what: &str) {
    let Some(strace) = require_tool("strace") else { return };
    let s = setup();
    let out = traced_write(
        &strace,
        &["-o", "/dev/null", "-e", TRACED, "-e", inject],
        &[],
        &s.target,
        &s.new_path,
    );
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(cause) && stderr.contains(what), "{inject}: unclear error: {stderr}");
    assert!(stderr.contains(s.target.to_str().unwrap()), "{inject}: target not named: {stderr}");
    assert_eq!(fs::read(&s.target).unwrap(), s.old, "{inject}: old target touched");
    assert_eq!(names(&s.dir), ["target.bin"], "{inject}: temp left behind");
}

#[test]
fn enospc_on_write_is_a_clear_error_and_leaves_nothing_behind() {
    // The first writes of a run are the temp's: `write` prints nothing before it fails.
    assert_injected_failure(
        "inject=write:error=ENOSPC:when=1",
        "No space left on device",
        "failed to write",
    );
    assert_injected_failure(
        "inject=write:error=ENOSPC:when=2",
        "No space left on device",
        "failed to write",
    );
}

#[test]
fn eio_on_fsync_is_a_clear_error_and_leaves_nothing_behind() {
    // The first fsync is the temp's, before the rename.
    assert_injected_failure(
        "inject=fsync:error=EIO:when=1",
        "Input/output error",
        "failed to fsync",
    );
}

#[test]
fn eio_on_the_directory_fsync_is_reported_after_the_rename() {
    let Some(strace) = require_tool("strace") else { return };
    let s = setup();
    let args = ["-o", "/dev/null", "-e", TRACED, "-e", "inject=fsync:error=EIO:when=2"];
    let out = traced_write(&strace, &args, &[], &s.target, &s.new_path);
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed to fsync directory") && stderr.contains(s.dir.to_str().unwrap()),
        "{stderr}"
    );
    // The rename happened: the content is complete, only its durability is in doubt.
    assert_eq!(fs::read(&s.target).unwrap(), s.new);
    assert_eq!(names(&s.dir), ["target.bin"]);
}

/// The traced calls of a write, as `(syscall, first argument with -y path decoding)`.
fn traced_order(flags: &[&str]) -> Option<(Setup, Vec<String>)> {
    let strace = require_tool("strace")?;
    let s = setup();
    let log = s.dir.parent().unwrap().join("order.log");
    let args = [
        "-y",
        "-o",
        log.to_str().unwrap(),
        "-e",
        "trace=fsync,fdatasync,?rename,renameat,renameat2,openat",
    ];
    let out = traced_write(&strace, &args, flags, &s.target, &s.new_path);
    assert_exit(&out, 0);
    let lines = fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
    Some((s, lines))
}

#[test]
fn a_durable_write_syncs_the_temp_before_the_rename_and_the_directory_after() {
    let Some((s, lines)) = traced_order(&[]) else { return };
    let dir = s.dir.to_str().unwrap();
    let is_temp = |l: &String| l.contains(".target.bin.atomic-") && l.contains(".tmp>");
    let temp_sync = lines.iter().position(|l| l.contains("fsync(") && is_temp(l));
    let rename = lines.iter().position(|l| l.contains("rename") && l.contains("\"target.bin\""));
    let dir_sync =
        lines.iter().position(|l| l.contains("fsync(") && l.contains(&format!("<{dir}>)")));
    let (Some(temp_sync), Some(rename), Some(dir_sync)) = (temp_sync, rename, dir_sync) else {
        panic!("missing fsync of temp, rename or fsync of {dir}:\n{}", lines.join("\n"));
    };
    assert!(temp_sync < rename && rename < dir_sync, "wrong order:\n{}", lines.join("\n"));
    let syncs = lines.iter().filter(|l| l.contains("sync(")).count();
    assert_eq!(syncs, 2, "exactly two syncs expected:\n{}", lines.join("\n"));
    assert_eq!(fs::read(&s.target).unwrap(), s.new);
}

#[test]
fn durability_old_or_new_syncs_the_temp_before_the_rename_and_never_the_directory() {
    let Some((s, lines)) = traced_order(&["--durability", "old-or-new"]) else { return };
    let is_temp = |l: &String| l.contains(".target.bin.atomic-") && l.contains(".tmp>");
    let temp_sync = lines.iter().position(|l| l.contains("fsync(") && is_temp(l));
    let rename = lines.iter().position(|l| l.contains("rename") && l.contains("\"target.bin\""));
    let (Some(temp_sync), Some(rename)) = (temp_sync, rename) else {
        panic!("missing fsync of temp or rename:\n{}", lines.join("\n"));
    };
    assert!(temp_sync < rename, "wrong order:\n{}", lines.join("\n"));
    let syncs = lines.iter().filter(|l| l.contains("sync(")).count();
    assert_eq!(syncs, 1, "only the temp's sync expected:\n{}", lines.join("\n"));
    assert_eq!(fs::read(&s.target).unwrap(), s.new);
}

#[test]
fn durability_none_never_syncs() {
    let Some((s, lines)) = traced_order(&["--durability", "none"]) else { return };
    assert!(
        !lines.iter().any(|l| l.contains("sync(")),
        "a sync with --durability none:\n{}",
        lines.join("\n")
    );
    assert!(lines.iter().any(|l| l.contains("rename")), "no rename:\n{}", lines.join("\n"));
    assert_eq!(fs::read(&s.target).unwrap(), s.new);
}

/// Runs `cargo xtask write [flags] target` with `input` on stdin.
fn write_cli(flags: &[&str], target: &Path, input: &[u8]) -> Output {
    let mut child = xtask()
        .arg("write")
        .args(flags)
        .arg(target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refused write exits without reading stdin: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

#[test]
fn a_replaced_file_keeps_its_mode_and_owner() {
    let s = setup();
    fs::set_permissions(&s.target, fs::Permissions::from_mode(0o640)).unwrap();
    let owner = if is_root() {
        std::os::unix::fs::chown(&s.target, Some(1234), Some(5678)).unwrap();
        (1234, 5678)
    } else {
        let m = fs::metadata(&s.target).unwrap();
        (m.uid(), m.gid())
    };
    assert_exit(&write_cli(&[], &s.target, &s.new), 0);
    let meta = fs::metadata(&s.target).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), owner);
    assert_eq!(fs::read(&s.target).unwrap(), s.new);
}

#[test]
fn a_new_file_gets_the_mode_of_a_plain_create_not_0600() {
    let s = setup();
    File::create(s.dir.join("plain")).unwrap(); // 0666 & ~umask, by the kernel
    let new = s.dir.join("new");
    assert_exit(&write_cli(&[], &new, b"x"), 0);
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&new), mode(&s.dir.join("plain")));
}

#[test]
fn writing_through_a_symlink_keeps_the_link() {
    let s = setup();
    let link = s.dir.join("link");
    symlink("target.bin", &link).unwrap();
    assert_exit(&write_cli(&[], &link, &s.new), 0);
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(fs::read(&s.target).unwrap(), s.new);
    assert_eq!(names(&s.dir), ["link", "target.bin"]);
}

#[test]
fn no_clobber_refuses_an_existing_target_with_exit_1() {
    let s = setup();
    let out = write_cli(&["--no-clobber"], &s.target, &s.new);
    assert_exit(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already exists") && stderr.contains(s.target.to_str().unwrap()),
        "{stderr}"
    );
    assert_eq!(fs::read(&s.target).unwrap(), s.old);
    assert_eq!(names(&s.dir), ["target.bin"]);
    let fresh = s.dir.join("fresh");
    assert_exit(&write_cli(&["--no-clobber"], &fresh, b"first"), 0);
    assert_eq!(fs::read(&fresh).unwrap(), b"first");
}

#[test]
fn a_directory_target_and_a_missing_parent_are_clear_errors() {
    let s = setup();
    let out = write_cli(&[], &s.dir, b"x");
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is a directory") && stderr.contains(s.dir.to_str().unwrap()),
        "{stderr}"
    );

    let missing = s.dir.join("no/such");
    let out = write_cli(&[], &missing.join("file"), b"x");
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("directory {} does not exist", missing.display())),
        "{stderr}"
    );
    assert_eq!(names(&s.dir), ["target.bin"]);
}

#[test]
fn a_bare_file_name_is_written_in_the_current_directory() {
    let s = setup();
    let mut child = xtask()
        .args(["write", "bare.txt"])
        .current_dir(&s.dir)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"bare").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(fs::read(s.dir.join("bare.txt")).unwrap(), b"bare");
    assert_eq!(names(&s.dir), ["bare.txt", "target.bin"]);
}

fn is_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Checks a refused write into a read-only directory: exit 2, the directory and cause named.
fn assert_read_only_refusal(out: &Output, s: &Setup, cause: &str) {
    assert_exit(out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed to create a temp file in")
            && stderr.contains(s.dir.to_str().unwrap()),
        "{stderr}"
    );
    assert!(stderr.contains(cause), "{stderr}");
    assert_eq!(fs::read(&s.target).unwrap(), s.old);
    assert_eq!(names(&s.dir), ["target.bin"]);
}

#[test]
fn a_read_only_parent_is_a_clear_error() {
    let s = setup();
    if !is_root() {
        fs::set_permissions(&s.dir, fs::Permissions::from_mode(0o555)).unwrap();
        let out = write_cli(&[], &s.target, &s.new);
        fs::set_permissions(&s.dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert_read_only_refusal(&out, &s, "Permission denied");
        return;
    }
    // Root ignores directory permissions, so a chmod proves nothing. Two real read-only cases:
    // 1. a read-only bind mount, in a private mount namespace that dies with the process;
    let Some(unshare) = require_tool("unshare") else { return };
    let script =
        r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" write "$3""#;
    let mut child = Command::new(&unshare)
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(&s.dir)
        .arg(xtask_path())
        .arg(&s.target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(&s.new);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("mount:") || stderr.contains("unshare:") {
        eprintln!("\n!!! SKIPPED read-only bind mount: this root cannot mount ({stderr}) !!!\n");
    } else {
        assert_read_only_refusal(&out, &s, "Read-only file system");
    }
    // 2. an unprivileged user (nobody) and a directory without write permission.
    let Some(setpriv) = require_tool("setpriv") else { return };
    // TempDir is 0700; nobody must be able to reach the directory to be refused by it.
    fs::set_permissions(s._tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&s.dir, fs::Permissions::from_mode(0o555)).unwrap();
    let mut child = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(xtask_path())
        .arg("write")
        .arg(&s.target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(&s.new);
    let out = child.wait_with_output().unwrap();
    fs::set_permissions(&s.dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_read_only_refusal(&out, &s, "Permission denied");
}

#[test]
fn four_processes_writing_one_target_leave_exactly_one_complete_version() {
    const WRITERS: usize = 4;
    const ROUNDS: usize = 4;
    let s = setup();
    let target = s.dir.join("shared");
    let contents: Vec<Vec<u8>> =
        (0..WRITERS).map(|id| content(&format!("writer {id}"), 700_000 + id * 10_007)).collect();
    for round in 0..ROUNDS {
        let mut children: Vec<_> = (0..WRITERS)
            .map(|_| {
                xtask()
                    .args(["write", "--durability", "none"])
                    .arg(&target)
                    .stdin(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Feed all writers chunk by chunk in turn, so their writes interleave, then close all.
        let mut stdins: Vec<_> = children.iter_mut().map(|c| c.stdin.take().unwrap()).collect();
        for chunk in 0..(contents[WRITERS - 1].len() / 65_536 + 1) {
            for (id, stdin) in stdins.iter_mut().enumerate() {
                let c = &contents[id];
                let start = (chunk * 65_536).min(c.len());
                let end = ((chunk + 1) * 65_536).min(c.len());
                stdin.write_all(&c[start..end]).unwrap();
            }
        }
        drop(stdins);
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert_exit(&out, 0);
        }
        let got = fs::read(&target).unwrap();
        let matching = contents.iter().filter(|c| **c == got).count();
        assert_eq!(matching, 1, "round {round}: target is not exactly one writer's content");
        assert_eq!(names(&s.dir), ["shared", "target.bin"], "round {round}: temps left");
    }
}

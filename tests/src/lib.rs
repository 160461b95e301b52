//! Helpers shared by the end-to-end tests in `tests/tests/`: the CLI binary, outside tools that
//! must be present on CI, and small assertions on processes.
//!
//! The tests here run whole processes: `cargo xtask` verbs, util-linux `flock`, `strace` for crash
//! and error injection, and the real `xxhsum`. Each crate's own behavioural tests live in
//! `crates/<name>/tests/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support: a failed step fails the test
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr)] // a skipped test must say so loudly

pub mod card;
pub mod ceph;
pub mod crash;
pub mod once;
pub mod powercut;
pub mod s3proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// A `Command` for the `xtask` binary (the toolkit's CLI), built once per test binary.
///
/// The binary is built with the same profile as the tests, through `cargo build`, so a test run
/// never uses a stale CLI.
///
/// ```no_run
/// let out = e2e::xtask().arg("--version").output().unwrap();
/// assert!(out.status.success());
/// ```
pub fn xtask() -> Command {
    Command::new(xtask_path())
}

/// Path of the freshly built `xtask` binary.
pub fn xtask_path() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build_xtask)
}

fn build_xtask() -> PathBuf {
    build_bin("xtask", "xtask")
}

/// A `Command` for the installable `safefs` binary (the same verbs as `cargo xtask`, plus
/// `completions` and `man`), built once per test binary like [`xtask`].
///
/// ```no_run
/// let out = e2e::safefs().arg("--version").output().unwrap();
/// assert!(out.status.success());
/// ```
pub fn safefs() -> Command {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    Command::new(BIN.get_or_init(|| build_bin("safefs", "safefs")))
}

fn build_bin(package: &str, bin: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--package", package, "--bin", bin])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--message-format=json");
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("failed to run cargo build");
    assert!(
        out.status.success(),
        "cargo build -p {package} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == bin)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo build reported no {bin} executable"))
}

/// The path of an outside tool the test needs, or `None` if it is missing on a developer's machine.
///
/// A missing tool is announced loudly on stderr and the caller skips; when `CI=true` a missing
/// tool fails the test instead, because `.ci/run` installs every tool the tests use.
///
/// ```
/// if let Some(sh) = e2e::require_tool("sh") {
///     assert!(sh.is_absolute());
/// }
/// ```
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.is_file())
    });
    if found.is_none() {
        let on_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!on_ci, "`{name}` is required on CI (.ci/run installs it) but is not on PATH");
        eprintln!("\n!!! SKIPPED: `{name}` is not installed; install it to run this test !!!\n");
    }
    found
}

/// `len` deterministic bytes that differ per `seed` (xorshift), for files whose every byte
/// matters to the test: a copy or a seal that lost or moved one is caught.
///
/// ```
/// assert_eq!(e2e::content(7, 64), e2e::content(7, 64));
/// assert_ne!(e2e::content(7, 64), e2e::content(8, 64));
/// ```
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Panic with the command's stdout and stderr unless it exited with `code`.
///
/// ```
/// let out = std::process::Command::new("sh").args(["-c", "exit 3"]).output().unwrap();
/// e2e::assert_exit(&out, 3);
/// ```
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How long a test waits for another process before it fails (generous: CI machines are loaded).
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// One line from `r`, failing the test if none comes within [`DEADLINE`].
pub fn read_line_within(r: impl std::io::Read + Send + 'static) -> String {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(r).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(DEADLINE).expect("no line within the deadline")
}

/// Waits for `child`, failing the test if it does not end within [`DEADLINE`]; its exit code.
pub fn wait_within(child: &mut std::process::Child) -> Option<i32> {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(start.elapsed() < DEADLINE, "process {} did not end in time", child.id());
        // Polling a condition with a deadline, not sleeping to synchronise.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Runs `cargo xtask ARGS` under `strace -f` (asserting exit 0) and counts its system calls by
/// name: how tests check that nothing is done twice per file, with counts rather than times.
/// `trace` is where strace writes (a path in the test's temp directory).
pub fn count_syscalls(
    strace: &Path,
    trace: &Path,
    args: &[&std::ffi::OsStr],
) -> std::collections::BTreeMap<String, usize> {
    let out = Command::new(strace)
        .args(["-f", "-qq", "-o"])
        .arg(trace)
        .arg(xtask_path())
        .args(args)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let mut counts = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(trace).unwrap().lines() {
        // `PID name(args) = result`; a call interrupted by another thread's is split over an
        // "unfinished" and a "resumed" line, and only the first names the call with its "(".
        let call = line.split_once(' ').map_or(line, |(_, rest)| rest).trim_start();
        if let Some((name, _)) = call.split_once('(')
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            *counts.entry(name.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

/// The status calls (`stat`, `lstat`, `fstat`, `newfstatat`, `statx`) among `counts`.
pub fn status_calls(counts: &std::collections::BTreeMap<String, usize>) -> usize {
    counts
        .iter()
        .filter(|(name, _)| name.contains("stat") && *name != "statfs" && *name != "fstatfs")
        .map(|(_, n)| n)
        .sum()
}

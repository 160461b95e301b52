//! The reusable crash-injection harness: run a CLI verb under `strace`, SIGKILL it at the N-th
//! occurrence of each system call that changes the file system (and of `read`/`write` within a
//! budget), then check the verb's invariant and that `sweep` leaves no temp behind.
//!
//! ```no_run
//! use std::path::Path;
//! use e2e::crash::{CrashTest, run};
//! let summary = run(Path::new("/usr/bin/strace"), Path::new("/tmp/work"), &CrashTest {
//!     name: "write",
//!     setup: &|dir: &Path| {
//!         std::fs::write(dir.join("t"), b"old").unwrap();
//!         let mut cmd = e2e::xtask();
//!         cmd.arg("write").arg(dir.join("t"));
//!         cmd
//!     },
//!     stdin: Some(Path::new("/etc/hostname")),
//!     check: &|dir: &Path| match std::fs::read(dir.join("t")) {
//!         Ok(b) if b == b"old" || b == std::fs::read("/etc/hostname").unwrap() => Ok(()),
//!         other => Err(format!("target is {other:?}")),
//!     },
//!     ..CrashTest::default()
//! });
//! assert!(summary.violations.is_empty());
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// System calls that create, write, sync, rename, link, remove, lock, chmod or close files, and
/// `read`. `?` lets strace accept names the architecture lacks (`open`, `rename` on aarch64).
pub const FS_SYSCALLS: &str = "?open,?creat,openat,openat2,read,write,writev,pwrite64,ftruncate,\
                               fsync,fdatasync,syncfs,?rename,renameat,renameat2,?link,linkat,symlinkat,\
                               ?unlink,unlinkat,mkdirat,flock,fchmod,fchown,utimensat,close";

/// What to crash and how to judge the wreck.
pub struct CrashTest<'a> {
    /// Shown in reports.
    pub name: &'a str,
    /// Prepares a fresh state in the (empty) directory and returns the command to crash.
    pub setup: &'a dyn Fn(&Path) -> Command,
    /// The verb's invariant, checked after every kill: `Err` describes a violation.
    pub check: &'a dyn Fn(&Path) -> Result<(), String>,
    /// The `strace -e trace=` set whose occurrences are kill points.
    pub syscalls: &'a str,
    /// Kill points per system call at most; spread evenly over its occurrences.
    pub budget: usize,
    /// A file every run reads as its stdin (`None`: no stdin).
    pub stdin: Option<&'a Path>,
    /// For verbs that run other programs: the exit code, and the text of the message, with which
    /// the verb reports that its child failed. When `once`'s producer is the one killed (or gets
    /// the injected error), `once` exiting 1 with "`cp` exited with ..." and the target untouched
    /// is the correct answer. Such runs are counted in [`CrashSummary::clean_failures`] (crash
    /// campaign) or as reported (error campaign), and checked like any other.
    pub clean_failure: Option<(i32, &'a str)>,
}

impl Default for CrashTest<'_> {
    fn default() -> Self {
        CrashTest {
            name: "",
            setup: &|_| Command::new("true"),
            check: &|_| Ok(()),
            syscalls: FS_SYSCALLS,
            budget: 12,
            stdin: None,
            clean_failure: None,
        }
    }
}

/// What a crash campaign found.
#[derive(Debug, Default)]
pub struct CrashSummary {
    /// Runs killed at a chosen system call.
    pub kill_points: usize,
    /// Runs that completed because no thread reached the chosen call this time (checked anyway).
    pub missed: usize,
    /// Runs where a child was killed and the verb reported it with [`CrashTest::clean_failure`].
    pub clean_failures: usize,
    /// Temps the sweep removed afterwards (left by killed writers).
    pub swept: usize,
    /// Each broken invariant, with where the kill happened.
    pub violations: Vec<String>,
}

/// Runs the campaign in fresh subdirectories of `work`; see the module docs.
pub fn run(strace: &Path, work: &Path, test: &CrashTest<'_>) -> CrashSummary {
    let mut summary = CrashSummary::default();

    let counts = clean_run(strace, &fresh(work, "clean"), work, test);
    for (syscall, &count) in &counts {
        for n in spread(count, test.budget) {
            let dir = fresh(work, &format!("{syscall}-{n}"));
            let inject = format!("inject={syscall}:signal=SIGKILL:when={n}");
            let out = traced(
                strace,
                (test.setup)(&dir),
                test.stdin,
                test.syscalls,
                &["-o", "/dev/null", "-e", &inject],
            );
            let at = format!("{}: SIGKILL at {syscall} #{n}", test.name);
            if out.status.signal() == Some(9) {
                summary.kill_points += 1;
            } else if out.status.success() {
                // In a multi-threaded verb, work spreads over threads differently from run to
                // run, so no thread may reach its N-th call this time. The run completed; its
                // result is still checked below.
                summary.missed += 1;
            } else if child_failed(test, &out) {
                summary.clean_failures += 1;
            } else {
                summary.violations.push(format!("{at}: not killed but failed ({:?})", out.status));
            }
            summary.swept += check_and_sweep(test, &dir, &at, &mut summary.violations);
        }
    }
    summary
}

/// Whether the run ended as [`CrashTest::clean_failure`] says a failed child is reported.
fn child_failed(test: &CrashTest<'_>, out: &std::process::Output) -> bool {
    test.clean_failure.is_some_and(|(code, says)| {
        out.status.code() == Some(code) && String::from_utf8_lossy(&out.stderr).contains(says)
    })
}

/// After one run: the verb's invariant, then a sweep that must leave no temp; violations are
/// added (labelled `at`), the temps the sweep removed returned. The run's directory is removed.
fn check_and_sweep(
    test: &CrashTest<'_>,
    dir: &Path,
    at: &str,
    violations: &mut Vec<String>,
) -> usize {
    if let Err(violation) = (test.check)(dir) {
        violations.push(format!("{at}: {violation}"));
    }
    let swept = match sweep_and_count(dir) {
        Ok(removed) => removed,
        Err(violation) => {
            violations.push(format!("{at}: {violation}"));
            0
        }
    };
    let _ = fs::remove_dir_all(dir);
    swept
}

/// A fresh, empty `work/label`.
fn fresh(work: &Path, label: &str) -> PathBuf {
    let dir = work.join(label);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

impl CrashSummary {
    /// Prints the campaign's figures (on stderr: `--nocapture` shows them) and fails the test on
    /// any violation, or when fewer than `at_least` kills landed (strace not injecting).
    #[allow(clippy::print_stderr)]
    pub fn assert_clean(&self, name: &str, at_least: usize) {
        eprintln!(
            "crash harness: {name}: {} kill points ({} more runs completed unkilled, {} killed a \
             child and failed cleanly), {} leftover temps swept, {} violations",
            self.kill_points,
            self.missed,
            self.clean_failures,
            self.swept,
            self.violations.len()
        );
        assert!(self.kill_points >= at_least, "{name}: too few kill points: is strace injecting?");
        assert!(self.violations.is_empty(), "{name}:\n{}", self.violations.join("\n"));
    }
}

impl ErrorSummary {
    /// Prints the campaign's figures and fails the test on any violation, or when fewer than 30
    /// errors were injected (strace not injecting).
    #[allow(clippy::print_stderr)]
    pub fn assert_clean(&self, name: &str) {
        eprintln!(
            "error injection: {name}: {} runs with an injected error: {} failed naming the cause, \
             {} succeeded anyway, {} hit the loader before main, {} left temps (swept); {} runs \
             missed the call; {} violations",
            self.runs,
            self.reported,
            self.absorbed,
            self.before_main,
            self.temps_left,
            self.missed,
            self.violations.len()
        );
        assert!(self.runs >= 30, "{name}: too few injected errors: is strace injecting?");
        assert!(self.violations.is_empty(), "{name}:\n{}", self.violations.join("\n"));
    }
}

/// A clean traced run in `dir`: which system calls, how many times each (per busiest thread).
fn clean_run(
    strace: &Path,
    dir: &Path,
    work: &Path,
    test: &CrashTest<'_>,
) -> BTreeMap<String, usize> {
    let log = work.join("clean.strace");
    let out = traced(
        strace,
        (test.setup)(dir),
        test.stdin,
        test.syscalls,
        &["-o", log.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}: the clean run failed: {out:?}", test.name);
    if let Err(violation) = (test.check)(dir) {
        panic!("{}: the invariant fails without any kill: {violation}", test.name);
    }
    let counts = count_syscalls(&fs::read_to_string(&log).unwrap());
    assert!(counts.contains_key("openat"), "{}: strace saw nothing: {counts:?}", test.name);
    counts
}

/// The errors an error campaign injects, with the text `strerror` gives each (what a clear
/// message must contain).
pub const ERRORS: [(&str, &str); 3] = [
    ("ENOSPC", "No space left on device"),
    ("EIO", "Input/output error"),
    ("EACCES", "Permission denied"),
];

/// What an error campaign found.
#[derive(Debug, Default)]
pub struct ErrorSummary {
    /// Runs with an error injected.
    pub runs: usize,
    /// Runs that failed with a message naming the cause.
    pub reported: usize,
    /// Runs that succeeded anyway (the error was retried, or hit a call whose failure does not
    /// matter, such as closing a file only read); their result is checked like any other.
    pub absorbed: usize,
    /// Runs whose injected call was not reached (fewer calls in that thread this time).
    pub missed: usize,
    /// Runs where the error hit the dynamic loader before `main` (exit 127, its own message).
    pub before_main: usize,
    /// Temps a failed run left behind (removed by `sweep` afterwards; a violation if it cannot).
    pub temps_left: usize,
    /// Each broken promise: a panic, a signal, a failure without its cause, a broken invariant.
    pub violations: Vec<String>,
}

/// Makes the N-th occurrence of each system call fail with each of [`ERRORS`] (`budget`
/// occurrences per call and error, spread), then checks: the verb did not panic or die; if it
/// failed, its output says why (the error's text); the invariant holds; `sweep` leaves no temp.
pub fn inject_errors(
    strace: &Path,
    work: &Path,
    test: &CrashTest<'_>,
    budget: usize,
) -> ErrorSummary {
    let mut summary = ErrorSummary::default();
    let counts = clean_run(strace, &fresh(work, "clean"), work, test);
    for (syscall, &count) in &counts {
        for (errno, text) in ERRORS {
            for n in spread(count, budget) {
                let dir = fresh(work, &format!("{syscall}-{errno}-{n}"));
                let inject = format!("inject={syscall}:error={errno}:when={n}");
                let log = work.join("inject.strace");
                let out = traced(
                    strace,
                    (test.setup)(&dir),
                    test.stdin,
                    test.syscalls,
                    &["-o", log.to_str().unwrap(), "-e", &inject],
                );
                let log = fs::read_to_string(&log).unwrap_or_default();
                let injected = log.contains("(INJECTED)");
                // strace counts per thread: the same N-th write may also be the one that prints
                // the diagnostic on stderr, which is then lost, not missing.
                let stderr_lost =
                    log.lines().any(|l| l.contains(" write(2, ") && l.contains("(INJECTED)"));
                let at = format!("{}: {errno} at {syscall} #{n}", test.name);
                // What the verb said, on either stream (refusals are results: `seal` lists its
                // reasons on stdout).
                let stderr = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                match out.status.code() {
                    Some(0) if !injected => summary.missed += 1,
                    Some(0) => summary.absorbed += 1,
                    Some(101) => summary.violations.push(format!("{at}: panicked: {stderr}")),
                    Some(_) if stderr.contains(text) => summary.reported += 1,
                    // The error hit a child (`once`'s producer) that failed; the verb names it.
                    Some(_) if child_failed(test, &out) => summary.reported += 1,
                    Some(_) if stderr_lost => summary.reported += 1,
                    // The error hit the dynamic loader, before our `main`: not ours to report.
                    Some(127) if stderr.contains("error while loading shared libraries") => {
                        summary.before_main += 1
                    }
                    Some(code) => summary
                        .violations
                        .push(format!("{at}: exit {code} without saying why: {stderr}")),
                    None => summary.violations.push(format!("{at}: died: {:?}", out.status)),
                }
                summary.runs += usize::from(injected);
                summary.temps_left += check_and_sweep(test, &dir, &at, &mut summary.violations);
            }
        }
    }
    summary
}

fn traced(
    strace: &Path,
    cmd: Command,
    stdin: Option<&Path>,
    syscalls: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut traced = Command::new(strace);
    // cargo test's LD_LIBRARY_PATH makes the loader probe dozens of paths: kill points that only
    // repeat "killed before main".
    traced.env_remove("LD_LIBRARY_PATH").args(["-f", "-qq", "-e"]).arg(format!("trace={syscalls}"));
    traced.args(extra).arg(cmd.get_program()).args(cmd.get_args());
    if let Some(cwd) = cmd.get_current_dir() {
        traced.current_dir(cwd);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => traced.env(key, value),
            None => traced.env_remove(key),
        };
    }
    match stdin {
        Some(path) => traced.stdin(fs::File::open(path).unwrap()),
        None => traced.stdin(std::process::Stdio::null()),
    };
    traced.output().unwrap()
}

/// `1..=count` if it fits the budget, else `budget` points spread evenly, first and last included.
fn spread(count: usize, budget: usize) -> Vec<usize> {
    if count <= budget || budget < 2 {
        return (1..=count.min(budget.max(1))).collect();
    }
    let mut points: Vec<usize> = (0..budget).map(|i| 1 + i * (count - 1) / (budget - 1)).collect();
    points.dedup();
    points
}

/// For each system call in an `strace -f -o` log, the most times any one thread made it.
///
/// strace counts `inject=...:when=N` per thread, so in a multi-threaded verb the N-th call of a
/// thread is a kill point only up to that thread's own count, not the process total.
fn count_syscalls(log: &str) -> BTreeMap<String, usize> {
    let mut per_thread: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for line in log.lines() {
        let tid_end = line.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        let (tid, rest) = line.split_at(tid_end);
        let rest = rest.trim_start();
        // "<... read resumed>" lines finish a call already counted when it started.
        if let Some(paren) = rest.find('(') {
            let name = &rest[..paren];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                *per_thread.entry((name.to_owned(), tid)).or_insert(0) += 1;
            }
        }
    }
    let mut counts = BTreeMap::new();
    for ((name, _), n) in per_thread {
        let max = counts.entry(name).or_insert(0);
        *max = n.max(*max);
    }
    counts
}

/// Runs `cargo xtask sweep DIR` and checks no toolkit temp is left anywhere below DIR.
fn sweep_and_count(dir: &Path) -> Result<usize, String> {
    let before = temps(dir);
    let out = crate::xtask().arg("sweep").arg(dir).output().unwrap();
    if !out.status.success() {
        return Err(format!("sweep failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let after = temps(dir);
    if !after.is_empty() {
        return Err(format!("temps left after sweep: {after:?}"));
    }
    Ok(before.len())
}

/// Toolkit temp files below `dir` (not following symlinks).
pub fn temps(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                _ if atomic_io::is_temp_name(&entry.file_name()) => found.push(path),
                _ => {}
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_covers_first_and_last_within_budget() {
        assert_eq!(spread(3, 12), [1, 2, 3]);
        assert_eq!(spread(100, 4), [1, 34, 67, 100]);
        assert_eq!(spread(0, 5), Vec::<usize>::new());
    }

    #[test]
    fn counts_the_busiest_thread_per_syscall() {
        let log = "12 openat(AT_FDCWD, \"a\") = 3\n13 write(1, \"x\", 1) = 1\n12 openat(3) = 4\n\
                   13 openat(5) = 6\n12 +++ exited with 0 +++\n13 <... write resumed>) = 1\n";
        let counts = count_syscalls(log);
        assert_eq!(counts.get("openat"), Some(&2), "thread 12 made two, thread 13 one");
        assert_eq!(counts.get("write"), Some(&1));
        assert_eq!(counts.len(), 2);
    }
}

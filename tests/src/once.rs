//! Races of `once` processes, the same on one machine (`once_cli`) and across the two hosts of a
//! shared file system (`cephfs`): producers paused mid-write, waiters known to wait, and rounds
//! of racers that must all end with the same bytes.

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};

use crate::{read_line_within, wait_within};

/// Starts `cmd` (a `safefs` or `xtask` command with its working directory set) as
/// `once ARGS... TARGET -- sh -c ...`, a producer that writes `first` into its temp, says
/// "started", waits for its stdin to close, then appends `rest` (if any). Returns once it said
/// "started". It runs in its own process group so a test can kill all of it; stderr is piped.
pub fn start_paused_producer(
    mut cmd: Command,
    args: &[&str],
    target: &str,
    first: &str,
    rest: &str,
) -> Child {
    let mut producer = format!("printf {first} > {{}}; echo started; read x || :");
    if !rest.is_empty() {
        producer += &format!("; printf {rest} >> {{}}");
    }
    let mut child = cmd
        .arg("once")
        .args(args)
        .args([target, "--", "sh", "-c", &producer])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    assert_eq!(read_line_within(child.stdout.take().unwrap()), "started\n");
    child
}

/// Spawns `cmd` (a `lock` or `once` that will have to wait) with stdout and stderr piped, and
/// returns it once it said its first line on stderr (a waiter says "waiting for lock on ..."),
/// with that line and the rest of its stderr.
pub fn start_waiter(cmd: &mut Command) -> (Child, BufReader<ChildStderr>, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    err.read_line(&mut said).unwrap();
    (child, err, said)
}

/// Starts `sh -c SCRIPT BIN` in each of `dirs` at once (the script runs the CLI as `"$0"`),
/// waits for all, fails the test unless each exits 0 and each printed the same non-empty
/// stdout, and returns that stdout. `round` names the round in the failure.
pub fn race_to_agree(script: &str, bin: &OsStr, dirs: &[&Path], round: usize) -> String {
    let mut children: Vec<Child> = dirs
        .iter()
        .map(|dir| {
            Command::new("sh")
                .args(["-c", script])
                .arg(bin)
                .current_dir(dir)
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
    assert!(seen.iter().all(|s| *s == seen[0] && !s.is_empty()), "round {round}: {seen:?}");
    seen.swap_remove(0)
}

/// Kills `producer`'s whole process group (SIGKILL: it runs in its own, see
/// [`start_paused_producer`]) and reaps it; then `waiter` must take over: exit 0, having said
/// "produced TARGET" in the rest of its stderr, `err`.
pub fn kill_and_take_over(
    producer: &mut Child,
    waiter: &mut Child,
    err: &mut impl Read,
    target: &str,
) {
    let pgid = format!("-{}", producer.id());
    assert!(Command::new("kill").args(["-KILL", "--", &pgid]).status().unwrap().success());
    producer.wait().unwrap();
    assert_eq!(wait_within(waiter), Some(0));
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(rest.contains(&format!("produced {target}")), "{rest}");
}

/// All that `child` writes to its piped stderr until it closes it (empty if not piped or
/// already taken).
pub fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut s).unwrap();
    }
    s
}

//! `cargo xtask lock [--shared] [--nonblock|--timeout SECS] LOCKFILE -- CMD...`
//!
//! flock(1) semantics on LOCKFILE, and the same kernel lock, so it interoperates with `flock(1)`
//! both ways. LOCKFILE is created if missing (mode 0644 less the umask) and never deleted; an
//! existing file (a data file, a script locking itself, a symlink's target) keeps every byte and
//! its mtime.
//! While waiting it says once, after about 200 ms, who holds the lock:
//! `waiting for lock on PATH, held by pid N (command) since T`.
//!
//! The lock is held by this process, not passed to CMD: CMD inherits no descriptor (unlike
//! `flock(1)`, which lets CMD inherit it), and the lock is released when CMD has exited and this
//! process ends. If this process is killed while CMD runs, the lock is released at once and CMD
//! runs on unlocked; kill the process group to stop both.
//!
//! Exit codes: CMD's exit status (128+N if a signal N killed it); 1 the lock was not taken
//! (`--nonblock` or `--timeout`; the message names the holder); 2 usage or an error before CMD ran
//! (e.g. a file system without flock support); 126/127 CMD could not be run / was not found.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use dir_lock::{Error, Holder, Holders, LockFile, LockKind, LockOptions, Wait, WaitObserver};

use crate::exit;

/// Flags of `cargo xtask lock`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Take a shared lock instead of an exclusive one.
    #[arg(long, short = 's')]
    shared: bool,
    /// Fail at once (exit 1) if the lock is held.
    #[arg(long, short = 'n', conflicts_with = "timeout")]
    nonblock: bool,
    /// Give up waiting after SECS seconds (exit 1); the holder is never disturbed.
    #[arg(long, short = 'w', value_name = "SECS")]
    timeout: Option<f64>,
    /// The lock file (created if missing, never deleted).
    lockfile: Utf8PathBuf,
    /// The command to run while holding the lock.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let wait = wait_mode(args.nonblock, args.timeout)?;
    let kind = if args.shared { LockKind::Shared } else { LockKind::Exclusive };
    let observer = SayWaiting::default();
    let _lock = match LockFile::acquire(&args.lockfile, &LockOptions { kind, wait }, &observer) {
        Ok(lock) => lock,
        Err(err @ (Error::WouldBlock { .. } | Error::Timeout { .. })) => {
            say!("lock: {err}");
            return Ok(exit::FAILED.into());
        }
        Err(err) => return Err(err.into()),
    };
    let (program, rest) = args.command.split_first().context("no command given")?;
    match Command::new(program).args(rest).status() {
        Ok(status) => Ok(exit_code(status)),
        Err(err) => {
            say!("lock: failed to run {program}: {err}");
            Ok(ExitCode::from(if err.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 }))
        }
    }
}

/// `--nonblock` / `--timeout SECS` / neither, as a [`Wait`]; a bad SECS is a usage error.
pub(crate) fn wait_mode(nonblock: bool, timeout: Option<f64>) -> anyhow::Result<Wait> {
    Ok(match (nonblock, timeout) {
        (true, _) => Wait::NonBlock,
        (false, Some(secs)) => Wait::Timeout(
            Duration::try_from_secs_f64(secs)
                .map_err(|_| anyhow::anyhow!("invalid --timeout {secs}: need seconds >= 0"))?,
        ),
        (false, None) => Wait::Block,
    })
}

/// A child's exit status as ours, shell style: 128+N when signal N killed it.
pub(crate) fn exit_code(status: ExitStatus) -> ExitCode {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(sig)) => ExitCode::from(u8::try_from(128 + sig).unwrap_or(255)),
        (None, None) => ExitCode::from(1),
    }
}

/// Prints "waiting for lock on PATH, held by pid N (command) since T" once per process.
#[derive(Default)]
pub(crate) struct SayWaiting {
    said: AtomicBool,
}

impl WaitObserver for SayWaiting {
    fn waiting(&self, path: &Utf8Path, holders: &[Holder], _waited: Duration) {
        if !self.said.swap(true, Ordering::Relaxed) {
            say!("waiting for lock on {path}, held{}", Holders(holders.to_vec()));
        }
    }
}

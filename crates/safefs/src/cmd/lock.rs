//! `lock [-s|-x] [-n] [-w SECS] [-E CODE] [-o] LOCKFILE CMD [ARGS...]` and `... LOCKFILE -c 'CMD'`
//!
//! flock(1)'s common forms and semantics on LOCKFILE, and the same kernel lock, so it interoperates
//! with `flock(1)` both ways (`--` before CMD is accepted too). LOCKFILE is created if missing
//! (mode 0644 less the umask) and never deleted; an existing file (a data file, a script locking
//! itself, a symlink's target) keeps every byte and its mtime. While waiting it says once, after
//! about 200 ms, who holds the lock: `waiting for lock on PATH, held by pid N (command) since T`.
//!
//! As with flock(1), CMD inherits the locked descriptor, so the lock is held until both this
//! process and CMD (and whatever CMD leaves running with the descriptor) have ended; `-o` closes it
//! in CMD, so only this process holds the lock.
//!
//! Exit codes, as flock(1): CMD's exit status (128+N if signal N killed it); 1, or the `-E` code,
//! when the lock was not taken (`-n`, or `-w` ran out; the message names the holder). Unlike
//! flock(1)'s sysexits codes: 2 for usage or an error before CMD ran (the toolkit's contract, e.g.
//! a file system without flock support), 126/127 when CMD could not be run / was not found (as
//! shells, `env` and `timeout` say). 1 also when the lock was lost while CMD ran: on a network
//! file system (CephFS, NFS) the server frees a host's locks when it evicts the host, and the
//! lock file's descriptor then fails (EIO, ESTALE, ENOTCONN, ESHUTDOWN); the message names the
//! file system. CMD's own writes through that host failed as well.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use toolkit::dir_lock::{
    Error, Holder, Holders, LockFile, LockKind, LockOptions, Wait, WaitProgress,
};
use toolkit::names;

use crate::exit;

/// Flags of `lock`: flock(1)'s names and short forms.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Take a shared lock (many holders at once; no exclusive one).
    #[arg(long, short = 's', conflicts_with = "exclusive")]
    shared: bool,
    /// Take an exclusive lock (the default).
    #[arg(long, short = 'x')]
    exclusive: bool,
    /// Fail at once (exit 1, or the -E code) if the lock is held.
    #[arg(long, short = 'n', visible_alias = "nb")]
    nonblock: bool,
    /// Give up waiting after SECS seconds (exit 1, or the -E code); the holder is never disturbed.
    #[arg(long, short = 'w', visible_alias = "wait", value_name = "SECS")]
    timeout: Option<f64>,
    /// Exit code when the lock was not taken (-n, -w).
    #[arg(long = "conflict-exit-code", short = 'E', value_name = "CODE")]
    conflict_exit_code: Option<u8>,
    /// Close the lock's descriptor in CMD: only this process holds the lock, not CMD.
    #[arg(long, short = 'o')]
    close: bool,
    /// Run CMD through the shell ($SHELL, else /bin/sh) with `-c`.
    #[arg(long = "command", short = 'c', value_name = "CMD")]
    shell_command: Option<OsString>,
    /// The lock file (created if missing, never deleted; an existing file is never changed).
    lockfile: PathBuf,
    /// The command and its arguments (a `--` before them is optional).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    args: Vec<OsString>,
}

const AFTER_HELP: &str = "\
Exit codes (as flock(1) for the lock and the command):
  CMD's status   the command ran (128+N if signal N killed it)
  1 or -E CODE   the lock was not taken (-n, or -w ran out); the message names the holder
  2              usage, or an error before CMD ran (e.g. a file system without flock)
  126 / 127      CMD could not be run / was not found

Examples:
  safefs lock -n /tmp/backup.lock rsync -a src/ dst/
  safefs lock -w 30 -E 75 /var/lock/job.lock -c 'make all && make install'
  [ \"$LOCKED\" ] || LOCKED=1 exec safefs lock -n \"$0\" \"$0\" \"$@\"    # a script that locks itself";

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let wait = match (args.nonblock, args.timeout) {
        // flock(1): -n wins over -w.
        (true, _) => Wait::NonBlock,
        (false, timeout) => wait_mode(false, timeout)?,
    };
    let command = match (&args.shell_command, args.args.split_first()) {
        (Some(line), None) => {
            let shell = std::env::var_os("SHELL").filter(|s| !s.is_empty());
            let mut cmd = Command::new(shell.unwrap_or_else(|| "/bin/sh".into()));
            cmd.arg("-c").arg(line);
            cmd
        }
        (None, Some((program, rest))) => {
            let mut cmd = Command::new(program);
            cmd.args(rest);
            cmd
        }
        (None, None) => {
            anyhow::bail!(
                "no command given: lock LOCKFILE CMD [ARGS...], or lock LOCKFILE -c 'CMD'"
            )
        }
        (Some(_), Some(_)) => anyhow::bail!("-c takes exactly one command argument"),
    };
    let kind = if args.shared { LockKind::Shared } else { LockKind::Exclusive };
    let observer = SayWaiting::default();
    let lock = match LockFile::acquire(&args.lockfile, &LockOptions::new(kind, wait), &observer) {
        Ok(lock) => lock,
        Err(err @ (Error::WouldBlock { .. } | Error::Timeout { .. })) => {
            say!("lock: {}", crate::Chain(&err));
            return Ok(args.conflict_exit_code.unwrap_or(exit::FAILED).into());
        }
        Err(err) => return Err(err.into()),
    };
    if !args.close {
        // flock(1): CMD inherits the locked descriptor and keeps the lock while it lives.
        rustix::io::fcntl_setfd(&lock, rustix::io::FdFlags::empty())
            .context("failed to pass the lock's descriptor to the command")?;
    }
    let program = command.get_program().to_owned();
    let code = run_command(command)?;
    // On a network file system the server can take the lock away (this host evicted): CMD's
    // work then overlapped another holder's, which its exit status cannot say.
    if let Err(err @ Error::LockLost { .. }) = lock.check() {
        say!("lock: {}; {} may have run without it", crate::Chain(&err), names::shown(&program));
        return Ok(exit::FAILED.into());
    }
    Ok(code)
}

/// Runs CMD, its exit status as ours; a CMD that cannot start is 126 (127 if not found).
fn run_command(mut command: Command) -> anyhow::Result<ExitCode> {
    match command.status() {
        Ok(status) => Ok(exit_code(status)),
        Err(err) => {
            say!("lock: failed to run {}: {err}", names::shown(command.get_program()));
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

impl WaitProgress for SayWaiting {
    fn waiting(&self, path: &Path, holders: &[Holder], _waited: Duration) {
        if !self.said.swap(true, Ordering::Relaxed) {
            say!("waiting for lock on {}, held{}", names::shown(path), Holders(holders.to_vec()));
        }
    }
}

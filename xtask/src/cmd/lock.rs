//! `cargo xtask lock`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask lock`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
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

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("lock", 4))
}

//! `cargo xtask sweep`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask sweep`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
pub(crate) struct Args {
    /// List what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Directory to sweep, recursively.
    dir: Utf8PathBuf,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("sweep", 3))
}

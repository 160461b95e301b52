//! `cargo xtask check`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask check`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
pub(crate) struct Args {
    /// Also fail on improperly formatted manifest lines.
    #[arg(long)]
    strict: bool,
    /// Do not print OK for each successfully verified file.
    #[arg(long)]
    quiet: bool,
    /// Print nothing; the exit code tells.
    #[arg(long)]
    status: bool,
    /// Do not fail or report for missing files.
    #[arg(long)]
    ignore_missing: bool,
    /// Manifests to check (`-` for stdin).
    #[arg(required = true)]
    manifests: Vec<Utf8PathBuf>,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("check", 2))
}

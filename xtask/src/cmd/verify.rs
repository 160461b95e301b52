//! `cargo xtask verify`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask verify`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
pub(crate) struct Args {
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// Files not in the manifest are not a problem.
    #[arg(long)]
    allow_extra: bool,
    /// Check presence and sizes only, not content.
    #[arg(long)]
    quick: bool,
    /// The snapshot directory.
    dir: Utf8PathBuf,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("verify", 6))
}

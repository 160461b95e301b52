//! `cargo xtask latest`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask latest`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
pub(crate) struct Args {
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// Directory whose subdirectories are snapshots.
    root: Utf8PathBuf,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("latest", 6))
}

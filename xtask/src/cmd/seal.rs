//! `cargo xtask seal`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask seal`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
pub(crate) struct Args {
    /// A file (relative to DIR) that must exist and be non-empty; repeatable.
    #[arg(long = "require", value_name = "REL")]
    require: Vec<Utf8PathBuf>,
    /// Allow empty files in the snapshot.
    #[arg(long)]
    allow_empty: bool,
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// The snapshot directory.
    dir: Utf8PathBuf,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("seal", 6))
}

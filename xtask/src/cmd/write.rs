//! `cargo xtask write`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask write`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
pub(crate) struct Args {
    /// `full`: fsync the file and its directory; `none`: leave it to the OS.
    #[arg(long, default_value = "full")]
    durability: String,
    /// Fail if PATH already exists.
    #[arg(long)]
    no_clobber: bool,
    /// The file to replace with stdin.
    path: Utf8PathBuf,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("write", 3))
}

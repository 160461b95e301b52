//! `cargo xtask demo`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask demo`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
pub(crate) struct Args {
    /// Work in D instead of a fresh temporary directory.
    #[arg(long, value_name = "D")]
    dir: Option<Utf8PathBuf>,
    /// Keep the working directory afterwards.
    #[arg(long)]
    keep: bool,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    say!(
        "The demo is not implemented yet (issue #7). When it lands it will, in a temporary \
         directory: generate a ROM-like collection across dozens of folders, copy it verified, \
         seal the copy, verify it, corrupt three files and show verify naming each, race 8 \
         processes to produce one artifact once, kill a writer mid-write and show the file intact, \
         and end with a summary table."
    );
    Err(super::not_yet("demo", 7))
}

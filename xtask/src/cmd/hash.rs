//! `cargo xtask hash`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask hash`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
pub(crate) struct Args {
    /// Hash algorithm.
    #[arg(long, value_enum, default_value = "xxh128")]
    algo: Algo,
    /// Files, and directories recursed in sorted order.
    #[arg(required = true)]
    paths: Vec<Utf8PathBuf>,
}

/// Algorithms `hash` can print.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Algo {
    Xxh128,
    Xxh64,
    Xxh3,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("hash", 2))
}

//! `cargo xtask jsonl`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask jsonl`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
pub(crate) struct Args {
    /// Longest line accepted, in bytes.
    #[arg(long, default_value_t = 100_000_000)]
    max_line: u64,
    /// Largest file accepted, in bytes.
    #[arg(long, default_value_t = 10_000_000_000)]
    max_file: u64,
    /// The JSONL file.
    file: Utf8PathBuf,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("jsonl", 3))
}

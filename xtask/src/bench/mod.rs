//! `cargo xtask bench`: whole-process benchmarks side by side with peer tools.

use std::process::ExitCode;

/// Flags of `cargo xtask bench`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the harness lands
pub(crate) struct Args {
    /// Run only the named group (hash, write, lock, copy, verify).
    #[arg(long)]
    only: Option<String>,
    /// Smaller trees and fewer runs: a smoke test of the harness, not a measurement.
    #[arg(long)]
    quick: bool,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(crate::cmd::not_yet("bench", 2))
}

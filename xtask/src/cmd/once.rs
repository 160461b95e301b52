//! `cargo xtask once`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask once`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
pub(crate) struct Args {
    /// Expected XXH128 of the artifact, as 32 hex digits.
    #[arg(long, value_name = "HEX")]
    xxh128: Option<String>,
    /// Give up waiting for another producer after SECS seconds (exit 1).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// The artifact to produce.
    target: Utf8PathBuf,
    /// The producer; each `{}` argument is replaced by a temp path beside TARGET.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("once", 4))
}

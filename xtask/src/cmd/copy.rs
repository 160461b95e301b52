//! `cargo xtask copy`: see docs/CLI.md.

use std::process::ExitCode;

use camino::Utf8PathBuf;

/// Flags of `cargo xtask copy`.
#[derive(clap::Args)]
#[allow(dead_code)] // the flags are read once the verb lands
pub(crate) struct Args {
    /// Number of source directories copied at once (default: number of cores).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Skip re-reading each written temp file before it is renamed into place.
    #[arg(long)]
    no_verify: bool,
    /// `full`: fsync files and directories; `none`: leave it to the OS.
    #[arg(long, default_value = "full")]
    durability: String,
    /// Compare content instead of size and mtime to decide what to skip.
    #[arg(long)]
    checksum: bool,
    /// Treat names that differ only by case as colliding, whatever DST is.
    #[arg(long)]
    case_insensitive: bool,
    /// Plan and report, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// Source directory; its contents are copied.
    src: Utf8PathBuf,
    /// Destination directory.
    dst: Utf8PathBuf,
}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("copy", 5))
}

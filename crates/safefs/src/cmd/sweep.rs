//! `cargo xtask sweep [--dry-run] DIR`
//!
//! Removes, recursively under DIR, the temp files that crashed `atomic_io` writers left behind:
//! only files named by the toolkit's temp pattern (`.<name>.atomic-<10 letters/digits>.tmp`) whose
//! writer's lock can be taken, i.e. whose writer is gone. Symlinks are never followed.
//!
//! Output: `removed PATH` (with `--dry-run`: `would remove PATH`) on stdout for each orphan, and
//! `busy PATH` for each temp a live writer holds (left alone); problems on stderr, then a summary.
//! Exit codes: 0 swept (busy temps are not a failure); 1 some entries could not be read or removed;
//! 2 DIR itself could not be read.

use std::process::ExitCode;

use toolkit::atomic_io::sweep::{SweepOptions, sweep};
use toolkit::names;

use crate::exit;

/// Flags of `cargo xtask sweep`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// List what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Directory to sweep, recursively.
    dir: std::path::PathBuf,
}

const AFTER_HELP: &str = "\
Exit codes:
  0  swept (temps a live writer holds are left alone, not a failure)
  1  some entries could not be read or removed
  2  DIR itself could not be read

Examples:
  safefs sweep --dry-run /data/out
  safefs sweep /data/out";

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut opts = SweepOptions::default();
    opts.dry_run = args.dry_run;
    let report = match sweep(&args.dir, &opts) {
        Ok(report) => report,
        Err(err) => {
            say!("sweep: {}", crate::Chain(&err));
            return Ok(exit::USAGE.into());
        }
    };
    let verb = if args.dry_run { "would remove" } else { "removed" };
    for path in &report.removed {
        out!("{verb} {}", names::shown(path));
    }
    for path in &report.busy {
        out!("busy {}", names::shown(path));
    }
    for err in &report.errors {
        say!("sweep: {}", crate::Chain(&err));
    }
    say!(
        "sweep: {} {verb}, {} busy (a live writer holds them; left alone), {} errors",
        report.removed.len(),
        report.busy.len(),
        report.errors.len()
    );
    Ok(if report.errors.is_empty() { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

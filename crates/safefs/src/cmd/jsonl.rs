//! `cargo xtask jsonl [--max-line BYTES] [--max-file BYTES] FILE`
//!
//! Counts and validates JSON Lines with bounded memory (at most `--max-line` plus a 256 KiB read
//! buffer): every line must be one JSON value; blank lines are refused. Defaults: 100 MB per line,
//! 10 GB per file (the training daemon's limits).
//!
//! Output: `N lines, B bytes: FILE` on stdout when valid. Exit codes: 0 valid; 1 invalid (the first
//! offending line is named on stderr with its number and cause) or over `--max-file`; 2 FILE cannot
//! be opened or read, or is not a regular file.

use std::process::ExitCode;

use toolkit::atomic_io::ReadError;
use toolkit::atomic_io::bounded::{JsonlLimits, validate_jsonl};
use toolkit::names;

use crate::exit;

/// Flags of `cargo xtask jsonl`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Longest line accepted, in bytes.
    #[arg(long, default_value_t = JsonlLimits::default().max_line)]
    max_line: u64,
    /// Largest file accepted, in bytes.
    #[arg(long, default_value_t = JsonlLimits::default().max_file)]
    max_file: u64,
    /// The JSONL file.
    file: std::path::PathBuf,
}

const AFTER_HELP: &str = "\
Exit codes:
  0  every line holds one JSON value
  1  a line does not (the first is named with its number and cause), or the file is over --max-file
  2  FILE cannot be opened or read, or is not a regular file

Examples:
  safefs jsonl data.jsonl                    # 3 lines, 61 bytes: data.jsonl
  safefs jsonl --max-line 1048576 events.jsonl";

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut limits = JsonlLimits::default();
    limits.max_line = args.max_line;
    limits.max_file = args.max_file;
    match validate_jsonl(&args.file, &limits) {
        Ok(report) => {
            out!("{} lines, {} bytes: {}", report.lines, report.bytes, names::shown(&args.file));
            Ok(ExitCode::SUCCESS)
        }
        Err(err @ (ReadError::Jsonl { .. } | ReadError::FileTooLarge { .. })) => {
            say!("jsonl: {}", crate::Chain(&err));
            Ok(exit::FAILED.into())
        }
        Err(err) => {
            say!("jsonl: {}", crate::Chain(&err));
            Ok(exit::USAGE.into())
        }
    }
}

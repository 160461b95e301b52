//! `cargo xtask latest [--json] ROOT`
//!
//! Prints the newest snapshot directory under ROOT that verifies (a full verify) on stdout, alone
//! on its line, so that `cd "$(cargo xtask latest ROOT)"` works: when stdout is not a terminal the
//! path is written as its exact bytes (whatever the name), on a terminal it is shown escaped like
//! every name in messages. Newest is the greatest name in
//! natural order (`step-10` after `step-9`, ISO timestamps in time order); hidden directories,
//! symlinks and files under ROOT are not candidates. Each newer snapshot passed over is reported
//! on stderr with why (not sealed, its problems, an invalid manifest); older ones are not checked.
//!
//! Exit 0 when one verifies; 1 when none does; 2 when ROOT cannot be read or on usage errors.
//! `--json` prints the library's `Latest` (`found`, its `report`, `skipped`) plus `root` and `ok`.

use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use toolkit::snapshot_verify::{Latest, LatestOptions, SkipReason};
use toolkit::{names, snapshot_verify};

use super::verify::{Bar, print_error, print_json};
use crate::exit;

/// Flags of `cargo xtask latest`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// Directory whose subdirectories are snapshots.
    root: PathBuf,
}

const AFTER_HELP: &str = "\
Exit codes:
  0  a snapshot verifies (its path is printed)
  1  none does (each skipped one is named on stderr)
  2  ROOT cannot be read, or a usage error

Examples:
  safefs latest snaps                        # snaps/step-10
  cp -r \"$(safefs latest snaps)\" /tmp/resume";

/// Problems shown per skipped snapshot; the rest are counted (`--json` lists them all).
const PROBLEMS_SHOWN: usize = 5;

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if bucket::is_url(args.root.as_os_str()) {
        return super::remote::latest(&args.root, args.json);
    }
    let bar = Bar::new();
    let result = snapshot_verify::latest(&args.root, &LatestOptions::default(), &bar);
    bar.finish();
    let root = &*names::escape(&args.root);
    let latest = match result {
        Ok(latest) => latest,
        Err(err) => {
            print_error("latest", root, args.json, &err)?;
            return Ok(exit::USAGE.into());
        }
    };
    if args.json {
        #[derive(Serialize)]
        struct Out<'a> {
            root: &'a str,
            ok: bool,
            #[serde(flatten)]
            latest: &'a Latest,
        }
        print_json(&Out { root, ok: latest.found.is_some(), latest: &latest })?;
    } else {
        for skipped in &latest.skipped {
            say!("latest: skipped {}: {}", names::shown(&skipped.path), skipped.reason);
            if let SkipReason::Problems { problems } = &skipped.reason {
                for problem in problems.iter().take(PROBLEMS_SHOWN) {
                    say!("  {problem}");
                }
                if problems.len() > PROBLEMS_SHOWN {
                    say!("  ... and {} more", problems.len() - PROBLEMS_SHOWN);
                }
            }
        }
        match &latest.found {
            Some(found) if std::io::stdout().is_terminal() => out!("{}", names::shown(found)),
            Some(found) => {
                // For `cd "$(latest ROOT)"`: the exact bytes, which no escaping would give back.
                let mut out = std::io::stdout().lock();
                out.write_all(found.as_os_str().as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
                    .and_then(|()| out.flush())
                    .map_err(|e| anyhow::anyhow!("cannot write the result to stdout: {e}"))?;
            }
            None => {
                say!("latest: no snapshot under {root} verifies ({} checked)", latest.skipped.len())
            }
        }
    }
    Ok(if latest.found.is_some() { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

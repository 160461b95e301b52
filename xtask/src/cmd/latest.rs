//! `cargo xtask latest [--json] ROOT`
//!
//! Prints the newest snapshot directory under ROOT that verifies (a full verify) on stdout, alone
//! on its line, so that `cd "$(cargo xtask latest ROOT)"` works. Newest is the greatest name in
//! natural order (`step-10` after `step-9`, ISO timestamps in time order); hidden directories,
//! symlinks and files under ROOT are not candidates. Each newer snapshot passed over is reported
//! on stderr with why (not sealed, its problems, an invalid manifest); older ones are not checked.
//!
//! Exit 0 when one verifies; 1 when none does; 2 when ROOT cannot be read or on usage errors.
//! `--json` prints the library's `Latest` (`found`, its `report`, `skipped`) plus `root` and `ok`.

use std::process::ExitCode;

use camino::Utf8PathBuf;
use serde::Serialize;
use snapshot_verify::{Latest, LatestOptions, SkipReason};

use super::verify::{Bar, print_error, print_json};
use crate::exit;

/// Flags of `cargo xtask latest`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// Directory whose subdirectories are snapshots.
    root: Utf8PathBuf,
}

/// Problems shown per skipped snapshot; the rest are counted (`--json` lists them all).
const PROBLEMS_SHOWN: usize = 5;

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bar = Bar::new();
    let result = snapshot_verify::latest_with_progress(&args.root, &LatestOptions::default(), &bar);
    bar.finish();
    let root = args.root.as_str();
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
            Some(found) => out!("{}", names::shown(found)),
            None => {
                say!("latest: no snapshot under {root} verifies ({} checked)", latest.skipped.len())
            }
        }
    }
    Ok(if latest.found.is_some() { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

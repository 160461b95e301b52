//! `cargo xtask seal [--require REL]... [--allow-empty] [--json] DIR`
//!
//! Writes `DIR/manifest.xxh128` (XXH128, xxhsum GNU lines, paths relative to DIR, sorted, itself
//! excluded; `cd DIR && xxhsum -c manifest.xxh128` checks it) and `DIR/manifest.sizes`,
//! atomically, once the snapshot is complete and the written manifest has been verified against
//! the tree.
//!
//! Refused when a `--require`d file is missing or empty, a file is empty (unless
//! `--allow-empty`), a `*.json` file does not parse, the tree holds a symlink, FIFO, socket or
//! device, a file cannot be read, or a file changed while the seal ran. Every reason is listed,
//! one line each on stdout (`<reason>: <path> (<details>)`), then a summary; nothing is written.
//!
//! Exit 0 when sealed; 1 when refused; 2 when DIR cannot be opened, writing fails, or on usage
//! errors. `--json` prints `{"dir", "ok", ...}` on stdout instead: the `Sealed` result, or the
//! `refusals`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::HumanBytes;
use toolkit::snapshot_verify::{Error, SealSpec};
use toolkit::{names, snapshot_verify};

use super::verify::{Bar, DirOutcome, plural, print_error, print_json};
use crate::exit;

/// Flags of `cargo xtask seal`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// A file (relative to DIR) that must exist and be non-empty; repeatable.
    #[arg(long = "require", value_name = "REL")]
    require: Vec<PathBuf>,
    /// Allow empty files in the snapshot.
    #[arg(long)]
    allow_empty: bool,
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// The snapshot directory.
    dir: PathBuf,
}

const AFTER_HELP: &str = "\
Exit codes:
  0  sealed (DIR/manifest.xxh128 written and verified)
  1  refused (a required file missing, an empty file, a *.json that does not parse, ...)
  2  DIR cannot be opened, writing failed, or a usage error

Examples:
  safefs seal --require config.json snaps/step-10
  safefs seal --json snaps/step-10";

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut spec = SealSpec::default();
    spec.required = args.require;
    spec.allow_empty = args.allow_empty;
    if bucket::is_url(args.dir.as_os_str()) {
        return super::remote::seal(&args.dir, &spec, args.json);
    }
    let bar = Bar::new();
    let result = snapshot_verify::seal(&args.dir, &spec, &bar);
    bar.finish();
    let dir = &*names::escape(&args.dir);
    match result {
        Ok(sealed) => {
            if args.json {
                print_json(&DirOutcome { dir, ok: true, fields: &sealed })?;
            } else {
                // What the manifest lists, as `verify` counts it: the data files and the sizes
                // file beside the manifest (which the library's count leaves out).
                let sizes = std::fs::metadata(args.dir.join(snapshot_verify::SIZES));
                let listed = match sizes {
                    Ok(meta) => (sealed.files + 1, sealed.bytes + meta.len()),
                    Err(_) => (sealed.files, sealed.bytes),
                };
                out!(
                    "{dir}: sealed ({} listed, {}; {} verifies)",
                    plural(listed.0, "file", "files"),
                    HumanBytes(listed.1),
                    names::shown(&sealed.manifest)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::Refused { reasons, .. }) => {
            if args.json {
                let fields = serde_json::json!({ "refusals": reasons });
                print_json(&DirOutcome { dir, ok: false, fields })?;
            } else {
                let mut out = std::io::stdout().lock();
                for reason in &reasons {
                    writeln!(out, "{reason}")?;
                }
                writeln!(
                    out,
                    "{dir}: seal refused, {}; nothing was written",
                    plural(reasons.len() as u64, "reason", "reasons")
                )?;
                out.flush()?;
            }
            Ok(exit::FAILED.into())
        }
        Err(err) => {
            print_error("seal", dir, args.json, &err)?;
            Ok(exit::USAGE.into())
        }
    }
}

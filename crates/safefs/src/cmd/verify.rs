//! `cargo xtask verify [--json] [--allow-extra] [--quick] DIR`
//!
//! Checks DIR against `DIR/manifest.xxh128` (written by `seal`) and lists every problem, one line
//! per problem on stdout, `<kind>: <path> (<details>)`, sorted by path, then a summary line:
//!
//! ```text
//! hash_differs: model.bin (expected 364b7492fe58a3947e824cae26e04823, found 5d6f...)
//! missing: tokenizer.json
//! snapshots/step-3: FAILED, 2 problems (12 files listed, 1.2 GiB hashed)
//! ```
//!
//! Kinds: `missing`, `extra`, `size_differs`, `hash_differs`, `zero_byte`, `unreadable`,
//! `not_a_regular_file`, `symlink_leaves_tree`. `--quick` checks presence, type and sizes only
//! (no content read). `--json` prints one JSON object on stdout instead (the library's `Report`,
//! plus `dir` and `ok`; on an error, `error` with its `kind`).
//!
//! Exit 0 when there is no problem; 1 when there are problems; 2 when the check could not run:
//! no manifest, an invalid manifest (absolute path, `..`, NUL, repeated or malformed line: then no
//! file of DIR was read, and each issue is listed on stderr), DIR unreadable, or usage errors.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use serde::Serialize;
use toolkit::snapshot_verify::{Error, Mode, Pass, Report, VerifyOptions};
use toolkit::{names, snapshot_verify};

use crate::exit;

/// Flags of `cargo xtask verify`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// Files not in the manifest are not a problem.
    #[arg(long)]
    allow_extra: bool,
    /// Check presence and sizes only, not content.
    #[arg(long)]
    quick: bool,
    /// The snapshot directory.
    dir: std::path::PathBuf,
}

const AFTER_HELP: &str = "\
Exit codes:
  0  no problem
  1  problems (each listed by path and kind)
  2  the check could not run (no or invalid manifest, DIR unreadable, usage)

Examples:
  safefs verify snaps/step-10
  safefs verify --quick --json snaps/step-10";

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut opts = VerifyOptions::default();
    opts.mode = if args.quick { Mode::Quick } else { Mode::Full };
    opts.allow_extra = args.allow_extra;
    if bucket::is_url(args.dir.as_os_str()) {
        return super::remote::verify(&args.dir, &opts, args.json);
    }
    let bar = Bar::new();
    let result = snapshot_verify::verify(&args.dir, &opts, &bar);
    bar.finish();
    let dir = &*names::escape(&args.dir);
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            print_error("verify", dir, args.json, &err)?;
            return Ok(exit::USAGE.into());
        }
    };
    if args.json {
        print_json(&DirOutcome { dir, ok: report.is_ok(), fields: &report })?;
    } else {
        let mut out = std::io::stdout().lock();
        for problem in &report.problems {
            writeln!(out, "{problem}")?;
        }
        writeln!(out, "{}", summary(dir, &report))?;
        out.flush()?;
    }
    Ok(if report.is_ok() { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

/// The last line of a verify: `DIR: OK (...)` or `DIR: FAILED, N problems (...)`.
pub(crate) fn summary(dir: &str, report: &Report) -> String {
    let read = match report.mode {
        Mode::Full => format!("{} hashed", HumanBytes(report.bytes)),
        Mode::Quick if report.sizes_checked => "sizes checked, contents not read".to_owned(),
        Mode::Quick => "presence checked, no sizes recorded, contents not read".to_owned(),
    };
    let files = plural(report.files, "file", "files");
    match report.problems.len() {
        0 => format!("{dir}: OK ({files} listed, {read})"),
        n => format!(
            "{dir}: FAILED, {} ({files} listed, {read})",
            plural(n as u64, "problem", "problems")
        ),
    }
}

pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Prints a library error: on stderr for people (each manifest issue on its own line), or as
/// `{"dir", "ok": false, "error": {...}}` on stdout with `--json`.
pub(crate) fn print_error(verb: &str, dir: &str, json: bool, err: &Error) -> anyhow::Result<()> {
    if json {
        let fields = serde_json::json!({ "error": error_json(err) });
        return print_json(&DirOutcome { dir, ok: false, fields });
    }
    match err {
        Error::InvalidManifest { path, issues, more } => {
            say!("{verb}: invalid manifest {}: nothing else was read", names::shown(path));
            for issue in issues {
                say!("  {issue}");
            }
            if *more > 0 {
                say!("  ... and {}", plural(*more, "more issue", "more issues"));
            }
        }
        other => say!("{verb}: {}", crate::Chain(other)),
    }
    Ok(())
}

pub(crate) fn error_json(err: &Error) -> serde_json::Value {
    let message = crate::Chain(err).to_string();
    match err {
        Error::InvalidManifest { path, issues, more } => serde_json::json!({
            "kind": "invalid_manifest",
            "message": message,
            "path": names::escape(path),
            "issues": issues,
            "more": more,
        }),
        Error::NotSealed { .. } => serde_json::json!({ "kind": "not_sealed", "message": message }),
        _ => serde_json::json!({ "kind": "error", "message": message }),
    }
}

/// The one `--json` shape of `seal` and `verify` (docs/FORMATS.md): the directory and whether it
/// passed, then the verb's own fields at the same level (a report, a seal, refusals or an error).
#[derive(Serialize)]
pub(crate) struct DirOutcome<'a, T: Serialize> {
    pub(crate) dir: &'a str,
    pub(crate) ok: bool,
    #[serde(flatten)]
    pub(crate) fields: T,
}

/// `value` as pretty JSON on stdout, one document per run.
pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// A byte-count bar on stderr, drawn only when stderr is a terminal.
pub(crate) struct Bar(Option<ProgressBar>);

impl Bar {
    pub(crate) fn new() -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let style = ProgressStyle::with_template(
            "{prefix}{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        Bar(Some(ProgressBar::new(0).with_style(style)))
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl snapshot_verify::SnapshotProgress for Bar {
    fn pass(&self, pass: Pass, _files: u64, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.reset();
            bar.set_length(bytes);
            bar.set_message(match pass {
                Pass::Seal => "hashing",
                Pass::Verify => "verifying",
            });
        }
    }

    fn file_done(&self, _rel: &Path, len: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(len);
        }
    }

    fn snapshot(&self, dir: &Path) {
        if let Some(bar) = &self.0 {
            bar.set_prefix(format!("{} ", names::shown(dir)));
        }
    }
}

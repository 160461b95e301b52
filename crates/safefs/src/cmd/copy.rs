//! `cargo xtask copy [--jobs N] [--no-verify | --verify cache|media] [--durability ...]
//! [--checksum] [--case-insensitive] [--modify-window SECS] [--dry-run] [--json] SRC DST`
//!
//! Copies the contents of SRC into DST (like `rsync -a SRC/ DST/`) with `folder_copier`: one task
//! per source directory, each file written to a temp beside its destination, verified (size, and
//! XXH3-128 of the temp read back unless `--no-verify`) and renamed into place; modes, mtimes,
//! symlinks (as links), empty directories and (as root) owners of every kind kept; files of the same size and mtime skipped
//! (`--checksum`: of the same content); FIFOs, sockets and devices skipped with a warning.
//!
//! Before anything is written it refuses DST inside SRC, destination collisions (names folding to
//! one when DST's file system is case-insensitive, or cannot be probed, or with
//! `--case-insensitive`; a source file that is its own destination; every pair listed), names and
//! sizes DST cannot hold (each listed with its reason), and too little free space on DST (counted
//! in its clusters, net of what is skipped or replaced; `--dry-run` reports the shortfall).
//! Mtimes are compared within DST's probed step unless `--modify-window` says otherwise.
//!
//! Output: warnings, retries and each failure (`copy: failed PATH: cause`) on stderr; a summary
//! line on stdout (`--json`: one JSON object instead). A progress bar with bytes, rate and ETA on
//! stderr when it is a terminal. `--dry-run` prints `copy REL` / `skip REL` / `compare REL` per
//! entry and writes nothing (but the case probe's temp file, created and removed in DST).
//!
//! Exit codes: 0 everything copied or skipped; 1 some entry failed (the others were copied); 2
//! refused before any work (DST inside SRC, collision, no space, bad arguments); 130 interrupted by
//! Ctrl-C or SIGTERM (temps removed, partial report printed; a second Ctrl-C exits at once, leaving
//! temps for the next copy or `sweep` to remove).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use toolkit::folder_copier::{
    Action, CopyOptions, CopyPlan, CopyProgress, CopyReport, Durability, Error, FileError,
    FileOutcome, PlanTotals, ReadBack, Warning,
};
use toolkit::{folder_copier, names};

use super::verify::print_json;
use crate::exit;

/// Flags of `cargo xtask copy`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Source directories (or slices of a large one) copied at once (default: several per
    /// core, so a cold disk has several reads queued).
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Skip re-reading each written temp file before it is renamed into place (its size is still
    /// checked).
    #[arg(long, conflicts_with = "verify")]
    no_verify: bool,
    /// Where the read-back comes from: `cache` (the temp read back as written, mostly from the
    /// page cache) or `media` (after the fsync, through a fresh descriptor with the file's cached
    /// pages dropped, so the bytes come from the device).
    #[arg(long, value_enum, default_value = "cache")]
    verify: VerifyArg,
    /// Mtimes closer than SECS (e.g. 2, 0.01, 0) count as equal when deciding what is up to date;
    /// default: the step the destination keeps mtimes in, probed (2 s on FAT, 1 s on exFAT through
    /// FUSE, 1 ns on ext4).
    #[arg(long, value_name = "SECS", value_parser = parse_window)]
    modify_window: Option<Duration>,
    /// What survives a power cut. `full`: each file synced before its rename, each directory
    /// after (everything reported copied is durable on return); `old-or-new`: files synced, not
    /// directories (each file old or complete new after a cut, renames may be lost); `none`: no
    /// sync (safe against crashes of this process only: may leave empty files).
    #[arg(long, value_enum, default_value = "full")]
    durability: DurabilityArg,
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
    src: PathBuf,
    /// Destination directory (created if missing).
    dst: PathBuf,
}

const AFTER_HELP: &str = "\
Exit codes:
  0    everything copied or skipped (up to date)
  1    some entry failed (named; the others were copied)
  2    refused before any work (DST inside SRC, a collision, no space, bad arguments)
  130  Ctrl-C or SIGTERM (temps removed, partial report printed)

Examples:
  safefs copy roms/ /media/card/roms/        # like rsync -a roms/ /media/card/roms/, verified
  safefs copy --dry-run --json photos/ backup/";

#[derive(Clone, Copy, clap::ValueEnum)]
enum VerifyArg {
    Cache,
    Media,
}

fn parse_window(arg: &str) -> Result<Duration, String> {
    let secs: f64 = arg.parse().map_err(|e| format!("not a number of seconds: {e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("not a usable number of seconds: {e}"))
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DurabilityArg {
    Full,
    OldOrNew,
    None,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let cancel = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal sets the flag (the copy stops cleanly); a second one, with the flag
        // already set, exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, cancel.clone())?;
        signal_hook::flag::register(signal, cancel.clone())?;
    }
    if bucket::is_url(args.src.as_os_str()) || bucket::is_url(args.dst.as_os_str()) {
        anyhow::ensure!(
            !args.checksum && args.modify_window.is_none(),
            "--checksum and --modify-window do not apply to s3:// copies yet"
        );
        if args.dry_run {
            return super::remote::dry_run(&args.src, &args.dst, args.json);
        }
        let opts = bucket::TransferOptions {
            jobs: args.jobs.map_or(bucket::TransferOptions::default().jobs, usize::from),
            verify: !args.no_verify,
            cancel: Some(cancel),
        };
        return super::remote::copy(&args.src, &args.dst, &opts, args.json);
    }
    raise_open_files_limit();
    let mut opts = CopyOptions::default();
    opts.jobs = args.jobs.map(usize::from);
    opts.verify = !args.no_verify;
    opts.durability = match args.durability {
        DurabilityArg::Full => Durability::Full,
        DurabilityArg::OldOrNew => Durability::OldOrNew,
        DurabilityArg::None => Durability::None,
    };
    opts.checksum = args.checksum;
    opts.case_insensitive = args.case_insensitive;
    opts.modify_window = args.modify_window;
    opts.read_back = match args.verify {
        VerifyArg::Cache => ReadBack::Cache,
        VerifyArg::Media => ReadBack::Media,
    };
    opts.cancel = Some(cancel.clone());

    let plan = match folder_copier::plan(&args.src, &args.dst, &opts) {
        Ok(plan) => plan,
        Err(err) => {
            refused(&args, &err)?;
            return Ok(exit::USAGE.into());
        }
    };
    if args.dry_run {
        return dry_run(&args, &plan);
    }
    if cancel.load(Ordering::SeqCst) {
        say!("copy: interrupted before anything was copied");
        return Ok(exit::INTERRUPTED.into());
    }

    let progress = Progress::new(plan.totals(), !args.json);
    let result = folder_copier::execute(plan, &opts, &progress);
    progress.finish();
    let mut report = match result {
        Ok(report) => report,
        Err(err) => {
            refused(&args, &err)?;
            return Ok(exit::USAGE.into());
        }
    };
    report.elapsed = started.elapsed();

    for failure in &report.failed {
        say!("copy: failed {failure}");
    }
    if args.json {
        print_json(&report_json(&args, &report))?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", summary(&report))?;
        out.flush()?;
    }
    Ok(if report.interrupted {
        exit::INTERRUPTED.into()
    } else if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        exit::FAILED.into()
    })
}

/// The copy was refused before any work: why, on stderr (every collision listed), or as JSON.
fn refused(args: &Args, err: &Error) -> anyhow::Result<()> {
    let collisions: Vec<String> = match err {
        Error::Collisions { collisions, .. } => {
            collisions.iter().map(ToString::to_string).collect()
        }
        _ => Vec::new(),
    };
    let unstorable: Vec<String> = match err {
        Error::Unstorable { entries, .. } => entries.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    };
    if args.json {
        return print_json(&json!({
            "src": names::escape(&args.src),
            "dst": names::escape(&args.dst),
            "ok": false,
            "error": {
                "kind": "refused",
                "message": crate::Chain(err).to_string(),
                "collisions": collisions,
                "unstorable": unstorable,
            },
        }));
    }
    say!("copy: {}", crate::Chain(err));
    for collision in &collisions {
        say!("  collision: {collision}");
    }
    for entry in &unstorable {
        say!("  cannot store: {entry}");
    }
    Ok(())
}

fn dry_run(args: &Args, plan: &CopyPlan) -> anyhow::Result<ExitCode> {
    for warning in plan.warnings() {
        say!("copy: {warning}");
    }
    for problem in plan.problems() {
        say!("copy: would fail {problem}");
    }
    let totals = plan.totals();
    if totals.shortfall > 0 {
        say!(
            "copy: not enough free space on {}: {} needed, {} available, {} short; a real run \
             would refuse",
            names::shown(&args.dst),
            HumanBytes(totals.needed),
            HumanBytes(totals.available.unwrap_or(0)),
            HumanBytes(totals.shortfall)
        );
    }
    let ok = plan.problems().is_empty() && totals.shortfall == 0;
    if args.json {
        let entries: Vec<Value> = plan
            .entries()
            .map(|entry| {
                let mut value = json!({
                    "action": action_name(entry.action),
                    "kind": if entry.symlink { "symlink" } else { "file" },
                    "len": entry.len,
                });
                put_path(&mut value, "path", &entry.rel);
                value
            })
            .collect();
        print_json(&json!({
            "src": names::escape(&args.src),
            "dst": names::escape(&args.dst),
            "dry_run": true,
            "ok": ok,
            "case_insensitive": plan.case_insensitive(),
            "modify_window_secs": plan.modify_window().as_secs_f64(),
            "cluster": plan.destination().cluster,
            "shortfall": totals.shortfall,
            "totals": totals_json(totals),
            "entries": entries,
            "warnings": plan.warnings().iter().map(warning_json).collect::<Vec<_>>(),
            "problems": plan.problems().iter().map(|p| failure_json(&p.path, &p.error)).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for entry in plan.entries() {
            writeln!(out, "{} {}", action_name(entry.action), names::shown(&entry.rel))?;
        }
        writeln!(
            out,
            "dry run: would copy {} ({}, needing {} of {} free), skip {}; nothing written",
            totals.to_copy,
            HumanBytes(totals.to_copy_bytes),
            HumanBytes(totals.needed),
            totals.available.map_or_else(|| "?".to_owned(), |a| HumanBytes(a).to_string()),
            totals.to_skip,
        )?;
        out.flush()?;
    }
    Ok(if ok { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Copy => "copy",
        Action::Skip => "skip",
        Action::Compare => "compare",
    }
}

/// The last line of a copy: the report's own line after `copy: ` (`copy interrupted: ` when it
/// was interrupted, the report saying `interrupted: ` itself).
fn summary(report: &CopyReport) -> String {
    if report.interrupted { format!("copy {report}") } else { format!("copy: {report}") }
}

fn report_json(args: &Args, report: &CopyReport) -> Value {
    json!({
        "src": names::escape(&args.src),
        "dst": names::escape(&args.dst),
        "dry_run": false,
        "ok": report.is_success(),
        "copied": report.copied,
        "copied_bytes": report.copied_bytes,
        "links": report.links,
        "hard_links": report.hard_links,
        "dirs_created": report.dirs_created,
        "skipped": report.skipped,
        "skipped_bytes": report.skipped_bytes,
        "failed": report.failed.iter().map(|f| failure_json(&f.path, &f.error)).collect::<Vec<_>>(),
        "warnings": report.warnings.iter().map(warning_json).collect::<Vec<_>>(),
        "retries": report.retries,
        "verified": report.verified,
        "verified_from": report.verified.then_some(match report.read_back {
            ReadBack::Media => "media",
            _ => "cache",
        }),
        "interrupted": report.interrupted,
        "not_attempted": report.not_attempted,
        "elapsed_secs": report.elapsed.as_secs_f64(),
        "throughput_bytes_per_sec": report.throughput(),
    })
}

fn totals_json(t: &PlanTotals) -> Value {
    json!({
        "dirs": t.dirs, "files": t.files, "bytes": t.bytes, "links": t.links,
        "to_copy": t.to_copy, "to_copy_bytes": t.to_copy_bytes, "to_skip": t.to_skip,
        "needed": t.needed, "available": t.available, "shortfall": t.shortfall,
    })
}

fn failure_json(path: &Path, error: &FileError) -> Value {
    let mut value = json!({ "error": crate::Chain(error).to_string() });
    put_path(&mut value, "path", path);
    value
}

fn warning_json(warning: &Warning) -> Value {
    let (kind, path) = match warning {
        Warning::SkippedSpecial { path, .. } => ("skipped_special", path),
        Warning::SkippedTemp { path } => ("skipped_temp", path),
        Warning::RemovedTemp { path } => ("removed_temp", path),
        Warning::BusyTemp { path } => ("busy_temp", path),
        Warning::Destination { path, .. } => ("destination", path),
        Warning::ModesNotKept { path } => ("modes_not_kept", path),
        Warning::NoCapacity { path } => ("no_capacity", path),
        Warning::XattrsNotKept { path, .. } => ("xattrs_not_kept", path),
        Warning::OwnersNotKept { path, .. } => ("owners_not_kept", path),
        _ => ("other", &std::path::PathBuf::new()),
    };
    let mut value = json!({ "kind": kind, "message": warning.to_string() });
    put_path(&mut value, "path", path);
    value
}

/// `key`: the path escaped as in every message and report (`names::escape`), so a name that is not
/// UTF-8 is never altered and reads back exactly with `names::unescape`.
fn put_path(value: &mut Value, key: &str, path: &Path) {
    value[key] = json!(names::escape(path));
}

/// Progress on stderr: a bar with bytes, rate and ETA when stderr is a terminal; otherwise only
/// warnings and retries, one line each.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    files: u64,
    done: AtomicU64,
    say_warnings: bool,
}

impl Progress {
    pub(crate) fn new(totals: &PlanTotals, say_warnings: bool) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let style = ProgressStyle::with_template(
                "{msg:>14} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = ProgressBar::new(totals.bytes).with_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, files: totals.files + totals.links, done: AtomicU64::new(0), say_warnings }
    }

    fn say(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => say!("{line}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl CopyProgress for Progress {
    fn bytes_copied(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn file_done(&self, _rel: &Path, len: u64, outcome: FileOutcome) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            if outcome == FileOutcome::Skipped {
                bar.inc(len);
            }
            bar.set_message(format!("{done}/{} files", self.files));
        }
    }

    fn warning(&self, warning: &Warning) {
        if self.say_warnings {
            self.say(format!("copy: {warning}"));
        }
    }

    fn retry(&self, rel: &Path, error: &FileError, next_attempt: u32, delay: Duration) {
        self.say(format!(
            "copy: retrying {} (attempt {next_attempt}) in {} ms: {}",
            names::shown(rel),
            delay.as_millis(),
            crate::Chain(error)
        ));
    }
}

/// Lets the copy hold as many open files as the hard limit allows, as a program may: the copier
/// sizes its batches (one `syncfs` each) by the soft limit, which is often 1024 where the hard
/// one is far higher. Best effort: a refusal keeps the soft limit, and the batches smaller.
fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
    {
        let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(maximum), ..limit });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reports_sizes_read_as_the_progress_bars_do() {
        let sizes = [0, 1, 1023, 1024, 1536, 1_048_575, 1_000_000, 123_456_789, 5 << 30, u64::MAX];
        for n in sizes {
            assert_eq!(folder_copier::human_bytes(n).to_string(), HumanBytes(n).to_string());
        }
    }
}

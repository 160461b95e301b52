//! `cargo xtask check [-q] [--status] [-w] [--strict] [--ignore-missing] [MANIFEST...|-]`
//!
//! `xxhsum -c` semantics and output: every line of every manifest (GNU, `XXH3_`, or BSD `--tag`
//! style, escaped names too) is checked against the file it names, relative to the current
//! directory. stdout gets, byte for byte as xxhsum prints them, `path: OK` / `path: FAILED` in
//! manifest order, `MANIFEST:LINE: Could not open or read 'path': CAUSE.` for a file that cannot be
//! read, and after each manifest xxhsum's summary (`1 computed checksum did NOT match`, ...).
//! `-w` names each improperly formatted line on stderr. `-` or no MANIFEST reads standard input.
//! Files are hashed in parallel.
//!
//! Exit 0 when every listed file matched; 1 when a file did not match or could not be read, when a
//! manifest has no properly formatted line, or (with `--strict`) when any line is malformed;
//! 2 when a manifest cannot be opened (nothing is checked then) or on usage errors.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;

use anyhow::Context;
use rayon::prelude::*;
use toolkit::checksum::{DEFAULT_MAX_LINE, Entry, Error, ManifestReader};
use toolkit::{checksum, names};

use crate::exit;

/// Flags of `check`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Fail (exit 1) when any manifest line is improperly formatted.
    #[arg(long)]
    strict: bool,
    /// Do not print OK for each successfully verified file.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print nothing; the exit code tells.
    #[arg(long)]
    status: bool,
    /// Name each improperly formatted line on stderr.
    #[arg(long, short = 'w')]
    warn: bool,
    /// Do not fail or report for missing files.
    #[arg(long)]
    ignore_missing: bool,
    /// Manifests to check; `-` (or none) for standard input.
    manifests: Vec<std::path::PathBuf>,
}

const AFTER_HELP: &str = "\
Exit codes:
  0  every listed file matched
  1  a file did not match or could not be read, a manifest had no checksum line, or (--strict)
     a line was improperly formatted
  2  a manifest could not be opened (nothing was checked), or a usage error

Examples:
  safefs check photos.xxh128           # photos/a.jpg: OK ...
  safefs hash -H2 --tag src/ | safefs check -q -   # only failures and the summary";

/// Malformed lines named one by one per manifest; the rest are counted (binary garbage would
/// otherwise flood the terminal).
const MAX_MALFORMED_SHOWN: usize = 10;

#[derive(Default)]
struct Tally {
    malformed: usize,
    unreadable: usize,
    mismatched: usize,
    verified: usize,
    no_valid_lines: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Open every manifest first: one that cannot be opened is a fatal error before any work.
    let mut readers: Vec<(String, Box<dyn BufRead>)> = Vec::new();
    let stdin_only = [std::path::PathBuf::from("-")];
    let manifests = if args.manifests.is_empty() { &stdin_only[..] } else { &args.manifests[..] };
    for manifest in manifests {
        let shown = names::escape(manifest).into_owned();
        let reader: Box<dyn BufRead> = if manifest.as_os_str() == "-" {
            Box::new(BufReader::new(io::stdin()))
        } else {
            let file = File::open(manifest).with_context(|| format!("cannot open {shown}"))?;
            if file.metadata().with_context(|| format!("cannot stat {shown}"))?.is_dir() {
                anyhow::bail!("cannot read {shown}: is a directory");
            }
            Box::new(BufReader::new(file))
        };
        readers.push((shown, reader));
    }
    let mut failed = false;
    for (name, reader) in readers {
        let mut tally = Tally::default();
        check_manifest(&args, &name, reader, &mut tally)?;
        // xxhsum says nothing more of a manifest without a single checksum line.
        if !args.status && !tally.no_valid_lines {
            summarize(&tally)?;
        }
        failed |= tally.unreadable > 0
            || tally.mismatched > 0
            || tally.no_valid_lines
            || (args.strict && tally.malformed > 0)
            || (args.ignore_missing && tally.verified == 0);
    }
    Ok(if failed { exit::FAILED.into() } else { ExitCode::SUCCESS })
}

/// xxhsum's summary of one manifest, on stdout as xxhsum prints it.
fn summarize(tally: &Tally) -> anyhow::Result<()> {
    let plural = |n: usize, one: &'static str, many: &'static str| if n == 1 { one } else { many };
    if tally.malformed > 0 {
        let verb = plural(tally.malformed, "line is", "lines are");
        out!("{} {verb} improperly formatted", tally.malformed);
    }
    if tally.unreadable > 0 {
        let noun = plural(tally.unreadable, "file", "files");
        out!("{} listed {noun} could not be read", tally.unreadable);
    }
    if tally.mismatched > 0 {
        let noun = plural(tally.mismatched, "checksum", "checksums");
        out!("{} computed {noun} did NOT match", tally.mismatched);
    }
    Ok(())
}

fn check_manifest(
    args: &Args,
    name: &str,
    reader: Box<dyn BufRead>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let mut entries: Vec<(u64, Entry)> = Vec::new();
    let mut malformed = 0;
    for item in ManifestReader::new(reader, DEFAULT_MAX_LINE) {
        let (line, reason) = match item {
            Ok(entry) => {
                entries.push(entry);
                continue;
            }
            Err(Error::Malformed { line, reason }) => (line, reason),
            Err(Error::LineTooLong { line, max }) => (line, format!("longer than {max} bytes")),
            Err(err) => return Err(err).with_context(|| format!("cannot read {name}")),
        };
        malformed += 1;
        if args.warn && !args.status && malformed <= MAX_MALFORMED_SHOWN {
            say!("{name}:{line}: Error: Improperly formatted checksum line ({reason}).");
        }
    }
    if args.warn && !args.status && malformed > MAX_MALFORMED_SHOWN {
        say!("{name}: {} more improperly formatted lines", malformed - MAX_MALFORMED_SHOWN);
    }
    tally.malformed += malformed;
    if entries.is_empty() {
        tally.no_valid_lines = true;
        if !args.status {
            say!("{name}: no properly formatted xxHash checksum lines found");
        }
        return Ok(());
    }
    let ignored_all = |tally: &Tally| args.ignore_missing && tally.verified == 0;
    let results: Vec<_> = entries
        .par_iter()
        .with_max_len(1)
        .map(|(_, entry)| checksum::hash_file(entry.digest.algo(), &entry.path))
        .collect();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for ((line, entry), result) in entries.iter().zip(results) {
        let shown = shown_name(entry);
        match result {
            Ok(fd) if fd.digest == entry.digest => {
                tally.verified += 1;
                if !args.quiet && !args.status {
                    out.write_all(&shown)?;
                    out.write_all(b": OK\n")?;
                }
            }
            Ok(_) => {
                tally.verified += 1;
                tally.mismatched += 1;
                if !args.status {
                    out.write_all(&shown)?;
                    out.write_all(b": FAILED\n")?;
                }
            }
            Err(Error::Open { source, .. })
                if args.ignore_missing && source.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                tally.unreadable += 1;
                if !args.status {
                    let cause = match &err {
                        Error::Open { source, .. } | Error::Read { source, .. } => {
                            crate::strerror(source)
                        }
                        other => other.to_string(),
                    };
                    write!(out, "{name}:{line}: Could not open or read '")?;
                    out.write_all(&shown)?;
                    writeln!(out, "': {cause}.")?;
                }
            }
        }
    }
    out.flush()?;
    if ignored_all(tally) && !args.status {
        say!("{name}: no file was verified");
    }
    Ok(())
}

/// The name as coreutils prints it in check results: escaped, with a leading backslash, when it
/// holds a backslash or line break, so one result is always one line.
fn shown_name(entry: &Entry) -> Vec<u8> {
    let name = checksum::path_bytes(&entry.path);
    if !names::needs_manifest_escape(name) {
        return name.to_vec();
    }
    let mut shown = b"\\".to_vec();
    names::escape_manifest(&mut shown, name);
    shown
}

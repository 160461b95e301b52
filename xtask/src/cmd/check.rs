//! `cargo xtask check [--strict] [--quiet] [--status] [--ignore-missing] MANIFEST...`
//!
//! `xxhsum -c` semantics: every line of every manifest (GNU, `XXH3_`, or BSD `--tag` style, escaped
//! names too) is checked against the file it names, relative to the current directory. stdout gets
//! `path: OK` / `path: FAILED` / `path: FAILED open or read` in manifest order; stderr gets the
//! causes and xxhsum's summary warnings. Files are hashed in parallel.
//!
//! Exit 0 when every listed file matched; 1 when a file did not match or could not be read, when a
//! manifest has no properly formatted line, or (with `--strict`) when any line is malformed;
//! 2 when a manifest cannot be opened (nothing is checked then) or on usage errors.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;

use anyhow::Context;
use camino::Utf8PathBuf;
use checksum::{DEFAULT_MAX_LINE, Entry, Error, ManifestReader};
use rayon::prelude::*;

use crate::exit;

/// Flags of `cargo xtask check`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Fail (exit 1) when any manifest line is improperly formatted.
    #[arg(long)]
    strict: bool,
    /// Do not print OK for each successfully verified file.
    #[arg(long)]
    quiet: bool,
    /// Print nothing; the exit code tells.
    #[arg(long)]
    status: bool,
    /// Do not fail or report for missing files.
    #[arg(long)]
    ignore_missing: bool,
    /// Manifests to check (`-` for stdin).
    #[arg(required = true)]
    manifests: Vec<Utf8PathBuf>,
}

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
    for manifest in &args.manifests {
        let reader: Box<dyn BufRead> = if manifest == "-" {
            Box::new(BufReader::new(io::stdin()))
        } else {
            let file = File::open(manifest).with_context(|| format!("cannot open {manifest}"))?;
            if file.metadata().with_context(|| format!("cannot stat {manifest}"))?.is_dir() {
                anyhow::bail!("cannot read {manifest}: is a directory");
            }
            Box::new(BufReader::new(file))
        };
        readers.push((manifest.to_string(), reader));
    }
    let mut tally = Tally::default();
    for (name, reader) in readers {
        check_manifest(&args, &name, reader, &mut tally)?;
    }
    if !args.status {
        let plural =
            |n: usize, one: &str, many: &str| if n == 1 { one.to_owned() } else { many.to_owned() };
        if tally.malformed > 0 {
            let verb = plural(tally.malformed, "line is", "lines are");
            say!("{} {verb} improperly formatted", tally.malformed);
        }
        if tally.unreadable > 0 {
            let noun = plural(tally.unreadable, "file", "files");
            say!("{} listed {noun} could not be read", tally.unreadable);
        }
        if tally.mismatched > 0 {
            let noun = plural(tally.mismatched, "checksum", "checksums");
            say!("{} computed {noun} did NOT match", tally.mismatched);
        }
    }
    let failed = tally.unreadable > 0
        || tally.mismatched > 0
        || tally.no_valid_lines
        || (args.strict && tally.malformed > 0)
        || (args.ignore_missing && tally.verified == 0);
    Ok(if failed { exit::FAILED.into() } else { ExitCode::SUCCESS })
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
        if !args.status && malformed <= MAX_MALFORMED_SHOWN {
            say!("{name}:{line}: improperly formatted: {reason}");
        }
    }
    if !args.status && malformed > MAX_MALFORMED_SHOWN {
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
                    out.write_all(&shown)?;
                    out.write_all(b": FAILED open or read\n")?;
                    out.flush()?;
                    say!("{name}:{line}: could not open or read: {err}");
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The name as coreutils prints it in check results: escaped, with a leading backslash, when it
/// holds a backslash or line break, so one result is always one line.
fn shown_name(entry: &Entry) -> Vec<u8> {
    let line = checksum::format_line(&Entry { style: checksum::Style::Gnu, ..entry.clone() });
    let escaped = line.first() == Some(&b'\\');
    // Proof the split finds the separator: format_line writes "<hex>  <name>\n" in GNU style.
    let start = line.windows(2).position(|w| w == b"  ").map_or(0, |i| i + 2);
    let mut shown = Vec::with_capacity(line.len());
    if escaped {
        shown.push(b'\\');
    }
    shown.extend_from_slice(&line[start..line.len() - 1]);
    shown
}

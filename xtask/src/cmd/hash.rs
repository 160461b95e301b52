//! `cargo xtask hash [--algo xxh128|xxh64|xxh3] PATH...`
//!
//! One xxhsum GNU-style line per file on stdout (`<hex>  <path>`, `XXH3_<hex>  <path>` for XXH3),
//! accepted by `xxhsum -c`. Directories are recursed in sorted order (symlinks and special files
//! inside them are skipped with a warning); files are hashed in parallel, printed in order.
//!
//! Exit 0 when every file was hashed; 1 when some path could not be read (each named on stderr,
//! the others still printed), as coreutils' `*sum` tools do; 2 on usage errors.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use camino::Utf8PathBuf;
use checksum::{Entry, Style};

use crate::exit;

/// Flags of `cargo xtask hash`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Hash algorithm.
    #[arg(long, value_enum, default_value = "xxh128")]
    algo: Algo,
    /// Files, and directories recursed in sorted order.
    #[arg(required = true)]
    paths: Vec<Utf8PathBuf>,
}

/// Algorithms `hash` can print.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Algo {
    Xxh128,
    Xxh64,
    Xxh3,
}

impl From<Algo> for checksum::Algo {
    fn from(algo: Algo) -> Self {
        match algo {
            Algo::Xxh128 => checksum::Algo::Xxh128,
            Algo::Xxh64 => checksum::Algo::Xxh64,
            Algo::Xxh3 => checksum::Algo::Xxh3,
        }
    }
}

/// Files hashed per batch: output appears batch by batch, in order, while memory stays bounded.
const BATCH: usize = 4096;

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let algo = checksum::Algo::from(args.algo);
    let mut failed = 0usize;
    let mut files: Vec<PathBuf> = Vec::new();
    for path in &args.paths {
        match std::fs::metadata(path) {
            Err(err) => {
                say!("hash: {path}: {err}");
                failed += 1;
            }
            Ok(meta) if meta.is_dir() => match checksum::list_tree(path) {
                Err(err) => {
                    say!("hash: {err}");
                    failed += 1;
                }
                Ok(listing) => {
                    for skipped in &listing.skipped {
                        let shown = path.as_std_path().join(&skipped.rel);
                        say!("hash: skipped {} {}", skipped.kind, shown.display());
                    }
                    for err in &listing.errors {
                        say!("hash: {err}");
                    }
                    failed += listing.errors.len();
                    files.extend(listing.files.iter().map(|f| path.as_std_path().join(&f.rel)));
                }
            },
            Ok(_) => files.push(path.into()),
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    for batch in files.chunks(BATCH) {
        for (path, result) in batch.iter().zip(checksum::hash_files(algo, batch, None)?) {
            match result {
                Ok(fd) => {
                    let entry = Entry { digest: fd.digest, path: path.clone(), style: Style::Gnu };
                    out.write_all(&checksum::format_line(&entry))?;
                }
                Err(err) => {
                    out.flush()?;
                    say!("hash: {err}");
                    failed += 1;
                }
            }
        }
    }
    out.flush()?;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

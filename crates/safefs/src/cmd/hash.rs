//! `cargo xtask hash [-H0..3|--algo ...] [--tag] [PATH...|-]`
//!
//! xxhsum's output: one line per file on stdout (`<hex>  <path>`, or `XXH128 (<path>) = <hex>` with
//! `--tag`), byte for byte what `xxhsum` prints for the same files and options, so `xxhsum -c`
//! and `check` both read it. XXH3 lines are always in the tagged style, as xxhsum 0.8.1 writes them
//! (its `-c` does not read 0.8.2's `XXH3_<hex>` lines; `check` reads both). `-` or no PATH reads
//! standard input, named `stdin` as xxhsum does. Directories are recursed in sorted order (symlinks
//! and special files inside them are skipped with a warning); files are hashed in parallel,
//! printed in order. The default algorithm is XXH128 (xxhsum's is XXH64: say `-H1` for that).
//!
//! Exit 0 when every file was hashed; 1 when some path could not be read (each named on stderr,
//! the others still printed), as xxhsum and coreutils' `*sum` tools do; 2 on usage errors.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rayon::prelude::*;
use toolkit::checksum::{Entry, Style};
use toolkit::{checksum, names};

use crate::exit;

/// Flags of `hash`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Algorithm as xxhsum numbers them: 0 XXH32, 1 XXH64, 2 XXH128, 3 XXH3 (also 32, 64, 128).
    #[arg(short = 'H', value_name = "N", value_parser = parse_h, conflicts_with = "algo")]
    h: Option<Algo>,
    /// Hash algorithm by name.
    #[arg(long, value_enum, default_value = "xxh128")]
    algo: Algo,
    /// Print BSD-style lines, `XXH128 (path) = hex`, as `xxhsum --tag`.
    #[arg(long)]
    tag: bool,
    /// Files, and directories recursed in sorted order; `-` (or none) for standard input.
    paths: Vec<OsString>,
}

const AFTER_HELP: &str = "\
Exit codes:
  0  every file was hashed
  1  some path could not be read (named on stderr; the others are still printed)
  2  usage error

Examples:
  safefs hash -H2 photos/ > photos.xxh128   # then: safefs check photos.xxh128, or xxhsum -c
  tar c dir | safefs hash -H1 -          # standard input, as xxhsum names it: stdin";

/// Algorithms `hash` can print.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Algo {
    Xxh128,
    Xxh64,
    Xxh3,
    Xxh32,
}

fn parse_h(s: &str) -> Result<Algo, String> {
    match s {
        "0" | "32" => Ok(Algo::Xxh32),
        "1" | "64" => Ok(Algo::Xxh64),
        "2" | "128" => Ok(Algo::Xxh128),
        "3" => Ok(Algo::Xxh3),
        _ => Err(format!("{s} is not one of 0, 1, 2, 3, 32, 64, 128")),
    }
}

impl From<Algo> for checksum::Algo {
    fn from(algo: Algo) -> Self {
        match algo {
            Algo::Xxh128 => checksum::Algo::Xxh128,
            Algo::Xxh64 => checksum::Algo::Xxh64,
            Algo::Xxh3 => checksum::Algo::Xxh3,
            Algo::Xxh32 => checksum::Algo::Xxh32,
        }
    }
}

/// Files hashed per batch: output appears batch by batch, in order, while memory stays bounded.
const BATCH: usize = 4096;

/// What to hash, in order: standard input or a file.
enum Input {
    Stdin,
    File(PathBuf),
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let algo = checksum::Algo::from(args.h.unwrap_or(args.algo));
    // xxhsum 0.8.1 writes XXH3 in the tagged style only; that is what its `-c` reads.
    let style = if args.tag || algo == checksum::Algo::Xxh3 { Style::Bsd } else { Style::Gnu };
    let mut failed = 0usize;
    let mut inputs: Vec<Input> = Vec::new();
    let stdin_only = [OsString::from("-")];
    let paths = if args.paths.is_empty() { &stdin_only[..] } else { &args.paths[..] };
    // The arguments are examined (and folders listed) several at once, each `list_tree` on
    // threads of its own: one after another, a cold disk would answer them one at a time. What
    // is said about them comes out in their order.
    let pool =
        rayon::ThreadPoolBuilder::new().num_threads(checksum::reading_threads(None)).build()?;
    let examined: Vec<_> = pool.install(|| {
        paths
            .par_iter()
            .map(|arg| {
                let path = Path::new(arg);
                let meta = (arg != "-").then(|| std::fs::metadata(path));
                let listing = match &meta {
                    Some(Ok(meta)) if meta.is_dir() => Some(checksum::list_tree(path)),
                    _ => None,
                };
                (meta, listing)
            })
            .collect()
    });
    for (arg, (meta, listing)) in paths.iter().zip(examined) {
        let Some(meta) = meta else {
            inputs.push(Input::Stdin);
            continue;
        };
        let path = Path::new(arg);
        match meta {
            Err(err) => {
                say!("hash: {}: {}", names::shown(path), err);
                failed += 1;
            }
            Ok(meta) if meta.is_dir() => match listing.unwrap_or_else(|| checksum::list_tree(path))
            {
                Err(err) => {
                    say!("hash: {}", crate::Chain(&err));
                    failed += 1;
                }
                Ok(listing) => {
                    for skipped in &listing.skipped {
                        let shown = path.join(&skipped.rel);
                        say!("hash: skipped {} {}", skipped.kind, names::shown(&shown));
                    }
                    for err in &listing.errors {
                        say!("hash: {}", crate::Chain(&err));
                    }
                    failed += listing.errors.len();
                    inputs.extend(listing.files.iter().map(|f| Input::File(path.join(&f.rel))));
                }
            },
            Ok(_) => inputs.push(Input::File(path.into())),
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut rest = &inputs[..];
    while !rest.is_empty() {
        if let Some(Input::Stdin) = rest.first() {
            match checksum::hash_reader(algo, std::io::stdin().lock()) {
                Ok((digest, _)) => {
                    let path = PathBuf::from("stdin");
                    out.write_all(&checksum::format_line(&Entry { digest, path, style }))?;
                }
                Err(err) => {
                    out.flush()?;
                    say!("hash: cannot read standard input: {}", err);
                    failed += 1;
                }
            }
            rest = &rest[1..];
            continue;
        }
        let files: Vec<PathBuf> = rest
            .iter()
            .take(BATCH)
            .map_while(|i| match i {
                Input::File(p) => Some(p.clone()),
                Input::Stdin => None,
            })
            .collect();
        rest = &rest[files.len()..];
        for (path, result) in files.iter().zip(checksum::hash_files(algo, &files, None)?) {
            match result {
                Ok(fd) => {
                    let entry = Entry { digest: fd.digest, path: path.clone(), style };
                    out.write_all(&checksum::format_line(&entry))?;
                }
                Err(err) => {
                    out.flush()?;
                    say!("hash: {}", crate::Chain(&err));
                    failed += 1;
                }
            }
        }
    }
    out.flush()?;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

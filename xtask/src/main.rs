//! `cargo xtask <verb>`: the toolkit's command line.
//!
//! This is the only crate that parses arguments, prints or exits. Library crates return typed
//! errors and report progress through callbacks; each verb in [`cmd`] turns those into terminal
//! output and one of the exit codes of the CLI contract (see `docs/CLI.md`):
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success |
//! | 1    | the check failed, or the lock was not taken (like `flock -n`) |
//! | 2    | usage or fatal error before any work |
//! | 130  | interrupted (temps cleaned up, partial report printed) |
#![allow(clippy::print_stdout, clippy::print_stderr)]

/// `eprintln!` that never panics. A diagnostic that cannot be written (stderr closed, or a file
/// on a full disk) must not turn a finished operation into a crash with the wrong exit code; the
/// crash harness's error injection found `eprintln!` doing exactly that.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that fails instead of panicking: a result that cannot be written (a closed pipe, a
/// full disk) is an error of the verb (`?` in a function returning `anyhow::Result`), exit 2.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
            .map_err(|e| anyhow::anyhow!("cannot write the result to stdout: {e}"))?
    }};
}

mod bench;
mod cmd;
mod exit;

/// An I/O error's cause as the C library words it (`No such file or directory`), without the
/// ` (os error 2)` Rust adds: for output that must read as other tools' (xxhsum).
pub(crate) fn strerror(err: &std::io::Error) -> String {
    let text = err.to_string();
    match (err.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_owned(),
        _ => text,
    }
}

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Safe file operations under crashes and concurrency.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print one xxhsum-style line per file (directories are recursed in sorted order).
    Hash(cmd::hash::Args),
    /// Check files against manifests, with `xxhsum -c` semantics and messages.
    Check(cmd::check::Args),
    /// Copy the contents of SRC into DST, verified, one task per source directory.
    Copy(cmd::copy::Args),
    /// Write DIR/manifest.xxh128 atomically after checking the snapshot is complete.
    Seal(cmd::seal::Args),
    /// Check DIR against its manifest and list every problem by path and kind.
    Verify(cmd::verify::Args),
    /// Print the newest snapshot directory under ROOT that verifies.
    Latest(cmd::latest::Args),
    /// Run CMD while holding an advisory lock on LOCKFILE (flock(1) semantics).
    Lock(cmd::lock::Args),
    /// Produce TARGET exactly once across processes: CMD writes `{}`, the result is verified and
    /// renamed onto TARGET.
    Once(cmd::once::Args),
    /// Write stdin to PATH atomically (a crash-safe `sponge`).
    Write(cmd::write::Args),
    /// Remove temp files that crashed writers left behind, and only those.
    Sweep(cmd::sweep::Args),
    /// Count and validate JSON lines with bounded memory.
    Jsonl(cmd::jsonl::Args),
    /// Run the main job end to end on a built-in example.
    Demo(cmd::demo::Args),
    /// Run the fuzz targets (property tests of every parser of untrusted input) for longer.
    Fuzz(cmd::fuzz::Args),
    /// Random once/write/copy/seal/verify processes on shared targets, some SIGKILLed; then check.
    Soak(cmd::soak::Args),
    /// Benchmark the toolkit side by side with peer tools and print ratios.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // `--help` and `--version` are not errors; everything else clap rejects is usage.
            let _ = err.print();
            return if err.use_stderr() { exit::USAGE.into() } else { ExitCode::SUCCESS };
        }
    };
    let result = match cli.command {
        Command::Hash(args) => cmd::hash::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Copy(args) => cmd::copy::run(args),
        Command::Seal(args) => cmd::seal::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Latest(args) => cmd::latest::run(args),
        Command::Lock(args) => cmd::lock::run(args),
        Command::Once(args) => cmd::once::run(args),
        Command::Write(args) => cmd::write::run(args),
        Command::Sweep(args) => cmd::sweep::run(args),
        Command::Jsonl(args) => cmd::jsonl::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Fuzz(args) => cmd::fuzz::run(args),
        Command::Soak(args) => cmd::soak::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            say!("error: {err:#}");
            exit::USAGE.into()
        }
    }
}

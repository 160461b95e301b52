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
            .map_err(|e| anyhow::Error::new(e).context("cannot write the result to stdout"))?
    }};
}

mod bench;
mod cmd;
mod exit;

/// An error and its causes, `message: cause: cause`, each said once: library messages never repeat
/// their cause (it is their `source()`), so printing one means walking the chain.
pub(crate) struct Chain<'a>(pub(crate) &'a dyn std::error::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

/// Whether `err` comes from writing into a closed pipe (`verb | head -1`): the reader has all it
/// wants, so the verb ends quietly, as xxhsum and other filters do (killed by SIGPIPE there).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The exit status a shell reports for a process killed by SIGPIPE (128 + 13).
const BROKEN_PIPE: u8 = 141;

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

/// Whether the command line asks for `--json` (before any `--`): then every failure is also
/// reported on stdout in the one JSON error shape.
fn wants_json() -> bool {
    std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json")
}

/// Prints the JSON error shape every verb shares (docs/FORMATS.md) on stdout:
/// `{"ok": false, "error": {"kind": KIND, "message": MESSAGE}}`.
fn print_json_error(kind: &str, message: &str) {
    use std::io::Write as _;
    let value = serde_json::json!({ "ok": false, "error": { "kind": kind, "message": message } });
    let _ = writeln!(std::io::stdout(), "{value:#}");
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // `--help` and `--version` are not errors; everything else clap rejects is usage.
            let _ = err.print();
            if !err.use_stderr() {
                return ExitCode::SUCCESS;
            }
            if wants_json() {
                let text = err.render().to_string();
                let first = text.lines().next().unwrap_or_default();
                print_json_error("usage", first.trim_start_matches("error: "));
            }
            return exit::USAGE.into();
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
        Err(err) if is_broken_pipe(&err) => BROKEN_PIPE.into(),
        Err(err) => {
            say!("error: {err:#}");
            if wants_json() {
                print_json_error("error", &format!("{err:#}"));
            }
            exit::USAGE.into()
        }
    }
}

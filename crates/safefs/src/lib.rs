//! # safefs
//!
//! The safe-fs-toolkit's command line, `safefs <verb>`, also run as `cargo xtask <verb>` inside
//! a clone. With `xtask` (the developer verbs), this is the only crate that parses arguments,
//! prints or exits. Library crates return typed errors and report progress through callbacks;
//! each verb (one module per verb) turns those into terminal output and one of the exit codes of the CLI
//! contract (see `docs/CLI.md`):
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success |
//! | 1    | the check failed, or the lock was not taken (like `flock -n`) |
//! | 2    | usage or fatal error before any work |
//! | 130  | interrupted (temps cleaned up, partial report printed) |
//! | 141  | stdout was a pipe that the reader closed (`safefs hash dir \| head -1`): ended quietly |
//!
//! `lock` and `once` pass on the exit status of the command they run.
//!
//! ```no_run
//! // The whole binary: parse, run, map errors to the contract's exit codes.
//! fn main() -> std::process::ExitCode {
//!     safefs::main_with(std::env::args_os(), "safefs", None)
//! }
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

// The workspace has one non-Unix policy: refuse at compile time, saying why (docs/ARCHITECTURE.md).
#[cfg(not(unix))]
compile_error!(
    "safefs supports Unix only (Linux, macOS, the BSDs): it is the command line of crates that support Unix only"
);

/// `eprintln!` that never panics. A diagnostic that cannot be written (stderr closed, or a file
/// on a full disk) must not turn a finished operation into a crash with the wrong exit code; the
/// crash harness's error injection found `eprintln!` doing exactly that.
///
/// ```
/// safefs::say!("note: {} files skipped", 3);
/// ```
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that fails instead of panicking: a result that cannot be written (a closed pipe, a
/// full disk) is an error of the verb (`?` in a function returning `anyhow::Result`); a closed
/// pipe then ends the verb quietly ([`finish`]).
///
/// ```
/// fn report() -> anyhow::Result<()> {
///     safefs::out!("{} files", 3);
///     Ok(())
/// }
/// report().unwrap();
/// ```
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
            .map_err(|e| ::anyhow::Error::new(e).context("cannot write the result to stdout"))?
    }};
}

mod cmd;
pub mod exit;
pub mod trees;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// An error and its causes, `message: cause: cause`, each said once: library messages never repeat
/// their cause (it is their `source()`), so printing one means walking the chain.
///
/// ```
/// let err = std::io::Error::other("disk on fire");
/// assert_eq!(safefs::Chain(&err).to_string(), "disk on fire");
/// ```
pub struct Chain<'a>(pub &'a dyn std::error::Error);

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

/// What clap's refusal of a command line means: `--help` and `--version` print and succeed;
/// anything else is a usage error (exit 2, and the JSON error shape with `--json`).
///
/// ```no_run
/// use clap::Parser;
/// #[derive(Parser)]
/// struct Cli { n: u32 }
/// if let Err(err) = Cli::try_parse() {
///     std::process::exit(if safefs::usage_error(err) == std::process::ExitCode::SUCCESS { 0 } else { 2 });
/// }
/// ```
pub fn usage_error(err: clap::Error) -> ExitCode {
    let _ = err.print();
    if !err.use_stderr() {
        return ExitCode::SUCCESS;
    }
    if wants_json() {
        let text = err.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        print_json_error("usage", first.trim_start_matches("error: "));
    }
    exit::USAGE.into()
}

/// The result of `verb` as the contract's exit code: its own code, 141 quietly for a closed
/// pipe, or the error and its causes on stderr (`VERB: error: cause`, as the verbs' own messages
/// begin; in the JSON error shape with `--json`) and 2.
///
/// ```
/// let code = safefs::finish("hash", Ok(std::process::ExitCode::SUCCESS));
/// assert_eq!(code, std::process::ExitCode::SUCCESS);
/// ```
pub fn finish(verb: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => BROKEN_PIPE.into(),
        Err(err) => {
            say!("{verb}: {err:#}");
            if wants_json() {
                print_json_error("error", &format!("{err:#}"));
            }
            exit::USAGE.into()
        }
    }
}

/// Safe file operations under crashes and concurrency.
#[derive(Parser)]
#[command(name = "safefs", version, about, max_term_width = 100, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Verb,
}

const AFTER_HELP: &str = "\
Exit codes: 0 success; 1 the check failed or the lock was not taken; 2 usage or an error before
any work; 130 interrupted; 141 stdout was a pipe the reader closed. `lock` and `once` pass on
their command's status. Each verb's --help has its own codes and examples.";

#[derive(Subcommand)]
enum Verb {
    /// Print xxhsum's line per file (directories are recursed in sorted order).
    Hash(cmd::hash::Args),
    /// Check files against manifests, with `xxhsum -c` semantics and output.
    Check(cmd::check::Args),
    /// Copy the contents of SRC into DST, verified, one task per source directory.
    Copy(cmd::copy::Args),
    /// Write DIR/manifest.xxh128 atomically after checking the snapshot is complete.
    Seal(cmd::seal::Args),
    /// Check DIR against its manifest and list every problem by path and kind.
    Verify(cmd::verify::Args),
    /// Print the newest snapshot directory under ROOT that verifies.
    Latest(cmd::latest::Args),
    /// Run CMD while holding an advisory lock on LOCKFILE (flock(1)'s forms and semantics).
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
    /// Print a shell completion script for SHELL on stdout.
    Completions(cmd::completions::Args),
    /// Print the manual page (roff) on stdout: `safefs man | man -l -`.
    Man,
}

/// The whole command line: parses `args` (the first is the program's name) as `name <verb> ...`,
/// runs the verb and returns the contract's exit code. `extra_help` is added to the top-level
/// `--help` (`cargo xtask` lists its developer verbs there).
///
/// ```no_run
/// let code = safefs::main_with(["safefs", "hash", "Cargo.toml"].map(Into::into), "safefs", None);
/// # let _ = code;
/// ```
pub fn main_with(
    args: impl IntoIterator<Item = OsString>,
    name: &'static str,
    extra_help: Option<&'static str>,
) -> ExitCode {
    let mut command = Cli::command().name(name).bin_name(name);
    if let Some(extra) = extra_help {
        command = command.after_help(format!("{AFTER_HELP}\n\n{extra}"));
    }
    let parsed = command.try_get_matches_from(args).and_then(|m| {
        let verb = m.subcommand_name().unwrap_or("error").to_owned();
        Cli::from_arg_matches(&m).map(|cli| (verb, cli))
    });
    let (verb, cli) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return usage_error(err),
    };
    finish(
        &verb,
        match cli.command {
            Verb::Hash(args) => cmd::hash::run(args),
            Verb::Check(args) => cmd::check::run(args),
            Verb::Copy(args) => cmd::copy::run(args),
            Verb::Seal(args) => cmd::seal::run(args),
            Verb::Verify(args) => cmd::verify::run(args),
            Verb::Latest(args) => cmd::latest::run(args),
            Verb::Lock(args) => cmd::lock::run(args),
            Verb::Once(args) => cmd::once::run(args),
            Verb::Write(args) => cmd::write::run(args),
            Verb::Sweep(args) => cmd::sweep::run(args),
            Verb::Jsonl(args) => cmd::jsonl::run(args),
            Verb::Demo(args) => cmd::demo::run(args),
            // For the installable command users type, also when `cargo xtask` prints them.
            Verb::Completions(args) => cmd::completions::run(args, Cli::command()),
            Verb::Man => cmd::completions::man(Cli::command()),
        },
    )
}

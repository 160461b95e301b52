//! `cargo xtask <verb>`: the toolkit's command line inside a clone, and the developer verbs.
//!
//! Every user verb (`hash`, `check`, `copy`, `seal`, `verify`, `latest`, `lock`, `once`, `write`,
//! `sweep`, `jsonl`, `demo`, ...) is the installable `safefs` command's, run through
//! [`safefs::main_with`]; this crate adds what only developers of the toolkit run: `bench`
//! (whole-process benchmarks against peer tools), `soak` and `fuzz`. Exit codes are the CLI
//! contract's (`docs/CLI.md`).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

// The workspace has one non-Unix policy: refuse at compile time, saying why (docs/ARCHITECTURE.md).
#[cfg(not(unix))]
compile_error!(
    "xtask supports Unix only (Linux, macOS, the BSDs): it runs the safefs command line, which supports Unix only"
);

#[macro_use]
extern crate safefs;

mod bench;
mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use safefs::exit;

/// The developer verbs of `cargo xtask`.
#[derive(Parser)]
#[command(name = "cargo xtask", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the fuzz targets (property tests of every parser of untrusted input) for longer.
    Fuzz(cmd::fuzz::Args),
    /// Random once/write/copy/seal/verify processes on shared targets, some SIGKILLed; then check.
    Soak(cmd::soak::Args),
    /// Benchmark the toolkit side by side with peer tools and print ratios.
    Bench(bench::Args),
}

/// Listed under `cargo xtask --help`, after the user verbs.
const DEVELOPER_VERBS: &str = "\
Developer verbs (cargo xtask only; see cargo xtask VERB --help):
  bench  Benchmark the toolkit side by side with peer tools and print ratios
  soak   Random once/write/copy/seal/verify processes on shared targets, some SIGKILLed; then check
  fuzz   Run the fuzz targets (property tests of every parser of untrusted input) for longer";

fn main() -> ExitCode {
    let verb = std::env::args_os().nth(1);
    let developer = verb.as_ref().is_some_and(|v| v == "bench" || v == "soak" || v == "fuzz");
    if !developer {
        return safefs::main_with(std::env::args_os(), "cargo xtask", Some(DEVELOPER_VERBS));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return safefs::usage_error(err),
    };
    let (verb, result) = match cli.command {
        Command::Fuzz(args) => ("fuzz", cmd::fuzz::run(args)),
        Command::Soak(args) => ("soak", cmd::soak::run(args)),
        Command::Bench(args) => ("bench", bench::run(args)),
    };
    safefs::finish(verb, result)
}

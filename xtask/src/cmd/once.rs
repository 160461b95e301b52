//! `cargo xtask once [--xxh128 HEX] [--timeout SECS] TARGET -- CMD...`
//!
//! Produce TARGET exactly once among all processes asking for it (`dir_lock::produce_once`):
//! if TARGET exists and verifies it is reused at once; otherwise the sidecar lock `TARGET.lock` is
//! taken (waiting for another producer, saying who), TARGET is checked again, and CMD runs with
//! every `{}` in its arguments replaced by a temp path beside TARGET. CMD writes that path; the
//! result is verified (non-empty, and its XXH128 if `--xxh128` is given) and only then renamed onto
//! TARGET. A TARGET that exists but fails verification is rebuilt once.
//!
//! CMD must write the temp path in place (e.g. `> {}` or `curl -o {}`); a CMD that replaces the
//! path with another file by renaming still works, but the sync before the rename covers only the
//! file this process created.
//!
//! Exit codes: 0 TARGET is there and verified (produced, reused or rebuilt); 1 CMD failed, the
//! result failed verification, or `--timeout` ran out (TARGET untouched; the message names the
//! holder); 2 usage or an error before any work.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Context;
use camino::Utf8PathBuf;
use checksum::{Algo, Digest};
use dir_lock::{Error, Holders, OnceOptions, OnceOutcome, Wait, produce_once};

use crate::cmd::lock::SayWaiting;
use crate::exit;

/// Flags of `cargo xtask once`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Expected XXH128 of the artifact, as 32 hex digits.
    #[arg(long, value_name = "HEX")]
    xxh128: Option<String>,
    /// Give up waiting for another producer after SECS seconds (exit 1).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// The artifact to produce.
    target: Utf8PathBuf,
    /// The producer; each `{}` in its arguments is replaced by a temp path beside TARGET.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let expected = match &args.xxh128 {
        Some(hex) => Some(
            Digest::from_hex(Algo::Xxh128, hex)
                .with_context(|| format!("invalid --xxh128 {hex}"))?,
        ),
        None => None,
    };
    anyhow::ensure!(
        args.command.iter().any(|a| a.contains("{}")),
        "CMD must contain `{{}}` (the temp path it writes)"
    );
    let timeout = match super::lock::wait_mode(false, args.timeout)? {
        Wait::Timeout(limit) => Some(limit),
        _ => None,
    };
    let observer = SayWaiting::default();
    let opts = OnceOptions { timeout, on_wait: &observer, ..OnceOptions::default() };
    let target = &args.target;
    let verify = |path: &Path| verify(path, expected);
    let produce = |file: &mut atomic_io::AtomicFile| -> Result<(), String> {
        let temp = file.temp_path().to_str().ok_or("the temp path is not UTF-8")?;
        let argv: Vec<String> = args.command.iter().map(|a| a.replace("{}", temp)).collect();
        let status = Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .map_err(|e| format!("failed to run {}: {e}", argv[0]))?;
        if status.success() { Ok(()) } else { Err(format!("{} exited with {status}", argv[0])) }
    };
    match produce_once(target, &opts, verify, produce) {
        Ok(outcome) => {
            match outcome {
                OnceOutcome::Reused => say!("once: reused {target}"),
                OnceOutcome::ReusedAfterWait { waited_for } => {
                    say!("once: waited for the producer{}; reused {target}", Holders(waited_for))
                }
                OnceOutcome::Produced { waited_for: None } => say!("once: produced {target}"),
                OnceOutcome::Produced { waited_for: Some(w) } => {
                    say!(
                        "once: waited for the lock held{}; it left no valid result; produced {target}",
                        Holders(w)
                    )
                }
                OnceOutcome::Rebuilt { reason } => {
                    say!("once: {target} failed verification ({reason}); rebuilt it")
                }
                _ => say!("once: {target} is ready"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err @ (Error::Timeout { .. } | Error::Produce { .. } | Error::Verify { .. })) => {
            say!("once: {err}; {target} not touched");
            Ok(exit::FAILED.into())
        }
        Err(err) => Err(err.into()),
    }
}

/// Non-empty, and the expected XXH128 if given.
fn verify(path: &Path, expected: Option<Digest>) -> Result<(), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot stat {}: {e}", names::shown(path)))?;
    if meta.len() == 0 {
        return Err("it is empty".to_owned());
    }
    match expected {
        Some(expected) => toolkit::check_digest(path, expected),
        None => Ok(()),
    }
}

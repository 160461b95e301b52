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

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context;
use checksum::{Algo, Digest};
use dir_lock::{Error, OnceOptions, Wait, produce_once};

use crate::cmd::lock::SayWaiting;
use crate::exit;

/// Flags of `cargo xtask once`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Expected XXH128 of the artifact, as 32 hex digits.
    #[arg(long, value_name = "HEX")]
    xxh128: Option<String>,
    /// Give up waiting for another producer after SECS seconds (exit 1).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// The artifact to produce.
    target: PathBuf,
    /// The producer; each `{}` in its arguments is replaced by a temp path beside TARGET.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

const AFTER_HELP: &str = "\
Exit codes:
  0  TARGET is there and verified (produced, reused or rebuilt)
  1  CMD failed, the result failed verification, or --timeout ran out (TARGET untouched)
  2  usage, or an error before any work

Examples:
  safefs once model.bin -- curl -fsSLo {} https://example.invalid/model.bin
  safefs once --xxh128 HEX --timeout 600 data.tar -- make-data --out {}";

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let expected = match &args.xxh128 {
        Some(hex) => Some(
            Digest::from_hex(Algo::Xxh128, hex)
                .with_context(|| format!("invalid --xxh128 {hex}"))?,
        ),
        None => None,
    };
    anyhow::ensure!(
        args.command.iter().any(|a| a.as_bytes().windows(2).any(|w| w == b"{}")),
        "CMD must contain `{{}}` (the temp path it writes)"
    );
    let timeout = match super::lock::wait_mode(false, args.timeout)? {
        Wait::Timeout(limit) => Some(limit),
        _ => None,
    };
    let observer = SayWaiting::default();
    let mut opts = OnceOptions::default();
    opts.timeout = timeout;
    let target = &args.target;
    let shown = names::shown(target);
    let verify = |path: &Path| verify(path, expected);
    let produce = |file: &mut atomic_io::AtomicFile| -> anyhow::Result<()> {
        let temp = file.temp_path().as_os_str();
        let argv: Vec<OsString> = args.command.iter().map(|a| replace_braces(a, temp)).collect();
        let program = names::shown(&argv[0]);
        let status = Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .with_context(|| format!("failed to run {program}"))?;
        anyhow::ensure!(status.success(), "{program} exited with {status}");
        Ok(())
    };
    match produce_once(target, &opts, verify, produce, &observer) {
        Ok(outcome) => {
            say!("once: {}", outcome.describe(target));
            Ok(ExitCode::SUCCESS)
        }
        Err(
            err @ (Error::Timeout { .. }
            | Error::Produce { .. }
            | Error::Verify { .. }
            | Error::LockLost { .. }),
        ) => {
            say!("once: {}; {shown} not touched", crate::Chain(&err));
            Ok(exit::FAILED.into())
        }
        Err(err) => Err(err.into()),
    }
}

/// Non-empty, and the expected XXH128 if given.
fn verify(path: &Path, expected: Option<Digest>) -> anyhow::Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot stat {}", names::shown(path)))?;
    anyhow::ensure!(meta.len() > 0, "it is empty");
    if let Some(expected) = expected {
        toolkit::check_digest(path, expected)?;
    }
    Ok(())
}

/// `arg` with every `{}` replaced by `temp`, byte for byte: neither needs to be UTF-8.
fn replace_braces(arg: &OsStr, temp: &OsStr) -> OsString {
    let (arg, temp) = (arg.as_bytes(), temp.as_bytes());
    let mut out = Vec::with_capacity(arg.len() + temp.len());
    let mut rest = arg;
    while let Some(i) = rest.windows(2).position(|w| w == b"{}") {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(temp);
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest);
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_are_replaced_byte_for_byte() {
        let os = |b: &[u8]| OsStr::from_bytes(b).to_owned();
        let got = replace_braces(&os(b"-o{}\xff{}"), &os(b"/t/.caf\xe9.tmp"));
        assert_eq!(got, os(b"-o/t/.caf\xe9.tmp\xff/t/.caf\xe9.tmp"));
        assert_eq!(replace_braces(&os(b"{x}"), &os(b"T")), os(b"{x}"));
    }
}

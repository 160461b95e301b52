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
use toolkit::checksum::{Algo, Digest};
use toolkit::dir_lock::{Error, OnceOptions, OnceOutcome, Wait, produce_once};
use toolkit::{atomic_io, names};

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
    /// Share the artifact between machines through object storage (`s3://bucket/prefix`): it is
    /// produced once among every process and host using the same store and key, uploaded under its
    /// XXH128 and published by a create-if-absent reference; the others download and check it.
    #[arg(long, value_name = "URL")]
    store: Option<OsString>,
    /// The artifact's name in the store (default: TARGET's file name).
    #[arg(long, value_name = "NAME", requires = "store")]
    key: Option<String>,
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

With --store, CMD runs only if no process on any machine has published the key yet; a process
that loses the publishing race discards its result and takes the winner's. The store must pass the
conditional-write check (exit 2 otherwise, saying why).

Examples:
  safefs once --store s3://models/cache model.bin -- curl -fsSLo {} https://example.invalid/m.bin
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
    let run_command = |temp: &Path| -> anyhow::Result<()> {
        let argv: Vec<OsString> =
            args.command.iter().map(|a| replace_braces(a, temp.as_os_str())).collect();
        let program = names::shown(&argv[0]);
        let status = Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .with_context(|| format!("failed to run {program}"))?;
        anyhow::ensure!(status.success(), "{program} exited with {status}");
        Ok(())
    };
    let store = match &args.store {
        None => None,
        Some(url) => {
            let key = match &args.key {
                Some(key) => key.clone(),
                None => {
                    target.file_name().and_then(|n| n.to_str()).map(str::to_owned).context(
                        "TARGET's file name is not UTF-8: give the store's name with --key",
                    )?
                }
            };
            let opened = super::remote::open(url).and_then(|s| s.check("once").map(|_| s));
            match opened {
                Ok(store) => Some((store, key)),
                Err(err) => {
                    say!("once: {}", crate::Chain(&err));
                    return Ok(exit::USAGE.into());
                }
            }
        }
    };
    let published = std::cell::RefCell::new(None);
    let produce = |file: &mut atomic_io::AtomicFile| -> anyhow::Result<()> {
        let temp = file.temp_path().to_owned();
        let Some((store, key)) = &store else { return run_command(&temp) };
        let mut producer = || run_command(&temp).map_err(Into::into);
        let check = |path: &Path| verify(path).map_err(Into::into);
        let outcome =
            bucket::fetch_or_publish(store, key, file.as_file_mut(), &temp, &mut producer, &check)?;
        *published.borrow_mut() = Some((store.location().url_of(&bucket::ref_name(key)), outcome));
        Ok(())
    };
    let result = produce_once(target, &opts, verify, produce, &observer);
    if let Some((url, outcome)) = published.borrow().as_ref() {
        match outcome {
            bucket::Outcome::Reused { digest } => {
                say!("once: downloaded the artifact published at {url} (xxh128 {digest})")
            }
            bucket::Outcome::Published { digest } => {
                say!("once: published {url} (xxh128 {digest})")
            }
            bucket::Outcome::LostRace { digest, ours } => say!(
                "once: another process published {url} first; took its artifact (xxh128 {digest}), \
                 discarded ours ({ours})"
            ),
            bucket::Outcome::Repaired { digest, reason } => say!(
                "once: the artifact published at {url} was bad ({reason}); published a new one \
                 (xxh128 {digest})"
            ),
            _ => {}
        }
    }
    match result {
        // The store's outcome, said above, is the news; the local rename is its last step.
        Ok(OnceOutcome::Produced { waited_for: None }) if published.borrow().is_some() => {
            Ok(ExitCode::SUCCESS)
        }
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

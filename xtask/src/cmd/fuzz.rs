//! `cargo xtask fuzz [--cases N]`: a long fuzzing campaign over every parser that reads untrusted
//! input (manifest lines, the bounded line reader, the JSONL validator).
//!
//! The fuzz targets are proptest property tests (`crates/checksum/tests/manifest_props.rs`,
//! `crates/atomic-io/tests/props.rs`); CI runs them with their default case counts as part of
//! `cargo test --workspace`. This verb reruns them optimized with `PROPTEST_CASES=N`. Exit 0 when
//! every property held; 1 when one failed (proptest prints the minimal failing input).

use std::process::{Command, ExitCode};

use anyhow::Context;

use crate::exit;

/// Flags of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Cases per property.
    #[arg(long, default_value_t = 100_000)]
    cases: u32,
}

/// The fuzz targets: (package, test file).
const TARGETS: [(&str, &str); 2] = [("checksum", "manifest_props"), ("atomic-io", "props")];

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["test", "--release"]).env("PROPTEST_CASES", args.cases.to_string());
    for (package, test) in TARGETS {
        cmd.args(["--package", package, "--test", test]);
    }
    say!("fuzz: {} cases per property over {} targets", args.cases, TARGETS.len());
    let status = cmd.status().context("cannot run cargo test")?;
    Ok(if status.success() { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

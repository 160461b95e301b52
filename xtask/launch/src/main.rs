//! `cargo xtask`'s first step: builds the toolkit's CLI (`xtask`, optimized) and runs it.
//!
//! Cargo's `--quiet` keeps `cargo xtask <verb>` free of "Compiling/Finished/Running" lines, but
//! also hides the first build, two minutes that look hung. This launcher is tiny (std only, built
//! in a second under `--quiet`); it builds `xtask` itself, saying on stderr what it compiles only
//! when something needs compiling, then replaces itself with the built binary (same pid, signals,
//! standard streams and exit status).
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr)] // this launcher's whole job is to talk while cargo builds

// The workspace has one non-Unix policy: refuse at compile time, saying why (docs/ARCHITECTURE.md).
#[cfg(not(unix))]
compile_error!(
    "xtask-launch supports Unix only (Linux, macOS, the BSDs): it replaces itself with the built xtask through exec"
);

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

fn main() -> ExitCode {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--package", "xtask", "--bin", "xtask"])
        .arg("--manifest-path")
        .arg(&manifest)
        // Artifacts as JSON on stdout (read below); compiler messages rendered on stderr.
        .args(["--message-format=json-render-diagnostics", "--quiet"])
        .stdout(Stdio::piped());
    let mut child = match build.spawn() {
        Ok(child) => child,
        Err(err) => {
            eprintln!("cargo xtask: cannot run cargo: {err}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut compiled = 0usize;
    let mut exe: Option<PathBuf> = None;
    let stdout = child.stdout.take().map(BufReader::new);
    for line in stdout.into_iter().flat_map(|r| r.lines().map_while(Result::ok)) {
        if !line.contains("\"reason\":\"compiler-artifact\"") {
            continue;
        }
        if let Some(path) = field(&line, "\"executable\":\"") {
            exe = Some(PathBuf::from(path));
        }
        if line.contains("\"fresh\":false") {
            compiled += 1;
            let name = field(&line, "\"name\":\"").unwrap_or("?");
            if compiled == 1 {
                eprintln!(
                    "cargo xtask: building the toolkit's CLI (optimized; the first build takes a few minutes)"
                );
            }
            let mut err = std::io::stderr().lock();
            let _ = if tty {
                write!(
                    err,
                    "\r\x1b[K  compiled {compiled} crates: {name} ({}s)",
                    start.elapsed().as_secs()
                )
            } else {
                writeln!(err, "  compiled {name}")
            };
            let _ = err.flush();
        }
    }
    let status = child.wait();
    if compiled > 0 {
        if tty {
            eprintln!();
        }
        eprintln!("cargo xtask: built in {:.0}s", start.elapsed().as_secs_f64());
    }
    match (status, exe) {
        (Ok(status), Some(exe)) if status.success() => {
            let err = Command::new(&exe).args(std::env::args_os().skip(1)).exec();
            eprintln!("cargo xtask: cannot run {}: {err}", exe.display());
            ExitCode::from(2)
        }
        (Ok(status), _) => {
            eprintln!("cargo xtask: the build failed ({status})");
            ExitCode::from(2)
        }
        (Err(err), _) => {
            eprintln!("cargo xtask: cannot wait for cargo: {err}");
            ExitCode::from(2)
        }
    }
}

/// The string value after `key` in one line of cargo's JSON (no escapes in names and paths here;
/// a path with a `"` or `\` would need a JSON parser, and this launcher has no dependencies).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(key)? + key.len();
    let end = start + line[start..].find('"')?;
    Some(&line[start..end])
}

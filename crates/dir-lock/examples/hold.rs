//! Holds a lock for the crate's multi-process tests, and shows the API from a second process:
//!
//! ```text
//! hold exclusive|shared|instance PATH
//! ```
//!
//! Takes the lock (blocking; `instance` uses [`dir_lock::InstanceGuard`], which never waits),
//! prints `ready` on stdout, then holds it until stdin reaches end of file. On failure it prints
//! the error on stderr and exits 1.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{Read, Write};
use std::process::ExitCode;

use dir_lock::{InstanceGuard, LockFile, LockKind, LockOptions, Wait};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, path] = args.as_slice() else {
        eprintln!("usage: hold exclusive|shared|instance PATH");
        return ExitCode::from(2);
    };
    let held: Result<Box<dyn std::fmt::Debug>, dir_lock::Error> = match mode.as_str() {
        "instance" => InstanceGuard::acquire(path).map(|g| Box::new(g) as _),
        "exclusive" | "shared" => {
            let kind = if mode == "shared" { LockKind::Shared } else { LockKind::Exclusive };
            LockFile::acquire(path, &LockOptions::new(kind, Wait::Block), &())
                .map(|l| Box::new(l) as _)
        }
        _ => {
            eprintln!("usage: hold exclusive|shared|instance PATH");
            return ExitCode::from(2);
        }
    };
    let held = match held {
        Ok(held) => held,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(1);
        }
    };
    println!("ready");
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(held);
    ExitCode::SUCCESS
}

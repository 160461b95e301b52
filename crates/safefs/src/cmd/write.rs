//! `cargo xtask write [--durability none|old-or-new|full] [--no-clobber] PATH`
//!
//! A crash-safe `sponge`: stdin is streamed (256 KiB at a time, never held whole in memory) into a
//! temp file beside PATH, which is then synced and renamed onto PATH with `atomic_io`. PATH is at
//! every moment its old content or the complete new one. Through a symlink, the link's target is
//! replaced and the link kept; a replaced file keeps its mode (and owner where permitted).
//!
//! Exit codes: 0 written; 1 `--no-clobber` and PATH exists (nothing written); 2 any other error
//! (PATH untouched unless the message says the directory sync failed after the rename; the temp
//! file removed).
//!
//! Interruption: SIGINT or SIGTERM before the commit removes the temp file, says so, and exits
//! 130 with PATH untouched; one that arrives during the commit waits for it (PATH then holds the
//! new content and the exit code says how the commit went). SIGKILL cannot be handled: PATH keeps
//! its old content because nothing was renamed, and the temp file, whose lock died with the
//! process, is left for `cargo xtask sweep DIR` to remove.

use std::io::Read;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use toolkit::names;

use toolkit::atomic_io::{AtomicFile, Durability, Error, Overwrite, WriteOptions};

use crate::exit;

/// Flags of `cargo xtask write`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// What survives a power cut. `full`: fsync the file and its directory (new once this
    /// returns); `old-or-new`: fsync the file only (old or complete new, the rename may be lost);
    /// `none`: no fsync (safe against process crashes only: may leave an empty file).
    #[arg(long, value_enum, default_value = "full")]
    durability: DurabilityArg,
    /// Fail (exit 1) if PATH already exists.
    #[arg(long)]
    no_clobber: bool,
    /// The file to replace with stdin.
    path: std::path::PathBuf,
}

const AFTER_HELP: &str = "\
Exit codes:
  0    written
  1    --no-clobber and PATH exists (nothing written)
  2    any other error (PATH untouched; the temp file removed)
  130  SIGINT or SIGTERM before the commit (PATH untouched)

Examples:
  jq '.n += 1' status.json | safefs write status.json     # a crash-safe sponge
  make-report | safefs write --no-clobber report.txt";

/// `--durability` values.
#[derive(Clone, Copy, clap::ValueEnum)]
enum DurabilityArg {
    Full,
    OldOrNew,
    None,
}

/// Bytes read from stdin per `read` and written per `write`.
const CHUNK: usize = 256 * 1024;

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut opts = WriteOptions::default();
    opts.durability = match args.durability {
        DurabilityArg::None => Durability::None,
        DurabilityArg::Full => Durability::Full,
        DurabilityArg::OldOrNew => Durability::OldOrNew,
    };
    opts.overwrite = if args.no_clobber { Overwrite::Refuse } else { Overwrite::Replace };
    let mut file = match AtomicFile::create(&args.path, &opts) {
        Ok(file) => file,
        Err(err) => return Ok(fail(&err)),
    };
    let committing = on_interrupt_remove(&file)?;
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => {
                say!(
                    "write: failed to read stdin: {err}; {} not touched",
                    names::shown(file.target())
                );
                return Ok(exit::USAGE.into());
            }
        };
        if let Err(err) = file.append(&buf[..n]) {
            return Ok(fail(&err));
        }
    }
    // Held through the commit: a signal now waits, then finds the commit done and is ignored.
    let mut done = committing.lock().unwrap_or_else(|e| e.into_inner());
    *done = true;
    match file.commit() {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => Ok(fail(&err)),
    }
}

/// Watches for SIGINT and SIGTERM on a thread: until the commit starts, one removes the temp file
/// and exits 130 (the target untouched). The returned flag, set under its lock, marks the commit.
fn on_interrupt_remove(file: &AtomicFile) -> anyhow::Result<Arc<Mutex<bool>>> {
    let committing = Arc::new(Mutex::new(false));
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let (temp, target) = (file.temp_path().to_owned(), file.target().to_owned());
    let flag = committing.clone();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            let started = flag.lock().unwrap_or_else(|e| e.into_inner());
            if *started {
                continue;
            }
            let _ = std::fs::remove_file(&temp);
            let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
            say!(
                "write: interrupted by {name}; {} not touched, temp removed",
                names::shown(&target)
            );
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
    });
    Ok(committing)
}

/// Reports `err` and picks its exit code; the `AtomicFile`, dropped by the caller, removes its temp.
fn fail(err: &Error) -> ExitCode {
    say!("write: {}", crate::Chain(&err));
    match err {
        Error::TargetExists { .. } => exit::FAILED.into(),
        _ => exit::USAGE.into(),
    }
}

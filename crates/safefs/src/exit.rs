//! The exit codes of the CLI contract. Verbs return `anyhow::Result<ExitCode>`: an `Err` is a fatal
//! error before any work (2); a check that ran and failed returns `Ok(FAILED.into())`.

/// The check failed, or the lock was not taken (like `flock -n`).
pub const FAILED: u8 = 1;
/// Usage or fatal error before any work.
pub const USAGE: u8 = 2;
/// Interrupted by a signal: temps cleaned up, partial report printed.
pub const INTERRUPTED: u8 = 130;

//! [`InstanceGuard`]: one running instance of a daemon per pid file.

use std::path::Path;

use crate::error::{Error, Result};
use crate::lock::{LockFile, LockKind, LockOptions, Wait};

/// Proof that this process is the only running instance: a non-blocking exclusive lock on a pid
/// file, held until the guard is dropped or the process dies.
///
/// The lock decides and the pid only informs: a pid file left by a killed daemon does not block
/// the next one (the kernel released its lock), and a reused pid cannot fool the check. In a pid
/// file the guard created (or one holding only holder information), the first line is the
/// holder's pid, so it also reads as a conventional pid file; any other existing file is locked
/// but left unchanged.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use dir_lock::InstanceGuard;
/// let pid_file = dir.join("daemon.pid");
/// let _guard = InstanceGuard::acquire(&pid_file)?;
/// let first_line = std::fs::read_to_string(&pid_file)?.lines().next().unwrap().to_owned();
/// assert_eq!(first_line, std::process::id().to_string());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct InstanceGuard {
    _lock: LockFile,
}

impl InstanceGuard {
    /// Takes the pid file's lock without waiting, or fails with [`Error::AlreadyRunning`]
    /// ("already running: pid N (command)").
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// let guard = dir_lock::InstanceGuard::acquire(dir.join("d.pid"))?;
    /// drop(guard); // the next instance may start
    /// let _next = dir_lock::InstanceGuard::acquire(dir.join("d.pid"))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(pid_file: impl AsRef<Path>) -> Result<InstanceGuard> {
        let path = pid_file.as_ref();
        let opts = LockOptions::new(LockKind::Exclusive, Wait::NonBlock);
        match LockFile::acquire(path, &opts, &()) {
            Ok(lock) => Ok(InstanceGuard { _lock: lock }),
            Err(Error::WouldBlock { path, holders }) => {
                let first = holders.0.into_iter().next().unwrap_or_default();
                Err(Error::AlreadyRunning { path, pid: first.pid, command: first.command })
            }
            Err(Error::AlreadyHeldByThisProcess { path }) => {
                Err(Error::AlreadyRunning { path, pid: Some(std::process::id()), command: None })
            }
            Err(e) => Err(e),
        }
    }
}

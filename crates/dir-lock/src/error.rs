//! The crate's one error type.

use std::io;
use std::time::Duration;

use std::path::PathBuf;

use crate::holder::{Holder, Holders};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate. Every variant names the path it is about; the
/// "lock not taken" variants also say who holds it, as far as that is known.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use dir_lock::{Error, LockFile, LockOptions};
///
/// let path = dir.join("job.lock");
/// let _held = LockFile::acquire(&path, &LockOptions::default(), &())?;
/// let again = LockFile::acquire(&path, &LockOptions::default(), &()).unwrap_err();
/// assert!(matches!(again, Error::AlreadyHeldByThisProcess { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening or creating the lock file failed.
    #[error("failed to open lock file {}", names::shown(path))]
    Open {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The lock path is a symlink to nothing. A lock file is never created through a symlink.
    #[error(
        "cannot lock {path}: it is a symlink to a missing file, and lock files are not created through symlinks",
        path = names::shown(path)
    )]
    DanglingSymlink {
        /// The lock file.
        path: PathBuf,
    },
    /// `flock` itself failed (other than "would block" or "not supported").
    #[error("failed to lock {}", names::shown(path))]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file system does not support `flock` (ENOLCK, EOPNOTSUPP, ENOSYS; some NFS and FUSE
    /// mounts). Nothing ran without the lock.
    #[error(
        "cannot lock {}: the file system ({fs_type}) does not support flock",
        names::shown(path)
    )]
    Unsupported {
        /// The lock file.
        path: PathBuf,
        /// The file system type, e.g. `nfs` or `0x1234abcd`.
        fs_type: String,
        /// The error `flock` returned.
        source: io::Error,
    },
    /// A lock this process held is gone: the file system failed under it with EIO, ESTALE,
    /// ENOTCONN or ESHUTDOWN (a network file system's server evicted this host, its client died,
    /// the file handle went stale). Another host may hold the lock now:
    /// [`produce_once`](crate::produce_once) publishes nothing then, `safefs lock` reports it.
    #[error("lost the lock on {}: the file system ({fs_type}) failed under it", names::shown(path))]
    LockLost {
        /// The lock file.
        path: PathBuf,
        /// The file system: its type and mount point where `/proc/self/mountinfo` lists it
        /// (`fuse.ceph-fuse at /mnt/cephfs`), else its `fstatfs` type as read when the lock
        /// was taken (`fuse`, `nfs`).
        fs_type: String,
        /// The error that showed the loss.
        source: io::Error,
    },
    /// This process already holds a [`LockFile`](crate::LockFile) on the same file (same device
    /// and inode). `flock` locks belong to the open file description, so a second lock would wait
    /// for the first forever; this error is returned instead.
    #[error(
        "{} is already locked by this process; a second lock on it would deadlock",
        names::shown(path)
    )]
    AlreadyHeldByThisProcess {
        /// The lock file.
        path: PathBuf,
    },
    /// [`Wait::NonBlock`](crate::Wait::NonBlock) and the lock is held.
    #[error("lock on {} is held{holders}", names::shown(path))]
    WouldBlock {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as far as known (possibly empty).
        holders: Holders,
    },
    /// [`Wait::Timeout`](crate::Wait::Timeout) ran out. The holder was not disturbed.
    #[error(
        "gave up waiting for the lock on {} after {:.1} s; it is held{holders}",
        names::shown(path),
        waited.as_secs_f64()
    )]
    Timeout {
        /// The lock file.
        path: PathBuf,
        /// How long the waiter waited.
        waited: Duration,
        /// Who holds it, as far as known (possibly empty).
        holders: Holders,
    },
    /// [`InstanceGuard`](crate::InstanceGuard): another instance holds the pid file.
    #[error("already running: {}", Holder::describe_pid_command(*pid, command.as_deref()))]
    AlreadyRunning {
        /// The pid file.
        path: PathBuf,
        /// The running instance's pid, if known.
        pid: Option<u32>,
        /// Its command line, if known.
        command: Option<String>,
    },
    /// Writing the holder information into a lock file failed (the lock was released).
    #[error("failed to write holder information to {}", names::shown(path))]
    WriteHolder {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// [`produce_once`](crate::produce_once): the target has no file name to put a lock beside.
    #[error("cannot produce {}: it does not name a file", names::shown(path))]
    InvalidTarget {
        /// The target.
        path: PathBuf,
    },
    /// [`produce_once`](crate::produce_once): the producer failed. The target is untouched and
    /// its temp removed.
    #[error("failed to produce {}", names::shown(target))]
    Produce {
        /// The target.
        target: PathBuf,
        /// What the producer returned.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// [`produce_once`](crate::produce_once): the freshly produced file failed verification. The
    /// target is untouched and the temp removed.
    #[error("produced {}, but it failed verification", names::shown(target))]
    Verify {
        /// The target.
        target: PathBuf,
        /// What the verifier returned, as it returned it (downcast to get its type back).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Writing, syncing or renaming the produced file failed (atomic-io's error names the paths).
    #[error(transparent)]
    Atomic(#[from] atomic_io::Error),
}

impl Error {
    /// The [`io::ErrorKind`] that fits this error: what it says itself where that is specific (a
    /// lock held, a timeout, a file that failed its check), otherwise the kind of its I/O cause.
    ///
    /// ```
    /// let err = dir_lock::Error::InvalidTarget { path: "/".into() };
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::Open { source, .. } | Error::Lock { source, .. } => source.kind(),
            Error::LockLost { source, .. } => source.kind(),
            Error::WriteHolder { source, .. } => source.kind(),
            Error::DanglingSymlink { .. } => io::ErrorKind::NotFound,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            Error::AlreadyHeldByThisProcess { .. } | Error::AlreadyRunning { .. } => {
                io::ErrorKind::ResourceBusy
            }
            Error::WouldBlock { .. } => io::ErrorKind::WouldBlock,
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::InvalidTarget { .. } => io::ErrorKind::InvalidInput,
            Error::Verify { .. } => io::ErrorKind::InvalidData,
            Error::Produce { source, .. } => {
                source.downcast_ref::<io::Error>().map_or(io::ErrorKind::Other, io::Error::kind)
            }
            Error::Atomic(err) => err.io_kind(),
        }
    }
}

/// For code that speaks `std::io::Result`: the kind from [`Error::io_kind`], the same message,
/// and the same chain of causes; the typed error comes back with [`io::Error::into_inner`] and a
/// downcast.
///
/// ```
/// use std::io;
/// let err = dir_lock::Error::Verify { target: "model.bin".into(), source: "digest mismatch".into() };
/// let io = io::Error::from(err);
/// assert_eq!(io.kind(), io::ErrorKind::InvalidData);
/// assert_eq!(io.to_string(), "produced model.bin, but it failed verification");
/// let cause = std::error::Error::source(io.get_ref().unwrap()).unwrap();
/// assert_eq!(cause.to_string(), "digest mismatch");
/// assert!(io.into_inner().unwrap().downcast::<dir_lock::Error>().is_ok());
/// ```
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_lock_error_becomes_an_io_error_of_its_causes_kind_keeping_message_and_chain() {
        let err =
            Error::Open { path: "x.lock".into(), source: io::ErrorKind::PermissionDenied.into() };
        let message = err.to_string();
        let io = io::Error::from(err);
        assert_eq!((io.kind(), io.to_string()), (io::ErrorKind::PermissionDenied, message));
        let cause = io.source().and_then(|c| c.downcast_ref::<io::Error>()).unwrap();
        assert_eq!(cause.kind(), io::ErrorKind::PermissionDenied);
        let timeout = Error::Timeout {
            path: "x.lock".into(),
            waited: Duration::from_secs(1),
            holders: Holders(Vec::new()),
        };
        assert_eq!(io::Error::from(timeout).kind(), io::ErrorKind::TimedOut);
    }
}

//! The facade's error: each crate's error as it is, plus what only a composed workflow can say.

use std::io;
use std::path::PathBuf;

/// Any error of the toolkit's crates, or of a workflow that combines them.
///
/// ```
/// let err: toolkit::Error = dir_lock::Error::AlreadyRunning {
///     path: "d.pid".into(),
///     pid: Some(42),
///     command: Some("trainer".into()),
/// }
/// .into();
/// assert_eq!(err.to_string(), "already running: pid 42 (trainer)");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From `atomic-io`'s writer.
    #[error(transparent)]
    AtomicIo(#[from] atomic_io::Error),
    /// From `atomic-io`'s sweep.
    ///
    /// ```
    /// let err = toolkit::atomic_io::sweep::sweep("/nonexistent/dir", &Default::default());
    /// let err = toolkit::Error::from(err.unwrap_err());
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::NotFound);
    /// ```
    #[error(transparent)]
    Sweep(#[from] atomic_io::SweepError),
    /// From `atomic-io`'s bounded reads.
    #[error(transparent)]
    BoundedRead(#[from] atomic_io::ReadError),
    /// From `checksum`.
    #[error(transparent)]
    Checksum(#[from] checksum::Error),
    /// From `dir-lock` (also a fetched file that failed its digest check: `Verify`).
    #[error(transparent)]
    DirLock(#[from] dir_lock::Error),
    /// From `folder-copier`: the copy was refused before any work.
    #[error(transparent)]
    Copy(#[from] folder_copier::Error),
    /// From `snapshot-verify`: the seal was refused or could not be written.
    #[error(transparent)]
    Snapshot(#[from] snapshot_verify::Error),
    /// An I/O error of the caller's own, so that `?` on a `std::io::Result` works in code that
    /// returns the facade's [`Result`] (callbacks, glue around the workflows). The crates never
    /// return it: their errors name the path.
    ///
    /// ```
    /// fn read_config(path: &std::path::Path) -> toolkit::Result<Vec<u8>> {
    ///     Ok(std::fs::read(path)?)
    /// }
    /// let err = read_config("/nonexistent/config.json".as_ref()).unwrap_err();
    /// assert!(matches!(&err, toolkit::Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound));
    /// ```
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// [`copy_and_seal`](crate::copy_and_seal): the copy ran but did not complete, so the
    /// destination was not sealed (a seal would vouch for an incomplete tree).
    #[error(
        "the copy into {dst} is incomplete ({} failed{}); it was not sealed",
        report.failed.len(),
        if report.interrupted { ", interrupted" } else { "" },
        dst = names::shown(dst)
    )]
    CopyIncomplete {
        /// The destination.
        dst: PathBuf,
        /// What the copy did: every failure by path.
        report: Box<folder_copier::CopyReport>,
    },
    /// [`StatusWriter::write`](crate::StatusWriter::write) was asked to replace the pid file its
    /// instance lock is on: that would put an unlocked file in its place and let a second
    /// instance start.
    #[error("{} is the instance's pid file; status files must be other files", names::shown(path))]
    StatusIsPidFile {
        /// The status path asked for.
        path: PathBuf,
    },
    /// [`StatusWriter::write`](crate::StatusWriter::write) was given a name that does not stay
    /// inside its directory; nothing was written.
    #[error("refused the status file name {}: {reason}", names::shown(name))]
    StatusName {
        /// The name as given.
        name: PathBuf,
        /// Why it was refused.
        reason: NameRefusal,
    },
    /// [`StatusWriter`](crate::StatusWriter): the pid file could not be inspected.
    #[error("cannot inspect the pid file {}", names::shown(path))]
    Status {
        /// The pid file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Why [`StatusWriter::write`](crate::StatusWriter::write) refused a name: each would write
/// outside the writer's directory, or to no file at all.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use toolkit::{Error, NameRefusal, StatusWriter};
///
/// let status = StatusWriter::acquire(dir.join("d.pid"), dir)?;
/// let err = status.write("../escape.json", b"{}").unwrap_err();
/// assert!(matches!(err, Error::StatusName { reason: NameRefusal::ParentDir, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameRefusal {
    /// The name is empty or only `.`: it names the directory itself.
    #[error("it names no file in the directory")]
    Empty,
    /// The name is an absolute path.
    #[error("it is an absolute path")]
    Absolute,
    /// The name holds a `..` component. Even `sub/../x` is refused: through a symbolic link
    /// named `sub`, `..` is the link target's parent, not the directory.
    #[error("it holds `..`, which can lead out of the directory")]
    ParentDir,
}

impl Error {
    /// The [`io::ErrorKind`] that fits this error best: what it says itself where that is
    /// specific (a refused status name), otherwise what the crate it comes from says (each
    /// crate's `Error::io_kind`: a timeout, a file that failed its check, another instance
    /// running, or the kind of its I/O cause); an incomplete copy is
    /// [`Other`](io::ErrorKind::Other).
    ///
    /// ```
    /// let err = toolkit::Error::from(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::PermissionDenied);
    /// ```
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::Io(err) => err.kind(),
            Error::StatusName { .. } | Error::StatusIsPidFile { .. } => io::ErrorKind::InvalidInput,
            Error::AtomicIo(err) => err.io_kind(),
            Error::Sweep(err) => err.io_kind(),
            Error::BoundedRead(err) => err.io_kind(),
            Error::DirLock(err) => err.io_kind(),
            Error::Copy(err) => err.io_kind(),
            Error::Checksum(err) => err.io_kind(),
            Error::Snapshot(err) => err.io_kind(),
            Error::Status { source, .. } => source.kind(),
            Error::CopyIncomplete { .. } => io::ErrorKind::Other,
        }
    }
}

/// For code that speaks `std::io::Result` (a `Read`/`Write` implementation, a callback of
/// another library): the kind from [`Error::io_kind`], the message the same, and the chain of
/// causes kept ([`source`](std::error::Error::source) goes on to the same causes). An
/// [`Error::Io`] gives back the very error it holds; any other can be had back with
/// [`io::Error::into_inner`] and a downcast.
///
/// ```
/// use std::io;
/// let err = toolkit::Error::StatusIsPidFile { path: "run/d.pid".into() };
/// let io: io::Error = err.into();
/// assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
/// assert_eq!(io.to_string(), "run/d.pid is the instance's pid file; status files must be other files");
/// let back = io.into_inner().unwrap().downcast::<toolkit::Error>().unwrap();
/// assert!(matches!(*back, toolkit::Error::StatusIsPidFile { .. }));
/// ```
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        match err {
            Error::Io(err) => err,
            err => io::Error::new(err.io_kind(), err),
        }
    }
}

/// The facade's result.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::time::Duration;

    #[test]
    fn an_io_error_goes_in_and_comes_back_out_unchanged() {
        let err: Error = io::Error::new(io::ErrorKind::NotFound, "no config").into();
        assert_eq!(err.to_string(), "no config");
        let io: io::Error = err.into();
        assert_eq!((io.kind(), io.to_string()), (io::ErrorKind::NotFound, "no config".to_owned()));
        assert!(io.get_ref().unwrap().downcast_ref::<Error>().is_none(), "wrapped twice: {io:?}");
    }

    #[test]
    fn a_crate_error_becomes_an_io_error_of_its_causes_kind_keeping_message_and_chain() {
        let err: Error = checksum::Error::Open {
            path: "roms/a.sfc".into(),
            source: io::ErrorKind::PermissionDenied.into(),
        }
        .into();
        let message = err.to_string();
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(io.to_string(), message);
        assert_eq!(message, "failed to open roms/a.sfc");
        let cause = io.source().unwrap().downcast_ref::<io::Error>().unwrap();
        assert_eq!(cause.kind(), io::ErrorKind::PermissionDenied);
        let back = io.into_inner().unwrap().downcast::<Error>().unwrap();
        assert!(matches!(*back, Error::Checksum(checksum::Error::Open { .. })), "{back:?}");
    }

    #[test]
    fn errors_that_say_their_kind_keep_it_and_the_rest_are_other() {
        let timeout = dir_lock::Error::Timeout {
            path: "x.lock".into(),
            waited: Duration::from_secs(1),
            holders: dir_lock::Holders(Vec::new()),
        };
        let cases = [
            (Error::from(timeout), io::ErrorKind::TimedOut),
            (
                Error::StatusName { name: "../x".into(), reason: NameRefusal::ParentDir },
                io::ErrorKind::InvalidInput,
            ),
            (
                Error::DirLock(dir_lock::Error::Verify {
                    target: "t".into(),
                    source: "bad".into(),
                }),
                io::ErrorKind::InvalidData,
            ),
            (
                Error::DirLock(dir_lock::Error::AlreadyRunning {
                    path: "d.pid".into(),
                    pid: Some(1),
                    command: None,
                }),
                io::ErrorKind::ResourceBusy,
            ),
            (
                Error::CopyIncomplete { dst: "d".into(), report: Box::default() },
                io::ErrorKind::Other,
            ),
        ];
        for (err, kind) in cases {
            let message = err.to_string();
            let io = io::Error::from(err);
            assert_eq!((io.kind(), io.to_string()), (kind, message));
        }
    }
}

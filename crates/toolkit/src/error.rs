//! The facade's error: each crate's error as it is, plus what only a composed workflow can say.

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
    /// From `atomic-io`.
    #[error(transparent)]
    AtomicIo(#[from] atomic_io::Error),
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

/// The facade's result.
pub type Result<T> = std::result::Result<T, Error>;

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
    /// [`StatusWriter`](crate::StatusWriter): the pid file could not be inspected.
    #[error("cannot inspect the pid file {}", names::shown(path))]
    Status {
        /// The pid file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The facade's result.
pub type Result<T> = std::result::Result<T, Error>;

//! The crate's errors, one type per audience: [`Error`] for the writer ([`AtomicFile`](crate::AtomicFile),
//! [`write_atomic`](crate::write_atomic), [`sync_dir`](crate::sync_dir)), [`SweepError`] for
//! [`sweep`](crate::sweep::sweep), [`ReadError`] for the bounded reads of
//! [`bounded`](crate::bounded).

use std::io;
use std::path::PathBuf;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong writing a file atomically. Every variant names the path it is about and,
/// where there is one, carries the `io::Error` that caused it.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// let err = atomic_io::write_atomic(dir.join("missing/file"), b"x").unwrap_err();
/// assert!(matches!(err, atomic_io::Error::MissingParent { .. }));
/// assert!(err.to_string().contains("does not exist"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target path cannot name a file (no file name, or a name that matches the temp pattern).
    #[error("cannot write {}: {reason}", names::shown(path))]
    InvalidTarget {
        /// The target as given.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The target is a directory.
    #[error("cannot write {}: it is a directory", names::shown(path))]
    IsDirectory {
        /// The target (after following symlinks).
        path: PathBuf,
    },
    /// The target exists but is not a regular file (a FIFO, socket or device); it is never replaced.
    #[error("refusing to replace {}: it is a {kind}, not a regular file", names::shown(path))]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: names::FileKind,
    },
    /// The directory the target would live in does not exist.
    #[error(
        "cannot write {}: directory {} does not exist",
        names::shown(path),
        names::shown(parent)
    )]
    MissingParent {
        /// The target.
        path: PathBuf,
        /// The missing directory.
        parent: PathBuf,
    },
    /// Something on the target's directory path is not a directory.
    #[error("cannot write {}: {} is not a directory", names::shown(path), names::shown(parent))]
    ParentNotDirectory {
        /// The target.
        path: PathBuf,
        /// The directory it would live in.
        parent: PathBuf,
    },
    /// The target is a symlink that could not be followed.
    #[error("failed to follow symlink {}", names::shown(path))]
    Symlink {
        /// The symlink.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Following symlinks from the target did not end (a loop, or more than 40 links).
    #[error("cannot write {}: too many levels of symlinks", names::shown(path))]
    SymlinkLoop {
        /// The target as given.
        path: PathBuf,
    },
    /// Reading the metadata of a path failed.
    #[error("failed to inspect {}", names::shown(path))]
    Inspect {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Opening the target's directory failed.
    #[error("failed to open directory {}", names::shown(dir))]
    OpenDir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Creating the temp file failed (a read-only or full directory, no permission, ...).
    #[error("failed to create a temp file in {} for {}", names::shown(dir), names::shown(target))]
    CreateTemp {
        /// The directory.
        dir: PathBuf,
        /// The target the temp was for.
        target: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Locking the temp file failed; the file system may not support `flock`.
    #[error(
        "failed to lock temp file {} (the file system may not support flock, which sweeping \
         safely relies on)",
        names::shown(temp)
    )]
    Lock {
        /// The temp file.
        temp: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Setting the temp file's mode or owner failed.
    #[error(
        "failed to set the permissions of {} (temp file for {})",
        names::shown(temp),
        names::shown(target)
    )]
    Permissions {
        /// The temp file.
        temp: PathBuf,
        /// The target.
        target: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Writing to the temp file failed (`ENOSPC`, `EIO`, quota, ...).
    #[error("failed to write {} (temp file for {})", names::shown(temp), names::shown(target))]
    Write {
        /// The temp file.
        temp: PathBuf,
        /// The target.
        target: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `fsync` of the temp file failed; the target was not touched.
    #[error(
        "failed to fsync {} (temp file for {}) on a {fs} file system",
        names::shown(temp),
        names::shown(target)
    )]
    SyncTemp {
        /// The temp file.
        temp: PathBuf,
        /// The target.
        target: PathBuf,
        /// The file system's type.
        fs: crate::FileSystem,
        /// The cause.
        source: io::Error,
    },
    /// Renaming the temp file onto the target failed; the target was not touched.
    #[error("failed to rename {} onto {}", names::shown(temp), names::shown(target))]
    Rename {
        /// The temp file.
        temp: PathBuf,
        /// The target.
        target: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The target exists and [`Overwrite::Refuse`](crate::Overwrite::Refuse) was asked for.
    #[error("{} already exists; not replaced (no-clobber)", names::shown(path))]
    TargetExists {
        /// The target.
        path: PathBuf,
    },
    /// `fsync` of a directory failed. After a commit, the new content is in place but its
    /// directory entry may not survive a power loss.
    #[error("failed to fsync directory {} on a {fs} file system", names::shown(dir))]
    SyncDir {
        /// The directory.
        dir: PathBuf,
        /// The file system's type.
        fs: crate::FileSystem,
        /// The cause.
        source: io::Error,
    },
    /// Removing a temp file failed.
    #[error("failed to remove temp file {}", names::shown(temp))]
    RemoveTemp {
        /// The temp file.
        temp: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// What can go wrong in a [`sweep`](crate::sweep::sweep): a directory it could not read, or a temp
/// file it could not examine or remove. The sweep goes on and lists each in
/// [`SweepReport::errors`](crate::sweep::SweepReport::errors), except one about the directory it
/// was given.
///
/// ```
/// let err = atomic_io::sweep::sweep("/nonexistent/dir", &Default::default()).unwrap_err();
/// assert!(matches!(err, atomic_io::SweepError::ReadDir { .. }));
/// assert_eq!(err.to_string(), "failed to read directory /nonexistent/dir");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// Reading a directory during a sweep failed.
    #[error("failed to read directory {}", names::shown(path))]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Examining or locking a temp file during a sweep failed.
    #[error("failed to examine temp file {}", names::shown(path))]
    Examine {
        /// The temp file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Removing a temp file failed.
    #[error("failed to remove temp file {}", names::shown(temp))]
    RemoveTemp {
        /// The temp file.
        temp: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// What can go wrong in a bounded read ([`read_bounded`](crate::bounded::read_bounded),
/// [`LineReader`](crate::bounded::LineReader), [`validate_jsonl`](crate::bounded::validate_jsonl)):
/// the file could not be opened or read, is not a regular file, or is (or holds a line) larger
/// than the limit, or is not valid JSONL.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("big");
/// std::fs::write(&path, vec![b'x'; 100])?;
/// let err = atomic_io::bounded::read_bounded(&path, 10).unwrap_err();
/// assert!(matches!(err, atomic_io::ReadError::FileTooLarge { len: 100, max: 10, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The path exists but is not a regular file (a FIFO, socket, device or directory); not read.
    #[error("refusing to read {}: it is a {kind}, not a regular file", names::shown(path))]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: names::FileKind,
    },
    /// Opening a file for a bounded read failed.
    #[error("failed to open {}", names::shown(path))]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading a file failed.
    #[error("failed to read {}", names::shown(path))]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file is larger than the limit (by its metadata, or because it grew while being read).
    #[error("{} is larger than the limit of {max} bytes ({len} bytes or more)", names::shown(path))]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size as seen (a lower bound when it grew while being read).
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A line is longer than the limit; it was not buffered.
    #[error("line {line} is longer than the limit of {max} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: u64,
        /// The limit.
        max: u64,
    },
    /// Reading a line failed.
    #[error("failed to read line {line}")]
    ReadLine {
        /// 1-based number of the line being read.
        line: u64,
        /// The cause.
        source: io::Error,
    },
    /// A JSONL file is invalid at a line: too long, blank, not UTF-8, or not JSON.
    #[error("{}: line {line}: {problem}", names::shown(path))]
    Jsonl {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the first offending line.
        line: u64,
        /// What is wrong with it.
        problem: JsonlProblem,
    },
}

/// What is wrong with a line of a JSONL file (see [`ReadError::Jsonl`]).
///
/// ```
/// use atomic_io::JsonlProblem;
/// assert_eq!(JsonlProblem::Blank.to_string(), "blank line (every line must hold one JSON value)");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonlProblem {
    /// Longer than the per-line limit; the line was not buffered.
    #[error("longer than the limit of {max} bytes")]
    TooLong {
        /// The limit.
        max: u64,
    },
    /// Empty or only white space.
    #[error("blank line (every line must hold one JSON value)")]
    Blank,
    /// Not valid UTF-8 (JSON text must be).
    #[error("not valid UTF-8")]
    NotUtf8,
    /// Not one valid JSON value. Said with the column within the line: the parser's own "line 1"
    /// would contradict the line number of the file.
    #[error("invalid JSON at column {}: {}", .0.column(), json_reason(.0))]
    Json(serde_json::Error),
}

/// serde_json's message without its " at line L column C" (each JSON line is parsed alone, so its
/// line is always 1; the column is said separately).
fn json_reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

impl ReadError {
    /// The 1-based line number this error is about, for line-level errors.
    ///
    /// ```
    /// let err = atomic_io::ReadError::LineTooLong { line: 7, max: 10 };
    /// assert_eq!(err.line(), Some(7));
    /// ```
    pub fn line(&self) -> Option<u64> {
        match self {
            ReadError::LineTooLong { line, .. }
            | ReadError::ReadLine { line, .. }
            | ReadError::Jsonl { line, .. } => Some(*line),
            _ => None,
        }
    }
}

impl Error {
    /// The [`io::ErrorKind`] that fits this error: its I/O cause's kind where it has one;
    /// otherwise what it says (`AlreadyExists` for a no-clobber refusal, `IsADirectory`,
    /// `NotADirectory`, `NotFound` for a missing directory, `FileTooLarge`, `InvalidData` for a
    /// line that is too long or not valid, `InvalidInput` for a target that is not a regular file
    /// or cannot name one, `Other` for a symlink loop).
    ///
    /// ```
    /// let err = atomic_io::Error::TargetExists { path: "out.json".into() };
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::AlreadyExists);
    /// ```
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::Symlink { source, .. }
            | Error::Inspect { source, .. }
            | Error::OpenDir { source, .. }
            | Error::CreateTemp { source, .. }
            | Error::Lock { source, .. }
            | Error::Permissions { source, .. }
            | Error::Write { source, .. }
            | Error::SyncTemp { source, .. }
            | Error::Rename { source, .. }
            | Error::SyncDir { source, .. }
            | Error::RemoveTemp { source, .. } => source.kind(),
            Error::InvalidTarget { .. } | Error::NotAFile { .. } => io::ErrorKind::InvalidInput,
            Error::IsDirectory { .. } => io::ErrorKind::IsADirectory,
            Error::MissingParent { .. } => io::ErrorKind::NotFound,
            Error::ParentNotDirectory { .. } => io::ErrorKind::NotADirectory,
            Error::SymlinkLoop { .. } => io::ErrorKind::Other,
            Error::TargetExists { .. } => io::ErrorKind::AlreadyExists,
        }
    }
}

impl SweepError {
    /// The [`io::ErrorKind`] of its I/O cause.
    ///
    /// ```
    /// let err = atomic_io::sweep::sweep("/nonexistent/dir", &Default::default()).unwrap_err();
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            SweepError::ReadDir { source, .. }
            | SweepError::Examine { source, .. }
            | SweepError::RemoveTemp { source, .. } => source.kind(),
        }
    }
}

impl ReadError {
    /// The [`io::ErrorKind`] that fits this error: its I/O cause's kind where it has one;
    /// otherwise `FileTooLarge`, `InvalidData` for a line that is too long or not valid, and
    /// `InvalidInput` for a path that is not a regular file.
    ///
    /// ```
    /// let err = atomic_io::ReadError::LineTooLong { line: 7, max: 10 };
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::InvalidData);
    /// ```
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            ReadError::Open { source, .. }
            | ReadError::Read { source, .. }
            | ReadError::ReadLine { source, .. } => source.kind(),
            ReadError::NotAFile { .. } => io::ErrorKind::InvalidInput,
            ReadError::FileTooLarge { .. } => io::ErrorKind::FileTooLarge,
            ReadError::LineTooLong { .. } | ReadError::Jsonl { .. } => io::ErrorKind::InvalidData,
        }
    }
}

/// For code that speaks `std::io::Result` (a `Write` adapter, another library's callback): the
/// kind from [`Error::io_kind`], the same message and the same chain of causes; the typed error
/// comes back with [`io::Error::into_inner`] and a downcast.
///
/// ```
/// use std::io;
/// let err = atomic_io::Error::TargetExists { path: "out.json".into() };
/// let io = io::Error::from(err);
/// assert_eq!(io.kind(), io::ErrorKind::AlreadyExists);
/// assert_eq!(io.to_string(), "out.json already exists; not replaced (no-clobber)");
/// assert!(io.into_inner().unwrap().downcast::<atomic_io::Error>().is_ok());
/// ```
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}

/// As for [`Error`]: the kind from [`SweepError::io_kind`], the same message and causes.
impl From<SweepError> for io::Error {
    fn from(err: SweepError) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}

/// As for [`Error`]: the kind from [`ReadError::io_kind`], the same message and causes.
///
/// ```
/// let err = atomic_io::ReadError::FileTooLarge { path: "big".into(), len: 9, max: 8 };
/// assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::FileTooLarge);
/// ```
impl From<ReadError> for io::Error {
    fn from(err: ReadError) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}

#[cfg(test)]
mod io_tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_write_error_becomes_an_io_error_of_its_kind_keeping_message_and_chain() {
        let err = Error::Rename {
            temp: "t".into(),
            target: "out.json".into(),
            source: io::ErrorKind::StorageFull.into(),
        };
        let message = err.to_string();
        let io = io::Error::from(err);
        assert_eq!((io.kind(), io.to_string()), (io::ErrorKind::StorageFull, message));
        let cause = io.source().and_then(|c| c.downcast_ref::<io::Error>()).unwrap();
        assert_eq!(cause.kind(), io::ErrorKind::StorageFull);
        let missing = Error::MissingParent { path: "d/x".into(), parent: "d".into() };
        assert_eq!(io::Error::from(missing).kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn sweep_and_read_errors_become_io_errors_of_their_kind_and_come_back_typed() {
        let sweep = SweepError::Examine {
            path: ".a.atomic-Ab3dE6gH9j.tmp".into(),
            source: io::ErrorKind::PermissionDenied.into(),
        };
        let message = sweep.to_string();
        let io = io::Error::from(sweep);
        assert_eq!((io.kind(), io.to_string()), (io::ErrorKind::PermissionDenied, message));
        assert!(io.into_inner().unwrap().downcast::<SweepError>().is_ok());
        let read =
            ReadError::Jsonl { path: "a.jsonl".into(), line: 3, problem: JsonlProblem::Blank };
        let io = io::Error::from(read);
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            io.to_string(),
            "a.jsonl: line 3: blank line (every line must hold one JSON value)"
        );
        assert!(io.into_inner().unwrap().downcast::<ReadError>().is_ok());
    }
}

//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use crate::FileKind;

/// Everything that can go wrong while hashing or reading a manifest. Every variant names the path
/// or the manifest line it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened.
    #[error("failed to open {}", names::shown(path))]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file was opened but reading it failed.
    #[error("failed to read {}", names::shown(path))]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The path names something that is not a regular file; it was not read.
    #[error("{} is not a regular file but a {kind}", names::shown(path))]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: FileKind,
    },
    /// Walking a directory tree failed at this path.
    #[error("failed to walk {}", names::shown(path))]
    Walk {
        /// Where the walk failed.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A manifest line is not in any format xxhsum writes.
    #[error("line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A manifest line is longer than the reader's limit; it was skipped without being buffered.
    #[error("line {line}: longer than the limit of {max} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: u64,
        /// The limit.
        max: usize,
    },
    /// Reading the manifest itself failed.
    #[error("failed to read manifest at line {line}")]
    ReadManifest {
        /// 1-based number of the line being read.
        line: u64,
        /// The cause.
        source: io::Error,
    },
    /// A hex digest does not fit the algorithm.
    #[error("invalid {algo} digest {hex:?}: {reason}")]
    BadHex {
        /// The algorithm the digest was meant for.
        algo: crate::Algo,
        /// The text given (truncated to 80 characters).
        hex: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The worker pool for parallel hashing could not be started.
    #[error("failed to start {threads} hashing threads: {reason}")]
    ThreadPool {
        /// Threads asked for.
        threads: usize,
        /// The cause reported by rayon.
        reason: String,
    },
}

impl Error {
    /// The [`io::ErrorKind`] that fits this error: its I/O cause's kind where it has one;
    /// `InvalidInput` for a path that is not a regular file; `InvalidData` for a manifest line or
    /// digest that is not valid; `Other` for a worker pool that did not start.
    ///
    /// ```
    /// let err = checksum::Error::Malformed { line: 3, reason: "no digest".into() };
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::InvalidData);
    /// ```
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::Open { source, .. }
            | Error::Read { source, .. }
            | Error::Walk { source, .. }
            | Error::ReadManifest { source, .. } => source.kind(),
            Error::NotAFile { .. } => io::ErrorKind::InvalidInput,
            Error::Malformed { .. } | Error::LineTooLong { .. } | Error::BadHex { .. } => {
                io::ErrorKind::InvalidData
            }
            Error::ThreadPool { .. } => io::ErrorKind::Other,
        }
    }
}

/// For code that speaks `std::io::Result` (a `Read` adapter, another library's callback): the
/// kind from [`Error::io_kind`], the same message and the same chain of causes; the typed error
/// comes back with [`io::Error::into_inner`] and a downcast.
///
/// ```
/// use std::io;
/// let err = checksum::Error::Open { path: "a.bin".into(), source: io::ErrorKind::NotFound.into() };
/// let io = io::Error::from(err);
/// assert_eq!((io.kind(), io.to_string()), (io::ErrorKind::NotFound, "failed to open a.bin".into()));
/// assert!(io.into_inner().unwrap().downcast::<checksum::Error>().is_ok());
/// ```
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_hashing_error_becomes_an_io_error_of_its_kind_keeping_message_and_chain() {
        let err =
            Error::Read { path: "a.bin".into(), source: io::ErrorKind::PermissionDenied.into() };
        let message = err.to_string();
        let io = io::Error::from(err);
        assert_eq!((io.kind(), io.to_string()), (io::ErrorKind::PermissionDenied, message));
        let cause = io.source().and_then(|c| c.downcast_ref::<io::Error>()).unwrap();
        assert_eq!(cause.kind(), io::ErrorKind::PermissionDenied);
        let bad = Error::LineTooLong { line: 1, max: 10 };
        assert_eq!(io::Error::from(bad).kind(), io::ErrorKind::InvalidData);
    }
}

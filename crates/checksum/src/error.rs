//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use crate::file::FileKind;

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

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

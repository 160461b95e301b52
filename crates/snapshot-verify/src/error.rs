//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use crate::manifest::ManifestIssue;
use crate::seal::Refusal;

/// Everything that can stop [`seal`](crate::seal()), [`verify`](crate::verify()) or
/// [`latest`](crate::latest()) before it produced a report. Problems *found* in a snapshot are not
/// errors: they are [`Problem`](crate::Problem)s in a [`Report`](crate::Report).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let err = snapshot_verify::verify(dir.path(), &Default::default(), &()).unwrap_err();
/// assert!(matches!(err, snapshot_verify::Error::NotSealed { .. }));
/// assert!(err.to_string().ends_with("is not sealed: it has no manifest.xxh128"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path given as a snapshot (or as the root of snapshots) is not a directory.
    #[error("{} is not a directory", names::shown(path))]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The snapshot directory (or the root of snapshots) could not be opened or listed.
    #[error("failed to open {}", names::shown(path))]
    Open {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The directory has no manifest: it was never sealed, or its seal is still being written.
    #[error("{} is not sealed: it has no {}", names::shown(dir), crate::MANIFEST)]
    NotSealed {
        /// The directory.
        dir: PathBuf,
    },
    /// The manifest (or its sizes file) exists but could not be read.
    #[error("failed to read manifest {}", names::shown(path))]
    ReadManifest {
        /// The manifest or sizes file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The manifest (or its sizes file) is not one this crate accepts: a malformed or over-long
    /// line, an absolute path, a `..` component, a repeated path, a file too large. Nothing in the
    /// snapshot was read.
    #[error("invalid manifest {}: {}", names::shown(path), summary(issues, *more))]
    InvalidManifest {
        /// The manifest or sizes file.
        path: PathBuf,
        /// The first issues found, in line order (at most [`MAX_ISSUES`](crate::MAX_ISSUES)).
        issues: Vec<ManifestIssue>,
        /// How many more issues were found and not listed.
        more: u64,
    },
    /// Sealing was refused; every reason is listed and nothing was written.
    #[error("refused to seal {}: {}", names::shown(dir), refusals(reasons))]
    Refused {
        /// The directory.
        dir: PathBuf,
        /// Every reason, sorted by path.
        reasons: Vec<Refusal>,
    },
    /// Writing the manifest or its sizes file failed; the directory is left unsealed (or with
    /// its previous seal).
    #[error("failed to write {}", names::shown(path))]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The cause, from atomic-io.
        source: atomic_io::Error,
    },
    /// Making a listed file (or a directory on the way to one) durable before sealing failed:
    /// `EIO`, or a file system that cannot sync (`EINVAL`, `ENOTSUP`). Nothing was sealed.
    #[error("failed to fsync {} on a {fs} file system before sealing", names::shown(path))]
    Sync {
        /// The file or directory.
        path: PathBuf,
        /// The file system's type.
        fs: atomic_io::FileSystem,
        /// The cause.
        source: std::io::Error,
    },
    /// The manifest written by [`seal`](crate::seal()) did not read back as written.
    #[error("manifest {} did not read back as written: {reason}", names::shown(path))]
    ReadBack {
        /// The temp file holding the new manifest.
        path: PathBuf,
        /// What differed.
        reason: String,
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
    /// `NotADirectory`, `NotFound` for a directory never sealed, `InvalidData` for a manifest
    /// that is not valid or did not read back, `InvalidInput` for a refused seal, `Other` for a
    /// worker pool that did not start.
    ///
    /// ```
    /// let err = snapshot_verify::Error::NotSealed { dir: "step-10".into() };
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::Open { source, .. }
            | Error::ReadManifest { source, .. }
            | Error::Sync { source, .. } => source.kind(),
            Error::Write { source, .. } => source.io_kind(),
            Error::NotADirectory { .. } => io::ErrorKind::NotADirectory,
            Error::NotSealed { .. } => io::ErrorKind::NotFound,
            Error::InvalidManifest { .. } | Error::ReadBack { .. } => io::ErrorKind::InvalidData,
            Error::Refused { .. } => io::ErrorKind::InvalidInput,
            Error::ThreadPool { .. } => io::ErrorKind::Other,
        }
    }
}

/// For code that speaks `std::io::Result`: the kind from [`Error::io_kind`], the same message
/// and the same chain of causes; the typed error comes back with [`io::Error::into_inner`] and
/// a downcast.
///
/// ```
/// use std::io;
/// let err = snapshot_verify::Error::NotADirectory { path: "weights.bin".into() };
/// let io = io::Error::from(err);
/// assert_eq!(io.kind(), io::ErrorKind::NotADirectory);
/// assert_eq!(io.to_string(), "weights.bin is not a directory");
/// assert!(io.into_inner().unwrap().downcast::<snapshot_verify::Error>().is_ok());
/// ```
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}

fn summary(issues: &[ManifestIssue], more: u64) -> String {
    let mut text = issues.first().map_or_else(|| "no details".to_owned(), ToString::to_string);
    let rest = issues.len().saturating_sub(1) as u64 + more;
    if rest > 0 {
        text.push_str(&format!(" (and {rest} more)"));
    }
    text
}

fn refusals(reasons: &[Refusal]) -> String {
    let mut text =
        reasons.first().map_or_else(|| "no reason given".to_owned(), ToString::to_string);
    if reasons.len() > 1 {
        text.push_str(&format!(" (and {} more)", reasons.len() - 1));
    }
    text
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes on one line (`message: cause: cause`), for reports that keep errors
/// as text: messages never repeat their cause, so the chain must be walked to keep it.
pub(crate) fn with_causes(err: &dyn std::error::Error) -> String {
    let causes = std::iter::successors(Some(err), |e| e.source());
    causes.map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_snapshot_error_becomes_an_io_error_of_its_kind_keeping_message_and_chain() {
        let err =
            Error::Open { path: "snap".into(), source: io::ErrorKind::PermissionDenied.into() };
        let message = err.to_string();
        let io = io::Error::from(err);
        assert_eq!((io.kind(), io.to_string()), (io::ErrorKind::PermissionDenied, message));
        let cause = io.source().and_then(|c| c.downcast_ref::<io::Error>()).unwrap();
        assert_eq!(cause.kind(), io::ErrorKind::PermissionDenied);
        let unsealed = Error::NotSealed { dir: "snap".into() };
        assert_eq!(io::Error::from(unsealed).kind(), io::ErrorKind::NotFound);
    }
}

//! The crate's errors, one type per audience: [`Error`] refuses a copy before anything is
//! written (what [`plan`](crate::plan), [`execute`](crate::execute) and [`copy`](crate::copy)
//! return); [`FileError`] says why one entry was not copied (in
//! [`CopyReport::failed`](crate::CopyReport::failed), and told to
//! [`CopyProgress::retry`](crate::CopyProgress::retry)), and which of its values are worth
//! another try.

use std::io;
use std::path::PathBuf;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a copy was refused before anything was written ([`plan`](crate::plan) and the start of
/// [`execute`](crate::execute)), naming the path it is about and, where there is one, carrying
/// the `io::Error` that caused it. What goes wrong with one entry once the copy runs is a
/// [`FileError`] in the report instead, and the other entries are still copied.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let root = dir.path();
/// use folder_copier::{plan, CopyOptions, Error};
///
/// std::fs::create_dir(root.join("src"))?;
/// let err = plan(root.join("src"), root.join("src/backup"), &CopyOptions::default()).unwrap_err();
/// assert!(matches!(err, Error::DestinationInsideSource { .. }));
/// assert!(err.to_string().contains("inside the source"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SRC or DST could not be examined.
    #[error("failed to inspect {}", names::shown(path))]
    Inspect {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// DST (or a missing parent of it) could not be created.
    #[error("failed to create destination directory {}", names::shown(path))]
    CreateDestination {
        /// DST.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// SRC is not a directory.
    #[error("source {} is not a directory", names::shown(path))]
    SourceNotDirectory {
        /// SRC.
        path: PathBuf,
    },
    /// DST exists and is not a directory.
    #[error("destination {} exists and is not a directory", names::shown(path))]
    DestinationNotDirectory {
        /// DST.
        path: PathBuf,
    },
    /// DST is SRC, or inside it (by path after resolving symlinks, or by device and inode of one of
    /// DST's ancestors, which also catches bind mounts).
    #[error(
        "refusing to copy {src} into {dst}: the destination is the source or inside the source",
        src = names::shown(src),
        dst = names::shown(dst)
    )]
    DestinationInsideSource {
        /// SRC.
        src: PathBuf,
        /// DST.
        dst: PathBuf,
    },
    /// SRC is inside DST and some file would be written into SRC itself.
    #[error(
        "refusing to copy {src} into {dst}: {} would be written inside the source",
        names::shown(inside),
        src = names::shown(src),
        dst = names::shown(dst)
    )]
    DestinationOverlapsSource {
        /// SRC.
        src: PathBuf,
        /// DST.
        dst: PathBuf,
        /// The first destination path that lies inside SRC.
        inside: PathBuf,
    },
    /// Two source entries would be written to one destination path, or a source file and its
    /// destination are the same file. Nothing was written.
    #[error(
        "{} destination collision(s) in {dst}, nothing copied{}",
        collisions.len(),
        collisions.first().map(|c| format!("; first: {c}")).unwrap_or_default(),
        dst = names::shown(dst)
    )]
    Collisions {
        /// DST.
        dst: PathBuf,
        /// Every collision found (at least one).
        collisions: Vec<Collision>,
    },
    /// DST's file system cannot hold some of the names or sizes in SRC: each path with its reason.
    /// Nothing was written.
    #[error(
        "{} path(s) cannot be stored on {} ({family:?} rules), nothing copied{}",
        entries.len(),
        names::shown(dst),
        entries.first().map(|u| format!("; first: {u}")).unwrap_or_default()
    )]
    Unstorable {
        /// DST.
        dst: PathBuf,
        /// What DST's file system was found to be.
        family: crate::FsFamily,
        /// Every path that cannot be stored (at least one).
        entries: Vec<Unstorable>,
    },
    /// DST's file system has less free space than the copy needs. Nothing was written.
    #[error(
        "not enough free space on {dst}: {needed} bytes needed, {available} bytes available; \
         nothing copied",
        dst = names::shown(dst)
    )]
    NoSpace {
        /// DST (or the existing directory it will be created in).
        dst: PathBuf,
        /// Bytes the copy needs (see [`PlanTotals::needed`](crate::PlanTotals::needed)).
        needed: u64,
        /// Bytes the file system reports available to this user.
        available: u64,
    },
    /// Asking the file system for its free space failed.
    #[error("failed to read the free space of {}", names::shown(path))]
    FreeSpace {
        /// The directory asked about.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The thread pool could not be built.
    #[error("failed to start {jobs} copy threads")]
    ThreadPool {
        /// Threads asked for.
        jobs: usize,
        /// The cause.
        source: rayon::ThreadPoolBuildError,
    },
    /// Removing leftover temp files in DST failed before the copy started.
    #[error("failed to sweep leftover temp files in {}", names::shown(dst))]
    Sweep {
        /// DST.
        dst: PathBuf,
        /// The cause.
        source: atomic_io::SweepError,
    },

    /// SRC itself could not be listed.
    #[error("failed to read {}", names::shown(path))]
    Walk {
        /// SRC.
        path: PathBuf,
        /// The cause.
        source: walkdir::Error,
    },
    /// Preparing DST failed as a file operation does (syncing the directory a new DST was created
    /// in); the message is the [`FileError`]'s.
    #[error(transparent)]
    Start(#[from] FileError),
}

/// Why one entry (a file, a symlink, a hard link, a directory) was not copied, naming the path it
/// is about and, where there is one, carrying the `io::Error` that caused it. Found in
/// [`CopyReport::failed`](crate::CopyReport::failed); [`FileError::is_transient`] says which are
/// retried.
///
/// ```
/// use folder_copier::FileError;
/// let err = FileError::Open { path: "roms/a.nes".into(), source: std::io::ErrorKind::NotFound.into() };
/// assert_eq!(err.to_string(), "failed to open roms/a.nes");
/// assert!(!err.is_transient());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// An entry the walk found could not be examined.
    #[error("failed to inspect {}", names::shown(path))]
    Inspect {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Walking the source tree failed at a path (e.g. an unreadable directory).
    #[error("failed to read {}", names::shown(path))]
    Walk {
        /// Where the walk failed.
        path: PathBuf,
        /// The cause.
        source: walkdir::Error,
    },
    /// Opening a source file failed.
    #[error("failed to open {}", names::shown(path))]
    Open {
        /// The source file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading a source file failed.
    #[error("failed to read {}", names::shown(path))]
    Read {
        /// The source file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A source entry is no longer what the plan saw (e.g. a file replaced by a FIFO); not opened.
    #[error("{} is now a {kind}, not a regular file; not copied", names::shown(path))]
    NotRegular {
        /// The source path.
        path: PathBuf,
        /// What it is now.
        kind: checksum::FileKind,
    },
    /// The source file changed while it was copied: its size, mtime or ctime differs before and
    /// after ([`checksum::Stamp::changed_while_read`]), or fewer or more bytes were read than its
    /// size. The copy was discarded, never recorded as
    /// verified.
    #[error(
        "{} changed while it was copied (size {before_len} -> {after_len}, {read} bytes read, \
         mtime changed: {mtime_changed}); copy discarded",
        names::shown(path)
    )]
    SourceChanged {
        /// The source file.
        path: PathBuf,
        /// Its size when opened.
        before_len: u64,
        /// Its size after the last read.
        after_len: u64,
        /// Bytes read.
        read: u64,
        /// Whether its mtime differs before and after.
        mtime_changed: bool,
    },
    /// The written temp file's size is not the number of bytes read.
    #[error(
        "{temp} holds {actual} bytes after writing {expected} from {}; copy discarded",
        names::shown(src),
        temp = names::shown(temp)
    )]
    SizeMismatch {
        /// The source file.
        src: PathBuf,
        /// The temp file.
        temp: PathBuf,
        /// Bytes read from the source.
        expected: u64,
        /// Size of the temp file.
        actual: u64,
    },
    /// The written temp file, read back, does not hash to what was read from the source.
    #[error(
        "{temp} read back hashes to {actual}, but {} hashed to {expected} while it was read; copy \
         discarded",
        names::shown(src),
        temp = names::shown(temp)
    )]
    HashMismatch {
        /// The source file.
        src: PathBuf,
        /// The temp file.
        temp: PathBuf,
        /// XXH3-128 of the bytes read from the source.
        expected: checksum::Digest,
        /// XXH3-128 of the temp file read back.
        actual: checksum::Digest,
    },
    /// The written temp file, synced and read back from the media, does not hash to what was read
    /// from the source: the device lost or changed the bytes. (The failure names the source.)
    #[error(
        "{} read back from the media hashes to {actual}, not to {expected} as read from the \
         source; copy discarded",
        names::shown(temp)
    )]
    MediaMismatch {
        /// The temp file.
        temp: PathBuf,
        /// XXH3-128 of the bytes read from the source.
        expected: Box<checksum::Digest>,
        /// XXH3-128 of the temp file read back from the media.
        actual: Box<checksum::Digest>,
    },
    /// Reading the written temp file back for verification failed.
    #[error("failed to read back {} to verify it", names::shown(temp))]
    ReadBack {
        /// The temp file.
        temp: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Writing, syncing or renaming through atomic-io failed (its message names the temp and the
    /// target).
    #[error(transparent)]
    Atomic(#[from] atomic_io::Error),
    /// A leftover temp file in DST could not be examined or removed before the copy (its message
    /// names it).
    #[error(transparent)]
    Sweep(#[from] atomic_io::SweepError),
    /// Hashing a source or destination file to compare contents (`checksum` mode) failed.
    #[error(transparent)]
    Checksum(#[from] checksum::Error),
    /// A symlink appeared at the destination between the check and the creation of the temp file;
    /// nothing was written through it.
    #[error(
        "{} became a symlink while it was being replaced; not written through",
        names::shown(path)
    )]
    DestinationRaced {
        /// The destination.
        path: PathBuf,
    },
    /// Something in the destination is in the way and is not replaced (a directory where a file or
    /// symlink goes, or a non-directory where a directory goes).
    #[error("{} is a {kind} in the destination; not replaced", names::shown(path))]
    InTheWay {
        /// The destination path.
        path: PathBuf,
        /// What is there.
        kind: checksum::FileKind,
    },
    /// A source file and its destination are the same file (hard link, bind mount), seen only at
    /// copy time.
    #[error("{} and {} are the same file; not copied", names::shown(src), names::shown(dst))]
    SameFile {
        /// The source file.
        src: PathBuf,
        /// The destination.
        dst: PathBuf,
    },
    /// A file-system operation in the destination failed (creating a directory or symlink,
    /// removing a planted symlink, setting modes and times, syncing a directory).
    #[error("failed to {action} {}", names::shown(path))]
    Destination {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `fsync` of a copied file's temp (then removed, never renamed) or of a destination
    /// directory failed: `EIO`, or a file system that cannot sync (`EINVAL`, `ENOTSUP`).
    #[error("failed to fsync {} on a {fs} file system", names::shown(path))]
    Sync {
        /// The temp file.
        path: PathBuf,
        /// The file system's type.
        fs: atomic_io::FileSystem,
        /// The cause.
        source: io::Error,
    },
    /// A directory's entries cannot be written because the directory itself could not be created.
    #[error(
        "{} not copied: its destination directory {} could not be created",
        names::shown(path),
        names::shown(dir)
    )]
    ParentFailed {
        /// The source entry.
        path: PathBuf,
        /// The destination directory that failed.
        dir: PathBuf,
    },
}

/// A path in SRC that DST's file system cannot hold, and why. See [`Error::Unstorable`].
///
/// ```
/// let u = folder_copier::Unstorable { path: "nes/a:b.nes".into(), reason: "it contains ':'".into() };
/// assert_eq!(u.to_string(), "nes/a:b.nes: it contains ':'");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unstorable {
    /// Relative to SRC.
    pub path: PathBuf,
    /// Why DST cannot hold it.
    pub reason: String,
}

impl std::fmt::Display for Unstorable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", names::shown(&self.path), self.reason)
    }
}

/// Two source entries that would land on one destination path, or a source file that is its own
/// destination. See [`Error::Collisions`].
///
/// ```
/// use folder_copier::Collision;
/// let c = Collision::CaseFold { first: "Game.rom".into(), second: "game.rom".into() };
/// assert_eq!(c.to_string(), "Game.rom and game.rom differ only by case");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Collision {
    /// Two relative paths that name one file on a case-insensitive destination.
    CaseFold {
        /// The first (in walk order), relative to SRC.
        first: PathBuf,
        /// The second, relative to SRC.
        second: PathBuf,
    },
    /// A source file and its destination are the same file (same device and inode).
    SameFile {
        /// The source file.
        src: PathBuf,
        /// Its destination.
        dst: PathBuf,
    },
}

impl std::fmt::Display for Collision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Collision::CaseFold { first, second } => {
                write!(
                    f,
                    "{} and {} differ only by case",
                    names::shown(first),
                    names::shown(second)
                )
            }
            Collision::SameFile { src, dst } => {
                write!(f, "{} and {} are the same file", names::shown(src), names::shown(dst))
            }
        }
    }
}

/// `errno` values worth another try: the device or the network may answer next time.
const TRANSIENT: [rustix::io::Errno; 4] = [
    rustix::io::Errno::IO,
    rustix::io::Errno::AGAIN,
    rustix::io::Errno::INTR,
    rustix::io::Errno::TIMEDOUT,
];

impl FileError {
    /// Whether another try may succeed: an `EIO`, `EAGAIN`, `EINTR` or `ETIMEDOUT` anywhere in the
    /// error's chain, or a source that changed (or read back differently) while it was copied.
    /// `ENOENT`, `EACCES`, `ENOSPC` and every other error are final.
    ///
    /// ```
    /// use folder_copier::FileError;
    /// let eio = FileError::Read { path: "f".into(), source: std::io::Error::from_raw_os_error(5) };
    /// let enoent =
    ///     FileError::Open { path: "f".into(), source: std::io::ErrorKind::NotFound.into() };
    /// assert!(eio.is_transient());
    /// assert!(!enoent.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            FileError::SourceChanged { .. }
            | FileError::SizeMismatch { .. }
            | FileError::HashMismatch { .. } => true,
            _ => {
                let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
                while let Some(err) = cause {
                    if let Some(io) = err.downcast_ref::<io::Error>() {
                        return io.kind() == io::ErrorKind::Interrupted
                            || io.raw_os_error().is_some_and(|code| {
                                TRANSIENT.iter().any(|t| t.raw_os_error() == code)
                            });
                    }
                    cause = err.source();
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_err(code: i32) -> FileError {
        FileError::Read { path: "f".into(), source: io::Error::from_raw_os_error(code) }
    }

    #[test]
    fn only_transient_errnos_are_retried() {
        for code in [5, 11, 4, 110] {
            assert!(read_err(code).is_transient(), "errno {code}");
        }
        for code in [2, 13, 28, 1, 21] {
            assert!(!read_err(code).is_transient(), "errno {code}");
        }
    }

    #[test]
    fn transient_errors_inside_atomic_io_errors_are_found() {
        let err = FileError::Atomic(atomic_io::Error::Write {
            temp: "t".into(),
            target: "f".into(),
            source: io::Error::from_raw_os_error(5),
        });
        assert!(err.is_transient());
        let err = FileError::Atomic(atomic_io::Error::Write {
            temp: "t".into(),
            target: "f".into(),
            source: io::Error::from_raw_os_error(28),
        });
        assert!(!err.is_transient(), "ENOSPC is final");
    }
}

impl Error {
    /// The [`io::ErrorKind`] that fits this error: its I/O cause's kind where it has one (through
    /// `atomic-io` and the walk too); otherwise what it says (`NotADirectory`, `StorageFull` for
    /// too little free space, `InvalidFilename` for a name DST cannot hold, `InvalidInput` for a
    /// refused pair of folders or colliding names), else `Other`.
    ///
    /// ```
    /// let err = folder_copier::Error::SourceNotDirectory { path: "roms".into() };
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::NotADirectory);
    /// ```
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::Inspect { source, .. }
            | Error::CreateDestination { source, .. }
            | Error::FreeSpace { source, .. } => source.kind(),
            Error::Walk { source, .. } => {
                source.io_error().map_or(io::ErrorKind::Other, io::Error::kind)
            }
            Error::Sweep { source, .. } => source.io_kind(),
            Error::Start(source) => source.io_kind(),
            Error::SourceNotDirectory { .. } | Error::DestinationNotDirectory { .. } => {
                io::ErrorKind::NotADirectory
            }
            Error::DestinationInsideSource { .. }
            | Error::DestinationOverlapsSource { .. }
            | Error::Collisions { .. } => io::ErrorKind::InvalidInput,
            Error::Unstorable { .. } => io::ErrorKind::InvalidFilename,
            Error::NoSpace { .. } => io::ErrorKind::StorageFull,
            Error::ThreadPool { .. } => io::ErrorKind::Other,
        }
    }
}

impl FileError {
    /// The [`io::ErrorKind`] that fits this error: its I/O cause's kind where it has one (through
    /// `atomic-io`, `checksum` and the walk too); otherwise what it says (`InvalidData` for a copy
    /// that did not read back as read, `AlreadyExists` for something in the way, `InvalidInput`
    /// for a source that is no longer a regular file or is its own destination), else `Other`.
    ///
    /// ```
    /// use folder_copier::FileError;
    /// let err = FileError::InTheWay { path: "a".into(), kind: checksum::FileKind::Directory };
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::AlreadyExists);
    /// ```
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            FileError::Inspect { source, .. }
            | FileError::Open { source, .. }
            | FileError::Read { source, .. }
            | FileError::ReadBack { source, .. }
            | FileError::Destination { source, .. }
            | FileError::Sync { source, .. } => source.kind(),
            FileError::Walk { source, .. } => {
                source.io_error().map_or(io::ErrorKind::Other, io::Error::kind)
            }
            FileError::Atomic(source) => source.io_kind(),
            FileError::Sweep(source) => source.io_kind(),
            FileError::Checksum(source) => source.io_kind(),
            FileError::NotRegular { .. } | FileError::SameFile { .. } => {
                io::ErrorKind::InvalidInput
            }
            FileError::SizeMismatch { .. }
            | FileError::HashMismatch { .. }
            | FileError::MediaMismatch { .. } => io::ErrorKind::InvalidData,
            FileError::InTheWay { .. } | FileError::DestinationRaced { .. } => {
                io::ErrorKind::AlreadyExists
            }
            FileError::SourceChanged { .. } | FileError::ParentFailed { .. } => {
                io::ErrorKind::Other
            }
        }
    }
}

/// For code that speaks `std::io::Result`: the kind from [`Error::io_kind`], the same message
/// and the same chain of causes; the typed error comes back with [`io::Error::into_inner`] and a
/// downcast.
///
/// ```
/// use std::io;
/// let err = folder_copier::Error::SourceNotDirectory { path: "roms".into() };
/// let io = io::Error::from(err);
/// assert_eq!(io.kind(), io::ErrorKind::NotADirectory);
/// assert_eq!(io.to_string(), "source roms is not a directory");
/// assert!(io.into_inner().unwrap().downcast::<folder_copier::Error>().is_ok());
/// ```
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        match err {
            // The file error inside, so that a downcast finds the error that happened.
            Error::Start(err) => err.into(),
            err => io::Error::new(err.io_kind(), err),
        }
    }
}

/// For code that speaks `std::io::Result`, as for [`Error`].
///
/// ```
/// use std::io;
/// let err = folder_copier::FileError::Open { path: "a".into(), source: io::ErrorKind::NotFound.into() };
/// assert_eq!(io::Error::from(err).kind(), io::ErrorKind::NotFound);
/// ```
impl From<FileError> for io::Error {
    fn from(err: FileError) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}

#[cfg(test)]
mod io_tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_copy_error_becomes_an_io_error_of_its_kind_keeping_message_and_chain() {
        let err = FileError::Open {
            path: "roms/a".into(),
            source: io::ErrorKind::PermissionDenied.into(),
        };
        let message = err.to_string();
        let io = io::Error::from(err);
        assert_eq!((io.kind(), io.to_string()), (io::ErrorKind::PermissionDenied, message));
        let cause = io.source().and_then(|c| c.downcast_ref::<io::Error>()).unwrap();
        assert_eq!(cause.kind(), io::ErrorKind::PermissionDenied);
        let full = Error::NoSpace { dst: "card".into(), needed: 10, available: 1 };
        assert_eq!(io::Error::from(full).kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn a_start_failure_becomes_the_io_error_of_the_file_error_inside() {
        let file = FileError::Destination {
            action: "open directory",
            path: "card".into(),
            source: io::ErrorKind::PermissionDenied.into(),
        };
        let err = Error::from(file);
        assert_eq!(err.to_string(), "failed to open directory card");
        let io = io::Error::from(err);
        assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
        let inner = io.into_inner().unwrap().downcast::<FileError>().unwrap();
        assert!(matches!(*inner, FileError::Destination { .. }));
    }
}

//! What a copy did: [`CopyReport`], [`Failure`], [`Warning`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::FileError;

/// A source entry that was not copied, and why.
///
/// ```
/// use std::ffi::OsStr;
/// use std::os::unix::ffi::OsStrExt;
/// use folder_copier::{FileError, Failure};
/// let path = std::path::PathBuf::from(OsStr::from_bytes(b"src/caf\xe9"));
/// let error = FileError::Open { path: path.clone(), source: std::io::ErrorKind::NotFound.into() };
/// let f = Failure { path, error };
/// assert!(f.to_string().starts_with(r"src/caf\xe9: "));
/// ```
#[derive(Debug)]
pub struct Failure {
    /// The source path (SRC joined with the entry's relative path).
    pub path: PathBuf,
    /// The cause, after the last try.
    pub error: FileError,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A report line, not an error: it says the whole chain (error messages never repeat
        // their cause).
        write!(f, "{}: {}", names::shown(&self.path), self.error)?;
        let mut cause = std::error::Error::source(&self.error);
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

/// Something skipped or cleaned up; not a failure.
///
/// ```
/// use folder_copier::Warning;
/// use checksum::FileKind;
/// let w = Warning::SkippedSpecial { path: "src/pipe".into(), kind: FileKind::Fifo };
/// assert_eq!(w.to_string(), "skipped FIFO src/pipe (not a regular file, never opened)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// A FIFO, socket or device in SRC: skipped, never opened.
    SkippedSpecial {
        /// The source path.
        path: PathBuf,
        /// What it is.
        kind: checksum::FileKind,
    },
    /// A file in SRC named like an atomic-io temp file (another writer's work in progress, or an
    /// orphan): not copied, since a destination with that name would look like an orphan to
    /// `sweep`.
    SkippedTemp {
        /// The source path.
        path: PathBuf,
    },
    /// A temp file an earlier, killed copy left in DST, removed.
    RemovedTemp {
        /// The temp file.
        path: PathBuf,
    },
    /// A temp file in DST that a live writer holds; left alone.
    BusyTemp {
        /// The temp file.
        path: PathBuf,
    },
    /// Something about DST's file system that a probe could not find out, and what is assumed.
    Destination {
        /// The directory probed.
        path: PathBuf,
        /// What could not be found out and what is assumed instead.
        note: String,
    },
    /// DST's file system does not keep modes (exFAT and FAT through FUSE accept `chmod` and keep
    /// nothing): files are copied without them. Said once per copy.
    ModesNotKept {
        /// The directory probed.
        path: PathBuf,
    },
    /// An extended attribute could not be copied (DST does not take them, or not that one): said
    /// once per copy, for the first file it happened to; the copy goes on without them.
    XattrsNotKept {
        /// The source file whose attributes could not be copied.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The owner or group of a file, directory or symlink could not be kept (the process may not
    /// give files away, or DST keeps no owners): said once per copy, for the first entry it
    /// happened to; the copy goes on and entries get the owner a new file of this process gets.
    OwnersNotKept {
        /// The source entry whose owner could not be kept.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// DST's file system reports no capacity at all (some network and FUSE file systems), so free
    /// space was not checked.
    NoCapacity {
        /// The directory asked.
        path: PathBuf,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::SkippedSpecial { path, kind } => {
                write!(
                    f,
                    "skipped {kind} {} (not a regular file, never opened)",
                    names::shown(path)
                )
            }
            Warning::SkippedTemp { path } => {
                write!(f, "skipped {} (named like an atomic-io temp file)", names::shown(path))
            }
            Warning::RemovedTemp { path } => {
                write!(f, "removed leftover temp file {}", names::shown(path))
            }
            Warning::BusyTemp { path } => {
                write!(f, "left temp file {} alone (a live writer holds it)", names::shown(path))
            }
            Warning::Destination { path, note } => write!(f, "{}: {note}", names::shown(path)),
            Warning::ModesNotKept { path } => write!(
                f,
                "the file system of {} does not keep file modes; copying without them",
                names::shown(path)
            ),
            Warning::XattrsNotKept { path, reason } => write!(
                f,
                "extended attributes of {} not copied ({reason}); copying without them",
                names::shown(path)
            ),
            Warning::OwnersNotKept { path, reason } => write!(
                f,
                "the owner of {} not kept ({reason}); copying with this process's owner",
                names::shown(path)
            ),
            Warning::NoCapacity { path } => write!(
                f,
                "the file system of {} reports no capacity; free space not checked",
                names::shown(path)
            ),
        }
    }
}

/// What [`execute`](crate::execute) (or [`copy`](crate::copy)) did.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let root = dir.path();
/// # std::fs::create_dir(root.join("src"))?;
/// std::fs::write(root.join("src/a"), b"abc")?;
/// let opts = Default::default();
/// let first = folder_copier::copy(root.join("src"), root.join("dst"), &opts, &())?;
/// assert_eq!((first.copied, first.copied_bytes, first.skipped), (1, 3, 0));
/// let again = folder_copier::copy(root.join("src"), root.join("dst"), &opts, &())?;
/// assert_eq!((again.copied, again.skipped), (0, 1));
/// assert!(again.is_success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct CopyReport {
    /// Regular files written, checked and renamed into place.
    pub copied: u64,
    /// Their bytes.
    pub copied_bytes: u64,
    /// Symlinks created or replaced.
    pub links: u64,
    /// Directories created.
    pub dirs_created: u64,
    /// Names made hard links to a file copied under another name (files hard-linked in SRC).
    pub hard_links: u64,
    /// Files and symlinks whose destination was already up to date.
    pub skipped: u64,
    /// Bytes of the skipped files.
    pub skipped_bytes: u64,
    /// Entries not copied, with the cause. One failure never stops the others.
    pub failed: Vec<Failure>,
    /// Things skipped or cleaned up.
    pub warnings: Vec<Warning>,
    /// Transient errors that were retried (whether or not a later try succeeded).
    pub retries: u64,
    /// Whether every copied file was read back and compared by hash (see
    /// [`CopyOptions::verify`](crate::CopyOptions::verify)).
    pub verified: bool,
    /// Where the read-back came from, when [`verified`](CopyReport::verified).
    pub read_back: crate::ReadBack,
    /// Whether the cancel flag stopped the copy early.
    pub interrupted: bool,
    /// Files and symlinks neither copied, skipped nor failed, because the copy was cancelled.
    pub not_attempted: u64,
    /// Wall-clock time of [`execute`](crate::execute) ([`copy`](crate::copy): planning included).
    pub elapsed: Duration,
}

/// One line a person reads; `safefs copy` prints it after `copy: ` (`copy ` when interrupted):
/// copied (sizes in binary units, as [`human_bytes`] writes them), symlinks, new directories,
/// skipped, failed, warnings, retries, time and rate, and whether the copies were read back. The
/// failures and warnings themselves are in [`failed`](CopyReport::failed) and
/// [`warnings`](CopyReport::warnings), each with its own [`Display`](fmt::Display) naming the path.
///
/// ```
/// use std::time::Duration;
/// let mut r = folder_copier::CopyReport::default();
/// r.copied = 2;
/// r.copied_bytes = 1_500;
/// r.skipped = 1;
/// r.verified = true;
/// r.elapsed = Duration::from_millis(250);
/// assert_eq!(
///     r.to_string(),
///     "copied 2 files (1.46 KiB), 0 symlinks, 0 new directories; skipped 1 up to date; \
///      0 failed; 0 warnings; 0 retries; 0.25s, 5.86 KiB/s, verified"
/// );
/// ```
impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.interrupted {
            f.write_str("interrupted: ")?;
        }
        write!(
            f,
            "copied {} files ({}), {} symlinks, {} new directories; skipped {} up to date; \
             {} failed; {} warnings; {} retries; {:.2}s, {}/s",
            self.copied,
            human_bytes(self.copied_bytes),
            self.links,
            self.dirs_created,
            self.skipped,
            self.failed.len(),
            self.warnings.len(),
            self.retries,
            self.elapsed.as_secs_f64(),
            // Whole bytes per second.
            human_bytes(self.throughput() as u64),
        )?;
        match (self.copied, self.verified) {
            (0, _) => {}
            (_, true) => f.write_str(", verified")?,
            (_, false) => f.write_str(", size-checked only (not read back)")?,
        }
        if self.interrupted {
            write!(f, "; {} not attempted", self.not_attempted)?;
        }
        Ok(())
    }
}

/// A byte count as a person reads it, in binary units with two decimals: `15 B`, `1.46 KiB`,
/// `2.10 GiB` (the units and rounding of indicatif's `HumanBytes`, which the CLI's progress
/// bars use, so a summary and a bar agree; a test of the CLI keeps the two equal).
///
/// ```
/// use folder_copier::human_bytes;
/// assert_eq!(human_bytes(1023).to_string(), "1023 B");
/// assert_eq!(human_bytes(1536).to_string(), "1.50 KiB");
/// assert_eq!(human_bytes(5 << 30).to_string(), "5.00 GiB");
/// ```
pub fn human_bytes(bytes: u64) -> impl fmt::Display {
    HumanBytes(bytes)
}

struct HumanBytes(u64);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 8] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
        let mut amount = self.0 as f64;
        let mut unit = None;
        for next in UNITS {
            if amount < 1024.0 {
                break;
            }
            amount /= 1024.0;
            unit = Some(next);
        }
        match unit {
            None => write!(f, "{amount:.0} B"),
            Some(unit) => write!(f, "{amount:.2} {unit}"),
        }
    }
}

impl CopyReport {
    /// Bytes copied per second of [`elapsed`](CopyReport::elapsed) (0 when nothing was timed).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut r = folder_copier::CopyReport::default();
    /// r.copied_bytes = 2_000;
    /// r.elapsed = Duration::from_secs(2);
    /// assert_eq!(r.throughput(), 1_000.0);
    /// ```
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.copied_bytes as f64 / secs } else { 0.0 }
    }

    /// Whether everything was copied or skipped: nothing failed and nothing was left undone.
    ///
    /// ```
    /// assert!(folder_copier::CopyReport::default().is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        self.failed.is_empty() && !self.interrupted
    }

    pub(crate) fn absorb(&mut self, other: CopyReport) {
        self.copied += other.copied;
        self.copied_bytes += other.copied_bytes;
        self.links += other.links;
        self.dirs_created += other.dirs_created;
        self.hard_links += other.hard_links;
        self.skipped += other.skipped;
        self.skipped_bytes += other.skipped_bytes;
        self.failed.extend(other.failed);
        self.warnings.extend(other.warnings);
        self.retries += other.retries;
        self.interrupted |= other.interrupted;
        self.not_attempted += other.not_attempted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_as_one_line_with_every_count() {
        let r = CopyReport {
            copied: 3,
            copied_bytes: 4096,
            links: 1,
            dirs_created: 2,
            skipped: 5,
            failed: vec![Failure {
                path: PathBuf::from("src/a\nb"),
                error: FileError::Open {
                    path: "src/a\nb".into(),
                    source: std::io::ErrorKind::NotFound.into(),
                },
            }],
            warnings: vec![Warning::RemovedTemp { path: "dst/t".into() }],
            retries: 4,
            elapsed: Duration::from_millis(1234),
            ..Default::default()
        };
        assert_eq!(
            r.to_string(),
            "copied 3 files (4.00 KiB), 1 symlinks, 2 new directories; skipped 5 up to date; \
             1 failed; 1 warnings; 4 retries; 1.23s, 3.24 KiB/s, size-checked only (not read back)"
        );
        assert!(r.failed[0].to_string().starts_with(r"src/a\nb: "), "{}", r.failed[0]);
    }

    #[test]
    fn an_interrupted_report_says_so_and_what_was_not_attempted() {
        let r = CopyReport { interrupted: true, not_attempted: 7, ..Default::default() };
        assert_eq!(
            r.to_string(),
            "interrupted: copied 0 files (0 B), 0 symlinks, 0 new directories; skipped 0 up to \
             date; 0 failed; 0 warnings; 0 retries; 0.00s, 0 B/s; 7 not attempted"
        );
        let text = r.to_string();
        assert!(!text.contains('\n'), "{text}");
    }
}

//! Progress events, for a progress bar or a log: [`CopyProgress`].

use std::path::Path;
use std::time::Duration;

use crate::{FileError, PlanTotals, Warning};

/// What became of one file.
///
/// ```
/// assert_ne!(folder_copier::FileOutcome::Copied, folder_copier::FileOutcome::Skipped);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileOutcome {
    /// Written, verified and renamed into place.
    Copied,
    /// Its destination was already up to date.
    Skipped,
    /// Not copied; the report says why.
    Failed,
}

/// What one source directory's task did, passed to [`CopyProgress::dir_done`].
///
/// ```
/// let stats = folder_copier::DirStats::default();
/// assert_eq!(stats.copied + stats.skipped + stats.failed, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirStats {
    /// Files and symlinks copied.
    pub copied: u64,
    /// Files and symlinks already up to date.
    pub skipped: u64,
    /// Files and symlinks that failed.
    pub failed: u64,
    /// Bytes of the copied files.
    pub bytes: u64,
}

/// Receives progress events from [`execute`](crate::execute), from several threads at once (one
/// per source directory being copied). Every method has a no-op default; `()` implements it.
///
/// Paths are relative to SRC. Events of one directory come in order; directories interleave.
///
/// ```
/// use std::path::Path;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use folder_copier::{CopyProgress, FileOutcome};
///
/// #[derive(Default)]
/// struct Count(AtomicU64);
/// impl CopyProgress for Count {
///     fn file_done(&self, _rel: &Path, _len: u64, outcome: FileOutcome) {
///         if outcome == FileOutcome::Copied {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// }
/// # let dir = tempfile::tempdir()?;
/// # let root = dir.path();
/// # std::fs::create_dir(root.join("src"))?;
/// # std::fs::write(root.join("src/a"), b"a")?;
/// let count = Count::default();
/// folder_copier::copy(root.join("src"), root.join("dst"), &Default::default(), &count)?;
/// assert_eq!(count.0.load(Ordering::Relaxed), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait CopyProgress: Send + Sync {
    /// Once, before any file: what the plan found.
    fn planned(&self, _totals: &PlanTotals) {}
    /// A file is about to be read (again, on a retry).
    fn file_started(&self, _rel: &Path, _len: u64) {}
    /// `bytes` more were read and written (called per buffer; counted again on a retry).
    fn bytes_copied(&self, _bytes: u64) {}
    /// A file or symlink is done. `len` is the file's size (0 for a symlink).
    fn file_done(&self, _rel: &Path, _len: u64, _outcome: FileOutcome) {}
    /// A source directory's task is done (its files renamed and, with durability full, the
    /// directory synced).
    fn dir_done(&self, _rel: &Path, _stats: &DirStats) {}
    /// Something was skipped or cleaned up (a FIFO, a leftover temp).
    fn warning(&self, _warning: &Warning) {}
    /// A transient error; attempt number `next_attempt` starts after `delay`.
    fn retry(&self, _rel: &Path, _error: &FileError, _next_attempt: u32, _delay: Duration) {}
}

impl CopyProgress for () {}

//! How to copy: [`CopyOptions`] and its [`RetryPolicy`].

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use atomic_io::Durability;

/// How to copy. `Default` is: several tasks per core ([`CopyOptions::jobs`]), verification on, [`Durability::Full`], skip by
/// size and mtime (at DST's mtime step), case sensitivity probed on DST, 3 tries from 100 ms for transient errors, no
/// cancel flag, free space read with `fs4`.
///
/// ```
/// use std::sync::{Arc, atomic::AtomicBool};
/// use folder_copier::{CopyOptions, Durability};
///
/// let cancel = Arc::new(AtomicBool::new(false));
/// let mut opts = CopyOptions::default();
/// opts.jobs = Some(4);
/// opts.durability = Durability::None;
/// opts.cancel = Some(cancel.clone());
/// assert!(opts.verify);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CopyOptions {
    /// Source directories (or slices of a large one) copied at once: the threads of the pool built
    /// for this copy, a cap. `None` is `checksum::reading_threads(None)`, several per core
    /// ([`checksum::READS_PER_CORE`]): a copy mostly waits for the device on a cold cache, and the
    /// device answers faster with several reads queued.
    pub jobs: Option<usize>,
    /// Re-read each written temp file and compare its XXH3-128 hash with the hash of the bytes read
    /// from the source before renaming it into place. Its size is compared either way. See the
    /// crate docs for what "verified" does and does not prove.
    pub verify: bool,
    /// Where the read-back of `verify` comes from. [`ReadBack::Media`] also makes each file
    /// durable before it is read back, whatever [`durability`](CopyOptions::durability) says.
    pub read_back: ReadBack,
    /// [`Durability::Full`]: every file is `fsync`ed before its rename and each destination
    /// directory once after its renames. [`Durability::None`]: no `fsync` at all.
    pub durability: Durability,
    /// Decide what to skip by content (XXH3-128 of source and destination, when their sizes match)
    /// instead of by size and mtime.
    pub checksum: bool,
    /// Treat names that differ only by case as colliding, whatever DST's file system does. When
    /// false, DST's file system is probed and a case-insensitive one turns this on.
    pub case_insensitive: bool,
    /// Mtimes that differ by less than this count as equal when deciding what is up to date (like
    /// rsync's `--modify-window`, but "less than": `Duration::ZERO` compares exactly). `None`:
    /// the step DST's file system keeps mtimes in, probed ([`Destination`](crate::Destination)):
    /// 1 ns on ext4, 1 s on exFAT through FUSE, 2 s on FAT. A file whose size differs is copied
    /// whatever the window.
    pub modify_window: Option<Duration>,
    /// Retries of transient errors.
    pub retry: RetryPolicy,
    /// Set it (from a signal handler, another thread) to stop: no new file is started, temps are
    /// removed, and [`execute`](crate::execute) returns the partial report with
    /// [`interrupted`](crate::CopyReport::interrupted) set.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Bytes available to this user on the file system holding a directory: `fs4`'s
    /// `available_space` unless replaced (tests inject a small figure here).
    pub available_space: fn(&Path) -> io::Result<u64>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            jobs: None,
            verify: true,
            read_back: ReadBack::Cache,
            durability: Durability::Full,
            checksum: false,
            case_insensitive: false,
            modify_window: None,
            retry: RetryPolicy::default(),
            cancel: None,
            available_space: fs4_available_space,
        }
    }
}

impl CopyOptions {
    /// Whether the cancel flag is set.
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|flag| flag.load(Ordering::Relaxed))
    }
}

fn fs4_available_space(path: &Path) -> io::Result<u64> {
    fs4::available_space(path)
}

/// Where [`CopyOptions::verify`] reads a written file back from.
///
/// ```
/// use folder_copier::{CopyOptions, ReadBack};
/// let mut opts = CopyOptions::default();
/// opts.read_back = ReadBack::Media;
/// assert_eq!(CopyOptions::default().read_back, ReadBack::Cache);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadBack {
    /// The temp file is read back through the descriptor it was written with, right after it was
    /// written: mostly from the page cache. Proves that the bytes handed to the kernel are the
    /// bytes read from the source (no bug or bad RAM between the two); costs one hash of the file
    /// from memory.
    #[default]
    Cache,
    /// After the temp file is synced, it is opened again and its cached pages are dropped
    /// (`posix_fadvise(DONTNEED)`, which drops clean pages only, hence the sync first), then read
    /// and hashed: the bytes come from the device, or from whatever cache is below the kernel's
    /// page cache (a drive's or a card's own cache, a FUSE daemon's buffers). Catches a card that
    /// loses or mangles writes; costs a read of every file from the device.
    Media,
}

/// How transient errors (see [`FileError::is_transient`](crate::FileError::is_transient)) are retried:
/// `tries` attempts in all, waiting `first_delay` before the second and doubling each time.
///
/// ```
/// use std::time::Duration;
/// use folder_copier::RetryPolicy;
///
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.tries, 3);
/// assert_eq!(policy.delay_before(2), Duration::from_millis(100));
/// assert_eq!(policy.delay_before(3), Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per file, the first included; 1 means no retry (0 is taken as 1).
    pub tries: u32,
    /// Wait before the second attempt; each later wait doubles.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { tries: 3, first_delay: Duration::from_millis(100) }
    }
}

impl RetryPolicy {
    /// The wait before attempt number `attempt` (1-based; no wait before the first).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut policy = folder_copier::RetryPolicy::default();
    /// policy.tries = 5;
    /// policy.first_delay = Duration::from_millis(10);
    /// assert_eq!(policy.delay_before(1), Duration::ZERO);
    /// assert_eq!(policy.delay_before(4), Duration::from_millis(40));
    /// ```
    pub fn delay_before(&self, attempt: u32) -> Duration {
        match attempt {
            0 | 1 => Duration::ZERO,
            n => self.first_delay.saturating_mul(1u32 << (n - 2).min(20)),
        }
    }

    /// Attempts in all (at least 1).
    pub(crate) fn max_tries(&self) -> u32 {
        self.tries.max(1)
    }
}

//! Timestamps as a file system stores them, and change detection: whether a file changed while
//! it was read, told by its [`Stamp`] (length, mtime, ctime) before and after. Every crate that
//! reads a file it did not write (the copier, the seal) asks the same question this way.

use std::fmt;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A file time as the file system stores it: seconds and nanoseconds since the epoch. Shown as
/// `seconds.nanoseconds` (nine digits).
///
/// ```
/// let t = checksum::Timestamp { sec: 1_600_000_000, nsec: 5 };
/// assert_eq!(t.to_string(), "1600000000.000000005");
/// let meta = std::fs::metadata("/").unwrap();
/// assert_eq!(checksum::Timestamp::mtime(&meta).to_system_time(), meta.modified().unwrap());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Whole seconds since the epoch (negative before it).
    pub sec: i64,
    /// Nanoseconds, 0 to 999,999,999 as the kernel reports them.
    pub nsec: i64,
}

impl Timestamp {
    /// The last modification time (of the content).
    pub fn mtime(meta: &Metadata) -> Timestamp {
        Timestamp { sec: meta.mtime(), nsec: meta.mtime_nsec() }
    }

    /// The last status change (content, owner, mode, links): one no user-space call can set back.
    pub fn ctime(meta: &Metadata) -> Timestamp {
        Timestamp { sec: meta.ctime(), nsec: meta.ctime_nsec() }
    }

    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        // nsec is in 0..1e9 as the kernel reports it; the clamp keeps a corrupt value harmless.
        let nsec = self.nsec.clamp(0, 999_999_999) as u32;
        if self.sec >= 0 {
            UNIX_EPOCH + Duration::new(self.sec as u64, nsec)
        } else {
            UNIX_EPOCH - Duration::from_secs(self.sec.unsigned_abs()) + Duration::new(0, nsec)
        }
    }

    /// Whether `self` and `other` differ by less than `window` (a zero window: equal), as
    /// rsync's `--modify-window` compares times a coarse file system rounded.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = |sec, nsec| checksum::Timestamp { sec, nsec };
    /// assert!(t(10, 999_999_999).within(t(10, 0), Duration::from_secs(1)));
    /// assert!(!t(10, 5).within(t(10, 6), Duration::ZERO));
    /// ```
    pub fn within(self, other: Timestamp, window: Duration) -> bool {
        let ns = |t: Timestamp| i128::from(t.sec) * 1_000_000_000 + i128::from(t.nsec);
        let diff = ns(self).abs_diff(ns(other));
        diff == 0 || diff < window.as_nanos()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.sec, self.nsec)
    }
}

/// What identifies one version of a file's content cheaply, from one `stat`: its length, mtime
/// and ctime. A writer can set the mtime back; the ctime moves with every write regardless.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("log");
/// use std::io::{Read, Write};
/// std::fs::write(&path, b"first line\n")?;
/// let mut file = std::fs::File::open(&path)?;
/// let before = checksum::Stamp::of(&file.metadata()?);
/// let mut read = Vec::new();
/// file.read_to_end(&mut read)?;
/// assert!(!before.changed_while_read(&checksum::Stamp::of(&file.metadata()?), read.len() as u64));
/// std::fs::OpenOptions::new().append(true).open(&path)?.write_all(b"appended\n")?;
/// assert!(before.changed_while_read(&checksum::Stamp::of(&file.metadata()?), read.len() as u64));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Its length in bytes.
    pub len: u64,
    /// Its mtime.
    pub mtime: Timestamp,
    /// Its ctime.
    pub ctime: Timestamp,
}

impl Stamp {
    /// The stamp of the file `meta` was taken of.
    pub fn of(meta: &Metadata) -> Stamp {
        Stamp { len: meta.len(), mtime: Timestamp::mtime(meta), ctime: Timestamp::ctime(meta) }
    }

    /// Whether the file changed while it was read, `self` taken before the first read and
    /// `after` after the last, `read` bytes read in between: its stamp moved, or more or fewer
    /// bytes were read than it holds. What was read is then of no particular version.
    pub fn changed_while_read(&self, after: &Stamp, read: u64) -> bool {
        self != after || read != after.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_system_time() {
        let t = Timestamp { sec: 1_000_000_000, nsec: 123_456_789 };
        assert_eq!(t.to_system_time(), UNIX_EPOCH + Duration::new(1_000_000_000, 123_456_789));
        let old = Timestamp { sec: -1, nsec: 500 };
        assert_eq!(
            old.to_system_time(),
            UNIX_EPOCH - Duration::from_secs(1) + Duration::new(0, 500)
        );
    }

    #[test]
    fn timestamps_within_a_window() {
        let t = |sec, nsec| Timestamp { sec, nsec };
        let second = Duration::from_secs(1);
        assert!(t(10, 5).within(t(10, 5), Duration::ZERO));
        assert!(!t(10, 5).within(t(10, 6), Duration::ZERO));
        assert!(t(10, 999_999_999).within(t(10, 0), second));
        assert!(!t(11, 0).within(t(10, 0), second));
        assert!(t(9, 0).within(t(10, 999_999_999), Duration::from_secs(2)));
    }

    #[test]
    fn a_file_changed_while_read_is_told_by_length_times_or_bytes_read() {
        let t = |sec| Timestamp { sec, nsec: 0 };
        let before = Stamp { len: 10, mtime: t(1), ctime: t(1) };
        assert!(!before.changed_while_read(&before, 10));
        assert!(before.changed_while_read(&before, 9), "fewer bytes read than it holds");
        assert!(before.changed_while_read(&Stamp { len: 11, ..before }, 11), "grew");
        assert!(before.changed_while_read(&Stamp { mtime: t(2), ..before }, 10), "mtime moved");
        assert!(before.changed_while_read(&Stamp { ctime: t(2), ..before }, 10), "ctime moved");
    }
}

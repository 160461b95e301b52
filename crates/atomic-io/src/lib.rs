//! # atomic-io
//!
//! Crash-safe file replacement, an orphan sweep that never hurts a live writer, and reads with
//! hard size limits.
//!
//! A file written through [`AtomicFile`] (or [`write_atomic`]) is, at every instant and after a
//! crash at any point, either absent or the old content, or the complete new content: never
//! partial, never a 0-byte file unless the new content is empty. The new content goes to a temp
//! file in the target's own directory (so the final `rename` never crosses file systems), which is
//! synced and then renamed over the target; the directory is synced after the rename.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let dir = dir.path();
//! use std::io::Write;
//! use atomic_io::{AtomicFile, WriteOptions, write_atomic};
//!
//! let status = dir.join("status.json");
//! write_atomic(&status, br#"{"step": 1}"#)?;                  // the common case
//!
//! let mut file = AtomicFile::create(&status, &WriteOptions::default())?;
//! file.write_all(br#"{"step": 2}"#)?;                        // nothing visible at `status` yet
//! file.commit()?;                                             // now all of it, at once
//! assert_eq!(std::fs::read(&status)?, br#"{"step": 2}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## The temp-name pattern
//!
//! Every temp file this crate creates is named
//!
//! ```text
//! .<target file name>.atomic-<10 random ASCII letters and digits>.tmp
//! ```
//!
//! for example `.status.json.atomic-Xa81bQz0Pq.tmp`, beside `status.json`. When the target's name
//! is too long for the file system's 255-byte name limit, the name part is cut (at a character
//! boundary) to 232 bytes, so a temp name is never longer than 255 bytes. [`is_temp_name`] is the
//! one definition of the pattern; [`sweep()`](sweep::sweep) removes only files that match it.
//! Writing a target whose own name matches the pattern is refused, so a committed file can never be
//! mistaken for an orphan.
//!
//! ## What is guaranteed
//!
//! - **A process crash** (kill -9, panic, abort, out-of-memory kill) at any point leaves the target
//!   byte-identical to the old content or the new content, with either durability. What may be left
//!   is a temp file matching the pattern above; its writer's lock died with it, so
//!   [`sweep()`](sweep::sweep) removes it.
//! - **Power loss or a kernel crash** with [`Durability::Full`] (the default), on a local file
//!   system that honours `fsync` (ext4, xfs, btrfs; tmpfs loses everything on power loss anyway):
//!   once [`AtomicFile::commit`] has returned, the new content survives; a power loss before
//!   that leaves the old content (or no file, if there was none) or, during the commit, possibly
//!   the new one, never a mix or a partial file. The order is: write the temp, `fsync` the
//!   temp, `rename` it over the target, `fsync` the directory. Without the first `fsync`, ext4's
//!   delayed allocation can leave a 0-byte file after power loss; without the second the rename
//!   itself can be lost.
//! - **Concurrent writers** of one target each write their own temp file; the last rename wins and
//!   the target is always exactly one writer's complete content.
//! - **Sweeping is safe while writers run.** Every writer holds an exclusive `flock` on its temp
//!   file from creation until it is renamed or removed; [`sweep()`](sweep::sweep) removes a temp
//!   only while holding that lock itself. (In the instant between creating its temp and locking
//!   it, a writer could lose the temp to a sweep; it notices, since the lock then fails or the
//!   file has no name left, and starts over with a fresh temp.)
//! - **Bounded reads.** [`bounded`] never holds more than the configured maximum of a file or a line
//!   in memory, whatever the input.
//!
//! ## What is not guaranteed
//!
//! - [`Durability::OldOrNew`] skips the directory `fsync`: a power cut leaves the old or the
//!   complete new content, but may undo a commit that had returned.
//! - [`Durability::None`] skips every `fsync`: still atomic against process crashes, but after
//!   power loss the target may be the old content, the new content, or (ext4 without
//!   `auto_da_alloc`, xfs) an empty or partial file.
//! - An `fsync` that fails (`EIO`; `EINVAL` or `ENOTSUP` on a file system that cannot sync) is
//!   an error naming the path and the file system's type, and the temp is not renamed.
//!   [`sync_file_system`] trusts a batch `syncfs` only on file systems known to honour it.
//! - A file system or a drive that does not honour `fsync` (some network and FUSE file systems,
//!   `nobarrier`/`eatmydata` setups, drives with a volatile write cache that lie about flushing)
//!   voids the power-loss guarantee; nothing in user space can detect that.
//! - Network file systems: `rename` is atomic on NFS for other clients only as far as the server
//!   makes it so, and `flock` may be unsupported or emulated there. When `flock` fails, creating an
//!   [`AtomicFile`] fails with [`Error::Lock`] rather than writing without the lock the sweep relies
//!   on.
//! - With [`Durability::None`], errors that a file system reports only when the file is closed
//!   (NFS, quotas) are lost, because `File` drop discards them; with [`Durability::Full`] the
//!   explicit `fsync` reports them.
//! - Hard links: the target is replaced by a new inode, so other hard links to the old file keep the
//!   old content (as with every rename-based writer).
//! - Symlinks are resolved when the [`AtomicFile`] is created; a symlink changed between then and the
//!   commit is not noticed.
//!
//! ## Modes and owners
//!
//! A replaced file keeps its permission bits (including set-id and sticky bits) and, where the
//! process may change it, its owner and group: `fchown` failing with `EPERM` (an unprivileged
//! process replacing someone else's file) is ignored and the new file belongs to the writer. A new
//! file is created with mode `0o666` passed to `open(2)`, so the kernel applies the process umask
//! (or the directory's default ACL) exactly as for any newly created file; the umask is never read
//! or changed, so there is no race with other threads. [`WriteOptions::mode`] sets an exact mode
//! instead. The temp file never has wider permissions than the final file.
//!
//! ## Platforms
//!
//! Unix only. On Linux no-clobber writes use `renameat2(RENAME_NOREPLACE)`, falling back to
//! `link` + `unlink` where the file system does not support it; other Unix systems use the fallback
//! directly. Windows is refused at compile time with a clear message: its rename, locking and
//! directory-sync semantics differ enough that a port would need its own design and tests.
//!
//! ## Dependencies
//!
//! - `tempfile`: exclusive (`O_EXCL`) creation of an unpredictable name, with retries on collision.
//! - `fs4`: the `flock` on each temp file (the same locking `dir-lock` uses).
//! - `rustix`: `renameat2`, `linkat`, `unlinkat` and `openat` with `O_NOFOLLOW`/`O_DIRECTORY`, which
//!   std lacks, without `unsafe`.
//! - `names`: the one way a file name is shown in messages (escaped, reversibly).
//! - `serde_json` (with `serde`'s `IgnoredAny`): JSON syntax checking of each JSONL line without
//!   building a value tree.
//! - `thiserror`: the crate's [`Error`].
#![forbid(unsafe_code)]

// The workspace has one non-Unix policy: refuse at compile time, saying why (docs/ARCHITECTURE.md).
#[cfg(not(unix))]
compile_error!(
    "atomic-io supports Unix only (Linux, macOS, the BSDs): Windows rename, locking and directory sync semantics need a port of their own"
);

pub mod bounded;
mod durable;
mod error;
pub mod sweep;
mod sys;
mod writer;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

pub use durable::{FileSystem, Mount, sync_file_system};
pub use error::{Error, JsonlProblem, ReadError, Result, SweepError};
/// What [`Error::NotAFile`] found instead of a regular file (the `names` crate's, so that every
/// crate says it alike).
pub use names::FileKind;
pub use writer::{AtomicFile, Durability, Overwrite, Staged, WriteOptions, sync_dir, write_atomic};

/// What every temp name starts with.
const TEMP_PREFIX: &str = ".";
/// What separates the target's name from the random part.
const TEMP_MARK: &str = ".atomic-";
/// What every temp name ends with.
const TEMP_SUFFIX: &str = ".tmp";
/// Number of random characters (ASCII letters and digits) in a temp name.
const TEMP_RANDOM_LEN: usize = 10;
/// The longest file name most Unix file systems accept (`NAME_MAX`).
const NAME_MAX: usize = 255;
/// The longest part of the target's name kept in a temp name, so that the temp name fits NAME_MAX.
const TEMP_NAME_PART_MAX: usize =
    NAME_MAX - TEMP_PREFIX.len() - TEMP_MARK.len() - TEMP_RANDOM_LEN - TEMP_SUFFIX.len();

/// Whether `name` (a file name, not a path) follows the crate's temp-name pattern
/// `.<name>.atomic-<10 letters or digits>.tmp`.
///
/// This is the one definition of the pattern: [`sweep()`](sweep::sweep) removes nothing else.
///
/// ```
/// use std::ffi::OsStr;
/// use atomic_io::is_temp_name;
///
/// assert!(is_temp_name(OsStr::new(".status.json.atomic-Xa81bQz0Pq.tmp")));
/// assert!(!is_temp_name(OsStr::new("status.json")));
/// assert!(!is_temp_name(OsStr::new(".status.json.tmp")));
/// assert!(!is_temp_name(OsStr::new("dir/.a.atomic-Xa81bQz0Pq.tmp"))); // a path, not a name
/// ```
pub fn is_temp_name(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    let fixed = TEMP_PREFIX.len() + TEMP_MARK.len() + TEMP_RANDOM_LEN + TEMP_SUFFIX.len();
    if bytes.len() <= fixed || bytes.len() > NAME_MAX || bytes.contains(&b'/') {
        return false;
    }
    let Some(rest) = bytes.strip_prefix(TEMP_PREFIX.as_bytes()) else { return false };
    let Some(rest) = rest.strip_suffix(TEMP_SUFFIX.as_bytes()) else { return false };
    let (rest, random) = rest.split_at(rest.len() - TEMP_RANDOM_LEN);
    random.iter().all(u8::is_ascii_alphanumeric)
        && rest.len() > TEMP_MARK.len()
        && rest.ends_with(TEMP_MARK.as_bytes())
}

/// A fresh temp name for a target named `target_name`, in the pattern [`is_temp_name`] and
/// [`sweep()`](sweep::sweep) know: for a caller that makes under it what [`AtomicFile`] does not
/// write (a symlink, a hard link) and renames that over the target. It is not reserved: the
/// caller creates it exclusively and asks again when it is taken.
///
/// ```
/// use std::ffi::OsStr;
/// let name = atomic_io::temp_name(OsStr::new("game.rom"));
/// assert!(atomic_io::is_temp_name(&name));
/// assert!(name.as_encoded_bytes().starts_with(b".game.rom.atomic-"));
/// assert_ne!(name, atomic_io::temp_name(OsStr::new("game.rom")));
/// ```
pub fn temp_name(target_name: &OsStr) -> OsString {
    let mut name = temp_prefix(target_name).into_vec();
    name.extend_from_slice(&random_alnum());
    name.extend_from_slice(TEMP_SUFFIX.as_bytes());
    OsString::from_vec(name)
}

/// [`TEMP_RANDOM_LEN`] random ASCII letters and digits. The randomness is std's per-process
/// random hash keys mixed with a counter and the clock: unpredictable enough to avoid collisions,
/// which the caller retries anyway.
fn random_alnum() -> [u8; TEMP_RANDOM_LEN] {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.write_u32(std::process::id());
    let mut x = hasher.finish();
    let mut out = [0u8; TEMP_RANDOM_LEN];
    for byte in &mut out {
        *byte = ALPHABET[(x % 62) as usize];
        x /= 62;
    }
    out
}

/// The prefix given to `tempfile` for a target named `target_name`: `.<name, cut to fit>.atomic-`.
/// Names are bytes; a cut steps back over UTF-8 continuation bytes so that it never splits a
/// character of a UTF-8 name.
fn temp_prefix(target_name: &OsStr) -> OsString {
    let name = target_name.as_bytes();
    let cut = name.len().min(TEMP_NAME_PART_MAX);
    let mut end = cut;
    while end > 0 && cut - end < 3 && end < name.len() && (name[end] & 0xc0) == 0x80 {
        end -= 1;
    }
    let mut prefix = Vec::with_capacity(end + TEMP_PREFIX.len() + TEMP_MARK.len());
    prefix.extend_from_slice(TEMP_PREFIX.as_bytes());
    prefix.extend_from_slice(&name[..end]);
    prefix.extend_from_slice(TEMP_MARK.as_bytes());
    OsString::from_vec(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_name_with(target: &str, random: &str) -> OsString {
        temp_name_bytes(target.as_bytes(), random)
    }

    fn temp_name_bytes(target: &[u8], random: &str) -> OsString {
        let mut name = temp_prefix(OsStr::from_bytes(target));
        name.push(random);
        name.push(TEMP_SUFFIX);
        name
    }

    #[test]
    fn names_that_are_not_utf8_get_temp_names_too() {
        for target in [&b"caf\xe9.nes"[..], b"\xff\xfe", &[0xe9; 300]] {
            let name = temp_name_bytes(target, "Ab3dE6gH9j");
            assert!(is_temp_name(&name), "{name:?}");
            assert!(name.len() <= NAME_MAX);
        }
    }

    #[test]
    fn generated_names_match_the_pattern() {
        for target in ["a", "status.json", ".hidden", "with space", "ünïcödé", ".a.atomic-x.tmp"]
        {
            let name = temp_name_with(target, "Ab3dE6gH9j");
            assert!(is_temp_name(&name), "{name:?}");
        }
    }

    #[test]
    fn names_too_long_for_name_max_are_cut_to_fit() {
        let long = "x".repeat(255);
        let name = temp_name_with(&long, "Ab3dE6gH9j");
        assert_eq!(name.len(), NAME_MAX);
        assert!(is_temp_name(&name));
        // A cut never splits a multi-byte character.
        let wide = "é".repeat(200);
        let name = temp_name_with(&wide, "Ab3dE6gH9j");
        assert!(name.len() <= NAME_MAX);
        assert!(is_temp_name(&name));
    }

    #[test]
    fn fresh_temp_names_match_the_pattern_and_differ() {
        let long = "x".repeat(255);
        let wide = "é".repeat(200);
        for target in [&b"a"[..], b"link.txt", long.as_bytes(), wide.as_bytes(), b"caf\xe9"] {
            let name = temp_name(OsStr::from_bytes(target));
            assert!(is_temp_name(&name), "{name:?}");
            assert!(name.len() <= NAME_MAX);
        }
        assert_ne!(temp_name(OsStr::new("a")), temp_name(OsStr::new("a")));
    }

    #[test]
    fn other_names_do_not_match() {
        for name in [
            "",
            "status.json",
            ".status.json.tmp",
            "status.json.atomic-Ab3dE6gH9j.tmp", // no leading dot
            "..atomic-Ab3dE6gH9j.tmp",           // empty name part
            ".a.atomic-Ab3dE6gH9.tmp",           // 9 random characters
            ".a.atomic-Ab3dE6gH9jk.tmp",         // 11 random characters
            ".a.atomic-Ab3dE6g-9j.tmp",          // not alphanumeric
            ".a.atomic-Ab3dE6gH9j.tmp~",
            ".a.atomic-Ab3dE6gH9j",
            ".a.Atomic-Ab3dE6gH9j.tmp",
        ] {
            assert!(!is_temp_name(OsStr::new(name)), "{name:?} must not match");
        }
        assert!(!is_temp_name(OsStr::new(&format!(".{}.atomic-Ab3dE6gH9j.tmp", "x".repeat(240)))));
    }
}

//! # dir-lock
//!
//! Advisory file locks that the kernel frees when the holder dies and that a timeout never steals;
//! who holds a lock; a single-instance guard for daemons; produce an artifact exactly once.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let dir = dir.path();
//! use std::time::Duration;
//! use dir_lock::{Error, LockFile, LockOptions, Wait};
//!
//! let path = dir.join("train.lock");
//! let lock = LockFile::acquire(&path, &LockOptions::default(), &())?;
//! // Another process asking with a timeout would get, after 5 s, without disturbing us:
//! //   gave up waiting for the lock on .../train.lock after 5.0 s; it is held by pid N (cmd) since T
//! # let _ = Wait::Timeout(Duration::from_secs(5));
//! assert_eq!(dir_lock::holders(&path)?.len(), usize::from(cfg!(target_os = "linux")));
//! drop(lock);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What is guaranteed
//!
//! - **No stolen locks.** A [`LockFile`] is held until it is dropped or its process dies (the
//!   kernel then frees it at once). [`Wait::Timeout`] makes the *waiter* give up with
//!   [`Error::Timeout`], naming the holder; nothing ever breaks or deletes a lock. Timed waits poll
//!   with `try_lock` and a backoff (1 ms doubling to 50 ms), so no blocked thread is left behind;
//!   blocking waits use a blocking `flock` (EINTR retried), so the hand-off is immediate.
//! - **Locking changes nothing it did not create.** Any file may be locked (a data file, a script
//!   locking itself, a symlink to either): an existing file is only opened read-only and keeps
//!   every byte and its mtime. Missing lock files are created with mode `0o644` (less the umask),
//!   never through a symlink, and never deleted. An exclusive holder writes its pid, host, start
//!   time and command line, after it holds the lock, only into a file that holds nothing but
//!   such information (one it created, or one already in that format), never through a symlink.
//! - **Who holds it.** [`holders`] reads `/proc/locks` on Linux, matching the file's device and
//!   inode, so holders that are `flock(1)` or any other program are named too, with their command
//!   line; the toolkit's own written information adds host and start time, and names the holder
//!   alone, marked [`HolderSource::LockFile`], where `/proc/locks` cannot see it (another host of
//!   a network file system). A [`WaitProgress`] is
//!   told after about 200 ms of waiting and every 10 s after that.
//! - **Same file twice in one process** fails with [`Error::AlreadyHeldByThisProcess`] instead of
//!   deadlocking (see [`LockFile`]).
//! - **Unsupported file systems** (ENOLCK, EOPNOTSUPP, ENOSYS from `flock`, as on some NFS mounts)
//!   give [`Error::Unsupported`] naming the path and the file system; never a silent run unlocked.
//! - **Single instance.** [`InstanceGuard`] refuses a second daemon with
//!   "already running: pid N (command)"; a killed daemon never blocks the next one.
//! - **Produce once.** [`produce_once`]: one producer among many processes, the others reuse the
//!   verified result; see its docs for the steps and for why correctness does not rest on the lock.
//!
//! ## What is not guaranteed
//!
//! - Locks are advisory: a program that does not take them is not stopped.
//! - PIDs, commands and times in messages are for people: a pid may have been reused, and on
//!   file systems where `/proc/locks` does not name the holder the written information may be
//!   stale. The lock alone decides who runs.
//! - A file system that fakes `flock` (some NFS, Lustre, GPFS setups) gives no mutual exclusion;
//!   nothing in user space can detect that. [`produce_once`] stays correct there (each producer
//!   verifies and renames its own temp), at the cost of duplicate work.
//! - Waiters are not served in order of arrival (the kernel's `flock` is not fair, and timed
//!   waiters poll).
//!
//! ## Dependencies
//!
//! - `fs4`: portable `flock`/`LockFileEx` on a `File`, the same advisory lock `flock(1)` uses.
//! - `rustix`: `uname` for the host and the few calls std lacks, without `unsafe`; the file
//!   system's name comes from atomic-io's `FileSystem`, the same name its sync errors give.
//! - `atomic-io`: the temp-verify-rename that makes [`produce_once`] crash-safe.
//! - `names`: how a path is shown in messages (escaped, reversibly); `thiserror`: the error enum.
#![forbid(unsafe_code)]

// The workspace has one non-Unix policy: refuse at compile time, saying why (docs/ARCHITECTURE.md).
#[cfg(not(unix))]
compile_error!(
    "dir-lock supports Unix only (Linux, macOS, the BSDs): it relies on the semantics of flock"
);

mod error;
mod holder;
mod instance;
mod lock;
mod once;
mod sys;

pub use error::{Error, Result};
pub use holder::{Holder, HolderSource, Holders, holders};
pub use instance::InstanceGuard;
pub use lock::{GRACE, LockFile, LockKind, LockOptions, REPEAT, Wait, WaitProgress};
pub use once::{OnceOptions, OnceOutcome, produce_once, sidecar_lock_path};

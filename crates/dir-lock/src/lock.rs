//! [`LockFile`]: an advisory `flock` on a file that is never deleted, with blocking, non-blocking
//! and timed waits that never break the lock.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc;
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use fs4::TryLockError;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::holder::{self, Holder, Holders};
use crate::sys;

/// Shared (many readers) or exclusive (one writer), as `flock -s` / `flock -x`.
///
/// ```
/// assert_eq!(dir_lock::LockKind::default(), dir_lock::LockKind::Exclusive);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LockKind {
    /// Any number of shared holders, no exclusive one.
    Shared,
    /// One holder only.
    #[default]
    Exclusive,
}

/// How to wait when the lock is held by someone else.
///
/// ```
/// use std::time::Duration;
/// let w = dir_lock::Wait::Timeout(Duration::from_secs(30));
/// assert_ne!(w, dir_lock::Wait::default()); // the default blocks
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wait {
    /// Wait as long as it takes (blocking `flock`, EINTR retried).
    #[default]
    Block,
    /// Fail at once with [`Error::WouldBlock`].
    NonBlock,
    /// Wait at most this long, then fail with [`Error::Timeout`]. The holder is never disturbed.
    Timeout(Duration),
}

/// How to take a lock.
///
/// ```
/// use dir_lock::{LockKind, LockOptions, Wait};
/// let opts = LockOptions::new(LockKind::Shared, Wait::NonBlock);
/// assert_eq!(LockOptions::default(), LockOptions::new(LockKind::Exclusive, Wait::Block));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockOptions {
    /// Shared or exclusive.
    pub kind: LockKind,
    /// Blocking, non-blocking or timed.
    pub wait: Wait,
}

impl LockOptions {
    /// A lock of this kind, waited for this way; anything added later takes its default.
    pub const fn new(kind: LockKind, wait: Wait) -> LockOptions {
        LockOptions { kind, wait }
    }
}

/// Told while a lock is being waited for: once after [`GRACE`] and then every [`REPEAT`], with the
/// holders known at that moment. Implemented by `()` as a no-op. May be called from a helper
/// thread (hence `Send + Sync`).
///
/// ```
/// use std::time::Duration;
/// use std::path::Path;
/// use dir_lock::{Holder, WaitProgress};
///
/// struct Say;
/// impl WaitProgress for Say {
///     fn waiting(&self, path: &Path, holders: &[Holder], waited: Duration) {
///         let _ = (path, holders, waited); // the CLI prints "waiting for lock on PATH, held by ..."
///     }
/// }
/// ```
pub trait WaitProgress: Send + Sync {
    /// The lock on `path` has been waited for `waited` so far; `holders` may be empty.
    fn waiting(&self, _path: &Path, _holders: &[Holder], _waited: Duration) {}
}

impl WaitProgress for () {}

/// How long a waiter waits before its [`WaitProgress`] is first told.
pub const GRACE: Duration = Duration::from_millis(200);
/// How often the [`WaitProgress`] is told again after that.
pub const REPEAT: Duration = Duration::from_secs(10);
/// Polling backoff for [`Wait::Timeout`]: from 1 ms, doubling, up to this.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// The (device, inode) pairs this process holds a [`LockFile`] on, and the thread that took each.
static HELD: Mutex<Option<HashMap<(u64, u64), ThreadId>>> = Mutex::new(None);
/// Signalled whenever an entry leaves [`HELD`].
static RELEASED: Condvar = Condvar::new();

/// A held advisory lock (`flock`) on a file. Dropping it releases the lock; the file stays.
///
/// - The file is created if missing (mode `0o644`), never through a symlink, and never deleted:
///   deleting a lock file while another process waits on it would give two holders.
/// - An existing file is only read, never written: any file can be locked (a data file, a script
///   locking itself as with `flock -en "$0"`, a symlink to either) and keeps every byte and its
///   mtime. Holder information (pid, host, start time, command line) is written, by an exclusive
///   holder and after it has the lock, only into a file this crate created as a lock file or one
///   that holds nothing but holder information, never through a symlink; shared holders write
///   nothing. [`holders`](crate::holders) reports it.
/// - The kernel releases the lock when the holder exits or is killed, so a lock is never stale.
/// - Locking the same file (same device and inode, under any name) twice in one thread fails with
///   [`Error::AlreadyHeldByThisProcess`] instead of deadlocking (a `flock` belongs to the open file
///   description, so the second would wait for the first forever). Not re-entrant, by choice:
///   counting would hide which code path really holds the lock. Another *thread* of the same
///   process asking for a file this process holds waits for it as [`Wait`] says (without
///   [`WaitProgress`] calls), so threads exclude each other like processes do. Caveat: a
///   `LockFile` moved to another thread is still recorded under the thread that took it; that
///   other thread locking the same file again would wait for itself.
/// - A file system without `flock` support fails with [`Error::Unsupported`]; nothing runs unlocked.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use std::time::Duration;
/// use dir_lock::{LockFile, LockKind, LockOptions, Wait};
///
/// let path = dir.join("job.lock");
/// let lock = LockFile::acquire(&path, &LockOptions::default(), &())?;
/// // ... the exclusive work ...
/// drop(lock);
/// let opts = LockOptions::new(LockKind::Exclusive, Wait::Timeout(Duration::from_secs(5)));
/// let _again = LockFile::acquire(&path, &opts, &())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LockFile {
    file: File,
    path: PathBuf,
    key: (u64, u64),
    kind: LockKind,
    waited_for: Option<Vec<Holder>>,
    /// Read when the lock is taken: a client that lost the file system cannot `fstatfs` any more.
    fs: atomic_io::FileSystem,
}

impl LockFile {
    /// Takes the lock on `path` as `opts` says, telling `progress` while it waits (`&()` tells nothing).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use dir_lock::{Error, LockFile, LockKind, LockOptions, Wait};
    /// let path = dir.join("cache.lock");
    /// let shared = LockOptions::new(LockKind::Shared, Wait::NonBlock);
    /// let _reader = LockFile::acquire(&path, &shared, &())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(
        path: impl AsRef<Path>,
        opts: &LockOptions,
        progress: &dyn WaitProgress,
    ) -> Result<LockFile> {
        let path = path.as_ref();
        let (file, created) = open(path)?;
        let meta =
            file.metadata().map_err(|source| Error::Open { path: path.to_owned(), source })?;
        let key = (meta.dev(), meta.ino());
        let start = Instant::now();
        let waited_in_process = register(key, path, opts.wait, start)?;
        // From here on, `guard` unregisters on every early return.
        let mut guard = Registered { key: Some(key) };
        let waited_for =
            lock(&file, path, opts, progress, start)?.or_else(|| waited_in_process.then(Vec::new));
        let fs = atomic_io::FileSystem::of(&file);
        let lock = LockFile { file, path: path.to_owned(), key, kind: opts.kind, waited_for, fs };
        guard.key = None;
        let recorded = match opts.kind {
            LockKind::Exclusive => holder::record_holder(&lock.file, path, created),
            LockKind::Shared if created => holder::mark_created(&lock.file),
            LockKind::Shared => Ok(()),
        };
        recorded.map_err(|source| Error::WriteHolder { path: path.to_owned(), source })?;
        Ok(lock)
    }

    /// The lock file's path.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// let lock = dir_lock::LockFile::acquire(dir.join("a.lock"), &Default::default(), &())?;
    /// assert!(lock.path().ends_with("a.lock"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Shared or exclusive.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// let lock = dir_lock::LockFile::acquire(dir.join("a.lock"), &Default::default(), &())?;
    /// assert_eq!(lock.kind(), dir_lock::LockKind::Exclusive);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kind(&self) -> LockKind {
        self.kind
    }

    /// `Some(holders)` if the lock was busy when asked for (the holders known then, possibly
    /// none); `None` if it was taken at once.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// let lock = dir_lock::LockFile::acquire(dir.join("a.lock"), &Default::default(), &())?;
    /// assert!(lock.waited_for().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn waited_for(&self) -> Option<&[Holder]> {
        self.waited_for.as_deref()
    }

    /// Checks that the lock is still held, by asking for it again on the same descriptor (a
    /// no-op where it is held): [`Error::LockLost`] when the file system failed under it (EIO,
    /// ESTALE, ENOTCONN, ESHUTDOWN: on CephFS, NFS and the like a host evicted by the server,
    /// whose lock the server may have given to another host). Call it before publishing what
    /// was made under the lock. On a local file system a held lock cannot be lost.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// let lock = dir_lock::LockFile::acquire(dir.join("a.lock"), &Default::default(), &())?;
    /// lock.check()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self) -> Result<()> {
        let res = match self.kind {
            LockKind::Shared => fs4::FileExt::try_lock_shared(&self.file),
            LockKind::Exclusive => fs4::FileExt::try_lock(&self.file),
        };
        let source = match res {
            Ok(()) => return Ok(()),
            Err(TryLockError::Error(source)) => source,
            // Our own descriptor held it: someone released it through an inherited descriptor.
            Err(TryLockError::WouldBlock) => io::Error::from(io::ErrorKind::WouldBlock),
        };
        Err(self.lost_or(source))
    }

    /// [`Error::LockLost`] if the lock check fails now, or if `err` or one of its causes is an
    /// I/O error saying the file system failed (an output under the lock counts as the lock);
    /// `None` when `err` is an ordinary failure.
    pub(crate) fn lost(&self, err: &(dyn std::error::Error + 'static)) -> Option<Error> {
        if let Err(lost) = self.check() {
            return Some(lost);
        }
        let mut cause = Some(err);
        while let Some(e) = cause {
            let code = e.downcast_ref::<io::Error>().filter(|e| sys::is_lost(e));
            if let Some(code) = code.and_then(io::Error::raw_os_error) {
                return Some(self.lost_or(io::Error::from_raw_os_error(code)));
            }
            cause = e.source();
        }
        None
    }

    fn lost_or(&self, source: io::Error) -> Error {
        if sys::is_lost(&source) {
            // The mount names a FUSE file system's kind (`fuse.ceph-fuse`) and where it is.
            let fs_type = match atomic_io::Mount::of_device(self.key.0) {
                Some(m) => format!("{} at {}", m.fs_type, names::shown(&m.point)),
                None => self.fs.name(),
            };
            Error::LockLost { path: self.path.clone(), fs_type, source }
        } else {
            Error::Lock { path: self.path.clone(), source }
        }
    }

    /// Releases the lock now (dropping does the same, ignoring errors).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// let lock = dir_lock::LockFile::acquire(dir.join("a.lock"), &Default::default(), &())?;
    /// lock.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(self) -> Result<()> {
        fs4::FileExt::unlock(&self.file)
            .map_err(|source| Error::Lock { path: self.path.clone(), source })
        // Drop closes the file and unregisters.
    }
}

/// The locked descriptor, e.g. for handing the lock to a child process as `flock(1)` does (clear
/// `FD_CLOEXEC` on it; the lock then lasts while any process has the descriptor open).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use std::os::fd::AsFd;
/// let lock = dir_lock::LockFile::acquire(dir.join("a.lock"), &Default::default(), &())?;
/// let _fd = lock.as_fd();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl std::os::fd::AsFd for LockFile {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Closing the descriptor releases the flock; unregister so the path may be locked again.
        unregister(self.key);
    }
}

/// Opens the lock file without changing it: `Ok((file, true))` if this call created it (then the
/// descriptor is writable and nobody else's data can be in it), `Ok((file, false))` for a file that
/// already existed, opened read-only (enough for `flock`) and following a symlink as `flock(1)`
/// does. Creation never goes through a symlink (`O_EXCL`), so a dangling symlink is refused.
/// Non-blocking, so a FIFO at the path cannot hang the open.
fn open(path: &Path) -> Result<(File, bool)> {
    use rustix::fs::{Mode, OFlags};
    let err = |e: rustix::io::Errno| Error::Open { path: path.to_owned(), source: e.into() };
    let common = OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let create = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | common;
    // A file deleted between the two opens is created on the next round; a few rounds are plenty.
    for _ in 0..8 {
        match rustix::fs::open(path, create, Mode::from_raw_mode(0o644)) {
            Ok(fd) => return Ok((File::from(fd), true)),
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(err(e)),
        }
        match rustix::fs::open(path, OFlags::RDONLY | common, Mode::empty()) {
            Ok(fd) => return Ok((File::from(fd), false)),
            Err(rustix::io::Errno::NOENT) if path.is_symlink() => {
                return Err(Error::DanglingSymlink { path: path.to_owned() });
            }
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(rustix::io::Errno::NOENT))
}

/// Unregisters a key on early return from `acquire`.
struct Registered {
    key: Option<(u64, u64)>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            unregister(key);
        }
    }
}

/// Claims `key` for the calling thread. Another thread of this process holding it is waited for
/// as `wait` says (the kernel would not make us wait: both descriptors are ours); the same thread
/// holding it is [`Error::AlreadyHeldByThisProcess`].
fn register(key: (u64, u64), path: &Path, wait: Wait, start: Instant) -> Result<bool> {
    let mut waited = false;
    let me = std::thread::current().id();
    // A poisoned registry is still a valid map (insert/remove cannot half-happen).
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let map = held.get_or_insert_with(HashMap::new);
        match map.get(&key) {
            None => {
                map.insert(key, me);
                return Ok(waited);
            }
            Some(&owner) if owner == me => {
                return Err(Error::AlreadyHeldByThisProcess { path: path.to_owned() });
            }
            Some(_) => {}
        }
        waited = true;
        let busy = || Holders(holder::busy_holders(path));
        held = match wait {
            Wait::NonBlock => {
                return Err(Error::WouldBlock { path: path.to_owned(), holders: busy() });
            }
            Wait::Block => RELEASED.wait(held).unwrap_or_else(PoisonError::into_inner),
            Wait::Timeout(limit) => {
                let waited = start.elapsed();
                if waited >= limit {
                    drop(held);
                    return Err(Error::Timeout { path: path.to_owned(), waited, holders: busy() });
                }
                RELEASED
                    .wait_timeout(held, limit - waited)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
    }
}

fn unregister(key: (u64, u64)) {
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(map) = held.as_mut() {
        map.remove(&key);
    }
    RELEASED.notify_all();
}

/// Takes the flock; returns the holders seen if it had to wait.
fn lock(
    file: &File,
    path: &Path,
    opts: &LockOptions,
    progress: &dyn WaitProgress,
    start: Instant,
) -> Result<Option<Vec<Holder>>> {
    if try_lock(file, path, opts.kind)? {
        return Ok(None);
    }
    let seen = holder::busy_holders(path);
    match opts.wait {
        Wait::NonBlock => Err(Error::WouldBlock { path: path.to_owned(), holders: Holders(seen) }),
        Wait::Timeout(limit) => {
            poll(file, path, opts.kind, limit, progress, start).map(|()| Some(seen))
        }
        Wait::Block => block(file, path, opts.kind, progress).map(|()| Some(seen)),
    }
}

/// One non-blocking attempt: `Ok(true)` taken, `Ok(false)` held by someone else.
fn try_lock(file: &File, path: &Path, kind: LockKind) -> Result<bool> {
    // Through fs4's trait explicitly: std's `File` has inherent lock methods of the same names.
    let res = match kind {
        LockKind::Shared => fs4::FileExt::try_lock_shared(file),
        LockKind::Exclusive => fs4::FileExt::try_lock(file),
    };
    match res {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(TryLockError::Error(source)) => Err(lock_error(file, path, source)),
    }
}

/// Polls with backoff until taken or `limit` has passed: no thread is ever left blocked.
fn poll(
    file: &File,
    path: &Path,
    kind: LockKind,
    limit: Duration,
    progress: &dyn WaitProgress,
    start: Instant,
) -> Result<()> {
    let mut backoff = Duration::from_millis(1);
    let mut next_report = GRACE;
    loop {
        let waited = start.elapsed();
        if waited >= limit {
            let holders = Holders(holder::busy_holders(path));
            return Err(Error::Timeout { path: path.to_owned(), waited, holders });
        }
        if waited >= next_report {
            progress.waiting(path, &holder::busy_holders(path), waited);
            next_report = waited + REPEAT;
        }
        std::thread::sleep(
            backoff
                .min(limit - waited)
                .min(next_report.saturating_sub(waited))
                .max(Duration::from_millis(1)),
        );
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if try_lock(file, path, kind)? {
            return Ok(());
        }
    }
}

/// A blocking `flock` (EINTR retried), so the hand-off is immediate; a helper thread tells the
/// observer meanwhile and ends as soon as the lock is taken (or failed).
fn block(file: &File, path: &Path, kind: LockKind, progress: &dyn WaitProgress) -> Result<()> {
    let (done, stop) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let start = Instant::now();
            let mut wait = GRACE;
            while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(wait) {
                progress.waiting(path, &holder::busy_holders(path), start.elapsed());
                wait = REPEAT;
            }
        });
        let res = loop {
            let res = match kind {
                LockKind::Shared => fs4::FileExt::lock_shared(file),
                LockKind::Exclusive => fs4::FileExt::lock(file),
            };
            match res {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => break Err(lock_error(file, path, source)),
                Ok(()) => break Ok(()),
            }
        };
        drop(done); // ends the observer thread; the scope joins it
        res
    })
}

fn lock_error(file: &File, path: &Path, source: io::Error) -> Error {
    if sys::is_unsupported(&source) {
        Error::Unsupported { path: path.to_owned(), fs_type: sys::fs_type_name(file), source }
    } else {
        Error::Lock { path: path.to_owned(), source }
    }
}

//! The parallel walk: every entry under a root, listed by several threads at once, no symlink
//! followed. [`crate::list_tree`] builds on it, and so does snapshot-verify's walk.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};

use crate::{Error, Result, reading_threads};
use crate::{FileKind, Stamp};

/// How much [`walk_tree`] learns about the regular files it finds.
///
/// ```
/// assert_ne!(checksum::Status::Lstat, checksum::Status::Kind);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// An `lstat` of every regular file ([`WalkEntry::stamp`] is set): for callers that need the
    /// length or times.
    Lstat,
    /// The type from the directory entry only (`lstat` only where the file system gives no type):
    /// for callers that open each file and take its status on the descriptor anyway.
    Kind,
}

/// One entry found by [`walk_tree`].
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("a"), b"xy").unwrap();
/// let walk = checksum::walk_tree(dir.path(), checksum::Status::Lstat, None).unwrap();
/// let entry = &walk.entries[0];
/// assert_eq!((entry.kind, entry.stamp.map(|s| s.len)), (None, Some(2)));
/// ```
#[derive(Debug)]
pub struct WalkEntry {
    /// Path relative to the root.
    pub rel: PathBuf,
    /// `None` for a regular file, otherwise what it is (directories are descended into, symlinks
    /// never followed).
    pub kind: Option<FileKind>,
    /// What the entry's `lstat` said of its length and times: for regular files with
    /// [`Status::Lstat`] and for FIFOs, sockets and devices (their kind needs the `lstat`);
    /// `None` for directories and symlinks. A [`Stamp`], not the whole `Metadata`: a walk holds
    /// one entry per file of the tree, and a `Metadata` is 176 bytes (a `Stamp` 40), taken or not.
    pub stamp: Option<Stamp>,
}

/// Everything [`walk_tree`] found, in no particular order.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let walk = checksum::walk_tree(dir.path(), checksum::Status::Kind, None).unwrap();
/// assert!(walk.entries.is_empty() && walk.errors.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Walk {
    /// Every entry below the root, directories included.
    pub entries: Vec<WalkEntry>,
    /// Folders that could not be listed and entries that could not be examined
    /// ([`Error::Walk`], naming the full path); the rest of the walk went on.
    pub errors: Vec<Error>,
}

/// Lists every entry below the directory `root` without following symlinks, on
/// [`reading_threads`]`(threads)` threads sharing a queue of folders: on a cold cache each folder
/// read and each `lstat` waits for the device, and one thread would wait for them one at a time.
///
/// An error listing `root` itself is returned; errors below it are collected in
/// [`Walk::errors`].
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::create_dir(dir.path().join("d")).unwrap();
/// std::os::unix::fs::symlink("/", dir.path().join("d/up")).unwrap();
/// let walk = checksum::walk_tree(dir.path(), checksum::Status::Kind, Some(2)).unwrap();
/// let mut kinds: Vec<_> = walk.entries.iter().map(|e| (e.rel.clone(), e.kind)).collect();
/// kinds.sort_by(|a, b| a.0.cmp(&b.0));
/// use checksum::FileKind::{Directory, Symlink};
/// assert_eq!(kinds, [("d".into(), Some(Directory)), ("d/up".into(), Some(Symlink))]);
/// ```
pub fn walk_tree(root: impl AsRef<Path>, status: Status, threads: Option<usize>) -> Result<Walk> {
    let root = root.as_ref();
    // The root first, on this thread: its failure is the caller's error, not a collected one.
    let mut first = Walk::default();
    let dirs = list_dir(root, Path::new(""), status, &mut first)
        .map_err(|source| Error::Walk { path: root.into(), source })?;
    if dirs.is_empty() {
        // A folder of files only (how `hash DIR...` often sees each of its arguments): no thread
        // would find work, and starting them cost more than the listing (200 such folders: 1,600
        // threads, a warm `hash` 3.9x slower than of their parent).
        return Ok(first);
    }
    let work = Mutex::new(Work { dirs, busy: 0 });
    let more = Condvar::new();
    let threads = reading_threads(threads);
    let parts: Vec<Walk> = std::thread::scope(|scope| {
        let workers: Vec<_> =
            (0..threads).map(|_| scope.spawn(|| list_dirs(root, status, &work, &more))).collect();
        // A worker that panicked lost its part: say so rather than return a short walk.
        workers
            .into_iter()
            .map(|worker| {
                worker.join().unwrap_or_else(|_| Walk {
                    errors: vec![Error::Walk {
                        path: root.into(),
                        source: std::io::Error::other("a listing thread panicked"),
                    }],
                    ..Default::default()
                })
            })
            .collect()
    });
    // Room for all at once: growing by doubling would hold the old and the new buffer together.
    first.entries.reserve_exact(parts.iter().map(|part| part.entries.len()).sum());
    for part in parts {
        first.entries.extend(part.entries);
        first.errors.extend(part.errors);
    }
    Ok(first)
}

/// Folders still to list, and how many are being listed (the walk ends when both are zero).
struct Work {
    dirs: Vec<PathBuf>,
    busy: usize,
}

/// One listing thread: takes folders (relative to `root`) off `work` until none are left and no
/// other thread can add more; returns what it found.
fn list_dirs(root: &Path, status: Status, work: &Mutex<Work>, more: &Condvar) -> Walk {
    let mut found = Walk::default();
    loop {
        let next = {
            let mut w = work.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(dir) = w.dirs.pop() {
                    w.busy += 1;
                    break Some(dir);
                }
                if w.busy == 0 {
                    break None;
                }
                w = more.wait(w).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let Some(rel) = next else {
            more.notify_all();
            return found;
        };
        let mut taken = Taken { work, more, subdirs: Vec::new() };
        taken.subdirs = list_dir(root, &rel, status, &mut found).unwrap_or_else(|source| {
            found.errors.push(Error::Walk { path: root.join(&rel), source });
            Vec::new()
        });
    }
}

/// A folder taken off the queue: dropped when it has been listed, or by a panic while it was
/// (std panics in debug builds when closing a directory fails), it hands back the subfolders
/// found and wakes the other threads, which would otherwise wait for it forever.
struct Taken<'a> {
    work: &'a Mutex<Work>,
    more: &'a Condvar,
    subdirs: Vec<PathBuf>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        let mut w = self.work.lock().unwrap_or_else(PoisonError::into_inner);
        w.dirs.append(&mut self.subdirs);
        w.busy -= 1;
        self.more.notify_all();
    }
}

/// Lists the folder `rel` under `root` into `found`; returns its subfolders, or the error that
/// kept it from being read at all.
fn list_dir(
    root: &Path,
    rel: &Path,
    status: Status,
    found: &mut Walk,
) -> std::io::Result<Vec<PathBuf>> {
    let dir = root.join(rel);
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(source) => {
                found.errors.push(Error::Walk { path: dir.clone(), source });
                continue;
            }
        };
        let rel = rel.join(entry.file_name());
        // The type from the directory entry (`lstat` only where the file system gives none).
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(source) => {
                found.errors.push(Error::Walk { path: entry.path(), source });
                continue;
            }
        };
        let (kind, stat) = if file_type.is_dir() {
            subdirs.push(rel.clone());
            (Some(FileKind::Directory), false)
        } else if file_type.is_symlink() {
            (Some(FileKind::Symlink), false)
        } else if file_type.is_file() {
            (None, status == Status::Lstat)
        } else {
            (Some(FileKind::Other), true)
        };
        let meta = if stat {
            // `DirEntry::metadata` does not follow symlinks.
            match entry.metadata() {
                Ok(meta) => Some(meta),
                Err(source) => {
                    found.errors.push(Error::Walk { path: entry.path(), source });
                    continue;
                }
            }
        } else {
            None
        };
        // The status, where taken, names the kind (a FIFO, or a file replaced since the listing).
        let kind = meta.as_ref().map_or(kind, FileKind::of);
        found.entries.push(WalkEntry { rel, kind, stamp: meta.as_ref().map(Stamp::of) });
    }
    Ok(subdirs)
}

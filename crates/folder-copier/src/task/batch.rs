//! Batching: the temps of a batch are made durable together (one `syncfs` where it is trusted,
//! else an `fsync` each), read back from the media when asked, and only then renamed into place;
//! the directory is synced once, by its last slice (`DirTask::done`).

use std::path::Path;

use atomic_io::Staged;
use checksum::Algo;

use super::file::Written;
use super::tally::Outcome;
use super::{DirTask, Job, Shared, entry_len};
use crate::sys;
use crate::{FileError, ReadBack, Result};

/// A batch is renamed once its files hold this many bytes, bounding the data waiting to be synced.
pub(crate) const BATCH_BYTES: u64 = 64 * 1024 * 1024;
/// Files per batch at most: each batch costs one `syncfs` (a journal commit), so fewer, larger
/// batches cost less, but every batched temp holds descriptors until its rename.
const BATCH_FILES_MAX: usize = 512;
/// From this many files a batch is synced with one `syncfs` rather than one `fsync` per file.
const SYNCFS_MIN_FILES: usize = 4;

impl Shared<'_> {
    /// Files per batch for a pool of `jobs` threads, within the descriptor budget: each batched
    /// temp holds two descriptors (itself and its directory), and all the threads' batches
    /// together may hold half of the process's soft limit on open files, leaving the rest for
    /// the sources being read and for the caller. More threads mean smaller batches (more
    /// `syncfs` calls) only where that limit is low.
    pub(crate) fn batch_files_for(jobs: usize) -> usize {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let budget = usize::try_from(limit.unwrap_or(u64::MAX) / 2).unwrap_or(usize::MAX);
        (budget / (2 * jobs.max(1))).clamp(1, BATCH_FILES_MAX)
    }
}

impl<'p> DirTask<'_, 'p> {
    /// Makes every temp of the batch durable before any of them is renamed: without this, a
    /// power loss could keep a rename whose data never reached the disk (the 0-byte files of the
    /// ROM story). On a file system known to honour it ([`atomic_io::sync_file_system`]: ext4,
    /// xfs, btrfs, ...) one `syncfs` costs one journal commit for the whole batch instead of one
    /// `fsync` (and commit) per file, and reports write-back errors (Linux 5.8 and later).
    /// Everywhere else (FUSE, where `syncfs` does nothing at all, network file systems, unknown
    /// ones), after a failed `syncfs`, and for a batch of fewer than [`SYNCFS_MIN_FILES`] files,
    /// each temp is `fsync`ed on its own, from this worker thread, so a failing file is the one
    /// named; a temp whose `fsync` failed is removed, never renamed.
    fn sync_batch(&mut self, staged: Vec<(Job<'p>, Staged)>) -> Vec<(Job<'p>, Staged)> {
        let Some((_, first)) = staged.first() else { return staged };
        // A batch of a few (large) files: `fsync` each, which waits for their data only, not for
        // whatever else the file system has to write back (other threads' batches included).
        if staged.len() >= SYNCFS_MIN_FILES
            && matches!(atomic_io::sync_file_system(first.as_file()), Ok(true))
        {
            return staged;
        }
        let mut synced = Vec::with_capacity(staged.len());
        for (job, s) in staged {
            // This temp's data and size, before its rename can make it visible.
            match s.as_file().sync_all() {
                Ok(()) => synced.push((job, s)),
                Err(source) => {
                    let len = entry_len(job.entry);
                    let err = FileError::Sync {
                        path: s.temp_path().to_owned(),
                        fs: atomic_io::FileSystem::of(s.as_file()),
                        source,
                    };
                    // Dropping `s` removes the temp.
                    self.tally.record(&job.rel, len, Outcome::Failed(job.src, err));
                }
            }
        }
        synced
    }

    /// Reads each synced temp of the batch back through a fresh descriptor with its cached pages
    /// dropped, and compares its hash with the source's; a file that differs is failed (its temp
    /// removed), never renamed.
    fn read_back_from_media(&mut self, staged: Vec<(Job<'p>, Staged)>) -> Vec<(Job<'p>, Staged)> {
        let mut good = Vec::with_capacity(staged.len());
        for (job, s) in staged {
            let temp = s.temp_path().to_owned();
            let hashed = sys::open_uncached(&temp)
                .and_then(|file| checksum::hash_reader(Algo::Xxh128, &file));
            let error = match hashed {
                Ok((actual, _)) if Some(actual) == job.digest => {
                    good.push((job, s));
                    continue;
                }
                Ok((actual, _)) => {
                    let expected = Box::new(job.digest.unwrap_or(actual));
                    FileError::MediaMismatch { temp, expected, actual: Box::new(actual) }
                }
                Err(source) => FileError::ReadBack { temp, source },
            };
            let len = entry_len(job.entry);
            // Dropping `s` removes the temp.
            self.tally.record(&job.rel, len, Outcome::Failed(job.src, error));
        }
        good
    }

    /// Syncs and verifies a batch of written temps, then renames them. `false` when cancelled
    /// (the batch's temps are removed, none renamed; the files not yet failed were not
    /// attempted).
    pub(super) fn flush(&mut self, batch: Vec<(Job<'p>, Written)>) -> bool {
        let mut staged: Vec<(Job<'p>, Staged)> = Vec::with_capacity(batch.len());
        let mut cancelled = false;
        for (mut job, written) in batch {
            if cancelled || self.cancelled() {
                cancelled = true;
                continue; // dropping `written` removes its temp
            }
            let attempt = written.attempt;
            job.digest = Some(written.digest);
            let outcome = match self.finish(&job, written) {
                Ok(s) => Ok(Some(s)),
                Err(err) => match self.back_off(&job, err, attempt) {
                    Ok(next) => self.copy_fully(&job, next),
                    Err(err) => Err(err),
                },
            };
            match outcome {
                Ok(Some((s, len))) => {
                    job.len = len;
                    staged.push((job, s));
                }
                Ok(None) => cancelled = true,
                Err(err) => {
                    let len = entry_len(job.entry);
                    self.tally.record(&job.rel, len, Outcome::Failed(job.src, err));
                }
            }
        }
        if cancelled {
            return false; // dropping `staged` removes the temps
        }
        let media = self.opts().verify && self.opts().read_back == ReadBack::Media;
        if self.opts().durability.syncs_data() || media {
            staged = self.sync_batch(staged);
        }
        if media {
            staged = self.read_back_from_media(staged);
        }
        for (job, s) in staged {
            let len = job.len;
            let outcome = match s.rename() {
                Ok(()) => {
                    self.changed = true;
                    Outcome::File
                }
                Err(err) => Outcome::Failed(job.src, err.into()),
            };
            self.tally.record(&job.rel, len, outcome);
        }
        true
    }
}

/// `fsync`s a destination directory; a failure names the file system (one that cannot sync
/// fails with `EINVAL` or `ENOTSUP`).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), FileError> {
    let file = std::fs::File::open(dir).map_err(|source| FileError::Destination {
        action: "open directory",
        path: dir.to_owned(),
        source,
    })?;
    // Makes the directory's entries (renames, new names) durable; the caller's durability asks so.
    file.sync_all().map_err(|source| FileError::Sync {
        path: dir.to_owned(),
        fs: atomic_io::FileSystem::of(&file),
        source,
    })
}

//! One source directory's task: its files copied in name order, in batches that are written, then
//! synced and verified, then renamed, then the directory is synced once. A directory much larger
//! than a task should be (thousands of files, or hundreds of MiB) is cut into a few slices that
//! run as separate tasks; the last slice to finish syncs the directory and reports it done.

use std::fs::{FileTimes, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use atomic_io::{AtomicFile, Durability, Overwrite, Staged, WriteOptions};
use checksum::{Algo, Digest, FileKind, Hasher};

use crate::plan::{DirPlan, EntryKind, EntryPlan};
use crate::sys::{self, Mtime};
use crate::{
    CopyOptions, CopyProgress, CopyReport, DirStats, Error, Failure, FileOutcome, ReadBack, Result,
    Warning,
};

/// Bytes per `read`/`write`: large enough that syscalls cost little, small enough to stay in L2
/// cache while the same bytes are hashed and written (checksum's measured buffer size).
pub(crate) const BUF_SIZE: usize = checksum::BUF_SIZE;
/// A batch is renamed once its files hold this many bytes, bounding the data waiting to be synced.
pub(crate) const BATCH_BYTES: u64 = 64 * 1024 * 1024;
/// Open descriptors a whole copy may hold for batched temps (each temp holds two: itself and its
/// directory), shared among the threads; well under the common soft limit of 1024.
const FD_BUDGET: usize = 400;
/// From this many files a batch is synced with one `syncfs` rather than one `fsync` per file.
const SYNCFS_MIN_FILES: usize = 4;
/// Sleep slice while backing off, so a cancel is seen quickly.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// What every task shares.
pub(crate) struct Shared<'a> {
    pub(crate) opts: &'a CopyOptions,
    pub(crate) progress: &'a dyn CopyProgress,
    pub(crate) src: &'a Path,
    pub(crate) dst: &'a Path,
    /// Files per batch.
    pub(crate) batch_files: usize,
    /// Mtimes closer than this are equal (the plan's window: DST's mtime step, or asked for).
    pub(crate) modify_window: Duration,
    /// Whether DST keeps modes (a mode-only change is not fixed in place where it does not).
    pub(crate) keeps_modes: bool,
    /// Whether DST keeps holes: sparse files are then written sparse.
    pub(crate) keeps_holes: bool,
    /// Cleared by the first extended attribute DST does not take (said once, then not tried).
    pub(crate) xattrs_ok: AtomicBool,
    /// Whether owners are still being kept; cleared (and said once) at the first that cannot be.
    pub(crate) owners_ok: AtomicBool,
}

impl Shared<'_> {
    pub(crate) fn batch_files_for(jobs: usize) -> usize {
        (FD_BUDGET / (2 * jobs.max(1))).clamp(1, 128)
    }
}

/// One file to copy.
struct Job<'p> {
    rel: PathBuf,
    src: PathBuf,
    dst: PathBuf,
    entry: &'p EntryPlan,
    /// XXH3-128 of the bytes read from the source, once written (for the read-back from media).
    digest: Option<Digest>,
}

/// A temp file written and hashed, not yet synced, verified or renamed.
struct Written {
    temp: AtomicFile,
    digest: Digest,
    len: u64,
    /// The attempt (1-based) that wrote it.
    attempt: u32,
}

/// A directory gets a slice per this many entries, or per this many bytes (whichever gives more),
/// up to the number of threads: a 5,000-file folder or a folder of a few huge files no longer
/// runs on one thread while the others idle.
const SLICE_ENTRIES: usize = 128;
const SLICE_BYTES: u64 = 32 * 1024 * 1024;

/// Cuts a directory's entries into contiguous slices of about equal work (bytes, plus a per-entry
/// cost worth 64 KiB), at most `jobs` of them; one slice for a directory of ordinary size.
pub(crate) fn slices(dir: &DirPlan, jobs: usize) -> Vec<std::ops::Range<usize>> {
    let n = dir.entries.len();
    let wanted = (n / SLICE_ENTRIES).max((dir.bytes / SLICE_BYTES) as usize);
    let count = wanted.min(jobs).min(n).max(1);
    if count == 1 {
        return std::iter::once(0..n).collect();
    }
    const PER_ENTRY: u64 = 64 * 1024;
    let work: Vec<u64> = dir.entries.iter().map(|e| entry_len(e) + PER_ENTRY).collect();
    let total: u64 = work.iter().sum();
    let mut out = Vec::with_capacity(count);
    let (mut start, mut acc) = (0, 0u64);
    for (i, w) in work.iter().enumerate() {
        acc += w;
        let cut = total * (out.len() as u64 + 1) / count as u64;
        if acc >= cut && out.len() + 1 < count && i + 1 < n {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    out.push(start..n);
    out
}

/// What the slices of one directory share: the last one to finish syncs the directory (if any
/// slice changed it) and reports the directory done with the merged counts.
#[derive(Default)]
pub(crate) struct DirJoin {
    remaining: AtomicUsize,
    changed: AtomicBool,
    stats: Mutex<DirStats>,
}

impl DirJoin {
    pub(crate) fn new(slices: usize) -> Self {
        DirJoin { remaining: AtomicUsize::new(slices), ..DirJoin::default() }
    }
}

/// The result of one directory's task.
pub(crate) struct DirResult {
    pub(crate) report: CopyReport,
    /// Whether the task ran to its end (not cut short by a cancel).
    pub(crate) completed: bool,
}

pub(crate) struct DirTask<'s, 'p> {
    shared: &'s Shared<'s>,
    dir: &'p DirPlan,
    /// This task's entries: all of the directory's, or one slice of them.
    entries: &'p [EntryPlan],
    /// Whether this is the directory's first slice (it removes stale temp links).
    first: bool,
    join: &'s DirJoin,
    dst_dir: PathBuf,
    /// Whether new names appeared in the destination directory (to sync it once at the end).
    changed: bool,
    report: CopyReport,
    stats: DirStats,
    buf: Vec<u8>,
}

impl<'s, 'p> DirTask<'s, 'p> {
    /// A task for `dir.entries[range]`; `join` is shared by all the directory's slices.
    pub(crate) fn new(
        shared: &'s Shared<'s>,
        dir: &'p DirPlan,
        range: std::ops::Range<usize>,
        join: &'s DirJoin,
        subdirs_created: bool,
    ) -> Self {
        DirTask {
            shared,
            dir,
            first: range.start == 0,
            entries: &dir.entries[range],
            join,
            dst_dir: shared.dst.join(&dir.rel),
            changed: subdirs_created,
            report: CopyReport::default(),
            stats: DirStats::default(),
            buf: Vec::new(),
        }
    }

    fn opts(&self) -> &CopyOptions {
        self.shared.opts
    }

    fn cancelled(&self) -> bool {
        self.shared.opts.cancelled()
    }

    /// Every entry of a directory whose destination could not be made: failed, by path.
    pub(crate) fn fail_all(mut self, dst_dir: &Path) -> DirResult {
        for entry in self.entries {
            let rel = self.dir.rel.join(&entry.name);
            let path = self.shared.src.join(&rel);
            let error = Error::ParentFailed { path: path.clone(), dir: dst_dir.to_owned() };
            self.fail(&rel, path, error, entry_len(entry));
        }
        self.done(true)
    }

    /// A directory not even created because the copy was cancelled: nothing attempted.
    pub(crate) fn skip_all(mut self) -> DirResult {
        self.report.not_attempted += self.entries.len() as u64;
        self.done(false)
    }

    pub(crate) fn run(mut self) -> DirResult {
        if self.first {
            self.remove_stale_links();
        }
        let mut batch: Vec<(Job<'p>, Written)> = Vec::new();
        let mut batch_bytes = 0u64;
        let mut cut_short = false;
        for (i, entry) in self.entries.iter().enumerate() {
            if self.cancelled() {
                self.report.not_attempted += (self.entries.len() - i) as u64;
                cut_short = true;
                break;
            }
            let rel = self.dir.rel.join(&entry.name);
            let src = self.shared.src.join(&rel);
            match &entry.kind {
                // Linked once every task is done (`execute::link_hard_links`).
                EntryKind::HardLink { .. } => {}
                EntryKind::Symlink { target, mtime } => {
                    let dst = self.dst_dir.join(&entry.name);
                    match self.copy_link(&dst, &entry.name, target, *mtime) {
                        Ok(true) => {
                            self.report.links += 1;
                            self.stats.copied += 1;
                            self.changed = true;
                            self.shared.progress.file_done(&rel, 0, FileOutcome::Copied);
                        }
                        Ok(false) => self.skipped(&rel, 0),
                        Err(err) => self.fail(&rel, src, err, 0),
                    }
                }
                EntryKind::File { .. } => {
                    let dst = self.dst_dir.join(&entry.name);
                    let job = Job { rel, src, dst, entry, digest: None };
                    match self.prepare(&job) {
                        Ok(None) => {
                            cut_short = true;
                            self.report.not_attempted += (self.entries.len() - i) as u64;
                            break;
                        }
                        Ok(Some(Prepared::Skip(len))) => self.skipped(&job.rel, len),
                        Ok(Some(Prepared::Written(written))) => {
                            batch_bytes += written.len;
                            batch.push((job, written));
                            if batch.len() >= self.shared.batch_files || batch_bytes >= BATCH_BYTES
                            {
                                batch_bytes = 0;
                                if !self.flush(std::mem::take(&mut batch)) {
                                    cut_short = true;
                                    self.report.not_attempted +=
                                        (self.entries.len() - i - 1) as u64;
                                    break;
                                }
                            }
                        }
                        Err(err) => {
                            let len = entry_len(job.entry);
                            self.fail(&job.rel, job.src, err, len);
                        }
                    }
                }
            }
        }
        if !batch.is_empty() && !self.flush(batch) {
            cut_short = true;
        }
        self.done(!cut_short)
    }

    /// Ends this slice. The last slice of the directory to end syncs it, with durability full,
    /// if any slice changed it: one directory fsync makes every rename of every slice (and the
    /// names of subdirectories created in it) durable, instead of one per file. It also reports
    /// the directory done, with the counts of all its slices.
    fn done(mut self, completed: bool) -> DirResult {
        if self.changed {
            self.join.changed.store(true, Ordering::Relaxed);
        }
        {
            let mut merged = self.join.stats.lock().unwrap_or_else(|e| e.into_inner());
            merged.copied += self.stats.copied;
            merged.skipped += self.stats.skipped;
            merged.failed += self.stats.failed;
            merged.bytes += self.stats.bytes;
        }
        // AcqRel: the last slice sees every other slice's renames and `changed` before it syncs.
        let last = self.join.remaining.fetch_sub(1, Ordering::AcqRel) == 1;
        if last {
            let changed = self.join.changed.load(Ordering::Relaxed);
            if changed
                && self.opts().durability.syncs_dir()
                && let Err(error) = sync_dir(&self.dst_dir)
            {
                self.report
                    .failed
                    .push(Failure { path: self.shared.src.join(&self.dir.rel), error });
            }
            let merged = *self.join.stats.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.progress.dir_done(&self.dir.rel, &merged);
        }
        DirResult { report: self.report, completed }
    }

    fn skipped(&mut self, rel: &Path, len: u64) {
        self.report.skipped += 1;
        self.report.skipped_bytes += len;
        self.stats.skipped += 1;
        self.shared.progress.file_done(rel, len, FileOutcome::Skipped);
    }

    fn fail(&mut self, rel: &Path, path: PathBuf, error: Error, len: u64) {
        self.report.failed.push(Failure { path, error });
        self.stats.failed += 1;
        self.shared.progress.file_done(rel, len, FileOutcome::Failed);
    }

    /// Removes temp symlinks a killed copy left in this destination directory.
    fn remove_stale_links(&mut self) {
        for name in &self.dir.stale_links {
            let path = self.dst_dir.join(name);
            let still_a_link =
                std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            if still_a_link && std::fs::remove_file(&path).is_ok() {
                let warning = Warning::RemovedTemp { path };
                self.shared.progress.warning(&warning);
                self.report.warnings.push(warning);
                self.changed = true;
            }
        }
    }

    /// Decides whether the file is skipped, and if not writes its temp (with retries).
    /// `Ok(None)`: cancelled.
    fn prepare(&mut self, job: &Job<'_>) -> Result<Option<Prepared>> {
        let src_meta = std::fs::symlink_metadata(&job.src)
            .map_err(|source| Error::Open { path: job.src.clone(), source })?;
        if let Some(kind) = FileKind::of(&src_meta) {
            return Err(Error::NotRegular { path: job.src.clone(), kind });
        }
        if self.up_to_date(job, &src_meta)? {
            return Ok(Some(Prepared::Skip(src_meta.len())));
        }
        Ok(self.write_with_retries(job, 1)?.map(Prepared::Written))
    }

    /// Whether the destination already holds this file (same size and mtime, or with `checksum`
    /// the same content). Anything in the way that is not a regular file or a directory (a planted
    /// symlink, a FIFO) is removed, never opened or written through.
    fn up_to_date(&mut self, job: &Job<'_>, src_meta: &Metadata) -> Result<bool> {
        let dst = &job.dst;
        let dst_meta = match std::fs::symlink_metadata(dst) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(Error::Destination { action: "inspect", path: dst.to_owned(), source });
            }
        };
        if dst_meta.is_dir() {
            return Err(Error::InTheWay { path: dst.to_owned(), kind: FileKind::Directory });
        }
        if !dst_meta.is_file() {
            // unlink(2) removes the link (or FIFO) itself; nothing at its other end is touched.
            std::fs::remove_file(dst).map_err(|source| Error::Destination {
                action: "remove",
                path: dst.to_owned(),
                source,
            })?;
            self.changed = true;
            return Ok(false);
        }
        if sys::dev_ino(&dst_meta) == sys::dev_ino(src_meta) {
            return Err(Error::SameFile { src: job.src.clone(), dst: dst.to_owned() });
        }
        if dst_meta.len() != src_meta.len() {
            return Ok(false);
        }
        let same = if self.opts().checksum {
            let ours = checksum::hash_file(Algo::Xxh128, &job.src)?;
            let theirs = checksum::hash_file(Algo::Xxh128, dst)?;
            ours == theirs
        } else {
            Mtime::of(&dst_meta).within(Mtime::of(src_meta), self.shared.modify_window)
        };
        if !same {
            return Ok(false);
        }
        let mode = src_meta.mode() & 0o7777;
        if self.shared.keeps_modes && dst_meta.mode() & 0o7777 != mode {
            // Same content, new mode (a chmod in SRC): fixed in place. The path was just seen to
            // be a regular file, not a symlink.
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode)).map_err(
                |source| Error::Destination {
                    action: "set the mode of",
                    path: dst.to_owned(),
                    source,
                },
            )?;
        }
        Ok(true)
    }

    /// Writes the temp file, retrying transient errors from attempt `attempt` on. `Ok(None)`:
    /// cancelled (any temp removed).
    fn write_with_retries(&mut self, job: &Job<'_>, mut attempt: u32) -> Result<Option<Written>> {
        loop {
            if self.cancelled() {
                return Ok(None);
            }
            self.shared.progress.file_started(&job.rel, entry_len(job.entry));
            match self.write_temp(job, attempt) {
                Ok(written) => return Ok(written),
                Err(err) => attempt = self.back_off(job, err, attempt)?,
            }
        }
    }

    /// Writes, syncs and verifies one file with retries, for a file whose batched try failed.
    fn copy_fully(&mut self, job: &Job<'_>, mut attempt: u32) -> Result<Option<Staged>> {
        loop {
            let Some(written) = self.write_with_retries(job, attempt)? else { return Ok(None) };
            attempt = written.attempt;
            match self.finish(job, written) {
                Ok(staged) => return Ok(Some(staged)),
                Err(err) => attempt = self.back_off(job, err, attempt)?,
            }
        }
    }

    /// After a failed attempt: the error back when it is final or the tries are used up, else the
    /// next attempt's number after waiting (cut short by a cancel).
    fn back_off(&mut self, job: &Job<'_>, err: Error, attempt: u32) -> Result<u32> {
        if !err.is_transient() || attempt >= self.opts().retry.max_tries() {
            return Err(err);
        }
        let next = attempt + 1;
        let delay = self.opts().retry.delay_before(next);
        self.report.retries += 1;
        self.shared.progress.retry(&job.rel, &err, next, delay);
        let until = Instant::now() + delay;
        while !self.cancelled() {
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::sleep((until - now).min(CANCEL_POLL));
        }
        Ok(next)
    }

    /// One attempt: the source read once, each buffer hashed and appended to a new temp file
    /// beside the destination; then the source checked unchanged and the temp given its mtime.
    fn write_temp(&mut self, job: &Job<'_>, attempt: u32) -> Result<Option<Written>> {
        let read_err = |source| Error::Read { path: job.src.clone(), source };
        let src = sys::open_source(&job.src)
            .map_err(|source| Error::Open { path: job.src.clone(), source })?;
        let before = src.metadata().map_err(read_err)?;
        if let Some(kind) = FileKind::of(&before) {
            return Err(Error::NotRegular { path: job.src.clone(), kind });
        }
        sys::advise_sequential(&src);
        let opts = WriteOptions {
            // The batch is synced as a whole before its renames (`flush`), not file by file.
            durability: Durability::None,
            overwrite: Overwrite::Replace,
            // Where DST keeps no modes (FAT through FUSE answers `chmod` with ENOSYS), none is
            // set: the file gets what the file system gives every file.
            mode: self.shared.keeps_modes.then_some(before.mode() & 0o7777),
        };
        let mut temp = AtomicFile::create(&job.dst, &opts)?;
        if temp.target() != job.dst {
            // A symlink was planted after `up_to_date` removed what was there; dropping `temp`
            // removes the temp file, and nothing was written through the link.
            return Err(Error::DestinationRaced { path: job.dst.clone() });
        }
        // Owners before attributes and modes: a chown clears set-id bits and file capabilities.
        if self.shared.owners_ok.load(Ordering::Relaxed)
            && let Err(err) = sys::copy_owner(&before, temp.as_file(), opts.mode)
            && self.shared.owners_ok.swap(false, Ordering::Relaxed)
        {
            let warning = Warning::OwnersNotKept { path: job.src.clone(), reason: err.to_string() };
            self.shared.progress.warning(&warning);
            self.report.warnings.push(warning);
        }
        if self.shared.xattrs_ok.load(Ordering::Relaxed)
            && let Err(err) = sys::copy_xattrs(&src, temp.as_file())
            && self.shared.xattrs_ok.swap(false, Ordering::Relaxed)
        {
            let warning = Warning::XattrsNotKept { path: job.src.clone(), reason: err.to_string() };
            self.shared.progress.warning(&warning);
            self.report.warnings.push(warning);
        }
        if self.buf.len() != BUF_SIZE {
            self.buf = vec![0; BUF_SIZE];
        }
        let mut hasher = Hasher::new(Algo::Xxh128);
        let mut read = 0u64;
        let mut reader = &src;
        // A sparse source onto a destination that keeps holes: each hole is skipped in the temp
        // (and hashed as the zeros it reads as) instead of written out. Holes are found with
        // SEEK_HOLE/SEEK_DATA; a file system without them reports the whole file as data.
        let sparse = self.shared.keeps_holes && before.blocks().saturating_mul(512) < before.len();
        let mut hole = if sparse { sys::next_hole(&src, 0).map_err(read_err)? } else { u64::MAX };
        loop {
            if self.cancelled() {
                return Ok(None);
            }
            if read >= hole {
                let data = sys::next_data(&src, read).map_err(read_err)?.unwrap_or(before.len());
                let gap = data.saturating_sub(read).min(before.len().saturating_sub(read));
                if gap == 0 && data >= before.len() {
                    break;
                }
                self.buf.fill(0);
                let mut left = gap;
                while left > 0 {
                    let n = left.min(self.buf.len() as u64) as usize;
                    hasher.update(&self.buf[..n]);
                    left -= n as u64;
                }
                let temp_err = |source| Error::Destination {
                    action: "skip a hole in",
                    path: job.dst.clone(),
                    source,
                };
                let skip =
                    i64::try_from(gap).map_err(|_| temp_err(io::ErrorKind::InvalidInput.into()))?;
                temp.as_file_mut().seek(SeekFrom::Current(skip)).map_err(temp_err)?;
                read += gap;
                self.shared.progress.bytes_copied(gap);
                hole = sys::next_hole(&src, read).map_err(read_err)?;
                continue;
            }
            let want = self.buf.len().min(usize::try_from(hole - read).unwrap_or(usize::MAX));
            let n = match reader.read(&mut self.buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(read_err(err)),
            };
            let chunk = &self.buf[..n];
            hasher.update(chunk);
            temp.append(chunk)?;
            read += n as u64;
            self.shared.progress.bytes_copied(n as u64);
            if read > before.len() {
                // Growing while read (a log being appended to): reading on could never end.
                break;
            }
        }
        if sparse {
            // A trailing hole: the seek past it wrote nothing, so the size is set.
            temp.as_file().set_len(read).map_err(|source| Error::Destination {
                action: "set the size of",
                path: temp.temp_path().to_owned(),
                source,
            })?;
        }
        let after = src.metadata().map_err(read_err)?;
        let mtime = Mtime::of(&before);
        let mtime_changed = Mtime::of(&after) != mtime;
        if after.len() != before.len() || mtime_changed || read != before.len() {
            return Err(Error::SourceChanged {
                path: job.src.clone(),
                before_len: before.len(),
                after_len: after.len(),
                read,
                mtime_changed,
            });
        }
        if read == 0 && before.len() != 0 {
            // Unreachable after the check above (read == before.len()); kept so that a 0-byte copy
            // of a non-empty file can never be renamed into place, whatever changes above.
            return Err(Error::EmptyCopy { path: job.src.clone(), len: before.len() });
        }
        // After the last write (a write would update it), before the fsync that makes it durable.
        // The atime too: exfat-fuse ignores an mtime set alone.
        let times = FileTimes::new()
            .set_modified(mtime.to_system_time())
            .set_accessed(before.accessed().unwrap_or_else(|_| mtime.to_system_time()));
        temp.as_file().set_times(times).map_err(|source| Error::Destination {
            action: "set the mtime of",
            path: temp.temp_path().to_owned(),
            source,
        })?;
        Ok(Some(Written { temp, digest: hasher.finish(), len: read, attempt }))
    }

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
                    let err = Error::Sync {
                        path: s.temp_path().to_owned(),
                        fs: atomic_io::FileSystem::of(s.as_file()),
                        source,
                    };
                    self.fail(&job.rel, job.src, err, len); // dropping `s` removes the temp
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
                    Error::MediaMismatch { temp, expected, actual: Box::new(actual) }
                }
                Err(source) => Error::ReadBack { temp, source },
            };
            let len = entry_len(job.entry);
            self.fail(&job.rel, job.src, error, len); // dropping `s` removes the temp
        }
        good
    }

    /// Checks the temp: its size, and unless `verify` is off the hash of its bytes read back
    /// (the batch is synced afterwards, in `flush`).
    fn finish(&mut self, job: &Job<'_>, written: Written) -> Result<Staged> {
        let staged = written.temp.stage()?;
        let temp = staged.temp_path().to_owned();
        let read_back = |source| Error::ReadBack { temp: temp.clone(), source };
        let actual = staged.as_file().metadata().map_err(read_back)?.len();
        if actual != written.len {
            return Err(Error::SizeMismatch {
                src: job.src.clone(),
                temp: temp.clone(),
                expected: written.len,
                actual,
            });
        }
        if self.opts().verify {
            if self.buf.len() != BUF_SIZE {
                self.buf = vec![0; BUF_SIZE];
            }
            let mut hasher = Hasher::new(Algo::Xxh128);
            let mut offset = 0u64;
            while offset < written.len {
                let n = match staged.as_file().read_at(&mut self.buf, offset) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(read_back(err)),
                };
                hasher.update(&self.buf[..n]);
                offset += n as u64;
            }
            let actual = hasher.finish();
            if actual != written.digest || offset != written.len {
                return Err(Error::HashMismatch {
                    src: job.src.clone(),
                    temp,
                    expected: written.digest,
                    actual,
                });
            }
        }
        Ok(staged)
    }

    /// Syncs and verifies a batch of written temps, then renames them. `false` when cancelled
    /// (the batch's temps are removed, none renamed).
    fn flush(&mut self, batch: Vec<(Job<'p>, Written)>) -> bool {
        let mut staged: Vec<(Job<'p>, Staged)> = Vec::with_capacity(batch.len());
        let mut cancelled = false;
        for (mut job, written) in batch {
            if cancelled || self.cancelled() {
                cancelled = true;
                self.report.not_attempted += 1;
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
                Ok(Some(s)) => staged.push((job, s)),
                Ok(None) => {
                    cancelled = true;
                    self.report.not_attempted += 1;
                }
                Err(err) => {
                    let len = entry_len(job.entry);
                    self.fail(&job.rel, job.src, err, len);
                }
            }
        }
        if cancelled {
            self.report.not_attempted += staged.len() as u64;
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
            let len = s.as_file().metadata().map(|m| m.len()).unwrap_or(0);
            match s.rename() {
                Ok(()) => {
                    self.changed = true;
                    self.report.copied += 1;
                    self.report.copied_bytes += len;
                    self.stats.copied += 1;
                    self.stats.bytes += len;
                    self.shared.progress.file_done(&job.rel, len, FileOutcome::Copied);
                }
                Err(err) => self.fail(&job.rel, job.src, err.into(), len),
            }
        }
        true
    }

    /// Copies a symlink as a link. `Ok(false)`: the destination already is that link.
    fn copy_link(
        &mut self,
        dst: &Path,
        name: &std::ffi::OsStr,
        target: &Path,
        mtime: Mtime,
    ) -> Result<bool> {
        let dest_err = |action, path: &Path| {
            let path = path.to_owned();
            move |source| Error::Destination { action, path, source }
        };
        match std::fs::symlink_metadata(dst) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if std::fs::read_link(dst).is_ok_and(|t| t == target) {
                    return Ok(false);
                }
            }
            Ok(meta) if meta.is_dir() => {
                return Err(Error::InTheWay { path: dst.to_owned(), kind: FileKind::Directory });
            }
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                // Nothing there: creating the link is itself atomic (it appears whole).
                match std::os::unix::fs::symlink(target, dst) {
                    Ok(()) => {
                        sys::set_mtime_nofollow(dst, mtime)
                            .map_err(dest_err("set the mtime of", dst))?;
                        return Ok(true);
                    }
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(source) => return Err(dest_err("create symlink", dst)(source)),
                }
            }
            Err(source) => return Err(dest_err("inspect", dst)(source)),
        }
        // Something else is there: a temp link beside it, renamed over it (rename replaces the
        // entry itself, whatever it is, and never follows a symlink).
        for _ in 0..16 {
            let temp = self.dst_dir.join(sys::temp_link_name(name));
            match std::os::unix::fs::symlink(target, &temp) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(dest_err("create symlink", &temp)(source)),
            }
            let placed = sys::set_mtime_nofollow(&temp, mtime)
                .map_err(dest_err("set the mtime of", &temp))
                .and_then(|()| std::fs::rename(&temp, dst).map_err(dest_err("rename onto", dst)));
            if placed.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            return placed.map(|()| true);
        }
        Err(dest_err("create a temp symlink for", dst)(io::ErrorKind::AlreadyExists.into()))
    }
}

enum Prepared {
    /// Up to date; its size.
    Skip(u64),
    Written(Written),
}

fn entry_len(entry: &EntryPlan) -> u64 {
    match entry.kind {
        EntryKind::File { len } => len,
        // Linked after every task is done (`execute`), nothing for a task to copy.
        EntryKind::Symlink { .. } | EntryKind::HardLink { .. } => 0,
    }
}

/// `fsync`s a destination directory; a failure names the file system (one that cannot sync
/// fails with `EINVAL` or `ENOTSUP`).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let file = std::fs::File::open(dir).map_err(|source| Error::Destination {
        action: "open directory",
        path: dir.to_owned(),
        source,
    })?;
    // Makes the directory's entries (renames, new names) durable; the caller's durability asks so.
    file.sync_all().map_err(|source| Error::Sync {
        path: dir.to_owned(),
        fs: atomic_io::FileSystem::of(&file),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // the expected slices, spelled as ranges on purpose
mod tests {
    use super::*;
    use crate::Action;

    fn dir_of(sizes: &[u64]) -> DirPlan {
        let entries: Vec<EntryPlan> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| EntryPlan {
                name: format!("f{i}").into(),
                kind: EntryKind::File { len },
                action: Action::Copy,
                allocated: len,
                replaces: None,
            })
            .collect();
        DirPlan {
            rel: PathBuf::new(),
            mode: 0o755,
            mtime: Mtime { sec: 0, nsec: 0 },
            entries,
            stale_links: Vec::new(),
            bytes: sizes.iter().sum(),
        }
    }

    #[test]
    fn ordinary_directories_are_one_task() {
        assert_eq!(slices(&dir_of(&[4096; 50]), 2), [0..50]);
        assert_eq!(slices(&dir_of(&[4 << 20; 13]), 8), [0..13]);
        assert_eq!(slices(&dir_of(&[]), 2), [0..0]);
    }

    #[test]
    fn large_directories_are_cut_into_at_most_jobs_balanced_slices() {
        assert_eq!(slices(&dir_of(&[14_000; 5000]), 1), [0..5000]);
        assert_eq!(slices(&dir_of(&[14_000; 5000]), 2), [0..2500, 2500..5000]);
        assert_eq!(slices(&dir_of(&[256 << 20; 3]), 2), [0..2, 2..3]);
        assert_eq!(slices(&dir_of(&[256 << 20; 3]), 8), [0..1, 1..2, 2..3]);
        // Balanced by bytes: one huge file alone, the many small ones together.
        let mut sizes = vec![512 << 20];
        sizes.extend([1000; 300]);
        assert_eq!(slices(&dir_of(&sizes), 2), [0..1, 1..301]);
    }
}

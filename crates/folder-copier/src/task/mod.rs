//! Copying the entries of one source directory (or of one slice of a very large one): its files
//! in name order, in batches that are written, then synced and verified, then renamed, then the
//! directory is synced once; its symlinks as links; then, once every directory is done, the
//! names hard-linked in SRC as hard links.
//!
//! One concept per file: `slices` cuts a large directory into tasks and joins them, `file`
//! copies one file into a verified temp, `batch` makes a batch of temps durable and renames them,
//! `retry` retries what failed transiently, `links` copies symlinks and hard links, and `tally`
//! is the one place where what became of each entry is counted.

use std::path::{Path, PathBuf};

use crate::plan::{DirPlan, EntryKind, EntryPlan};
use crate::{CopyOptions, CopyProgress, CopyReport, Failure, FileError, Warning};

mod batch;
mod file;
mod links;
mod retry;
mod slices;
mod tally;

pub(crate) use batch::{BATCH_BYTES, sync_dir};
pub(crate) use links::link_hard_links;
pub(crate) use slices::{DirJoin, slices};

use file::{Prepared, Written};
use tally::{Outcome, Tally};

/// What every task shares.
pub(crate) struct Shared<'a> {
    pub(crate) opts: &'a CopyOptions,
    pub(crate) progress: &'a dyn CopyProgress,
    pub(crate) src: &'a Path,
    pub(crate) dst: &'a Path,
    /// Files per batch.
    pub(crate) batch_files: usize,
    /// Mtimes closer than this are equal (the plan's window: DST's mtime step, or asked for).
    pub(crate) modify_window: std::time::Duration,
    /// Whether DST keeps modes (a mode-only change is not fixed in place where it does not).
    pub(crate) keeps_modes: bool,
    /// Whether DST keeps holes: sparse files are then written sparse.
    pub(crate) keeps_holes: bool,
    /// Cleared by the first extended attribute DST does not take (said once, then not tried).
    pub(crate) xattrs_ok: std::sync::atomic::AtomicBool,
    /// Whether owners are still being kept; cleared (and said once) at the first that cannot be.
    pub(crate) owners_ok: std::sync::atomic::AtomicBool,
    /// This process's effective user and group, read once for the copy: a file they already
    /// own needs no `chown` (two system calls per file saved).
    pub(crate) owner: (u32, u32),
}

impl Shared<'_> {
    /// Runs `chown` (giving the copy of `src` its source's owner) while owners are being kept.
    /// The first failure stops the keeping of owners for the rest of the copy and is said once:
    /// the warning is reported to the progress and pushed onto `warnings`.
    pub(crate) fn keep_owner(
        &self,
        src: &Path,
        warnings: &mut Vec<Warning>,
        chown: impl FnOnce() -> std::io::Result<()>,
    ) {
        use std::sync::atomic::Ordering;
        if self.owners_ok.load(Ordering::Relaxed)
            && let Err(err) = chown()
            && self.owners_ok.swap(false, Ordering::Relaxed)
        {
            let warning = Warning::OwnersNotKept { path: src.to_owned(), reason: err.to_string() };
            self.progress.warning(&warning);
            warnings.push(warning);
        }
    }
}

/// One file to copy.
struct Job<'p> {
    rel: PathBuf,
    src: PathBuf,
    dst: PathBuf,
    entry: &'p EntryPlan,
    /// XXH3-128 of the bytes read from the source, once written (for the read-back from media).
    digest: Option<checksum::Digest>,
    /// The length of its staged temp, as `finish` checked it (0 until then).
    len: u64,
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
    tally: Tally<'s>,
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
            tally: Tally::new(shared.progress),
            buf: Vec::new(),
        }
    }

    fn opts(&self) -> &CopyOptions {
        self.shared.opts
    }

    fn cancelled(&self) -> bool {
        self.shared.opts.cancelled()
    }

    /// The entries this task gives an outcome: its files and symlinks. Hard links are linked
    /// once every task is done ([`link_hard_links`]), which counts them.
    fn own_entries(&self) -> impl Iterator<Item = &'p EntryPlan> + use<'p> {
        self.entries.iter().filter(|e| !matches!(e.kind, EntryKind::HardLink { .. }))
    }

    /// Every entry of a directory whose destination could not be made: failed, by path.
    pub(crate) fn fail_all(mut self, dst_dir: &Path) -> DirResult {
        for entry in self.own_entries() {
            let rel = self.dir.rel.join(&entry.name);
            let path = self.shared.src.join(&rel);
            let error = FileError::ParentFailed { path: path.clone(), dir: dst_dir.to_owned() };
            self.tally.record(&rel, entry_len(entry), Outcome::Failed(path, error));
        }
        self.done(true)
    }

    /// A directory not even created because the copy was cancelled: nothing attempted.
    pub(crate) fn skip_all(self) -> DirResult {
        self.done(false)
    }

    pub(crate) fn run(mut self) -> DirResult {
        if self.first {
            self.remove_stale_links();
        }
        let mut batch: Vec<(Job<'p>, Written)> = Vec::new();
        let mut batch_bytes = 0u64;
        let entries = self.entries;
        let ran_through = 'entries: {
            for entry in entries {
                if self.cancelled() {
                    break 'entries false;
                }
                let rel = self.dir.rel.join(&entry.name);
                let src = self.shared.src.join(&rel);
                match &entry.kind {
                    // Linked once every task is done (`link_hard_links`).
                    EntryKind::HardLink { .. } => {}
                    EntryKind::Symlink { target, mtime, owner } => {
                        let dst = self.dst_dir.join(&entry.name);
                        let link = (target.as_path(), *mtime, *owner);
                        let outcome = match self.copy_link(&src, &dst, &entry.name, link) {
                            Ok(true) => {
                                self.changed = true;
                                Outcome::Symlink
                            }
                            Ok(false) => Outcome::Skipped,
                            Err(err) => Outcome::Failed(src, err),
                        };
                        self.tally.record(&rel, 0, outcome);
                    }
                    EntryKind::File { len } => {
                        let dst = self.dst_dir.join(&entry.name);
                        let job = Job { rel, src, dst, entry, digest: None, len: 0 };
                        match self.prepare(&job) {
                            Ok(None) => break 'entries false,
                            Ok(Some(Prepared::Skip(len))) => {
                                self.tally.record(&job.rel, len, Outcome::Skipped);
                            }
                            Ok(Some(Prepared::Written(written))) => {
                                batch_bytes += written.len;
                                batch.push((job, written));
                                if batch.len() >= self.shared.batch_files
                                    || batch_bytes >= BATCH_BYTES
                                {
                                    batch_bytes = 0;
                                    if !self.flush(std::mem::take(&mut batch)) {
                                        break 'entries false;
                                    }
                                }
                            }
                            Err(err) => {
                                self.tally.record(&job.rel, *len, Outcome::Failed(job.src, err));
                            }
                        }
                    }
                }
            }
            true
        };
        // Even when cut short: a cancelled flush removes the temps of the batch, renaming none.
        let flushed = batch.is_empty() || self.flush(batch);
        self.done(ran_through && flushed)
    }

    /// Ends this slice. The last slice of the directory to end syncs it, with durability full,
    /// if any slice changed it: one directory fsync makes every rename of every slice (and the
    /// names of subdirectories created in it) durable, instead of one per file. It also reports
    /// the directory done, with the counts of all its slices. Entries given no outcome were not
    /// attempted.
    fn done(mut self, completed: bool) -> DirResult {
        let last = self.join.leave(self.changed, &self.tally.stats);
        if let Some(changed) = last {
            if changed
                && self.opts().durability.syncs_dir()
                && let Err(error) = sync_dir(&self.dst_dir)
            {
                self.tally
                    .report
                    .failed
                    .push(Failure { path: self.shared.src.join(&self.dir.rel), error });
            }
            self.shared.progress.dir_done(&self.dir.rel, &self.join.stats());
        }
        let entries = self.own_entries().count() as u64;
        DirResult { report: self.tally.finish(entries), completed }
    }
}

/// The bytes an entry's copy writes (none for links).
fn entry_len(entry: &EntryPlan) -> u64 {
    match entry.kind {
        EntryKind::File { len } => len,
        EntryKind::Symlink { .. } | EntryKind::HardLink { .. } => 0,
    }
}

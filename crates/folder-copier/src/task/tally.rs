//! The one place a copy counts what became of an entry: every file, symlink and hard link gets
//! exactly one [`Outcome`], which updates the report, the directory's counts and the progress
//! together; an entry that got none by the end was not attempted (the copy was cancelled).

use std::path::{Path, PathBuf};

use crate::{CopyProgress, CopyReport, DirStats, Failure, FileError, FileOutcome};

/// What became of one entry.
pub(crate) enum Outcome {
    /// A regular file written, verified and renamed into place.
    File,
    /// A symlink created or replaced.
    Symlink,
    /// A name made a hard link to the copy of its first name.
    HardLink,
    /// Its destination was already up to date.
    Skipped,
    /// Not copied: the source path and why.
    Failed(PathBuf, FileError),
}

/// The counts of a group of entries (a directory's slice, or the hard links of a copy).
pub(crate) struct Tally<'a> {
    progress: &'a dyn CopyProgress,
    /// What the entries came to, plus the group's warnings and retries.
    pub(crate) report: CopyReport,
    /// The same counts for [`CopyProgress::dir_done`].
    pub(crate) stats: DirStats,
    /// Entries given an outcome so far.
    recorded: u64,
}

impl<'a> Tally<'a> {
    pub(crate) fn new(progress: &'a dyn CopyProgress) -> Self {
        Tally { progress, report: CopyReport::default(), stats: DirStats::default(), recorded: 0 }
    }

    /// Records the outcome of the entry `rel` (relative to SRC) of `len` bytes, and tells the
    /// progress.
    pub(crate) fn record(&mut self, rel: &Path, len: u64, outcome: Outcome) {
        self.recorded += 1;
        let (report, stats) = (&mut self.report, &mut self.stats);
        let shown = match outcome {
            Outcome::File => {
                report.copied += 1;
                report.copied_bytes += len;
                stats.copied += 1;
                stats.bytes += len;
                FileOutcome::Copied
            }
            Outcome::Symlink => {
                report.links += 1;
                stats.copied += 1;
                FileOutcome::Copied
            }
            Outcome::HardLink => {
                report.hard_links += 1;
                stats.copied += 1;
                FileOutcome::Copied
            }
            Outcome::Skipped => {
                report.skipped += 1;
                report.skipped_bytes += len;
                stats.skipped += 1;
                FileOutcome::Skipped
            }
            Outcome::Failed(path, error) => {
                report.failed.push(Failure { path, error });
                stats.failed += 1;
                FileOutcome::Failed
            }
        };
        self.progress.file_done(rel, len, shown);
    }

    /// The report of a group of `entries` entries: those given no outcome were not attempted.
    pub(crate) fn finish(mut self, entries: u64) -> CopyReport {
        debug_assert!(self.recorded <= entries, "{} outcomes for {entries} entries", self.recorded);
        self.report.not_attempted += entries.saturating_sub(self.recorded);
        self.report
    }
}

//! Retries: a file whose attempt failed with a transient error (a read error the source may
//! recover from, a source that changed while read, a temp that read back wrong) is tried again
//! after a wait, up to [`RetryPolicy`](crate::RetryPolicy)'s tries; a cancel cuts the wait short.

use std::time::{Duration, Instant};

use atomic_io::Staged;

use super::file::Written;
use super::{DirTask, Job, entry_len};
use crate::{FileError, Result};

/// Sleep slice while backing off, so a cancel is seen quickly.
const CANCEL_POLL: Duration = Duration::from_millis(20);

impl DirTask<'_, '_> {
    /// Writes the temp file, retrying transient errors from attempt `attempt` on. `Ok(None)`:
    /// cancelled (any temp removed).
    pub(super) fn write_with_retries(
        &mut self,
        job: &Job<'_>,
        mut attempt: u32,
    ) -> Result<Option<Written>, FileError> {
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
    pub(super) fn copy_fully(
        &mut self,
        job: &Job<'_>,
        mut attempt: u32,
    ) -> Result<Option<(Staged, u64)>, FileError> {
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
    pub(super) fn back_off(
        &mut self,
        job: &Job<'_>,
        err: FileError,
        attempt: u32,
    ) -> Result<u32, FileError> {
        if !err.is_transient() || attempt >= self.opts().retry.max_tries() {
            return Err(err);
        }
        let next = attempt + 1;
        let delay = self.opts().retry.delay_before(next);
        self.tally.report.retries += 1;
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
}

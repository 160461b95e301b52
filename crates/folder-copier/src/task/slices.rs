//! Scheduling a directory: a directory much larger than a task should be (thousands of files, or
//! hundreds of MiB) is cut into a few slices that run as separate tasks ([`slices`]); the last
//! slice to finish syncs the directory and reports it done ([`DirJoin`]).

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::entry_len;
use crate::DirStats;
use crate::plan::DirPlan;

/// A directory gets a slice per this many entries, or per this many bytes (whichever gives more),
/// up to the number of threads: a 5,000-file folder or a folder of a few huge files no longer
/// runs on one thread while the others idle.
const SLICE_ENTRIES: usize = 128;
const SLICE_BYTES: u64 = 32 * 1024 * 1024;

/// Cuts a directory's entries into contiguous slices of about equal work (bytes, plus a per-entry
/// cost worth 64 KiB), at most `jobs` of them; one slice for a directory of ordinary size.
pub(crate) fn slices(dir: &DirPlan, jobs: usize) -> Vec<Range<usize>> {
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

    /// A slice ends, having `changed` the directory or not, with its counts. For the last slice
    /// to end: `Some(whether any slice changed the directory)`; for the others `None`.
    pub(super) fn leave(&self, changed: bool, stats: &DirStats) -> Option<bool> {
        if changed {
            self.changed.store(true, Ordering::Relaxed);
        }
        {
            let mut merged = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            merged.copied += stats.copied;
            merged.skipped += stats.skipped;
            merged.failed += stats.failed;
            merged.bytes += stats.bytes;
        }
        // AcqRel: the last slice sees every other slice's renames and `changed` before it syncs.
        let last = self.remaining.fetch_sub(1, Ordering::AcqRel) == 1;
        last.then(|| self.changed.load(Ordering::Relaxed))
    }

    /// The counts of every slice that has ended.
    pub(super) fn stats(&self) -> DirStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // the expected slices, spelled as ranges on purpose
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::Action;
    use crate::plan::{EntryKind, EntryPlan};
    use checksum::Timestamp;

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
            mtime: Timestamp { sec: 0, nsec: 0 },
            owner: (0, 0),
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

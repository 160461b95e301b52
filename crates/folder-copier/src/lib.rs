//! # folder-copier
//!
//! Verified tree copy, one rayon task per source directory (or per slice of a very large one):
//! copies the contents of SRC into DST
//! (like `rsync -a SRC/ DST/`) so that every destination file is, at every instant and after a
//! crash, absent, the previous version, or the complete new version whose size and XXH3-128 hash
//! match the bytes read from the source.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let root = dir.path();
//! use folder_copier::{copy, CopyOptions};
//!
//! std::fs::create_dir_all(root.join("roms/nes"))?;
//! std::fs::write(root.join("roms/nes/Game.nes"), vec![0x4e; 40_000])?;
//! std::os::unix::fs::symlink("nes/Game.nes", root.join("roms/latest"))?;
//!
//! let report = copy(root.join("roms"), root.join("backup"), &CopyOptions::default(), &())?;
//! assert_eq!((report.copied, report.links, report.failed.len()), (1, 1, 0));
//! assert_eq!(std::fs::read_link(root.join("backup/latest"))?, std::path::Path::new("nes/Game.nes"));
//!
//! let again = copy(root.join("roms"), root.join("backup"), &CopyOptions::default(), &())?;
//! assert_eq!((again.copied, again.skipped), (0, 2)); // same size and mtime: skipped
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## How it works
//!
//! 1. [`plan`] walks SRC (walkdir, symlinks never followed), groups the files by directory, and
//!    refuses before anything is written: DST equal to or inside SRC (by resolved path, and by
//!    device and inode of DST's ancestors, which catches bind mounts), destination collisions
//!    (names that fold to one key when asked or when DST's file system is case-insensitive; a
//!    source file that is its own destination), and names or sizes DST cannot hold. It probes
//!    DST once ([`Destination`]): its file-system family, whether another spelling of a fresh name
//!    resolves (case-insensitive; FUSE file systems give each spelling its own inode, so inodes
//!    are not compared), the step it keeps mtimes in, whether it keeps modes, its cluster size.
//!    It counts the free space DST needs in those clusters, net of what is skipped or replaced.
//!    [`execute`] refuses a plan with a shortfall before writing anything.
//! 2. [`execute`] sweeps leftover temp files of an earlier, killed copy out of DST, creates the
//!    directories, then runs one task per source directory on a rayon pool of
//!    [`CopyOptions::jobs`] threads; a directory of thousands of files or hundreds of MiB is cut
//!    into up to `jobs` slices, one task each, so that one huge folder does not run on a single
//!    thread. A task copies its files in name order: each file
//!    is read once with a 256 KiB buffer, each buffer hashed (XXH3-128) and appended to an
//!    atomic-io temp file beside its destination; the temp gets the source's mode and mtime. Per
//!    batch of files, each temp is verified, then (durability full or old-or-new) the batch is
//!    synced (one `syncfs` for four files or more on a file system known to honour it, see
//!    `atomic_io::sync_file_system`; else an `fsync` per file), then all are renamed into place;
//!    with durability full the directory is synced once at the end of the task. Directory modes and mtimes are
//!    applied last, deepest first.
//!
//! The bytes go through user space on purpose: `copy_file_range` would spare a copy, but then
//! nothing would hash what was read from the source (and it can return 0 on a non-empty file on
//! some file systems, pitfall 16). Batching lets one `syncfs` (one journal commit) make a whole
//! batch durable instead of one `fsync` and commit per file: on 10,000 small files, 0.41 s instead
//! of 2.24 s (`cargo xtask bench --only copy`, docs/BENCHMARKS.md).
//!
//! ## What is guaranteed
//!
//! - **No partial or 0-byte destination file**, whenever the copy is killed: a file appears only
//!   by the rename of a complete temp file (atomic-io). A 0-byte result from a non-empty source is
//!   impossible by construction (the byte count must equal the source's size, before and after).
//! - **Verified** means: the temp file's size equals the number of bytes read, and (unless
//!   [`CopyOptions::verify`] is off) the temp, read back after it was written, hashes
//!   to the XXH3-128 of the bytes read from the source. With [`ReadBack::Cache`] (the default)
//!   the read-back mostly comes from the page cache, so it proves that the bytes handed to the
//!   kernel are the bytes read, not that the disk stored them; `fsync` (durability full) is what
//!   asks the disk to. With [`ReadBack::Media`] the read-back comes after the sync, through a
//!   fresh descriptor with the file's cached pages dropped: from the device, or from a cache
//!   below the kernel's (the card's own, a FUSE daemon's), which the kernel cannot drop.
//! - **A source that changes while it is copied** (its size, mtime or ctime differs before and after, or
//!   fewer or more bytes are read than its size) is never recorded as copied: the attempt is
//!   discarded and retried, then reported.
//! - **Durability full** (the default): once [`execute`] returns, every copied file and the names
//!   in every destination directory survive power loss on a file system that honours `fsync`. Each
//!   file's data is on disk before its rename (its batch's `syncfs` on ext4, xfs, btrfs, f2fs,
//!   which reports write-back errors since Linux 5.8; its own `fsync` everywhere else, FUSE and
//!   network file systems included, where `syncfs` can return 0 having synced nothing; a failed
//!   `syncfs` falls back to an `fsync` per file, so a failing file is named); each directory is
//!   synced once after its renames. A file whose `fsync` fails (a file system that cannot sync)
//!   fails with [`FileError::Sync`] naming the file system, and is not renamed.
//! - **Durability old-or-new**: the same data syncs, no directory syncs: after a power cut each
//!   file is absent, its previous version or the complete new one, but renames may be lost.
//!   **Durability none** syncs nothing: safe against crashes of the process only.
//! - **No two tasks write one destination path**; collisions are reported before copying, every
//!   pair named. On a destination whose case rule cannot be probed, names are compared
//!   case-insensitively (the probe fails closed).
//! - **Up to date on the destination's terms**: mtimes are compared within the step DST keeps
//!   them in (probed: 2 s on FAT, 1 s on exFAT through FUSE, 10 ms on exFAT in the kernel, 1 ns on
//!   ext4; [`CopyOptions::modify_window`] overrides it), so a rerun onto a card copies nothing.
//! - **Nothing DST cannot hold is started**: reserved characters (`"*:<>?\|`, control
//!   characters) and trailing dots or spaces on the FAT, exFAT and NTFS family, and files over
//!   4 GiB − 1 on FAT, are refused in the plan ([`Error::Unstorable`]), each path with its reason.
//! - **Verified from the media** when [`ReadBack::Media`] is asked: each file is synced, opened
//!   again with its cached pages dropped, and hashed again before its rename.
//! - **Nothing is written through a symlink planted in DST**: a symlink (or FIFO) where a file or
//!   symlink goes is removed and the new file renamed in its place; one where a directory goes is
//!   replaced by a directory. The destination path of a file is never opened for writing (only
//!   [`CopyOptions::checksum`] reads it, to compare).
//! - **FIFOs, sockets and devices in SRC are never opened**: skipped with a [`Warning`]. Source
//!   files are opened `O_NOFOLLOW | O_NONBLOCK` and checked with `fstat` before a byte is read.
//! - **One failed file never stops the others**; each failure is reported with its path and cause.
//!   Transient errors (`EIO`, `EAGAIN`, `EINTR`, `ETIMEDOUT`) are retried with exponential backoff
//!   ([`RetryPolicy`]); `ENOENT`, `EACCES`, `ENOSPC` and the rest are not.
//! - **Cancellation** ([`CopyOptions::cancel`]) is checked between files and between buffers: no
//!   new file starts, temps are removed, and the partial report comes back.
//! - **Names are bytes**: a name that is not UTF-8 (`caf\xe9.nes`, a folder `dir\xe9/`) is copied
//!   exactly like any other: temps, collision checks, skips and reports treat it the same. In
//!   messages and reports every name is shown escaped, reversibly ([`names::shown`]).
//!
//! ## What is not guaranteed
//!
//! - A SIGKILL or crash leaves temp files (named `.<name>.atomic-<10 characters>.tmp`) beside
//!   their destinations; the next copy into the same DST removes them, as does `sweep`.
//! - Owners (user and group) of files, directories and symlinks are kept where the process may
//!   give files away (root), as `cp -a` keeps them: set-id bits survive, a symlink's own owner is
//!   set (never its target's), DST itself gets SRC's as it gets its mode. Where the process may
//!   not, or DST keeps no owners (exFAT through FUSE answers EPERM), the first refusal gives one
//!   [`Warning::OwnersNotKept`] and the rest get the copier's owner. Only entries whose owner
//!   differs from the copier's cost a `chown`. A change of owner alone does not make a file or
//!   symlink out of date; directories get their mode and mtime again on every run, and their
//!   source's owner when it is not the copier's (an existing directory of DST owned by someone
//!   else is not given back to the copier).
//!   Extended attributes (ACLs included, which are stored as attributes) are copied where DST
//!   takes them; the first one DST refuses gives one
//!   [`Warning::XattrsNotKept`] and the copy goes on without them. A change of attributes alone
//!   does not make a file out of date. Files with several names inside SRC
//!   stay hard links in DST (one copy, the other names linked to it after every task is done)
//!   only where DST is known to hold hard links (the Unix family); elsewhere each name is copied
//!   as its own file. Sparse files stay sparse only where DST is known to keep holes (ext4, XFS,
//!   Btrfs, F2FS, tmpfs); elsewhere (exFAT, FAT, FUSE) their holes are written as zeros and
//!   counted in full by the space check. Access times are set to the mtime
//!   (exfat-fuse ignores an mtime set without its atime). Where DST does not keep modes (exFAT,
//!   FAT), one [`Warning::ModesNotKept`] says so and the copy goes on without trying `chmod`
//!   (fusefat answers it with `ENOSYS`). Through fusefat a rename stamps the current time, so
//!   reruns onto FAT through that driver copy again.
//! - Case folding ([`fold_name`]) is Unicode simple lower case then simple upper case per
//!   character, which folds at least what the exFAT and NTFS up-case tables fold (checked against
//!   a real exFAT mount) and sometimes more (refusing more, never less); Unicode normalisation
//!   (macOS) is not considered.
//! - The file-system family of a FUSE mount is told from probes: Windows names and 2 s mtimes
//!   mean FAT (4 GiB − 1 files), Windows names and finer mtimes exFAT.
//! - Directory modes and mtimes are set last and are not synced on their own.
//! - The free-space check is an estimate ([`PlanTotals::needed`]: sizes rounded up to DST's
//!   cluster, one cluster per new directory, what replaced files free, room for the temps of
//!   replaced files in flight) taken before the copy; other writers can use the space meanwhile.
//!   A file system that reports no capacity gets a [`Warning::NoCapacity`], not a refusal.
//! - Paths above DST that change during the copy (a directory replaced by a symlink) are not
//!   guarded against.
//! - A file is copied by one thread from start to end, and a directory is cut into slices of
//!   whole entries in name order (one per 128 entries or 32 MiB, at most [`CopyOptions::jobs`],
//!   by default `checksum::reading_threads`: 8 per core): a directory of a few huge files gets
//!   at most one thread per file, and one huge file one thread.
//!
//! ## Why these dependencies
//!
//! - `atomic-io`: every file is written through its temp-file-and-rename writer, batched with
//!   `Staged` and `sync_dir`; its sweep removes leftover temps.
//! - `checksum`: the streaming XXH3-128 hasher, `FileKind`, and file hashing for `checksum` mode.
//! - `walkdir`: the walk of SRC, sorted, never following symlinks, with errors per entry.
//! - `rayon`: the pool of directory tasks, built per copy (`checksum::thread_pool`) and sized by
//!   the caller.
//! - `fs4`: the free space of DST's file system.
//! - `rustix`: `O_NOFOLLOW | O_NONBLOCK` opens, `utimensat` on symlinks, `posix_fadvise`,
//!   `statfs`/`statvfs` of the destination, without `unsafe`.
//! - `names`: how a name is shown in messages (escaped, reversibly, as everywhere in the toolkit).
//! - `thiserror`: the crate's [`Error`].
#![forbid(unsafe_code)]

// The workspace has one non-Unix policy: refuse at compile time, saying why (docs/ARCHITECTURE.md).
#[cfg(not(unix))]
compile_error!(
    "folder-copier supports Unix only (Linux, macOS, the BSDs): it relies on Unix modes, owners, renames and directory syncs"
);

mod dest;
mod error;
mod execute;
mod options;
mod plan;
mod progress;
mod report;
mod sys;
mod task;

pub use dest::{CaseRule, Destination, FsFamily, fold_name};
pub use error::{Collision, Error, FileError, Result, Unstorable};
pub use execute::{copy, execute};
pub use options::{CopyOptions, Durability, ReadBack, RetryPolicy};
pub use plan::{Action, CopyPlan, PlanTotals, PlannedEntry, plan};
pub use progress::{CopyProgress, DirStats, FileOutcome};
pub use report::{CopyReport, Failure, Warning, human_bytes};

//! Removing the temp files that crashed writers left behind, and never a live writer's.
//!
//! A writer holds an exclusive `flock` on its temp file for the file's whole life; the kernel
//! releases it when the writer exits, however it exits. [`sweep`] walks a directory tree, and for
//! each regular file whose name matches [`is_temp_name`] it tries to take
//! that lock without blocking:
//!
//! - lock taken: the writer is gone. While still holding the lock, the sweep checks that the path
//!   still names the inode it locked, then removes it (*removed*);
//! - lock refused: a live writer is at work (*busy*); the file is left alone.
//!
//! Symlinks are never followed (neither to directories nor to files); directories are recursed.
//! Files that do not match the pattern are never touched, whatever their age.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::{Result, SweepError, is_temp_name, sys};

/// How to sweep.
///
/// ```
/// let mut opts = atomic_io::sweep::SweepOptions::default();
/// opts.dry_run = true;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SweepOptions {
    /// Report what would be removed, remove nothing. The locks are still tried (briefly), to tell
    /// orphans from live writers' temps.
    pub dry_run: bool,
}

/// What a sweep found, each list in walk order (directories sorted by name).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let report = atomic_io::sweep::sweep(dir.path(), &Default::default())?;
/// assert!(report.removed.is_empty() && report.busy.is_empty() && report.errors.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SweepReport {
    /// Orphaned temps removed (with `dry_run`: that would be removed).
    pub removed: Vec<PathBuf>,
    /// Temps a live writer holds; left alone.
    pub busy: Vec<PathBuf>,
    /// Directories that could not be read and temps that could not be examined or removed; the
    /// sweep went on past each.
    pub errors: Vec<SweepError>,
}

/// Sweeps `dir` recursively: removes orphaned temp files (see the [module docs](self)).
///
/// `dir` itself may be a symlink to a directory; symlinks inside are never followed. Fails only
/// when `dir` itself cannot be read; problems below it are collected in
/// [`SweepReport::errors`].
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use atomic_io::{AtomicFile, WriteOptions, sweep::{sweep, SweepOptions}};
///
/// let live = AtomicFile::create(dir.join("live"), &WriteOptions::default())?;
/// std::fs::write(dir.join(".dead.atomic-0123456789.tmp"), b"left by a crash")?;
/// std::fs::write(dir.join("unrelated.tmp"), b"not ours")?;
///
/// let report = sweep(dir, &SweepOptions::default())?;
/// assert_eq!(report.removed, [dir.join(".dead.atomic-0123456789.tmp")]);
/// assert_eq!(report.busy, [live.temp_path()]);
/// assert!(dir.join("unrelated.tmp").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn sweep(dir: impl AsRef<Path>, opts: &SweepOptions) -> Result<SweepReport, SweepError> {
    let root = dir.as_ref();
    let mut report = SweepReport::default();
    let mut pending = vec![root.to_path_buf()];
    let mut first = true;
    while let Some(dir) = pending.pop() {
        let entries = match read_sorted(&dir) {
            Ok(entries) => entries,
            Err(source) if first => return Err(SweepError::ReadDir { path: dir, source }),
            Err(source) => {
                report.errors.push(SweepError::ReadDir { path: dir, source });
                continue;
            }
        };
        first = false;
        let mut subdirs = Vec::new();
        for (path, file_type) in entries {
            if file_type.is_dir() {
                subdirs.push(path);
            } else if file_type.is_file() && path.file_name().is_some_and(is_temp_name) {
                match sweep_one(&path, opts.dry_run) {
                    Ok(Outcome::Removed) => report.removed.push(path),
                    Ok(Outcome::Busy) => report.busy.push(path),
                    Ok(Outcome::Gone) => {}
                    Err(err) => report.errors.push(err),
                }
            }
        }
        // Reversed so that popping visits subdirectories in name order.
        pending.extend(subdirs.into_iter().rev());
    }
    Ok(report)
}

/// The entries of `dir`, sorted by name, with their types (symlinks not followed).
fn read_sorted(dir: &Path) -> io::Result<Vec<(PathBuf, std::fs::FileType)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        entries.push((entry.path(), entry.file_type()?));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

enum Outcome {
    Removed,
    Busy,
    /// Vanished, replaced, or no longer a regular file since it was listed: not ours to judge.
    Gone,
}

fn sweep_one(path: &Path, dry_run: bool) -> Result<Outcome, SweepError> {
    let examine = |source| SweepError::Examine { path: path.to_path_buf(), source };
    let file: File = match sys::open_nofollow_nonblock(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Outcome::Gone),
        // ELOOP: the name became a symlink since it was listed.
        Err(err) if err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Ok(Outcome::Gone);
        }
        Err(err) => return Err(examine(err)),
    };
    let locked = file.metadata().map_err(examine)?;
    if !locked.is_file() {
        return Ok(Outcome::Gone);
    }
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => return Ok(Outcome::Busy),
        Err(fs4::TryLockError::Error(err)) => return Err(examine(err)),
    }
    // We hold the lock. If the writer committed between our open and our lock, the name is gone
    // (renamed onto its target); check that the path still names the inode we locked.
    match std::fs::symlink_metadata(path) {
        Ok(now) if now.dev() == locked.dev() && now.ino() == locked.ino() => {}
        Ok(_) => return Ok(Outcome::Gone),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Outcome::Gone),
        Err(err) => return Err(examine(err)),
    }
    if dry_run {
        return Ok(Outcome::Removed);
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(Outcome::Removed),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Outcome::Gone),
        Err(source) => Err(SweepError::RemoveTemp { temp: path.to_path_buf(), source }),
    }
    // `file` closes here, releasing the lock only after the removal.
}

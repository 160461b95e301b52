//! Carrying a plan out: sweep leftovers, create the directories, one rayon task per source
//! directory, then directory modes and mtimes, deepest first.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use atomic_io::sweep::{SweepOptions, sweep};
use checksum::FileKind;

use crate::plan::DirPlan;
use crate::sys;
use crate::task::{DirJoin, DirResult, DirTask, Shared, link_hard_links, slices, sync_dir};
use crate::{
    CopyOptions, CopyPlan, CopyProgress, CopyReport, Error, Failure, FileError, Result, Warning,
    plan,
};

/// Copies the contents of `src` into `dst`: [`plan`] then [`execute`]. The report's
/// [`elapsed`](CopyReport::elapsed) includes the planning.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let root = dir.path();
/// std::fs::create_dir_all(root.join("src/sub"))?;
/// std::fs::write(root.join("src/sub/a.bin"), vec![1; 100_000])?;
/// let report = folder_copier::copy(root.join("src"), root.join("dst"), &Default::default(), &())?;
/// assert_eq!(report.copied, 1);
/// assert_eq!(std::fs::read(root.join("dst/sub/a.bin"))?, vec![1; 100_000]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn copy(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
    opts: &CopyOptions,
    progress: &dyn CopyProgress,
) -> Result<CopyReport> {
    let started = Instant::now();
    let plan = plan(src, dst, opts)?;
    let mut report = execute(plan, opts, progress)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Carries out a [`CopyPlan`] made with the same options.
///
/// In order: leftover temp files of an earlier, killed copy are removed from DST (atomic-io's
/// sweep of the whole of DST, which spares temps a live writer holds); the destination directories are created (a
/// symlink planted where a directory goes is replaced by the directory); then a pool of
/// [`CopyOptions::jobs`] threads (by default several per core, see
/// [`checksum::reading_threads`]) runs one task per source directory (a very large one, thousands of
/// files or hundreds of MiB, is cut into up to `jobs` slices), largest first. Each task copies
/// its directory's files in name order: each file is read once, hashed and written into a temp file
/// beside its destination; batches of temps are synced, verified and renamed into place, then the
/// directory is synced once. Last, directory modes and mtimes are set, deepest first.
///
/// Errors only when nothing could start (the pool, the sweep, DST itself); every per-entry problem
/// is in [`CopyReport::failed`] and the other entries are still copied.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let root = dir.path();
/// # std::fs::create_dir(root.join("src"))?;
/// std::fs::write(root.join("src/a"), b"a")?;
/// let opts = folder_copier::CopyOptions::default();
/// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &opts)?;
/// assert_eq!(plan.totals().to_copy, 1);
/// let report = folder_copier::execute(plan, &opts, &())?;
/// assert!(report.is_success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn execute(
    plan: CopyPlan,
    opts: &CopyOptions,
    progress: &dyn CopyProgress,
) -> Result<CopyReport> {
    let started = Instant::now();
    let CopyPlan { src, dst, dirs, problems, warnings, totals, dest, modify_window, .. } = plan;
    if totals.shortfall > 0 {
        return Err(Error::NoSpace {
            dst,
            needed: totals.needed,
            available: totals.available.unwrap_or(0),
        });
    }
    // More threads than cores unless the caller caps them: on a cold cache most of a copy's time
    // is spent waiting for reads (and write-back), and a device answers faster with several
    // requests queued; the hashing threads time-slice the cores when everything is cached.
    let jobs = checksum::reading_threads(opts.jobs);
    let pool =
        checksum::thread_pool(jobs, "copy").map_err(|source| Error::ThreadPool { jobs, source })?;

    let mut report =
        CopyReport { verified: opts.verify, read_back: opts.read_back, ..CopyReport::default() };
    report.failed.extend(problems);
    progress.planned(&totals);
    for warning in &warnings {
        progress.warning(warning);
    }
    report.warnings.extend(warnings);

    create_root(&dst, opts, &mut report)?;
    if dst.is_dir() {
        let swept = sweep(&dst, &SweepOptions::default())
            .map_err(|source| Error::Sweep { dst: dst.clone(), source })?;
        let removed = swept.removed.into_iter().map(|path| Warning::RemovedTemp { path });
        let busy = swept.busy.into_iter().map(|path| Warning::BusyTemp { path });
        for warning in removed.chain(busy) {
            progress.warning(&warning);
            report.warnings.push(warning);
        }
        for err in swept.errors {
            report.failed.push(Failure { path: dst.to_owned(), error: err.into() });
        }
    }

    let states = make_dirs(&dirs, &dst, opts, &mut report);
    let shared = Shared {
        opts,
        progress,
        src: &src,
        dst: &dst,
        batch_files: Shared::batch_files_for(pool.current_num_threads()),
        modify_window,
        keeps_modes: dest.keeps_modes,
        keeps_holes: dest.keeps_holes,
        xattrs_ok: std::sync::atomic::AtomicBool::new(true),
        owners_ok: std::sync::atomic::AtomicBool::new(true),
        owner: sys::effective_owner(),
    };
    // One task per directory, or per slice of a very large one (see `task::slices`); largest
    // first, so a big directory does not start last and run alone at the end.
    let threads = pool.current_num_threads();
    let mut tasks: Vec<(usize, std::ops::Range<usize>, u64)> = Vec::new();
    let mut joins: Vec<DirJoin> = Vec::with_capacity(dirs.len());
    for (i, dir) in dirs.iter().enumerate() {
        let cut = match states[i] {
            DirState::Ready { .. } => slices(dir, threads),
            _ => std::iter::once(0..dir.entries.len()).collect(),
        };
        joins.push(DirJoin::new(cut.len()));
        let per_slice = dir.bytes / cut.len() as u64;
        tasks.extend(cut.into_iter().map(|range| (i, range, per_slice)));
    }
    tasks.sort_by_key(|&(_, _, bytes)| std::cmp::Reverse(bytes));
    let results: Mutex<Vec<(usize, DirResult)>> = Mutex::new(Vec::with_capacity(tasks.len()));
    pool.scope_fifo(|scope| {
        for (i, range) in tasks.into_iter().map(|(i, range, _)| (i, range)) {
            let (dir, state, join) = (&dirs[i], &states[i], &joins[i]);
            let (shared, results) = (&shared, &results);
            scope.spawn_fifo(move |_| {
                let result = match state {
                    DirState::Cancelled => DirTask::new(shared, dir, range, join, false).skip_all(),
                    DirState::Failed(dst_dir) => {
                        DirTask::new(shared, dir, range, join, false).fail_all(dst_dir)
                    }
                    DirState::Ready { subdirs_created } => {
                        // Only the first slice accounts for the subdirectories it did not create.
                        let created = *subdirs_created && range.start == 0;
                        DirTask::new(shared, dir, range, join, created).run()
                    }
                };
                // A poisoned lock means another task panicked; its panic is re-raised by the
                // scope anyway, so the results are still collected.
                results.lock().unwrap_or_else(|e| e.into_inner()).push((i, result));
            });
        }
    });
    let mut completed = vec![true; dirs.len()];
    for (i, result) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        completed[i] &= result.completed;
        report.absorb(result.report);
    }
    if opts.cancelled() {
        report.interrupted = true;
    }
    let links = link_hard_links(&dirs, &states, &src, &dst, opts, progress, &report);
    report.absorb(links);
    apply_dir_metadata(&dirs, &states, &completed, &shared, &mut report);
    report.failed.sort_by(|a, b| a.path.cmp(&b.path));
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Creates DST (and missing parents) when it does not exist; with durability full, syncs the
/// directory each new one was created in.
fn create_root(dst: &Path, opts: &CopyOptions, report: &mut CopyReport) -> Result<()> {
    if dst.exists() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cursor = Some(dst);
    while let Some(path) = cursor {
        if path.as_os_str().is_empty() || path.exists() {
            break;
        }
        missing.push(path.to_owned());
        cursor = path.parent();
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(dst)
        .map_err(|source| Error::CreateDestination { path: dst.to_owned(), source })?;
    report.dirs_created += missing.len() as u64;
    if opts.durability.syncs_dir() {
        for created in &missing {
            let parent = match created.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            // Makes the new directory's name durable in its parent; the copy's own syncs cover
            // only what is inside DST.
            sync_dir(parent)?;
        }
    }
    Ok(())
}

pub(crate) enum DirState {
    /// The destination directory exists as a real directory.
    Ready { subdirs_created: bool },
    /// It could not be made; the path that failed.
    Failed(PathBuf),
    /// Not made: the copy was cancelled first.
    Cancelled,
}

/// Makes every destination directory, parents first (the plan's order). A symlink planted where a
/// directory goes is removed first, so nothing is ever written through it.
fn make_dirs(
    dirs: &[DirPlan],
    dst: &Path,
    opts: &CopyOptions,
    report: &mut CopyReport,
) -> Vec<DirState> {
    let mut states: Vec<DirState> = Vec::with_capacity(dirs.len());
    let mut index: HashMap<&Path, usize> = HashMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        index.insert(dir.rel.as_path(), i);
        let dst_dir = dst.join(&dir.rel);
        let parent = dir.rel.parent().and_then(|p| index.get(p)).copied();
        if opts.cancelled() || matches!(parent.map(|p| &states[p]), Some(DirState::Cancelled)) {
            states.push(DirState::Cancelled);
            continue;
        }
        if let Some(DirState::Failed(_)) = parent.map(|p| &states[p]) {
            states.push(DirState::Failed(dst_dir));
            continue;
        }
        match ensure_dir(&dst_dir, i == 0) {
            Ok(created) => {
                if created {
                    report.dirs_created += 1;
                    if let Some(DirState::Ready { subdirs_created }) =
                        parent.map(|p| &mut states[p])
                    {
                        *subdirs_created = true;
                    }
                }
                states.push(DirState::Ready { subdirs_created: false });
            }
            Err(error) => {
                report.failed.push(Failure { path: dst_dir.clone(), error });
                states.push(DirState::Failed(dst_dir));
            }
        }
    }
    states
}

/// Makes `dir` a real, writable directory; `Ok(true)` when it was created. `root`: DST itself,
/// which the user named, so a symlink there is followed.
fn ensure_dir(dir: &Path, root: bool) -> Result<bool, FileError> {
    let dest_err =
        |action| move |source| FileError::Destination { action, path: dir.to_owned(), source };
    let meta = if root { std::fs::metadata(dir) } else { std::fs::symlink_metadata(dir) };
    match meta {
        Ok(meta) if meta.is_dir() => {
            // Owner write and search permission while copying into it; the source's mode is put
            // back at the end. (Root needs none of this, everyone else does for a 0o555 directory
            // copied before.)
            if meta.mode() & 0o300 != 0o300 {
                let mode = (meta.mode() | 0o700) & 0o7777;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
                    .map_err(dest_err("make writable"))?;
            }
            Ok(false)
        }
        Ok(meta) if meta.file_type().is_symlink() => {
            // unlink(2) removes the link itself; its target is untouched.
            std::fs::remove_file(dir).map_err(dest_err("remove symlink"))?;
            std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(dest_err("create"))?;
            Ok(true)
        }
        Ok(meta) => Err(FileError::InTheWay {
            path: dir.to_owned(),
            kind: FileKind::of(&meta).unwrap_or(FileKind::Other),
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            // 0o700 until its contents are in: no one else sees a half-copied directory.
            std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(dest_err("create"))?;
            Ok(true)
        }
        Err(source) => {
            Err(FileError::Destination { action: "inspect", path: dir.to_owned(), source })
        }
    }
}

/// Gives each destination directory its source's owner (while owners are kept, and only where
/// it is not this process's), mode and mtime, deepest first (so setting a parent's mtime comes
/// after every change inside it), on every run.
/// Directories whose task was cut short keep mode 0o700, this process's owner and a fresh mtime:
/// the next copy completes them.
fn apply_dir_metadata(
    dirs: &[DirPlan],
    states: &[DirState],
    completed: &[bool],
    shared: &Shared<'_>,
    report: &mut CopyReport,
) {
    let (src, dst) = (shared.src, shared.dst);
    for (i, dir) in dirs.iter().enumerate().rev() {
        if !completed[i] || !matches!(states[i], DirState::Ready { .. }) {
            continue;
        }
        let dst_dir = dst.join(&dir.rel);
        // The owner before the mode: a chown may clear set-id bits. DST itself may be a symlink
        // the user named (followed); below it, none are.
        shared.keep_owner(&src.join(&dir.rel), &mut report.warnings, || {
            sys::copy_owner_at(&dst_dir, dir.owner, shared.owner, i == 0)
        });
        // Where DST keeps no modes (said once by the plan), `chmod` is not even tried: FAT
        // through FUSE answers it with ENOSYS.
        let mode = || match shared.keeps_modes {
            true => std::fs::set_permissions(&dst_dir, std::fs::Permissions::from_mode(dir.mode)),
            false => Ok(()),
        };
        let result = mode().map_err(|source| ("set the mode of", source)).and_then(|()| {
            // DST itself may be a symlink the user named; below it, none are followed.
            let set = if i == 0 { sys::set_mtime_follow } else { sys::set_mtime_nofollow };
            set(&dst_dir, dir.mtime).map_err(|source| ("set the mtime of", source))
        });
        if let Err((action, source)) = result {
            report.failed.push(Failure {
                path: src.join(&dir.rel),
                error: FileError::Destination { action, path: dst_dir, source },
            });
        }
    }
}

//! Links: a symlink in SRC is copied as a symlink (by its task, in name order with the files), and
//! a name hard-linked in SRC to a file copied under another name becomes a hard link to that copy
//! (after every task is done, [`link_hard_links`]), as `cp -a` and `rsync -H` do. Where something
//! is already in the way, the link is made beside it under a temp name in atomic-io's pattern and
//! renamed over it ([`replace_with_link`]): rename(2) replaces the entry itself, whatever it is,
//! and never follows a symlink, and a temp a crash leaves behind is one the next copy removes.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use checksum::{FileKind, Timestamp};

use super::tally::{Outcome, Tally};
use super::{DirTask, sync_dir};
use crate::execute::DirState;
use crate::plan::{DirPlan, EntryKind};
use crate::sys;
use crate::{CopyOptions, CopyProgress, CopyReport, Failure, FileError, Result, Warning};

impl DirTask<'_, '_> {
    /// Removes temp symlinks a killed copy left in this destination directory.
    pub(super) fn remove_stale_links(&mut self) {
        for name in &self.dir.stale_links {
            let path = self.dst_dir.join(name);
            let still_a_link =
                std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            if still_a_link && std::fs::remove_file(&path).is_ok() {
                let warning = Warning::RemovedTemp { path };
                self.shared.progress.warning(&warning);
                self.tally.report.warnings.push(warning);
                self.changed = true;
            }
        }
    }

    /// Copies the symlink `src` as a link: its target, its mtime and (while owners are kept) its
    /// owner, set on the link itself before it appears under its name. `Ok(false)`: the
    /// destination already is that link (its owner is then left as it is).
    pub(super) fn copy_link(
        &mut self,
        src: &Path,
        dst: &Path,
        name: &OsStr,
        (target, mtime, owner): (&Path, Timestamp, (u32, u32)),
    ) -> Result<bool, FileError> {
        let dest_err = |action, path: &Path| {
            let path = path.to_owned();
            move |source| FileError::Destination { action, path, source }
        };
        match std::fs::symlink_metadata(dst) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if std::fs::read_link(dst).is_ok_and(|t| t == target) {
                    return Ok(false);
                }
            }
            Ok(meta) if meta.is_dir() => {
                return Err(FileError::InTheWay {
                    path: dst.to_owned(),
                    kind: FileKind::Directory,
                });
            }
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                // Nothing there: creating the link is itself atomic (it appears whole).
                match std::os::unix::fs::symlink(target, dst) {
                    Ok(()) => {
                        let ours = self.shared.owner;
                        self.shared.keep_owner(src, &mut self.tally.report.warnings, || {
                            sys::copy_owner_at(dst, owner, ours, false)
                        });
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
        // Something else is there.
        let warnings = std::cell::RefCell::new(Vec::new());
        let symlink = LinkKind {
            make: "create symlink",
            exhausted: "create a temp symlink for",
            link: &|temp| std::os::unix::fs::symlink(target, temp),
            finish: &|temp| {
                self.shared.keep_owner(src, &mut warnings.borrow_mut(), || {
                    sys::copy_owner_at(temp, owner, self.shared.owner, false)
                });
                sys::set_mtime_nofollow(temp, mtime).map_err(dest_err("set the mtime of", temp))
            },
        };
        let placed = replace_with_link(&self.dst_dir, name, dst, &symlink).map(|()| true);
        self.tally.report.warnings.append(&mut warnings.into_inner());
        placed
    }
}

/// How to make one kind of link under a temp name, and the actions its errors name.
struct LinkKind<'a> {
    /// The action named when making the link fails.
    make: &'static str,
    /// The action named when every temp name tried was taken.
    exhausted: &'static str,
    /// Makes the link at the given path.
    link: &'a dyn Fn(&Path) -> io::Result<()>,
    /// Finishes the link at its temp path before the rename.
    finish: &'a dyn Fn(&Path) -> Result<(), FileError>,
}

/// Makes a link (`kind`) in `dir` under a fresh temp name for `name`, and renames it over `dst`;
/// the temp is removed when finishing or renaming it fails.
fn replace_with_link(
    dir: &Path,
    name: &OsStr,
    dst: &Path,
    kind: &LinkKind<'_>,
) -> Result<(), FileError> {
    for _ in 0..16 {
        let temp = dir.join(atomic_io::temp_name(name));
        match (kind.link)(&temp) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(FileError::Destination { action: kind.make, path: temp, source });
            }
        }
        let placed = (kind.finish)(&temp).and_then(|()| {
            std::fs::rename(&temp, dst).map_err(|source| FileError::Destination {
                action: "rename onto",
                path: dst.to_owned(),
                source,
            })
        });
        if placed.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        return placed;
    }
    Err(FileError::Destination {
        action: kind.exhausted,
        path: dst.to_owned(),
        source: io::ErrorKind::AlreadyExists.into(),
    })
}

/// Makes each later name of a file hard-linked in SRC a hard link to the copy of its first name
/// (as `cp -a` and `rsync -H` do); with durability full each directory changed is synced once. A
/// name whose first name failed to copy (in `so_far`, the report of every task), or whose
/// directory could not be made, is failed too, never linked to an older copy; after a cancel
/// none is attempted. The report of the hard links alone.
pub(crate) fn link_hard_links(
    dirs: &[DirPlan],
    states: &[DirState],
    src: &Path,
    dst: &Path,
    opts: &CopyOptions,
    progress: &dyn CopyProgress,
    so_far: &CopyReport,
) -> CopyReport {
    let failed: HashSet<&Path> = so_far.failed.iter().map(|f| f.path.as_path()).collect();
    let mut tally = Tally::new(progress);
    let mut entries = 0u64;
    let mut changed: BTreeSet<PathBuf> = BTreeSet::new();
    for (dir, state) in dirs.iter().zip(states) {
        for entry in &dir.entries {
            let EntryKind::HardLink { to, len } = &entry.kind else { continue };
            entries += 1;
            if opts.cancelled() {
                continue;
            }
            let rel = dir.rel.join(&entry.name);
            let dst_dir = dst.join(&dir.rel);
            let outcome = match state {
                DirState::Failed(failed) => {
                    Err(FileError::ParentFailed { path: src.join(&rel), dir: failed.to_owned() })
                }
                _ if failed.contains(src.join(to).as_path())
                    || failed.contains(src.join(&dir.rel).as_path()) =>
                {
                    Err(FileError::ParentFailed { path: src.join(&rel), dir: dst.join(to) })
                }
                _ => link_one(&dst.join(to), &dst_dir, &entry.name),
            };
            let outcome = match outcome {
                Ok(true) => {
                    changed.insert(dst_dir);
                    Outcome::HardLink
                }
                Ok(false) => Outcome::Skipped,
                Err(error) => Outcome::Failed(src.join(&rel), error),
            };
            tally.record(&rel, *len, outcome);
        }
    }
    if opts.durability.syncs_dir() {
        for dir in changed {
            // Makes the renames of the new links durable in their directory.
            if let Err(error) = sync_dir(&dir) {
                tally.report.failed.push(Failure { path: dir, error });
            }
        }
    }
    tally.finish(entries)
}

/// Links `dir/name` to `first`. `Ok(false)`: it already is that file.
fn link_one(first: &Path, dir: &Path, name: &OsStr) -> Result<bool, FileError> {
    let this = dir.join(name);
    if crate::plan::same_file(&this, first) {
        return Ok(false);
    }
    if std::fs::symlink_metadata(&this).is_ok_and(|m| m.is_dir()) {
        return Err(FileError::InTheWay { path: this, kind: FileKind::Directory });
    }
    let hard_link = LinkKind {
        make: "hard-link",
        exhausted: "create a temp hard link for",
        link: &|temp| std::fs::hard_link(first, temp),
        finish: &|_| Ok(()),
    };
    replace_with_link(dir, name, &this, &hard_link).map(|()| true)
}

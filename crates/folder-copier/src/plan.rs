//! The plan: walk SRC, group by directory, and refuse what must not start (DST inside SRC,
//! collisions, too little space) before anything is written.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{FileType, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use std::time::Duration;

use atomic_io::is_temp_name;
use checksum::{FileKind, Timestamp};

use crate::dest::{self, Destination, FsFamily, fold_name};
use crate::sys;
use crate::{Collision, CopyOptions, Error, Failure, FileError, Result, Unstorable, Warning};

/// What the plan expects to do with one file or symlink. The decision is taken again, on the
/// destination as it is then, when the entry is copied.
///
/// ```
/// assert_ne!(folder_copier::Action::Copy, folder_copier::Action::Skip);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The destination is missing or differs.
    Copy,
    /// The destination has the same size and mtime (symlinks: the same target).
    Skip,
    /// `checksum` mode and the sizes match: the contents are compared when the file comes up.
    Compare,
}

/// Counts of a [`CopyPlan`].
///
/// ```
/// let totals = folder_copier::PlanTotals::default();
/// assert_eq!(totals.files, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanTotals {
    /// Source directories (SRC itself included).
    pub dirs: u64,
    /// Regular files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Symlinks.
    pub links: u64,
    /// Files and symlinks expected to be copied ([`Action::Copy`] and [`Action::Compare`]).
    pub to_copy: u64,
    /// Bytes of the files expected to be copied.
    pub to_copy_bytes: u64,
    /// Files and symlinks expected to be skipped.
    pub to_skip: u64,
    /// Bytes the destination needs free: what the files to copy and the new directories take in
    /// its clusters (a sparse file counts its allocated bytes where DST keeps holes), less what
    /// the files they replace take now, plus room for the replaced files' temps while they are
    /// written (a file is replaced by a rename after its temp is complete).
    pub needed: u64,
    /// Bytes available on DST's file system, when it was asked (only when something is to copy).
    pub available: Option<u64>,
    /// Bytes missing: `needed` minus `available` when that is positive, else 0. A plan with a
    /// shortfall is a dry run's report; [`execute`](crate::execute) refuses it with
    /// [`Error::NoSpace`] before anything is written.
    pub shortfall: u64,
}

/// One file or symlink of a plan, as listed by [`CopyPlan::entries`].
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let root = dir.path();
/// # std::fs::create_dir(root.join("src"))?;
/// std::fs::write(root.join("src/a"), b"abc")?;
/// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
/// let entry = plan.entries().next().unwrap();
/// assert_eq!((entry.rel.as_path(), entry.len, entry.action), (std::path::Path::new("a"), 3, folder_copier::Action::Copy));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEntry {
    /// Path relative to SRC (and to DST).
    pub rel: PathBuf,
    /// Whether it is a symlink (else a regular file).
    pub symlink: bool,
    /// Size in bytes (0 for a symlink).
    pub len: u64,
    /// What the plan expects.
    pub action: Action,
}

/// What a copy will do, found before anything is written: the files of SRC grouped by directory,
/// each with its expected [`Action`], what is skipped with a warning, what cannot be copied, and
/// the totals. [`execute`](crate::execute) carries it out; on its own it is a dry run.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let root = dir.path();
/// std::fs::create_dir_all(root.join("src/roms/nes"))?;
/// std::fs::write(root.join("src/roms/nes/a.nes"), vec![7; 10_000])?;
/// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
/// assert_eq!(plan.totals().dirs, 3);
/// assert_eq!(plan.totals().to_copy_bytes, 10_000);
/// // 10,000 bytes in 4 KiB blocks, and a block for each of the three new directories.
/// assert_eq!(plan.totals().needed, 12_288 + 3 * 4096);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CopyPlan {
    pub(crate) src: PathBuf,
    pub(crate) dst: PathBuf,
    /// Parents before children (walk order).
    pub(crate) dirs: Vec<DirPlan>,
    pub(crate) problems: Vec<Failure>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) totals: PlanTotals,
    pub(crate) case_insensitive: bool,
    /// What DST's file system is and can hold.
    pub(crate) dest: Destination,
    /// Mtimes that differ by less than this are the same (see [`CopyOptions::modify_window`]).
    pub(crate) modify_window: Duration,
}

/// One source directory and its files and symlinks, in name order.
#[derive(Debug)]
pub(crate) struct DirPlan {
    /// Relative to SRC; empty for SRC itself.
    pub(crate) rel: PathBuf,
    pub(crate) mode: u32,
    pub(crate) mtime: Timestamp,
    /// The source directory's user and group ids.
    pub(crate) owner: (u32, u32),
    pub(crate) entries: Vec<EntryPlan>,
    /// Temp-named symlinks a killed copy left in the destination directory.
    pub(crate) stale_links: Vec<OsString>,
    /// Bytes to copy, to start the largest directories first.
    pub(crate) bytes: u64,
}

#[derive(Debug)]
pub(crate) struct EntryPlan {
    pub(crate) name: OsString,
    pub(crate) kind: EntryKind,
    pub(crate) action: Action,
    /// Bytes the source file has allocated (less than its size when it is sparse).
    pub(crate) allocated: u64,
    /// Bytes allocated to the regular file it replaces in DST, if there is one.
    pub(crate) replaces: Option<u64>,
}

#[derive(Debug)]
pub(crate) enum EntryKind {
    File {
        len: u64,
    },
    /// A later name of a file hard-linked in SRC: made a hard link to the copy of its first name
    /// (`to`, relative to SRC) once every task is done.
    HardLink {
        to: PathBuf,
        len: u64,
    },
    Symlink {
        target: PathBuf,
        mtime: Timestamp,
        /// The link's own user and group ids (not its target's).
        owner: (u32, u32),
    },
}

impl CopyPlan {
    /// SRC as given.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = tmp.path();
    /// # std::fs::create_dir_all(root.join("src/sub"))?;
    /// # std::fs::write(root.join("src/sub/a"), b"a")?;
    /// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
    /// assert_eq!(plan.src(), root.join("src"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn src(&self) -> &Path {
        &self.src
    }

    /// DST as given.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = tmp.path();
    /// # std::fs::create_dir_all(root.join("src/sub"))?;
    /// # std::fs::write(root.join("src/sub/a"), b"a")?;
    /// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
    /// assert_eq!(plan.dst(), root.join("dst"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dst(&self) -> &Path {
        &self.dst
    }

    /// The counts.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = tmp.path();
    /// # std::fs::create_dir_all(root.join("src/sub"))?;
    /// # std::fs::write(root.join("src/sub/a"), b"a")?;
    /// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
    /// assert_eq!((plan.totals().files, plan.totals().bytes), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn totals(&self) -> &PlanTotals {
        &self.totals
    }

    /// What will be skipped with a warning (FIFOs, sockets, devices, files named like temps).
    ///
    /// ```
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = tmp.path();
    /// # std::fs::create_dir_all(root.join("src/sub"))?;
    /// # std::fs::write(root.join("src/sub/a"), b"a")?;
    /// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
    /// assert!(plan.warnings().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Entries that cannot be copied, known already (unreadable directories);
    /// [`execute`](crate::execute) reports them as failed.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = tmp.path();
    /// # std::fs::create_dir_all(root.join("src/sub"))?;
    /// # std::fs::write(root.join("src/sub/a"), b"a")?;
    /// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
    /// assert!(plan.problems().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn problems(&self) -> &[Failure] {
        &self.problems
    }

    /// Whether names were compared case-insensitively (asked for, or DST's file system is).
    ///
    /// ```
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = tmp.path();
    /// # std::fs::create_dir_all(root.join("src/sub"))?;
    /// # std::fs::write(root.join("src/sub/a"), b"a")?;
    /// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
    /// assert!(!plan.case_insensitive()); // asked for no, and the temp dir is case-sensitive
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// What DST's file system was found to be: its family, case rule, mtime step, cluster size.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = tmp.path();
    /// # std::fs::create_dir_all(root.join("src"))?;
    /// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
    /// assert!(plan.destination().cluster >= 512);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn destination(&self) -> &Destination {
        &self.dest
    }

    /// Mtimes that differ by less than this count as equal when deciding what is up to date:
    /// [`CopyOptions::modify_window`], or else DST's probed mtime step.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = tmp.path();
    /// # std::fs::create_dir_all(root.join("src"))?;
    /// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
    /// assert!(plan.modify_window() <= std::time::Duration::from_millis(10)); // a Linux temp dir
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn modify_window(&self) -> Duration {
        self.modify_window
    }

    /// Every file and symlink, directory by directory in walk order, names in order.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = tmp.path();
    /// # std::fs::create_dir_all(root.join("src/sub"))?;
    /// # std::fs::write(root.join("src/sub/a"), b"a")?;
    /// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
    /// assert_eq!(plan.entries().map(|e| e.rel).collect::<Vec<_>>(), [std::path::Path::new("sub/a")]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn entries(&self) -> impl Iterator<Item = PlannedEntry> + '_ {
        self.dirs.iter().flat_map(|dir| {
            dir.entries.iter().map(move |entry| PlannedEntry {
                rel: dir.rel.join(&entry.name),
                symlink: matches!(entry.kind, EntryKind::Symlink { .. }),
                len: match entry.kind {
                    EntryKind::File { len } | EntryKind::HardLink { len, .. } => len,
                    EntryKind::Symlink { .. } => 0,
                },
                action: entry.action,
            })
        })
    }

    /// Relative paths of the directories, parents first.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = tmp.path();
    /// # std::fs::create_dir_all(root.join("src/sub"))?;
    /// # std::fs::write(root.join("src/sub/a"), b"a")?;
    /// let plan = folder_copier::plan(root.join("src"), root.join("dst"), &Default::default())?;
    /// assert_eq!(plan.dirs().collect::<Vec<_>>(), [std::path::Path::new(""), std::path::Path::new("sub")]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dirs(&self) -> impl Iterator<Item = &Path> + '_ {
        self.dirs.iter().map(|dir| dir.rel.as_path())
    }
}

/// Plans copying the contents of `src` into `dst` (like `rsync -a src/ dst/`), writing nothing.
///
/// Walks `src` without following symlinks (`src` itself may be one), groups files by directory,
/// looks at what `dst` already holds, and refuses with an [`Error`] when:
/// - `src` is not a directory, or `dst` exists and is not one;
/// - `dst` is `src` or inside it ([`Error::DestinationInsideSource`]): compared after resolving
///   symlinks, and by device and inode of `dst` and each of its ancestors, so a bind mount of `src`
///   is caught too; or `src` is inside `dst` and a file would land inside `src`;
/// - two entries would land on one destination path: names that fold to one key
///   ([`fold_name`](crate::fold_name)), when [`CopyOptions::case_insensitive`] is set or `dst`'s
///   file system is case-insensitive or cannot be probed ([`Destination::probe`]: an atomic-io
///   temp file is created in `dst`, or in its nearest existing ancestor, another spelling of its
///   name looked up, and the temp removed at once); or a source file whose destination is the
///   same file ([`Error::Collisions`]);
/// - `dst`'s file system cannot hold a name (reserved characters, a trailing dot or space on the
///   FAT, exFAT and NTFS family) or a file's size (FAT: 4 GiB − 1) ([`Error::Unstorable`], every
///   path with its reason).
///
/// Too little free space is not refused here: the plan counts it ([`PlanTotals::shortfall`]) so
/// that a dry run can report it, and [`execute`](crate::execute) refuses it before writing.
///
/// FIFOs, sockets and devices are listed as warnings, never opened. Unreadable directories are
/// listed as [`problems`](CopyPlan::problems), by path. Names are bytes: one that is not UTF-8 is
/// planned like any other.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let root = dir.path();
/// use folder_copier::{plan, CopyOptions, Error};
///
/// std::fs::create_dir(root.join("src"))?;
/// std::fs::write(root.join("src/Game.rom"), b"1")?;
/// std::fs::write(root.join("src/game.rom"), b"2")?;
/// let mut opts = CopyOptions::default();
/// opts.case_insensitive = true;
/// let err = plan(root.join("src"), root.join("dst"), &opts).unwrap_err();
/// assert!(matches!(err, Error::Collisions { .. }));
/// assert!(!root.join("dst").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan(src: impl AsRef<Path>, dst: impl AsRef<Path>, opts: &CopyOptions) -> Result<CopyPlan> {
    let (src, dst) = (src.as_ref(), dst.as_ref());
    fn inspect(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
        move |source| Error::Inspect { path: path.to_owned(), source }
    }
    let src_meta = std::fs::metadata(src).map_err(inspect(src))?;
    if !src_meta.is_dir() {
        return Err(Error::SourceNotDirectory { path: src.to_owned() });
    }
    let dst_exists = match std::fs::metadata(dst) {
        Ok(meta) if meta.is_dir() => true,
        Ok(_) => return Err(Error::DestinationNotDirectory { path: dst.to_owned() }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => false,
        Err(err) => return Err(inspect(dst)(err)),
    };
    let src_canon = std::fs::canonicalize(src).map_err(inspect(src))?;
    let (dst_abs, existing) = resolve_dst(dst)?;
    refuse_inside(src, dst, &src_canon, &src_meta, &dst_abs, &existing)?;

    let dest = Destination::probe(&existing);
    let mut plan = CopyPlan {
        src: src.to_owned(),
        dst: dst.to_owned(),
        dirs: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
        totals: PlanTotals::default(),
        case_insensitive: opts.case_insensitive || dest.case.is_insensitive(),
        modify_window: opts.modify_window.unwrap_or(dest.time_granularity),
        dest,
    };
    for note in &plan.dest.notes {
        plan.warnings.push(Warning::Destination { path: existing.clone(), note: note.clone() });
    }
    if !plan.dest.keeps_modes {
        plan.warnings.push(Warning::ModesNotKept { path: existing.clone() });
    }
    walk(&mut plan)?;

    // SRC inside DST: copying SRC/x to DST/x is fine, unless DST/x lies inside SRC.
    if let Ok(inner) = src_canon.strip_prefix(&dst_abs)
        && let Some(inside) = (plan.dirs().map(Path::to_path_buf))
            .chain(plan.entries().map(|e| e.rel))
            .find(|rel| rel.starts_with(inner))
    {
        return Err(Error::DestinationOverlapsSource {
            src: src.to_owned(),
            dst: dst.to_owned(),
            inside: dst.join(inside),
        });
    }

    let mut collisions = Vec::new();
    if dst_exists {
        look_at_destination(&mut plan, opts, &mut collisions);
    }
    if plan.case_insensitive {
        find_case_collisions(&plan, &mut collisions);
    }
    if !collisions.is_empty() {
        return Err(Error::Collisions { dst: dst.to_owned(), collisions });
    }
    let unstorable = find_unstorable(&plan);
    if !unstorable.is_empty() {
        return Err(Error::Unstorable {
            dst: dst.to_owned(),
            family: plan.dest.family,
            entries: unstorable,
        });
    }

    count(&mut plan, dst_exists, opts.jobs);
    if plan.totals.needed > 0 {
        if plan.dest.capacity_reported {
            let available = (opts.available_space)(&existing)
                .map_err(|source| Error::FreeSpace { path: existing.clone(), source })?;
            plan.totals.available = Some(available);
            plan.totals.shortfall = plan.totals.needed.saturating_sub(available);
        } else {
            plan.warnings.push(Warning::NoCapacity { path: existing.clone() });
        }
    }
    Ok(plan)
}

/// DST as an absolute path with symlinks resolved as far as it exists, and its nearest existing
/// directory (DST itself when it exists).
fn resolve_dst(dst: &Path) -> Result<(PathBuf, PathBuf)> {
    let absolute = std::path::absolute(dst)
        .map_err(|source| Error::Inspect { path: dst.to_owned(), source })?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(canon) => {
                let mut resolved = canon.clone();
                // The missing part holds no symlinks, so it resolves lexically.
                for part in rest.iter().rev() {
                    match part {
                        Component::ParentDir => {
                            resolved.pop();
                        }
                        Component::Normal(name) => resolved.push(name),
                        _ => {}
                    }
                }
                return Ok((resolved, canon));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(last)) =
                    (existing.parent(), existing.components().next_back())
                else {
                    return Err(Error::Inspect { path: existing.to_owned(), source: err });
                };
                rest.push(last);
                existing = parent;
            }
            Err(source) => return Err(Error::Inspect { path: existing.to_owned(), source }),
        }
    }
}

/// Refuses DST equal to or inside SRC: by resolved path, and by device and inode of every existing
/// ancestor of DST (a bind mount of SRC has another path but the same inode).
fn refuse_inside(
    src: &Path,
    dst: &Path,
    src_canon: &Path,
    src_meta: &Metadata,
    dst_abs: &Path,
    existing: &Path,
) -> Result<()> {
    let refuse = || Error::DestinationInsideSource { src: src.to_owned(), dst: dst.to_owned() };
    if dst_abs.starts_with(src_canon) {
        return Err(refuse());
    }
    let src_id = sys::dev_ino(src_meta);
    for ancestor in existing.ancestors() {
        if let Ok(meta) = std::fs::metadata(ancestor)
            && sys::dev_ino(&meta) == src_id
        {
            return Err(refuse());
        }
    }
    Ok(())
}

/// Walks SRC in name order, without following symlinks, into `plan.dirs`.
fn walk(plan: &mut CopyPlan) -> Result<()> {
    let root = plan.src.to_owned();
    let mut index: HashMap<PathBuf, usize> = HashMap::new();
    // Files with several names, by device and inode: the first name seen. Only where DST is known
    // to hold hard links; elsewhere each name is copied as its own file.
    let link_hard = plan.dest.family == FsFamily::Unix;
    let mut first_names: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let walker = walkdir::WalkDir::new(&root).follow_links(false).sort_by_file_name();
    for item in walker {
        let entry = match item {
            Ok(entry) => entry,
            Err(err) if err.depth() == 0 => {
                return Err(Error::Walk { path: root.clone(), source: err });
            }
            Err(err) => {
                let path = err.path().map_or_else(|| root.clone(), Path::to_path_buf);
                plan.problems.push(Failure {
                    path: path.clone(),
                    error: FileError::Walk { path, source: err },
                });
                continue;
            }
        };
        let path = entry.path();
        let rel = path.strip_prefix(&root).unwrap_or(path).to_path_buf();
        // walkdir follows a symlinked root only; everything below comes from lstat.
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(err) => {
                let path = path.to_path_buf();
                plan.problems.push(Failure {
                    path: path.clone(),
                    error: FileError::Walk { path, source: err },
                });
                continue;
            }
        };
        if entry.depth() == 0 {
            index.insert(PathBuf::new(), 0);
            plan.dirs.push(dir_plan(PathBuf::new(), &meta));
            continue;
        }
        let Some(&parent) = rel.parent().and_then(|parent| index.get(parent)) else {
            // Walk order lists a directory before its contents, so the parent is known; an entry
            // without one is reported, not dropped.
            let source = io::Error::other("its directory was not listed by the walk");
            plan.problems.push(Failure {
                path: path.to_path_buf(),
                error: FileError::Inspect { path: path.to_path_buf(), source },
            });
            continue;
        };
        let name = entry.file_name().to_owned();
        let file_type = meta.file_type();
        if file_type.is_dir() {
            index.insert(rel.clone(), plan.dirs.len());
            plan.dirs.push(dir_plan(rel, &meta));
        } else if is_temp_name(&name) && (file_type.is_file() || file_type.is_symlink()) {
            plan.warnings.push(Warning::SkippedTemp { path: path.to_path_buf() });
        } else if file_type.is_file() {
            if link_hard && meta.nlink() > 1 {
                match first_names.entry(sys::dev_ino(&meta)) {
                    std::collections::hash_map::Entry::Occupied(first) => {
                        let to = first.get().clone();
                        plan.dirs[parent].entries.push(EntryPlan {
                            name,
                            kind: EntryKind::HardLink { to, len: meta.len() },
                            action: Action::Copy,
                            allocated: 0,
                            replaces: None,
                        });
                        continue;
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(rel.clone());
                    }
                }
            }
            plan.dirs[parent].entries.push(EntryPlan {
                name,
                kind: EntryKind::File { len: meta.len() },
                action: Action::Copy,
                allocated: meta.blocks().saturating_mul(512),
                replaces: None,
            });
        } else if file_type.is_symlink() {
            let target = match std::fs::read_link(path) {
                Ok(target) => target,
                Err(source) => {
                    let path = path.to_path_buf();
                    plan.problems.push(Failure {
                        path: path.clone(),
                        error: FileError::Inspect { path, source },
                    });
                    continue;
                }
            };
            plan.dirs[parent].entries.push(EntryPlan {
                name,
                kind: EntryKind::Symlink {
                    target,
                    mtime: Timestamp::mtime(&meta),
                    owner: (meta.uid(), meta.gid()),
                },
                action: Action::Copy,
                allocated: 0,
                replaces: None,
            });
        } else {
            let kind = FileKind::of(&meta).unwrap_or(FileKind::Other);
            plan.warnings.push(Warning::SkippedSpecial { path: path.to_path_buf(), kind });
        }
    }
    Ok(())
}

fn dir_plan(rel: PathBuf, meta: &Metadata) -> DirPlan {
    DirPlan {
        rel,
        mode: meta.mode() & 0o7777,
        mtime: Timestamp::mtime(meta),
        owner: (meta.uid(), meta.gid()),
        entries: Vec::new(),
        stale_links: Vec::new(),
        bytes: 0,
    }
}

/// Compares each entry with what DST holds: sets the expected [`Action`], finds source files that
/// are their own destination, and notes temp symlinks a killed copy left.
fn look_at_destination(plan: &mut CopyPlan, opts: &CopyOptions, collisions: &mut Vec<Collision>) {
    let src_root = plan.src.to_owned();
    let dst_root = plan.dst.to_owned();
    let window = plan.modify_window;
    // Directories whose destination is missing: their subdirectories are missing too.
    let mut missing: Vec<bool> = Vec::with_capacity(plan.dirs.len());
    let mut index: HashMap<PathBuf, usize> = HashMap::new();
    for (i, dir) in plan.dirs.iter_mut().enumerate() {
        index.insert(dir.rel.clone(), i);
        let parent_missing =
            dir.rel.parent().and_then(|parent| index.get(parent)).is_some_and(|&p| missing[p]);
        let dst_dir = dst_root.join(&dir.rel);
        let listing = if parent_missing { None } else { list_dir(&dst_dir) };
        missing.push(listing.is_none());
        let Some(listing) = listing else { continue };
        for (name, file_type) in &listing {
            if file_type.is_symlink() && is_temp_name(name) {
                dir.stale_links.push(name.clone());
            }
        }
        for entry in &mut dir.entries {
            let Some(file_type) = listing.get(&entry.name) else { continue };
            let dst_path = dst_dir.join(&entry.name);
            match &entry.kind {
                EntryKind::File { len } if file_type.is_file() => {
                    let Ok(dst_meta) = std::fs::symlink_metadata(&dst_path) else { continue };
                    let src_path = src_root.join(&dir.rel).join(&entry.name);
                    let Ok(src_meta) = std::fs::symlink_metadata(&src_path) else { continue };
                    entry.replaces = Some(dst_meta.blocks().saturating_mul(512));
                    if sys::dev_ino(&dst_meta) == sys::dev_ino(&src_meta) {
                        collisions.push(Collision::SameFile { src: src_path, dst: dst_path });
                    } else if dst_meta.len() == *len {
                        entry.action = if opts.checksum {
                            Action::Compare
                        } else if Timestamp::mtime(&dst_meta)
                            .within(Timestamp::mtime(&src_meta), window)
                        {
                            Action::Skip
                        } else {
                            Action::Copy
                        };
                    }
                }
                EntryKind::HardLink { to, .. }
                    if file_type.is_file() && same_file(&dst_path, &dst_root.join(to)) =>
                {
                    entry.action = Action::Skip;
                }
                EntryKind::Symlink { target, .. }
                    if file_type.is_symlink()
                        && std::fs::read_link(&dst_path).is_ok_and(|t| &t == target) =>
                {
                    entry.action = Action::Skip;
                }
                _ => {}
            }
        }
    }
}

/// Whether two paths name one file (device and inode), without following symlinks.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => sys::dev_ino(&a) == sys::dev_ino(&b),
        _ => false,
    }
}

/// The names in a destination directory and their types, or `None` when it cannot be listed (it
/// is missing, or not a directory: the copy deals with that).
fn list_dir(dir: &Path) -> Option<HashMap<OsString, FileType>> {
    let meta = std::fs::symlink_metadata(dir).ok()?;
    if !meta.is_dir() {
        return None;
    }
    let mut names = HashMap::new();
    for entry in std::fs::read_dir(dir).ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(file_type) = entry.file_type() else { continue };
        names.insert(entry.file_name(), file_type);
    }
    Some(names)
}

/// A case-folded key for a relative path: [`fold_name`] of each component.
fn fold(rel: &Path) -> Vec<u8> {
    let mut key = Vec::with_capacity(rel.as_os_str().len());
    for component in rel.components() {
        key.extend_from_slice(&fold_name(component.as_os_str()));
        key.push(b'/');
    }
    key
}

/// Two entries (directories, files or symlinks) whose relative paths fold to one key.
fn find_case_collisions(plan: &CopyPlan, collisions: &mut Vec<Collision>) {
    let mut seen: HashMap<Vec<u8>, PathBuf> = HashMap::new();
    let dirs = plan.dirs.iter().skip(1).map(|dir| dir.rel.clone());
    let entries = plan.entries().map(|entry| entry.rel);
    for rel in dirs.chain(entries) {
        // A path under an already colliding directory collides too; naming the directory is enough.
        if collisions.iter().any(|c| match c {
            Collision::CaseFold { second, .. } => rel.starts_with(second),
            Collision::SameFile { .. } => false,
        }) {
            continue;
        }
        match seen.entry(fold(&rel)) {
            std::collections::hash_map::Entry::Occupied(first) => {
                collisions.push(Collision::CaseFold { first: first.get().clone(), second: rel });
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(rel);
            }
        }
    }
}

/// Names and sizes DST's file system cannot hold, each with its reason, in walk order.
fn find_unstorable(plan: &CopyPlan) -> Vec<Unstorable> {
    let family = plan.dest.family;
    let mut out = Vec::new();
    for dir in &plan.dirs {
        if let Some(name) = dir.rel.file_name()
            && let Some(reason) = dest::name_problem(name, family)
        {
            out.push(Unstorable { path: dir.rel.clone(), reason: reason.to_owned() });
        }
        for entry in &dir.entries {
            let rel = dir.rel.join(&entry.name);
            if let Some(reason) = dest::name_problem(&entry.name, family) {
                out.push(Unstorable { path: rel, reason: reason.to_owned() });
            } else if let (EntryKind::File { len }, Some(max)) =
                (&entry.kind, family.max_file_size())
                && *len > max
            {
                let reason = format!(
                    "{len} bytes is more than this file system's largest file, {max} bytes"
                );
                out.push(Unstorable { path: rel, reason });
            }
        }
    }
    out
}

/// Fills in the totals and each directory's bytes. Space is counted in DST's clusters: a file
/// takes its size (its allocated bytes if sparse and DST keeps holes) rounded up to a cluster, a
/// new directory one cluster; a file that replaces one frees what that one takes, but its temp
/// exists beside it until the rename, so up to a batch per thread of replaced files is counted
/// twice. A file only compared (`checksum`) is counted net: if it turns out to differ, it replaces
/// a file of the same size.
fn count(plan: &mut CopyPlan, dst_exists: bool, jobs: Option<usize>) {
    let cluster = plan.dest.cluster.max(1);
    let round = |bytes: u64| bytes.div_ceil(cluster).saturating_mul(cluster);
    let keeps_holes = plan.dest.keeps_holes;
    let mut totals = PlanTotals { dirs: plan.dirs.len() as u64, ..PlanTotals::default() };
    let (mut new, mut freed, mut overlap, mut largest) = (0u64, 0u64, 0u64, 0u64);
    for dir in &mut plan.dirs {
        for entry in &dir.entries {
            let len = match entry.kind {
                EntryKind::File { len } => {
                    totals.files += 1;
                    totals.bytes += len;
                    len
                }
                EntryKind::HardLink { len, .. } => {
                    // Another name for a file copied once: counted, but it takes no space.
                    totals.files += 1;
                    totals.bytes += len;
                    if entry.action == Action::Skip {
                        totals.to_skip += 1;
                    } else {
                        totals.to_copy += 1;
                    }
                    continue;
                }
                EntryKind::Symlink { .. } => {
                    totals.links += 1;
                    0
                }
            };
            if entry.action == Action::Skip {
                totals.to_skip += 1;
                continue;
            }
            totals.to_copy += 1;
            totals.to_copy_bytes += len;
            dir.bytes += len;
            let takes = if keeps_holes { len.min(entry.allocated) } else { len };
            new = new.saturating_add(round(takes));
            if let Some(old) = entry.replaces {
                let old = round(old);
                freed = freed.saturating_add(old);
                if entry.action == Action::Copy {
                    overlap = overlap.saturating_add(old);
                    largest = largest.max(old);
                }
            }
        }
    }
    // New directories: all of them when DST is new; else those DST lacks (known at copy time;
    // counted as all, which only errs towards asking for more).
    let new_dirs = if dst_exists { missing_dirs(plan) } else { plan.dirs.len() as u64 };
    new = new.saturating_add(new_dirs.saturating_mul(cluster));
    let threads =
        jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let in_flight = (threads as u64).saturating_mul(largest.max(crate::task::BATCH_BYTES));
    totals.needed = new.saturating_sub(freed).saturating_add(overlap.min(in_flight));
    plan.totals = totals;
}

/// Source directories whose destination directory does not exist yet.
fn missing_dirs(plan: &CopyPlan) -> u64 {
    let dst = plan.dst.as_path();
    plan.dirs.iter().filter(|dir| !dst.join(&dir.rel).is_dir()).count() as u64
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn fold_uppercases_each_component() {
        assert_eq!(fold(Path::new("A/Game.ROM")), b"A/GAME.ROM/");
        assert_eq!(fold(Path::new("äb")), "ÄB/".as_bytes());
        assert_eq!(fold(Path::new(OsStr::from_bytes(b"x\xff"))), b"X\xff/");
    }

    #[test]
    fn resolve_dst_handles_missing_parts() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let canon = std::fs::canonicalize(base).unwrap();
        let (abs, existing) = resolve_dst(&base.join("a/b/../c")).unwrap();
        assert_eq!(abs, canon.join("a/c"));
        assert_eq!(existing, canon);
    }
}

//! Verification: the manifest is read and validated in full (while the real tree is walked), then
//! matched against the walk, then (in full mode) every listed regular file is hashed in parallel.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use checksum::{Algo, Digest, FileKind};
use rayon::prelude::*;

use crate::manifest::{Limits, ManifestEntry, Sizes, read_manifest, read_sizes, read_whole};
use crate::path::cmp_bytes;
use crate::read::{self, ReadFailure};
use crate::sys::RootDir;
use crate::walk::{Detail, Node, Tree, symlink_target, walk};
use crate::{
    DEFAULT_MAX_MANIFEST, Error, MANIFEST, Mode, Pass, Problem, ProblemKind, Report, Result, SIZES,
    SnapshotProgress,
};

/// How to verify a snapshot. `Default` is a full verify that reports extra files, with
/// `checksum::reading_threads(None)` threads reading and hashing, a 64 MiB manifest limit.
///
/// ```
/// use snapshot_verify::{Mode, VerifyOptions};
/// let mut quick = VerifyOptions::default();
/// quick.mode = Mode::Quick;
/// quick.allow_extra = true;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Hash every file, or check presence and sizes only.
    pub mode: Mode,
    /// Files in the directory but not in the manifest are not problems.
    pub allow_extra: bool,
    /// Files read and hashed at once (a cap); `None` is `checksum::reading_threads(None)`,
    /// several per core, so a cold disk has reads queued.
    pub jobs: Option<usize>,
    /// Largest manifest (and sizes file) accepted, in bytes; a larger one is an invalid manifest,
    /// refused before it is read.
    pub max_manifest_bytes: u64,
    /// Longest manifest line accepted, in bytes.
    pub max_line: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            mode: Mode::Full,
            allow_extra: false,
            jobs: None,
            max_manifest_bytes: DEFAULT_MAX_MANIFEST,
            max_line: checksum::DEFAULT_MAX_LINE,
        }
    }
}

impl VerifyOptions {
    pub(crate) fn limits(&self) -> Limits {
        Limits { max_bytes: self.max_manifest_bytes, max_line: self.max_line }
    }
}

/// Verifies the snapshot `dir` against its `manifest.xxh128` and reports every problem by path.
///
/// The manifest is read and validated completely before any other file is opened: a malformed
/// or over-long line, an absolute path, a `..` component, a NUL byte or a repeated path is an
/// [`Error::InvalidManifest`] and no other file is read (the tree's folders are listed meanwhile,
/// on other threads). The tree is walked without following symlinks and each listed path is
/// matched against what the walk found; every file is opened
/// beneath `dir` with no symlink followed at any component, and its type is checked on the open
/// descriptor, so a FIFO cannot block and a symlink cannot lead outside.
///
/// Problems found are not errors: they are in the [`Report`]. Errors are what stopped the check
/// (no manifest, an invalid one, `dir` unreadable). `progress` is told about each file hashed
/// (`&()` tells nothing).
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dir = tmp.path();
/// use snapshot_verify::{seal, verify, ProblemKind, SealSpec, VerifyOptions};
/// std::fs::write(dir.join("weights.bin"), b"0123456789").unwrap();
/// seal(dir, &SealSpec::default(), &()).unwrap();
/// assert!(verify(dir, &VerifyOptions::default(), &()).unwrap().is_ok());
///
/// std::fs::write(dir.join("weights.bin"), b"012345678").unwrap();
/// let report = verify(dir, &VerifyOptions::default(), &()).unwrap();
/// assert_eq!(report.problems[0].kind, ProblemKind::SizeDiffers { expected: 10, actual: 9 });
/// ```
pub fn verify(
    dir: impl AsRef<Path>,
    opts: &VerifyOptions,
    progress: &dyn SnapshotProgress,
) -> Result<Report> {
    let dir = dir.as_ref();
    let root = open_root(dir)?;
    let manifest_path = dir.join(MANIFEST);
    let file = match root.open_file(Path::new(MANIFEST)) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotSealed { dir: dir.into() });
        }
        Err(source) => return Err(Error::ReadManifest { path: manifest_path, source }),
    };
    let meta = file
        .metadata()
        .map_err(|source| Error::ReadManifest { path: manifest_path.clone(), source })?;
    if let Some(kind) = FileKind::of(&meta) {
        let reason = format!("is a {kind}, not a regular file");
        let issues = vec![crate::ManifestIssue { line: 0, reason }];
        return Err(Error::InvalidManifest { path: manifest_path, issues, more: 0 });
    }
    // A full verify needs no `lstat` per file: it opens each one and takes its status on the
    // descriptor (the recorded sizes give the progress its total). The folders are listed while
    // the manifest and the sizes are read and checked, on other threads: on a cold cache both
    // wait for the device. No file is opened until the manifest is valid.
    let detail = match opts.mode {
        Mode::Full => Detail::Kind,
        Mode::Quick => Detail::Stat,
    };
    // The pool parses the manifest's and the sizes file's ranges, then (full mode) hashes.
    let pool = pool(opts.jobs)?;
    let (listed, tree) = std::thread::scope(|scope| {
        let walker = scope.spawn(|| walk(dir, detail, opts.jobs));
        let listed = read_manifest(&file, &manifest_path, opts.limits(), &pool)
            .and_then(|entries| Ok((load_sizes(&root, &entries, opts, &pool)?, entries)));
        let tree = walker.join().unwrap_or_else(|_| Err(io::Error::other("the walk panicked")));
        (listed, tree)
    });
    let (sizes, entries) = listed?;
    let pool = match opts.mode {
        Mode::Full => Some(pool),
        Mode::Quick => None,
    };
    let tree = tree.map_err(|source| Error::Open { path: dir.into(), source })?;
    Ok(check(&Check {
        root: &root,
        tree: &tree,
        entries: &entries,
        sizes: sizes.as_ref(),
        mode: opts.mode,
        allow_extra: opts.allow_extra,
        ignore_root: &[MANIFEST],
        pool: pool.as_ref(),
        progress,
    }))
}

pub(crate) fn open_root(dir: &Path) -> Result<RootDir> {
    RootDir::open(dir).map_err(|source| {
        if source.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) {
            Error::NotADirectory { path: dir.into() }
        } else {
            Error::Open { path: dir.into(), source }
        }
    })
}

pub(crate) fn pool(jobs: Option<usize>) -> Result<rayon::ThreadPool> {
    let threads = checksum::reading_threads(jobs);
    checksum::thread_pool(threads, "snapshot-verify")
        .map_err(|err| Error::ThreadPool { threads, reason: err.to_string() })
}

/// The sizes from `manifest.sizes`, if the manifest lists it and (in full mode) it still has the
/// digest the manifest gives it. When it cannot be used the check of its own entry reports why.
fn load_sizes(
    root: &RootDir,
    entries: &[ManifestEntry],
    opts: &VerifyOptions,
    pool: &rayon::ThreadPool,
) -> Result<Option<Sizes>> {
    // By bytes: comparing `Path`s parses their components.
    let Some(entry) = entries.iter().find(|e| e.path.as_os_str().as_bytes() == SIZES.as_bytes())
    else {
        return Ok(None);
    };
    let Ok(file) = root.open_file(Path::new(SIZES)) else { return Ok(None) };
    if !file.metadata().is_ok_and(|meta| meta.is_file()) {
        return Ok(None);
    }
    let path = root.path().join(SIZES);
    // Read once: hashed (full mode) and parsed from the same bytes. In full mode a file that
    // cannot be read is reported by the check of its own entry.
    let bytes = match read_whole(&file, &path, opts.limits()) {
        Ok(bytes) => bytes,
        Err(Error::ReadManifest { .. }) if opts.mode == Mode::Full => return Ok(None),
        Err(err) => return Err(err),
    };
    if opts.mode == Mode::Full && checksum::hash_bytes(entry.digest.algo(), &bytes) != entry.digest
    {
        return Ok(None);
    }
    read_sizes(&bytes, &path, opts.limits(), entries, pool).map(Some)
}

/// Everything one check of a tree against a list of entries needs.
pub(crate) struct Check<'a> {
    pub(crate) root: &'a RootDir,
    pub(crate) tree: &'a Tree,
    pub(crate) entries: &'a [ManifestEntry],
    pub(crate) sizes: Option<&'a Sizes>,
    pub(crate) mode: Mode,
    pub(crate) allow_extra: bool,
    /// Names at the top of the snapshot that are never extra: the manifest (and, while a seal
    /// re-verifies, the sizes file it is about to replace).
    pub(crate) ignore_root: &'a [&'a str],
    /// The hashing pool (full mode only).
    pub(crate) pool: Option<&'a rayon::ThreadPool>,
    pub(crate) progress: &'a dyn SnapshotProgress,
}

/// Whether `rel` (a non-directory) is never part of a snapshot: the manifest itself, or a temp
/// file of an atomic-io writer (see `atomic_io::is_temp_name`; `cargo xtask sweep` removes
/// orphaned ones).
pub(crate) fn is_ignored(rel: &Path, ignore_root: &[&str]) -> bool {
    let top_level = rel.components().count() == 1;
    (top_level && ignore_root.iter().any(|name| rel == Path::new(name)))
        || rel.file_name().is_some_and(atomic_io::is_temp_name)
}

fn empty_digest(algo: Algo) -> Digest {
    checksum::hash_bytes(algo, b"")
}

/// A size-level problem: empty when it should not be, or a length other than the recorded one.
fn size_problem(entry: &ManifestEntry, recorded: Option<u64>, actual: u64) -> Option<ProblemKind> {
    let expect_empty = entry.digest == empty_digest(entry.digest.algo());
    if actual == 0 && !expect_empty {
        return Some(ProblemKind::ZeroByte { expected: recorded });
    }
    let expected = recorded.or(expect_empty.then_some(0))?;
    (expected != actual).then_some(ProblemKind::SizeDiffers { expected, actual })
}

/// Why a listed path is not in the walk: missing, behind a symlink that leaves the snapshot, or
/// inside a directory that could not be listed.
fn absent(c: &Check<'_>, rel: &Path) -> ProblemKind {
    let mut prefix = PathBuf::new();
    let parents: Vec<_> = rel.parent().map(|p| p.components().collect()).unwrap_or_default();
    for component in parents {
        prefix.push(component);
        match c.tree.get(&prefix) {
            Some(Node::Dir) => {}
            Some(Node::Symlink) => {
                let (target, leaves) = symlink_target(c.root.path(), &prefix);
                if leaves {
                    return ProblemKind::SymlinkLeavesTree { link: prefix, target };
                }
                return ProblemKind::Missing;
            }
            Some(_) | None => break,
        }
    }
    match c.tree.error_above(rel) {
        Some((dir, err)) => ProblemKind::Unreadable {
            reason: format!("{} could not be listed: {err}", names::shown(dir)),
        },
        None => ProblemKind::Missing,
    }
}

/// Matches the entries against the walk, hashes what needs hashing, and lists every problem.
pub(crate) fn check(c: &Check<'_>) -> Report {
    let mut problems = Vec::new();
    let mut to_hash: Vec<(&ManifestEntry, Option<u64>, u64)> = Vec::new();
    let mut bytes = 0u64;
    let problem = |path: &Path, kind| Problem { path: path.to_path_buf(), kind };
    let mut next_size = 0;
    for entry in c.entries {
        let recorded = c.sizes.and_then(|sizes| sizes.get_near(&entry.path, &mut next_size));
        let kind = match c.tree.get(&entry.path) {
            None => Some(absent(c, &entry.path)),
            Some(Node::Dir) => Some(ProblemKind::NotARegularFile { found: FileKind::Directory }),
            Some(Node::Special(kind)) => Some(ProblemKind::NotARegularFile { found: *kind }),
            Some(Node::Symlink) => {
                let (target, leaves) = symlink_target(c.root.path(), &entry.path);
                Some(if leaves {
                    ProblemKind::SymlinkLeavesTree { link: entry.path.clone(), target }
                } else {
                    ProblemKind::NotARegularFile { found: FileKind::Symlink }
                })
            }
            Some(Node::File(stat)) => match (c.mode, stat) {
                (Mode::Quick, Some(stat)) => {
                    bytes += stat.len;
                    size_problem(entry, recorded, stat.len)
                }
                // Quick verifies walk with `lstat`; should one not have, ask now.
                (Mode::Quick, None) => {
                    match std::fs::symlink_metadata(c.root.path().join(&entry.path)) {
                        Ok(meta) => {
                            bytes += meta.len();
                            size_problem(entry, recorded, meta.len())
                        }
                        Err(err) => Some(ProblemKind::Unreadable {
                            reason: format!("failed to stat: {err}"),
                        }),
                    }
                }
                // Without the walk's `lstat`, the sizes file gives the length for progress (an
                // `lstat` where there is none); the hashing takes the file's status on its open
                // descriptor.
                (Mode::Full, _) => {
                    let len = match (stat, recorded) {
                        (Some(stat), _) => stat.len,
                        (None, Some(len)) => len,
                        (None, None) => std::fs::symlink_metadata(c.root.path().join(&entry.path))
                            .map_or(0, |meta| meta.len()),
                    };
                    to_hash.push((entry, recorded, len));
                    None
                }
            },
        };
        if let Some(kind) = kind {
            problems.push(problem(&entry.path, kind));
        }
    }
    if let (Some(pool), false) = (c.pool, to_hash.is_empty()) {
        let total: u64 = to_hash.iter().map(|(_, _, len)| len).sum();
        c.progress.pass(Pass::Verify, to_hash.len() as u64, total);
        let results: Vec<_> = pool.install(|| {
            to_hash
                .par_iter()
                .with_max_len(1)
                .map(|(entry, _, _)| {
                    let result = read::hash(c.root, &entry.path, entry.digest.algo());
                    if let Ok(hashed) = &result {
                        c.progress.file_done(&entry.path, hashed.len);
                    }
                    result
                })
                .collect()
        });
        for ((entry, recorded, _), result) in to_hash.iter().zip(results) {
            let kind = match result {
                Ok(hashed) => {
                    bytes += hashed.len;
                    size_problem(entry, *recorded, hashed.len).or_else(|| {
                        (hashed.digest != entry.digest).then_some(ProblemKind::HashDiffers {
                            expected: entry.digest,
                            actual: hashed.digest,
                        })
                    })
                }
                Err(ReadFailure::NotRegular(found)) => Some(ProblemKind::NotARegularFile { found }),
                Err(ReadFailure::Io(reason)) => Some(ProblemKind::Unreadable { reason }),
            };
            if let Some(kind) = kind {
                problems.push(problem(&entry.path, kind));
            }
        }
    }
    if !c.allow_extra {
        let listed: HashSet<&OsStr> = c.entries.iter().map(|e| e.path.as_os_str()).collect();
        for (rel, node) in c.tree.iter() {
            if *node != Node::Dir
                && !listed.contains(rel.as_os_str())
                && !is_ignored(rel, c.ignore_root)
            {
                problems.push(problem(rel, ProblemKind::Extra));
            }
        }
    }
    for (rel, err) in &c.tree.errors {
        let reason = format!("could not be listed: {err}");
        problems.push(problem(rel, ProblemKind::Unreadable { reason }));
    }
    problems.sort_by(|a, b| cmp_bytes(&a.path, &b.path).then(a.kind.name().cmp(b.kind.name())));
    Report {
        mode: c.mode,
        files: c.entries.len() as u64,
        bytes,
        sizes_checked: c.sizes.is_some(),
        problems,
    }
}

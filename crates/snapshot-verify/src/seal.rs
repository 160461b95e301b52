//! Sealing: check that a snapshot is complete, hash it, write its manifest, and make sure the
//! manifest verifies before it becomes visible.

use std::collections::HashSet;
use std::fmt;
use std::io::Seek;
use std::path::{Path, PathBuf};

use atomic_io::{AtomicFile, Staged, WriteOptions};
use checksum::{Algo, FileKind, Timestamp};
use rayon::prelude::*;
use serde::Serialize;

use crate::manifest::{
    ManifestEntry, Sizes, manifest_line, read_manifest, read_sizes, read_whole, sizes_line,
};
use crate::path::{cmp_bytes, is_json, normalize_rel, serialize_path};
use crate::read::{self, JsonFailure, ReadFailure};
use crate::sys::RootDir;
use crate::verify::{Check, check, is_ignored, open_root, pool};
use crate::walk::{Detail, FileStat, Node, Tree, walk};
use crate::{Error, MANIFEST, Mode, Pass, Report, Result, SIZES, SnapshotProgress, VerifyOptions};

/// What a snapshot must satisfy to be sealed. `Default`: nothing required, empty files refused,
/// JSON files up to 1 GiB checked, `checksum::reading_threads(None)` threads reading and hashing.
///
/// ```
/// let mut spec = snapshot_verify::SealSpec::default();
/// spec.required = vec!["config.json".into(), "model.safetensors".into()];
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SealSpec {
    /// Files (relative to the snapshot) that must exist, be regular files and be non-empty.
    pub required: Vec<PathBuf>,
    /// Empty files (and a snapshot with no files at all) are allowed.
    pub allow_empty: bool,
    /// `*.json` files larger than this are refused rather than parsed (parsing is streamed, so
    /// this bounds time, not memory).
    pub max_json_bytes: u64,
    /// Files read and hashed at once (a cap); `None` is `checksum::reading_threads(None)`.
    pub jobs: Option<usize>,
}

impl Default for SealSpec {
    fn default() -> Self {
        SealSpec { required: Vec::new(), allow_empty: false, max_json_bytes: 1 << 30, jobs: None }
    }
}

/// One reason a seal was refused.
///
/// ```
/// use snapshot_verify::{Refusal, RefusalKind};
/// let r = Refusal { path: "config.json".into(), kind: RefusalKind::RequiredMissing };
/// assert_eq!(r.to_string(), "required_missing: config.json");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The path, relative to the snapshot (`.` for the snapshot as a whole).
    #[serde(serialize_with = "serialize_path")]
    pub path: PathBuf,
    /// Why.
    #[serde(flatten)]
    pub kind: RefusalKind,
}

/// The kinds of [`Refusal`]. In JSON each is an object with `"kind"` set to the snake-case name.
///
/// ```
/// assert_eq!(snapshot_verify::RefusalKind::Empty.name(), "empty");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefusalKind {
    /// A required file is not there.
    RequiredMissing,
    /// A required path names something other than a regular file.
    RequiredNotAFile {
        /// What is there.
        #[serde(serialize_with = "serialize_display")]
        found: FileKind,
    },
    /// A required path is not a relative path inside the snapshot.
    InvalidRequiredPath {
        /// What is wrong with it.
        error: String,
    },
    /// The file is empty (refused unless empty files are allowed; always for required files).
    Empty,
    /// The snapshot holds no file at all.
    NoFiles,
    /// A `*.json` file does not parse.
    InvalidJson {
        /// The parser's message (line and column).
        error: String,
    },
    /// A `*.json` file is larger than [`SealSpec::max_json_bytes`].
    JsonTooLarge {
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A symlink, FIFO, socket or device (or a directory where the seal writes its files).
    /// Snapshots hold regular files only: a symlink would be followed by `xxhsum -c` but never by
    /// [`verify`](crate::verify()), and specials cannot be hashed.
    NotARegularFile {
        /// What it is.
        #[serde(serialize_with = "serialize_display")]
        found: FileKind,
    },
    /// It could not be listed, opened or read.
    Unreadable {
        /// The cause.
        reason: String,
    },
    /// It changed while the seal was running (written to, replaced, added or removed): what was
    /// hashed is not what is there now.
    Changed {
        /// What changed.
        detail: String,
    },
}

impl RefusalKind {
    /// The snake-case name used in human output and as `"kind"` in JSON.
    ///
    /// ```
    /// let kind = snapshot_verify::RefusalKind::Changed { detail: "grew".into() };
    /// assert_eq!(kind.name(), "changed");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            RefusalKind::RequiredMissing => "required_missing",
            RefusalKind::RequiredNotAFile { .. } => "required_not_a_file",
            RefusalKind::InvalidRequiredPath { .. } => "invalid_required_path",
            RefusalKind::Empty => "empty",
            RefusalKind::NoFiles => "no_files",
            RefusalKind::InvalidJson { .. } => "invalid_json",
            RefusalKind::JsonTooLarge { .. } => "json_too_large",
            RefusalKind::NotARegularFile { .. } => "not_a_regular_file",
            RefusalKind::Unreadable { .. } => "unreadable",
            RefusalKind::Changed { .. } => "changed",
        }
    }

    /// The details shown in parentheses after the path, if the kind has any.
    ///
    /// ```
    /// let kind = snapshot_verify::RefusalKind::JsonTooLarge { len: 9, max: 8 };
    /// assert_eq!(kind.details().unwrap(), "9 bytes, limit 8");
    /// ```
    pub fn details(&self) -> Option<String> {
        Some(match self {
            RefusalKind::RequiredMissing | RefusalKind::Empty | RefusalKind::NoFiles => {
                return None;
            }
            RefusalKind::RequiredNotAFile { found } | RefusalKind::NotARegularFile { found } => {
                format!("found a {found}")
            }
            RefusalKind::InvalidRequiredPath { error } | RefusalKind::InvalidJson { error } => {
                error.clone()
            }
            RefusalKind::JsonTooLarge { len, max } => format!("{len} bytes, limit {max}"),
            RefusalKind::Unreadable { reason } => reason.clone(),
            RefusalKind::Changed { detail } => detail.clone(),
        })
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), names::shown(&self.path))?;
        match self.kind.details() {
            Some(details) => write!(f, " ({details})"),
            None => Ok(()),
        }
    }
}

/// A snapshot that was sealed.
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dir = tmp.path();
/// std::fs::write(dir.join("a"), b"abc").unwrap();
/// let sealed = snapshot_verify::seal(dir, &Default::default(), &()).unwrap();
/// assert_eq!((sealed.files, sealed.bytes), (1, 3));
/// assert!(sealed.report.is_ok());
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Sealed {
    /// The manifest written: `DIR/manifest.xxh128`, or where another store of snapshots keeps
    /// it (object storage: its URL, `s3://bucket/prefix/manifest.xxh128`).
    #[serde(serialize_with = "serialize_path")]
    pub manifest: PathBuf,
    /// Files listed (the sizes file not counted).
    pub files: u64,
    /// Their total length.
    pub bytes: u64,
    /// The verification of the tree against the new manifest, run before it was made visible.
    pub report: Report,
}

impl Sealed {
    /// The outcome of a seal made elsewhere than [`seal`], in the same format (object storage
    /// seals a prefix so): the manifest written, the files it lists, their total length, and the
    /// verification of the snapshot against it.
    ///
    /// ```
    /// let sealed = snapshot_verify::Sealed::new(
    ///     "s3://bucket/step-10/manifest.xxh128",
    ///     2,
    ///     4096,
    ///     snapshot_verify::Report::default(),
    /// );
    /// assert_eq!((sealed.files, sealed.bytes), (2, 4096));
    /// assert!(sealed.report.is_ok());
    /// ```
    pub fn new(manifest: impl Into<PathBuf>, files: u64, bytes: u64, report: Report) -> Sealed {
        Sealed { manifest: manifest.into(), files, bytes, report }
    }
}

/// Seals the snapshot `dir`: writes `DIR/manifest.xxh128` (XXH128, xxhsum GNU lines, paths
/// relative to `dir`, sorted by bytes, the manifest itself excluded) and `DIR/manifest.sizes`.
///
/// Refused with [`Error::Refused`], listing every reason and writing nothing, when a required
/// file is missing or empty, a file is empty (unless [`SealSpec::allow_empty`]), a `*.json` file
/// does not parse, something is not a regular file (symlinks are refused, not skipped), or a file
/// cannot be read. Temp files of atomic-io writers (`atomic_io::is_temp_name`) are not part of a
/// snapshot and are left out.
///
/// Every listed file, and every directory on the way to one (the snapshot's parent included), is
/// made durable before the manifest is written, since a manifest that survives a power cut its
/// files did not would vouch for empty files: one `syncfs` on a file system known to honour it
/// (ext4, xfs, btrfs, f2fs), else an `fsync` per file and per directory (FUSE, network file
/// systems). A sync that fails is [`Error::Sync`], and nothing is sealed.
///
/// The seal is done only once the written manifest verifies: both files are written to synced
/// temp files, read back and parsed, and the whole tree is hashed again against them (a full
/// verify, extra files included); only then are they renamed into place, the manifest last, and
/// the directory synced. A file that changed in between (see the crate docs on concurrent
/// writers) makes the seal refused with [`RefusalKind::Changed`]. "Verified" here means read back
/// through the page cache, not from the platter. `progress` is told about each file hashed, in
/// both passes (`&()` tells nothing).
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dir = tmp.path();
/// use snapshot_verify::{seal, Error, SealSpec};
/// std::fs::write(dir.join("config.json"), b"{\"lr\": 0.1").unwrap(); // cut short
/// std::fs::write(dir.join("empty.bin"), b"").unwrap();
/// let mut spec = SealSpec::default();
/// spec.required = vec!["weights.bin".into()];
/// let Err(Error::Refused { reasons, .. }) = seal(dir, &spec, &()) else { panic!() };
/// let names: Vec<_> = reasons.iter().map(|r| r.kind.name()).collect();
/// assert_eq!(names, ["invalid_json", "empty", "required_missing"]);
/// assert!(!dir.join("manifest.xxh128").exists());
/// ```
pub fn seal(
    dir: impl AsRef<Path>,
    spec: &SealSpec,
    progress: &dyn SnapshotProgress,
) -> Result<Sealed> {
    let dir = dir.as_ref();
    let root = open_root(dir)?;
    let tree = walk(dir, Detail::Stat, spec.jobs)
        .map_err(|source| Error::Open { path: dir.into(), source })?;
    let mut refusals = Refusals::default();
    let files = list_files(&tree, spec, &mut refusals);
    check_required(&tree, spec, &mut refusals);
    let pool = pool(spec.jobs)?;
    check_json(&root, &files, spec, &pool, &mut refusals);
    if !refusals.is_empty() {
        // Already refused: rather than hash everything, list the unreadable files too.
        probe_the_rest(&root, &files, &pool, &mut refusals);
        return Err(refusals.into_error(dir));
    }
    let total: u64 = files.iter().map(|f| f.len).sum();
    let contents = hash_listed(&root, &files, &pool, progress, &mut refusals);
    refusals.check(dir)?;
    sync_listed(&root, &files, &tree, &pool)?;
    let staged = contents.stage(dir)?;
    let (entries, sizes) = staged.read_back(&pool)?;
    let report = reverify(dir, &root, &entries, &sizes, &pool, progress)?;
    staged.publish(dir)?;
    Ok(Sealed { manifest: dir.join(MANIFEST), files: files.len() as u64, bytes: total, report })
}

/// A regular file found by the walk, to be listed in the manifest.
struct Listed {
    rel: PathBuf,
    /// Its length and ctime when walked: hashing must find the same.
    len: u64,
    ctime: Timestamp,
}

/// Every reason found so far to refuse the seal.
#[derive(Default)]
struct Refusals(Vec<Refusal>);

impl Refusals {
    fn add(&mut self, path: &Path, kind: RefusalKind) {
        self.0.push(Refusal { path: path.to_path_buf(), kind });
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn names(&self) -> HashSet<&Path> {
        self.0.iter().map(|r| r.path.as_path()).collect()
    }

    /// Nothing refused yet, or the refusal of `dir`.
    fn check(self, dir: &Path) -> Result<()> {
        if self.is_empty() { Ok(()) } else { Err(self.into_error(dir)) }
    }

    /// [`Error::Refused`] with every reason, sorted by path, each said once.
    fn into_error(self, dir: &Path) -> Error {
        let mut reasons = self.0;
        reasons.sort_by(|a, b| cmp_bytes(&a.path, &b.path).then(a.kind.name().cmp(b.kind.name())));
        reasons.dedup();
        Error::Refused { dir: dir.into(), reasons }
    }
}

/// What is there: the regular files, sorted by bytes; everything else (and an empty file, and no
/// file at all, unless allowed) is a reason to refuse.
fn list_files(tree: &Tree, spec: &SealSpec, refusals: &mut Refusals) -> Vec<Listed> {
    let mut files = Vec::new();
    for (rel, node) in tree.iter() {
        let own = rel.components().count() == 1
            && (rel == Path::new(MANIFEST) || rel == Path::new(SIZES));
        let found = match node {
            Node::File(_) if is_ignored(rel, &[MANIFEST, SIZES]) => continue,
            Node::File(stat) => {
                // Walked with `Detail::Stat`, so always `Some`; were it not, the zero ctime
                // would not match the file's at hashing and the seal would refuse it.
                let FileStat { len, ctime } = stat.unwrap_or_default();
                files.push(Listed { rel: rel.to_path_buf(), len, ctime });
                if len == 0 && !spec.allow_empty {
                    refusals.add(rel, RefusalKind::Empty);
                }
                continue;
            }
            Node::Dir if !own => continue,
            Node::Dir => FileKind::Directory,
            Node::Symlink => FileKind::Symlink,
            Node::Special(found) => *found,
        };
        refusals.add(rel, RefusalKind::NotARegularFile { found });
    }
    files.sort_by(|a, b| cmp_bytes(&a.rel, &b.rel));
    for (rel, err) in &tree.errors {
        let reason = format!("could not be listed: {err}");
        refusals.add(rel, RefusalKind::Unreadable { reason });
    }
    if files.is_empty() && !spec.allow_empty {
        refusals.add(Path::new("."), RefusalKind::NoFiles);
    }
    files
}

/// Every required file is there, a regular file, and not empty.
fn check_required(tree: &Tree, spec: &SealSpec, refusals: &mut Refusals) {
    for required in &spec.required {
        let rel = match normalize_rel(required) {
            Ok(rel) => rel,
            Err(error) => {
                let kind = RefusalKind::InvalidRequiredPath { error: error.into() };
                refusals.add(required, kind);
                continue;
            }
        };
        let found = match tree.get(&rel) {
            Some(Node::File(Some(FileStat { len: 0, .. }))) if spec.allow_empty => {
                refusals.add(&rel, RefusalKind::Empty);
                continue;
            }
            Some(Node::File(_)) => continue,
            Some(Node::Dir) => FileKind::Directory,
            Some(Node::Symlink) => FileKind::Symlink,
            Some(Node::Special(found)) => *found,
            None => {
                refusals.add(&rel, RefusalKind::RequiredMissing);
                continue;
            }
        };
        refusals.add(&rel, RefusalKind::RequiredNotAFile { found });
    }
}

/// Every `*.json` file parses (and is not larger than the spec allows).
fn check_json(
    root: &RootDir,
    files: &[Listed],
    spec: &SealSpec,
    pool: &rayon::ThreadPool,
    refusals: &mut Refusals,
) {
    let json: Vec<&PathBuf> = files.iter().map(|f| &f.rel).filter(|rel| is_json(rel)).collect();
    let results: Vec<_> = pool.install(|| {
        json.par_iter().map(|rel| read::check_json(root, rel, spec.max_json_bytes)).collect()
    });
    for (rel, result) in json.iter().zip(results) {
        let kind = match result {
            Ok(()) => continue,
            Err(JsonFailure::TooLarge { len, max }) => RefusalKind::JsonTooLarge { len, max },
            Err(JsonFailure::Invalid(error)) => RefusalKind::InvalidJson { error },
            Err(JsonFailure::Read(failure)) => failure_kind(failure),
        };
        refusals.add(rel, kind);
    }
}

/// Opens once every file not refused yet, so that the unreadable ones are listed too (a read
/// error in the middle of a file shows only when the seal gets as far as hashing).
fn probe_the_rest(
    root: &RootDir,
    files: &[Listed],
    pool: &rayon::ThreadPool,
    refusals: &mut Refusals,
) {
    let named = refusals.names();
    let rest: Vec<&Path> =
        files.iter().map(|f| f.rel.as_path()).filter(|rel| !named.contains(rel)).collect();
    let probes: Vec<_> =
        pool.install(|| rest.par_iter().map(|rel| read::probe(root, rel)).collect());
    let failed: Vec<_> =
        rest.iter().zip(probes).filter_map(|(rel, r)| Some((*rel, r.err()?))).collect();
    for (rel, failure) in failed {
        refusals.add(rel, failure_kind(failure));
    }
}

/// What the seal writes: the manifest's entries and the sizes file.
struct Contents {
    /// One per listed file, in the files' order (the sizes file not yet among them).
    entries: Vec<ManifestEntry>,
    sizes: Sizes,
    /// The sizes file, as written.
    sizes_bytes: Vec<u8>,
}

/// Hashes every listed file, refusing those that changed while they were read or since they were
/// listed (a different length or ctime), or that cannot be read.
fn hash_listed(
    root: &RootDir,
    files: &[Listed],
    pool: &rayon::ThreadPool,
    progress: &dyn SnapshotProgress,
    refusals: &mut Refusals,
) -> Contents {
    let total: u64 = files.iter().map(|f| f.len).sum();
    progress.pass(Pass::Seal, files.len() as u64, total);
    let hashed: Vec<_> = pool.install(|| {
        files
            .par_iter()
            .with_max_len(1)
            .map(|f| {
                let result = read::hash(root, &f.rel, Algo::Xxh128);
                if let Ok(hashed) = &result {
                    progress.file_done(&f.rel, hashed.len);
                }
                result
            })
            .collect()
    });
    let mut contents = Contents {
        entries: Vec::with_capacity(files.len() + 1),
        sizes: Sizes::default(),
        sizes_bytes: Vec::new(),
    };
    let mut sizes = Vec::with_capacity(files.len());
    for (listed, result) in files.iter().zip(hashed) {
        let rel = &listed.rel;
        let hashed = match result {
            Ok(hashed) => hashed,
            Err(failure) => {
                refusals.add(rel, failure_kind(failure));
                continue;
            }
        };
        let changed = if let Some(detail) = hashed.changed {
            Some(detail)
        } else if hashed.len != listed.len {
            Some(format!("{} bytes when listed, {} when hashed", listed.len, hashed.len))
        } else if hashed.ctime != listed.ctime {
            // Written (or its JSON checked against other bytes) since the walk.
            Some("its ctime moved between listing and hashing".to_owned())
        } else {
            None
        };
        if let Some(detail) = changed {
            refusals.add(rel, RefusalKind::Changed { detail });
        }
        contents.entries.push(ManifestEntry { path: rel.clone(), digest: hashed.digest });
        sizes.push((rel.as_os_str().to_owned(), hashed.len));
        contents.sizes_bytes.extend_from_slice(&sizes_line(rel, hashed.len));
    }
    contents.sizes = Sizes::from_unsorted(sizes);
    contents
}

impl Contents {
    /// Writes both files to synced temps beside their targets; the sizes file is listed in the
    /// manifest.
    fn stage(mut self, dir: &Path) -> Result<StagedSeal> {
        let sizes_digest = checksum::hash_bytes(Algo::Xxh128, &self.sizes_bytes);
        self.entries.push(ManifestEntry { path: SIZES.into(), digest: sizes_digest });
        self.entries.sort_by(|a, b| cmp_bytes(&a.path, &b.path));
        let manifest_bytes: Vec<u8> =
            self.entries.iter().flat_map(|e| manifest_line(&e.path, e.digest)).collect();
        let sizes_file = stage(&dir.join(SIZES), &self.sizes_bytes)?;
        let manifest = stage(&dir.join(MANIFEST), &manifest_bytes)?;
        Ok(StagedSeal { manifest, sizes_file, sizes_digest, contents: self })
    }
}

/// Both files written and synced under temp names, not yet visible.
struct StagedSeal {
    manifest: Staged,
    sizes_file: Staged,
    /// The digest the manifest lists for the sizes file.
    sizes_digest: checksum::Digest,
    /// What was written (the entries now with the sizes file's).
    contents: Contents,
}

impl StagedSeal {
    /// Reads both temps back and parses them as `verify` does: the entries of the data files
    /// and the sizes, each checked equal to what was written.
    fn read_back(&self, pool: &rayon::ThreadPool) -> Result<(Vec<ManifestEntry>, Sizes)> {
        let limits = VerifyOptions::default().limits();
        let back_error = |staged: &Staged, reason: String| Error::ReadBack {
            path: staged.temp_path().into(),
            reason,
        };
        let (manifest, sizes_file) = (&self.manifest, &self.sizes_file);
        let manifest_temp = manifest.temp_path().to_path_buf();
        let back = read_manifest(rewound(manifest)?, &manifest_temp, limits, pool)
            .map_err(|err| back_error(manifest, crate::error::with_causes(&err)))?;
        if back != self.contents.entries {
            return Err(back_error(manifest, "its entries differ from those written".into()));
        }
        let sizes_temp = sizes_file.temp_path().to_path_buf();
        let sizes_bytes = read_whole(rewound(sizes_file)?, &sizes_temp, limits)
            .map_err(|err| back_error(sizes_file, crate::error::with_causes(&err)))?;
        if checksum::hash_bytes(Algo::Xxh128, &sizes_bytes) != self.sizes_digest {
            return Err(back_error(sizes_file, "its digest differs from the one listed".into()));
        }
        let sizes_back = read_sizes(&sizes_bytes, &sizes_temp, limits, &back, pool)
            .map_err(|err| back_error(sizes_file, crate::error::with_causes(&err)))?;
        if sizes_back != self.contents.sizes {
            return Err(back_error(sizes_file, "its sizes differ from those written".into()));
        }
        let data = back.into_iter().filter(|e| e.path != Path::new(SIZES)).collect();
        Ok((data, sizes_back))
    }

    /// Makes both files visible: the sizes file first, the manifest (the mark of a sealed
    /// snapshot) last, then one directory sync for both renames.
    fn publish(self, dir: &Path) -> Result<()> {
        let rename = |staged: Staged| {
            let path = staged.target().to_path_buf();
            staged.rename().map_err(|source| Error::Write { path, source })
        };
        rename(self.sizes_file)?;
        rename(self.manifest)?;
        // Makes both renames durable: without it a power loss could bring back the unsealed
        // directory (or the previous seal) after `seal` returned.
        atomic_io::sync_dir(dir).map_err(|source| Error::Write { path: dir.into(), source })
    }
}

/// Verifies the whole tree, walked again, against the manifest read back (a full check with
/// sizes, extra files included): a file that changed since it was hashed refuses the seal.
fn reverify(
    dir: &Path,
    root: &RootDir,
    entries: &[ManifestEntry],
    sizes: &Sizes,
    pool: &rayon::ThreadPool,
    progress: &dyn SnapshotProgress,
) -> Result<Report> {
    // A full check with sizes: no `lstat` per file (see `verify`).
    let tree = walk(dir, Detail::Kind, Some(pool.current_num_threads()))
        .map_err(|source| Error::Open { path: dir.into(), source })?;
    let report = check(&Check {
        root,
        tree: &tree,
        entries,
        sizes: Some(sizes),
        mode: Mode::Full,
        allow_extra: false,
        ignore_root: &[MANIFEST, SIZES],
        pool: Some(pool),
        progress,
    });
    if report.is_ok() {
        return Ok(report);
    }
    // The caller drops the staged files, which removes the temps; nothing was made visible.
    let mut refusals = Refusals::default();
    for problem in report.problems {
        refusals.add(&problem.path, RefusalKind::Changed { detail: changed_detail(&problem.kind) });
    }
    Err(refusals.into_error(dir))
}

/// Makes every listed file, and every directory on the way to one, durable before a manifest
/// vouches for them: their writer may never have synced them (a training loop rarely does), and a
/// manifest that survives a power cut its data did not would vouch for empty files. One `syncfs`
/// where the file system honours it (ext4, xfs, btrfs: one journal commit); elsewhere (FUSE,
/// network file systems) an `fsync` per file on the pool's threads, then per directory, the
/// snapshot's parent included so that the snapshot's own name survives.
fn sync_listed(
    root: &RootDir,
    files: &[Listed],
    tree: &Tree,
    pool: &rayon::ThreadPool,
) -> Result<()> {
    let fs = || atomic_io::FileSystem::of(root.fd());
    if let Ok(true) = atomic_io::sync_file_system(root.fd()) {
        return Ok(());
    }
    let sync = |rel: &Path| -> Result<()> {
        let path = root.path().join(rel);
        let file = root.open_file(rel).map_err(|source| Error::Sync {
            path: path.clone(),
            fs: fs(),
            source,
        })?;
        // Makes this listed file's data (or this directory's entries) durable before the seal.
        file.sync_all().map_err(|source| Error::Sync { path, fs: fs(), source })
    };
    pool.install(|| files.par_iter().try_for_each(|f| sync(&f.rel)))?;
    let mut dirs: Vec<&Path> =
        tree.iter().filter(|(_, node)| matches!(node, Node::Dir)).map(|(rel, _)| rel).collect();
    dirs.sort_by(|a, b| cmp_bytes(a, b));
    pool.install(|| dirs.par_iter().try_for_each(|rel| sync(rel)))?;
    let sync_dir = |path: &Path| -> Result<()> {
        let file = std::fs::File::open(path).map_err(|source| Error::Sync {
            path: path.into(),
            fs: fs(),
            source,
        })?;
        // Makes the names in the snapshot's top directory (or the snapshot's own name) durable.
        file.sync_all().map_err(|source| Error::Sync { path: path.into(), fs: fs(), source })
    };
    sync_dir(root.path())?;
    match root.path().parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

fn stage(target: &Path, bytes: &[u8]) -> Result<Staged> {
    let err = |source| Error::Write { path: target.into(), source };
    let mut file = AtomicFile::create(target, &WriteOptions::default()).map_err(err)?;
    file.append(bytes).map_err(err)?;
    file.stage().map_err(err)
}

/// The staged file, rewound to its start for reading back.
fn rewound(staged: &Staged) -> Result<&std::fs::File> {
    let mut file = staged.as_file();
    file.rewind()
        .map_err(|source| Error::ReadManifest { path: staged.temp_path().into(), source })?;
    Ok(staged.as_file())
}

fn failure_kind(failure: ReadFailure) -> RefusalKind {
    match failure {
        ReadFailure::NotRegular(found) => RefusalKind::NotARegularFile { found },
        ReadFailure::Io(reason) => RefusalKind::Unreadable { reason },
    }
}

fn changed_detail(kind: &crate::ProblemKind) -> String {
    match kind.details() {
        Some(details) => format!("{} when re-verified: {details}", kind.name()),
        None => format!("{} when re-verified", kind.name()),
    }
}

fn serialize_display<S: serde::Serializer>(
    value: &impl fmt::Display,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(value)
}

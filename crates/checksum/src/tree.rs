//! Hashing whole directory trees: a deterministic walk, files hashed in parallel.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::FileKind;
use crate::file::hash_file_with;
use crate::walk::{Status, Walk, walk_tree};
use crate::{Algo, Digest, Error, FileDigest, Result};

/// How to hash a tree.
///
/// ```
/// let mut opts = checksum::TreeOptions::default();
/// opts.jobs = Some(2);
/// assert_eq!(opts.algo, checksum::Algo::Xxh128);
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TreeOptions {
    /// The algorithm (XXH128 by default).
    pub algo: Algo,
    /// Files read and hashed at once (a cap); `None` is [`reading_threads`]`(None)`, more than
    /// one per core.
    pub jobs: Option<usize>,
}

/// Files read at once per core when the caller sets no cap. A disk read from a cold cache takes
/// far longer than hashing what it returns, and a device (SSD, virtual disk, network file
/// system) answers faster with several requests queued: with only one read per core, the
/// cores wait for the device and the device for the next request. Threads beyond the cores cost
/// little when everything is cached (each hashes a whole file; the scheduler time-slices them).
/// 8 rather than 4: on a cold cache, 2 cores, a hash of 10,000 small files took 15% less time and
/// a verify 17% less, a warm hash no more; 16 per core was no faster cold and 20-27% slower warm.
/// Measured in docs/BENCHMARKS.md (cold and warm tables, and "reads in flight").
pub const READS_PER_CORE: usize = 8;

/// The threads to read and hash files with: `jobs` when the caller gives one (it caps every
/// thread, reader or hasher), otherwise [`READS_PER_CORE`] per core; at least 1.
///
/// ```
/// assert_eq!(checksum::reading_threads(Some(3)), 3);
/// assert_eq!(checksum::reading_threads(Some(0)), 1);
/// assert!(checksum::reading_threads(None) >= checksum::READS_PER_CORE);
/// ```
pub fn reading_threads(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| cores() * READS_PER_CORE).max(1)
}

/// A rayon pool of `threads` threads (0: one per core) named `{name}-{i}`, built for one
/// operation and dropped with it: how every crate of the workspace runs its parallel work, so
/// that none touches rayon's global pool and `ps -L` shows whose threads are whose.
///
/// ```
/// let pool = checksum::thread_pool(3, "example").unwrap();
/// assert_eq!(pool.current_num_threads(), 3);
/// let name = pool.install(|| std::thread::current().name().map(str::to_owned));
/// assert!(name.unwrap().starts_with("example-"));
/// ```
pub fn thread_pool(
    threads: usize,
    name: &'static str,
) -> std::result::Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
}

/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Told about each file as it is hashed; called from worker threads. Every method has a no-op
/// default, and `()` is the progress that reports nothing.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// struct Bytes(AtomicU64);
/// impl checksum::TreeProgress for Bytes {
///     fn file_done(&self, _rel: &std::path::Path, len: u64) {
///         self.0.fetch_add(len, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait TreeProgress: Send + Sync {
    /// A file was hashed (`len` bytes).
    fn file_done(&self, _rel: &Path, _len: u64) {}
}

impl TreeProgress for () {}

/// A file found by the walk, not yet hashed.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("a"), b"x").unwrap();
/// let listing = checksum::list_tree(dir.path()).unwrap();
/// assert_eq!(listing.files[0].rel, std::path::Path::new("a"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedFile {
    /// Path relative to the root.
    pub rel: PathBuf,
    /// Length at the time of the walk.
    pub len: u64,
}

/// Something the walk found and did not hash, because hashing it would follow a link out of the
/// tree or could block (FIFO) or never end (device).
///
/// ```
/// let s = checksum::Skipped { rel: "p".into(), kind: checksum::FileKind::Fifo };
/// assert_eq!(s.kind.to_string(), "FIFO");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Path relative to the root.
    pub rel: PathBuf,
    /// What it is.
    pub kind: FileKind,
}

/// The regular files under a root, in sorted order, and what was skipped or failed on the way.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let listing = checksum::list_tree(dir.path()).unwrap();
/// assert!(listing.files.is_empty() && listing.errors.is_empty());
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Listing {
    /// Regular files, sorted by relative path bytes.
    pub files: Vec<ListedFile>,
    /// Symlinks and special files, sorted; never opened.
    pub skipped: Vec<Skipped>,
    /// Directories that could not be read; the rest of the walk went on.
    pub errors: Vec<Error>,
}

/// A hashed file of a tree.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("f"), b"test\n").unwrap();
/// let report = checksum::hash_tree(dir.path(), &Default::default(), &()).unwrap();
/// assert_eq!(report.files[0].digest.to_hex(), "364b7492fe58a3947e824cae26e04823");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    /// Path relative to the root.
    pub rel: PathBuf,
    /// Bytes hashed.
    pub len: u64,
    /// The digest.
    pub digest: Digest,
}

/// The result of hashing a tree: every file that could be hashed, in sorted order, and every one
/// that could not, with its cause.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let report = checksum::hash_tree(dir.path(), &Default::default(), &()).unwrap();
/// assert!(report.is_complete());
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct TreeReport {
    /// Hashed files, sorted by relative path bytes.
    pub files: Vec<TreeEntry>,
    /// Symlinks and special files, never opened.
    pub skipped: Vec<Skipped>,
    /// Files and directories that could not be read; one failure never stops the others.
    pub errors: Vec<Error>,
}

impl TreeReport {
    /// True when every file found was hashed (skipped specials do not count as failures).
    ///
    /// ```
    /// assert!(checksum::TreeReport::default().is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Walks `root` without following symlinks and lists its regular files in sorted order (by the
/// bytes of the relative path, so the order is the same on every machine and locale).
///
/// `root` itself must be a directory; errors below it are collected, not fatal.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::create_dir(dir.path().join("b")).unwrap();
/// std::fs::write(dir.path().join("b/x"), b"").unwrap();
/// std::fs::write(dir.path().join("a"), b"").unwrap();
/// let rels: Vec<_> = checksum::list_tree(dir.path()).unwrap().files.into_iter().map(|f| f.rel).collect();
/// assert_eq!(rels, [std::path::Path::new("a"), std::path::Path::new("b/x")]);
/// ```
pub fn list_tree(root: impl AsRef<Path>) -> Result<Listing> {
    let root = root.as_ref();
    let meta =
        std::fs::metadata(root).map_err(|source| Error::Open { path: root.into(), source })?;
    if !meta.is_dir() {
        let kind = FileKind::of(&meta).unwrap_or(FileKind::Other);
        return Err(Error::NotAFile { path: root.into(), kind });
    }
    // Folders are listed by several threads at once (see `walk_tree`); a root that cannot be
    // listed is one collected error, like any folder below it.
    let walk = match walk_tree(root, Status::Lstat, None) {
        Ok(walk) => walk,
        Err(err) => Walk { errors: vec![err], ..Default::default() },
    };
    let mut listing = Listing { errors: walk.errors, ..Default::default() };
    for entry in walk.entries {
        match (entry.kind, entry.stamp) {
            (Some(FileKind::Directory), _) => {}
            (None, Some(stamp)) => {
                listing.files.push(ListedFile { rel: entry.rel, len: stamp.len })
            }
            (kind, _) => listing
                .skipped
                .push(Skipped { rel: entry.rel, kind: kind.unwrap_or(FileKind::Other) }),
        }
    }
    listing.files.sort_by(|a, b| a.rel.as_os_str().cmp(b.rel.as_os_str()));
    listing.skipped.sort_by(|a, b| a.rel.as_os_str().cmp(b.rel.as_os_str()));
    Ok(listing)
}

/// Hashes `paths` in parallel on a pool of [`reading_threads`]`(jobs)` threads; results come
/// back in the order of `paths`. Each file is its own task, so one large file never holds up a
/// queue of small ones behind it.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let a = dir.path().join("a");
/// std::fs::write(&a, b"test\n").unwrap();
/// let results = checksum::hash_files(checksum::Algo::Xxh32, &[a.clone(), dir.path().join("nope")], None).unwrap();
/// assert_eq!(results[0].as_ref().unwrap().digest.to_hex(), "67edc1eb");
/// assert!(results[1].is_err());
/// ```
pub fn hash_files(
    algo: Algo,
    paths: &[PathBuf],
    jobs: Option<usize>,
) -> Result<Vec<Result<FileDigest>>> {
    let pool = pool(jobs)?;
    let pipeline = pipeline(paths.len(), &pool);
    Ok(pool.install(|| {
        paths.par_iter().with_max_len(1).map(|path| hash_file_with(algo, path, pipeline)).collect()
    }))
}

/// Walks `root` (see [`list_tree`]) and hashes every regular file in parallel.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("f"), b"").unwrap();
/// let report = checksum::hash_tree(dir.path(), &Default::default(), &()).unwrap();
/// assert_eq!(report.files.len(), 1);
/// ```
pub fn hash_tree(
    root: impl AsRef<Path>,
    opts: &TreeOptions,
    progress: &dyn TreeProgress,
) -> Result<TreeReport> {
    let root = root.as_ref();
    let listing = list_tree(root)?;
    let pool = pool(opts.jobs)?;
    let pipeline = pipeline(listing.files.len(), &pool);
    let results: Vec<Result<TreeEntry>> = pool.install(|| {
        listing
            .files
            .par_iter()
            .with_max_len(1)
            .map(|file| {
                let fd = hash_file_with(opts.algo, &root.join(&file.rel), pipeline)?;
                progress.file_done(&file.rel, fd.len);
                Ok(TreeEntry { rel: file.rel.clone(), len: fd.len, digest: fd.digest })
            })
            .collect()
    });
    let mut report =
        TreeReport { skipped: listing.skipped, errors: listing.errors, ..Default::default() };
    for result in results {
        match result {
            Ok(entry) => report.files.push(entry),
            Err(err) => report.errors.push(err),
        }
    }
    Ok(report)
}

/// Whether a large file gets a reader thread of its own: only when fewer files than cores (and
/// than the pool's threads) leave a core idle otherwise.
fn pipeline(files: usize, pool: &rayon::ThreadPool) -> bool {
    files < pool.current_num_threads().min(cores())
}

fn pool(jobs: Option<usize>) -> Result<rayon::ThreadPool> {
    let threads = reading_threads(jobs);
    thread_pool(threads, "checksum")
        .map_err(|err| Error::ThreadPool { threads, reason: err.to_string() })
}

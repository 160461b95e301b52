//! Verified copies of a local tree to a prefix and back.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use checksum::{Algo, Digest};
use serde::Serialize;

use crate::location::check_key;
use crate::{Error, Result, Store};

/// How a transfer runs.
///
/// ```
/// let opts = bucket::TransferOptions::default();
/// assert!(opts.verify && opts.jobs == 8 && opts.cancel.is_none());
/// ```
#[derive(Clone, Debug)]
pub struct TransferOptions {
    /// Files in flight at once (requests are mostly waiting on the network).
    pub jobs: usize,
    /// Uploads: read each object back and compare its XXH128 before counting it copied.
    /// Downloads are always hashed while they are written, whatever this says.
    pub verify: bool,
    /// Once set (a Ctrl-C), no further file is started and a multipart upload stops between
    /// parts and is aborted; what was already complete stays, and [`Transfer::interrupted`]
    /// says so. A file in flight in one request finishes (whole) or fails (nothing stored).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for TransferOptions {
    fn default() -> TransferOptions {
        TransferOptions { jobs: 8, verify: true, cancel: None }
    }
}

impl TransferOptions {
    fn cancel_flag(&self) -> Option<&AtomicBool> {
        self.cancel.as_deref()
    }

    fn cancelled(&self) -> bool {
        self.cancel_flag().is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// Told of each file a transfer finishes; called from worker threads.
pub trait Progress: Send + Sync {
    /// A file was copied or skipped (`len` bytes).
    fn file_done(&self, _rel: &str, _len: u64) {}
}

impl Progress for () {}

/// One file that was not copied, and why.
#[derive(Debug, Serialize)]
pub struct Failed {
    /// Its name relative to the tree or prefix (escaped like every name in reports).
    pub path: String,
    /// The cause.
    #[serde(serialize_with = "serialize_error")]
    pub error: Error,
}

fn serialize_error<S: serde::Serializer>(
    err: &Error,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    s.serialize_str(&text)
}

/// What a transfer did. Named as the local `copy`'s report names the same things.
#[derive(Debug, Default, Serialize)]
pub struct Transfer {
    /// Files copied (and verified).
    pub copied: u64,
    /// Their bytes.
    pub copied_bytes: u64,
    /// Files already there with the same XXH128.
    pub skipped: u64,
    /// Their bytes.
    pub skipped_bytes: u64,
    /// Files that failed; the others went on.
    pub failed: Vec<Failed>,
    /// Symlinks and special files of the source, never read (object storage has neither).
    pub not_files: Vec<String>,
    /// Downloads of objects without a recorded XXH128 (not written by this toolkit): checked
    /// by size only.
    pub size_checked_only: Vec<String>,
    /// Whether uploads were read back (downloads are always hashed).
    pub verified: bool,
    /// Whether the cancel flag stopped the transfer early.
    pub interrupted: bool,
    /// Files neither copied, skipped nor failed, because the transfer was cancelled first.
    pub not_attempted: u64,
    /// Wall time.
    #[serde(rename = "elapsed_secs", serialize_with = "serialize_secs")]
    pub elapsed: Duration,
}

fn serialize_secs<S: serde::Serializer>(
    d: &Duration,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Transfer {
    /// True when nothing failed and nothing was left out by a cancel.
    pub fn is_success(&self) -> bool {
        self.failed.is_empty() && !self.interrupted
    }
}

/// Runs `work` on every item with `opts.jobs` threads, gathering into one [`Transfer`]; once
/// the cancel flag is set no item is started, and those left are counted as not attempted.
fn run_parallel<T: Sync>(
    items: &[T],
    opts: &TransferOptions,
    work: impl Fn(&T, &Mutex<Transfer>) + Sync,
) -> Transfer {
    let report = Mutex::new(Transfer::default());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                while !opts.cancelled()
                    && let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    work(item, &report);
                }
            });
        }
    });
    let mut report = report.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    if opts.cancelled() {
        report.interrupted = true;
        let done =
            report.copied + report.skipped + report.failed.len() as u64 + report.not_attempted;
        report.not_attempted += (items.len() as u64).saturating_sub(done);
    }
    report
}

fn record(report: &Mutex<Transfer>, f: impl FnOnce(&mut Transfer)) {
    let mut guard = report.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut guard);
}

/// The key name of a local relative path: UTF-8, no control characters.
fn key_of(rel: &Path) -> Result<&str> {
    let name = || names::escape(rel).into_owned();
    let text = std::str::from_utf8(rel.as_os_str().as_bytes()).map_err(|_| Error::Unstorable {
        name: name(),
        reason: "not UTF-8, which S3 keys must be".to_owned(),
    })?;
    check_key(text).map_err(|reason| Error::Unstorable { name: name(), reason })?;
    Ok(text)
}

/// Copies every regular file under `src` to the store, as `prefix/<relative path>`, each with
/// its XXH128 in the object's metadata.
///
/// Per file: hashed; skipped if the object has the same size and recorded XXH128; else uploaded
/// (the bytes sent hashed again, so a file changed meanwhile is not published) and, with
/// [`TransferOptions::verify`], read back and compared. An object is written by one request (or
/// one completed multipart upload): it is the previous version or the complete new one, never
/// part of one. Symlinks and special files are listed in [`Transfer::not_files`], never read.
pub fn upload(
    src: &Path,
    store: &Store,
    opts: &TransferOptions,
    progress: &dyn Progress,
) -> Result<Transfer> {
    let started = Instant::now();
    let listing = list_source(src)?;
    let remote: std::collections::HashMap<String, u64> =
        store.list("")?.into_iter().map(|l| (l.rel, l.size)).collect();
    let mut report = run_parallel(&listing.files, opts, |file, report| {
        let rel_shown = names::escape(&file.rel).into_owned();
        let result = (|| -> Result<(bool, u64)> {
            let key = key_of(&file.rel)?;
            let path = src.join(&file.rel);
            let hashed = checksum::hash_file(Algo::Xxh128, &path).map_err(|e| Error::Local {
                action: "cannot read",
                path: path.clone(),
                source: std::io::Error::new(e.io_kind(), e.to_string()),
            })?;
            if remote.get(key) == Some(&hashed.len)
                && let Some(obj) = store.head(key)?
                && obj.size == hashed.len
                && obj.xxh128 == Some(hashed.digest)
            {
                return Ok((false, hashed.len));
            }
            store.upload_file(key, &path, hashed.digest, opts.cancel_flag())?;
            if opts.verify {
                read_back(store, key, hashed.digest, hashed.len)?;
            }
            Ok((true, hashed.len))
        })();
        match result {
            Ok((copied, len)) => {
                progress.file_done(&rel_shown, len);
                record(report, |r| match copied {
                    true => (r.copied, r.copied_bytes) = (r.copied + 1, r.copied_bytes + len),
                    false => (r.skipped, r.skipped_bytes) = (r.skipped + 1, r.skipped_bytes + len),
                });
            }
            // Cut short by the cancel flag, its upload aborted: not attempted, not failed.
            Err(Error::Interrupted { .. }) => record(report, |r| r.not_attempted += 1),
            Err(error) => record(report, |r| r.failed.push(Failed { path: rel_shown, error })),
        }
    });
    report.not_files = listing.skipped.iter().map(|s| names::escape(&s.rel).into_owned()).collect();
    report.failed.extend(listing_errors(src, listing.errors));
    report.failed.sort_by(|a, b| a.path.cmp(&b.path));
    report.verified = opts.verify;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// What a transfer would do with one file, decided without reading any file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Nothing of that size is on the other side: it would be copied.
    Copy,
    /// Something of the same size is there: it would be hashed and skipped if its XXH128
    /// matches, copied otherwise.
    Compare,
}

/// One file of a [`Plan`].
#[derive(Debug, Serialize)]
pub struct Planned {
    /// Its name relative to the tree or prefix (escaped like every name in reports).
    pub path: String,
    /// What would be done.
    pub action: Action,
    /// Its length.
    pub len: u64,
}

/// A dry run of [`upload`] or [`download`]: what each file would get, from the listings of both
/// sides only (nothing read, nothing written).
#[derive(Debug, Default, Serialize)]
pub struct Plan {
    /// Every file that would be copied or compared, in name order.
    pub entries: Vec<Planned>,
    /// Files a real run would fail on (names the other side cannot hold, folders that could not
    /// be listed).
    pub problems: Vec<Failed>,
    /// Uploads: symlinks and special files of the source, which a real run would not read.
    pub not_files: Vec<String>,
}

/// What [`upload`] of `src` to the store would do, without reading a file or writing an object.
pub fn plan_upload(src: &Path, store: &Store) -> Result<Plan> {
    let listing = list_source(src)?;
    let remote: std::collections::HashMap<String, u64> =
        store.list("")?.into_iter().map(|l| (l.rel, l.size)).collect();
    let mut plan = Plan::default();
    for file in &listing.files {
        let path = names::escape(&file.rel).into_owned();
        match key_of(&file.rel) {
            Ok(key) => plan.entries.push(Planned {
                path,
                action: if remote.get(key) == Some(&file.len) {
                    Action::Compare
                } else {
                    Action::Copy
                },
                len: file.len,
            }),
            Err(error) => plan.problems.push(Failed { path, error }),
        }
    }
    plan.not_files = listing.skipped.iter().map(|s| names::escape(&s.rel).into_owned()).collect();
    plan.problems.extend(listing_errors(src, listing.errors));
    Ok(plan)
}

/// What [`download`] into `dst` would do, without reading an object or writing a file.
pub fn plan_download(store: &Store, dst: &Path) -> Result<Plan> {
    let mut plan = Plan::default();
    for object in downloadable(store)? {
        match check_key(&object.rel) {
            Ok(()) => {
                let local = std::fs::symlink_metadata(dst.join(&object.rel));
                let same = local.is_ok_and(|m| m.is_file() && m.len() == object.size);
                plan.entries.push(Planned {
                    action: if same { Action::Compare } else { Action::Copy },
                    path: object.rel,
                    len: object.size,
                });
            }
            Err(reason) => plan.problems.push(Failed {
                error: Error::Unstorable {
                    name: store.url(&object.rel),
                    reason: format!("cannot be a local path: {reason}"),
                },
                path: object.rel,
            }),
        }
    }
    Ok(plan)
}

/// The regular files, links and unreadable folders under `src`.
fn list_source(src: &Path) -> Result<checksum::Listing> {
    checksum::list_tree(src).map_err(|e| Error::Local {
        action: "cannot list",
        path: src.to_owned(),
        source: std::io::Error::new(e.io_kind(), e.to_string()),
    })
}

/// Each folder under `src` that could not be listed, as a failure.
fn listing_errors(src: &Path, errors: Vec<checksum::Error>) -> impl Iterator<Item = Failed> + '_ {
    errors.into_iter().map(move |error| Failed {
        path: names::escape(src).into_owned(),
        error: Error::Local {
            action: "cannot list part of",
            path: src.to_owned(),
            source: std::io::Error::new(error.io_kind(), error.to_string()),
        },
    })
}

/// The objects under the store's prefix a download copies: not the store check's probes, not
/// folder markers.
fn downloadable(store: &Store) -> Result<Vec<crate::Listed>> {
    Ok(store
        .list("")?
        .into_iter()
        .filter(|o| !o.rel.starts_with(crate::check::PROBE_DIR) && !o.rel.ends_with('/'))
        .collect())
}

/// Reads the object back and compares it with what was sent. Another complete version (its
/// content matching its own recorded XXH128) means a concurrent writer replaced ours, as the
/// later of two renames wins locally: not an error. Anything else (content not matching its
/// metadata, a wrong length) is corrupt: it is deleted and the error names it.
pub(crate) fn read_back(store: &Store, key: &str, digest: Digest, len: u64) -> Result<()> {
    let got = store.download(key, &mut std::io::sink())?;
    let what = match got {
        Some((d, n, obj)) if d == digest && n == len && obj.xxh128 == Some(digest) => return Ok(()),
        Some((d, n, obj)) if obj.xxh128 == Some(d) && n == obj.size => return Ok(()),
        Some((d, n, obj)) => format!(
            "read back {n} bytes with xxh128 {d}, its metadata says {}; sent {len} bytes with {digest}",
            obj.xxh128.map_or_else(|| "none".to_owned(), |d| d.to_hex())
        ),
        None => "vanished right after its upload".to_owned(),
    };
    let _ = store.delete(key);
    Err(Error::Mismatch { url: store.url(key), what })
}

/// Copies every object under the store's prefix into `dst` (created if missing), as
/// `dst/<name relative to the prefix>`.
///
/// Per object: skipped if the local file has the same size and the XXH128 recorded in the
/// object's metadata; else streamed into an atomic-io temp beside its destination while hashed,
/// compared with the recorded XXH128 and size, and only then synced and renamed into place
/// (durability `full`). A mismatch, a dropped connection or any error leaves the destination as
/// it was. Objects without a recorded XXH128 are checked by size and listed in
/// [`Transfer::size_checked_only`]. Names that cannot be local paths (a `..` segment, an empty
/// segment) fail without writing anything.
pub fn download(
    store: &Store,
    dst: &Path,
    opts: &TransferOptions,
    progress: &dyn Progress,
) -> Result<Transfer> {
    let started = Instant::now();
    let objects = downloadable(store)?;
    std::fs::create_dir_all(dst).map_err(|source| Error::Local {
        action: "cannot create",
        path: dst.to_owned(),
        source,
    })?;
    let mut report = run_parallel(&objects, opts, |object, report| {
        let result = (|| -> Result<(bool, u64, bool)> {
            check_key(&object.rel).map_err(|reason| Error::Unstorable {
                name: store.url(&object.rel),
                reason: format!("cannot be a local path: {reason}"),
            })?;
            let target: PathBuf = dst.join(&object.rel);
            download_one(store, &object.rel, &target)
        })();
        match result {
            Ok((copied, len, checked)) => {
                progress.file_done(&object.rel, len);
                record(report, |r| {
                    match copied {
                        true => (r.copied, r.copied_bytes) = (r.copied + 1, r.copied_bytes + len),
                        false => {
                            (r.skipped, r.skipped_bytes) = (r.skipped + 1, r.skipped_bytes + len)
                        }
                    }
                    if !checked {
                        r.size_checked_only.push(object.rel.clone());
                    }
                });
            }
            Err(error) => {
                record(report, |r| r.failed.push(Failed { path: object.rel.clone(), error }))
            }
        }
    });
    report.failed.sort_by(|a, b| a.path.cmp(&b.path));
    report.size_checked_only.sort();
    report.verified = true;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// (copied, length, verified by hash).
fn download_one(store: &Store, rel: &str, target: &Path) -> Result<(bool, u64, bool)> {
    if let Ok(meta) = std::fs::symlink_metadata(target)
        && meta.is_file()
        && let Some(obj) = store.head(rel)?
        && let (Some(want), true) = (obj.xxh128, obj.size == meta.len())
        && checksum::hash_file(Algo::Xxh128, target).is_ok_and(|h| h.digest == want)
    {
        return Ok((false, obj.size, true));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Local {
            action: "cannot create",
            path: parent.to_owned(),
            source,
        })?;
    }
    let mut file = atomic_io::AtomicFile::create(target, &atomic_io::WriteOptions::default())?;
    let got = store.download(rel, file.as_file_mut())?;
    let Some((digest, len, obj)) = got else {
        return Err(Error::Store {
            action: "cannot download",
            url: store.url(rel),
            cause: "it vanished after it was listed".to_owned(),
        });
    };
    if len != obj.size {
        return Err(Error::Mismatch {
            url: store.url(rel),
            what: format!("{len} bytes arrived of {}; nothing was written", obj.size),
        });
    }
    if let Some(want) = obj.xxh128
        && want != digest
    {
        return Err(Error::Mismatch {
            url: store.url(rel),
            what: format!("expected xxh128 {want}, downloaded {digest}; nothing was written"),
        });
    }
    // commit: the temp is synced before its rename and the directory after (Durability::Full),
    // so the file reported copied survives a power cut.
    file.commit()?;
    Ok((true, len, obj.xxh128.is_some()))
}

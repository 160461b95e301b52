//! [`fetch_once`]: the model-cache story, solved: one download among all the processes that want
//! the file, checked against its known digest before anyone sees it.

use atomic_io::AtomicFile;
use checksum::{Digest, hash_file};
use dir_lock::{OnceOptions, OnceOutcome, WaitProgress, produce_once};
use std::path::Path;

use crate::Result;

/// Makes `target` exist with the digest `expected`, fetched by exactly one of the processes that
/// ask at the same time: [`dir_lock::produce_once`] with a verification that hashes the file
/// ([`checksum::hash_file`], in `expected`'s algorithm, usually XXH3-128).
///
/// - A cached `target` with the right digest is reused without a lock.
/// - Waiters block on `TARGET.lock` (or give up after `opts.timeout`, naming the holder; the lock
///   is never broken) and reuse the fetched file.
/// - `fetch` writes into a temp beside the target; the temp is synced and hashed, and renamed onto
///   `target` only if its digest is `expected`. Otherwise: [`dir_lock::Error::Verify`], whose
///   message names the target and whose `source` is the [`CheckError`] naming both digests; the
///   target is untouched.
/// - `fetch` returns any error type; it comes back, boxed, as the `source` of
///   [`dir_lock::Error::Produce`] (downcast it to get your type back).
/// - A cached file with the wrong digest (a corrupt cache) is fetched again once and reported as
///   [`OnceOutcome::Rebuilt`], never in an endless fetch-verify-delete loop.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use std::io::Write;
/// use toolkit::prelude::*;
///
/// let weights = b"pretend these are model weights";
/// let expected = hash_bytes(Algo::Xxh128, weights);
/// let target = dir.join("model.bin");
/// let opts = OnceOptions::default();
/// let outcome = fetch_once(&target, expected, &opts, |f| f.write_all(weights), &())?;
/// assert!(outcome.produced());
/// // Every later caller (in this process or any other) reuses it without fetching.
/// let again = fetch_once(&target, expected, &opts, |_| -> std::io::Result<()> {
///     unreachable!("already cached")
/// }, &())?;
/// assert_eq!(again, OnceOutcome::Reused);
///
/// // A download that does not match its digest never becomes the target.
/// let other = dir.join("other.bin");
/// let err = fetch_once(&other, expected, &opts, |f| f.write_all(b"truncated"), &()).unwrap_err();
/// let toolkit::Error::DirLock(toolkit::dir_lock::Error::Verify { source, .. }) = &err else {
///     panic!("{err}")
/// };
/// let check = source.downcast_ref::<toolkit::CheckError>().expect("check_digest's error");
/// assert!(matches!(check, toolkit::CheckError::Mismatch { .. }));
/// assert!(!other.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn fetch_once<F, E>(
    target: impl AsRef<Path>,
    expected: Digest,
    opts: &OnceOptions,
    fetch: F,
    progress: &dyn WaitProgress,
) -> Result<OnceOutcome>
where
    F: FnOnce(&mut AtomicFile) -> std::result::Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Ok(produce_once(target, opts, |path| check_digest(path, expected), fetch, progress)?)
}

/// Why [`check_digest`] rejected a file: the verification error [`fetch_once`] carries as the
/// `source` of [`dir_lock::Error::Verify`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The file could not be hashed (checksum's error names the path and keeps its cause).
    #[error(transparent)]
    Hash(#[from] checksum::Error),
    /// The file hashed to another digest.
    #[error("{} is {found}, expected {expected}", expected.algo().tag().to_lowercase())]
    Mismatch {
        /// What the file hashed to.
        found: Digest,
        /// What it should have hashed to.
        expected: Digest,
    },
}

/// Whether the file at `path` hashes to `expected` (in `expected`'s algorithm): the verifier
/// [`fetch_once`] hands to [`dir_lock::produce_once`], for callers that build their own. A wrong
/// digest is [`CheckError::Mismatch`], which says both: `xxh128 is <found>, expected <expected>`.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use toolkit::prelude::*;
/// use toolkit::CheckError;
///
/// std::fs::write(dir.join("f"), b"abc")?;
/// let right = hash_bytes(Algo::Xxh128, b"abc");
/// assert!(toolkit::check_digest(&dir.join("f"), right).is_ok());
/// let wrong = hash_bytes(Algo::Xxh128, b"abd");
/// let err = toolkit::check_digest(&dir.join("f"), wrong).unwrap_err();
/// assert!(matches!(err, CheckError::Mismatch { found, .. } if found == right));
/// assert_eq!(err.to_string(), format!("xxh128 is {right}, expected {wrong}"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_digest(path: &Path, expected: Digest) -> std::result::Result<(), CheckError> {
    let found = hash_file(expected.algo(), path)?.digest;
    if found == expected { Ok(()) } else { Err(CheckError::Mismatch { found, expected }) }
}

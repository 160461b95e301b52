//! [`fetch_once`]: the model-cache story, solved: one download among all the processes that want
//! the file, checked against its known digest before anyone sees it.

use atomic_io::AtomicFile;
use checksum::{Digest, hash_file};
use dir_lock::{OnceOptions, OnceOutcome, produce_once};
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
///   message names the target and both digests, and the target is untouched.
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
/// let outcome = fetch_once(&target, expected, &opts, |f| f.write_all(weights))?;
/// assert!(outcome.produced());
/// // Every later caller (in this process or any other) reuses it without fetching.
/// let again = fetch_once(&target, expected, &opts, |_| -> std::io::Result<()> {
///     unreachable!("already cached")
/// })?;
/// assert_eq!(again, OnceOutcome::Reused);
///
/// // A download that does not match its digest never becomes the target.
/// let other = dir.join("other.bin");
/// let err = fetch_once(&other, expected, &opts, |f| f.write_all(b"truncated")).unwrap_err();
/// assert!(err.to_string().contains(&format!("expected {expected}")), "{err}");
/// assert!(!other.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn fetch_once<F, E>(
    target: impl AsRef<Path>,
    expected: Digest,
    opts: &OnceOptions<'_>,
    fetch: F,
) -> Result<OnceOutcome>
where
    F: FnOnce(&mut AtomicFile) -> std::result::Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Ok(produce_once(target, opts, |path| check_digest(path, expected), fetch)?)
}

/// Whether the file at `path` hashes to `expected` (in `expected`'s algorithm): the verifier
/// [`fetch_once`] hands to [`dir_lock::produce_once`], for callers that build their own. The error
/// says both digests: `xxh128 is <found>, expected <expected>`.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use toolkit::prelude::*;
///
/// std::fs::write(dir.join("f"), b"abc")?;
/// let right = hash_bytes(Algo::Xxh128, b"abc");
/// assert_eq!(toolkit::check_digest(&dir.join("f"), right), Ok(()));
/// let wrong = hash_bytes(Algo::Xxh128, b"abd");
/// let err = toolkit::check_digest(&dir.join("f"), wrong).unwrap_err();
/// assert_eq!(err, format!("xxh128 is {right}, expected {wrong}"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_digest(path: &Path, expected: Digest) -> std::result::Result<(), String> {
    let found = hash_file(expected.algo(), path)
        .map_err(|e| {
            // The message and its cause (messages never repeat their cause).
            let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
            format!("{e}{cause}")
        })?
        .digest;
    if found == expected {
        Ok(())
    } else {
        let algo = expected.algo().tag().to_lowercase();
        Err(format!("{algo} is {found}, expected {expected}"))
    }
}

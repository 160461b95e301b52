//! [`produce_once`]: many processes ask for one artifact; one produces it, the others reuse it.

use std::fmt;
use std::time::Duration;

use atomic_io::{AtomicFile, WriteOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::holder::{Holder, Holders};
use crate::lock::{LockFile, LockKind, LockOptions, Wait, WaitProgress};

/// How [`produce_once`] waits and writes.
///
/// ```
/// use std::time::Duration;
/// let mut opts = dir_lock::OnceOptions::default();
/// opts.timeout = Some(Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnceOptions {
    /// Give up waiting for another producer after this long ([`Error::Timeout`]); `None` waits.
    pub timeout: Option<Duration>,
    /// How the artifact is written (durability, mode).
    pub write: WriteOptions,
}

/// What [`produce_once`] did.
///
/// ```
/// let o = dir_lock::OnceOutcome::Reused;
/// assert!(!o.produced());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnceOutcome {
    /// The target existed and verified; no lock was needed.
    Reused,
    /// Another process was producing it; after waiting, its result verified and was reused.
    ReusedAfterWait {
        /// Who held the lock when this process started waiting.
        waited_for: Vec<Holder>,
    },
    /// This process produced it.
    Produced {
        /// `Some` if another holder had to be waited for first (it ended without a valid result).
        waited_for: Option<Vec<Holder>>,
    },
    /// The target existed but failed verification; this process produced it anew.
    Rebuilt {
        /// Why the old one was rejected: the verifier's error with its causes, `: `-separated (an
        /// outcome is a value to print and compare, so it keeps the words, not the error).
        reason: String,
    },
}

impl OnceOutcome {
    /// Whether this call produced the artifact.
    ///
    /// ```
    /// assert!(dir_lock::OnceOutcome::Produced { waited_for: None }.produced());
    /// ```
    pub fn produced(&self) -> bool {
        matches!(self, OnceOutcome::Produced { .. } | OnceOutcome::Rebuilt { .. })
    }
}

impl OnceOutcome {
    /// One line a person reads, naming `target` (escaped with [`names::shown`]) as `xtask once`
    /// prints it after `once: `. The [`Display`](fmt::Display) of the outcome alone says "the
    /// target" instead.
    ///
    /// ```
    /// use std::ffi::OsStr;
    /// use std::os::unix::ffi::OsStrExt;
    /// use dir_lock::OnceOutcome;
    ///
    /// let target = std::path::Path::new(OsStr::from_bytes(b"model-\xe9.bin"));
    /// assert_eq!(OnceOutcome::Reused.describe(target).to_string(), r"reused model-\xe9.bin");
    /// assert_eq!(OnceOutcome::Produced { waited_for: None }.to_string(), "produced the target");
    /// ```
    pub fn describe<'a>(&'a self, target: &'a Path) -> impl fmt::Display + 'a {
        Described { outcome: self, target: Some(target) }
    }
}

impl fmt::Display for OnceOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Described { outcome: self, target: None }.fmt(f)
    }
}

/// The target named in an outcome's line: escaped, or "the target" when not known.
struct Target<'a>(Option<&'a Path>);

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => names::shown(path).fmt(f),
            None => f.write_str("the target"),
        }
    }
}

/// An outcome with the target it is about (`None`: "the target").
struct Described<'a> {
    outcome: &'a OnceOutcome,
    target: Option<&'a Path>,
}

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = Target(self.target);
        match self.outcome {
            OnceOutcome::Reused => write!(f, "reused {target}"),
            OnceOutcome::ReusedAfterWait { waited_for } => {
                write!(f, "waited for the producer{}; reused {target}", Holders(waited_for.clone()))
            }
            OnceOutcome::Produced { waited_for: None } => write!(f, "produced {target}"),
            OnceOutcome::Produced { waited_for: Some(w) } => write!(
                f,
                "waited for the lock held{}; it left no valid result; produced {target}",
                Holders(w.clone())
            ),
            OnceOutcome::Rebuilt { reason } => {
                write!(f, "{target} failed verification ({reason}); rebuilt it")
            }
        }
    }
}

/// Makes sure `target` exists and passes `verify`, producing it with `produce` at most once among
/// all processes that ask at the same time.
///
/// 1. Fast path: if `target` exists and verifies, [`OnceOutcome::Reused`], without any lock.
/// 2. Otherwise take the exclusive sidecar lock `TARGET.lock` (waiting, or up to
///    `opts.timeout`), and check again: another producer may have finished meanwhile.
/// 3. Still missing or invalid: `produce` writes into an [`AtomicFile`] beside the target; the temp
///    is synced and `verify` is run on it by path; only then is it renamed onto the target.
///
/// `progress` is told while another producer holds the lock (`&()` tells nothing). Both
/// callbacks return any error type (`String`, `io::Error`, `anyhow::Error`, your own enum):
/// it is kept, boxed, as the `source` of [`Error::Produce`] or [`Error::Verify`], so the caller
/// can downcast it back. A target that fails verification is rebuilt once
/// ([`OnceOutcome::Rebuilt`]); a freshly produced file that fails is [`Error::Verify`], never
/// retried. A failing or killed producer leaves the
/// target untouched and no visible partial file; the next waiter takes over. Correctness does not
/// rest on the lock: each producer verifies its own temp before renaming it, so a file system
/// that fakes `flock` costs duplicate work, never a corrupt target. The sidecar lock file is never
/// deleted.
///
/// On a network file system the server may take the lock away from a host it evicts (CephFS,
/// NFS after a lease expires). Before renaming, and after any failure, the lock is checked:
/// EIO, ESTALE, ENOTCONN or ESHUTDOWN from it or from the output is [`Error::LockLost`], and
/// nothing is published.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use std::io::Write;
/// use dir_lock::{produce_once, OnceOptions, OnceOutcome};
///
/// let target = dir.join("model.bin");
/// let non_empty = |p: &std::path::Path| match std::fs::metadata(p) {
///     Ok(m) if m.len() > 0 => Ok(()),
///     Ok(_) => Err(std::io::Error::other("empty")),
///     Err(e) => Err(e),
/// };
/// let opts = OnceOptions::default();
/// let made = produce_once(&target, &opts, non_empty, |f| f.write_all(b"weights"), &())?;
/// assert!(matches!(made, OnceOutcome::Produced { .. }));
/// let again = produce_once(&target, &opts, non_empty, |_| -> std::io::Result<()> {
///     unreachable!("not produced twice")
/// }, &())?;
/// assert_eq!(again, OnceOutcome::Reused);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn produce_once<V, VE, P, PE>(
    target: impl AsRef<Path>,
    opts: &OnceOptions,
    verify: V,
    produce: P,
    progress: &dyn WaitProgress,
) -> Result<OnceOutcome>
where
    V: Fn(&Path) -> std::result::Result<(), VE>,
    VE: Into<Box<dyn std::error::Error + Send + Sync>>,
    P: FnOnce(&mut AtomicFile) -> std::result::Result<(), PE>,
    PE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let target = target.as_ref();
    if target.is_file() && verify(target).is_ok() {
        return Ok(OnceOutcome::Reused);
    }
    let lock_path = sidecar(target)?;
    let wait = match opts.timeout {
        Some(limit) => Wait::Timeout(limit),
        None => Wait::Block,
    };
    let lock =
        LockFile::acquire(&lock_path, &LockOptions::new(LockKind::Exclusive, wait), progress)?;
    let waited_for = lock.waited_for().map(<[Holder]>::to_vec);

    let mut stale = None;
    if target.is_file() {
        match verify(target) {
            Ok(()) => {
                return Ok(match waited_for {
                    Some(waited_for) => OnceOutcome::ReusedAfterWait { waited_for },
                    None => OnceOutcome::Reused,
                });
            }
            Err(reason) => stale = Some(with_causes(&*reason.into())),
        }
    }

    // Any failure from here on is first asked whether it means the lock was lost (the file
    // system failed under the lock or the output, e.g. this host was evicted by a CephFS or NFS
    // server): then another host may be producing, and the error says so.
    let lost = |err: Error| lock.lost(&err).unwrap_or(err);
    let mut file = AtomicFile::create(target, &opts.write).map_err(|e| lost(e.into()))?;
    // On error `file` is dropped here, which removes the temp.
    produce(&mut file)
        .map_err(|e| lost(Error::Produce { target: target.to_owned(), source: e.into() }))?;
    let staged = file.stage().map_err(|e| lost(e.into()))?;
    if let Err(reason) = verify(staged.temp_path()) {
        staged.discard().map_err(|e| lost(e.into()))?;
        return Err(lost(Error::Verify { target: target.to_owned(), source: reason.into() }));
    }
    // The last moment to find the lock gone before the artifact becomes visible. A host evicted
    // after this check is fenced by the server (its rename fails), which `lost` reports too.
    if let Err(err) = lock.check() {
        let _ = staged.discard(); // best effort: the file system under it has failed
        return Err(err);
    }
    staged.commit().map_err(|e| lost(e.into()))?;
    drop(lock);
    Ok(match stale {
        Some(reason) => OnceOutcome::Rebuilt { reason },
        None => OnceOutcome::Produced { waited_for },
    })
}

/// An error's message followed by each of its causes, `: `-separated: the one line
/// [`OnceOutcome::Rebuilt`] keeps of why the old target was rejected.
fn with_causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        line.push_str(": ");
        line.push_str(&next.to_string());
        cause = next.source();
    }
    line
}

/// `TARGET.lock`, beside the target.
///
/// ```
/// use std::path::Path;
/// assert_eq!(dir_lock::sidecar_lock_path("a/model.bin").unwrap(), Path::new("a/model.bin.lock"));
/// ```
pub fn sidecar_lock_path(target: impl AsRef<Path>) -> Result<PathBuf> {
    sidecar(target.as_ref())
}

fn sidecar(target: &Path) -> Result<PathBuf> {
    let name =
        target.file_name().ok_or_else(|| Error::InvalidTarget { path: target.to_owned() })?;
    let mut lock = name.to_owned();
    lock.push(".lock");
    Ok(target.with_file_name(lock))
}

#[cfg(test)]
mod display_tests {
    use super::*;
    use crate::holder::HolderSource;

    fn holder() -> Holder {
        Holder {
            pid: Some(42),
            command: Some("fetch".into()),
            host: None,
            since: None,
            exclusive: Some(true),
            source: HolderSource::ProcLocks,
        }
    }

    #[test]
    fn each_outcome_reads_as_the_cli_line_naming_the_target_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let target = Path::new(std::ffi::OsStr::from_bytes(b"w\xe9.bin"));
        let lines = [
            (OnceOutcome::Reused, r"reused w\xe9.bin"),
            (
                OnceOutcome::ReusedAfterWait { waited_for: vec![holder()] },
                r"waited for the producer by pid 42 (fetch); reused w\xe9.bin",
            ),
            (OnceOutcome::Produced { waited_for: None }, r"produced w\xe9.bin"),
            (
                OnceOutcome::Produced { waited_for: Some(vec![]) },
                r"waited for the lock held by an unknown process; it left no valid result; produced w\xe9.bin",
            ),
            (
                OnceOutcome::Rebuilt { reason: "digest mismatch".into() },
                r"w\xe9.bin failed verification (digest mismatch); rebuilt it",
            ),
        ];
        for (outcome, line) in lines {
            assert_eq!(outcome.describe(target).to_string(), line);
        }
        assert_eq!(OnceOutcome::Reused.to_string(), "reused the target");
    }
}

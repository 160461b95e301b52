//! Finding the newest snapshot under a root that still verifies: the way back after a bad run.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::path::serialize_path;
use crate::{Error, Problem, Report, Result, SnapshotProgress, VerifyOptions, verify};

/// How to choose. `Default`: a full verify of each candidate, extra files reported.
///
/// ```
/// use snapshot_verify::{LatestOptions, Mode};
/// let mut quick = LatestOptions::default();
/// quick.verify.mode = Mode::Quick;
/// assert!(!quick.verify.allow_extra);
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct LatestOptions {
    /// How each candidate is verified.
    pub verify: VerifyOptions,
}

/// The newest snapshot that verifies, and the newer ones that did not.
///
/// ```
/// let latest = snapshot_verify::Latest::default();
/// assert!(latest.found.is_none() && latest.skipped.is_empty());
/// ```
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct Latest {
    /// The snapshot chosen (`ROOT/<name>`), if any verifies.
    #[serde(serialize_with = "serialize_opt_path")]
    pub found: Option<PathBuf>,
    /// Its verification report.
    pub report: Option<Report>,
    /// Every snapshot newer than the one chosen (all of them if none verifies), newest first,
    /// with the reason it was passed over. Older snapshots are not verified.
    pub skipped: Vec<Skipped>,
}

/// A snapshot passed over.
///
/// ```
/// let s = snapshot_verify::Skipped { path: "root/step-9".into(), reason: snapshot_verify::SkipReason::NotSealed };
/// assert_eq!(s.reason.to_string(), "not sealed (no manifest.xxh128)");
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// The snapshot directory.
    #[serde(serialize_with = "serialize_path")]
    pub path: PathBuf,
    /// Why it was passed over.
    #[serde(flatten)]
    pub reason: SkipReason,
}

/// Why a snapshot was passed over. In JSON, `"reason"` holds the snake-case name.
///
/// ```
/// let reason = snapshot_verify::SkipReason::Error { message: "invalid manifest".into() };
/// assert_eq!(reason.to_string(), "invalid manifest");
/// ```
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipReason {
    /// No manifest: never sealed, or still being written.
    NotSealed,
    /// Verification found problems.
    Problems {
        /// All of them.
        problems: Vec<Problem>,
    },
    /// Verification could not run (an invalid manifest, an unreadable directory).
    Error {
        /// The error.
        message: String,
    },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NotSealed => write!(f, "not sealed (no {})", crate::MANIFEST),
            SkipReason::Problems { problems } if problems.len() == 1 => f.write_str("1 problem"),
            SkipReason::Problems { problems } => write!(f, "{} problems", problems.len()),
            SkipReason::Error { message } => f.write_str(message),
        }
    }
}

/// Finds the newest snapshot directory directly under `root` that verifies.
///
/// **Newest** means the greatest directory name in natural order: runs of digits compare as
/// numbers, the rest byte by byte ([`compare_names`]), so `step-10` is newer than `step-9` and
/// ISO-8601 timestamps sort by time. Names, not modification times, because copies, restores and
/// `touch` change mtimes, while a snapshot's name is what its writer chose to mean its order.
///
/// Candidates are the real subdirectories of `root` whose names do not start with `.` (hidden
/// directories are where snapshots are staged before they are renamed into place); symlinks are
/// not followed (a `current -> step-5` link would otherwise count a snapshot twice) and files are
/// ignored. From the newest down, each is verified until one passes; the newer ones that failed
/// are listed in [`Latest::skipped`] with the reason. `Ok` with `found: None` when none verifies.
/// `progress` is told which snapshot is being verified and about each file hashed.
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let root = tmp.path();
/// use snapshot_verify::{latest, seal};
/// for step in ["step-9", "step-10"] {
///     std::fs::create_dir(root.join(step)).unwrap();
///     std::fs::write(root.join(step).join("w.bin"), step).unwrap();
///     seal(root.join(step), &Default::default(), &()).unwrap();
/// }
/// std::fs::write(root.join("step-10/w.bin"), b"step-1X").unwrap(); // a bad run
/// let found = latest(root, &Default::default(), &()).unwrap();
/// assert_eq!(found.found.unwrap(), root.join("step-9"));
/// assert_eq!(found.skipped[0].path, root.join("step-10"));
/// ```
pub fn latest(
    root: impl AsRef<Path>,
    opts: &LatestOptions,
    progress: &dyn SnapshotProgress,
) -> Result<Latest> {
    let root = root.as_ref();
    let mut names = candidates(root)?;
    names.sort_by(|a, b| compare_names(b, a));
    let mut result = Latest::default();
    for name in names {
        let path = root.join(&name);
        progress.snapshot(&path);
        let reason = match verify(&path, &opts.verify, progress) {
            Ok(report) if report.is_ok() => {
                result.found = Some(path);
                result.report = Some(report);
                break;
            }
            Ok(report) => SkipReason::Problems { problems: report.problems },
            Err(Error::NotSealed { .. }) => SkipReason::NotSealed,
            Err(err @ Error::ThreadPool { .. }) => return Err(err),
            Err(err) => SkipReason::Error { message: crate::error::with_causes(&err) },
        };
        result.skipped.push(Skipped { path, reason });
    }
    Ok(result)
}

/// The names of the candidate snapshots under `root`.
fn candidates(root: &Path) -> Result<Vec<std::ffi::OsString>> {
    let open_err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotADirectory {
            Error::NotADirectory { path: root.into() }
        } else {
            Error::Open { path: root.into(), source }
        }
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root).map_err(open_err)? {
        let entry = entry.map_err(open_err)?;
        let name = entry.file_name();
        // `file_type` does not follow symlinks.
        let is_dir = entry.file_type().map_err(open_err)?.is_dir();
        if is_dir && !name.as_bytes().starts_with(b".") {
            names.push(name);
        }
    }
    Ok(names)
}

/// Natural order of snapshot names: runs of ASCII digits compare by numeric value (any length,
/// leading zeros ignored, then fewer leading zeros first), everything else byte by byte; names
/// equal under those rules fall back to plain byte order, so the order is total.
///
/// ```
/// use std::cmp::Ordering;
/// use std::ffi::OsStr;
/// use snapshot_verify::compare_names;
/// assert_eq!(compare_names(OsStr::new("step-9"), OsStr::new("step-10")), Ordering::Less);
/// assert_eq!(compare_names(OsStr::new("2024-05-01T09"), OsStr::new("2024-05-01T10")), Ordering::Less);
/// assert_eq!(compare_names(OsStr::new("a"), OsStr::new("b")), Ordering::Less);
/// ```
pub fn compare_names(a: &OsStr, b: &OsStr) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i].is_ascii_digit() && y[j].is_ascii_digit() {
            let (ei, ej) = (digits_end(x, i), digits_end(y, j));
            let (dx, dy) = (&x[i..ei], &y[j..ej]);
            let (tx, ty) = (trim_zeros(dx), trim_zeros(dy));
            let by_value = tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty));
            let by_zeros = dx.len().cmp(&dy.len());
            match by_value.then(by_zeros) {
                Ordering::Equal => {}
                other => return other,
            }
            (i, j) = (ei, ej);
        } else {
            match x[i].cmp(&y[j]) {
                Ordering::Equal => {}
                other => return other,
            }
            (i, j) = (i + 1, j + 1);
        }
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| x.cmp(y))
}

fn digits_end(s: &[u8], start: usize) -> usize {
    s[start..].iter().position(|b| !b.is_ascii_digit()).map_or(s.len(), |n| start + n)
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&b| b == b'0').count();
    &digits[zeros..]
}

fn serialize_opt_path<S: serde::Serializer>(
    path: &Option<PathBuf>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match path {
        Some(path) => serialize_path(path, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<&str> = names.to_vec();
        v.sort_by(|a, b| compare_names(OsStr::new(a), OsStr::new(b)));
        v.into_iter().map(String::from).collect()
    }

    #[test]
    fn natural_order() {
        assert_eq!(
            sorted(&["step-10", "step-9", "step-100", "step-09", "step-1"]),
            ["step-1", "step-9", "step-09", "step-10", "step-100"]
        );
        assert_eq!(
            sorted(&["2024-05-02T00-00", "2024-04-30T23-59", "2024-05-01T12-00"]),
            ["2024-04-30T23-59", "2024-05-01T12-00", "2024-05-02T00-00"]
        );
        let huge = "9".repeat(40);
        let huger = format!("1{}", "0".repeat(40));
        assert_eq!(sorted(&[&huger, &huge]), [huge.clone(), huger.clone()]);
        assert_eq!(sorted(&["b", "a", "a1", "a01"]), ["a", "a1", "a01", "b"]);
        // Total: equal only when identical.
        assert_eq!(compare_names(OsStr::new("x1"), OsStr::new("x1")), Ordering::Equal);
        assert_ne!(compare_names(OsStr::new("x01"), OsStr::new("x1")), Ordering::Equal);
    }
}

//! What verification finds: a [`Problem`] per path, gathered in a [`Report`].

use std::fmt;
use std::path::{Path, PathBuf};

use checksum::{Digest, FileKind};
use serde::Serialize;

use crate::path::serialize_path;

/// How much a verification reads.
///
/// ```
/// assert_eq!(snapshot_verify::Mode::default(), snapshot_verify::Mode::Full);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every listed file is read and hashed.
    #[default]
    Full,
    /// Presence, type and size only (sizes from `manifest.sizes`); no file content is read.
    Quick,
}

/// One thing wrong with one path of a snapshot.
///
/// ```
/// use snapshot_verify::{Problem, ProblemKind};
/// let p = Problem { path: "w.bin".into(), kind: ProblemKind::SizeDiffers { expected: 8, actual: 7 } };
/// assert_eq!(p.to_string(), "size_differs: w.bin (expected 8 bytes, found 7)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The path, relative to the snapshot directory.
    #[serde(serialize_with = "serialize_path")]
    pub path: PathBuf,
    /// What is wrong.
    #[serde(flatten)]
    pub kind: ProblemKind,
}

/// The kinds of [`Problem`]. In JSON each is an object with `"kind"` set to the snake-case name
/// and the fields below.
///
/// ```
/// let kind = snapshot_verify::ProblemKind::Missing;
/// assert_eq!(kind.name(), "missing");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// Listed in the manifest, not in the directory (or only behind a symlink, which is never
    /// followed).
    Missing,
    /// In the directory, not in the manifest.
    Extra,
    /// The file's length is not the one recorded when it was sealed.
    SizeDiffers {
        /// Length recorded in `manifest.sizes`.
        expected: u64,
        /// Length found.
        actual: u64,
    },
    /// Same length (or length unknown), different content.
    HashDiffers {
        /// Digest in the manifest.
        #[serde(serialize_with = "serialize_digest")]
        expected: Digest,
        /// Digest of the file as read.
        #[serde(serialize_with = "serialize_digest")]
        actual: Digest,
    },
    /// The file is empty and should not be.
    ZeroByte {
        /// The recorded length, when `manifest.sizes` gives it.
        expected: Option<u64>,
    },
    /// The file (or a directory above it) could not be opened or read.
    Unreadable {
        /// The cause.
        reason: String,
    },
    /// Where the manifest lists a file there is something else (never opened).
    NotARegularFile {
        /// What is there.
        #[serde(serialize_with = "serialize_display")]
        found: FileKind,
    },
    /// The path is, or goes through, a symlink pointing outside the snapshot; it was not followed.
    SymlinkLeavesTree {
        /// The symlink itself (the path, or one of the directories above it).
        #[serde(serialize_with = "serialize_path")]
        link: PathBuf,
        /// Where it points.
        #[serde(serialize_with = "serialize_path")]
        target: PathBuf,
    },
}

impl ProblemKind {
    /// The snake-case name used in human output and as `"kind"` in JSON.
    ///
    /// ```
    /// let kind = snapshot_verify::ProblemKind::ZeroByte { expected: Some(3) };
    /// assert_eq!(kind.name(), "zero_byte");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            ProblemKind::Missing => "missing",
            ProblemKind::Extra => "extra",
            ProblemKind::SizeDiffers { .. } => "size_differs",
            ProblemKind::HashDiffers { .. } => "hash_differs",
            ProblemKind::ZeroByte { .. } => "zero_byte",
            ProblemKind::Unreadable { .. } => "unreadable",
            ProblemKind::NotARegularFile { .. } => "not_a_regular_file",
            ProblemKind::SymlinkLeavesTree { .. } => "symlink_leaves_tree",
        }
    }

    /// The details shown in parentheses after the path, if the kind has any.
    ///
    /// ```
    /// use snapshot_verify::ProblemKind;
    /// assert_eq!(ProblemKind::Missing.details(), None);
    /// assert_eq!(ProblemKind::ZeroByte { expected: Some(3) }.details().unwrap(), "0 bytes, expected 3");
    /// ```
    pub fn details(&self) -> Option<String> {
        Some(match self {
            ProblemKind::Missing | ProblemKind::Extra => return None,
            ProblemKind::SizeDiffers { expected, actual } => {
                format!("expected {expected} bytes, found {actual}")
            }
            ProblemKind::HashDiffers { expected, actual } => {
                format!("expected {expected}, found {actual}")
            }
            ProblemKind::ZeroByte { expected: Some(expected) } => {
                format!("0 bytes, expected {expected}")
            }
            ProblemKind::ZeroByte { expected: None } => "0 bytes, expected content".into(),
            ProblemKind::Unreadable { reason } => reason.clone(),
            ProblemKind::NotARegularFile { found } => format!("found a {found}"),
            ProblemKind::SymlinkLeavesTree { link, target } => {
                format!("{} -> {}, not followed", names::shown(link), names::shown(target))
            }
        })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), names::shown(&self.path))?;
        match self.kind.details() {
            Some(details) => write!(f, " ({details})"),
            None => Ok(()),
        }
    }
}

/// The outcome of verifying one snapshot.
///
/// ```
/// let report = snapshot_verify::Report::default();
/// assert!(report.is_ok());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// What was read.
    pub mode: Mode,
    /// Files listed in the manifest.
    pub files: u64,
    /// Bytes hashed (full mode) or found in listed files (quick mode).
    pub bytes: u64,
    /// Whether sizes from `manifest.sizes` were used (it is absent from manifests not written by
    /// this crate, and ignored when a full verify finds it altered).
    pub sizes_checked: bool,
    /// Every problem, sorted by path.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True when no problem was found.
    ///
    /// ```
    /// use snapshot_verify::{Problem, ProblemKind, Report};
    /// let mut report = Report::default();
    /// report.problems = vec![Problem { path: "a".into(), kind: ProblemKind::Missing }];
    /// assert!(!report.is_ok());
    /// ```
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Which pass over a snapshot's files is running.
///
/// ```
/// assert_ne!(snapshot_verify::Pass::Seal, snapshot_verify::Pass::Verify);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// `seal` hashing the files it will list.
    Seal,
    /// A full verify, or `seal` re-verifying what it wrote.
    Verify,
}

/// Told what seal, verify and latest are doing; called from worker threads. Every method has a
/// no-op default, and `()` reports nothing.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// struct Bytes(AtomicU64);
/// impl snapshot_verify::SnapshotProgress for Bytes {
///     fn file_done(&self, _rel: &std::path::Path, len: u64) {
///         self.0.fetch_add(len, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait SnapshotProgress: Send + Sync {
    /// A hashing pass starts over `files` files totalling `bytes` (as listed by the walk).
    fn pass(&self, _pass: Pass, _files: u64, _bytes: u64) {}
    /// A file was hashed (`len` bytes).
    fn file_done(&self, _rel: &Path, _len: u64) {}
    /// [`latest`](crate::latest()) is about to verify this snapshot.
    fn snapshot(&self, _dir: &Path) {}
}

impl SnapshotProgress for () {}

fn serialize_digest<S: serde::Serializer>(digest: &Digest, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&digest.to_hex())
}

fn serialize_display<S: serde::Serializer>(
    value: &impl fmt::Display,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

//! # snapshot-verify
//!
//! Seal a directory with an xxh128 manifest, verify it (every problem reported by path and kind),
//! and find the newest snapshot under a root that still verifies: what a training daemon needs to
//! trust a checkpoint before it writes the next one, and to find its way back after a bad run.
//!
//! ```
//! # let tmp = tempfile::tempdir().unwrap();
//! # let dir = tmp.path();
//! use snapshot_verify::{seal, verify, ProblemKind, SealSpec, VerifyOptions};
//!
//! std::fs::write(dir.join("config.json"), br#"{"lr": 0.001}"#).unwrap();
//! std::fs::write(dir.join("model.bin"), b"weights").unwrap();
//! let mut spec = SealSpec::default();
//! spec.required = vec!["config.json".into()];
//! seal(dir, &spec, &()).unwrap(); // writes manifest.xxh128 (xxhsum -c accepts it) and manifest.sizes
//!
//! std::fs::remove_file(dir.join("model.bin")).unwrap();
//! let report = verify(dir, &VerifyOptions::default(), &()).unwrap();
//! assert_eq!(report.problems[0].to_string(), "missing: model.bin");
//! ```
//!
//! ## What a sealed snapshot is
//!
//! A directory holding regular files (any depth) and, at its top, `manifest.xxh128`: one xxhsum
//! GNU line (`<XXH128 hex>  <path>`) per file, paths relative to the directory, sorted by their
//! bytes, the manifest itself left out; `cd DIR && xxhsum -c manifest.xxh128` checks it. Beside
//! it, `manifest.sizes` records each file's length (`<length>  <path>`), because xxhsum lines
//! carry none; it is listed in the manifest like any file. See [`MANIFEST`] and [`SIZES`].
//!
//! ## Guarantees
//!
//! - **Every problem, by path.** [`verify`] reports each listed file that is missing, empty,
//!   truncated or grown ([`ProblemKind::SizeDiffers`]), altered, unreadable, not a regular file, or
//!   a symlink out of the snapshot, and each unlisted file ([`ProblemKind::Extra`], unless
//!   allowed). It does not stop at the first.
//! - **Nothing outside the snapshot is read.** The manifest is validated in full before any other
//!   file is opened: an absolute path, a `..` component, a NUL byte, a repeated path, a malformed
//!   or over-long line (64 KiB), or a manifest over 64 MiB ([`VerifyOptions::max_manifest_bytes`])
//!   makes it invalid ([`Error::InvalidManifest`]) and the check stops. Files are then opened
//!   beneath the snapshot's directory descriptor with no symlink followed at any component
//!   (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, or `openat(O_NOFOLLOW)` per component where
//!   that syscall is missing), and the tree is walked with `lstat`, never following links.
//! - **Nothing blocks.** Files are opened `O_NONBLOCK` and their type is checked on the open
//!   descriptor: a FIFO put where a file was is reported, not waited on.
//! - **A seal is complete and consistent, or refused.** [`seal`] refuses, listing every reason at
//!   once and writing nothing, when a required file is missing or empty, a file is empty (unless
//!   allowed), a `*.json` file does not parse (streamed, bounded), or the snapshot holds symlinks,
//!   FIFOs, sockets or devices (**refused, not skipped**: `xxhsum -c` would follow a symlink that
//!   [`verify`] never follows, so a snapshot holding one could not mean the same thing to both).
//!   The manifest is written atomically (atomic-io: synced temp, rename, directory sync) and only
//!   after the tree has been re-verified against the very bytes written.
//! - **Bounded memory.** A manifest (and a sizes file) is refused above
//!   [`VerifyOptions::max_manifest_bytes`] (64 MiB) before it is read; below that it is held
//!   whole while it is parsed, on several threads, and dropped before any file is hashed. Lines
//!   above 64 KiB are refused, and at most [`MAX_ISSUES`] issues are kept; JSON is parsed without
//!   being built in memory; files are hashed through a fixed buffer. What remains grows with the
//!   number of files: the entries and the walk (one small record per entry of the tree).
//!
//! ## Concurrent writers: refused or consistent
//!
//! Sealing a directory that another process is writing into ends in one of two ways, never a
//! third: the seal is **refused** with [`RefusalKind::Changed`] naming each file that changed, or
//! it **succeeds with a manifest that described the tree exactly** at the moment it was
//! re-verified. Three checks make it so: each file's size and ctime when it is opened for hashing
//! are compared with what the walk listed (this also covers a `*.json` rewritten after its check);
//! its size, mtime and ctime are compared before and after it is read; and the whole tree is
//! hashed a second time against the written manifest (new, vanished and altered files all show).
//! Only then does the manifest become visible. A process killed mid-seal (Ctrl-C included) leaves
//! at most atomic-io temp files, which `safefs sweep` removes. A writer that keeps writing after the seal returned is not something
//! a seal can prevent: the next [`verify`] reports it. Temp files of atomic-io writers
//! (`atomic_io::is_temp_name`) are never part of a snapshot, in seal or verify.
//!
//! ## What it does not guarantee
//!
//! - xxHash detects accidents (bit rot, truncation, a half-copied file), not an attacker who can
//!   choose the bytes and rewrite the manifest.
//! - "Verified" after a seal means read back through the page cache, not from the disk.
//! - A [`Mode::Quick`] verify checks presence, type and sizes only: an altered byte that keeps the
//!   size is not seen. It trusts `manifest.sizes` without hashing it.
//! - Re-sealing a sealed directory replaces two files: a crash between the two renames leaves the
//!   old manifest with the new sizes file, which a full verify reports as a `hash_differs` on
//!   `manifest.sizes` (never a silent mismatch); re-run the seal.
//! - A directory swapped for a symlink *during* the walk may have its names listed (never its
//!   files read: every open is beneath the snapshot with no symlink followed).
//! - Unix only. Names are bytes: neither the directory nor the files in it need UTF-8 names.
//!
//! ## Why these dependencies
//!
//! - `checksum`: XXH128 hashing and xxhsum manifest lines (parse, escape, format): one
//!   implementation of the format for the whole toolkit.
//! - `atomic-io`: the crash-safe manifest write (`AtomicFile`, staged then renamed), the temp-name
//!   pattern to leave out.
//! - `rayon`: the manifest's ranges parsed and the files hashed in parallel, on a pool built per
//!   call and sized by the caller.
//! - `rustix`: `openat2`/`openat` with `O_NOFOLLOW`, `RESOLVE_BENEATH`, `O_NONBLOCK` without
//!   `unsafe`.
//! - `serde` (derive) and `serde_json`: `serde_json` checks `*.json` files while streaming them
//!   (into serde's `IgnoredAny`); `serde`'s derive makes [`Report`], [`Refusal`] and [`Latest`]
//!   serializable so the CLI's `--json` output is the library's own types, not a copy of them.
//! - `names`: how a path is shown in messages and `--json` reports (escaped, reversibly).
//! - `thiserror`: the crate's [`Error`].
#![forbid(unsafe_code)]

// The workspace has one non-Unix policy: refuse at compile time, saying why (docs/ARCHITECTURE.md).
#[cfg(not(unix))]
compile_error!(
    "snapshot-verify supports Unix only (Linux, macOS, the BSDs): file names are handled as bytes and files opened beneath the root with openat"
);

mod error;
mod latest;
mod lines;
mod manifest;
mod path;
mod problem;
mod read;
mod seal;
mod sys;
mod verify;
mod walk;

pub use error::{Error, Result};
pub use latest::{Latest, LatestOptions, SkipReason, Skipped, compare_names, latest};
pub use manifest::ManifestIssue;
pub use problem::{Mode, Pass, Problem, ProblemKind, Report, SnapshotProgress};
pub use seal::{Refusal, RefusalKind, SealSpec, Sealed, seal};
pub use verify::{VerifyOptions, verify};

/// The manifest's file name, at the top of a snapshot.
///
/// ```
/// assert_eq!(snapshot_verify::MANIFEST, "manifest.xxh128");
/// ```
pub const MANIFEST: &str = "manifest.xxh128";

/// The sizes file's name, at the top of a snapshot (listed in the manifest).
///
/// ```
/// assert_eq!(snapshot_verify::SIZES, "manifest.sizes");
/// ```
pub const SIZES: &str = "manifest.sizes";

/// The default [`VerifyOptions::max_manifest_bytes`]: 64 MiB, about a million files.
///
/// ```
/// assert_eq!(snapshot_verify::DEFAULT_MAX_MANIFEST, 64 << 20);
/// ```
pub const DEFAULT_MAX_MANIFEST: u64 = 64 << 20;

/// Issues listed in an [`Error::InvalidManifest`]; further ones are only counted.
///
/// ```
/// assert_eq!(snapshot_verify::MAX_ISSUES, 100);
/// ```
pub const MAX_ISSUES: usize = 100;

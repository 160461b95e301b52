//! # toolkit
//!
//! The front door of the workspace: each of the five crates re-exported as a module, a
//! [`prelude`] of the types most programs need, and the three workflows that the user stories
//! would otherwise glue together by hand.
//!
//! ## What is guaranteed
//!
//! Exactly what the five crates guarantee, composed; this crate adds no logic of its own beyond
//! the order of the calls. Each workflow says which crate keeps which promise:
//!
//! - [`fetch_once`]: one download of a file among many processes, checked against its digest
//!   before anyone sees it (`dir-lock` + `atomic-io` + `checksum`).
//! - [`copy_and_seal`]: a verified copy, sealed only when complete (`folder-copier` +
//!   `snapshot-verify`).
//! - [`StatusWriter`]: status files written whole, by the one running instance (`dir-lock` +
//!   `atomic-io`).
//!
//! ## What is not guaranteed
//!
//! Whatever the crates leave out (see each crate's own docs): advisory locks do not stop programs
//! that do not take them; power-loss durability needs a file system and drive that honour `fsync`;
//! Unix only. The facade prints nothing and never exits; progress goes through the crates' traits.
//!
//! ## A guided tour: which crate for which job
//!
//! | job | crate | entry point |
//! |-----|-------|-------------|
//! | replace a file so a crash leaves the old or the new, never a mix | [`atomic_io`] | [`write_atomic`], [`AtomicFile`] |
//! | clean up temps that killed writers left, never a live one's | [`atomic_io`] | [`atomic_io::sweep::sweep`] |
//! | read JSON lines or a config with bounded memory | [`atomic_io`] | [`atomic_io::bounded`] |
//! | hash files and trees as `xxhsum` does; read and write its manifests | [`checksum`] | [`hash_file`], [`checksum::hash_tree`] |
//! | a lock that names its holder and that a timeout never steals | [`dir_lock`] | [`LockFile`] |
//! | one daemon at a time | [`dir_lock`] | [`InstanceGuard`] |
//! | produce an artifact once among many processes | [`dir_lock`] | [`produce_once`] (or [`fetch_once`]) |
//! | copy a folder tree verified, one task per source directory | [`folder_copier`] | [`copy()`] |
//! | seal a snapshot, verify it, find the newest good one | [`snapshot_verify`] | [`seal`], [`verify`], [`snapshot_verify::latest`] |
//!
//! ### `atomic_io`: a status file that is always whole
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let dir = dir.path();
//! use toolkit::prelude::*;
//!
//! let status = dir.join("status.json");
//! write_atomic(&status, br#"{"step": 1}"#)?;
//! write_atomic(&status, br#"{"step": 2}"#)?; // a crash in between leaves step 1, whole
//! assert_eq!(std::fs::read(&status)?, br#"{"step": 2}"#);
//! // Temps a killed writer leaves are recognised by name and removed only when no writer holds them.
//! let swept = toolkit::atomic_io::sweep::sweep(dir, &Default::default())?;
//! assert!(swept.removed.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ### `checksum`: digests as `xxhsum` prints them
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let dir = dir.path();
//! use toolkit::prelude::*;
//!
//! std::fs::write(dir.join("game.sfc"), b"rom bytes")?;
//! let hashed = hash_file(Algo::Xxh128, dir.join("game.sfc"))?;
//! assert_eq!(hashed.digest, hash_bytes(Algo::Xxh128, b"rom bytes"));
//! assert_eq!(hashed.digest.to_string().len(), 32); // `xxhsum -H2` prints these 32 hex digits
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ### `dir_lock`: a lock that is never stolen
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let dir = dir.path();
//! use std::time::Duration;
//! use toolkit::prelude::*;
//!
//! let path = dir.join("cache.lock");
//! let held = LockFile::acquire(&path, &LockOptions::default(), &())?;
//! // Another thread with a timeout gives up, naming the holder; it never breaks the lock.
//! let opts = LockOptions::new(LockKind::Exclusive, Wait::Timeout(Duration::from_millis(50)));
//! let err = std::thread::scope(|s| s.spawn(|| LockFile::acquire(&path, &opts, &())).join())
//!     .unwrap()
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("gave up waiting for the lock on"), "{err}");
//! drop(held);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ### `folder_copier`: a verified copy
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let root = dir.path();
//! use toolkit::prelude::*;
//!
//! std::fs::create_dir_all(root.join("roms/gba"))?;
//! std::fs::write(root.join("roms/gba/a.gba"), vec![1u8; 100_000])?;
//! let report = copy(root.join("roms"), root.join("backup"), &CopyOptions::default(), &())?;
//! assert!(report.is_success() && report.copied == 1);
//! // A second run finds everything up to date.
//! let again = copy(root.join("roms"), root.join("backup"), &CopyOptions::default(), &())?;
//! assert_eq!((again.copied, again.skipped), (0, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ### `snapshot_verify`: trust a checkpoint only once it verifies
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let root = dir.path();
//! use toolkit::prelude::*;
//!
//! let snap = root.join("step-10");
//! std::fs::create_dir_all(&snap)?;
//! std::fs::write(snap.join("weights.bin"), vec![3u8; 50_000])?;
//! seal(&snap, &SealSpec::default(), &())?;
//! std::fs::write(snap.join("weights.bin"), vec![4u8; 50_000])?; // corrupted later
//! let report = verify(&snap, &VerifyOptions::default(), &())?;
//! assert_eq!(report.problems.len(), 1);
//! assert!(matches!(report.problems[0].kind, ProblemKind::HashDiffers { .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The workflows have their examples on [`fetch_once`], [`copy_and_seal`] and [`StatusWriter`].
//!
//! ## Paths and names
//!
//! Every function that takes a path takes `impl AsRef<Path>` (a `&str`, a `PathBuf`, a
//! `tempfile::TempDir`'s path, ...) and every path handed back is a std [`PathBuf`](std::path::PathBuf).
//! File names are bytes: a name that is not UTF-8, as in old Latin-1 or Shift-JIS collections,
//! is written, copied, sealed and verified exactly like any other. Where a name is shown to a
//! person (error messages, the `--json` reports of the CLI) it is escaped the one way
//! [`names`] defines, reversibly, so two different names never print alike.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let root = dir.path();
//! use std::ffi::OsStr;
//! use std::os::unix::ffi::OsStrExt;
//! use std::path::PathBuf;
//! use toolkit::prelude::*;
//!
//! let roms: PathBuf = root.join("roms");
//! let latin1 = roms.join(OsStr::from_bytes(b"caf\xe9.nes"));
//! std::fs::create_dir(&roms)?;
//! write_atomic(&latin1, b"rom bytes")?;
//! let mirrored = copy_and_seal(&roms, root.join("card"), &CopyOptions::default(), &())?;
//! assert_eq!(mirrored.copy.copied, 1);
//! assert!(root.join("card").join(OsStr::from_bytes(b"caf\xe9.nes")).exists());
//! assert_eq!(toolkit::names::shown(&latin1).to_string(), format!("{}/caf\\xe9.nes", roms.display()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Why these modules and dependencies
//!
//! The crates are re-exported whole (`toolkit::atomic_io`, ...) rather than flattened, so that
//! their own docs, error types and `Result` aliases stay where they are and names never clash
//! (every crate has an `Error`). The facade depends on the five crates, `names` (re-exported: how
//! a name is shown) and `thiserror` (its [`Error`]); nothing else.
#![forbid(unsafe_code)]

// The workspace has one non-Unix policy: refuse at compile time, saying why (docs/ARCHITECTURE.md).
#[cfg(not(unix))]
compile_error!(
    "toolkit supports Unix only (Linux, macOS, the BSDs): it composes crates that support Unix only"
);

mod error;
mod fetch;
mod mirror;
mod status;

pub use atomic_io;
pub use checksum;
pub use dir_lock;
pub use folder_copier;
pub use names;
pub use snapshot_verify;

pub use error::{Error, NameRefusal, Result};
pub use fetch::{CheckError, check_digest, fetch_once};
pub use mirror::{MirrorProgress, Mirrored, copy_and_seal};
pub use status::StatusWriter;

// For the links of the tour above.
#[doc(no_inline)]
pub use atomic_io::{AtomicFile, write_atomic};
#[doc(no_inline)]
pub use checksum::hash_file;
#[doc(no_inline)]
pub use dir_lock::{InstanceGuard, LockFile, produce_once};
#[doc(no_inline)]
pub use folder_copier::copy;
#[doc(no_inline)]
pub use snapshot_verify::{seal, verify};

/// The types and functions most programs need, in one `use toolkit::prelude::*;`.
///
/// ```
/// use toolkit::prelude::*;
/// let d: Durability = Durability::Full;
/// assert_eq!(Algo::Xxh128.hex_len(), 32);
/// # let _ = d;
/// ```
pub mod prelude {
    pub use crate::{Mirrored, StatusWriter, copy_and_seal, fetch_once};
    pub use atomic_io::{AtomicFile, Durability, WriteOptions, write_atomic};
    pub use checksum::{Algo, Digest, hash_bytes, hash_file};
    pub use dir_lock::{
        InstanceGuard, LockFile, LockKind, LockOptions, OnceOptions, OnceOutcome, Wait,
        produce_once,
    };
    pub use folder_copier::{CopyOptions, CopyProgress, CopyReport, copy};
    pub use snapshot_verify::{ProblemKind, Report, SealSpec, VerifyOptions, seal, verify};
}

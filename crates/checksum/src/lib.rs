//! # checksum
//!
//! Streaming xxHash digests (XXH32, XXH64, XXH3-64, XXH3-128) of bytes, readers, files and whole
//! trees, and manifest lines read and written in every style `xxhsum` uses.
//!
//! ```
//! use checksum::{format_line, hash_file, parse_line, Algo, Entry, Style};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("model.onnx");
//! std::fs::write(&path, b"test\n").unwrap();
//!
//! let fd = hash_file(Algo::Xxh128, &path).unwrap();
//! let line = format_line(&Entry { digest: fd.digest, path: "model.onnx".into(), style: Style::Gnu });
//! assert_eq!(line, b"364b7492fe58a3947e824cae26e04823  model.onnx\n"); // what `xxhsum -H2` prints
//! assert_eq!(parse_line(&line, 1).unwrap().digest, fd.digest);
//! ```
//!
//! ## Guarantees
//! - Digests are bit-for-bit what xxhsum computes, and print exactly as it prints them (tested
//!   against the real binary in `tests/tests/xxhsum.rs`).
//! - Memory is bounded: files are streamed through a [`BUF_SIZE`] buffer, never read whole;
//!   manifest lines longer than a limit are refused without being buffered ([`ManifestReader`]).
//! - Nothing but a regular file is ever read: FIFOs, sockets and devices are refused before a byte
//!   is read (opened `O_NONBLOCK` and checked on the descriptor), and tree walks never follow
//!   symlinks; both are reported as [`Skipped`], not silently dropped.
//! - Tree order is deterministic: sorted by the bytes of the relative path.
//! - One unreadable file never stops a tree: its error is collected in [`TreeReport::errors`].
//! - Names are bytes: a non-UTF-8 name survives hashing, formatting and parsing unchanged; names
//!   with backslashes or newlines are escaped as coreutils and xxhsum 0.8.2+ escape them.
//! - Malformed manifest input is a typed [`Error`] naming the line, never a panic (fuzzed with
//!   proptest in `tests/manifest_props.rs`).
//!
//! ## What it does not do
//! - xxHash is not cryptographic. It detects accidents (truncation, bit rot, a mixed-up download),
//!   not an attacker who can choose the bytes. Use a cryptographic hash for that.
//! - A file that changes while it is hashed gets the digest of whatever bytes were read; callers
//!   that must know (the copier, the seal) compare a [`Stamp`] (length, mtime, ctime) taken
//!   before and after ([`Stamp::changed_while_read`]).
//! - No printing, no exit: the command line (`safefs hash`/`check`) lives in the `safefs` crate.
//! - Unix only (paths are carried as raw bytes through `OsStrExt`).
//!
//! ## Why these dependencies
//! - `xxhash-rust`: pure-Rust xxHash with SIMD XXH3, no C toolchain needed.
//! - std only for the walk: folders listed by several threads at once (a cold disk answers them
//!   faster queued), symlinks never followed, errors collected per entry.
//! - `rayon`: files hashed in parallel on a pool built per call and sized by the caller.
//! - `rustix`: the `O_NONBLOCK` flag without `libc` or `unsafe`.
//! - `thiserror`: the typed [`Error`].
#![forbid(unsafe_code)]

// The workspace has one non-Unix policy: refuse at compile time, saying why (docs/ARCHITECTURE.md).
#[cfg(not(unix))]
compile_error!(
    "checksum supports Unix only (Linux, macOS, the BSDs): file names are handled as bytes and files opened with Unix flags"
);

mod digest;
mod error;
mod file;
mod manifest;
mod stamp;
mod tree;
mod walk;

pub use digest::{Algo, Digest, Hasher, hash_bytes};
pub use error::{Error, Result};
pub use file::{BUF_SIZE, FileDigest, hash_file, hash_reader};
pub use manifest::{
    DEFAULT_MAX_LINE, Entry, EntryRef, ManifestReader, Style, format_line, parse_line,
    parse_line_ref, path_bytes,
};
/// What a path names when it is not a regular file (the `names` crate's, so that every crate
/// says it alike).
pub use names::FileKind;
pub use stamp::{Stamp, Timestamp};
pub use tree::{
    ListedFile, Listing, READS_PER_CORE, Skipped, TreeEntry, TreeOptions, TreeProgress, TreeReport,
    hash_files, hash_tree, list_tree, reading_threads, thread_pool,
};
pub use walk::{Status, Walk, WalkEntry, walk_tree};

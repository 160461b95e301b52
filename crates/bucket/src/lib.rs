//! # bucket
//!
//! A prefix of an S3 bucket (`s3://bucket/prefix`) as a place to copy a tree to and from, and
//! to seal, verify and produce artifacts once in, with the toolkit's guarantees carried over to
//! object storage where the store can keep them, and refused where it cannot. Tested against
//! Ceph's RGW; written for any S3-compatible server.
//!
//! ```no_run
//! use bucket::{Store, TransferOptions};
//! // Endpoint and keys as AWS tools take them: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_PROFILE...
//! let store = Store::open("s3://models/roms")?;
//! let report = bucket::upload("roms".as_ref(), &store, &TransferOptions::default(), &())?;
//! assert!(report.is_success());
//! # Ok::<(), bucket::Error>(())
//! ```
//!
//! ## Guarantees
//!
//! - **An object is complete or absent.** Every object is written by one `PUT` or one completed
//!   multipart upload, which S3 makes visible all at once: a dropped connection, a killed
//!   process or a failed check leaves the previous version (or nothing), never a part. An upload
//!   whose bytes no longer hash to what was measured before (the file changed) is not completed.
//! - **Verified copies.** Each uploaded object carries its XXH128 in its metadata
//!   (`x-amz-meta-xxh128`, see [`XXH128_META`]) and, unless told otherwise, is read back and
//!   compared before it counts as copied. A download is hashed while it is written to an
//!   atomic-io temp beside its destination, compared with that XXH128 and the object's size,
//!   and only then synced and renamed into place.
//! - **Conditional writes are checked before they are trusted.** Create-if-absent
//!   (`If-None-Match: *`) and compare-and-swap (`If-Match`) are what make `once` and `seal` safe
//!   without a lock. Some S3 servers accept the headers and ignore them; [`Store::check`] tries
//!   both on a probe object on first use (a second create must be refused, a swap from a stale
//!   tag must be refused) and, if the store fails, every conditional write through this crate
//!   is refused with the reason. Servers that accept `If-Match` only with the tag unquoted (Ceph
//!   RGW 16) are detected by the same check ([`Conditions`]).
//! - **Errors name the URL and the cause**: missing credentials (and where they were looked
//!   for), a missing bucket, a refused check, a dropped connection.
//!
//! ## What it does not guarantee
//!
//! - No locks: two uploads of one key at once both succeed and the later one stays (each a
//!   complete object). Where only one may win, the verbs use create-if-absent instead.
//! - Durability is the server's: an object is as safe as the store's acknowledgement says.
//! - XXH128 catches accidents (truncation, a wrong object), not an attacker who can write the
//!   bucket.
//! - Only regular files travel: symlinks, modes, owners and mtimes are not kept (S3 has no such
//!   thing); special files are listed, never opened. Names must be UTF-8 without control
//!   characters (S3 keys), else the file is refused by name.
//! - Credentials: keys from the environment or a profile's files only; no instance metadata,
//!   SSO or `credential_process`.
//!
//! ## Why these dependencies
//!
//! - `object_store` (feature `aws`): S3 requests, signing, multipart uploads, retries, and the
//!   mapping of create-if-absent and compare-and-swap onto `If-None-Match`/`If-Match`: the
//!   Arrow project's client, used by delta-rs and others for exactly this publish pattern.
//! - `tokio`: object_store is async; a small runtime lives inside [`Store`], and every public
//!   function here blocks, so the rest of the workspace stays synchronous.
//! - `futures-util`: to read object_store's byte streams (`StreamExt::next`).
//! - `bytes`: the buffer type object_store's uploads take.
//! - `checksum`: XXH128 and the xxhsum manifest lines; the one hasher of the toolkit.
//! - `atomic-io`: downloads land through its temp-then-rename, as every local write does.
//! - `snapshot-verify`: its `Report`, `Problem` and `Latest` types, so a prefix verifies into
//!   the same report as a directory, and its name order for `latest`.
//! - `serde`, `serde_json`: the reference objects of `once` and the `--json` reports.
//! - `names`: how a local path is shown in messages (escaped, reversibly).
//! - `thiserror`: the crate's [`Error`].
#![forbid(unsafe_code)]

// The workspace has one non-Unix policy: refuse at compile time, saying why (docs/ARCHITECTURE.md).
#[cfg(not(unix))]
compile_error!(
    "bucket supports Unix only (Linux, macOS, the BSDs): downloads land through atomic-io, which supports Unix only"
);

mod check;
mod config;
mod error;
mod location;
mod once;
mod snapshot;
mod store;
mod transfer;

pub use check::{Conditions, PROBE_DIR};
pub use config::Config;
pub use error::{BoxError, Error, Result};
pub use location::{Location, is_url};
pub use once::{Outcome, Reference, blob_name, fetch_or_publish, read_ref, ref_name};
pub use snapshot::{latest, seal, verify};
/// What [`seal`] returns: snapshot-verify's, the manifest named by its URL.
pub use snapshot_verify::Sealed;
pub use store::{Listed, Object, PART, Put, Store, XXH128_META};
pub use transfer::{
    Action, Failed, Plan, Planned, Progress, Transfer, TransferOptions, download, plan_download,
    plan_upload, upload,
};

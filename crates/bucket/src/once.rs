//! Produce once across machines: the artifact under its content hash, published by one
//! create-if-absent of a small reference object.
//!
//! Layout beneath the store's prefix (see docs/FORMATS.md):
//!
//! - `blobs/xxh128/<32 hex>`: an artifact, named by its XXH128 (also in its metadata);
//! - `refs/<key>`: `{"xxh128": "<32 hex>", "size": N, "blob": "blobs/xxh128/<32 hex>"}`, written
//!   once with create-if-absent. Whoever creates it has published; everyone else reuses what it
//!   names.
//!
//! No lock is taken in the store: correctness rests on the create-if-absent alone (which
//! [`Store::check`] has verified the store keeps), so two machines producing at once cost one
//! duplicate production, never two different published artifacts.

use std::io::{Seek, Write};
use std::path::Path;

use bytes::Bytes;
use checksum::{Algo, Digest};
use object_store::{PutMode, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::store::Put;
use crate::{BoxError, Error, Result, Store};

/// The reference object of a published artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The artifact's XXH128, 32 hex digits.
    pub xxh128: String,
    /// Its length in bytes.
    pub size: u64,
    /// The blob's name beneath the prefix (`blobs/xxh128/<xxh128>`).
    pub blob: String,
}

/// How [`fetch_or_publish`] ended. In every case the file holds the published artifact,
/// verified against its reference.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A reference was there: its blob was downloaded and checked.
    Reused {
        /// The published digest.
        digest: Digest,
    },
    /// This process produced the artifact, uploaded it, and its reference won.
    Published {
        /// The published digest.
        digest: Digest,
    },
    /// This process produced one too, but another published first: ours was discarded and the
    /// winner's downloaded and checked.
    LostRace {
        /// The winner's digest.
        digest: Digest,
        /// Ours, discarded (equal to the winner's when the producer is deterministic).
        ours: Digest,
    },
    /// The reference named a blob that is missing or does not match it: a new artifact was
    /// produced and swapped in with compare-and-swap.
    Repaired {
        /// The new digest.
        digest: Digest,
        /// What was wrong.
        reason: String,
    },
}

/// Where a reference lives.
pub fn ref_name(key: &str) -> String {
    format!("refs/{key}")
}

/// Where a blob lives.
pub fn blob_name(digest: Digest) -> String {
    format!("blobs/xxh128/{}", digest.to_hex())
}

/// Largest reference object read.
const MAX_REF: u64 = 64 << 10;

/// Makes `file` (a temp the caller owns, e.g. an atomic-io temp beside the target) hold the
/// artifact published under `key`: downloaded if a reference exists; otherwise `produce` writes
/// it, it is checked by `verify`, uploaded under its hash, read back, and published by a
/// create-if-absent of the reference. A loser of that race takes the winner's artifact instead,
/// after checking it. Refused unless the store passes [`Store::check`].
///
/// A `produce` error or a `verify` failure of what it produced is [`Error::Produce`], naming
/// the reference; nothing is published then.
pub fn fetch_or_publish(
    store: &Store,
    key: &str,
    file: &mut std::fs::File,
    path: &Path,
    produce: &mut dyn FnMut() -> std::result::Result<(), BoxError>,
    verify: &dyn Fn(&Path) -> std::result::Result<(), BoxError>,
) -> Result<Outcome> {
    store.check("once")?;
    let rel = ref_name(key);
    let mut swap_from = None;
    if let Some((reference, e_tag)) = read_ref(store, &rel)? {
        match fetch(store, &reference, file, path, verify) {
            Ok(digest) => return Ok(Outcome::Reused { digest }),
            Err(Error::Mismatch { what, .. }) => swap_from = Some((e_tag, what)),
            Err(other) => return Err(other),
        }
    }
    rewind(file, path)?;
    produce().map_err(|source| Error::Produce {
        what: "the producer failed",
        url: store.url(&rel),
        source,
    })?;
    verify(path).map_err(|source| Error::Produce {
        what: "what the producer made failed verification",
        url: store.url(&rel),
        source,
    })?;
    let hashed = checksum::hash_file(Algo::Xxh128, path).map_err(|e| Error::Local {
        action: "cannot read",
        path: path.to_owned(),
        source: std::io::Error::new(e.io_kind(), e.to_string()),
    })?;
    let blob = blob_name(hashed.digest);
    let present =
        store.head(&blob)?.is_some_and(|o| o.size == hashed.len && o.xxh128 == Some(hashed.digest));
    if !present {
        store.upload_file(&blob, path, hashed.digest, None)?;
    }
    crate::transfer::read_back(store, &blob, hashed.digest, hashed.len)?;
    let reference = Reference { xxh128: hashed.digest.to_hex(), size: hashed.len, blob };
    let body = Bytes::from(
        serde_json::to_vec(&reference)
            .map_err(|e| Error::Invalid { url: store.url(&rel), reason: e.to_string() })?,
    );
    let (mode, repaired) = match swap_from {
        None => (PutMode::Create, None),
        Some((e_tag, reason)) => {
            (PutMode::Update(UpdateVersion { e_tag, version: None }), Some(reason))
        }
    };
    match (store.put_bytes(&rel, body, mode)?, repaired) {
        (Put::Written { .. }, None) => Ok(Outcome::Published { digest: hashed.digest }),
        (Put::Written { .. }, Some(reason)) => {
            Ok(Outcome::Repaired { digest: hashed.digest, reason })
        }
        (Put::Exists | Put::Stale, _) => {
            let Some((winner, _)) = read_ref(store, &rel)? else {
                return Err(Error::Invalid {
                    url: store.url(&rel),
                    reason: "refused as existing, then not found".to_owned(),
                });
            };
            rewind(file, path)?;
            let digest = fetch(store, &winner, file, path, verify)?;
            if digest != hashed.digest {
                // Ours is referenced by nothing: blobs are named by content, so nobody else can
                // be about to publish this name except with these very bytes, and they lost too.
                let _ = store.delete(&blob_name(hashed.digest));
            }
            Ok(Outcome::LostRace { digest, ours: hashed.digest })
        }
    }
}

/// The reference and its entity tag, if there is one; an error if it is not a valid reference.
pub fn read_ref(store: &Store, rel: &str) -> Result<Option<(Reference, Option<String>)>> {
    let Some((bytes, info)) = store.get_bytes(rel, MAX_REF)? else { return Ok(None) };
    let invalid = |reason: String| Error::Invalid { url: store.url(rel), reason };
    let reference: Reference =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not a reference: {e}")))?;
    let digest = Digest::from_hex(Algo::Xxh128, &reference.xxh128)
        .map_err(|e| invalid(format!("bad xxh128: {e}")))?;
    if reference.blob != blob_name(digest) {
        return Err(invalid(format!("names blob {} for xxh128 {digest}", reference.blob)));
    }
    Ok(Some((reference, info.e_tag)))
}

/// Downloads the referenced blob into `file` and checks it: size, XXH128, and `verify`.
fn fetch(
    store: &Store,
    reference: &Reference,
    file: &mut std::fs::File,
    path: &Path,
    verify: &dyn Fn(&Path) -> std::result::Result<(), BoxError>,
) -> Result<Digest> {
    let url = store.url(&reference.blob);
    let mismatch = |what: String| Error::Mismatch { url: url.clone(), what };
    rewind(file, path)?;
    let Some((digest, len, _)) = store.download(&reference.blob, file)? else {
        return Err(mismatch("the published blob is missing".to_owned()));
    };
    file.flush().map_err(|source| Error::Local {
        action: "cannot write",
        path: path.to_owned(),
        source,
    })?;
    if digest.to_hex() != reference.xxh128 || len != reference.size {
        return Err(mismatch(format!(
            "{len} bytes with xxh128 {digest}, the reference says {} with {}",
            reference.size, reference.xxh128
        )));
    }
    verify(path).map_err(|reason| {
        mismatch(format!("the published artifact fails verification: {}", chain(&*reason)))
    })?;
    Ok(digest)
}

/// An error and its causes in one line, for a message that must hold it (a mismatch's text).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

fn rewind(file: &mut std::fs::File, path: &Path) -> Result<()> {
    let err = |source| Error::Local { action: "cannot truncate", path: path.to_owned(), source };
    file.set_len(0).map_err(err)?;
    file.rewind().map_err(err)?;
    Ok(())
}

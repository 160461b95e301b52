//! The check a store must pass before anything relies on its conditional writes.
//!
//! Some S3 servers accept `If-None-Match: *` and `If-Match` and ignore them: every racer of a
//! create-if-absent then "wins", and a compare-and-swap overwrites whatever is there. Nothing
//! in a response tells such a server from an honest one, so each store is tried once, on a
//! probe object of its own under the prefix, before `once`, `seal` or a compare-and-swap relies
//! on it: a second create of one key must be refused, and a swap from a stale tag must be
//! refused while one from the current tag succeeds.

use bytes::Bytes;
use object_store::{PutMode, UpdateVersion};

use crate::store::Put;
use crate::{Error, Result, Store};

/// The conditional writes a store was seen to keep.
///
/// ```
/// let c = bucket::Conditions { if_match_unquoted: true };
/// assert_eq!(c.tag_for_if_match("\"abc\""), "abc");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conditions {
    /// `If-Match` must carry the entity tag without its quotes (Ceph RGW 16 compares the bare
    /// value and refuses the quoted form that RFC 9110 and AWS use).
    pub if_match_unquoted: bool,
}

impl Conditions {
    /// The tag to send in `If-Match` for an entity tag as the store returned it.
    pub fn tag_for_if_match(&self, e_tag: &str) -> String {
        match self.if_match_unquoted {
            true => e_tag.trim_matches('"').to_owned(),
            false => e_tag.to_owned(),
        }
    }
}

/// Where probe objects go, beneath the prefix. Removed after the check; one left by a killed
/// check is harmless (a name no other verb reads).
pub const PROBE_DIR: &str = ".safefs-probe";

/// Tries create-if-absent and compare-and-swap on a fresh probe object.
pub(crate) fn probe(store: &Store) -> Result<Conditions> {
    let rel = format!(
        "{PROBE_DIR}/{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let result = probe_at(store, &rel);
    // Best effort: a probe left behind costs a few bytes and misleads nothing.
    let _ = store.delete(&rel);
    result
}

fn probe_at(store: &Store, rel: &str) -> Result<Conditions> {
    let refuse = |reason: String| Error::NoConditions {
        url: store.location().to_string(),
        what: "conditional writes".to_owned(),
        reason,
    };
    let first = match store.put_raw(rel, Bytes::from_static(b"first"), PutMode::Create)? {
        Put::Written { e_tag } => e_tag,
        other => {
            return Err(refuse(format!(
                "a create-if-absent of a fresh probe object was refused ({other:?})"
            )));
        }
    };
    if let Put::Written { .. } =
        store.put_raw(rel, Bytes::from_static(b"second"), PutMode::Create)?
    {
        return Err(refuse(
            "a second create-if-absent of one key succeeded: the server ignores If-None-Match \
             (two racers would both win)"
                .to_owned(),
        ));
    }
    let Some(stale) = first else {
        return Err(refuse("the server returned no ETag for an upload".to_owned()));
    };
    let current = match store.put_raw(rel, Bytes::from_static(b"third"), PutMode::Overwrite)? {
        Put::Written { e_tag: Some(tag) } => tag,
        _ => return Err(refuse("the server returned no ETag for an upload".to_owned())),
    };
    let update =
        |tag: &str| PutMode::Update(UpdateVersion { e_tag: Some(tag.to_owned()), version: None });
    for stale in [stale.clone(), stale.trim_matches('"').to_owned()] {
        if let Put::Written { .. } =
            store.put_raw(rel, Bytes::from_static(b"stale"), update(&stale))?
        {
            return Err(refuse(
                "a compare-and-swap from a stale ETag succeeded: the server ignores If-Match"
                    .to_owned(),
            ));
        }
    }
    if let Put::Written { .. } =
        store.put_raw(rel, Bytes::from_static(b"fourth"), update(&current))?
    {
        return Ok(Conditions { if_match_unquoted: false });
    }
    let bare = current.trim_matches('"');
    if let Put::Written { .. } = store.put_raw(rel, Bytes::from_static(b"fourth"), update(bare))? {
        return Ok(Conditions { if_match_unquoted: true });
    }
    Err(refuse(
        "a compare-and-swap from the current ETag was refused, quoted and unquoted".to_owned(),
    ))
}

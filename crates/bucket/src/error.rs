//! The crate's error: every variant names the URL (or local path) and the cause.

use std::io;
use std::path::PathBuf;

/// What went wrong, with the URL or path it happened to. The cause is in the message where it
/// comes from the store (object_store's own messages already carry their causes, so they are
/// condensed into one phrase rather than chained), in `source()` where it is a local I/O error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not `s3://bucket[/prefix]`.
    #[error("invalid store URL {url}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// No access keys could be found.
    #[error("no credentials for {url}: {reason}")]
    NoCredentials {
        /// The store.
        url: String,
        /// Where they were looked for.
        reason: String,
    },
    /// An AWS configuration file could not be read.
    #[error("cannot read AWS configuration {}", names::shown(path))]
    Config {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A request to the store failed.
    #[error("{action} {url}: {cause}")]
    Store {
        /// What was being done (`upload`, `download`, `list`, ...).
        action: &'static str,
        /// The object or prefix.
        url: String,
        /// The cause, condensed from object_store's error chain.
        cause: String,
    },
    /// The bucket does not exist.
    #[error("{url}: bucket {bucket} does not exist")]
    NoBucket {
        /// The store.
        url: String,
        /// The bucket's name.
        bucket: String,
    },
    /// The store does not keep conditional writes (or the check could not finish), so what needs
    /// them is refused.
    #[error("{url} cannot be trusted with {what}: {reason}")]
    NoConditions {
        /// The store.
        url: String,
        /// What was refused (`once`, `seal`, `compare-and-swap`).
        what: String,
        /// What the check saw.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("{action} {}", names::shown(path))]
    Local {
        /// What was being done (`cannot read`, `cannot write`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// atomic-io refused or failed a local write.
    #[error(transparent)]
    Atomic(#[from] atomic_io::Error),
    /// What was read back or downloaded is not what was recorded.
    #[error("{url}: {what}")]
    Mismatch {
        /// The object.
        url: String,
        /// What differs (`expected xxh128 X, found Y`).
        what: String,
    },
    /// An object or local file cannot be represented on the other side.
    #[error("{name}: {reason}")]
    Unstorable {
        /// The name (escaped, as in every message).
        name: String,
        /// Why.
        reason: String,
    },
    /// A manifest or reference object is invalid.
    #[error("invalid {url}: {reason}")]
    Invalid {
        /// The object.
        url: String,
        /// Why.
        reason: String,
    },
    /// `once`'s producer failed, or what it made failed verification: nothing was published.
    #[error("{what} for {url}; nothing was published")]
    Produce {
        /// Which step (`the producer failed`, `... failed verification`).
        what: &'static str,
        /// The reference that was to be published.
        url: String,
        /// The cause, as the caller's callback returned it.
        #[source]
        source: BoxError,
    },
    /// The prefix has no manifest.
    #[error("{url} is not sealed: it has no {}", snapshot_verify::MANIFEST)]
    NotSealed {
        /// The prefix.
        url: String,
    },
    /// The prefix has a manifest already (a seal is written once, with create-if-absent).
    #[error("{url} exists: the prefix is sealed already (a seal is written once)")]
    AlreadySealed {
        /// The manifest.
        url: String,
    },
    /// The transfer's cancel flag was set while this object's multipart upload ran: the upload
    /// was aborted, so no part of it is stored or visible.
    #[error("{url}: interrupted; its multipart upload was aborted, nothing was published")]
    Interrupted {
        /// The object.
        url: String,
    },
    /// The seal was refused; every reason is listed.
    #[error("seal of {url} refused: {} reasons", reasons.len())]
    Refused {
        /// The prefix.
        url: String,
        /// Every reason.
        reasons: Vec<snapshot_verify::Refusal>,
    },
}

/// Any error a caller's callback returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `Result<T, Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

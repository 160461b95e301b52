//! [`Store`]: blocking requests to one `s3://bucket/prefix`, driven by a runtime kept inside.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use checksum::{Algo, Digest, Hasher};
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, GetOptions, GetResultPayload, ObjectStore,
    ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion,
};

use crate::check::Conditions;
use crate::{Config, Error, Location, Result};

/// The user metadata key (`x-amz-meta-xxh128`) that holds an object's XXH128, as 32 hex digits.
pub const XXH128_META: &str = "xxh128";

/// One `s3://bucket/prefix`, with blocking methods. Requests run on a small tokio runtime this
/// value owns, so callers stay synchronous; it may be shared between threads (`&Store` is
/// `Sync`), and each call blocks only its own thread.
///
/// Names given to its methods (`rel`) are `/`-separated and relative to the prefix.
#[derive(Debug)]
pub struct Store {
    location: Location,
    s3: AmazonS3,
    runtime: Arc<tokio::runtime::Runtime>,
    conditions: Arc<OnceLock<std::result::Result<Conditions, String>>>,
}

/// What a store says about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Its length in bytes.
    pub size: u64,
    /// Its entity tag as the store sent it (quotes included).
    pub e_tag: Option<String>,
    /// The XXH128 recorded in its metadata when it was uploaded, if any (and valid).
    pub xxh128: Option<Digest>,
}

/// An object found by [`Store::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its name relative to the listed prefix.
    pub rel: String,
    /// Its length in bytes.
    pub size: u64,
    /// Its entity tag, quotes included.
    pub e_tag: Option<String>,
}

/// How a conditional write ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Put {
    /// Written; the new entity tag.
    Written {
        /// The tag the store returned, quotes included.
        e_tag: Option<String>,
    },
    /// Not written: a create-if-absent found the object there.
    Exists,
    /// Not written: a compare-and-swap found another version.
    Stale,
}

/// How often a failed request is tried again, and for how long: long enough to ride out a
/// restarting server, short enough that a dead one is reported in seconds, not minutes
/// (object_store's default keeps trying for three minutes).
const RETRIES: usize = 3;
const RETRY_FOR: Duration = Duration::from_secs(15);

impl Store {
    /// Opens `url` with the configuration AWS tools would use ([`Config::from_env`]). No request
    /// is made yet.
    pub fn open(url: &str) -> Result<Store> {
        let location = Location::parse(url)?;
        let config = Config::from_env(url)?;
        Store::with_config(location, &config)
    }

    /// Opens `location` with `config`. No request is made yet.
    pub fn with_config(location: Location, config: &Config) -> Result<Store> {
        let invalid = |reason: String| Error::InvalidUrl { url: location.to_string(), reason };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(location.bucket())
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: RETRIES,
                retry_timeout: RETRY_FOR,
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_timeout(Duration::from_secs(300)),
            );
        if let Some(token) = &config.session_token {
            builder = builder.with_token(token);
        }
        if let Some(endpoint) = &config.endpoint {
            builder =
                builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        let s3 = builder.build().map_err(|e| invalid(condense(&e)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bucket-io")
            .enable_all()
            .build()
            .map_err(|e| invalid(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Store { location, s3, runtime: Arc::new(runtime), conditions: Arc::default() })
    }

    /// The bucket and prefix.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The store at `rel` beneath this one (`s3://b/p` + `step-1`): the same connection, runtime
    /// and check result (it is the same server).
    pub fn at(&self, rel: &str) -> Store {
        Store {
            location: self.location.join(rel),
            s3: self.s3.clone(),
            runtime: self.runtime.clone(),
            conditions: self.conditions.clone(),
        }
    }

    pub(crate) fn key(&self, rel: &str) -> Result<Key> {
        let key = self.location.key(rel);
        Key::parse(&key).map_err(|e| Error::Unstorable {
            name: key.clone(),
            reason: format!("not a usable object key: {e}"),
        })
    }

    /// Where a listing of `rel` starts: its location, and its key prefix (`None` for the whole
    /// bucket).
    fn listing_base(&self, rel: &str) -> Result<(Location, Option<Key>)> {
        let base = self.location.join(rel);
        let key = match base.prefix() {
            "" => None,
            p => Some(
                Key::parse(p)
                    .map_err(|e| Error::Unstorable { name: p.to_owned(), reason: e.to_string() })?,
            ),
        };
        Ok((base, key))
    }

    pub(crate) fn url(&self, rel: &str) -> String {
        self.location.url_of(rel)
    }

    pub(crate) fn store_error(
        &self,
        action: &'static str,
        rel: &str,
        err: &object_store::Error,
    ) -> Error {
        if is_no_bucket(err) {
            return Error::NoBucket {
                url: self.location.to_string(),
                bucket: self.location.bucket().to_owned(),
            };
        }
        Error::Store { action, url: self.url(rel), cause: condense(err) }
    }

    /// The object's size, tag and recorded XXH128; `None` if there is none.
    pub fn head(&self, rel: &str) -> Result<Option<Object>> {
        let key = self.key(rel)?;
        let opts = GetOptions { head: true, ..GetOptions::default() };
        match self.runtime.block_on(self.s3.get_opts(&key, opts)) {
            Ok(got) => Ok(Some(object(&got.meta, &got.attributes))),
            Err(object_store::Error::NotFound { .. }) if !self.bucket_missing()? => Ok(None),
            Err(e) => Err(self.store_error("cannot look up", rel, &e)),
        }
    }

    /// Whether the bucket itself is missing (asked after a "not found", which S3 also answers
    /// for a missing bucket).
    fn bucket_missing(&self) -> Result<bool> {
        match self.runtime.block_on(self.s3.list_with_delimiter(None)) {
            Ok(_) => Ok(false),
            Err(e) if is_no_bucket(&e) || matches!(e, object_store::Error::NotFound { .. }) => {
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Streams the object into `out`, hashing it; returns its XXH128, length and what the store
    /// said of it. `None` if there is no such object. Nothing is checked here: the caller
    /// compares the digest with what it expects.
    pub fn download(
        &self,
        rel: &str,
        out: &mut dyn Write,
    ) -> Result<Option<(Digest, u64, Object)>> {
        let key = self.key(rel)?;
        self.runtime.block_on(async {
            let got = match self.s3.get_opts(&key, GetOptions::default()).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.store_error("cannot download", rel, &e)),
            };
            let info = object(&got.meta, &got.attributes);
            let mut hasher = Hasher::new(Algo::Xxh128);
            let mut len = 0u64;
            let GetResultPayload::Stream(mut stream) = got.payload;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.store_error("cannot download", rel, &e))?;
                hasher.update(&chunk);
                len += chunk.len() as u64;
                out.write_all(&chunk).map_err(|e| Error::Store {
                    action: "cannot store the download of",
                    url: self.url(rel),
                    cause: e.to_string(),
                })?;
            }
            Ok(Some((hasher.finish(), len, info)))
        })
    }

    /// The whole object in memory, refused above `limit` bytes; `None` if there is none.
    pub fn get_bytes(&self, rel: &str, limit: u64) -> Result<Option<(Vec<u8>, Object)>> {
        let Some(info) = self.head(rel)? else { return Ok(None) };
        if info.size > limit {
            return Err(Error::Invalid {
                url: self.url(rel),
                reason: format!("{} bytes, more than the {limit} allowed", info.size),
            });
        }
        let mut bytes = Vec::with_capacity(info.size as usize);
        match self.download(rel, &mut bytes)? {
            Some((_, _, info)) if bytes.len() as u64 <= limit => Ok(Some((bytes, info))),
            Some(_) => Err(Error::Invalid {
                url: self.url(rel),
                reason: format!("more than the {limit} bytes allowed"),
            }),
            None => Ok(None),
        }
    }

    /// Writes `bytes` as the object `rel` in one request, the XXH128 in its metadata.
    ///
    /// `mode`: [`PutMode::Overwrite`], [`PutMode::Create`] (create-if-absent) or
    /// [`PutMode::Update`] (compare-and-swap). Conditional modes need [`Store::check`] first:
    /// they are refused otherwise, since a store that ignores conditions would report success.
    pub fn put_bytes(&self, rel: &str, bytes: Bytes, mode: PutMode) -> Result<Put> {
        let what = match &mode {
            PutMode::Overwrite => None,
            PutMode::Create => Some("create-if-absent"),
            PutMode::Update(_) => Some("compare-and-swap"),
        };
        let mode = match (what, mode) {
            (None, mode) => mode,
            (Some(what), mode) => {
                let conditions = self.check(what)?;
                match mode {
                    PutMode::Update(v) => PutMode::Update(UpdateVersion {
                        e_tag: v.e_tag.map(|t| conditions.tag_for_if_match(&t)),
                        version: v.version,
                    }),
                    other => other,
                }
            }
        };
        self.put_raw(rel, bytes, mode)
    }

    /// [`Store::put_bytes`] without the check: for the check itself.
    pub(crate) fn put_raw(&self, rel: &str, bytes: Bytes, mode: PutMode) -> Result<Put> {
        let key = self.key(rel)?;
        let digest = checksum::hash_bytes(Algo::Xxh128, &bytes);
        let opts = PutOptions { mode, attributes: with_digest(digest), ..PutOptions::default() };
        match self.runtime.block_on(self.s3.put_opts(&key, PutPayload::from(bytes), opts)) {
            Ok(done) => Ok(Put::Written { e_tag: done.e_tag }),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Put::Exists),
            Err(object_store::Error::Precondition { .. }) => Ok(Put::Stale),
            Err(e) => Err(self.store_error("cannot upload", rel, &e)),
        }
    }

    /// Uploads a local file as `rel`, its XXH128 `digest` (taken before) in the metadata. Files
    /// up to [`PART`] go in one request; larger ones as a multipart upload, which the store makes
    /// visible only when completed, and which is aborted on any error. The bytes sent are hashed
    /// again: if they are not `digest` (the file changed), nothing is published. `cancel`, when
    /// set, stops a multipart upload between parts ([`Error::Interrupted`], the upload aborted);
    /// a single request is never cut short.
    pub fn upload_file(
        &self,
        rel: &str,
        path: &std::path::Path,
        digest: Digest,
        cancel: Option<&AtomicBool>,
    ) -> Result<()> {
        use std::io::Read;
        let key = self.key(rel)?;
        let mut file = std::fs::File::open(path).map_err(|source| Error::Local {
            action: "cannot read",
            path: path.to_owned(),
            source,
        })?;
        let read_err =
            |source| Error::Local { action: "cannot read", path: path.to_owned(), source };
        let changed = || Error::Mismatch {
            url: names::shown(path).to_string(),
            what: "changed while it was uploaded; nothing was published".to_owned(),
        };
        let mut first = Vec::new();
        (&mut file).take(PART as u64 + 1).read_to_end(&mut first).map_err(read_err)?;
        if first.len() <= PART {
            if checksum::hash_bytes(Algo::Xxh128, &first) != digest {
                return Err(changed());
            }
            let opts = PutOptions { attributes: with_digest(digest), ..PutOptions::default() };
            return match self.runtime.block_on(self.s3.put_opts(&key, first.into(), opts)) {
                Ok(_) => Ok(()),
                Err(e) => Err(self.store_error("cannot upload", rel, &e)),
            };
        }
        self.runtime.block_on(async {
            let opts = object_store::PutMultipartOptions {
                attributes: with_digest(digest),
                ..Default::default()
            };
            let mut upload = self
                .s3
                .put_multipart_opts(&key, opts)
                .await
                .map_err(|e| self.store_error("cannot start uploading", rel, &e))?;
            let mut hasher = Hasher::new(Algo::Xxh128);
            let mut part = first;
            let result: Result<()> = async {
                loop {
                    hasher.update(&part);
                    upload
                        .put_part(PutPayload::from(std::mem::take(&mut part)))
                        .await
                        .map_err(|e| self.store_error("cannot upload", rel, &e))?;
                    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                        return Err(Error::Interrupted { url: self.url(rel) });
                    }
                    let mut next = Vec::with_capacity(PART);
                    (&mut file).take(PART as u64).read_to_end(&mut next).map_err(read_err)?;
                    if next.is_empty() {
                        break;
                    }
                    part = next;
                }
                if hasher.finish() != digest {
                    return Err(changed());
                }
                upload
                    .complete()
                    .await
                    .map_err(|e| self.store_error("cannot complete the upload of", rel, &e))?;
                Ok(())
            }
            .await;
            if result.is_err() {
                // Parts of an upload that is never completed are never visible; aborting frees
                // them (best effort: a store that cannot be reached keeps them until its
                // lifecycle rules expire them).
                let _ = upload.abort().await;
            }
            result
        })
    }

    /// Every object under `rel` (the whole prefix for `""`), names relative to it, sorted.
    pub fn list(&self, rel: &str) -> Result<Vec<Listed>> {
        let (base, key) = self.listing_base(rel)?;
        let mut out = Vec::new();
        self.runtime.block_on(async {
            let mut stream = self.s3.list(key.as_ref());
            while let Some(meta) = stream.next().await {
                let meta = meta.map_err(|e| self.store_error("cannot list", rel, &e))?;
                if let Some(name) = base.relative(meta.location.as_ref()) {
                    out.push(Listed { rel: name.to_owned(), size: meta.size, e_tag: meta.e_tag });
                }
            }
            Ok::<_, Error>(())
        })?;
        out.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
        Ok(out)
    }

    /// The "folders" directly under `rel`: names of common prefixes, relative to it.
    pub fn list_folders(&self, rel: &str) -> Result<Vec<String>> {
        let (base, key) = self.listing_base(rel)?;
        let listed = self
            .runtime
            .block_on(self.s3.list_with_delimiter(key.as_ref()))
            .map_err(|e| self.store_error("cannot list", rel, &e))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| base.relative(p.as_ref()).map(str::to_owned))
            .collect())
    }

    /// Deletes `rel` (no error if it is absent).
    pub fn delete(&self, rel: &str) -> Result<()> {
        let key = self.key(rel)?;
        match self.runtime.block_on(self.s3.delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_error("cannot delete", rel, &e)),
        }
    }

    /// The conditional writes this store keeps, checked on first use (see [`Conditions`]); an
    /// error naming `what` (`once`, `seal`, `compare-and-swap`) if they cannot be relied on.
    pub fn check(&self, what: &str) -> Result<Conditions> {
        let checked = self.conditions.get_or_init(|| match crate::check::probe(self) {
            Ok(c) => Ok(c),
            Err(Error::NoConditions { reason, .. }) => Err(reason),
            Err(other) => Err(other.to_string()),
        });
        match checked {
            Ok(c) => Ok(*c),
            Err(reason) => Err(Error::NoConditions {
                url: self.location.to_string(),
                what: what.to_owned(),
                reason: reason.clone(),
            }),
        }
    }
}

/// The largest object sent in one request, and the part size of larger ones: 16 MiB bounds the
/// memory per upload while keeping the part count of a 100 GiB file under S3's 10,000.
pub const PART: usize = 16 << 20;

fn with_digest(digest: Digest) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::Metadata(XXH128_META.into()), digest.to_hex().into());
    attributes
}

fn object(meta: &object_store::ObjectMeta, attributes: &Attributes) -> Object {
    let xxh128 = attributes
        .get(&Attribute::Metadata(XXH128_META.into()))
        .and_then(|v| Digest::from_hex(Algo::Xxh128, v.as_ref()).ok());
    Object { size: meta.size, e_tag: meta.e_tag.clone(), xxh128 }
}

fn is_no_bucket(err: &object_store::Error) -> bool {
    chain(err).iter().any(|m| m.contains("NoSuchBucket"))
}

fn chain(err: &object_store::Error) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        out.push(e.to_string());
        cause = e.source();
    }
    out
}

/// object_store's error as one phrase: its kind where that is what matters, else the innermost
/// cause (`Connection refused`, `connection closed before message completed`) with the HTTP
/// status when there is one. Its own messages repeat their causes, so printing the chain would
/// say each thing several times.
pub(crate) fn condense(err: &object_store::Error) -> String {
    use object_store::Error as E;
    let messages = chain(err);
    let status = messages.iter().find_map(|m| {
        let at = m.find("status code: ")?;
        let rest = &m[at + "status code: ".len()..];
        Some(rest.split(':').next().unwrap_or(rest).trim().to_owned())
    });
    let code = messages.iter().find_map(|m| {
        let at = m.find("<Code>")?;
        let rest = &m[at + 6..];
        Some(rest[..rest.find("</Code>")?].to_owned())
    });
    let root = messages.last().cloned().unwrap_or_default();
    match err {
        E::NotFound { .. } => "not found".to_owned(),
        E::AlreadyExists { .. } => "already exists".to_owned(),
        E::Precondition { .. } => "precondition failed".to_owned(),
        E::Unauthenticated { .. } | E::PermissionDenied { .. } => format!(
            "access denied{} (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile)",
            code.map(|c| format!(" ({c})")).unwrap_or_default()
        ),
        _ => match (status, code) {
            (Some(status), Some(code)) => format!("{status} ({code})"),
            (Some(status), None) => status,
            (None, _) => root,
        },
    }
}

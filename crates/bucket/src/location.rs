//! `s3://bucket/prefix` URLs and the object keys beneath them.

use std::fmt;

use crate::{Error, Result};

/// Where a store's objects live: a bucket and a key prefix, from an `s3://bucket/prefix` URL.
///
/// The prefix is a folder of keys: `s3://b/snaps/step-1` holds `snaps/step-1/model.bin`, and its
/// trailing slash is optional. Keys are UTF-8 (S3 requires it).
///
/// ```
/// let loc = bucket::Location::parse("s3://models/cache/").unwrap();
/// assert_eq!((loc.bucket(), loc.prefix()), ("models", "cache"));
/// assert_eq!(loc.key("a/b.bin"), "cache/a/b.bin");
/// assert_eq!(loc.to_string(), "s3://models/cache");
/// assert!(bucket::Location::parse("/tmp/x").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    bucket: String,
    prefix: String,
}

/// Whether a command-line argument names object storage rather than a local path.
///
/// ```
/// assert!(bucket::is_url(std::ffi::OsStr::new("s3://b/p")));
/// assert!(!bucket::is_url(std::ffi::OsStr::new("./s3:/b")));
/// ```
pub fn is_url(arg: &std::ffi::OsStr) -> bool {
    arg.as_encoded_bytes().starts_with(b"s3://")
}

impl Location {
    /// Parses `s3://bucket` or `s3://bucket/prefix`.
    ///
    /// Refused: another scheme, an empty bucket name, a prefix with an empty, `.` or `..`
    /// segment or a control character (object_store would refuse the key, or S3 tools would read
    /// it as a different key).
    pub fn parse(url: &str) -> Result<Location> {
        let invalid =
            |reason: &str| Error::InvalidUrl { url: url.to_owned(), reason: reason.to_owned() };
        let rest = url.strip_prefix("s3://").ok_or_else(|| invalid("not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("no bucket name"));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            check_key(prefix).map_err(|reason| invalid(&reason))?;
        }
        Ok(Location { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, without leading or trailing slash (empty for the whole bucket).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of `rel` (a `/`-separated relative name) beneath the prefix.
    pub fn key(&self, rel: &str) -> String {
        match (self.prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_owned(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{rel}", self.prefix),
        }
    }

    /// The name of `key` relative to the prefix, if it lies beneath it.
    ///
    /// ```
    /// let loc = bucket::Location::parse("s3://b/p").unwrap();
    /// assert_eq!(loc.relative("p/x/y"), Some("x/y"));
    /// assert_eq!(loc.relative("px/y"), None);
    /// ```
    pub fn relative<'k>(&self, key: &'k str) -> Option<&'k str> {
        if self.prefix.is_empty() {
            return Some(key);
        }
        key.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
    }

    /// The location of `rel` beneath this one (`s3://b/p` + `step-1` = `s3://b/p/step-1`).
    pub fn join(&self, rel: &str) -> Location {
        Location { bucket: self.bucket.clone(), prefix: self.key(rel) }
    }

    /// The URL of one object beneath the prefix, for messages.
    pub fn url_of(&self, rel: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(rel))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix.is_empty() {
            true => write!(f, "s3://{}", self.bucket),
            false => write!(f, "s3://{}/{}", self.bucket, self.prefix),
        }
    }
}

/// Why `key` cannot be an object key, if it cannot: an empty, `.` or `..` segment, or a control
/// character.
pub(crate) fn check_key(key: &str) -> std::result::Result<(), String> {
    for segment in key.split('/') {
        match segment {
            "" => return Err("an empty path segment".to_owned()),
            "." | ".." => return Err(format!("a `{segment}` segment")),
            _ => {}
        }
    }
    match key.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("a control character ({c:?})")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_refuse() {
        let loc = Location::parse("s3://b").unwrap();
        assert_eq!((loc.bucket(), loc.prefix(), loc.key("x")), ("b", "", "x".to_owned()));
        assert_eq!(loc.join("s").to_string(), "s3://b/s");
        for bad in ["s3://", "s3:///p", "http://b/p", "s3://b/a//c", "s3://b/a/../c", "s3://b/\n"] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }
}

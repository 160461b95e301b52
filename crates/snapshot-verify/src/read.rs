//! Reading the files of a snapshot: hashed through a descriptor opened beneath the snapshot
//! (see [`crate::sys`]), with the file type checked on that descriptor and a change during the
//! read detected by comparing its status before and after.

use std::io::{self, BufReader, Read};
use std::path::Path;

use checksum::{Algo, Digest, FileKind, Stamp, Timestamp};

use crate::sys::RootDir;

/// A file as it was hashed.
#[derive(Clone, Debug)]
pub(crate) struct Hashed {
    pub(crate) digest: Digest,
    /// Bytes read.
    pub(crate) len: u64,
    /// The file's ctime (seconds, nanoseconds) when it was opened.
    pub(crate) ctime: Timestamp,
    /// Set when the file changed while it was read (size, mtime or ctime moved, or fewer or more
    /// bytes were read than its size): the digest is then of no particular version.
    pub(crate) changed: Option<String>,
}

/// Why a file could not be hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReadFailure {
    /// It is not a regular file (any more); it was not read.
    NotRegular(FileKind),
    /// Opening or reading failed; the message says which and why.
    Io(String),
}

fn open(root: &RootDir, rel: &Path) -> Result<(std::fs::File, std::fs::Metadata), ReadFailure> {
    let file = root.open_file(rel).map_err(|err| ReadFailure::Io(describe_open(&err)))?;
    let meta = file.metadata().map_err(|err| ReadFailure::Io(format!("failed to stat: {err}")))?;
    if let Some(kind) = FileKind::of(&meta) {
        return Err(ReadFailure::NotRegular(kind));
    }
    Ok((file, meta))
}

/// Opens `rel` beneath `root` as a regular file without reading it: how `seal` lists unreadable
/// files cheaply when it already has other reasons to refuse.
pub(crate) fn probe(root: &RootDir, rel: &Path) -> Result<(), ReadFailure> {
    open(root, rel).map(drop)
}

/// Hashes the regular file `rel` beneath `root`.
pub(crate) fn hash(root: &RootDir, rel: &Path, algo: Algo) -> Result<Hashed, ReadFailure> {
    let (file, before) = open(root, rel)?;
    let (digest, len) = checksum::hash_reader(algo, &file)
        .map_err(|err| ReadFailure::Io(format!("failed to read: {err}")))?;
    let after = file.metadata().map_err(|err| ReadFailure::Io(format!("failed to stat: {err}")))?;
    let (before, after) = (Stamp::of(&before), Stamp::of(&after));
    let changed = if !before.changed_while_read(&after, len) {
        None
    } else if before != after {
        Some(format!(
            "changed while it was read: {} bytes and mtime {} before, {} bytes and mtime {} after",
            before.len, before.mtime, after.len, after.mtime
        ))
    } else {
        Some(format!("changed while it was read: {len} bytes read from a {}-byte file", after.len))
    };
    Ok(Hashed { digest, len, ctime: before.ctime, changed })
}

fn describe_open(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
            "failed to open: a symlink is in the way (not followed)".into()
        }
        Some(code) if code == rustix::io::Errno::NOTDIR.raw_os_error() => {
            "failed to open: a directory above it is not a directory (not followed)".into()
        }
        _ => format!("failed to open: {err}"),
    }
}

/// Why a `*.json` file fails the seal's check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JsonFailure {
    /// Larger than the limit; not parsed.
    TooLarge { len: u64, max: u64 },
    /// Not one complete JSON value.
    Invalid(String),
    /// Could not be opened or read.
    Read(ReadFailure),
}

/// Parses `rel` as JSON without building it in memory (`IgnoredAny`: serde_json keeps no copy of
/// strings it skips and nests at most 128 levels, so memory stays constant whatever the file) and
/// without reading more than `max` bytes.
pub(crate) fn check_json(root: &RootDir, rel: &Path, max: u64) -> Result<(), JsonFailure> {
    let (file, meta) = open(root, rel).map_err(JsonFailure::Read)?;
    if meta.len() > max {
        return Err(JsonFailure::TooLarge { len: meta.len(), max });
    }
    let reader = BufReader::with_capacity(64 * 1024, file.take(max));
    match serde_json::from_reader::<_, serde::de::IgnoredAny>(reader) {
        Ok(_) => Ok(()),
        Err(err) if err.is_io() => {
            Err(JsonFailure::Read(ReadFailure::Io(format!("failed to read: {err}"))))
        }
        Err(err) => Err(JsonFailure::Invalid(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_checked_with_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let root = RootDir::open(dir.path()).unwrap();
        for (name, text, ok) in [
            ("good.json", &b"{\"a\": [1, 2, {\"b\": null}]}\n"[..], true),
            ("trailing.json", b"{} {}", false),
            ("cut.json", b"{\"a\": [1, 2", false),
            ("empty.json", b"", false),
            ("deep.json", &[b'['; 10_000][..], false),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
            let result = check_json(&root, Path::new(name), 1 << 20);
            assert_eq!(result.is_ok(), ok, "{name}: {result:?}");
        }
        std::fs::write(dir.path().join("big.json"), vec![b' '; 2000]).unwrap();
        assert_eq!(
            check_json(&root, Path::new("big.json"), 1000),
            Err(JsonFailure::TooLarge { len: 2000, max: 1000 })
        );
    }

    #[test]
    fn hash_matches_checksum_and_sees_no_change_in_a_quiet_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"test\n").unwrap();
        let root = RootDir::open(dir.path()).unwrap();
        let hashed = hash(&root, Path::new("f"), Algo::Xxh128).unwrap();
        assert_eq!(hashed.digest.to_hex(), "364b7492fe58a3947e824cae26e04823");
        assert_eq!((hashed.len, hashed.changed), (5, None));
        std::fs::create_dir(dir.path().join("d")).unwrap();
        assert_eq!(
            hash(&root, Path::new("d"), Algo::Xxh128).unwrap_err(),
            ReadFailure::NotRegular(FileKind::Directory)
        );
    }
}

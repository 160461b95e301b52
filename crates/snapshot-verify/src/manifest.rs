//! The two files a seal writes, and how they are read back with every entry validated before any
//! file of the snapshot is touched.
//!
//! - `manifest.xxh128`: one xxhsum GNU line per file (`<32 hex digits>  <path>`), sorted by the
//!   bytes of the path, names escaped as xxhsum and coreutils escape them. `cd DIR && xxhsum -c
//!   manifest.xxh128` checks it. Lines of other xxHash algorithms and BSD style are accepted when
//!   reading, as xxhsum accepts them.
//! - `manifest.sizes`: one `<decimal length>  <path>` line per file (same order, same escaping).
//!   xxhsum lines carry no sizes; this file is what lets [`Mode::Quick`](crate::Mode::Quick) check
//!   sizes without reading the data, and lets a full verify say "size differs" instead of only
//!   "hash differs". It is itself listed in `manifest.xxh128`, so a full verify (and `xxhsum -c`)
//!   checks it like any other file.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use checksum::{Digest, Entry, ManifestReader, Style};
use serde::Serialize;

use crate::path::normalize_rel;
use crate::{Error, MANIFEST, MAX_ISSUES, Result};

/// One thing wrong with a manifest (or its sizes file).
///
/// ```
/// let issue = snapshot_verify::ManifestIssue { line: 3, reason: "absolute path".into() };
/// assert_eq!(issue.to_string(), "line 3: absolute path");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ManifestIssue {
    /// 1-based line number; 0 when the issue is about the whole file.
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ManifestIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.reason)
        } else {
            write!(f, "line {}: {}", self.line, self.reason)
        }
    }
}

/// A validated manifest entry: a canonical relative path and the digest it must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ManifestEntry {
    pub(crate) path: PathBuf,
    pub(crate) digest: Digest,
}

/// Limits on what a manifest may make this crate hold in memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_bytes: u64,
    pub(crate) max_line: usize,
}

/// Collects issues, keeping the first [`MAX_ISSUES`] and counting the rest, so that a file of
/// binary garbage cannot grow memory one issue per line.
#[derive(Default)]
struct Issues {
    listed: Vec<ManifestIssue>,
    more: u64,
}

impl Issues {
    fn push(&mut self, line: u64, reason: impl Into<String>) {
        if self.listed.len() < MAX_ISSUES {
            self.listed.push(ManifestIssue { line, reason: reason.into() });
        } else {
            self.more += 1;
        }
    }

    fn into_result<T>(self, path: &Path, value: T) -> Result<T> {
        if self.listed.is_empty() {
            Ok(value)
        } else {
            Err(Error::InvalidManifest { path: path.into(), issues: self.listed, more: self.more })
        }
    }
}

/// Refuses a file larger than the limit before reading it, and reads at most the limit anyway
/// (the file may grow while it is read).
fn bounded<'f>(file: &'f File, path: &Path, limits: Limits) -> Result<std::io::Take<&'f File>> {
    let len =
        file.metadata().map_err(|source| Error::ReadManifest { path: path.into(), source })?.len();
    if len > limits.max_bytes {
        let reason = format!("{len} bytes, larger than the limit of {} bytes", limits.max_bytes);
        return Err(Error::InvalidManifest {
            path: path.into(),
            issues: vec![ManifestIssue { line: 0, reason }],
            more: 0,
        });
    }
    Ok(file.take(limits.max_bytes))
}

/// Recorded lengths from a sizes file, by the bytes of each normal relative path (see
/// `walk::Tree` for why bytes and not `PathBuf`).
pub(crate) type Sizes = HashMap<OsString, u64>;

/// Reads and validates a whole manifest. Every line must parse, every path must be relative,
/// free of `..` and NUL, and named once (after normalisation); the manifest must not list itself
/// and must list something. Any issue makes the whole manifest invalid.
pub(crate) fn read_manifest(
    file: &File,
    path: &Path,
    limits: Limits,
) -> Result<Vec<ManifestEntry>> {
    let reader = BufReader::with_capacity(64 * 1024, bounded(file, path, limits)?);
    let mut issues = Issues::default();
    let mut entries = Vec::new();
    let mut seen: HashMap<OsString, u64> = HashMap::new();
    for item in ManifestReader::new(reader, limits.max_line) {
        let (line, entry) = match item {
            Ok(parsed) => parsed,
            Err(checksum::Error::Malformed { line, reason }) => {
                issues.push(line, reason);
                continue;
            }
            Err(checksum::Error::LineTooLong { line, max }) => {
                issues.push(line, format!("longer than the limit of {max} bytes"));
                continue;
            }
            Err(checksum::Error::ReadManifest { source, .. }) => {
                return Err(Error::ReadManifest { path: path.into(), source });
            }
            Err(other) => {
                issues.push(0, other.to_string());
                continue;
            }
        };
        let rel = match normalize_rel(&entry.path) {
            Ok(rel) => rel,
            Err(reason) => {
                issues.push(line, reason);
                continue;
            }
        };
        if rel == Path::new(MANIFEST) {
            issues.push(line, format!("lists the manifest itself ({MANIFEST})"));
            continue;
        }
        if let Some(first) = seen.get(rel.as_os_str()) {
            let shown = names::shown(&rel);
            issues.push(line, format!("repeats {shown} (already on line {first})"));
            continue;
        }
        seen.insert(rel.as_os_str().to_owned(), line);
        entries.push(ManifestEntry { path: rel, digest: entry.digest });
    }
    if entries.is_empty() && issues.listed.is_empty() {
        issues.push(0, "lists no files");
    }
    issues.into_result(path, entries)
}

/// A GNU manifest line for `rel`, escaped as xxhsum escapes it.
pub(crate) fn manifest_line(rel: &Path, digest: Digest) -> Vec<u8> {
    checksum::format_line(&Entry { digest, path: rel.into(), style: Style::Gnu })
}

/// A sizes line: `<len>  <name>\n`, the name escaped exactly as in the manifest line (a leading
/// `\` on the line when it is), by the one definition of that escaping (`names`).
pub(crate) fn sizes_line(rel: &Path, len: u64) -> Vec<u8> {
    let name = rel.as_os_str().as_bytes();
    let escaped = names::needs_manifest_escape(name);
    let mut line = Vec::with_capacity(name.len() + 24);
    if escaped {
        line.push(b'\\');
    }
    line.extend_from_slice(len.to_string().as_bytes());
    line.extend_from_slice(b"  ");
    if escaped {
        names::escape_manifest(&mut line, name);
    } else {
        line.extend_from_slice(name);
    }
    line.push(b'\n');
    line
}

/// Parses a sizes line; escapes are undone by the one definition that writes them (`names`).
fn parse_sizes_line(line: &[u8]) -> std::result::Result<(PathBuf, u64), String> {
    let (escaped, rest) = match line.strip_prefix(b"\\") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let sep = rest.windows(2).position(|w| w == b"  ").ok_or("expected \"<length>  <path>\"")?;
    let digits = &rest[..sep];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err("length is not a decimal number".into());
    }
    let len: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or("length does not fit in 64 bits")?;
    let raw = &rest[sep + 2..];
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.is_empty() {
        return Err("no file name".into());
    }
    let name =
        if escaped { names::unescape_manifest(raw).map_err(|e| e.reason)? } else { raw.to_vec() };
    if name.contains(&0) {
        return Err("file name contains a NUL byte".into());
    }
    Ok((PathBuf::from(OsString::from_vec(name)), len))
}

/// Reads a sizes file and checks it names exactly the files in `entries` (other than itself).
pub(crate) fn read_sizes(
    file: &File,
    path: &Path,
    limits: Limits,
    entries: &[ManifestEntry],
) -> Result<Sizes> {
    let reader = BufReader::with_capacity(64 * 1024, bounded(file, path, limits)?);
    let mut lines = atomic_io::bounded::LineReader::new(reader, limits.max_line as u64);
    let mut issues = Issues::default();
    let mut sizes = Sizes::new();
    loop {
        let parsed = match lines.next_line() {
            Ok(Some(line)) => {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                parse_sizes_line(line).and_then(|(raw, len)| {
                    normalize_rel(&raw).map(|rel| (rel, len)).map_err(str::to_owned)
                })
            }
            Ok(None) => break,
            Err(atomic_io::ReadError::LineTooLong { line, max }) => {
                issues.push(line, format!("longer than the limit of {max} bytes"));
                continue;
            }
            Err(atomic_io::ReadError::ReadLine { source, .. }) => {
                return Err(Error::ReadManifest { path: path.into(), source });
            }
            Err(other) => {
                let source = std::io::Error::other(other.to_string());
                return Err(Error::ReadManifest { path: path.into(), source });
            }
        };
        let line_no = lines.line_number();
        match parsed {
            Ok((rel, len)) => {
                if sizes.insert(rel.as_os_str().to_owned(), len).is_some() {
                    issues.push(line_no, format!("repeats {}", names::shown(&rel)));
                }
            }
            Err(reason) => issues.push(line_no, reason),
        }
    }
    let listed: HashSet<&OsStr> = entries.iter().map(|e| e.path.as_os_str()).collect();
    let own = Path::new(crate::SIZES);
    let mut unlisted: Vec<&Path> =
        sizes.keys().filter(|p| !listed.contains(p.as_os_str())).map(Path::new).collect();
    unlisted.sort_by(|a, b| crate::path::cmp_bytes(a, b));
    for rel in unlisted {
        issues.push(0, format!("{} is not in {MANIFEST}", names::shown(rel)));
    }
    for entry in entries {
        if entry.path != own && !sizes.contains_key(entry.path.as_os_str()) {
            issues.push(0, format!("has no size for {}", names::shown(&entry.path)));
        }
    }
    issues.into_result(path, sizes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;

    const LIMITS: Limits = Limits { max_bytes: 1 << 20, max_line: 4096 };

    fn file_with(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        let file = File::open(tmp.path()).unwrap();
        (tmp, file)
    }

    fn read(bytes: &[u8]) -> Result<Vec<ManifestEntry>> {
        let (_tmp, file) = file_with(bytes);
        read_manifest(&file, Path::new("m"), LIMITS)
    }

    fn issues(bytes: &[u8]) -> Vec<ManifestIssue> {
        match read(bytes) {
            Err(Error::InvalidManifest { issues, .. }) => issues,
            other => panic!("expected an invalid manifest, got {other:?}"),
        }
    }

    const HEX: &str = "364b7492fe58a3947e824cae26e04823";

    #[test]
    fn a_good_manifest_reads_back_normalised() {
        let text = format!("{HEX}  a\n{HEX}  ./d//b\n");
        let entries = read(text.as_bytes()).unwrap();
        let paths: Vec<_> = entries.iter().map(|e| e.path.clone()).collect();
        assert_eq!(paths, [PathBuf::from("a"), PathBuf::from("d/b")]);
    }

    #[test]
    fn every_hostile_line_is_named() {
        let text = format!(
            "{HEX}  ../../x\n{HEX}  /etc/passwd\n{HEX}  a\n{HEX}  ./a\n{HEX}  manifest.xxh128\nnonsense\n"
        );
        let found = issues(text.as_bytes());
        let lines: Vec<u64> = found.iter().map(|i| i.line).collect();
        assert_eq!(lines, [1, 2, 4, 5, 6], "{found:?}");
        assert!(found[0].reason.contains("'..'"));
        assert!(found[1].reason.contains("absolute"));
        assert!(found[2].reason.contains("repeats a (already on line 3)"));
        assert!(found[3].reason.contains("itself"));
    }

    #[test]
    fn nul_bytes_and_garbage_are_invalid_and_issues_are_capped() {
        let found = issues(format!("{HEX}  a\0b\n").as_bytes());
        assert!(found[0].reason.contains("NUL"), "{found:?}");
        let garbage: Vec<u8> =
            (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        match read(&garbage) {
            Err(Error::InvalidManifest { issues, more, .. }) => {
                assert_eq!(issues.len(), MAX_ISSUES);
                assert!(more > 0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_and_oversized_manifests_are_invalid() {
        assert!(issues(b"")[0].reason.contains("lists no files"));
        assert!(issues(b"\n\n")[0].reason.contains("lists no files"));
        let (_tmp, file) = file_with(&vec![b'a'; 2000]);
        let small = Limits { max_bytes: 1000, max_line: 4096 };
        match read_manifest(&file, Path::new("m"), small) {
            Err(Error::InvalidManifest { issues, .. }) => {
                assert!(issues[0].reason.contains("larger than the limit"), "{issues:?}")
            }
            other => panic!("{other:?}"),
        }
        let long = format!("{HEX}  {}\n", "x".repeat(10_000));
        assert!(issues(long.as_bytes())[0].reason.contains("longer than the limit"));
    }

    #[test]
    fn sizes_lines_round_trip_odd_names() {
        for name in [&b"plain"[..], b"a\\b\nc", b"sp  ace", b"x\xff"] {
            let rel = Path::new(OsStr::from_bytes(name));
            let line = sizes_line(rel, 1234);
            let (back, len) = parse_sizes_line(line.strip_suffix(b"\n").unwrap()).unwrap();
            assert_eq!((back.as_path(), len), (rel, 1234), "{}", line.escape_ascii());
        }
        assert_eq!(sizes_line(Path::new("a b"), 7), b"7  a b\n");
        assert!(parse_sizes_line(b"-1  a").is_err());
        assert!(parse_sizes_line(b"99999999999999999999999  a").is_err());
        assert!(parse_sizes_line(b"12 a").is_err());
    }

    #[test]
    fn sizes_must_match_the_manifest() {
        let entries =
            read(format!("{HEX}  a\n{HEX}  b\n{HEX}  manifest.sizes\n").as_bytes()).unwrap();
        let check = |text: &[u8]| {
            let (_tmp, file) = file_with(text);
            read_sizes(&file, Path::new("s"), LIMITS, &entries)
        };
        let sizes = check(b"1  a\n2  b\n").unwrap();
        assert_eq!(sizes[OsStr::new("b")], 2);
        let err = check(b"1  a\n3  c\n").unwrap_err().to_string();
        assert!(
            err.contains("c is not in manifest.xxh128") && err.contains("(and 1 more)"),
            "{err}"
        );
        assert!(check(b"1  a\n1  a\n2  b\n").is_err());
    }
}

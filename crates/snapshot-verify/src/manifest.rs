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

use std::borrow::Cow;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use checksum::{Digest, Entry, Style};
use serde::Serialize;

use crate::lines::{self, Line, Lines};
use crate::path::normalize_rel_bytes;
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

    /// Adds `before` to the number of every line named.
    fn renumber(&mut self, before: u64) {
        self.listed.iter_mut().filter(|issue| issue.line != 0).for_each(|i| i.line += before);
    }

    /// The issues of several ranges of one file and those found across them, as if all had been
    /// pushed in the order of their lines: each part's are in line order and hold its first
    /// [`MAX_ISSUES`], so the first [`MAX_ISSUES`] of the whole are among them.
    fn merge(parts: impl IntoIterator<Item = Issues>) -> Issues {
        let mut all = Vec::new();
        let mut more = 0;
        for part in parts {
            all.extend(part.listed);
            more += part.more;
        }
        // Stable: issues of one line keep their order.
        all.sort_by_key(|issue| issue.line);
        if all.len() > MAX_ISSUES {
            more += (all.len() - MAX_ISSUES) as u64;
            all.truncate(MAX_ISSUES);
        }
        Issues { listed: all, more }
    }

    fn into_result<T>(self, path: &Path, value: T) -> Result<T> {
        if self.listed.is_empty() {
            Ok(value)
        } else {
            Err(Error::InvalidManifest { path: path.into(), issues: self.listed, more: self.more })
        }
    }
}

/// Reads a whole manifest or sizes file into memory, refusing one larger than the limit before
/// reading it, and reading at most the limit anyway (the file may grow while it is read). Held
/// whole so that it can be parsed on several threads (`lines::map_ranges`); the limit (64 MiB by
/// default, about a million files) bounds the memory, and the bytes are dropped once parsed.
pub(crate) fn read_whole(file: &File, path: &Path, limits: Limits) -> Result<Vec<u8>> {
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
    // `len <= max_bytes`: the caller's stated budget.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limits.max_bytes)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::ReadManifest { path: path.into(), source })?;
    Ok(bytes)
}

/// Recorded lengths from a sizes file, sorted by the bytes of each normal relative path (see
/// `walk::Tree` for why bytes and not `Path`) and looked up by binary search. A sorted list, not
/// a hash map: the sizes file is written sorted, so building it is one pass and no hashing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sizes {
    sorted: Vec<(OsString, u64)>,
}

impl Sizes {
    /// The sizes of `files`, in any order, each path named once.
    pub(crate) fn from_unsorted(mut files: Vec<(OsString, u64)>) -> Sizes {
        files.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Sizes { sorted: files }
    }

    /// The recorded length of `rel`.
    #[cfg(test)]
    pub(crate) fn get(&self, rel: &Path) -> Option<u64> {
        self.get_near(rel, &mut 0)
    }

    /// [`get`](Self::get), trying first the size after the one found last (`next`, updated):
    /// asked in the manifest's order, which is the sizes' order, each answer is one comparison.
    pub(crate) fn get_near(&self, rel: &Path, next: &mut usize) -> Option<u64> {
        let key = rel.as_os_str().as_bytes();
        if let Some((path, len)) = self.sorted.get(*next)
            && path.as_bytes() == key
        {
            *next += 1;
            return Some(*len);
        }
        let at = self.sorted.binary_search_by(|(p, _)| p.as_bytes().cmp(key)).ok()?;
        *next = at + 1;
        Some(self.sorted[at].1)
    }
}

/// The order of `n` items by `key` (ties in their own order), and whether they were already in
/// it with no key repeated (then nothing was sorted, and no key repeats).
fn sorted_order<'k>(n: usize, key: impl Fn(usize) -> &'k [u8]) -> (Vec<usize>, bool) {
    let mut order: Vec<usize> = (0..n).collect();
    if (1..n).all(|i| key(i - 1) < key(i)) {
        return (order, true);
    }
    order.sort_unstable_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
    (order, false)
}

/// Every item whose key an earlier item already has, by index, with the index of the first one
/// that has it; `order` is from [`sorted_order`].
fn repeats<'k>(order: &[usize], key: impl Fn(usize) -> &'k [u8]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut first = None;
    for pair in order.windows(2) {
        if key(pair[0]) == key(pair[1]) {
            let first = *first.get_or_insert(pair[0]);
            found.push((pair[1], first));
        } else {
            first = None;
        }
    }
    found.sort_unstable();
    found
}

/// One range of a manifest, parsed.
#[derive(Default)]
struct ManifestPart {
    entries: Vec<ManifestEntry>,
    /// The line of each entry.
    lines: Vec<u64>,
    issues: Issues,
}

fn parse_manifest_range(lines: &mut Lines<'_>, max_line: usize) -> ManifestPart {
    let mut part = ManifestPart::default();
    for Line { number, bytes } in lines {
        let content = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if content.len() > max_line {
            part.issues.push(number, format!("longer than the limit of {max_line} bytes"));
            continue;
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry = match checksum::parse_line_ref(bytes, number) {
            Ok(entry) => entry,
            Err(checksum::Error::Malformed { reason, .. }) => {
                part.issues.push(number, reason);
                continue;
            }
            Err(other) => {
                part.issues.push(number, other.to_string());
                continue;
            }
        };
        let rel = match normalize_rel_bytes(&entry.name) {
            Ok(rel) => rel,
            Err(reason) => {
                part.issues.push(number, reason);
                continue;
            }
        };
        if *rel == *MANIFEST.as_bytes() {
            part.issues.push(number, format!("lists the manifest itself ({MANIFEST})"));
            continue;
        }
        let path = PathBuf::from(OsString::from_vec(rel.into_owned()));
        part.entries.push(ManifestEntry { path, digest: entry.digest });
        part.lines.push(number);
    }
    part
}

/// Reads and validates a whole manifest. Every line must parse, every path must be relative,
/// free of `..` and NUL, and named once (after normalisation); the manifest must not list itself
/// and must list something. Any issue makes the whole manifest invalid. Its ranges are parsed on
/// `pool`'s threads; issues name lines as a reading from the start would.
pub(crate) fn read_manifest(
    file: &File,
    path: &Path,
    limits: Limits,
    pool: &rayon::ThreadPool,
) -> Result<Vec<ManifestEntry>> {
    let bytes = read_whole(file, path, limits)?;
    let parts = lines::map_ranges(
        &bytes,
        pool,
        |range| parse_manifest_range(range, limits.max_line),
        |part, before| {
            part.lines.iter_mut().for_each(|line| *line += before);
            part.issues.renumber(before);
        },
    );
    drop(bytes);
    let total = parts.iter().map(|part| part.entries.len()).sum();
    let (mut entries, mut lines) = (Vec::with_capacity(total), Vec::with_capacity(total));
    let mut issues = Vec::with_capacity(parts.len() + 1);
    for part in parts {
        entries.extend(part.entries);
        lines.extend(part.lines);
        issues.push(part.issues);
    }
    // A path named twice, wherever its two lines fell: compared over the whole manifest, in the
    // order of the paths' bytes (what `seal` writes, so usually one pass that finds them sorted).
    let key = |i: usize| entries[i].path.as_os_str().as_bytes();
    let (order, sorted) = sorted_order(entries.len(), key);
    let repeated = if sorted { Vec::new() } else { repeats(&order, key) };
    let mut twice = Issues::default();
    for &(later, first) in &repeated {
        let shown = names::shown(&entries[later].path);
        twice.push(lines[later], format!("repeats {shown} (already on line {})", lines[first]));
    }
    issues.push(twice);
    let mut issues = Issues::merge(issues);
    if !repeated.is_empty() {
        let mut later = repeated.iter().map(|&(later, _)| later).peekable();
        let mut index = 0;
        entries.retain(|_| {
            let keep = later.next_if_eq(&index).is_none();
            index += 1;
            keep
        });
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
fn parse_sizes_line(line: &[u8]) -> std::result::Result<(Cow<'_, [u8]>, u64), String> {
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
    let name = if escaped {
        Cow::Owned(names::unescape_manifest(raw).map_err(|e| e.reason)?)
    } else {
        Cow::Borrowed(raw)
    };
    if name.contains(&0) {
        return Err("file name contains a NUL byte".into());
    }
    Ok((name, len))
}

/// One range of a sizes file, parsed.
#[derive(Default)]
struct SizesPart {
    /// Normal relative path, length, line.
    sizes: Vec<(OsString, u64, u64)>,
    issues: Issues,
}

fn parse_sizes_range(lines: &mut Lines<'_>, max_line: usize) -> SizesPart {
    let mut part = SizesPart::default();
    for Line { number, bytes } in lines {
        if bytes.len() > max_line {
            part.issues.push(number, format!("longer than the limit of {max_line} bytes"));
            continue;
        }
        let line = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let parsed = parse_sizes_line(line).and_then(|(raw, len)| {
            normalize_rel_bytes(&raw)
                .map(|rel| (OsString::from_vec(rel.into_owned()), len))
                .map_err(str::to_owned)
        });
        match parsed {
            Ok((rel, len)) => part.sizes.push((rel, len, number)),
            Err(reason) => part.issues.push(number, reason),
        }
    }
    part
}

/// Parses a sizes file (its bytes, as read) and checks it names exactly the files in `entries`
/// (other than itself). Its ranges are parsed on `pool`'s threads.
pub(crate) fn read_sizes(
    bytes: &[u8],
    path: &Path,
    limits: Limits,
    entries: &[ManifestEntry],
    pool: &rayon::ThreadPool,
) -> Result<Sizes> {
    let parts = lines::map_ranges(
        bytes,
        pool,
        |range| parse_sizes_range(range, limits.max_line),
        |part, before| {
            part.sizes.iter_mut().for_each(|(_, _, line)| *line += before);
            part.issues.renumber(before);
        },
    );
    let mut sizes = Vec::with_capacity(parts.iter().map(|part| part.sizes.len()).sum());
    let mut issues = Vec::with_capacity(parts.len() + 1);
    for part in parts {
        sizes.extend(part.sizes);
        issues.push(part.issues);
    }
    let key = |i: usize| sizes[i].0.as_bytes();
    let (order, _) = sorted_order(sizes.len(), key);
    let mut twice = Issues::default();
    for (later, _) in repeats(&order, key) {
        twice.push(sizes[later].2, format!("repeats {}", names::shown(Path::new(&sizes[later].0))));
    }
    issues.push(twice);
    let mut issues = Issues::merge(issues);
    // Both lists in the order of the paths' bytes, walked side by side: a size for a file the
    // manifest does not list, a listed file without a size.
    let (by_path, _) = sorted_order(entries.len(), |i| entries[i].path.as_os_str().as_bytes());
    let mut unlisted = Vec::new();
    let mut without_size = Vec::new();
    let (mut s, mut e) = (0, 0);
    loop {
        let size_key = order.get(s).map(|&i| sizes[i].0.as_bytes());
        let entry_key = by_path.get(e).map(|&i| entries[i].path.as_os_str().as_bytes());
        match (size_key, entry_key) {
            (None, None) => break,
            (Some(size), Some(entry)) if size == entry => {
                s += 1;
                // A repeated sizes line (already an issue) matches the same entry.
                if order.get(s).is_none_or(|&i| sizes[i].0.as_bytes() != size) {
                    e += 1;
                }
            }
            (Some(size), entry) if entry.is_none_or(|entry| size < entry) => {
                // Once per path, however often it is repeated.
                if order.get(s + 1).is_none_or(|&i| sizes[i].0.as_bytes() != size) {
                    unlisted.push(order[s]);
                }
                s += 1;
            }
            _ => {
                without_size.push(by_path[e]);
                e += 1;
            }
        }
    }
    for i in unlisted {
        issues.push(0, format!("{} is not in {MANIFEST}", names::shown(Path::new(&sizes[i].0))));
    }
    // In the manifest's order.
    without_size.sort_unstable();
    let own = Path::new(crate::SIZES);
    for i in without_size {
        if entries[i].path != own {
            issues.push(0, format!("has no size for {}", names::shown(&entries[i].path)));
        }
    }
    let sizes = Sizes::from_unsorted(sizes.into_iter().map(|(rel, len, _)| (rel, len)).collect());
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

    /// Four threads: with the tests' tiny ranges (`lines`), a manifest of a few lines is cut
    /// into several ranges parsed at once.
    fn pool() -> rayon::ThreadPool {
        crate::verify::pool(Some(4)).unwrap()
    }

    fn read(bytes: &[u8]) -> Result<Vec<ManifestEntry>> {
        let (_tmp, file) = file_with(bytes);
        read_manifest(&file, Path::new("m"), LIMITS, &pool())
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
        match read_manifest(&file, Path::new("m"), small, &pool()) {
            Err(Error::InvalidManifest { issues, .. }) => {
                assert!(issues[0].reason.contains("larger than the limit"), "{issues:?}")
            }
            other => panic!("{other:?}"),
        }
        let long = format!("{HEX}  {}\n", "x".repeat(10_000));
        assert!(issues(long.as_bytes())[0].reason.contains("longer than the limit"));
    }

    /// `n` sorted lines `HEX  d/fNNN`, as a seal writes them.
    fn lines_of(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{HEX}  d/f{i:03}")).collect()
    }

    #[test]
    fn ranges_cut_mid_line_with_crlf_and_no_last_line_end_read_as_one_pass() {
        let lines = lines_of(40);
        let text = lines.join("\r\n"); // no line end after the last
        let entries = read(text.as_bytes()).unwrap();
        let paths: Vec<String> =
            entries.iter().map(|e| e.path.to_string_lossy().into_owned()).collect();
        let expected: Vec<String> = (0..40).map(|i| format!("d/f{i:03}")).collect();
        assert_eq!(paths, expected);
    }

    #[test]
    fn a_repeat_in_another_range_is_found_and_issues_keep_the_file_order() {
        // 40 lines of 41 bytes on 4 threads: four ranges, lines 3 and 37 in the first and last.
        let mut lines = lines_of(40);
        lines[36] = format!("{HEX}  ./d/f002");
        lines[19] = "not a line".into();
        lines[38] = format!("{HEX}  /abs");
        let found = issues((lines.join("\n") + "\n").as_bytes());
        let numbers: Vec<u64> = found.iter().map(|i| i.line).collect();
        assert_eq!(numbers, [20, 37, 39], "{found:?}");
        assert_eq!(found[1].reason, "repeats d/f002 (already on line 3)");
        // Every later copy names the first.
        let mut thrice = lines_of(40);
        thrice[20] = format!("{HEX}  d/f000");
        thrice[39] = format!("{HEX}  d//f000");
        let found = issues((thrice.join("\n") + "\n").as_bytes());
        let reasons: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            reasons,
            [
                "line 21: repeats d/f000 (already on line 1)",
                "line 40: repeats d/f000 (already on line 1)"
            ]
        );
    }

    #[test]
    fn the_sizes_file_is_checked_across_ranges() {
        let mut text = lines_of(30).join("\n") + "\n";
        text += &format!("{HEX}  manifest.sizes\n");
        let entries = read(text.as_bytes()).unwrap();
        let sizes_of = |skip: usize, repeat: Option<(usize, usize)>| {
            let mut lines: Vec<String> =
                (0..30).filter(|&i| i != skip).map(|i| format!("{i}  d/f{i:03}")).collect();
            if let Some((at, of)) = repeat {
                lines[at] = format!("7  d/f{of:03}");
            }
            lines.join("\n") + "\n"
        };
        let check =
            |text: String| read_sizes(text.as_bytes(), Path::new("s"), LIMITS, &entries, &pool());
        let sizes = check(sizes_of(usize::MAX, None)).unwrap();
        assert_eq!(sizes.get(Path::new("d/f029")), Some(29));
        assert_eq!(sizes.get(Path::new("d/f030")), None);
        // d/f013 is missing, and line 28 (d/f028's, after it) repeats d/f001 instead.
        let err = check(sizes_of(13, Some((27, 1)))).unwrap_err();
        let Error::InvalidManifest { issues, .. } = err else { panic!("{err:?}") };
        let reasons: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(
            reasons,
            ["line 28: repeats d/f001", "has no size for d/f013", "has no size for d/f028"]
        );
    }

    #[test]
    fn sizes_lines_round_trip_odd_names() {
        for name in [&b"plain"[..], b"a\\b\nc", b"sp  ace", b"x\xff"] {
            let rel = Path::new(OsStr::from_bytes(name));
            let line = sizes_line(rel, 1234);
            let (back, len) = parse_sizes_line(line.strip_suffix(b"\n").unwrap()).unwrap();
            assert_eq!((&back[..], len), (name, 1234), "{}", line.escape_ascii());
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
        let check = |text: &[u8]| read_sizes(text, Path::new("s"), LIMITS, &entries, &pool());
        let sizes = check(b"1  a\n2  b\n").unwrap();
        assert_eq!(sizes.get(Path::new("b")), Some(2));
        let err = check(b"1  a\n3  c\n").unwrap_err().to_string();
        assert!(
            err.contains("c is not in manifest.xxh128") && err.contains("(and 1 more)"),
            "{err}"
        );
        assert!(check(b"1  a\n1  a\n2  b\n").is_err());
    }
}

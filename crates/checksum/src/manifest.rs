//! Manifest lines in every style xxhsum writes, read with bounded memory.
//!
//! | style | example |
//! |-------|---------|
//! | GNU (`xxhsum -H0/-H1/-H2`) | `364b7492fe58a3947e824cae26e04823  f.txt` (algorithm told by 8/16/32 hex digits) |
//! | GNU, XXH3 (`xxhsum -H3`, 0.8.2+) | `XXH3_63303a0bd556a055  f.txt` |
//! | BSD (`xxhsum --tag`, and `-H3` in 0.8.1) | `XXH128 (f.txt) = 364b7492fe58a3947e824cae26e04823` |
//!
//! A name containing a backslash, newline or carriage return is escaped the way coreutils and
//! xxhsum 0.8.2+ do: the line starts with `\`, and in the name `\\`, `\n` and `\r` stand for those
//! characters. GNU lines may mark binary mode with `*` before the name. CRLF line ends are accepted.

use std::borrow::Cow;
use std::ffi::OsString;
use std::io::{self, BufRead, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::{Algo, Digest, Error, Result};

/// Longest manifest line [`ManifestReader::new`] callers usually want: far beyond `PATH_MAX`
/// (4096) even with every byte escaped, far below anything that could hurt memory.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// Which line style an entry was read in, or should be written in.
///
/// ```
/// assert_eq!(checksum::Style::default(), checksum::Style::Gnu);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Style {
    /// `<hex>  <path>` (`XXH3_<hex>  <path>` for XXH3, so it cannot be mistaken for XXH64).
    #[default]
    Gnu,
    /// `XXH128 (<path>) = <hex>`, as `xxhsum --tag` writes.
    Bsd,
}

/// One manifest line: a digest and the path it belongs to.
///
/// ```
/// use checksum::{parse_line, format_line};
/// let line = b"XXH64 (f.txt) = 2d7f1808da1fa63c\n";
/// let entry = parse_line(line, 1).unwrap();
/// assert_eq!(entry.path, std::path::Path::new("f.txt"));
/// assert_eq!(format_line(&entry), line);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The expected digest.
    pub digest: Digest,
    /// The path, exactly as the bytes in the manifest (unescaped); never lossily converted.
    pub path: PathBuf,
    /// The style of the line.
    pub style: Style,
}

/// One manifest line parsed in place: the name borrowed from the line unless it had to be
/// unescaped. What [`parse_line_ref`] returns; [`EntryRef::into_entry`] makes it an [`Entry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The expected digest.
    pub digest: Digest,
    /// The name's bytes, unescaped.
    pub name: Cow<'a, [u8]>,
    /// The style of the line.
    pub style: Style,
}

impl EntryRef<'_> {
    /// The owned [`Entry`].
    ///
    /// ```
    /// let e = checksum::parse_line_ref(b"67edc1eb  f.txt", 1).unwrap().into_entry();
    /// assert_eq!(e.path, std::path::Path::new("f.txt"));
    /// ```
    pub fn into_entry(self) -> Entry {
        let path = PathBuf::from(OsString::from_vec(self.name.into_owned()));
        Entry { digest: self.digest, path, style: self.style }
    }
}

/// Parses one manifest line (with or without its line end) in any style xxhsum writes.
///
/// `line_no` only labels the error. A malformed line is an [`Error::Malformed`], never a panic.
///
/// ```
/// let e = checksum::parse_line(b"67edc1eb  f.txt\r\n", 7).unwrap();
/// assert_eq!(e.digest.algo(), checksum::Algo::Xxh32);
/// let err = checksum::parse_line(b"abc  f.txt", 7).unwrap_err();
/// assert!(err.to_string().starts_with("line 7:"));
/// ```
pub fn parse_line(line: &[u8], line_no: u64) -> Result<Entry> {
    parse_line_ref(line, line_no).map(EntryRef::into_entry)
}

/// [`parse_line`] without copying the name out of the line (unless it was escaped): for readers
/// of many lines, which then copy each name once, into whatever they keep.
///
/// ```
/// let e = checksum::parse_line_ref(b"\\67edc1eb  a\\nb\n", 1).unwrap();
/// assert_eq!(&e.name[..], b"a\nb");
/// ```
pub fn parse_line_ref(line: &[u8], line_no: u64) -> Result<EntryRef<'_>> {
    let bad = |reason: String| Error::Malformed { line: line_no, reason };
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(bad("empty line".into()));
    }
    let (escaped, rest) = match line.strip_prefix(b"\\") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let (digest, raw_name, style) = match parse_bsd(rest) {
        Some(parsed) => parsed.map_err(bad)?,
        None => parse_gnu(rest).map_err(bad)?,
    };
    if raw_name.is_empty() {
        return Err(bad("no file name".into()));
    }
    let name = if escaped {
        Cow::Owned(names::unescape_manifest(raw_name).map_err(|e| bad(e.reason))?)
    } else {
        Cow::Borrowed(raw_name)
    };
    if name.contains(&0) {
        return Err(bad("file name contains a NUL byte".into()));
    }
    Ok(EntryRef { digest, name, style })
}

type Parsed<'a> = (Digest, &'a [u8], Style);

/// `TAG (name) = hex`; `None` if the line does not start like a BSD line at all.
fn parse_bsd(line: &[u8]) -> Option<Result<Parsed<'_>, String>> {
    if !line.starts_with(b"XXH") {
        return None;
    }
    let space = line.iter().position(|&b| b == b' ')?;
    let tag = std::str::from_utf8(&line[..space]).ok()?;
    if !line[space..].starts_with(b" (") {
        return None;
    }
    Some((|| {
        let algo = Algo::from_tag(tag).ok_or_else(|| format!("unknown algorithm tag {tag:?}"))?;
        let body = &line[space + 2..];
        let close = rfind(body, b") = ").ok_or("BSD line without \") = \"")?;
        let hex = std::str::from_utf8(&body[close + 4..]).map_err(|_| "digest is not hex")?;
        let digest = Digest::from_hex(algo, hex).map_err(|e| hex_reason(&e))?;
        Ok((digest, &body[..close], Style::Bsd))
    })())
}

/// `hex  name`, `hex *name` or `XXH3_hex  name`.
fn parse_gnu(line: &[u8]) -> Result<Parsed<'_>, String> {
    let space = line.iter().position(|&b| b == b' ').ok_or("no space between digest and name")?;
    let token = std::str::from_utf8(&line[..space]).map_err(|_| "digest is not hex")?;
    let (algo, hex) = match token.strip_prefix("XXH3_") {
        Some(hex) => (Algo::Xxh3, hex),
        None => {
            let algo = match token.len() {
                // `from_hex` checks the digits too; this says which token was not a digest.
                _ if !token.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    return Err(format!("{token:?} is not a hex digest"));
                }
                8 => Algo::Xxh32,
                16 => Algo::Xxh64,
                32 => Algo::Xxh128,
                n => return Err(format!("a digest of {n} hex digits matches no xxHash algorithm")),
            };
            (algo, token)
        }
    };
    let digest = Digest::from_hex(algo, hex).map_err(|e| hex_reason(&e))?;
    match line.get(space + 1) {
        Some(b' ' | b'*') => Ok((digest, &line[space + 2..], Style::Gnu)),
        _ => Err("expected two spaces (or \" *\") between digest and name".into()),
    }
}

fn hex_reason(err: &Error) -> String {
    match err {
        Error::BadHex { reason, .. } => format!("digest {reason}"),
        other => other.to_string(),
    }
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Formats an entry as one line, ending in `\n`, in its [`Style`]. Names with a backslash,
/// newline or carriage return are escaped (the line starts with `\`).
///
/// ```
/// use checksum::{format_line, hash_bytes, Algo, Entry, Style};
/// let entry = Entry { digest: hash_bytes(Algo::Xxh3, b"test\n"), path: "a\nb".into(), style: Style::Gnu };
/// assert_eq!(format_line(&entry), b"\\XXH3_63303a0bd556a055  a\\nb\n");
/// ```
pub fn format_line(entry: &Entry) -> Vec<u8> {
    let name = entry.path.as_os_str().as_bytes();
    let escape = names::needs_manifest_escape(name);
    let mut line = Vec::with_capacity(name.len() + 48);
    if escape {
        line.push(b'\\');
    }
    let hex = entry.digest.to_hex();
    match entry.style {
        Style::Gnu => {
            if entry.digest.algo() == Algo::Xxh3 {
                line.extend_from_slice(b"XXH3_");
            }
            line.extend_from_slice(hex.as_bytes());
            line.extend_from_slice(b"  ");
            push_name(&mut line, name, escape);
        }
        Style::Bsd => {
            line.extend_from_slice(entry.digest.algo().tag().as_bytes());
            line.extend_from_slice(b" (");
            push_name(&mut line, name, escape);
            line.extend_from_slice(b") = ");
            line.extend_from_slice(hex.as_bytes());
        }
    }
    line.push(b'\n');
    line
}

fn push_name(line: &mut Vec<u8>, name: &[u8], escape: bool) {
    if escape {
        names::escape_manifest(line, name);
    } else {
        line.extend_from_slice(name);
    }
}

/// Reads manifest entries line by line with memory bounded by `max_line`.
///
/// A line longer than the limit is an [`Error::LineTooLong`]; it is skipped without ever being
/// held in memory, and reading goes on with the next line. Blank lines are skipped. Each item is
/// the 1-based line number and the entry, or the error for that line; after an I/O error on the
/// manifest itself the iterator ends.
///
/// ```
/// let text = b"67edc1eb  a\n\nnot a line\n";
/// let items: Vec<_> = checksum::ManifestReader::new(&text[..], 1024).collect();
/// assert_eq!(items.len(), 2);
/// assert_eq!(items[0].as_ref().unwrap().0, 1);
/// assert!(items[1].as_ref().unwrap_err().to_string().starts_with("line 3:"));
/// ```
pub struct ManifestReader<R> {
    reader: R,
    max_line: usize,
    line_no: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> ManifestReader<R> {
    /// A reader refusing lines longer than `max_line` bytes (line end excluded); see
    /// [`DEFAULT_MAX_LINE`].
    ///
    /// ```
    /// let mut r = checksum::ManifestReader::new(&b""[..], checksum::DEFAULT_MAX_LINE);
    /// assert!(r.next().is_none());
    /// ```
    pub fn new(reader: R, max_line: usize) -> Self {
        ManifestReader { reader, max_line, line_no: 0, buf: Vec::new(), done: false }
    }

    /// Reads the next raw line into `self.buf`; `Ok(false)` at the end.
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let limit = self.max_line as u64 + 2; // the line, "\r\n" may follow
        let n = (&mut self.reader).take(limit).read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        let content = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.len() <= self.max_line {
            return Ok(Some(true));
        }
        if !self.buf.ends_with(b"\n") {
            skip_line(&mut self.reader)?;
        }
        self.buf.clear();
        Ok(Some(false))
    }
}

fn skip_line(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(());
        }
        if let Some(i) = available.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok(());
        }
        let n = available.len();
        reader.consume(n);
    }
}

impl<R: BufRead> Iterator for ManifestReader<R> {
    type Item = Result<(u64, Entry)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.line_no += 1;
            let line = self.line_no;
            match self.read_line() {
                Ok(None) => self.done = true,
                Ok(Some(false)) => {
                    return Some(Err(Error::LineTooLong { line, max: self.max_line }));
                }
                Ok(Some(true)) if self.buf.iter().all(u8::is_ascii_whitespace) => {}
                Ok(Some(true)) => return Some(parse_line(&self.buf, line).map(|e| (line, e))),
                Err(source) => {
                    self.done = true;
                    return Some(Err(Error::ReadManifest { line, source }));
                }
            }
        }
        None
    }
}

/// The bytes of a path as they appear in a manifest.
///
/// ```
/// assert_eq!(checksum::path_bytes(std::path::Path::new("a/b")), b"a/b");
/// ```
pub fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_bytes;
    use std::ffi::OsStr;

    fn entry(algo: Algo, name: &[u8], style: Style) -> Entry {
        Entry {
            digest: hash_bytes(algo, b"test\n"),
            path: PathBuf::from(OsStr::from_bytes(name)),
            style,
        }
    }

    #[test]
    fn reads_every_style_xxhsum_writes() {
        // Lines as written by xxhsum 0.8.1 (-H0, -H1, -H2, -H3 / --tag) and 0.8.2 (-H3).
        let cases: [(&[u8], Algo, Style); 7] = [
            (b"67edc1eb  f.txt", Algo::Xxh32, Style::Gnu),
            (b"2d7f1808da1fa63c  f.txt", Algo::Xxh64, Style::Gnu),
            (b"364b7492fe58a3947e824cae26e04823  f.txt", Algo::Xxh128, Style::Gnu),
            (b"XXH3_63303a0bd556a055  f.txt", Algo::Xxh3, Style::Gnu),
            (b"XXH3 (f.txt) = 63303a0bd556a055", Algo::Xxh3, Style::Bsd),
            (b"XXH128 (f.txt) = 364b7492fe58a3947e824cae26e04823", Algo::Xxh128, Style::Bsd),
            (b"XXH32 (f.txt) = 67edc1eb", Algo::Xxh32, Style::Bsd),
        ];
        for (line, algo, style) in cases {
            let e = parse_line(line, 1).unwrap();
            assert_eq!(e, entry(algo, b"f.txt", style), "{}", line.escape_ascii());
            assert_eq!(format_line(&e), [line, b"\n"].concat());
        }
    }

    #[test]
    fn binary_marker_crlf_and_odd_names() {
        let e = parse_line(b"67edc1eb *f.txt\r\n", 1).unwrap();
        assert_eq!(e.path, Path::new("f.txt"));
        // A BSD name may itself contain ") = ": the last one separates the digest.
        let e = parse_line(b"XXH32 (a) = b) = 67edc1eb", 1).unwrap();
        assert_eq!(e.path, Path::new("a) = b"));
        // A GNU name may start with spaces.
        let e = parse_line(b"67edc1eb   lead", 1).unwrap();
        assert_eq!(e.path, Path::new(" lead"));
    }

    #[test]
    fn escaped_names_round_trip_like_coreutils() {
        let e = entry(Algo::Xxh128, b"a\\b\nc\rd", Style::Gnu);
        let line = format_line(&e);
        assert_eq!(
            line,
            b"\\364b7492fe58a3947e824cae26e04823  a\\\\b\\nc\\rd\n".to_vec(),
            "{}",
            line.escape_ascii()
        );
        assert_eq!(parse_line(&line, 1).unwrap(), e);
        let bsd = entry(Algo::Xxh64, b"x\ny", Style::Bsd);
        assert_eq!(format_line(&bsd), b"\\XXH64 (x\\ny) = 2d7f1808da1fa63c\n");
        assert_eq!(parse_line(&format_line(&bsd), 1).unwrap(), bsd);
    }

    #[test]
    fn malformed_lines_are_typed_errors_with_line_numbers() {
        let cases: [&[u8]; 11] = [
            b"",
            b"67edc1eb",
            b"67edc1eb f.txt",
            b"67edc1eb  ",
            b"67edc1e  f.txt",
            b"67edc1ebzz  f.txt",
            b"MD5 (f) = 67edc1eb",
            b"XXH99 (f) = 67edc1eb",
            b"XXH32 (f) = 67edc1ebff",
            b"\\67edc1eb  bad\\q",
            b"67edc1eb  a\0b",
        ];
        for line in cases {
            let err = parse_line(line, 42).unwrap_err();
            assert!(
                matches!(err, Error::Malformed { line: 42, .. }),
                "{} -> {err}",
                line.escape_ascii()
            );
        }
        let msg = parse_line(b"XXH99 (f) = 67edc1eb", 3).unwrap_err().to_string();
        assert!(msg.contains("unknown algorithm tag \"XXH99\""), "{msg}");
    }

    #[test]
    fn reader_skips_overlong_lines_without_buffering_them() {
        let long = vec![b'a'; 10_000];
        let text = [&b"67edc1eb  a\n"[..], &long, b"\n67edc1eb  b\r\n"].concat();
        let mut reader = ManifestReader::new(&text[..], 100);
        assert_eq!(reader.next().unwrap().unwrap().1.path, Path::new("a"));
        assert!(matches!(reader.next().unwrap(), Err(Error::LineTooLong { line: 2, max: 100 })));
        assert!(reader.buf.capacity() < 1000, "the long line was buffered");
        assert_eq!(reader.next().unwrap().unwrap(), (3, parse_line(b"67edc1eb  b", 3).unwrap()));
        assert!(reader.next().is_none());
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted() {
        let line = b"67edc1eb  abcd"; // 14 bytes
        let text = [&line[..], b"\r\n"].concat();
        assert!(ManifestReader::new(&text[..], 14).next().unwrap().is_ok());
        assert!(ManifestReader::new(&text[..], 13).next().unwrap().is_err());
        assert!(ManifestReader::new(&line[..], 14).next().unwrap().is_ok()); // no line end
    }
}

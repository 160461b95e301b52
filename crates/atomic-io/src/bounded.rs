//! Reads with hard limits: no input file or line can make memory grow past a configured maximum.
//!
//! - [`read_bounded`]: a whole file, refused if larger than a maximum, by its metadata and again
//!   while reading (a file can grow between the two).
//! - [`LineReader`]: lines of at most `max_line` bytes; a longer line is an error naming its number,
//!   and is skipped, never buffered.
//! - [`validate_jsonl`]: a JSON Lines file checked line by line with `serde_json`, with the limits of
//!   a training daemon that reads untrusted JSONL (10 GB per file, 100 MB per line by default).
//!
//! Files are opened with `O_NONBLOCK` and checked with `fstat` before reading, so a FIFO or device
//! given by mistake is refused instead of blocking forever.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::de::IgnoredAny;

use crate::error::JsonlProblem;
use crate::{ReadError, Result, sys};

/// Buffer size of the file reader under [`validate_jsonl`].
const READ_BUFFER: usize = 256 * 1024;
/// The smallest line buffer a [`LineReader`] allocates once a line is not empty.
const MIN_LINE_CAPACITY: usize = 8 * 1024;

/// Reads all of `path` into memory, failing with [`ReadError::FileTooLarge`] if it has more than `max`
/// bytes, whether its metadata says so or it grows while being read. At most `max + 1` bytes are
/// ever read.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use atomic_io::{ReadError, bounded::read_bounded};
///
/// let path = dir.path().join("config.json");
/// std::fs::write(&path, b"{}")?;
/// assert_eq!(read_bounded(&path, 2)?, b"{}");
/// assert!(matches!(read_bounded(&path, 1), Err(ReadError::FileTooLarge { len: 2, max: 1, .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_bounded(path: impl AsRef<Path>, max: u64) -> Result<Vec<u8>, ReadError> {
    let path = path.as_ref();
    let file = open_regular(path)?;
    let len =
        file.metadata().map_err(|source| ReadError::Read { path: path.into(), source })?.len();
    if len > max {
        return Err(ReadError::FileTooLarge { path: path.into(), len, max });
    }
    // `len <= max`, and a `Vec` this size was the caller's stated budget.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Read { path: path.into(), source })?;
    let read = bytes.len() as u64;
    if read > max {
        return Err(ReadError::FileTooLarge { path: path.into(), len: read, max });
    }
    Ok(bytes)
}

/// Opens `path` for reading without blocking on a FIFO and refuses anything but a regular file.
fn open_regular(path: &Path) -> Result<File, ReadError> {
    let file =
        sys::open_nonblock(path).map_err(|source| ReadError::Open { path: path.into(), source })?;
    let meta = file.metadata().map_err(|source| ReadError::Open { path: path.into(), source })?;
    if !meta.is_file() {
        let kind = names::FileKind::of(&meta).unwrap_or(names::FileKind::Other);
        return Err(ReadError::NotAFile { path: path.into(), kind });
    }
    Ok(file)
}

/// Reads lines of at most `max_line` bytes (not counting the `\n`) from a `BufRead`.
///
/// A longer line fails with [`ReadError::LineTooLong`] naming its 1-based number; its bytes are
/// consumed but never stored, so memory stays at most `max_line` plus the `BufRead`'s own buffer.
/// The next call goes on after that line. The last line needs no trailing `\n`; a `\r` before the
/// `\n` is kept.
///
/// ```
/// use atomic_io::{ReadError, bounded::LineReader};
///
/// let input = b"short\nthis line is far too long\nok\n";
/// let mut lines = LineReader::new(&input[..], 10);
/// assert_eq!(lines.next_line()?, Some(&b"short"[..]));
/// assert!(matches!(lines.next_line(), Err(ReadError::LineTooLong { line: 2, max: 10 })));
/// assert_eq!(lines.next_line()?, Some(&b"ok"[..]));
/// assert_eq!(lines.line_number(), 3);
/// assert_eq!(lines.next_line()?, None);
/// # Ok::<(), atomic_io::ReadError>(())
/// ```
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    max_line: u64,
    line: Vec<u8>,
    line_number: u64,
    /// Bytes consumed from `inner`, newlines included.
    bytes: u64,
    /// The rest of an over-long line must be skipped before the next one starts.
    skipping: bool,
}

impl<R: BufRead> LineReader<R> {
    /// A reader of lines of at most `max_line` bytes.
    ///
    /// ```
    /// let lines = atomic_io::bounded::LineReader::new(std::io::empty(), 100);
    /// assert_eq!(lines.line_number(), 0);
    /// ```
    pub fn new(inner: R, max_line: u64) -> LineReader<R> {
        LineReader { inner, max_line, line: Vec::new(), line_number: 0, bytes: 0, skipping: false }
    }

    /// The next line without its `\n`, `None` at the end of input.
    ///
    /// ```
    /// let mut lines = atomic_io::bounded::LineReader::new(&b"a\nb"[..], 1);
    /// assert_eq!(lines.next_line()?, Some(&b"a"[..]));
    /// assert_eq!(lines.next_line()?, Some(&b"b"[..]));
    /// assert_eq!(lines.next_line()?, None);
    /// # Ok::<(), atomic_io::ReadError>(())
    /// ```
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, ReadError> {
        self.line.clear();
        if self.skipping {
            if !self.skip_rest_of_line()? {
                return Ok(None);
            }
            self.skipping = false;
        }
        let mut started = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(available) => available,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ReadError::ReadLine { line: self.line_number + 1, source });
                }
            };
            if available.is_empty() {
                if !started {
                    return Ok(None);
                }
                self.line_number += 1;
                return Ok(Some(&self.line));
            }
            started = true;
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.unwrap_or(available.len());
            if self.line.len() as u64 + take as u64 > self.max_line {
                let consumed = newline.map_or(take, |n| n + 1);
                self.inner.consume(consumed);
                self.bytes += consumed as u64;
                self.line_number += 1;
                self.skipping = newline.is_none();
                self.line.clear();
                return Err(ReadError::LineTooLong { line: self.line_number, max: self.max_line });
            }
            reserve_bounded(&mut self.line, take, self.max_line);
            self.line.extend_from_slice(&available[..take]);
            let consumed = newline.map_or(take, |n| n + 1);
            self.inner.consume(consumed);
            self.bytes += consumed as u64;
            if newline.is_some() {
                self.line_number += 1;
                return Ok(Some(&self.line));
            }
        }
    }

    /// Consumes input up to and including the next `\n`; false if the input ended first.
    fn skip_rest_of_line(&mut self) -> Result<bool, ReadError> {
        loop {
            let available = match self.inner.fill_buf() {
                Ok(available) => available,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                // Still the over-long line, whose number was already counted.
                Err(source) => return Err(ReadError::ReadLine { line: self.line_number, source }),
            };
            if available.is_empty() {
                return Ok(false);
            }
            let (consumed, found) = match available.iter().position(|&b| b == b'\n') {
                Some(n) => (n + 1, true),
                None => (available.len(), false),
            };
            self.inner.consume(consumed);
            self.bytes += consumed as u64;
            if found {
                return Ok(true);
            }
        }
    }

    /// The 1-based number of the line last returned (or refused); 0 before the first.
    ///
    /// ```
    /// let mut lines = atomic_io::bounded::LineReader::new(&b"a\nb\n"[..], 8);
    /// lines.next_line()?;
    /// assert_eq!(lines.line_number(), 1);
    /// # Ok::<(), atomic_io::ReadError>(())
    /// ```
    pub fn line_number(&self) -> u64 {
        self.line_number
    }

    /// Bytes consumed from the input so far, newlines and skipped over-long lines included.
    ///
    /// ```
    /// let mut lines = atomic_io::bounded::LineReader::new(&b"ab\ncd"[..], 8);
    /// while lines.next_line()?.is_some() {}
    /// assert_eq!(lines.bytes_read(), 5);
    /// # Ok::<(), atomic_io::ReadError>(())
    /// ```
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The capacity of the reader's own line buffer: never more than `max_line` (plus nothing for
    /// skipped over-long lines). For tests and monitoring of the memory bound.
    ///
    /// ```
    /// let long = vec![b'x'; 1 << 20];
    /// let mut lines = atomic_io::bounded::LineReader::new(&long[..], 1000);
    /// assert!(lines.next_line().is_err());
    /// assert!(lines.buffer_capacity() <= 1000);
    /// ```
    pub fn buffer_capacity(&self) -> usize {
        self.line.capacity()
    }
}

/// Limits for [`validate_jsonl`]. The defaults are the training daemon's: 10 GB per file, 100 MB
/// per line.
///
/// ```
/// let limits = atomic_io::bounded::JsonlLimits::default();
/// assert_eq!((limits.max_file, limits.max_line), (10_000_000_000, 100_000_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonlLimits {
    /// Longest line accepted, in bytes, without its `\n`.
    pub max_line: u64,
    /// Largest file accepted, in bytes.
    pub max_file: u64,
}

impl Default for JsonlLimits {
    fn default() -> JsonlLimits {
        JsonlLimits { max_line: 100_000_000, max_file: 10_000_000_000 }
    }
}

/// What [`validate_jsonl`] counted in a valid file.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("log.jsonl");
/// std::fs::write(&path, "{\"a\":1}\n[2]\n")?;
/// let report = atomic_io::bounded::validate_jsonl(&path, &Default::default())?;
/// assert_eq!((report.lines, report.bytes), (2, 12));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonlReport {
    /// Number of lines, each one JSON value.
    pub lines: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// Checks that `path` is a JSON Lines file within `limits`: every line one JSON value (parsed by
/// `serde_json`, without building the value in memory).
///
/// Blank lines (empty or white space only) are **refused**, as the JSON Lines format says each line
/// is a value; a file ending in `\n` does not end in a blank line, and a last line without `\n`
/// counts. A `\r\n` line end is accepted (`\r` is JSON white space). The first offending line is
/// reported as [`ReadError::Jsonl`] with its number and a [`JsonlProblem`]; a file over `max_file`
/// (by its metadata, or grown while being read) as [`ReadError::FileTooLarge`]. Memory is bounded by
/// `max_line` plus a 256 KiB read buffer.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use atomic_io::{JsonlProblem, ReadError, bounded::{validate_jsonl, JsonlLimits}};
///
/// let path = dir.path().join("batch.jsonl");
/// std::fs::write(&path, b"{\"text\": \"a\"}\n{\"text\": \"b\"}\n")?;
/// let report = validate_jsonl(&path, &JsonlLimits::default())?;
/// assert_eq!((report.lines, report.bytes), (2, 28));
///
/// std::fs::write(&path, b"{\"text\": \"a\"}\n{\"text\": \n")?;
/// let err = validate_jsonl(&path, &JsonlLimits::default()).unwrap_err();
/// assert!(matches!(err, ReadError::Jsonl { line: 2, problem: JsonlProblem::Json(_), .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn validate_jsonl(
    path: impl AsRef<Path>,
    limits: &JsonlLimits,
) -> Result<JsonlReport, ReadError> {
    let path = path.as_ref();
    let file = open_regular(path)?;
    let len =
        file.metadata().map_err(|source| ReadError::Read { path: path.into(), source })?.len();
    let too_large = |len| ReadError::FileTooLarge { path: path.into(), len, max: limits.max_file };
    if len > limits.max_file {
        return Err(too_large(len));
    }
    let input = BufReader::with_capacity(READ_BUFFER, file.take(limits.max_file.saturating_add(1)));
    let mut lines = LineReader::new(input, limits.max_line);
    let mut count = 0;
    loop {
        let checked = lines.next_line().map(|line| line.map(check_json_line));
        // Growth past the limit outranks whatever the cut-off last line looks like.
        if lines.bytes_read() > limits.max_file {
            return Err(too_large(lines.bytes_read()));
        }
        let problem = match checked {
            Ok(None) => break,
            Ok(Some(None)) => {
                count += 1;
                continue;
            }
            Ok(Some(Some(problem))) => problem,
            Err(ReadError::LineTooLong { max, .. }) => JsonlProblem::TooLong { max },
            Err(ReadError::ReadLine { source, .. }) => {
                return Err(ReadError::Read { path: path.into(), source });
            }
            Err(other) => return Err(other),
        };
        return Err(ReadError::Jsonl { path: path.into(), line: lines.line_number(), problem });
    }
    Ok(JsonlReport { lines: count, bytes: lines.bytes_read() })
}

/// Grows `line` for `more` bytes without ever going past `max_line` (plain `Vec` doubling could
/// reach twice the limit). The caller has checked that `line.len() + more <= max_line`.
fn reserve_bounded(line: &mut Vec<u8>, more: usize, max_line: u64) {
    let needed = line.len() + more;
    if needed <= line.capacity() {
        return;
    }
    let limit = usize::try_from(max_line).unwrap_or(usize::MAX);
    let wanted = (line.capacity() * 2).max(MIN_LINE_CAPACITY).min(limit).max(needed);
    line.reserve_exact(wanted - line.len());
}

/// What is wrong with one JSONL line, if anything.
fn check_json_line(line: &[u8]) -> Option<JsonlProblem> {
    if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
        return Some(JsonlProblem::Blank);
    }
    let Ok(text) = std::str::from_utf8(line) else { return Some(JsonlProblem::NotUtf8) };
    serde_json::from_str::<IgnoredAny>(text).err().map(JsonlProblem::Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: &[u8], max: u64) -> Vec<std::result::Result<Vec<u8>, u64>> {
        let mut reader = LineReader::new(input, max);
        let mut out = Vec::new();
        loop {
            match reader.next_line() {
                Ok(Some(line)) => out.push(Ok(line.to_vec())),
                Ok(None) => return out,
                Err(ReadError::LineTooLong { line, .. }) => out.push(Err(line)),
                Err(other) => panic!("{other}"),
            }
        }
    }

    #[test]
    fn lines_split_like_bufread_lines() {
        let ok = |s: &str| Ok(s.as_bytes().to_vec());
        assert_eq!(lines_of(b"", 4), vec![]);
        assert_eq!(lines_of(b"\n", 4), vec![ok("")]);
        assert_eq!(lines_of(b"a\n\nb", 4), vec![ok("a"), ok(""), ok("b")]);
        assert_eq!(lines_of(b"a\r\n", 4), vec![ok("a\r")]);
        assert_eq!(lines_of(b"abcd\nabcde\nabc", 4), vec![ok("abcd"), Err(2), ok("abc")]);
        assert_eq!(lines_of(b"abcdefgh", 4), vec![Err(1)]);
        assert_eq!(lines_of(b"abcdefgh\n", 4), vec![Err(1)]);
    }

    #[test]
    fn long_lines_across_small_buffer_reads_are_skipped_not_stored() {
        // A 3-byte BufReader makes every line span several fill_buf calls.
        let input = b"12\n123456789\n1234\n12345\n".to_vec();
        let reader = BufReader::with_capacity(3, &input[..]);
        let mut lines = LineReader::new(reader, 4);
        assert_eq!(lines.next_line().unwrap(), Some(&b"12"[..]));
        assert!(matches!(lines.next_line(), Err(ReadError::LineTooLong { line: 2, max: 4 })));
        assert!(lines.buffer_capacity() <= 4);
        assert_eq!(lines.next_line().unwrap(), Some(&b"1234"[..]));
        assert!(matches!(lines.next_line(), Err(ReadError::LineTooLong { line: 4, .. })));
        assert_eq!(lines.next_line().unwrap(), None);
        assert_eq!(lines.bytes_read(), input.len() as u64);
    }

    #[test]
    fn json_lines_are_checked_fully() {
        assert!(check_json_line(br#"{"a": [1, 2.5e3, null, "\u00e9"]}"#).is_none());
        assert!(check_json_line(b"  3 \r").is_none());
        for bad in [&b"{"[..], b"{} {}", b"[1,]", br#""\x""#, b"nul", b"01", b"\"\xff\""] {
            assert!(check_json_line(bad).is_some(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(matches!(check_json_line(b""), Some(JsonlProblem::Blank)));
        assert!(matches!(check_json_line(b" \t"), Some(JsonlProblem::Blank)));
        assert!(matches!(check_json_line(b"\"\xff\""), Some(JsonlProblem::NotUtf8)));
    }
}

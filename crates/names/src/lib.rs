//! # names
//!
//! Linux file names are bytes: anything but `/` and NUL, UTF-8 or not (Latin-1 and Shift-JIS
//! names from old archives are common). This crate is the one place that decides how such a name
//! is turned into text, so that every crate and every verb shows a name the same way and two
//! different names never print alike. It also names what a path is when it is not a regular
//! file ([`FileKind`]: "FIFO", "symlink", ...), so that every message says that the same way too.
//!
//! ```
//! use std::ffi::OsStr;
//! use std::os::unix::ffi::OsStrExt;
//! use std::path::Path;
//!
//! let latin1 = Path::new(OsStr::from_bytes(b"dir\xe9/caf\xe9.nes"));
//! assert_eq!(names::shown(latin1).to_string(), r"dir\xe9/caf\xe9.nes");
//! assert_eq!(names::shown("plain/ünïcödé.bin").to_string(), "plain/ünïcödé.bin");
//! assert_eq!(names::shown("a\\b\nc").to_string(), r"a\\b\nc");
//! assert_eq!(names::unescape(r"dir\xe9/caf\xe9.nes").unwrap(), latin1.as_os_str());
//! ```
//!
//! ## The escaping
//!
//! Modelled on the one GNU coreutils and xxhsum use for names in checksum manifests, where a
//! backslash is `\\`, a newline `\n` and a carriage return `\r`. For text a person reads (messages,
//! and names in JSON reports) the same table goes on where a manifest can keep raw bytes:
//!
//! | byte(s) in the name | shown as |
//! |---|---|
//! | `\` | `\\` |
//! | newline, carriage return, tab | `\n`, `\r`, `\t` |
//! | any other ASCII control byte (`0x01`–`0x1f`, `0x7f`) | `\xHH` (two lower-case hex digits) |
//! | a byte that is not part of valid UTF-8 | `\xHH` |
//! | a C1 control character (U+0080–U+009F), each of its two bytes | `\xHH` |
//! | every other character, ASCII or not | itself |
//!
//! - **Reversible.** [`unescape`] gives back exactly the bytes, so two names never print alike
//!   (tested with proptest in `tests/props.rs`).
//! - **One line, no terminal tricks.** No control character ever reaches the output.
//! - **Unchanged when plain.** A UTF-8 name without backslashes or control characters is shown
//!   as it is, so the common case reads as the user typed it.
//!
//! Manifests ([`escape_manifest`], [`unescape_manifest`]) use only the coreutils subset: a line
//! whose name holds `\`, newline or carriage return starts with `\` and escapes those three; every
//! other byte is written raw, so `xxhsum -c` and `sha256sum -c` read our manifests and we read
//! theirs.
//!
//! ## What it does not do
//! - It does not quote: a name with spaces is shown with its spaces. Messages put names where
//!   the sentence makes their ends clear (`failed to open NAME: cause`).
//! - Names that look alike but are different valid UTF-8 (NFC and NFD forms, homoglyphs) are
//!   shown as they are; the escaping is about bytes, not about how glyphs look.
//!
//! ## Dependencies
//! None: every crate in the workspace shows names, so this one leans on nothing.
#![forbid(unsafe_code)]

// The workspace has one non-Unix policy: refuse at compile time, saying why (docs/ARCHITECTURE.md).
#[cfg(not(unix))]
compile_error!(
    "names supports Unix only (Linux, macOS, the BSDs): a file name is handled as the bytes Unix gives it"
);

mod kind;

pub use kind::FileKind;

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// A name or path shown to a person: [`Display`](fmt::Display) writes it escaped as the crate
/// docs say. Made by [`shown`].
///
/// ```
/// let err = format!("failed to open {}", names::shown("a\tb"));
/// assert_eq!(err, r"failed to open a\tb");
/// ```
#[derive(Clone, Copy)]
pub struct Shown<'a>(&'a [u8]);

/// Shows `name` (a file name or a whole path) to a person: escaped, reversibly, on one line.
///
/// ```
/// use std::path::Path;
/// use std::os::unix::ffi::OsStrExt;
/// let odd = Path::new(std::ffi::OsStr::from_bytes(b"\xff\xfe"));
/// assert_eq!(format!("{}", names::shown(odd)), r"\xff\xfe");
/// ```
pub fn shown<P: AsRef<OsStr> + ?Sized>(name: &P) -> Shown<'_> {
    Shown(name.as_ref().as_bytes())
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    c if c.is_control() => {
                        let mut buf = [0; 4];
                        for b in c.encode_utf8(&mut buf).bytes() {
                            write!(f, "\\x{b:02x}")?;
                        }
                    }
                    c => fmt::Write::write_char(f, c)?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// [`shown`] as a string, borrowed when nothing needed escaping.
///
/// ```
/// use std::borrow::Cow;
/// assert!(matches!(names::escape("plain.txt"), Cow::Borrowed("plain.txt")));
/// assert_eq!(names::escape("two\nlines"), r"two\nlines");
/// ```
pub fn escape<P: AsRef<OsStr> + ?Sized>(name: &P) -> Cow<'_, str> {
    let bytes = name.as_ref().as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(|c| c == '\\' || c.is_control()) => Cow::Borrowed(text),
        _ => Cow::Owned(Shown(bytes).to_string()),
    }
}

/// Why a text is not something [`escape`] (or [`escape_manifest`]) could have written.
///
/// ```
/// let err = names::unescape(r"a\qb").unwrap_err();
/// assert_eq!(err.to_string(), r"unknown escape \q at byte 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnescapeError {
    /// Byte offset of the backslash that starts the bad escape.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for UnescapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for UnescapeError {}

/// The bytes of a name from its shown form: the inverse of [`shown`]/[`escape`].
///
/// ```
/// assert_eq!(names::unescape(r"caf\xe9").unwrap().as_encoded_bytes(), b"caf\xe9");
/// assert!(names::unescape(r"a\").is_err());
/// ```
pub fn unescape(text: &str) -> Result<OsString, UnescapeError> {
    unescape_bytes(text.as_bytes(), true).map(OsString::from_vec)
}

/// Whether a name must be escaped in a manifest line (it holds `\`, newline or carriage return);
/// such a line starts with `\`.
///
/// ```
/// assert!(names::needs_manifest_escape(b"a\\b"));
/// assert!(!names::needs_manifest_escape(b"caf\xe9"));
/// ```
pub fn needs_manifest_escape(name: &[u8]) -> bool {
    name.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'))
}

/// Appends `name` to a manifest line as coreutils and xxhsum 0.8.2+ write it: `\\`, `\n` and `\r`
/// escaped, every other byte raw. Only for lines that [`needs_manifest_escape`] says are escaped;
/// the others carry the name unchanged.
///
/// ```
/// let mut line = b"\\".to_vec();
/// names::escape_manifest(&mut line, b"a\nb\xe9");
/// assert_eq!(line, b"\\a\\nb\xe9");
/// ```
pub fn escape_manifest(line: &mut Vec<u8>, name: &[u8]) {
    for &b in name {
        match b {
            b'\\' => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            _ => line.push(b),
        }
    }
}

/// The name of an escaped manifest line, unescaped: the inverse of [`escape_manifest`]. Only the
/// three coreutils escapes are accepted, as coreutils does.
///
/// ```
/// assert_eq!(names::unescape_manifest(b"a\\\\b\\n").unwrap(), b"a\\b\n");
/// assert!(names::unescape_manifest(b"a\\xe9").is_err());
/// ```
pub fn unescape_manifest(name: &[u8]) -> Result<Vec<u8>, UnescapeError> {
    unescape_bytes(name, false)
}

fn unescape_bytes(text: &[u8], shown: bool) -> Result<Vec<u8>, UnescapeError> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let bad = |reason: String| UnescapeError { offset: i, reason };
        match text.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') if shown => out.push(b'\t'),
            Some(b'x') if shown => {
                let hex =
                    text.get(i + 2..i + 4).ok_or_else(|| bad("truncated \\x escape".into()))?;
                let value = std::str::from_utf8(hex)
                    .ok()
                    .filter(|h| h.bytes().all(|d| matches!(d, b'0'..=b'9' | b'a'..=b'f')))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad("\\x needs two lower-case hex digits".into()))?;
                out.push(value);
                i += 4;
                continue;
            }
            Some(&other) => return Err(bad(format!("unknown escape \\{}", other.escape_ascii()))),
            None => return Err(bad("lone backslash at the end".into())),
        }
        i += 2;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(bytes: &[u8]) -> String {
        shown(OsStr::from_bytes(bytes)).to_string()
    }

    #[test]
    fn the_table() {
        assert_eq!(show(b"caf\xe9.nes"), r"caf\xe9.nes");
        assert_eq!(show(b"\xff\xfe"), r"\xff\xfe");
        assert_eq!(show("café.nes".as_bytes()), "café.nes");
        assert_eq!(show(b"a\\xe9"), r"a\\xe9"); // a literal backslash never looks like an escape
        assert_eq!(show(b"\x1b[31m"), r"\x1b[31m");
        assert_eq!(show(b"del\x7f"), r"del\x7f");
        assert_eq!(show("c1\u{85}".as_bytes()), r"c1\xc2\x85");
        assert_eq!(show(b"tab\tcr\rnl\n"), r"tab\tcr\rnl\n");
    }

    #[test]
    fn names_differing_in_an_invalid_byte_print_apart() {
        assert_ne!(show(b"x\xe9"), show(b"x\xe8"));
        assert_ne!(show(b"x\xe9"), show("x\u{e9}".as_bytes()));
        assert_ne!(show(b"x\xe9"), show(b"x\\xe9"));
    }

    #[test]
    fn bad_escapes_are_refused() {
        for bad in [r"\", r"a\x", r"\xE9", r"\xg0", r"\u", r"\x9"] {
            assert!(unescape(bad).is_err(), "{bad}");
        }
    }
}

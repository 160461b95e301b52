//! Relative paths inside a snapshot: validation of what a manifest (or a caller) names, and how a
//! path is shown to people.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Checks that `raw` names a file inside the snapshot and returns it in canonical form.
///
/// Refused: empty paths, NUL bytes, absolute paths, any `..` component, a trailing `/` (a
/// directory), and paths that name the snapshot itself (`.`). Accepted and normalised: `.`
/// components and repeated slashes (`./a//b` is `a/b`), so that two spellings of one file are
/// recognised as a repetition.
pub(crate) fn normalize_rel(raw: &Path) -> Result<PathBuf, &'static str> {
    normalize_rel_bytes(raw.as_os_str().as_bytes())
        .map(|rel| PathBuf::from(OsStr::from_bytes(&rel)))
}

/// [`normalize_rel`] on bytes, borrowing them when they are already normal (what `seal` writes,
/// so almost every listed path): a manifest's reader copies each name once, into its entry.
pub(crate) fn normalize_rel_bytes(bytes: &[u8]) -> Result<Cow<'_, [u8]>, &'static str> {
    if bytes.is_empty() {
        return Err("empty path");
    }
    if bytes.contains(&0) {
        return Err("path contains a NUL byte");
    }
    if bytes[0] == b'/' {
        return Err("absolute path");
    }
    if !bytes.ends_with(b"/")
        && bytes.split(|&b| b == b'/').all(|c| !matches!(c, b"" | b"." | b".."))
    {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = PathBuf::new();
    for component in bytes.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("path contains a '..' component"),
            name => out.push(OsStr::from_bytes(name)),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("path names the snapshot directory itself");
    }
    if bytes.ends_with(b"/") {
        return Err("path ends with '/' (names a directory, not a file)");
    }
    Ok(Cow::Owned(out.into_os_string().into_vec()))
}

/// Serde `serialize_with` for paths: the escaped form every report uses ([`names::escape`]), so a
/// name that is not UTF-8 survives as escapes and reads back with [`names::unescape`].
pub(crate) fn serialize_path<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&names::escape(path))
}

/// Whether the walk treats `rel` as a `*.json` file (extension compared case-insensitively).
pub(crate) fn is_json(rel: &Path) -> bool {
    rel.extension().is_some_and(|ext| ext.as_bytes().eq_ignore_ascii_case(b"json"))
}

/// Sorts paths by their bytes: the same order on every machine and locale (and xxhsum-friendly).
pub(crate) fn cmp_bytes(a: &Path, b: &Path) -> std::cmp::Ordering {
    a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &[u8]) -> Result<PathBuf, &'static str> {
        normalize_rel(Path::new(OsStr::from_bytes(raw)))
    }

    #[test]
    fn hostile_paths_are_refused() {
        for (raw, why) in [
            (&b""[..], "empty"),
            (b"/etc/passwd", "absolute"),
            (b"//etc/passwd", "absolute"),
            (b"../../x", "'..'"),
            (b"a/../b", "'..'"),
            (b"a/..", "'..'"),
            (b"..", "'..'"),
            (b"a\0b", "NUL"),
            (b".", "itself"),
            (b"./", "itself"),
            (b"a/", "ends with '/'"),
        ] {
            let err = norm(raw).unwrap_err();
            assert!(err.contains(why), "{}: {err}", raw.escape_ascii());
        }
    }

    #[test]
    fn spellings_of_one_path_normalise_to_one() {
        for raw in [&b"a/b"[..], b"./a/b", b"a//b", b"a/./b", b"./a/./b"] {
            assert_eq!(norm(raw).unwrap(), Path::new("a/b"), "{}", raw.escape_ascii());
        }
        // Names are bytes: odd ones survive.
        assert_eq!(norm(b"x\xff y").unwrap().as_os_str().as_bytes(), b"x\xff y");
        assert_eq!(norm(b"...").unwrap(), Path::new("..."));
        assert_eq!(norm(b"..a").unwrap(), Path::new("..a"));
    }

    #[test]
    fn json_extension_is_case_insensitive() {
        assert!(is_json(Path::new("config.json")));
        assert!(is_json(Path::new("a/B.JSON")));
        assert!(!is_json(Path::new("train.jsonl")));
        assert!(!is_json(Path::new("json")));
    }
}

//! Seal, verify and find the latest snapshot on a prefix: the local snapshot format
//! (`manifest.xxh128` and `manifest.sizes`, see snapshot-verify), kept as objects.
//!
//! The manifest is written last, with create-if-absent: a prefix is sealed by exactly one seal,
//! and a reader sees either no manifest (not sealed) or the whole of it, never a manifest that
//! lists files still being hashed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;
use checksum::{Algo, Digest, Entry, Style};
use object_store::PutMode;
use serde::de::IgnoredAny;
use snapshot_verify::{
    Latest, Mode, Problem, ProblemKind, Refusal, RefusalKind, Report, SealSpec, Sealed, SkipReason,
    Skipped, VerifyOptions,
};

use crate::location::check_key;
use crate::store::Put;
use crate::{Error, Result, Store};

use snapshot_verify::{MANIFEST, SIZES};

/// Objects hashed at once.
const JOBS: usize = 8;

/// Whether `rel` is bookkeeping rather than part of a snapshot.
fn is_own(rel: &str) -> bool {
    rel == MANIFEST || rel == SIZES || rel.starts_with(crate::check::PROBE_DIR)
}

/// Seals the prefix: hashes every object under it, then writes `manifest.sizes` and, last and
/// with create-if-absent, `manifest.xxh128`. The [`Sealed`] names the manifest by its URL and
/// holds the verification of the prefix against it, run after it was written.
///
/// Refused ([`Error::Refused`], every reason listed, nothing written) when a required object is
/// missing or empty, an object is empty (unless allowed) or there is none, a `*.json` object
/// does not parse, an object does not match the XXH128 recorded when it was uploaded, or an
/// object changed (its ETag or size) while the seal ran. [`Error::AlreadySealed`] when a
/// manifest exists, or another seal created it first. Needs conditional writes
/// ([`Store::check`]).
pub fn seal(store: &Store, spec: &SealSpec) -> Result<Sealed> {
    store.check("seal")?;
    if store.head(MANIFEST)?.is_some() {
        return Err(Error::AlreadySealed { url: store.url(MANIFEST) });
    }
    let listed: Vec<_> = store.list("")?.into_iter().filter(|l| !is_own(&l.rel)).collect();
    let mut refusals = Vec::new();
    let refuse = |refusals: &mut Vec<Refusal>, path: &str, kind| {
        refusals.push(Refusal { path: PathBuf::from(path), kind })
    };
    if listed.is_empty() && !spec.allow_empty {
        refuse(&mut refusals, ".", RefusalKind::NoFiles);
    }
    for required in &spec.required {
        let name = required.to_string_lossy();
        match listed.iter().find(|l| l.rel == name) {
            None => refuse(&mut refusals, &name, RefusalKind::RequiredMissing),
            Some(l) if l.size == 0 => refuse(&mut refusals, &name, RefusalKind::Empty),
            Some(_) => {}
        }
    }
    let hashed = Mutex::new(Vec::new());
    let failed = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..JOBS.min(listed.len()).max(1) {
            scope.spawn(|| {
                while let Some(l) =
                    listed.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    match hash_object(store, &l.rel, spec) {
                        Ok(h) => hashed
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((l.clone(), h)),
                        Err(kind) => failed
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(Refusal { path: PathBuf::from(&l.rel), kind }),
                    }
                }
            });
        }
    });
    refusals.extend(failed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner));
    let mut hashed = hashed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    hashed.sort_by(|a, b| a.0.rel.as_bytes().cmp(b.0.rel.as_bytes()));
    for (l, h) in &hashed {
        if h.len != l.size || h.e_tag != l.e_tag {
            refuse(
                &mut refusals,
                &l.rel,
                RefusalKind::Changed {
                    detail: "replaced while the seal listed and read it".to_owned(),
                },
            );
        } else if l.size == 0 && !spec.allow_empty {
            refuse(&mut refusals, &l.rel, RefusalKind::Empty);
        }
    }
    // Re-list: an object added, removed or replaced since the first listing is a change.
    let again: HashMap<String, (u64, Option<String>)> = store
        .list("")?
        .into_iter()
        .filter(|l| !is_own(&l.rel))
        .map(|l| (l.rel, (l.size, l.e_tag)))
        .collect();
    for (l, _) in &hashed {
        if again.get(&l.rel) != Some(&(l.size, l.e_tag.clone())) {
            refuse(
                &mut refusals,
                &l.rel,
                RefusalKind::Changed { detail: "replaced or removed during the seal".to_owned() },
            );
        }
    }
    for rel in again.keys() {
        if !listed.iter().any(|l| &l.rel == rel) {
            refuse(
                &mut refusals,
                rel,
                RefusalKind::Changed { detail: "added during the seal".to_owned() },
            );
        }
    }
    if !refusals.is_empty() {
        refusals.sort_by(|a, b| a.path.cmp(&b.path));
        refusals.dedup_by(|a, b| a.path == b.path && a.kind.name() == b.kind.name());
        return Err(Error::Refused { url: store.location().to_string(), reasons: refusals });
    }
    let mut sizes = Vec::new();
    let mut manifest = Vec::new();
    let mut entries = Vec::new();
    for (l, h) in &hashed {
        sizes.extend_from_slice(&sizes_line(&l.rel, h.len));
        entries.push(Entry { digest: h.digest, path: PathBuf::from(&l.rel), style: Style::Gnu });
    }
    let sizes_digest = checksum::hash_bytes(Algo::Xxh128, &sizes);
    entries.push(Entry { digest: sizes_digest, path: PathBuf::from(SIZES), style: Style::Gnu });
    entries.sort_by(|a, b| a.path.as_os_str().cmp(b.path.as_os_str()));
    for entry in &entries {
        manifest.extend_from_slice(&checksum::format_line(entry));
    }
    // The sizes file may be overwritten by a racing seal of the same objects (same bytes); the
    // manifest, which lists the sizes file's hash, is created once.
    store.put_bytes(SIZES, Bytes::from(sizes), PutMode::Overwrite)?;
    match store.put_bytes(MANIFEST, Bytes::from(manifest), PutMode::Create)? {
        Put::Written { .. } => {}
        Put::Exists | Put::Stale => return Err(Error::AlreadySealed { url: store.url(MANIFEST) }),
    }
    let report = verify(store, &VerifyOptions::default())?;
    let bytes = hashed.iter().map(|(_, h)| h.len).sum();
    Ok(Sealed::new(store.url(MANIFEST), hashed.len() as u64, bytes, report))
}

struct Hashed {
    digest: Digest,
    len: u64,
    e_tag: Option<String>,
}

/// Reads one object for the seal: its digest, checked against its recorded XXH128, and for
/// `*.json` whether it parses.
fn hash_object(
    store: &Store,
    rel: &str,
    spec: &SealSpec,
) -> std::result::Result<Hashed, RefusalKind> {
    let unreadable = |e: Error| RefusalKind::Unreadable { reason: e.to_string() };
    let json = rel.ends_with(".json");
    let mut buf = Vec::new();
    let got = if json {
        if let Some(o) = store.head(rel).map_err(unreadable)?
            && o.size > spec.max_json_bytes
        {
            return Err(RefusalKind::JsonTooLarge { len: o.size, max: spec.max_json_bytes });
        }
        store.download(rel, &mut buf)
    } else {
        store.download(rel, &mut std::io::sink())
    };
    let Some((digest, len, object)) = got.map_err(unreadable)? else {
        return Err(RefusalKind::Changed { detail: "removed during the seal".to_owned() });
    };
    if let Some(recorded) = object.xxh128
        && recorded != digest
    {
        return Err(RefusalKind::Unreadable {
            reason: format!(
                "content xxh128 {digest} differs from the {recorded} recorded at upload"
            ),
        });
    }
    if json && let Err(e) = serde_json::from_slice::<IgnoredAny>(&buf) {
        return Err(RefusalKind::InvalidJson { error: e.to_string() });
    }
    Ok(Hashed { digest, len, e_tag: object.e_tag })
}

/// `<length>  <name>\n`, escaped as manifest lines are.
fn sizes_line(rel: &str, len: u64) -> Vec<u8> {
    let name = rel.as_bytes();
    let mut line = Vec::new();
    let escape = names::needs_manifest_escape(name);
    if escape {
        line.push(b'\\');
    }
    line.extend_from_slice(format!("{len}  ").as_bytes());
    if escape {
        names::escape_manifest(&mut line, name);
    } else {
        line.extend_from_slice(name);
    }
    line.push(b'\n');
    line
}

/// Checks the prefix against its manifest: every listed object present, of its recorded size,
/// non-empty where it was, and (full mode) of its recorded XXH128; every other object is
/// [`ProblemKind::Extra`] unless allowed. The report is snapshot-verify's, as for a directory.
///
/// [`Error::NotSealed`] without a manifest; [`Error::Invalid`] for a manifest with an absolute
/// path, a `..` or empty segment, a repeated path or a malformed line (then nothing else was
/// read).
pub fn verify(store: &Store, opts: &VerifyOptions) -> Result<Report> {
    let Some((bytes, _)) = store.get_bytes(MANIFEST, opts.max_manifest_bytes)? else {
        return Err(Error::NotSealed { url: store.location().to_string() });
    };
    let invalid = |reason: String| Error::Invalid { url: store.url(MANIFEST), reason };
    let mut entries: Vec<(String, Digest)> = Vec::new();
    for (n, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let line_no = n as u64 + 1;
        let entry = checksum::parse_line(line, line_no).map_err(|e| invalid(e.to_string()))?;
        let name = entry
            .path
            .to_str()
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("line {line_no}: a name that is not UTF-8")))?;
        if name.starts_with('/') {
            return Err(invalid(format!("line {line_no}: absolute path {name}")));
        }
        check_key(&name).map_err(|r| invalid(format!("line {line_no}: {name}: {r}")))?;
        if entries.iter().any(|(n, _)| *n == name) {
            return Err(invalid(format!("line {line_no}: {name} listed twice")));
        }
        entries.push((name, entry.digest));
    }
    let mut report = Report::default();
    report.mode = opts.mode;
    report.files = entries.len() as u64;
    let sizes = read_sizes(store, &entries, opts);
    report.sizes_checked = sizes.is_some();
    let present: HashMap<String, u64> = store
        .list("")?
        .into_iter()
        .filter(|l| l.rel != MANIFEST && !l.rel.starts_with(crate::check::PROBE_DIR))
        .map(|l| (l.rel, l.size))
        .collect();
    let problems = Mutex::new(Vec::new());
    let bytes_read = std::sync::atomic::AtomicU64::new(0);
    let push = |rel: &str, kind| {
        problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Problem { path: PathBuf::from(rel), kind })
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..JOBS.min(entries.len()).max(1) {
            scope.spawn(|| {
                while let Some((rel, want)) =
                    entries.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    let Some(&size) = present.get(rel) else {
                        push(rel, ProblemKind::Missing);
                        continue;
                    };
                    let recorded = sizes.as_ref().and_then(|s| s.get(rel.as_str()).copied());
                    if size == 0 && want.value() != EMPTY {
                        push(rel, ProblemKind::ZeroByte { expected: recorded });
                        continue;
                    }
                    if let Some(expected) = recorded
                        && expected != size
                    {
                        push(rel, ProblemKind::SizeDiffers { expected, actual: size });
                        continue;
                    }
                    if opts.mode == Mode::Quick {
                        bytes_read.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    match store.download(rel, &mut std::io::sink()) {
                        Ok(Some((digest, len, _))) => {
                            bytes_read.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                            if digest != *want {
                                push(
                                    rel,
                                    ProblemKind::HashDiffers { expected: *want, actual: digest },
                                );
                            }
                        }
                        Ok(None) => push(rel, ProblemKind::Missing),
                        Err(e) => push(rel, ProblemKind::Unreadable { reason: e.to_string() }),
                    }
                }
            });
        }
    });
    if !opts.allow_extra {
        for rel in present.keys() {
            if !entries.iter().any(|(n, _)| n == rel) {
                push(rel, ProblemKind::Extra);
            }
        }
    }
    let mut problems = problems.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    report.problems = problems;
    report.bytes = bytes_read.into_inner();
    Ok(report)
}

/// XXH128 of no bytes: an empty file listed as such is not a zero-byte problem.
const EMPTY: u128 = 0x99aa06d3014798d86001c324468d497f;

/// The recorded sizes, if the sizes object is there, listed, and of the listed hash.
fn read_sizes(
    store: &Store,
    entries: &[(String, Digest)],
    opts: &VerifyOptions,
) -> Option<HashMap<String, u64>> {
    let want = entries.iter().find(|(n, _)| n == SIZES)?.1;
    let (bytes, _) = store.get_bytes(SIZES, opts.max_manifest_bytes).ok()??;
    if checksum::hash_bytes(Algo::Xxh128, &bytes) != want {
        return None;
    }
    let mut out = HashMap::new();
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let (escaped, rest) = match line.strip_prefix(b"\\") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let sep = rest.windows(2).position(|w| w == b"  ")?;
        let len: u64 = std::str::from_utf8(&rest[..sep]).ok()?.parse().ok()?;
        let raw = &rest[sep + 2..];
        let name = if escaped { names::unescape_manifest(raw).ok()? } else { raw.to_vec() };
        out.insert(String::from_utf8(name).ok()?, len);
    }
    Some(out)
}

/// The newest snapshot directly under the prefix (`prefix/<name>/`, names not starting with
/// `.`, newest by [`snapshot_verify::compare_names`]) that verifies; the newer ones that did not
/// in [`Latest::skipped`]. Paths in the result are URLs.
pub fn latest(store: &Store, opts: &VerifyOptions) -> Result<Latest> {
    let mut names: Vec<String> =
        store.list_folders("")?.into_iter().filter(|n| !n.starts_with('.')).collect();
    names.sort_by(|a, b| snapshot_verify::compare_names(b.as_ref(), a.as_ref()));
    let mut latest = Latest::default();
    for name in names {
        let sub = store.at(&name);
        let path = PathBuf::from(sub.location().to_string());
        match verify(&sub, opts) {
            Ok(report) if report.is_ok() => {
                latest.found = Some(path);
                latest.report = Some(report);
                break;
            }
            Ok(report) => latest
                .skipped
                .push(Skipped { path, reason: SkipReason::Problems { problems: report.problems } }),
            Err(Error::NotSealed { .. }) => {
                latest.skipped.push(Skipped { path, reason: SkipReason::NotSealed })
            }
            Err(e @ (Error::Invalid { .. } | Error::Store { .. })) => latest
                .skipped
                .push(Skipped { path, reason: SkipReason::Error { message: e.to_string() } }),
            Err(e) => return Err(e),
        }
    }
    Ok(latest)
}

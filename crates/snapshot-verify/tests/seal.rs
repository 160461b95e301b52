//! Sealing: what the manifest looks like, every reason a seal is refused, and what happens when
//! the tree changes while it is sealed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod common;

use std::collections::HashSet;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use checksum::{Algo, FileKind};
use common::{Snap, WEIGHTS, mkfifo, must_return};
use snapshot_verify::{
    Error, MANIFEST, Pass, Refusal, RefusalKind, SIZES, SealSpec, SnapshotProgress, seal, verify,
};

fn refusals(snap: &Snap, spec: &SealSpec) -> Vec<(String, RefusalKind)> {
    refusals_in(&snap.dir, spec)
}

fn refusals_in(dir: &std::path::Path, spec: &SealSpec) -> Vec<(String, RefusalKind)> {
    match seal(dir, spec, &()) {
        Err(Error::Refused { reasons, .. }) => reasons
            .into_iter()
            .map(|Refusal { path, kind }| (path.to_str().unwrap().to_owned(), kind))
            .collect(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Nothing at all was written: no manifest, no sizes file, no temp left behind.
fn assert_untouched(snap: &Snap) {
    assert!(!snap.path(MANIFEST).exists(), "a manifest was written");
    assert!(!snap.path(SIZES).exists(), "a sizes file was written");
    for entry in std::fs::read_dir(&snap.dir).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(!atomic_io::is_temp_name(&name), "temp left behind: {name:?}");
    }
}

#[test]
fn the_manifest_is_sorted_relative_xxh128_and_excludes_itself() {
    let snap = Snap::new();
    let sealed = seal(&snap.dir, &SealSpec::default(), &()).unwrap();
    assert_eq!(sealed.files, 5);
    assert!(sealed.report.is_ok());
    let text = std::fs::read(snap.path(MANIFEST)).unwrap();
    let entries: Vec<checksum::Entry> = text
        .split_inclusive(|&b| b == b'\n')
        .map(|l| checksum::parse_line(l, 1).unwrap())
        .collect();
    let names: Vec<&str> = entries.iter().map(|e| e.path.to_str().unwrap()).collect();
    assert_eq!(
        names,
        ["config.json", SIZES, "model/notes.txt", WEIGHTS, "odd näme.txt", "tokenizer.json"]
    );
    for entry in &entries {
        assert_eq!(entry.digest.algo(), Algo::Xxh128);
        assert_eq!(entry.style, checksum::Style::Gnu);
        let on_disk = checksum::hash_file(Algo::Xxh128, snap.path(entry.path.to_str().unwrap()));
        assert_eq!(on_disk.unwrap().digest, entry.digest, "{}", entry.path.display());
    }
    let sizes = std::fs::read_to_string(snap.path(SIZES)).unwrap();
    assert!(sizes.starts_with("34  config.json\n21  model/notes.txt\n300000  model/weights.bin\n"));
    // Sealing again gives the same bytes.
    seal(&snap.dir, &SealSpec::default(), &()).unwrap();
    assert_eq!(std::fs::read(snap.path(MANIFEST)).unwrap(), text);
}

#[test]
fn names_with_backslashes_and_newlines_are_escaped_and_verify() {
    let snap = Snap::new();
    std::fs::write(snap.path("a\\b"), b"1").unwrap();
    std::fs::write(snap.path("line\nbreak"), b"2").unwrap();
    seal(&snap.dir, &SealSpec::default(), &()).unwrap();
    let text = std::fs::read(snap.path(MANIFEST)).unwrap();
    let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"\\df3ce784d856334d65cd25028f98f158  a\\\\b\n"), "{}", text.escape_ascii());
    assert!(has(b"  line\\nbreak\n"), "{}", text.escape_ascii());
    assert!(snap.verify().is_ok());
}

#[test]
fn every_reason_to_refuse_is_listed_at_once_and_nothing_is_written() {
    let snap = Snap::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(snap.path("config.json"), br#"{"lr": 0.001,"#).unwrap();
    std::fs::write(snap.path("model/empty.bin"), b"").unwrap();
    symlink(outside.path(), snap.path("model/link")).unwrap();
    mkfifo(snap.path("queue").as_path());
    let mut spec = SealSpec::default();
    spec.required = vec!["config.json".into(), "model/missing.bin".into(), "../escape".into()];
    let dir = snap.dir.clone();
    let found = must_return("seal", move || refusals_in(&dir, &spec));
    let names: Vec<(&str, &str)> = found.iter().map(|(p, k)| (p.as_str(), k.name())).collect();
    assert_eq!(
        names,
        [
            ("../escape", "invalid_required_path"),
            ("config.json", "invalid_json"),
            ("model/empty.bin", "empty"),
            ("model/link", "not_a_regular_file"),
            ("model/missing.bin", "required_missing"),
            ("queue", "not_a_regular_file"),
        ]
    );
    assert_eq!(found[5].1, RefusalKind::NotARegularFile { found: FileKind::Fifo });
    let RefusalKind::InvalidJson { error } = &found[1].1 else { unreachable!() };
    assert!(error.contains("line 1"), "{error}");
    assert_untouched(&snap);
}

#[test]
fn empty_files_are_allowed_on_request_but_never_for_required_files() {
    let snap = Snap::new();
    std::fs::write(snap.path("model/empty.bin"), b"").unwrap();
    std::fs::write(snap.path("model/also-empty.bin"), b"").unwrap();
    let mut spec = SealSpec::default();
    spec.required = vec!["model/also-empty.bin".into()];
    spec.allow_empty = true;
    let found = refusals(&snap, &spec);
    assert_eq!(found, [("model/also-empty.bin".to_owned(), RefusalKind::Empty)]);
    let mut spec = SealSpec::default();
    spec.allow_empty = true;
    seal(&snap.dir, &spec, &()).unwrap();
    assert!(snap.verify().is_ok());
    // An empty file that was sealed empty is fine; one that was sealed full and is now empty is not.
    std::fs::write(snap.path("config.json"), b"").unwrap();
    let report = snap.verify();
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].kind.name(), "zero_byte");
}

#[test]
fn a_snapshot_with_no_files_is_refused_unless_empty_is_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Err(Error::Refused { reasons, .. }) = seal(dir, &SealSpec::default(), &()) else {
        panic!()
    };
    assert_eq!(reasons[0].kind, RefusalKind::NoFiles);
    seal(
        dir,
        &{
            let mut o = SealSpec::default();
            o.allow_empty = true;
            o
        },
        &(),
    )
    .unwrap();
    assert!(verify(dir, &Default::default(), &()).unwrap().is_ok());
}

#[test]
fn large_json_is_refused_not_read_and_valid_json_passes() {
    let snap = Snap::new();
    let mut spec = SealSpec::default();
    spec.max_json_bytes = 18;
    let found = refusals(&snap, &spec);
    assert_eq!(
        found,
        [
            ("config.json".to_owned(), RefusalKind::JsonTooLarge { len: 34, max: 18 }),
            ("tokenizer.json".to_owned(), RefusalKind::JsonTooLarge { len: 19, max: 18 }),
        ]
    );
    seal(&snap.dir, &SealSpec::default(), &()).unwrap();
}

#[test]
fn own_file_names_that_are_not_regular_files_are_refused_and_never_written_through() {
    let snap = Snap::new();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("stolen");
    symlink(&target, snap.path(MANIFEST)).unwrap();
    let found = refusals(&snap, &SealSpec::default());
    assert_eq!(
        found,
        [(MANIFEST.to_owned(), RefusalKind::NotARegularFile { found: FileKind::Symlink })]
    );
    assert!(!target.exists(), "the seal wrote through a symlink");
}

#[test]
fn temp_files_of_atomic_writers_are_left_out() {
    let snap = Snap::new();
    std::fs::write(snap.path("model/.weights.bin.atomic-Ab3dE6gH9j.tmp"), b"").unwrap();
    seal(&snap.dir, &SealSpec::default(), &()).unwrap();
    let text = std::fs::read_to_string(snap.path(MANIFEST)).unwrap();
    assert!(!text.contains("atomic-"), "{text}");
    assert!(snap.verify().is_ok());
}

/// Changes the tree from inside the seal's own progress callback, i.e. while the seal runs:
/// `change` is called once, with the first file hashed, right after it was hashed.
struct Meddler<F: Fn(&Path) + Send + Sync> {
    change: F,
    done: AtomicBool,
}

impl<F: Fn(&Path) + Send + Sync> SnapshotProgress for Meddler<F> {
    fn file_done(&self, rel: &Path, _len: u64) {
        if !self.done.swap(true, Ordering::SeqCst) {
            (self.change)(rel);
        }
    }
}

fn meddle(change: impl Fn(&Path) + Send + Sync) -> Meddler<impl Fn(&Path) + Send + Sync> {
    Meddler { change, done: AtomicBool::new(false) }
}

fn append(path: impl AsRef<Path>) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    std::io::Write::write_all(&mut f, b" ").unwrap();
}

#[test]
fn a_file_changed_after_it_was_hashed_is_caught_by_the_re_verify() {
    let snap = Snap::new();
    let changed = std::sync::Mutex::new(None);
    let meddler = meddle(|rel| {
        append(snap.dir.as_path().join(rel));
        *changed.lock().unwrap() = Some(rel.to_path_buf());
    });
    let Err(Error::Refused { reasons, .. }) = seal(&snap.dir, &SealSpec::default(), &meddler)
    else {
        panic!("a seal of a changing tree succeeded")
    };
    let changed = changed.lock().unwrap().clone().unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(reasons[0].path, changed);
    let RefusalKind::Changed { detail } = &reasons[0].kind else { panic!("{reasons:?}") };
    assert!(detail.starts_with("size_differs when re-verified"), "{detail}");
    assert_untouched(&snap);
}

#[test]
fn files_appended_to_during_the_seal_make_it_refused() {
    let snap = Snap::new();
    let files = ["config.json", "model/notes.txt", WEIGHTS, "odd näme.txt", "tokenizer.json"];
    let meddler = meddle(|_| files.iter().for_each(|rel| append(snap.path(rel))));
    let mut spec = SealSpec::default();
    spec.jobs = Some(1);
    let Err(Error::Refused { reasons, .. }) = seal(&snap.dir, &spec, &meddler) else {
        panic!("a seal of a changing tree succeeded")
    };
    // Every file hashed after the change is named (its size differs from the listing); the seal
    // stops there, so the one file hashed before the change need not be.
    let named: HashSet<&str> = reasons.iter().map(|r| r.path.to_str().unwrap()).collect();
    assert!(named.len() >= files.len() - 1, "{reasons:?}");
    assert!(named.iter().all(|n| files.contains(n)), "{reasons:?}");
    assert!(reasons.iter().all(|r| r.kind.name() == "changed"), "{reasons:?}");
    assert_untouched(&snap);
}

#[test]
fn a_file_added_during_the_seal_makes_it_refused() {
    let snap = Snap::new();
    let meddler = meddle(|_| std::fs::write(snap.path("model/late.bin"), b"late").unwrap());
    let Err(Error::Refused { reasons, .. }) = seal(&snap.dir, &SealSpec::default(), &meddler)
    else {
        panic!("a seal of a changing tree succeeded")
    };
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(reasons[0].path, Path::new("model/late.bin"));
    assert_eq!(reasons[0].kind, RefusalKind::Changed { detail: "extra when re-verified".into() });
    assert_untouched(&snap);
}

#[test]
fn same_size_rewrites_after_the_listing_are_refused() {
    // One hashing thread: the first file is hashed, then every other file is rewritten in place
    // with the same length (config.json and tokenizer.json become invalid JSON after their check)
    // before it is hashed. Sizes match the listing; the ctime does not.
    let snap = Snap::new();
    let files = ["config.json", "model/notes.txt", WEIGHTS, "odd näme.txt", "tokenizer.json"];
    let meddler = meddle(|first| {
        for rel in files.iter().filter(|rel| Path::new(rel) != first) {
            let len = std::fs::metadata(snap.path(rel)).unwrap().len() as usize;
            std::fs::write(snap.path(rel), vec![b'#'; len]).unwrap();
        }
    });
    let mut spec = SealSpec::default();
    spec.jobs = Some(1);
    let Err(Error::Refused { reasons, .. }) = seal(&snap.dir, &spec, &meddler) else {
        panic!("sealed files rewritten after their checks")
    };
    assert_eq!(reasons.len(), files.len() - 1, "{reasons:?}");
    for reason in &reasons {
        let RefusalKind::Changed { detail } = &reason.kind else { panic!("{reasons:?}") };
        assert!(detail.contains("ctime moved"), "{detail}");
    }
    assert_untouched(&snap);
}

#[test]
fn progress_sees_both_passes() {
    #[derive(Default)]
    struct Passes(std::sync::Mutex<Vec<(Pass, u64)>>);
    impl SnapshotProgress for Passes {
        fn pass(&self, pass: Pass, files: u64, _bytes: u64) {
            self.0.lock().unwrap().push((pass, files));
        }
    }
    let snap = Snap::new();
    let passes = Passes::default();
    seal(&snap.dir, &SealSpec::default(), &passes).unwrap();
    assert_eq!(*passes.0.lock().unwrap(), [(Pass::Seal, 5), (Pass::Verify, 5)]);
}

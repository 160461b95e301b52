//! `latest`: the newest snapshot that verifies, newer broken ones skipped and reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use snapshot_verify::{LatestOptions, SealSpec, SkipReason, latest, seal};

struct Root {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Root {
    fn new() -> Root {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        Root { _tmp: tmp, root }
    }

    /// A sealed snapshot `name` holding one weights file.
    fn snapshot(&self, name: impl AsRef<OsStr>) -> PathBuf {
        let dir = self.root.join(name.as_ref());
        std::fs::create_dir(&dir).unwrap();
        let weights = [b"weights of ", name.as_ref().as_bytes()].concat();
        std::fs::write(dir.join("weights.bin"), weights).unwrap();
        std::fs::write(dir.join("config.json"), b"{}").unwrap();
        seal(&dir, &SealSpec::default(), &()).unwrap();
        dir
    }

    fn latest(&self) -> snapshot_verify::Latest {
        latest(&self.root, &LatestOptions::default(), &()).unwrap()
    }
}

fn names(latest: &snapshot_verify::Latest) -> Vec<String> {
    latest
        .skipped
        .iter()
        .map(|s| s.path.file_name().unwrap().to_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_newest_good_snapshot_is_chosen_when_the_newest_is_corrupt() {
    let root = Root::new();
    for step in ["step-8", "step-9", "step-10", "step-11"] {
        root.snapshot(step);
    }
    let found = root.latest();
    assert_eq!(found.found.as_deref(), Some(root.root.join("step-11").as_path()));
    assert!(found.skipped.is_empty());

    // A bad run: the newest checkpoint's weights are cut short, the one before lost its config.
    std::fs::write(root.root.join("step-11/weights.bin"), b"weights of").unwrap();
    std::fs::remove_file(root.root.join("step-10/config.json")).unwrap();
    let found = root.latest();
    assert_eq!(found.found.as_deref(), Some(root.root.join("step-9").as_path()));
    assert!(found.report.as_ref().unwrap().is_ok());
    assert_eq!(names(&found), ["step-11", "step-10"]);
    let SkipReason::Problems { problems } = &found.skipped[0].reason else { panic!() };
    assert_eq!(problems[0].to_string(), "size_differs: weights.bin (expected 18 bytes, found 10)");
    let SkipReason::Problems { problems } = &found.skipped[1].reason else { panic!() };
    assert_eq!(problems[0].to_string(), "missing: config.json");
}

#[test]
fn unsealed_and_invalid_snapshots_are_skipped_with_the_reason() {
    let root = Root::new();
    root.snapshot("2024-05-01T10-00");
    std::fs::create_dir(root.root.join("2024-05-02T10-00")).unwrap(); // being written
    let bad = root.snapshot("2024-05-03T10-00");
    std::fs::write(bad.join("manifest.xxh128"), "364b7492fe58a3947e824cae26e04823  ../../etc/x\n")
        .unwrap();
    let found = root.latest();
    assert_eq!(found.found.as_deref(), Some(root.root.join("2024-05-01T10-00").as_path()));
    assert_eq!(names(&found), ["2024-05-03T10-00", "2024-05-02T10-00"]);
    let SkipReason::Error { message } = &found.skipped[0].reason else { panic!() };
    assert!(message.contains("invalid manifest") && message.contains("'..'"), "{message}");
    assert!(matches!(found.skipped[1].reason, SkipReason::NotSealed));
}

#[test]
fn hidden_directories_symlinks_and_files_are_not_candidates() {
    let root = Root::new();
    root.snapshot("step-1");
    let staging = root.snapshot(".step-2.partial");
    symlink(&staging, root.root.join("step-3")).unwrap();
    std::fs::write(root.root.join("step-4"), b"not a directory").unwrap();
    let found = root.latest();
    assert_eq!(found.found.as_deref(), Some(root.root.join("step-1").as_path()));
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
}

#[test]
fn no_good_snapshot_is_not_an_error_but_says_so() {
    let root = Root::new();
    let only = root.snapshot("only");
    std::fs::write(only.join("weights.bin"), b"").unwrap();
    let found = root.latest();
    assert!(found.found.is_none() && found.report.is_none());
    assert_eq!(names(&found), ["only"]);
    assert!(Root::new().latest().found.is_none());
    let err = latest(root.root.join("nope"), &LatestOptions::default(), &()).unwrap_err();
    assert!(err.to_string().starts_with("failed to open"), "{err}");
}

#[test]
fn latest_serializes_for_json() {
    let root = Root::new();
    root.snapshot("a1");
    let broken = root.snapshot("a2");
    std::fs::remove_file(broken.join("weights.bin")).unwrap();
    let json = serde_json::to_value(root.latest()).unwrap();
    assert_eq!(json["found"], root.root.join("a1").to_str().unwrap());
    assert_eq!(json["skipped"][0]["reason"], "problems");
    assert_eq!(json["skipped"][0]["problems"][0]["kind"], "missing");
    assert_eq!(json["report"]["problems"], serde_json::json!([]));
}

#[test]
fn a_snapshot_whose_name_is_not_utf8_is_a_candidate_like_any_other() {
    let root = Root::new();
    root.snapshot("step-1");
    let newest = root.snapshot(OsStr::from_bytes(b"step-2-caf\xe9"));
    let found = root.latest();
    assert_eq!(found.found.as_deref(), Some(newest.as_path()), "{found:?}");
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    // In the JSON report the name is escaped, reversibly, like in every message.
    let json = serde_json::to_value(&found).unwrap();
    let shown = json["found"].as_str().unwrap();
    assert!(shown.ends_with(r"step-2-caf\xe9"), "{shown}");
    assert_eq!(names::unescape(shown).unwrap(), newest.as_os_str());
}

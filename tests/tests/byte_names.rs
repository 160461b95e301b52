//! Names are bytes: a tree of names that are not UTF-8 (`caf\xe9.nes`, `\xff\xfe`, a Latin-1 folder
//! `dir\xe9/` holding UTF-8 files, and `x\xe9`/`x\xe8`, which differ only in an invalid byte)
//! through every verb, each given such names as arguments too, checked against `cp -a`,
//! `xxhsum` and `flock(1)`. Messages and `--json` reports show every name escaped, reversibly,
//! so two names never print alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use e2e::{assert_exit, read_line_within, require_tool, wait_within, xtask};

fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// The files of the tree, relative to its root, with their contents.
const FILES: [(&[u8], &[u8]); 7] = [
    (b"caf\xe9.nes", b"latin-1 e-acute"),
    (b"\xff\xfe", b"not UTF-8 at all"),
    (b"x\xe9", b"differs from the next name in one invalid byte"),
    (b"x\xe8", b"differs from the previous name in one invalid byte"),
    (b"dir\xe9/inner.nes", b"a UTF-8 name in a Latin-1 folder"),
    ("dir\u{e9}/caf\u{e9}.nes".as_bytes(), b"all UTF-8"),
    (b"plain.nes", b"plain"),
];

/// `root/<name>` holding the tree.
fn tree(root: &Path, name: &[u8]) -> PathBuf {
    let dir = root.join(os(name));
    for (rel, bytes) in FILES {
        let path = dir.join(os(rel));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    dir
}

/// Every entry under `root`: relative path bytes, kind, mode, mtime and content.
fn listing(root: &Path) -> Vec<(Vec<u8>, String)> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = path.symlink_metadata().unwrap();
            let rel = path.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
            let what = if meta.is_dir() {
                pending.push(path.clone());
                format!("dir {:o} {}", meta.mode() & 0o7777, meta.mtime())
            } else {
                let content = std::fs::read(&path).unwrap();
                format!(
                    "file {:o} {} {}",
                    meta.mode() & 0o7777,
                    meta.mtime(),
                    content.escape_ascii()
                )
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

fn run_in(dir: &Path, cmd: &mut Command) -> Output {
    cmd.current_dir(dir).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("messages and reports are UTF-8 (names escaped)")
}

#[test]
fn hash_and_check_agree_with_xxhsum_both_ways() {
    let Some(xxhsum) = require_tool("xxhsum") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    tree(root, b"src\xe9");

    // hash of the folder (given by a non-UTF-8 name) passes xxhsum -c, with every name.
    let ours = run_in(root, xtask().arg("hash").arg(os(b"src\xe9")));
    assert_exit(&ours, 0);
    assert_eq!(ours.stdout.iter().filter(|&&b| b == b'\n').count(), FILES.len());
    let manifest = root.join(os(b"sums\xe9.xxh128"));
    std::fs::write(&manifest, &ours.stdout).unwrap();
    let theirs = run_in(root, Command::new(&xxhsum).arg("-c").arg(&manifest));
    assert_exit(&theirs, 0);
    assert_eq!(theirs.stdout.windows(4).filter(|w| w == b": OK").count(), FILES.len());

    // Byte for byte what xxhsum -H2 prints for the same files, given as arguments.
    let files: Vec<PathBuf> =
        FILES.iter().map(|(rel, _)| Path::new(os(b"src\xe9")).join(os(rel))).collect();
    let ours = run_in(root, xtask().arg("hash").args(&files));
    let theirs = run_in(root, Command::new(&xxhsum).arg("-H2").args(&files));
    assert_exit(&ours, 0);
    assert_eq!(ours.stdout, theirs.stdout);

    // check reads what xxhsum wrote, from a manifest whose own name is not UTF-8, and says what
    // xxhsum -c says.
    std::fs::write(&manifest, &theirs.stdout).unwrap();
    let ours = run_in(root, xtask().arg("check").arg(&manifest));
    let theirs = run_in(root, Command::new(&xxhsum).arg("-c").arg(&manifest));
    assert_exit(&ours, 0);
    assert_eq!(ours.stdout, theirs.stdout);

    // One altered file: named in the result, the other of the pair still OK.
    std::fs::write(root.join(os(b"src\xe9/x\xe8")), b"altered").unwrap();
    let ours = run_in(root, xtask().arg("check").arg(&manifest));
    assert_exit(&ours, 1);
    let failed: Vec<&[u8]> =
        ours.stdout.split(|&b| b == b'\n').filter(|l| l.ends_with(b": FAILED")).collect();
    assert_eq!(failed.len(), 1, "{}", ours.stdout.escape_ascii());
    assert!(failed[0].ends_with(b"x\xe8: FAILED"), "{}", ours.stdout.escape_ascii());
}

#[test]
fn copy_seal_verify_and_latest_keep_every_name() {
    let Some(cp) = require_tool("cp") else { return };
    let Some(xxhsum) = require_tool("xxhsum") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = tree(root, b"src\xe9");
    let snapshots = root.join(os(b"snaps\xff"));
    std::fs::create_dir(&snapshots).unwrap();
    let dst = snapshots.join(os(b"step-2-\xe9"));

    // copy: every name copied, exactly as cp -a copies them.
    let out = xtask().arg("copy").arg(&src).arg(&dst).output().unwrap();
    assert_exit(&out, 0);
    let by_cp = root.join("by-cp");
    assert_exit(&Command::new(cp).arg("-a").arg(&src).arg(&by_cp).output().unwrap(), 0);
    assert_eq!(listing(&dst), listing(&by_cp));
    // A rerun finds every one of them up to date.
    let again = xtask().arg("copy").arg("--json").arg(&src).arg(&dst).output().unwrap();
    assert_exit(&again, 0);
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!((report["copied"].as_u64(), report["skipped"].as_u64()), (Some(0), Some(7)));
    assert!(report["src"].as_str().unwrap().ends_with(r"/src\xe9"), "{report}");

    // seal: the manifest lists every name as raw bytes, and xxhsum -c agrees with it.
    let out = xtask().arg("seal").arg(&dst).output().unwrap();
    assert_exit(&out, 0);
    let check = run_in(&dst, Command::new(&xxhsum).args(["-c", "manifest.xxh128"]));
    assert_exit(&check, 0);
    // Every file and `manifest.sizes`, which the seal lists too.
    assert_eq!(check.stdout.windows(4).filter(|w| w == b": OK").count(), FILES.len() + 1);

    // verify: clean, then each of the pair altered: two problems that print apart.
    assert_exit(&xtask().arg("verify").arg(&dst).output().unwrap(), 0);
    std::fs::write(dst.join(os(b"x\xe9")), b"altered one").unwrap();
    std::fs::write(dst.join(os(b"x\xe8")), b"altered two").unwrap();
    let out = xtask().arg("verify").arg(&dst).output().unwrap();
    assert_exit(&out, 1);
    let stdout = text(&out.stdout);
    assert!(stdout.contains(r"x\xe9 ") && stdout.contains(r"x\xe8 "), "{stdout}");
    assert!(!stdout.contains('\u{fffd}'), "{stdout}");
    let out = xtask().arg("verify").arg("--json").arg(&dst).output().unwrap();
    assert_exit(&out, 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut paths: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, [r"x\xe8", r"x\xe9"], "{report}");
    assert!(report["dir"].as_str().unwrap().ends_with(r"snaps\xff/step-2-\xe9"), "{report}");

    // latest: the corrupt newest is skipped by its escaped name; an older one with an odd name
    // is found and printed as its exact bytes (stdout is a pipe), ready for `cd "$(...)"`.
    let older = snapshots.join(os(b"step-1-\xff"));
    assert_exit(&xtask().arg("copy").arg(&src).arg(&older).output().unwrap(), 0);
    assert_exit(&xtask().arg("seal").arg(&older).output().unwrap(), 0);
    let out = xtask().arg("latest").arg(&snapshots).output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(out.stdout, [older.as_os_str().as_bytes(), b"\n"].concat());
    assert!(text(&out.stderr).contains(r"skipped "), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(r"step-2-\xe9: "), "{}", text(&out.stderr));
}

#[test]
fn write_sweep_and_jsonl_take_any_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(os(b"dir\xe9"));
    std::fs::create_dir(&dir).unwrap();

    // write: stdin to a non-UTF-8 path, twice (the second replaces), no temp left.
    for content in [&b"first"[..], b"second"] {
        let mut child = xtask()
            .arg("write")
            .arg(dir.join(os(b"caf\xe9.json")))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(content).unwrap();
        assert_eq!(wait_within(&mut child), Some(0));
    }
    assert_eq!(std::fs::read(dir.join(os(b"caf\xe9.json"))).unwrap(), b"second");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    // A name the file system cannot hold (over 255 bytes) is refused by its escaped name and the
    // reason, never skipped or mangled.
    let long = [&b"long\xe9-"[..], &[b'x'; 300]].concat();
    let mut child = xtask()
        .arg("write")
        .arg(dir.join(os(&long)))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(wait_within(&mut child), Some(2), "{stderr}");
    assert!(stderr.contains(r"dir\xe9/long\xe9-xxx") && stderr.contains("too long"), "{stderr}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    // sweep: an orphan temp of a non-UTF-8 name is removed and named escaped.
    let orphan = dir.join(os(b".caf\xe9.json.atomic-0123456789.tmp"));
    std::fs::write(&orphan, b"left by a crash").unwrap();
    let out = xtask().arg("sweep").arg(tmp.path()).output().unwrap();
    assert_exit(&out, 0);
    assert!(!orphan.exists());
    assert!(
        text(&out.stdout).contains(r"dir\xe9/.caf\xe9.json.atomic-0123456789.tmp"),
        "{}",
        text(&out.stdout)
    );

    // jsonl: a file of a non-UTF-8 name is read; an error names it escaped.
    let jsonl = dir.join(os(b"log\xff.jsonl"));
    std::fs::write(&jsonl, b"{\"a\": 1}\n[2]\n").unwrap();
    let out = xtask().arg("jsonl").arg(&jsonl).output().unwrap();
    assert_exit(&out, 0);
    assert!(text(&out.stdout).starts_with("2 lines"), "{}", text(&out.stdout));
    std::fs::write(&jsonl, b"{\"a\": 1}\nnot json\n").unwrap();
    let out = xtask().arg("jsonl").arg(&jsonl).output().unwrap();
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains(r"log\xff.jsonl: line 2"), "{}", text(&out.stderr));
}

/// `printf %s ARG` under a lock on a non-UTF-8 lock file: the argument's bytes arrive untouched,
/// exactly as with flock(1), and each tool sees the other's lock.
#[test]
fn lock_passes_arguments_through_untouched_like_flock() {
    let Some(flock) = require_tool("flock") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let lockfile = tmp.path().join(os(b"lock\xe9"));
    let arg = OsString::from_vec(b"caf\xe9 \xff\xfe {} \\x41".to_vec());

    let ours =
        xtask().arg("lock").arg(&lockfile).arg("printf").arg("%s").arg(&arg).output().unwrap();
    assert_exit(&ours, 0);
    let theirs =
        Command::new(&flock).arg(&lockfile).arg("printf").arg("%s").arg(&arg).output().unwrap();
    assert_exit(&theirs, 0);
    assert_eq!(ours.stdout, arg.as_bytes());
    assert_eq!(ours.stdout, theirs.stdout);

    // flock(1) holds it: ours is refused (exit 1), naming the lock file escaped.
    let mut holder = Command::new(&flock)
        .arg(&lockfile)
        .args(["sh", "-c", "echo locked; exec cat >/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(read_line_within(holder.stdout.take().unwrap()), "locked\n");
    let out = xtask().arg("lock").arg("-n").arg(&lockfile).arg("true").output().unwrap();
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains(r"lock\xe9"), "{}", text(&out.stderr));
    drop(holder.stdin.take());
    assert_eq!(wait_within(&mut holder), Some(0));
}

#[test]
fn once_produces_a_non_utf8_target_with_untouched_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join(os(b"model-\xe9.bin"));
    let arg = OsString::from_vec(b"weights \xff\xfe".to_vec());
    let out = xtask()
        .arg("once")
        .arg(&target)
        .args(["--", "sh", "-c", "printf %s \"$1\" > \"$2\"", "sh"])
        .arg(&arg)
        .arg("{}")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(std::fs::read(&target).unwrap(), arg.as_bytes());
    assert!(tmp.path().join(os(b"model-\xe9.bin.lock")).exists());
    assert!(text(&out.stderr).contains(r"produced "), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(r"model-\xe9.bin"), "{}", text(&out.stderr));
    // A second run reuses it.
    let out = xtask().arg("once").arg(&target).args(["--", "false", "{}"]).output().unwrap();
    assert_exit(&out, 0);
    let mut names: Vec<Vec<u8>> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().into_vec()).collect();
    names.sort();
    assert_eq!(names, [b"model-\xe9.bin".to_vec(), b"model-\xe9.bin.lock".to_vec()]);
}

#[test]
fn bench_takes_a_data_dir_whose_name_is_not_utf8() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join(os(b"bench-caf\xe9"));
    // `write` and `lock` are the quick groups that write under the data directory themselves.
    for group in ["write", "lock"] {
        let out = xtask()
            .args(["bench", "--quick", "--only", group, "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let made = data.join(format!("{group}-bench"));
        assert!(made.is_dir(), "{group}: nothing under {}", made.display());
    }
}

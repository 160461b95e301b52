//! `cargo xtask seal`, `verify` and `latest` as whole processes: output, exit codes, `--json`,
//! the real `xxhsum -c` on every sealed tree, strace proof that hostile manifests make the CLI
//! read nothing, unreadable files (as an unprivileged user), and a seal racing a writer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use e2e::{assert_exit, count_syscalls, require_tool, status_calls, xtask};

/// A snapshot directory `snap` inside a fresh temp dir: nested folders, spaces, non-ASCII names,
/// files around the hash buffer size, JSON configs.
fn tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap");
    let files: [(&str, usize); 7] = [
        ("config.json", 0),
        ("model/weights.bin", 256 * 1024 + 1),
        ("model/shard 2.bin", 3 * 1024 * 1024 + 7),
        ("model/tiny", 1),
        ("tokenizer/vocab.txt", 1000),
        ("données/été.csv", 77),
        ("deep/a/b/c/d/leaf", 5),
    ];
    for (i, (rel, len)) in files.into_iter().enumerate() {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = if rel.ends_with(".json") {
            br#"{"lr": 0.001, "steps": [1, 2, 3]}"#.to_vec()
        } else {
            (0..len).map(|j| ((j * 31 + i * 7) % 253) as u8).collect()
        };
        std::fs::write(path, bytes).unwrap();
    }
    (tmp, dir)
}

fn run(args: &[&str], dir: &Path) -> Output {
    xtask().args(args).arg(dir).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sealed() -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = tree();
    assert_exit(&run(&["seal", "--require", "config.json"], &dir), 0);
    (tmp, dir)
}

#[test]
fn real_xxhsum_checks_every_sealed_tree() {
    let Some(xxhsum) = require_tool("xxhsum") else { return };
    let (_tmp, dir) = tree();
    let out = run(&["seal", "--require", "config.json", "--require", "model/weights.bin"], &dir);
    assert_exit(&out, 0);
    assert!(text(&out.stdout).contains(": sealed (8 files listed"), "{}", text(&out.stdout));
    let check = Command::new(&xxhsum)
        .args(["--strict", "-c", "manifest.xxh128"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_exit(&check, 0);
    assert_eq!(text(&check.stdout).matches(": OK").count(), 8, "{}", text(&check.stdout));
    assert!(check.stderr.is_empty(), "xxhsum warned: {}", text(&check.stderr));
    // And xxhsum agrees with us when something breaks.
    std::fs::write(dir.join("model/tiny"), b"X").unwrap();
    let check =
        Command::new(&xxhsum).args(["-c", "manifest.xxh128"]).current_dir(&dir).output().unwrap();
    assert_exit(&check, 1);
    assert!(text(&check.stdout).contains("model/tiny: FAILED"), "{}", text(&check.stdout));
}

#[test]
fn verify_prints_one_line_per_problem_then_a_summary() {
    let (_tmp, dir) = sealed();
    let out = run(&["verify"], &dir);
    assert_exit(&out, 0);
    let shown = dir.display();
    assert!(text(&out.stdout).starts_with(&format!("{shown}: OK (8 files listed,")));

    std::fs::remove_file(dir.join("tokenizer/vocab.txt")).unwrap();
    std::fs::write(dir.join("model/tiny"), b"").unwrap();
    std::fs::write(dir.join("stray.tmp"), b"?").unwrap();
    let out = run(&["verify"], &dir);
    assert_exit(&out, 1);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "zero_byte: model/tiny (0 bytes, expected 1)",
            "extra: stray.tmp",
            "missing: tokenizer/vocab.txt",
        ]
    );
    assert!(lines[3].starts_with(&format!("{shown}: FAILED, 3 problems (8 files listed")));
    assert_eq!(lines.len(), 4);

    let out = run(&["verify", "--allow-extra", "--quick"], &dir);
    assert_exit(&out, 1);
    assert!(text(&out.stdout).contains("sizes checked, contents not read"));
    assert!(!text(&out.stdout).contains("stray.tmp"));

    let out = run(&["verify", "--json"], &dir);
    assert_exit(&out, 1);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["dir"], dir.to_str().unwrap());
    assert_eq!(json["problems"][0]["kind"], "zero_byte");
    assert_eq!(json["problems"][0]["expected"], 1);
    assert_eq!(
        json["problems"][2],
        serde_json::json!({"path": "tokenizer/vocab.txt", "kind": "missing"})
    );
}

#[test]
fn an_invalid_or_missing_manifest_exits_2() {
    let (_tmp, dir) = sealed();
    std::fs::write(dir.join("manifest.xxh128"), "364b7492fe58a3947e824cae26e04823  ../../x\n")
        .unwrap();
    let out = run(&["verify"], &dir);
    assert_exit(&out, 2);
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("invalid manifest") && stderr.contains("line 1: path contains a '..'"),
        "{stderr}"
    );
    let out = run(&["verify", "--json"], &dir);
    assert_exit(&out, 2);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["error"]["kind"], "invalid_manifest");
    assert_eq!(json["error"]["issues"][0]["line"], 1);

    std::fs::remove_file(dir.join("manifest.xxh128")).unwrap();
    let out = run(&["verify"], &dir);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("is not sealed"), "{}", text(&out.stderr));
    assert_exit(&run(&["verify"], &dir.join("nope")), 2);
}

#[test]
fn seal_lists_every_reason_and_exits_1() {
    let (_tmp, dir) = tree();
    std::fs::write(dir.join("config.json"), b"{").unwrap();
    std::fs::write(dir.join("model/empty"), b"").unwrap();
    let out = run(&["seal", "--require", "missing.bin"], &dir);
    assert_exit(&out, 1);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("invalid_json: config.json (EOF while parsing"), "{stdout}");
    assert_eq!(lines[1..3], ["required_missing: missing.bin", "empty: model/empty"]);
    assert!(lines[3].ends_with("seal refused, 3 reasons; nothing was written"), "{stdout}");
    assert!(!dir.join("manifest.xxh128").exists());

    let out = run(&["seal", "--json", "--allow-empty"], &dir);
    assert_exit(&out, 1);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["refusals"].as_array().unwrap().len(), 1);
    assert_eq!(json["refusals"][0]["kind"], "invalid_json");

    std::fs::write(dir.join("config.json"), b"{}").unwrap();
    let out = run(&["seal", "--json", "--allow-empty"], &dir);
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["ok"].clone(), json["files"].clone()), (true.into(), 8.into()));
}

#[test]
fn latest_prints_the_newest_snapshot_that_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for step in ["step-98", "step-99", "step-100"] {
        let dir = root.join(step);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("w.bin"), step).unwrap();
        assert_exit(&run(&["seal"], &dir), 0);
    }
    let out = run(&["latest"], root);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), format!("{}\n", root.join("step-100").display()));

    std::fs::write(root.join("step-100/w.bin"), b"step-1OO").unwrap();
    let out = run(&["latest"], root);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), format!("{}\n", root.join("step-99").display()));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("skipped") && stderr.contains("step-100: 1 problem"), "{stderr}");
    assert!(stderr.contains("  hash_differs: w.bin (expected "), "{stderr}");

    let out = run(&["latest", "--json"], root);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["found"], root.join("step-99").to_str().unwrap());
    assert_eq!(json["skipped"][0]["reason"], "problems");

    for step in ["step-98", "step-99"] {
        std::fs::remove_file(root.join(step).join("w.bin")).unwrap();
    }
    let out = run(&["latest"], root);
    assert_exit(&out, 1);
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("no snapshot under"), "{}", text(&out.stderr));
    assert_exit(&run(&["latest"], &root.join("missing")), 2);
}

#[test]
fn unreadable_files_and_directories_are_reported() {
    // Root reads through any permission bits, so when the tests run as root the CLI runs as
    // `nobody` (setpriv), for whom chmod 000 is a real "permission denied".
    let root = Command::new("id").arg("-u").output().unwrap();
    let as_root = text(&root.stdout).trim() == "0";
    let setpriv = if as_root {
        match require_tool("setpriv") {
            Some(path) => Some(path),
            None => return,
        }
    } else {
        None
    };
    let (tmp, dir) = sealed();
    for entry in walk(tmp.path()) {
        let mode = if entry.is_dir() { 0o755 } else { 0o644 };
        chmod(&entry, mode);
    }
    chmod(tmp.path(), 0o755);
    chmod(&dir.join("model/weights.bin"), 0o000);
    chmod(&dir.join("tokenizer"), 0o000);
    let verify = |args: &[&str]| -> Output {
        let mut cmd = match &setpriv {
            Some(setpriv) => {
                let mut cmd = Command::new(setpriv);
                cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(e2e::xtask_path());
                cmd
            }
            None => xtask(),
        };
        cmd.args(args).arg(&dir).output().unwrap()
    };
    let out = verify(&["verify"]);
    assert_exit(&out, 1);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("unreadable: model/weights.bin (failed to open: Permission denied"),
        "{stdout}"
    );
    assert!(lines[1].starts_with("unreadable: tokenizer (could not be listed: "), "{stdout}");
    assert!(
        lines[2].starts_with("unreadable: tokenizer/vocab.txt (tokenizer could not be listed: "),
        "{stdout}"
    );
    assert_eq!(lines.len(), 4, "{stdout}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn hostile_manifests_make_verify_read_nothing() {
    let Some(strace) = require_tool("strace") else { return };
    let (tmp, dir) = sealed();
    let good = std::fs::read(dir.join("manifest.xxh128")).unwrap();
    // A file outside the snapshot with a distinctive name; the `../` line names it.
    std::fs::write(tmp.path().join("outside-secret"), b"secret").unwrap();
    let hex = "364b7492fe58a3947e824cae26e04823";
    let mut long = format!("{hex}  ").into_bytes();
    long.extend(std::iter::repeat_n(b'a', 50 << 20));
    let garbage: Vec<u8> =
        (0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let cases: [(&str, Vec<u8>); 5] = [
        ("dot-dot", format!("{hex}  ../outside-secret\n").into_bytes()),
        ("absolute", format!("{hex}  /etc/passwd\n").into_bytes()),
        ("nul", format!("{hex}  model/a\0b\n").into_bytes()),
        ("50 MB line", long),
        ("garbage", garbage),
    ];
    let trace = tmp.path().join("trace");
    for (name, hostile) in cases {
        // Good lines first: a verifier that reads as it goes would open these files.
        std::fs::write(dir.join("manifest.xxh128"), [&good[..], &hostile].concat()).unwrap();
        let out = Command::new(&strace)
            .args(["-f", "-qq", "-e", "trace=%file,openat2", "-o"])
            .arg(&trace)
            .arg(e2e::xtask_path())
            .arg("verify")
            .arg(&dir)
            .output()
            .unwrap();
        assert_exit(&out, 2);
        assert!(text(&out.stderr).contains("invalid manifest"), "{name}: {}", text(&out.stderr));
        let calls = std::fs::read_to_string(&trace).unwrap();
        for call in calls.lines() {
            assert!(!call.contains("outside-secret"), "{name}: touched {call}");
            assert!(!call.contains("/etc/passwd"), "{name}: touched {call}");
            if call.contains("openat2(") {
                assert!(call.contains("\"manifest.xxh128\""), "{name}: opened {call}");
            }
            for file in ["weights.bin", "vocab.txt", "config.json", "manifest.sizes"] {
                assert!(!call.contains(file), "{name}: touched {call}");
            }
        }
    }
}

#[test]
fn sealing_while_another_process_writes_is_refused_or_consistent() {
    let Some(xxhsum) = require_tool("xxhsum") else { return };
    let (_tmp, dir) = tree();
    let log = dir.join("train.log");
    std::fs::write(&log, b"start\n").unwrap();
    let mut writer = Command::new("sh")
        .args(["-c", "echo started; while :; do printf x >> \"$1\"; done", "sh"])
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(writer.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready, "started\n");
    let outcomes: Vec<Output> = (0..3).map(|_| run(&["seal"], &dir)).collect();
    writer.kill().unwrap();
    writer.wait().unwrap();
    for out in outcomes {
        match out.status.code() {
            Some(1) => {
                let stdout = text(&out.stdout);
                assert!(stdout.starts_with("changed: train.log ("), "{stdout}");
                assert_eq!(stdout.lines().count(), 2, "only the log changed: {stdout}");
            }
            Some(0) => {
                // Consistent: the manifest describes a state the log really had (a prefix of it,
                // since the writer only appends).
                let sizes = std::fs::read_to_string(dir.join("manifest.sizes")).unwrap();
                let len: usize = sizes
                    .lines()
                    .find_map(|l| l.strip_suffix("  train.log"))
                    .unwrap()
                    .parse()
                    .unwrap();
                let prefix = dir.parent().unwrap().join("prefix");
                std::fs::write(&prefix, &std::fs::read(&log).unwrap()[..len]).unwrap();
                let digest = Command::new(&xxhsum).arg("-H2").arg(&prefix).output().unwrap();
                let digest = text(&digest.stdout);
                let manifest = std::fs::read_to_string(dir.join("manifest.xxh128")).unwrap();
                let listed = manifest.lines().find_map(|l| l.strip_suffix("  train.log")).unwrap();
                assert_eq!(listed, &digest[..32]);
            }
            _ => assert_exit(&out, 0),
        }
    }
}

/// The status calls (`stat` family) a command makes, counted with strace.
/// Nothing done twice per file: a full verify takes each file's status twice (on the open
/// descriptor before reading, to refuse what is not a regular file, and after, to see a change
/// during the read), not a third time in the walk; `hash` once in its listing and once on the
/// descriptor. Counted with strace, not timed.
#[test]
fn verify_and_hash_take_each_files_status_at_most_twice() {
    let Some(strace) = require_tool("strace") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap");
    let files = 400;
    for i in 0..files {
        let sub = dir.join(format!("d{}", i % 2));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
    assert_exit(&xtask().arg("seal").arg(&dir).output().unwrap(), 0);
    let trace = tmp.path().join("trace");
    let verify =
        status_calls(&count_syscalls(&strace, &trace, &["verify".as_ref(), dir.as_os_str()]));
    let hash = status_calls(&count_syscalls(&strace, &trace, &["hash".as_ref(), dir.as_os_str()]));
    // 2 per file, plus a little for start-up, the directories and the manifest; 3 per file
    // (1,200 here) would fail.
    let limit = files * 5 / 2;
    assert!(verify <= limit, "verify made {verify} status calls for {files} files");
    assert!(hash <= limit, "hash made {hash} status calls for {files} files");
}

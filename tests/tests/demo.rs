//! `cargo xtask demo` end to end: every step passes, the summary names the three corrupted files,
//! the temporary directory is removed (or kept with `--dir`/`--keep`, copy and manifest included),
//! and a directory that is not the demo's is refused untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::fs;
use std::path::Path;

use e2e::{assert_exit, xtask};

const STEPS: [&str; 7] = ["generate", "copy", "seal", "verify", "corrupt", "race", "kill"];
/// What the demo corrupts in its 40 folders, and how verify must name each.
const CORRUPTED: [(&str, &str); 3] = [
    ("hash_differs", "dir006/file0000.bin"),
    ("size_differs", "dir020/file0000.bin"),
    ("missing", "dir033/file0000.bin"),
];

/// The rows of the summary table: (step, figures, result).
fn table(stdout: &str) -> Vec<(String, String, String)> {
    let start = stdout.lines().position(|l| l.starts_with("step ")).expect("no summary table");
    stdout
        .lines()
        .skip(start + 2)
        .take_while(|line| line.contains(" | "))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 3, "not a table row: {line}");
            (cells[0].to_owned(), cells[1].to_owned(), cells[2].to_owned())
        })
        .collect()
}

/// Every step is in the table, in order, and passed; the corrupt row names each file and kind.
fn assert_all_passed(stdout: &str) {
    let rows = table(stdout);
    let names: Vec<&str> = rows.iter().map(|(step, _, _)| step.as_str()).collect();
    assert_eq!(names, STEPS, "{stdout}");
    for (step, figures, result) in &rows {
        assert_eq!(result, "PASS", "step {step} did not pass: {figures}\n{stdout}");
    }
    let corrupt = &rows[4].1;
    for (kind, path) in CORRUPTED {
        assert!(corrupt.contains(&format!("{kind} {path}")), "{kind} {path} not named: {corrupt}");
    }
    assert!(corrupt.starts_with("verify named 3 of 3: "), "{corrupt}");
    assert!(rows[5].1.starts_with("8 processes, 1 production, 8 exit 0"), "{}", rows[5].1);
    assert!(stdout.contains("\ndemo: PASS, 7 of 7 steps passed"), "{stdout}");
}

#[test]
fn the_demo_passes_every_step_and_removes_its_temporary_directory() {
    let tmp = tempfile::tempdir().unwrap();
    // The real demo, full size (a few seconds here; the test profile optimizes dependencies).
    let out = xtask().arg("demo").env("TMPDIR", tmp.path()).output().unwrap();
    assert_exit(&out, 0);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_all_passed(&stdout);
    let generate = &table(&stdout)[0].1;
    assert!(
        generate.starts_with("320 files in 40 folders, 2"),
        "not a few hundred MiB: {generate}"
    );
    // verify's own lines, under the corrupt step.
    assert!(stdout.contains("\n    missing: dir033/file0000.bin\n"), "{stdout}");
    assert!(stdout.contains("\n    size_differs: dir020/file0000.bin (expected "), "{stdout}");
    assert!(stdout.contains("\n    hash_differs: dir006/file0000.bin (expected "), "{stdout}");

    let work = stdout.lines().next().unwrap();
    assert!(work.starts_with(&format!("demo: working in {}", tmp.path().display())), "{work}");
    let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the temporary directory was not removed: {left:?}");
}

#[test]
fn dir_and_keep_leave_the_copy_with_its_manifest_and_a_foreign_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    for run in ["first", "again in the same directory"] {
        let out = xtask()
            .args(["demo", "--size-mib", "8", "--keep", "--dir"])
            .arg(&work)
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_all_passed(&stdout);
        assert!(stdout.contains(&format!("demo: kept {}\n", work.display())), "{run}: {stdout}");
    }

    let copy = work.join("copy");
    for kept in ["manifest.xxh128", "manifest.sizes", "dir000/file0000.bin"] {
        assert!(copy.join(kept).is_file(), "{kept} not kept in {}", copy.display());
    }
    assert!(work.join("source/dir033/file0000.bin").is_file());
    assert_eq!(fs::read_dir(work.join("writer")).unwrap().count(), 1, "the orphan was not swept");
    // The kept copy still shows the corruptions to anyone who verifies it.
    let out = xtask().arg("verify").arg(&copy).output().unwrap();
    assert_exit(&out, 1);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let problems: Vec<&str> = stdout.lines().filter(|l| !l.contains(": FAILED,")).collect();
    assert_eq!(problems.len(), 3, "{stdout}");
    for ((kind, path), line) in CORRUPTED.iter().zip(&problems) {
        assert!(line.starts_with(&format!("{kind}: {path}")), "{line}");
    }

    // A directory the demo did not make is never touched.
    let foreign = tmp.path().join("foreign");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("precious"), b"mine").unwrap();
    let out = xtask().args(["demo", "--dir"]).arg(&foreign).output().unwrap();
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
    assert_names(&foreign, &["precious"]);
}

fn assert_names(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, expected);
}

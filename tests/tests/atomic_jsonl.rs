//! `cargo xtask jsonl`: counts valid files, names the first bad line with exit 1, exit 2 when the
//! file cannot be read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::fs;
use std::path::Path;
use std::process::Output;

use e2e::{assert_exit, xtask};

fn jsonl(file: &Path, flags: &[&str]) -> Output {
    xtask().arg("jsonl").args(flags).arg(file).output().unwrap()
}

#[test]
fn a_valid_file_is_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("train.jsonl");
    let mut content = String::new();
    for i in 0..10_000 {
        content.push_str(&format!(
            "{{\"id\": {i}, \"text\": \"sample {i}\", \"tags\": [\"a\", null]}}\n"
        ));
    }
    fs::write(&file, &content).unwrap();
    let out = jsonl(&file, &[]);
    assert_exit(&out, 0);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, format!("10000 lines, {} bytes: {}\n", content.len(), file.display()));
}

#[test]
fn the_first_bad_line_is_named_with_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.jsonl");
    let cases: [(&[&str], &[u8], &str); 4] = [
        (&[], b"{}\n[1]\n{\"a\":\n{\n", "line 3: invalid JSON"),
        (&[], b"{}\n\n{}\n", "line 2: blank line"),
        (
            &["--max-line", "10"],
            b"{}\n{\"long\": \"0123456789\"}\n{\n",
            "line 2: longer than the limit of 10 bytes",
        ),
        (&["--max-file", "5"], b"{}\n{}\n{}\n", "larger than the limit of 5 bytes"),
    ];
    for (flags, content, message) in cases {
        fs::write(&file, content).unwrap();
        let out = jsonl(&file, flags);
        assert_exit(&out, 1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message) && stderr.contains("bad.jsonl"), "{flags:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn an_unreadable_file_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = jsonl(&tmp.path().join("missing.jsonl"), &[]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.jsonl"));
    let out = jsonl(tmp.path(), &[]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("directory"));
}

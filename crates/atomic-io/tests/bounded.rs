//! Bounded reads: an oversized file, a file larger than its metadata says (as a growing file is),
//! a line far longer than the limit (never buffered), and JSONL errors that name the line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::fs;
use std::io::{BufRead, BufReader, Read};

use atomic_io::bounded::{JsonlLimits, LineReader, read_bounded, validate_jsonl};
use atomic_io::{JsonlProblem, ReadError};

#[test]
fn read_bounded_refuses_a_file_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    fs::write(&path, vec![b'x'; 1000]).unwrap();
    assert_eq!(read_bounded(&path, 1000).unwrap().len(), 1000);
    let err = read_bounded(&path, 999).unwrap_err();
    assert!(matches!(err, ReadError::FileTooLarge { len: 1000, max: 999, .. }), "{err}");
    assert!(err.to_string().contains("big"), "{err}");
}

#[test]
fn read_bounded_checks_again_while_reading() {
    // procfs files report a size of 0 but have content: exactly what a file that grew after its
    // metadata was read looks like. The metadata check passes; the read must catch it.
    let path = "/proc/self/status";
    assert_eq!(fs::metadata(path).unwrap().len(), 0);
    let err = read_bounded(path, 16).unwrap_err();
    assert!(matches!(err, ReadError::FileTooLarge { len: 17, max: 16, .. }), "{err}");
    assert!(read_bounded(path, 1 << 20).unwrap().starts_with(b"Name:"));
}

#[test]
fn read_bounded_refuses_a_fifo_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let err = read_bounded(&fifo, 10).unwrap_err();
    assert!(matches!(err, ReadError::NotAFile { kind: atomic_io::FileKind::Fifo, .. }), "{err}");
    // A reader's words, naming the path and what it is: nothing was going to be replaced.
    let said = err.to_string();
    assert!(said.starts_with("refusing to read ") && said.contains("FIFO"), "{said}");
    assert!(said.contains(&names::shown(&fifo).to_string()), "{said}");
    let err = validate_jsonl(&fifo, &JsonlLimits::default()).unwrap_err();
    assert!(matches!(err, ReadError::NotAFile { .. }), "{err}");
}

#[test]
fn a_huge_line_fails_with_its_number_and_is_not_buffered() {
    const MAX: u64 = 64 * 1024;
    const HUGE: u64 = 64 << 20;
    let input = std::io::Cursor::new(b"{\"ok\": 1}\n".to_vec())
        .chain(std::io::repeat(b'x').take(HUGE))
        .chain(std::io::Cursor::new(b"\n{\"ok\": 3}\n".to_vec()));
    let mut lines = LineReader::new(BufReader::with_capacity(8192, input), MAX);
    assert_eq!(lines.next_line().unwrap(), Some(&b"{\"ok\": 1}"[..]));
    let err = lines.next_line().unwrap_err();
    assert!(matches!(err, ReadError::LineTooLong { line: 2, max: MAX }), "{err}");
    assert!(
        lines.buffer_capacity() as u64 <= MAX,
        "line buffer grew to {} bytes for a {HUGE}-byte line",
        lines.buffer_capacity()
    );
    assert_eq!(lines.next_line().unwrap(), Some(&b"{\"ok\": 3}"[..]));
    assert_eq!(lines.line_number(), 3);
    assert_eq!(lines.next_line().unwrap(), None);
    assert!(lines.buffer_capacity() as u64 <= MAX);
}

#[test]
fn lines_up_to_the_limit_fit_exactly() {
    let line = vec![b'y'; 100_000];
    let mut input = line.clone();
    input.push(b'\n');
    let mut lines = LineReader::new(BufReader::with_capacity(4096, &input[..]), 100_000);
    assert_eq!(lines.next_line().unwrap(), Some(&line[..]));
    assert!(lines.buffer_capacity() <= 100_000);
}

#[test]
fn line_reader_agrees_with_bufread_lines_on_ordinary_input() {
    let input = b"one\ntwo\r\n\nfour\nfive";
    let want: Vec<String> = input.lines().map(|l| l.unwrap()).collect();
    let mut lines = LineReader::new(&input[..], 100);
    let mut got = Vec::new();
    while let Some(line) = lines.next_line().unwrap() {
        got.push(String::from_utf8(line.to_vec()).unwrap());
    }
    // BufRead::lines strips "\r\n"; LineReader keeps the '\r' (JSON white space).
    let got: Vec<String> = got.into_iter().map(|l| l.trim_end_matches('\r').to_owned()).collect();
    assert_eq!(got, want);
}

fn jsonl_err(content: &[u8], limits: &JsonlLimits) -> ReadError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.jsonl");
    fs::write(&path, content).unwrap();
    validate_jsonl(&path, limits).unwrap_err()
}

#[test]
fn jsonl_counts_valid_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.jsonl");
    let content = b"{\"prompt\": \"a\", \"n\": [1, 2]}\r\n\"str\"\n3\nnull\n[]";
    fs::write(&path, content).unwrap();
    let report = validate_jsonl(&path, &JsonlLimits::default()).unwrap();
    assert_eq!(report.lines, 5);
    assert_eq!(report.bytes, content.len() as u64);
}

#[test]
fn jsonl_errors_name_the_first_bad_line_and_the_cause() {
    let limits = JsonlLimits::default();
    let cases: [(&[u8], u64, &str); 5] = [
        (b"{}\n{}\n{\"a\": }\n{\n", 3, "invalid JSON"),
        (b"{}\n\n{}\n", 2, "blank line"),
        (b"{}\n  \n", 2, "blank line"),
        (b"{} {}\n", 1, "trailing characters"),
        (b"{}\n\"\xff\"\n", 2, "not valid UTF-8"),
    ];
    for (content, line, cause) in cases {
        let err = jsonl_err(content, &limits);
        assert_eq!(err.line(), Some(line), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("line {line}:")) && msg.contains(cause), "{msg}");
        assert!(msg.contains("input.jsonl"), "{msg}");
    }
}

#[test]
fn jsonl_limits_are_configurable_and_enforced() {
    let small = limits(10, 1000);
    let err = jsonl_err(b"{\"a\": 1}\n{\"long\": 123456}\n", &small);
    assert!(
        matches!(err, ReadError::Jsonl { line: 2, problem: JsonlProblem::TooLong { max: 10 }, .. }),
        "{err}"
    );
    let small = limits(100, 20);
    let err = jsonl_err(b"{\"a\": 1}\n{\"b\": 2}\n{\"c\": 3}\n", &small);
    assert!(matches!(err, ReadError::FileTooLarge { len: 27, max: 20, .. }), "{err}");
}

#[test]
fn jsonl_catches_a_file_larger_than_its_metadata() {
    // /proc/self/status reports size 0; with a max_file of 8 bytes the read must stop it.
    let err = validate_jsonl("/proc/self/status", &limits(1 << 20, 8)).unwrap_err();
    assert!(matches!(err, ReadError::FileTooLarge { max: 8, .. }), "{err}");
}

fn limits(max_line: u64, max_file: u64) -> JsonlLimits {
    let mut limits = JsonlLimits::default();
    (limits.max_line, limits.max_file) = (max_line, max_file);
    limits
}

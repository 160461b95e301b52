//! Property tests (fuzzing with proptest) of the bounded line reader and the JSONL validator:
//! they agree with a simple model on any input, never panic, and never buffer an oversized line.
//! `PROPTEST_CASES=100000 cargo test -p atomic-io --test props` runs a longer campaign
//! (`cargo xtask fuzz` does that for every fuzzed parser).

use atomic_io::bounded::{JsonlLimits, LineReader, validate_jsonl};
use atomic_io::{JsonlProblem, ReadError};
use proptest::prelude::*;

/// The model: lines split on `\n`, a final piece without `\n` is a line if non-empty.
fn model_lines(input: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn bytes_with_newlines() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![3 => any::<u8>(), 1 => Just(b'\n'), 1 => Just(b'a')];
    prop::collection::vec(byte, 0..600)
}

/// `PROPTEST_CASES` overrides the default case count (`cargo xtask fuzz` sets it high).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    #[test]
    fn line_reader_matches_the_model(input in bytes_with_newlines(), max in 0u64..80) {
        let mut reader = LineReader::new(&input[..], max);
        for (i, expected) in model_lines(&input).into_iter().enumerate() {
            let number = i as u64 + 1;
            match reader.next_line() {
                Ok(Some(line)) => {
                    prop_assert!(expected.len() as u64 <= max);
                    prop_assert_eq!(line, expected);
                }
                Err(ReadError::LineTooLong { line, max: m }) => {
                    prop_assert_eq!((line, m), (number, max));
                    prop_assert!(expected.len() as u64 > max, "line {} of {} bytes refused", number, expected.len());
                }
                other => prop_assert!(false, "line {}: unexpected {:?}", number, other.map(|o| o.map(<[u8]>::to_vec))),
            }
            // Never more than the limit (plus the allocator's rounding) is held.
            prop_assert!(reader.buffer_capacity() as u64 <= (max + 1).max(64) * 2);
        }
        prop_assert!(matches!(reader.next_line(), Ok(None)));
    }

    #[test]
    fn jsonl_counts_valid_files_and_names_the_first_bad_line(
        values in prop::collection::vec(any::<(i64, String, bool)>(), 1..30),
        bad_at in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec![&b"{"[..], b"", b"\xff\xfe", b"[1,,2]", b"nul"]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.jsonl");
        let lines: Vec<Vec<u8>> = values
            .iter()
            .map(|(n, s, b)| serde_json::to_vec(&serde_json::json!({"n": n, "s": s, "b": b})).unwrap())
            .collect();
        std::fs::write(&path, lines.iter().flat_map(|l| [&l[..], b"\n"].concat()).collect::<Vec<u8>>()).unwrap();
        let limits = JsonlLimits::default();
        let report = validate_jsonl(&path, &limits).unwrap();
        prop_assert_eq!(report.lines, lines.len() as u64);

        let k = bad_at.index(lines.len());
        let mut broken = lines.clone();
        broken[k] = bad.to_vec();
        std::fs::write(&path, broken.iter().flat_map(|l| [&l[..], b"\n"].concat()).collect::<Vec<u8>>()).unwrap();
        match validate_jsonl(&path, &limits) {
            Err(ReadError::Jsonl { line, problem, .. }) => {
                prop_assert_eq!(line, k as u64 + 1);
                let expected_kind = match bad {
                    b"" => matches!(problem, JsonlProblem::Blank),
                    b"\xff\xfe" => matches!(problem, JsonlProblem::NotUtf8),
                    _ => matches!(problem, JsonlProblem::Json(_)),
                };
                prop_assert!(expected_kind, "line {}: {}", line, problem);
            }
            other => prop_assert!(false, "expected a JSONL error, got {:?}", other),
        }
    }

    #[test]
    fn jsonl_never_panics_on_arbitrary_bytes(input in bytes_with_newlines(), max_line in 1u64..100) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.jsonl");
        std::fs::write(&path, &input).unwrap();
        let mut limits = JsonlLimits::default();
        limits.max_line = max_line;
        match validate_jsonl(&path, &limits) {
            Ok(report) => prop_assert_eq!(report.bytes, input.len() as u64),
            Err(err) => prop_assert!(err.line().is_some(), "file-level error on valid path: {}", err),
        }
    }
}

//! Property tests of the manifest line format: any name survives format-then-parse, and no input
//! makes the parser panic.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use checksum::{Algo, Digest, Entry, ManifestReader, Style, format_line, parse_line};
use proptest::prelude::*;

fn algo() -> impl Strategy<Value = Algo> {
    prop::sample::select(Algo::ALL.to_vec())
}

fn style() -> impl Strategy<Value = Style> {
    prop::sample::select(vec![Style::Gnu, Style::Bsd])
}

/// Any non-empty name without NUL, weighted towards the bytes that need escaping.
fn name() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => any::<u8>().prop_filter("no NUL", |b| *b != 0),
        1 => prop::sample::select(vec![b'\\', b'\n', b'\r', b' ', b'(', b')', b'=', b'*']),
    ];
    prop::collection::vec(byte, 1..64)
}

/// `PROPTEST_CASES` overrides the default case count (`cargo xtask fuzz` sets it high).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(4000)))]

    #[test]
    fn any_name_survives_format_then_parse(algo in algo(), style in style(), name in name(), value in any::<u128>()) {
        let mask = if algo.hex_len() == 32 { u128::MAX } else { (1u128 << (algo.hex_len() * 4)) - 1 };
        let entry = Entry {
            digest: Digest::new(algo, value & mask),
            path: PathBuf::from(OsStr::from_bytes(&name)),
            style,
        };
        let line = format_line(&entry);
        prop_assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line: {}", line.escape_ascii());
        prop_assert_eq!(parse_line(&line, 1).unwrap(), entry.clone());
        // Through the bounded reader too, with CRLF line ends.
        let crlf = [&line[..line.len() - 1], b"\r\n"].concat();
        let mut reader = ManifestReader::new(&crlf[..], 4096);
        prop_assert_eq!(reader.next().unwrap().unwrap(), (1, entry));
    }

    #[test]
    fn parser_never_panics(line in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_line(&line, 1);
    }

    #[test]
    fn reader_never_panics_and_numbers_lines(text in prop::collection::vec(any::<u8>(), 0..2000), max in 1usize..300) {
        let mut last = 0;
        for item in ManifestReader::new(&text[..], max) {
            let line = match item {
                Ok((line, _)) => line,
                Err(checksum::Error::Malformed { line, .. } | checksum::Error::LineTooLong { line, .. }) => line,
                Err(other) => panic!("unexpected error {other}"),
            };
            prop_assert!(line > last);
            last = line;
        }
    }
}

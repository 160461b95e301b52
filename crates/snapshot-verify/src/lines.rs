//! A file held in memory, cut into ranges of whole lines that several threads parse at once, each
//! line still known by its number from the start of the file.
//!
//! A manifest of 10,000 files is half a megabyte of lines whose parsing (hex digits, escapes,
//! path checks) is all CPU work, and none of the snapshot's files may be opened before it is
//! done: on one thread it was most of a warm verify. Cut at line ends, the ranges are independent;
//! only what spans lines (a path named twice, the sizes file against the manifest) is decided
//! afterwards, over the whole.

/// Below this many bytes a range is not worth a thread of its own (tests cut far finer, so that
/// every unit test of a reader crosses ranges).
#[cfg(not(test))]
const MIN_RANGE: usize = 64 * 1024;
#[cfg(test)]
const MIN_RANGE: usize = 8;

/// One line: its 1-based number in the whole file and its bytes without the `\n` (a `\r` before
/// it is kept: each reader decides what a line end is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    pub(crate) number: u64,
    pub(crate) bytes: &'a [u8],
}

/// The lines of one range, in order.
#[derive(Clone, Debug)]
pub(crate) struct Lines<'a> {
    rest: &'a [u8],
    next_number: u64,
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let (bytes, rest) = match self.rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&self.rest[..end], &self.rest[end + 1..]),
            // The last line of the file, without a line end.
            None => (self.rest, &self.rest[self.rest.len()..]),
        };
        self.rest = rest;
        let number = self.next_number;
        self.next_number += 1;
        Some(Line { number, bytes })
    }
}

/// `bytes` cut into at most `parts` ranges of whole lines (each but the last ends just after a
/// `\n`), none shorter than `min_range` unless it is the last; each with the number of its first
/// line.
fn cut(bytes: &[u8], parts: usize, min_range: usize) -> Vec<Lines<'_>> {
    let parts = parts.clamp(1, (bytes.len() / min_range.max(1)).max(1));
    let mut ranges = Vec::with_capacity(parts);
    let (mut start, mut next_number) = (0, 1u64);
    for part in 1..=parts {
        let end = if part == parts {
            bytes.len()
        } else {
            // Just after the first line end at or past this part's share of the bytes.
            let target = (bytes.len() / parts * part).max(start);
            match bytes[target..].iter().position(|&b| b == b'\n') {
                Some(at) => target + at + 1,
                None => bytes.len(),
            }
        };
        if end > start {
            let range = &bytes[start..end];
            ranges.push(Lines { rest: range, next_number });
            next_number += range.iter().filter(|&&b| b == b'\n').count() as u64;
            start = end;
        }
    }
    ranges
}

/// Runs `each` on the lines of every range of `bytes`, the ranges on `pool`'s threads, and
/// returns what it returned for each range, in the order of the file.
pub(crate) fn map_ranges<'a, R, F>(bytes: &'a [u8], pool: &rayon::ThreadPool, each: F) -> Vec<R>
where
    R: Send,
    F: Fn(Lines<'a>) -> R + Sync,
{
    let ranges = cut(bytes, pool.current_num_threads(), MIN_RANGE);
    if ranges.len() <= 1 {
        return ranges.into_iter().map(each).collect();
    }
    use rayon::prelude::*;
    pool.install(|| ranges.into_par_iter().with_max_len(1).map(&each).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequential(bytes: &[u8]) -> Vec<Line<'_>> {
        Lines { rest: bytes, next_number: 1 }.collect()
    }

    #[test]
    fn every_cut_gives_the_lines_and_numbers_of_one_pass() {
        let texts: [&[u8]; 7] = [
            b"a\nbb\nccc\n",
            b"a\nbb\nccc",
            b"\n\n\nx\n\n",
            b"one\r\ntwo\r\nthree",
            b"a very long line that straddles every cut\nshort\n",
            b"",
            b"\n",
        ];
        for text in texts {
            let whole = sequential(text);
            for parts in 1..=text.len() + 2 {
                for min_range in [1, 2, 5] {
                    let ranges = cut(text, parts, min_range);
                    assert!(ranges.len() <= parts.max(1));
                    for range in &ranges[..ranges.len().saturating_sub(1)] {
                        assert!(range.rest.ends_with(b"\n"), "a range ends mid-line");
                    }
                    let joined: Vec<Line<'_>> = ranges.into_iter().flatten().collect();
                    assert_eq!(joined, whole, "{} in {parts} parts", text.escape_ascii());
                }
            }
        }
    }

    #[test]
    fn the_last_line_needs_no_line_end_and_keeps_its_cr() {
        let lines = sequential(b"a\r\nb");
        assert_eq!(lines, [Line { number: 1, bytes: b"a\r" }, Line { number: 2, bytes: b"b" }]);
    }
}

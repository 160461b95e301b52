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
/// `\n`), none shorter than `min_range` unless it is the last; each range's lines numbered from 1.
fn cut(bytes: &[u8], parts: usize, min_range: usize) -> Vec<Lines<'_>> {
    let parts = parts.clamp(1, (bytes.len() / min_range.max(1)).max(1));
    let mut ranges = Vec::with_capacity(parts);
    let mut start = 0;
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
            ranges.push(Lines { rest: &bytes[start..end], next_number: 1 });
            start = end;
        }
    }
    ranges
}

/// Runs `each` on the lines of every range of `bytes`, the ranges on `pool`'s threads, and
/// returns what it returned for each range, in the order of the file.
///
/// Each range numbers its lines from 1 (counting them up front would be a pass over the whole
/// file before the work could be shared); once all are done, `renumber` is given each range's
/// result and how many lines came before the range, to add to every line number it holds.
pub(crate) fn map_ranges<'a, R, F, N>(
    bytes: &'a [u8],
    pool: &rayon::ThreadPool,
    each: F,
    renumber: N,
) -> Vec<R>
where
    R: Send,
    F: Fn(&mut Lines<'a>) -> R + Sync,
    N: Fn(&mut R, u64),
{
    let ranges = cut(bytes, pool.current_num_threads(), MIN_RANGE);
    let run = |mut lines: Lines<'a>| {
        let result = each(&mut lines);
        // Lines `each` left unread still count.
        lines.by_ref().for_each(drop);
        (result, lines.next_number - 1)
    };
    let done: Vec<(R, u64)> = if ranges.len() <= 1 {
        ranges.into_iter().map(run).collect()
    } else {
        use rayon::prelude::*;
        pool.install(|| ranges.into_par_iter().with_max_len(1).map(&run).collect())
    };
    let mut before = 0;
    done.into_iter()
        .map(|(mut result, lines)| {
            renumber(&mut result, before);
            before += lines;
            result
        })
        .collect()
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
                    // Renumbered as `map_ranges` does.
                    let mut joined = Vec::new();
                    for range in ranges {
                        let before = joined.len() as u64;
                        joined.extend(range.map(|l| Line { number: l.number + before, ..l }));
                    }
                    assert_eq!(joined, whole, "{} in {parts} parts", text.escape_ascii());
                }
            }
        }
    }

    #[test]
    fn map_ranges_numbers_lines_from_the_start_of_the_file() {
        let text: Vec<u8> = (0..500).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
        // Each range reads only its first two lines: the others must still be counted.
        let numbered = map_ranges(
            &text,
            &pool,
            |lines| lines.take(2).map(|l| (l.number, l.bytes.to_vec())).collect::<Vec<_>>(),
            |found, before| found.iter_mut().for_each(|(n, _)| *n += before),
        );
        assert!(numbered.len() > 1, "not cut");
        for (n, bytes) in numbered.into_iter().flatten() {
            assert_eq!(bytes, format!("line {}", n - 1).into_bytes());
        }
    }

    #[test]
    fn the_last_line_needs_no_line_end_and_keeps_its_cr() {
        let lines = sequential(b"a\r\nb");
        assert_eq!(lines, [Line { number: 1, bytes: b"a\r" }, Line { number: 2, bytes: b"b" }]);
    }
}

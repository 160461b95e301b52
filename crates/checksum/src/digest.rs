//! Algorithms, digests and the streaming hasher.

use std::fmt;

use xxhash_rust::{xxh3, xxh32, xxh64};

use crate::{Error, Result};

/// An xxHash algorithm, named as xxhsum names it.
///
/// ```
/// use checksum::Algo;
/// assert_eq!(Algo::Xxh128.hex_len(), 32);
/// assert_eq!(Algo::Xxh3.to_string(), "XXH3");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algo {
    /// XXH32 (`xxhsum -H0`): only to read old manifests; too weak for new ones.
    Xxh32,
    /// XXH64 (`xxhsum -H1`).
    Xxh64,
    /// XXH3, 64-bit (`xxhsum -H3`).
    Xxh3,
    /// XXH3, 128-bit (`xxhsum -H2`): the toolkit's default.
    #[default]
    Xxh128,
}

impl Algo {
    /// Every algorithm, weakest first.
    pub const ALL: [Algo; 4] = [Algo::Xxh32, Algo::Xxh64, Algo::Xxh3, Algo::Xxh128];

    /// Number of hex digits in this algorithm's digest.
    ///
    /// ```
    /// assert_eq!(checksum::Algo::Xxh32.hex_len(), 8);
    /// ```
    pub fn hex_len(self) -> usize {
        match self {
            Algo::Xxh32 => 8,
            Algo::Xxh64 | Algo::Xxh3 => 16,
            Algo::Xxh128 => 32,
        }
    }

    /// The tag xxhsum writes in BSD-style lines (`XXH128 (path) = hex`).
    ///
    /// ```
    /// assert_eq!(checksum::Algo::from_tag("XXH64"), Some(checksum::Algo::Xxh64));
    /// ```
    pub fn tag(self) -> &'static str {
        match self {
            Algo::Xxh32 => "XXH32",
            Algo::Xxh64 => "XXH64",
            Algo::Xxh3 => "XXH3",
            Algo::Xxh128 => "XXH128",
        }
    }

    /// The algorithm whose BSD tag is `tag`, if any.
    ///
    /// ```
    /// assert_eq!(checksum::Algo::from_tag("MD5"), None);
    /// ```
    pub fn from_tag(tag: &str) -> Option<Algo> {
        Algo::ALL.into_iter().find(|algo| algo.tag() == tag)
    }
}

impl fmt::Display for Algo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A digest and the algorithm that made it. `Display` prints it exactly as xxhsum does: canonical
/// (big-endian) lower-case hex, for XXH128 the high 64 bits first.
///
/// ```
/// use checksum::{hash_bytes, Algo, Digest};
/// let d = hash_bytes(Algo::Xxh128, b"test\n");
/// assert_eq!(d.to_string(), "364b7492fe58a3947e824cae26e04823"); // `echo test | xxhsum -H2`
/// assert_eq!(Digest::from_hex(Algo::Xxh128, &d.to_hex()).unwrap(), d);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    algo: Algo,
    value: u128,
}

impl Digest {
    /// The digest of `algo` whose numeric value is `value` (for XXH128: high 64 bits in the high half).
    ///
    /// ```
    /// let d = checksum::Digest::new(checksum::Algo::Xxh32, 0x67edc1eb);
    /// assert_eq!(d.to_hex(), "67edc1eb");
    /// ```
    pub fn new(algo: Algo, value: u128) -> Digest {
        Digest { algo, value }
    }

    /// The algorithm.
    ///
    /// ```
    /// let d = checksum::hash_bytes(checksum::Algo::Xxh64, b"");
    /// assert_eq!(d.algo(), checksum::Algo::Xxh64);
    /// ```
    pub fn algo(&self) -> Algo {
        self.algo
    }

    /// The numeric value.
    ///
    /// ```
    /// let d = checksum::Digest::new(checksum::Algo::Xxh64, 42);
    /// assert_eq!(d.value(), 42);
    /// ```
    pub fn value(&self) -> u128 {
        self.value
    }

    /// Lower-case hex, as xxhsum prints it.
    ///
    /// ```
    /// let d = checksum::Digest::new(checksum::Algo::Xxh64, 1);
    /// assert_eq!(d.to_hex(), "0000000000000001");
    /// ```
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// Parses hex of exactly the algorithm's length (either case).
    ///
    /// ```
    /// use checksum::{Algo, Digest};
    /// assert!(Digest::from_hex(Algo::Xxh64, "2d7f1808da1fa63c").is_ok());
    /// assert!(Digest::from_hex(Algo::Xxh64, "2d7f").is_err());
    /// ```
    pub fn from_hex(algo: Algo, hex: &str) -> Result<Digest> {
        let bad = |reason| Error::BadHex { algo, hex: hex.chars().take(80).collect(), reason };
        if hex.len() != algo.hex_len() {
            return Err(bad(match algo {
                Algo::Xxh32 => "expected 8 hex digits",
                Algo::Xxh64 | Algo::Xxh3 => "expected 16 hex digits",
                Algo::Xxh128 => "expected 32 hex digits",
            }));
        }
        // One pass, a digit at a time: `u128::from_str_radix` checks for overflow at every digit
        // (a tenth of a verify's manifest parsing), and at most 32 digits cannot overflow.
        let mut value = 0u128;
        for b in hex.bytes() {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(bad("not a hex number")),
            };
            value = value << 4 | u128::from(digit);
        }
        Ok(Digest { algo, value })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0width$x}", self.value, width = self.algo.hex_len())
    }
}

/// A streaming hasher: feed it bytes in any pieces, get the same digest as for the whole.
///
/// It implements [`std::io::Write`], so it can be the second half of a tee while copying.
///
/// ```
/// use checksum::{hash_bytes, Algo, Hasher};
/// let mut h = Hasher::new(Algo::Xxh3);
/// h.update(b"hello ");
/// h.update(b"world");
/// assert_eq!(h.finish(), hash_bytes(Algo::Xxh3, b"hello world"));
/// ```
#[derive(Clone)]
pub struct Hasher {
    state: State,
}

#[derive(Clone)]
enum State {
    Xxh32(xxh32::Xxh32),
    Xxh64(xxh64::Xxh64),
    // Boxed: the XXH3 state carries a 256-byte buffer and the 192-byte default secret.
    Xxh3 { state: Box<xxh3::Xxh3>, wide: bool },
}

impl Hasher {
    /// A hasher for `algo` with the default seed (0), as xxhsum uses.
    ///
    /// ```
    /// let h = checksum::Hasher::new(checksum::Algo::Xxh128);
    /// assert_eq!(h.algo(), checksum::Algo::Xxh128);
    /// ```
    pub fn new(algo: Algo) -> Hasher {
        let state = match algo {
            Algo::Xxh32 => State::Xxh32(xxh32::Xxh32::new(0)),
            Algo::Xxh64 => State::Xxh64(xxh64::Xxh64::new(0)),
            Algo::Xxh3 => State::Xxh3 { state: Box::new(xxh3::Xxh3::new()), wide: false },
            Algo::Xxh128 => State::Xxh3 { state: Box::new(xxh3::Xxh3::new()), wide: true },
        };
        Hasher { state }
    }

    /// The algorithm.
    ///
    /// ```
    /// assert_eq!(checksum::Hasher::new(checksum::Algo::Xxh32).algo(), checksum::Algo::Xxh32);
    /// ```
    pub fn algo(&self) -> Algo {
        match self.state {
            State::Xxh32(_) => Algo::Xxh32,
            State::Xxh64(_) => Algo::Xxh64,
            State::Xxh3 { wide: false, .. } => Algo::Xxh3,
            State::Xxh3 { wide: true, .. } => Algo::Xxh128,
        }
    }

    /// Feeds bytes.
    ///
    /// ```
    /// let mut h = checksum::Hasher::new(checksum::Algo::Xxh64);
    /// h.update(b"abc");
    /// ```
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Xxh32(s) => s.update(bytes),
            State::Xxh64(s) => s.update(bytes),
            State::Xxh3 { state, .. } => state.update(bytes),
        }
    }

    /// The digest of everything fed so far (the hasher can go on being fed).
    ///
    /// ```
    /// let h = checksum::Hasher::new(checksum::Algo::Xxh64);
    /// assert_eq!(h.finish().to_hex(), "ef46db3751d8e999"); // XXH64 of nothing
    /// ```
    pub fn finish(&self) -> Digest {
        let value = match &self.state {
            State::Xxh32(s) => u128::from(s.digest()),
            State::Xxh64(s) => u128::from(s.digest()),
            State::Xxh3 { state, wide: false } => u128::from(state.digest()),
            State::Xxh3 { state, wide: true } => state.digest128(),
        };
        Digest { algo: self.algo(), value }
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The digest of a byte slice.
///
/// ```
/// use checksum::{hash_bytes, Algo};
/// assert_eq!(hash_bytes(Algo::Xxh32, b"test\n").to_hex(), "67edc1eb"); // `xxhsum -H0`
/// ```
pub fn hash_bytes(algo: Algo, bytes: &[u8]) -> Digest {
    let value = match algo {
        Algo::Xxh32 => u128::from(xxh32::xxh32(bytes, 0)),
        Algo::Xxh64 => u128::from(xxh64::xxh64(bytes, 0)),
        Algo::Xxh3 => u128::from(xxh3::xxh3_64(bytes)),
        Algo::Xxh128 => xxh3::xxh3_128(bytes),
    };
    Digest { algo, value }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors printed by the real `xxhsum` 0.8.1 for `echo test` (the bytes "test\n").
    #[test]
    fn matches_xxhsum_vectors() {
        let cases = [
            (Algo::Xxh32, "67edc1eb"),
            (Algo::Xxh64, "2d7f1808da1fa63c"),
            (Algo::Xxh3, "63303a0bd556a055"),
            (Algo::Xxh128, "364b7492fe58a3947e824cae26e04823"),
        ];
        for (algo, hex) in cases {
            assert_eq!(hash_bytes(algo, b"test\n").to_hex(), hex, "{algo}");
            let mut h = Hasher::new(algo);
            for b in b"test\n" {
                h.update(&[*b]);
            }
            assert_eq!(h.finish().to_hex(), hex, "{algo} streamed byte by byte");
        }
    }

    #[test]
    fn from_hex_rejects_wrong_length_and_non_hex() {
        assert!(Digest::from_hex(Algo::Xxh128, "364b7492fe58a3947e824cae26e0482").is_err());
        assert!(Digest::from_hex(Algo::Xxh32, "67edc1eg").is_err());
        assert!(Digest::from_hex(Algo::Xxh32, "+7edc1eb").is_err());
        assert_eq!(Digest::from_hex(Algo::Xxh32, "67EDC1EB").unwrap().to_hex(), "67edc1eb");
    }

    #[test]
    fn leading_zeros_are_printed() {
        assert_eq!(Digest::new(Algo::Xxh128, 1).to_hex(), format!("{:032x}", 1));
    }
}

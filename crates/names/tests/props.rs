//! Property tests: the shown form of any byte string gives back exactly those bytes, stays on one
//! line without control characters, and the manifest form round-trips the same way.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use proptest::prelude::*;

fn name() -> impl Strategy<Value = Vec<u8>> {
    // Bytes biased towards the interesting ones: backslashes, controls, invalid UTF-8 and the
    // letters of escapes.
    let byte = prop_oneof![
        any::<u8>(),
        Just(b'\\'),
        Just(b'\n'),
        Just(b'x'),
        Just(b'e'),
        Just(0xe9u8),
        Just(0xc3u8),
        Just(0xa9u8),
    ];
    prop::collection::vec(byte, 0..40)
}

proptest! {
    #[test]
    fn shown_names_round_trip(bytes in name()) {
        let text = names::shown(OsStr::from_bytes(&bytes)).to_string();
        prop_assert!(!text.chars().any(char::is_control), "{text}");
        prop_assert_eq!(names::escape(OsStr::from_bytes(&bytes)), text.as_str());
        let back = names::unescape(&text).unwrap();
        prop_assert_eq!(back.as_bytes(), &bytes[..]);
    }

    #[test]
    fn different_names_never_print_alike(a in name(), b in name()) {
        prop_assume!(a != b);
        prop_assert_ne!(
            names::shown(OsStr::from_bytes(&a)).to_string(),
            names::shown(OsStr::from_bytes(&b)).to_string()
        );
    }

    #[test]
    fn manifest_names_round_trip(bytes in name()) {
        let mut line = Vec::new();
        names::escape_manifest(&mut line, &bytes);
        prop_assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
        prop_assert_eq!(names::unescape_manifest(&line).unwrap(), bytes);
    }
}

//! `cargo xtask hash` and `check` against the real xxhsum, both directions, and bad input.
//!
//! The xxhsum here is Debian's 0.8.1: it neither writes nor reads `XXH3_<hex>` GNU lines or
//! escaped names (both came with 0.8.2), so those are checked through our own `check`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::path::Path;
use std::process::{Command, Output};

use e2e::{assert_exit, require_tool, xtask};

/// A small tree: nested folders, an empty file, files around the hash buffer size.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files: [(&str, usize); 6] = [
        ("a.txt", 5),
        ("empty", 0),
        ("roms/snes/Game One.sfc", 256 * 1024),
        ("roms/snes/game two.sfc", 256 * 1024 + 1),
        ("roms/gba/x.gba", 3 * 1024 * 1024 + 7),
        ("notes/readme.md", 100),
    ];
    for (i, (rel, len)) in files.into_iter().enumerate() {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..len).map(|j| ((j * 31 + i * 7) % 253) as u8).collect();
        std::fs::write(path, bytes).unwrap();
    }
    dir
}

fn run_in(dir: &Path, cmd: &mut Command) -> Output {
    cmd.current_dir(dir).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn what_hash_prints_passes_real_xxhsum_check() {
    let Some(xxhsum) = require_tool("xxhsum") else { return };
    let dir = tree();
    for algo in ["xxh128", "xxh64"] {
        let out = run_in(dir.path(), xtask().args(["hash", "--algo", algo, "."]));
        assert_exit(&out, 0);
        assert_eq!(stdout(&out).lines().count(), 6, "{}", stdout(&out));
        std::fs::write(dir.path().join("../manifest"), &out.stdout).unwrap();
        let check = run_in(dir.path(), Command::new(&xxhsum).args(["-c", "../manifest"]));
        assert_exit(&check, 0);
        assert_eq!(stdout(&check).matches(": OK").count(), 6, "{}", stdout(&check));
    }
    // The digests themselves are xxhsum's: compare line by line with `xxhsum -H2` on the same files.
    let ours = stdout(&run_in(dir.path(), xtask().args(["hash", "roms/gba/x.gba", "a.txt"])));
    let theirs = run_in(dir.path(), Command::new(&xxhsum).args(["-H2", "roms/gba/x.gba", "a.txt"]));
    assert_eq!(ours, stdout(&theirs));
}

#[test]
fn check_accepts_every_manifest_real_xxhsum_writes() {
    let Some(xxhsum) = require_tool("xxhsum") else { return };
    let dir = tree();
    let files = ["a.txt", "empty", "roms/snes/Game One.sfc", "roms/gba/x.gba"];
    for flags in [&["-H0"][..], &["-H1"], &["-H2"], &["-H3"], &["--tag", "-H2"], &["--tag", "-H1"]]
    {
        let written = run_in(dir.path(), Command::new(&xxhsum).args(flags).args(files));
        assert_exit(&written, 0);
        std::fs::write(dir.path().join("m"), &written.stdout).unwrap();
        let out = run_in(dir.path(), xtask().args(["check", "m"]));
        assert_exit(&out, 0);
        assert_eq!(stdout(&out).matches(": OK").count(), 4, "xxhsum {flags:?}: {}", stdout(&out));
    }
}

#[test]
fn check_names_a_corrupted_file_and_exits_1() {
    let Some(xxhsum) = require_tool("xxhsum") else { return };
    let dir = tree();
    let written =
        run_in(dir.path(), Command::new(&xxhsum).args(["-H2", "a.txt", "roms/gba/x.gba"]));
    std::fs::write(dir.path().join("m"), &written.stdout).unwrap();
    // Flip one byte in the middle of the larger file.
    let path = dir.path().join("roms/gba/x.gba");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1_000_000] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let out = run_in(dir.path(), xtask().args(["check", "m"]));
    assert_exit(&out, 1);
    assert_eq!(
        stdout(&out),
        "a.txt: OK\nroms/gba/x.gba: FAILED\n1 computed checksum did NOT match\n",
        "xxhsum's summary, on stdout as xxhsum prints it"
    );
    // xxhsum agrees.
    assert_exit(&run_in(dir.path(), Command::new(&xxhsum).args(["-c", "m"])), 1);
    // --status prints nothing but keeps the verdict; --quiet drops the OK lines.
    let out = run_in(dir.path(), xtask().args(["check", "--status", "m"]));
    assert_exit(&out, 1);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let out = run_in(dir.path(), xtask().args(["check", "-q", "m"]));
    assert_eq!(stdout(&out), "roms/gba/x.gba: FAILED\n1 computed checksum did NOT match\n");
}

#[test]
fn xxh3_and_escaped_names_round_trip_through_our_check() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["back\\slash", "new\nline", "plain"] {
        std::fs::write(dir.path().join(name), name).unwrap();
    }
    for algo in ["xxh3", "xxh128"] {
        let out = run_in(dir.path(), xtask().args(["hash", "--algo", algo, "."]));
        assert_exit(&out, 0);
        let text = stdout(&out);
        assert_eq!(text.lines().filter(|l| l.starts_with('\\')).count(), 2, "{text}");
        if algo == "xxh3" {
            // Tagged, as xxhsum 0.8.1 writes XXH3 (its -c cannot read 0.8.2's `XXH3_` lines).
            assert!(
                text.lines().all(|l| l.trim_start_matches('\\').starts_with("XXH3 (")),
                "{text}"
            );
        }
        std::fs::write(dir.path().join("../m"), &out.stdout).unwrap();
        let out = run_in(dir.path(), xtask().args(["check", "../m"]));
        assert_exit(&out, 0);
        assert_eq!(stdout(&out).matches(": OK").count(), 3);
        assert!(stdout(&out).contains("\\./new\\nline: OK"), "{}", stdout(&out));
    }
}

#[test]
fn missing_files_fail_unless_ignored() {
    let dir = tree();
    let out = run_in(dir.path(), xtask().args(["hash", "a.txt", "gone"]));
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("gone"));
    std::fs::write(
        dir.path().join("m"),
        [stdout(&out), "0123456789abcdef0123456789abcdef  gone\n".into()].concat(),
    )
    .unwrap();
    let out = run_in(dir.path(), xtask().args(["check", "m"]));
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("m:2: Could not open or read 'gone': No such file or directory.\n"),
        "{}",
        stdout(&out)
    );
    let out = run_in(dir.path(), xtask().args(["check", "--ignore-missing", "m"]));
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "a.txt: OK\n");
}

/// Each bad input: a clear message naming the path or line and the cause, the contract's exit
/// code, and never a panic.
#[test]
fn bad_input_gets_clear_errors() {
    let dir = tree();
    let garbage: Vec<u8> =
        (0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(dir.path().join("garbage"), garbage).unwrap();
    let good_line = run_in(dir.path(), xtask().args(["hash", "a.txt"])).stdout;
    let mut long = vec![b'a'; 50 << 20];
    long.push(b'\n');
    long.extend_from_slice(&good_line);
    std::fs::write(dir.path().join("long"), long).unwrap();
    std::fs::write(dir.path().join("shorthex"), "6bba86c7e0  a.txt\n").unwrap();
    std::fs::write(
        dir.path().join("badtag"),
        "MD5 (a.txt) = 6bba86c7e069f56d5a10b435f1c8e49c\nXXH99 (a.txt) = 00\n",
    )
    .unwrap();
    let cases: [(&[&str], i32, &str); 7] = [
        (&["hash", "nonexistent"], 1, "nonexistent: No such file"),
        (&["check", "nonexistent"], 2, "cannot open nonexistent"),
        (&["check", "roms"], 2, "roms: is a directory"),
        (&["check", "garbage"], 1, "garbage: no properly formatted"),
        (&["check", "-w", "long"], 0, "long:1: Error: Improperly formatted checksum line (longer"),
        (&["check", "-w", "shorthex"], 1, "line (a digest of 10 hex digits matches no"),
        (
            &["check", "--warn", "badtag"],
            1,
            "badtag:2: Error: Improperly formatted checksum line (unknown algorithm tag \"XXH99\")",
        ),
    ];
    for (args, code, message) in cases {
        let out = run_in(dir.path(), xtask().args(args));
        assert_exit(&out, code);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: expected {message:?} in\n{stderr}");
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    }
    // The 50 MB line is skipped without being buffered, not fatal: the valid line after it is
    // still checked (exit 0, as coreutils), and --strict turns the malformed line into a failure.
    let out = run_in(dir.path(), xtask().args(["check", "long"]));
    assert_eq!(stdout(&out), "a.txt: OK\n1 line is improperly formatted\n");
    assert_exit(&run_in(dir.path(), xtask().args(["check", "--strict", "long"])), 1);
    // An unknown --algo is a usage error.
    assert_exit(&run_in(dir.path(), xtask().args(["hash", "--algo", "md5", "a.txt"])), 2);
}

/// Runs `xxhsum ARGS` and `xtask hash|check ARGS` on the same files and standard input, and wants
/// the same stdout, byte for byte, and the same exit code.
fn same_as_xxhsum(xxhsum: &Path, dir: &Path, verb: &str, args: &[&str], stdin: &[u8]) {
    let run = |cmd: &mut Command| {
        use std::io::Write as _;
        let mut child = cmd
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    };
    let flags: Vec<&str> = if verb == "check" { [&["-c"][..], args].concat() } else { args.into() };
    let theirs = run(Command::new(xxhsum).args(&flags));
    let ours = run(xtask().arg(verb).args(args));
    assert_eq!(
        (stdout(&ours), ours.status.code()),
        (stdout(&theirs), theirs.status.code()),
        "{verb} {args:?} (ours, left) against xxhsum {flags:?}; our stderr: {}",
        String::from_utf8_lossy(&ours.stderr)
    );
}

#[test]
fn hash_and_check_print_byte_for_byte_what_real_xxhsum_prints() {
    let Some(xxhsum) = require_tool("xxhsum") else { return };
    let dir = tree();
    let d = dir.path();
    let files = ["a.txt", "empty", "roms/snes/Game One.sfc", "roms/gba/x.gba"];
    for h in ["-H0", "-H1", "-H2", "-H3", "-H32", "-H64", "-H128"] {
        same_as_xxhsum(&xxhsum, d, "hash", &[&[h][..], &files].concat(), b"");
        same_as_xxhsum(&xxhsum, d, "hash", &[&[h, "--tag"][..], &files].concat(), b"");
        same_as_xxhsum(&xxhsum, d, "hash", &[h, "-"], b"standard input\n");
        same_as_xxhsum(&xxhsum, d, "hash", &[h], b"standard input\n");
    }
    same_as_xxhsum(&xxhsum, d, "hash", &["-H2", "a.txt", "missing", "empty"], b"");

    // Manifests: good, with a flipped file, a missing file and malformed lines, in every style.
    let write = |name: &str, flags: &[&str], extra: &str| {
        let out = run_in(d, Command::new(&xxhsum).args(flags).args(files));
        let text = [stdout(&out), extra.to_owned()].concat();
        std::fs::write(d.join(name), text).unwrap();
    };
    write("good", &["-H2"], "");
    write("tagged", &["-H1", "--tag"], "");
    write("xxh3", &["-H3"], "");
    write("mixed", &["-H0"], "garbage\n0123  short\n0123456789abcdef0123456789abcdef  gone\n");
    std::fs::write(d.join("junk"), "no checksums here\n").unwrap();
    std::fs::write(d.join("empty"), b"changed").unwrap(); // after hashing: one mismatch
    for args in [
        &["good"][..],
        &["tagged"],
        &["xxh3"],
        &["mixed"],
        &["-q", "mixed"],
        &["--quiet", "good"],
        &["--status", "mixed"],
        &["--status", "tagged"],
        &["-w", "mixed"],
        &["--warn", "--strict", "mixed"],
        &["--strict", "good"],
        &["junk"],
        &["good", "mixed", "tagged"],
    ] {
        same_as_xxhsum(&xxhsum, d, "check", args, b"");
    }
    let manifest = std::fs::read(d.join("tagged")).unwrap();
    same_as_xxhsum(&xxhsum, d, "check", &["-"], &manifest);
    same_as_xxhsum(&xxhsum, d, "check", &[], &manifest);
}

//! The CLI's shape: every verb of the contract exists, usage errors exit 2, `--help` exits 0.

use e2e::{assert_exit, xtask};

#[test]
fn every_verb_of_the_contract_has_help() {
    for verb in [
        "hash", "check", "copy", "seal", "verify", "latest", "lock", "once", "write", "sweep",
        "jsonl", "demo", "bench",
    ] {
        let out = xtask().args([verb, "--help"]).output().unwrap();
        assert_exit(&out, 0);
        assert!(!out.stdout.is_empty(), "`{verb} --help` printed nothing");
    }
}

#[test]
fn unknown_verb_is_a_usage_error() {
    let out = xtask().arg("frobnicate").output().unwrap();
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}

#[test]
fn readme_test_command_is_the_one_ci_runs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    let head: String = readme.lines().take(20).collect::<Vec<_>>().join("\n");
    assert!(head.contains("cargo xtask demo"), "README must open with `cargo xtask demo`");
    assert!(head.contains("cargo test --workspace"), "README must open with the test command");
    assert!(
        ci.lines().any(|l| l.trim_start().starts_with("cargo test --workspace")),
        ".ci/run must run the README's test command `cargo test --workspace`"
    );
}

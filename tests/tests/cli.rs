//! The CLI's shape: every verb of the contract exists, usage errors exit 2, `--help` exits 0.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use e2e::{assert_exit, xtask};

#[test]
fn every_verb_of_the_contract_has_help() {
    for verb in [
        "hash", "check", "copy", "seal", "verify", "latest", "lock", "once", "write", "sweep",
        "jsonl", "demo", "bench", "soak", "fuzz",
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

#[test]
fn every_error_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 11] = [
        &["hash", "missing"],
        &["check", "missing"],
        &["lock", "missing/F", "true"],
        &["once", "missing/t", "--", "touch", "{}"],
        &["write", "missing/x"],
        &["seal", "missing"],
        &["verify", "missing"],
        &["latest", "missing"],
        &["copy", "missing", "dst"],
        &["jsonl", "missing"],
        &["sweep", "missing"],
    ];
    for args in cases {
        let out = xtask().args(args).current_dir(dir.path()).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.contains("missing"), "{args:?} names the path: {err}");
        assert!(
            err.contains("No such file or directory") || err.contains("does not exist"),
            "{args:?} names the cause: {err}"
        );
        for line in err.lines() {
            // Said by the verb, as every verb's messages are (not a bare "error:").
            assert!(line.starts_with(&format!("{}: ", args[0])), "{args:?}: {line}");
            assert!(line.matches("No such file or directory").count() <= 1, "{args:?}: {line}");
            assert!(line.matches("(os error").count() <= 1, "{args:?} says a cause twice: {line}");
        }
    }
}

/// `verb | head -1`: the reader closes the pipe early; the verb ends quietly, as xxhsum does
/// (there killed by SIGPIPE, status 141 in a shell), never with an error message or exit 2.
#[test]
fn a_closed_pipe_ends_a_verb_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // Far more output than a pipe buffers (64 KiB on Linux): 5000 lines of over 100 bytes, so the
    // verb is still writing when the pipe closes.
    let name = "a".repeat(100);
    std::fs::write(dir.path().join(&name), "a").unwrap();
    let many: Vec<&str> = std::iter::repeat_n(name.as_str(), 5000).collect();
    let manifest = xtask().arg("hash").args(&many).current_dir(dir.path()).output().unwrap();
    assert_exit(&manifest, 0);
    std::fs::write(dir.path().join("m"), &manifest.stdout).unwrap();
    for args in [&["hash"][..], &["hash", "--tag", "-H1"], &["check"]] {
        let mut cmd = xtask();
        cmd.args(args).current_dir(dir.path());
        if args[0] == "check" {
            cmd.arg("m");
        } else {
            cmd.args(&many);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        assert!(!first.is_empty());
        // The reader (and with it the pipe's read end) is gone now.
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(141), "{args:?}: killed-by-SIGPIPE status");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}: quiet");
    }
}

/// Every verb with `--json` reports a failure in one shape on stdout:
/// `{"ok": false, "error": {"kind": ..., "message": ...}}` (docs/FORMATS.md).
#[test]
fn every_json_failure_has_one_shape() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["copy", "--json", "missing", "dst"], "refused"),
        (&["seal", "--json", "missing"], "error"),
        (&["verify", "--json", "missing"], "error"),
        (&["latest", "--json", "missing"], "error"),
        (&["verify", "--json", "--no-such-flag", "x"], "usage"),
        (&["bench", "--json", "--only", "no-such-group"], "error"),
        (&["verify", "--json", "."], "not_sealed"),
    ];
    for (args, kind) in cases {
        let out = xtask().args(args).current_dir(dir.path()).output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{args:?}: stdout is not one JSON document ({e}):\n{}", stdout(&out))
        });
        assert_eq!(doc["ok"], false, "{args:?}: {doc}");
        assert_eq!(doc["error"]["kind"], kind, "{args:?}: {doc}");
        assert!(doc["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{args:?}: {doc}");
    }
}

#[test]
fn bench_json_prints_only_json() {
    let data = tempfile::tempdir().unwrap();
    let out = xtask()
        .args(["bench", "--json", "--quick", "--only", "lock", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not only JSON ({e}):\n{}", stdout(&out)));
    assert!(doc.as_array().is_some_and(|tables| !tables.is_empty()), "{doc}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("contender"), "tables on stderr");
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn messages_agree_with_each_other_and_with_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("snap")).unwrap();
    std::fs::write(d.join("snap/a"), "a").unwrap();
    std::fs::write(d.join("snap/b"), "bb").unwrap();
    let run = |args: &[&str]| xtask().args(args).current_dir(d).output().unwrap();
    // seal and verify count the same snapshot the same way.
    let sealed = stdout(&run(&["seal", "snap"]));
    let verified = stdout(&run(&["verify", "snap"]));
    let listed = |s: &str| s[s.find('(').unwrap() + 1..s.find(" listed").unwrap()].to_owned();
    assert_eq!(listed(&sealed), listed(&verified), "{sealed}{verified}");
    // A copy that only skipped does not claim to have verified anything.
    let said = |out: std::process::Output| {
        [stdout(&out), String::from_utf8_lossy(&out.stderr).into_owned()].concat()
    };
    let first = said(run(&["copy", "snap", "dst"]));
    assert!(first.contains(", verified"), "{first}");
    let again = said(run(&["copy", "snap", "dst"]));
    assert!(again.contains("copied 0 files") && !again.contains("verified"), "{again}");
    // jsonl names the file's line and the column in it, not the parser's "line 1".
    std::fs::write(d.join("j.jsonl"), "{\"a\":1}\n{\"a\":\n").unwrap();
    let err = String::from_utf8_lossy(&run(&["jsonl", "j.jsonl"]).stderr).into_owned();
    assert!(err.contains("line 2: invalid JSON at column 5: EOF while parsing"), "{err}");
    assert!(!err.contains("line 1"), "{err}");
}

/// The installable command: its own name, a version, completions and a man page from the same
/// definitions, and the same verbs as `cargo xtask` (which adds only the developer verbs).
#[test]
fn safefs_is_a_command_of_its_own() {
    let out = e2e::safefs().arg("--version").output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), format!("safefs {}\n", env!("CARGO_PKG_VERSION")));
    for shell in ["bash", "zsh", "fish"] {
        let out = e2e::safefs().args(["completions", shell]).output().unwrap();
        assert_exit(&out, 0);
        let script = stdout(&out);
        assert!(script.contains("safefs") && script.contains("ignore-missing"), "{shell}");
    }
    let out = e2e::safefs().arg("man").output().unwrap();
    assert_exit(&out, 0);
    let page = stdout(&out);
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH safefs"), "{page}");
    assert!(page.contains("Exit codes"), "{page}");
    let out = e2e::safefs().args(["hash", "-H1", "-"]).output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "ef46db3751d8e999  stdin\n");
    // The developer verbs are cargo xtask's only; its --help lists both kinds.
    assert_exit(&e2e::safefs().args(["bench", "--help"]).output().unwrap(), 2);
    let help = stdout(&xtask().arg("--help").output().unwrap());
    assert!(help.contains("hash") && help.contains("bench") && help.contains("soak"), "{help}");
}

/// A completion script completes the command users install and type, `safefs`, also when
/// `cargo xtask completions` prints it: bash takes it and registers it for `safefs`.
#[test]
fn completions_register_for_the_safefs_command_whoever_prints_them() {
    let Some(bash) = e2e::require_tool("bash") else { return };
    let dir = tempfile::tempdir().unwrap();
    for (who, mut cmd) in [("safefs", e2e::safefs()), ("cargo xtask", xtask())] {
        let out = cmd.args(["completions", "bash"]).output().unwrap();
        assert_exit(&out, 0);
        let script = dir.path().join("safefs.bash");
        std::fs::write(&script, &out.stdout).unwrap();
        let registered = std::process::Command::new(&bash)
            .arg("-c")
            .arg(r#"source "$1" && complete -p safefs"#)
            .arg("bash")
            .arg(&script)
            .output()
            .unwrap();
        let said =
            format!("{}{}", stdout(&registered), String::from_utf8_lossy(&registered.stderr));
        assert!(registered.status.success(), "{who}: bash did not register safefs: {said}");
        assert!(
            said.starts_with("complete ")
                && said.contains(" -F _safefs ")
                && said.trim_end().ends_with(" safefs"),
            "{who}: {said}"
        );
        assert!(!stdout(&out).contains("xtask"), "{who}: the script names cargo xtask");
    }
}

/// Each verb's `--help` ends with its exit codes and an example.
#[test]
fn every_verb_help_ends_with_exit_codes_and_examples() {
    for verb in [
        "hash",
        "check",
        "copy",
        "seal",
        "verify",
        "latest",
        "lock",
        "once",
        "write",
        "sweep",
        "jsonl",
        "demo",
        "completions",
    ] {
        let help = stdout(&e2e::safefs().args([verb, "--help"]).output().unwrap());
        let codes = help.find("Exit codes").unwrap_or_else(|| panic!("{verb}: {help}"));
        let examples = help.find("Examples:").unwrap_or_else(|| panic!("{verb}: {help}"));
        assert!(codes < examples, "{verb}: exit codes, then examples");
        assert!(help[examples..].contains(&format!("safefs {verb}")), "{verb}: {help}");
    }
}

//! The README's tour runs as printed and prints what the README shows: every `$ ` line of its
//! console blocks is run in order (with `cargo xtask` meaning the freshly built CLI, and the
//! fixtures made in a temp dir instead of `target/tour`), and the output must match line by line,
//! except for what differs run to run: pids, durations and rates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::process::Command;

use e2e::require_tool;

/// The tour: the console blocks between its heading and the soak, in order.
fn tour_blocks(readme: &str) -> Vec<Vec<String>> {
    let start = readme.find("## A short tour").expect("README has a tour");
    let end = start + readme[start..].find("Soak everything at once").expect("tour end");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in readme[start..end].lines() {
        match (&mut current, line) {
            (None, "```console") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), line) => block.push(line.to_owned()),
            (None, _) => {}
        }
    }
    blocks
}

/// Pids, durations and rates vary from run to run.
fn normalize(line: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for word in line.split(' ') {
        let number = |w: &str| w.parse::<f64>().is_ok();
        if out.last() == Some(&"pid") && word.bytes().all(|b| b.is_ascii_digit()) {
            out.push("N");
        } else if word.ends_with("s,") && number(&word[..word.len() - 2]) {
            out.push("T,");
        } else if word.ends_with("/s") || word.ends_with("/s,") {
            // "1007 B/s" or "2.10 KiB/s": the number before the unit goes too.
            if out.last().is_some_and(|w| number(w)) {
                out.pop();
            }
            out.push("R");
        } else {
            out.push(word);
        }
    }
    out.join(" ")
}

#[test]
fn the_readme_tour_runs_as_printed() {
    if require_tool("flock").is_none() || require_tool("xxhsum").is_none() {
        return;
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let lines: Vec<String> = tour_blocks(&readme).concat();
    assert!(lines.iter().filter(|l| l.starts_with("$ ")).count() > 20, "{lines:?}");
    let dir = tempfile::tempdir().unwrap();
    let mut script = String::from("set -u\n");
    for line in &lines {
        let Some(cmd) = line.strip_prefix("$ ") else { continue };
        let cmd = cmd.replace("mkdir -p target/tour && cd target/tour", "cd \"$TOUR\"");
        let cmd = cmd.replace("cargo xtask", "\"$XTASK\"");
        script.push_str(&format!("printf '%s\\n' '{}'\n{cmd}\n", line.replace('\'', "'\\''")));
    }
    let out = Command::new("bash")
        .args(["-c", &format!("exec 2>&1\n{script}")])
        .env("TOUR", dir.path())
        .env("XTASK", e2e::xtask_path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    let got: Vec<String> = printed.lines().map(normalize).collect();
    let want: Vec<String> = lines.iter().map(|l| normalize(l)).collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "line {i} of the tour differs; whole run:\n{printed}");
    }
    assert_eq!(got.len(), want.len(), "whole run:\n{printed}");
}

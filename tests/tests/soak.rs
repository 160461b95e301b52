//! `cargo xtask soak`: a short multi-process soak with random SIGKILLs must end with no violation.
//! (The soak's own checks are shown to catch partial files in its unit test.)

use e2e::{assert_exit, xtask};

#[test]
fn a_short_soak_with_random_kills_ends_with_every_artifact_intact() {
    let out = xtask().args(["soak", "--seconds", "5", "--seed", "7"]).output().unwrap();
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let head = stdout.lines().next().unwrap_or_default();
    // "soak: N operations, K kills, 0 violations (seed 7)"
    let number = |word: &str| -> usize {
        let before = head.split(word).next().unwrap_or_default();
        before.split_whitespace().last().and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    assert!(number(" operations") >= 50, "{stdout}{stderr}");
    assert!(number(" kills") >= 5, "too few processes were killed mid-operation: {stdout}");
    assert!(head.contains(" 0 violations"), "{stdout}{stderr}");
    for op in ["once", "write", "copy", "seal", "verify"] {
        assert!(stdout.contains(&format!("  {op} ")), "{op} never ran: {stdout}");
    }
    assert!(stderr.contains("soak: sweep removed"), "{stderr}");
}

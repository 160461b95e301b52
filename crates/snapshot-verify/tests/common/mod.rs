//! A small snapshot to seal, break and verify, in a fresh temp dir per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test
#![allow(dead_code, unreachable_pub)] // each test file uses a different part

use std::path::{Path, PathBuf};

use snapshot_verify::{Problem, ProblemKind, Report, SealSpec, VerifyOptions, seal, verify};
use tempfile::TempDir;

/// A snapshot like a training checkpoint: a config, weights in a subdirectory, a tokenizer, a
/// name with a space and non-ASCII letters.
pub struct Snap {
    _tmp: TempDir,
    pub dir: PathBuf,
}

pub const WEIGHTS: &str = "model/weights.bin";
pub const WEIGHTS_LEN: usize = 300_000;

/// Bytes that differ at every position from a shifted copy, so a flipped byte is a real change.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

impl Snap {
    pub fn new() -> Snap {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("step-1");
        std::fs::create_dir_all(dir.join("model")).unwrap();
        std::fs::write(dir.join("config.json"), br#"{"lr": 0.001, "layers": [1, 2, 3]}"#).unwrap();
        std::fs::write(dir.join(WEIGHTS), pattern(WEIGHTS_LEN, 1)).unwrap();
        std::fs::write(dir.join("model/notes.txt"), b"trained for 3 epochs\n").unwrap();
        std::fs::write(dir.join("tokenizer.json"), br#"{"vocab": {"a": 1}}"#).unwrap();
        std::fs::write(dir.join("odd näme.txt"), b"x").unwrap();
        Snap { _tmp: tmp, dir }
    }

    pub fn sealed() -> Snap {
        let snap = Snap::new();
        let mut spec = SealSpec::default();
        spec.required = vec!["config.json".into()];
        seal(&snap.dir, &spec, &()).unwrap();
        snap
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn verify(&self) -> Report {
        verify(&self.dir, &VerifyOptions::default(), &()).unwrap()
    }

    pub fn verify_with(&self, opts: &VerifyOptions) -> Report {
        verify(&self.dir, opts, &()).unwrap()
    }
}

/// The problems of a report as (path, kind) pairs, for compact assertions.
pub fn problems(report: &Report) -> Vec<(String, ProblemKind)> {
    report
        .problems
        .iter()
        .map(|Problem { path, kind }| (path.to_str().unwrap().to_owned(), kind.clone()))
        .collect()
}

pub fn one(path: &str, kind: ProblemKind) -> Vec<(String, ProblemKind)> {
    vec![(path.to_owned(), kind)]
}

pub fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

pub fn is_root() -> bool {
    let out = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Runs `f` on another thread and fails (instead of hanging the whole test run) if it has not
/// returned within a generous bound: for checks that something never blocks on a FIFO.
pub fn must_return<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("{what} blocked (did it open a FIFO?)"))
}

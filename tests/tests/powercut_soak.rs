//! A power-cut soak: `write`, `once`, `copy` and `seal` run at the same time, as four processes,
//! on the power-cut file system, and the power goes at a request picked at random (seeded, so a
//! failure reproduces) among all of theirs; every process is killed. After each cut: the status
//! file is old or complete new, the artifact absent or complete, each copied file absent, its
//! previous version or complete new, and a manifest that survived verifies. Rounds in which
//! every process finished before the cut check that everything reported done survived.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test
#![allow(clippy::print_stderr)] // the soak's figures

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use e2e::powercut::{Cut, PowerCut, quiet};

/// Rounds (each one cut): a few seconds on 2 cores.
const ROUNDS: u64 = 40;

fn content(seed: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_246_822_519).wrapping_add(seed) as u8).collect()
}

/// A small deterministic generator (xorshift64*), so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

struct World {
    fs: PowerCut,
    input: tempfile::NamedTempFile,
    src: tempfile::TempDir,
    old_status: Vec<u8>,
    new_status: Vec<u8>,
    artifact: Vec<u8>,
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl World {
    fn spawn_all(&self) -> Vec<Child> {
        let root = self.fs.path();
        let mut write = quiet(e2e::xtask());
        write.arg("write").arg(root.join("status.json"));
        write.stdin(Stdio::from(fs::File::open(self.input.path()).unwrap()));
        let mut once = quiet(e2e::xtask());
        once.arg("once").arg(root.join("artifact")).args(["--", "cp"]);
        once.arg(self.input.path()).arg("{}");
        let mut copy = quiet(e2e::xtask());
        copy.args(["copy", "--jobs", "2"]).arg(self.src.path()).arg(root.join("dst"));
        let mut seal = quiet(e2e::xtask());
        seal.arg("seal").arg(root.join("snap"));
        [write, once, copy, seal].map(|mut cmd| cmd.spawn().unwrap()).into()
    }

    /// Violations after a cut; `done` holds each process's exit code when all had finished.
    fn check(&self, done: Option<[Option<i32>; 4]>) -> Vec<String> {
        let root = self.fs.path();
        let mut bad = Vec::new();
        let status = fs::read(root.join("status.json")).unwrap_or_default();
        let finished = |i: usize| done.is_some_and(|codes| codes[i] == Some(0));
        let whole = status == self.old_status || status == self.new_status;
        if !whole || (finished(0) && status != self.new_status) {
            bad.push(format!("status.json: {} bytes, neither old nor new", status.len()));
        }
        let artifact = fs::read(root.join("artifact")).ok();
        let complete = artifact.as_deref() == Some(&self.artifact[..]);
        if !complete && (artifact.is_some() || finished(1)) {
            bad.push("artifact: torn, or missing after once returned".into());
        }
        for (rel, want) in &self.files {
            let now = fs::read(root.join("dst").join(rel)).ok();
            let complete = now.as_ref() == Some(want);
            if !complete && (now.is_some() || finished(2)) {
                bad.push(format!("dst/{}: torn, or missing after copy returned", rel.display()));
            }
        }
        let snap = root.join("snap");
        let sealed = snap.join("manifest.xxh128").exists();
        let verifies = sealed
            && snapshot_verify::verify(&snap, &Default::default(), &()).is_ok_and(|r| r.is_ok());
        if (sealed || finished(3)) && !verifies {
            bad.push("snap: a manifest whose files do not verify".into());
        }
        bad
    }
}

fn checkpoint(dir: &Path) {
    fs::create_dir_all(dir.join("w")).unwrap();
    fs::write(dir.join("meta.json"), br#"{"step": 7}"#).unwrap();
    for i in 0..4u32 {
        fs::write(dir.join(format!("w/{i}.bin")), content(70 + i, 9000)).unwrap();
    }
}

#[test]
fn four_verbs_at_once_survive_random_power_cuts() {
    let Some(fs) = PowerCut::mount() else { return };
    let old_status = content(1, 500);
    let new_status = content(2, 300_000);
    fs::write(fs.path().join("status.json"), &old_status).unwrap();
    let input = tempfile::NamedTempFile::new().unwrap();
    fs::write(input.path(), &new_status).unwrap();
    let src = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..12u32 {
        let rel = PathBuf::from(format!("d{}/f{i}", i % 2));
        let bytes = content(20 + i, 2000 + 300 * i as usize);
        fs::create_dir_all(src.path().join(rel.parent().unwrap())).unwrap();
        fs::write(src.path().join(&rel), &bytes).unwrap();
        files.push((rel, bytes));
    }
    fs.sync_all();
    let start = fs.snapshot();
    let world =
        World { fs, input, src, old_status, artifact: new_status.clone(), new_status, files };
    let fs = &world.fs;

    // An uncut round: how many requests the four send together (they interleave differently
    // each time, so this is only the range the cuts are drawn from).
    fs.restore(&start);
    checkpoint(&fs.path().join("snap"));
    fs.arm(None);
    let mut children = world.spawn_all();
    let codes = children.iter_mut().map(e2e::wait_within).collect::<Vec<_>>();
    let total = fs.requests();
    assert_eq!(codes, [Some(0); 4], "an uncut round must succeed");
    fs.cut_with(Cut::NamesCommitted);
    fs.resume();
    let mut violations = world.check(Some([Some(0); 4]));

    let mut rng = Rng(0x5EED_0012);
    let (mut during, mut after) = (0, 1);
    for round in 0..ROUNDS {
        fs.restore(&start);
        checkpoint(&fs.path().join("snap"));
        fs.arm(Some(1 + rng.below(total)));
        let mut children = world.spawn_all();
        let how = if round % 2 == 0 { Cut::DropPending } else { Cut::NamesCommitted };
        let froze = fs.cut_during(&mut children, how);
        let done = if froze {
            during += 1;
            None
        } else {
            after += 1;
            let codes: Vec<_> = children.iter_mut().map(|c| c.wait().unwrap().code()).collect();
            Some([codes[0], codes[1], codes[2], codes[3]])
        };
        for v in world.check(done) {
            violations.push(format!("round {round} ({how:?}): {v}"));
        }
    }
    eprintln!(
        "power-cut soak: {total} requests per uncut round, {during} cuts during, {after} after \
         all returned, {} violations",
        violations.len()
    );
    assert!(during >= ROUNDS / 2, "too few cuts landed during the run: {during}");
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

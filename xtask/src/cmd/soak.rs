//! `cargo xtask soak [--seconds N] [--procs P] [--seed S] [--dir D]`: a multi-process soak.
//!
//! For N seconds, P processes at a time run random `once`, `write`, `copy`, `seal` and `verify`
//! verbs (this very binary) on a handful of shared targets, while the soak SIGKILLs random ones (the
//! whole process group, so a producer child dies with its `once`). It reports operations done,
//! kills (those that hit a running process) and violations. Afterwards it checks what
//! crashes and races may not break:
//!
//! - every `once` artifact is absent or the complete expected bytes;
//! - every `write` target is exactly one of the versions ever written;
//! - every file in every `copy` destination is absent or identical to its source, and a final copy
//!   completes each destination;
//! - the read-only snapshot still verifies, and the sealed directory is unsealed or verifies;
//! - `sweep` removes every temp left by killed processes, and then none is left.
//!
//! A verb that exits non-zero without being killed is a violation too (with its stderr), except
//! `seal`, whose refusal is its answer to a directory that a killed `seal` may leave with a temp
//! in it. Exit 0 no violation; 1 violations (each listed); 2 the soak could not be set up.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use toolkit::checksum::{Algo, hash_bytes};
use toolkit::{atomic_io, names, snapshot_verify};

use crate::exit;

/// Flags of `cargo xtask soak`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// How long to run the random operations.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// How many operations run at a time.
    #[arg(long, default_value_t = 6)]
    procs: usize,
    /// Seed of the random choices (default: from the clock; printed, so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Work in D (kept afterwards) instead of a temporary directory.
    #[arg(long, value_name = "D")]
    dir: Option<PathBuf>,
}

/// Shared targets of each kind.
const TARGETS: usize = 3;

/// The operations, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Once,
    Write,
    Copy,
    Seal,
    Verify,
}

/// What happened to the operations of one kind.
#[derive(Default)]
struct Tally {
    ok: usize,
    killed: usize,
    refused: usize,
    failed: usize,
}

struct Running {
    op: Op,
    child: Child,
    stderr: PathBuf,
    /// When to SIGKILL it, if it is one of the victims.
    kill_at: Option<Instant>,
}

/// A small xorshift generator: the soak needs repeatable choices, not statistical quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Deterministic content: `len` bytes from `seed`.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.procs > 0, "--procs must be at least 1");
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let (_temp, root) = match &args.dir {
        Some(dir) => {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", names::shown(dir)))?;
            (None, dir.clone())
        }
        None => {
            let temp = tempfile::Builder::new().prefix("soak-").tempdir()?;
            let root = temp.path().to_owned();
            (Some(temp), root)
        }
    };
    let exe = std::env::current_exe().context("cannot find the running xtask binary")?;
    say!(
        "soak: {} s, {} processes at a time, seed {seed}, in {}",
        args.seconds,
        args.procs,
        names::shown(&root)
    );
    let world = World::create(&root, &exe)?;

    let mut rng = Rng(seed | 1);
    let mut running: Vec<Running> = Vec::new();
    let mut tally: BTreeMap<Op, Tally> = BTreeMap::new();
    let mut violations: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut spawned = 0usize;
    while Instant::now() < deadline {
        while running.len() < args.procs {
            let mut r = world.spawn(&mut rng, spawned)?;
            // One operation in three is SIGKILLed at a random moment of its first 12 ms (on a
            // 2-core machine a typical one takes about 10 ms); a kill that comes after the end
            // finds a finished process and is not counted.
            if rng.below(3) == 0 {
                r.kill_at = Some(Instant::now() + Duration::from_micros(rng.below(12_000) as u64));
            }
            running.push(r);
            spawned += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
        for r in &mut running {
            if r.kill_at.is_some_and(|at| at <= Instant::now()) {
                r.kill_at = None;
                // The child leads its own process group: kill it and whatever it started.
                if let Some(pid) = rustix::process::Pid::from_raw(r.child.id() as i32) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
            }
        }
        if rng.below(25) == 0 {
            // Force new production rounds: a user deleting a cached artifact.
            let _ = fs::remove_file(world.artifact(rng.below(TARGETS)));
        }
        reap(&mut running, &mut tally, &mut violations, false)?;
    }
    reap(&mut running, &mut tally, &mut violations, true)?;

    world.check(&mut violations)?;

    let mut out = String::new();
    for (op, t) in &tally {
        out.push_str(&format!(
            "  {:<7} {:>5} ok {:>5} killed {:>5} refused {:>5} failed\n",
            format!("{op:?}").to_lowercase(),
            t.ok,
            t.killed,
            t.refused,
            t.failed
        ));
    }
    let total: usize = tally.values().map(|t| t.ok + t.killed + t.refused + t.failed).sum();
    let kills: usize = tally.values().map(|t| t.killed).sum();
    out!(
        "soak: {total} operations, {kills} kills, {} violations (seed {seed})\n{out}",
        violations.len()
    );
    for v in &violations {
        say!("soak: violation: {v}");
    }
    Ok(if violations.is_empty() { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

/// Collects finished children (all of them when `all`).
fn reap(
    running: &mut Vec<Running>,
    tally: &mut BTreeMap<Op, Tally>,
    violations: &mut Vec<String>,
    all: bool,
) -> anyhow::Result<()> {
    let mut i = 0;
    while i < running.len() {
        let status =
            if all { Some(running[i].child.wait()?) } else { running[i].child.try_wait()? };
        let Some(status) = status else {
            i += 1;
            continue;
        };
        let r = running.swap_remove(i);
        let t = tally.entry(r.op).or_default();
        let stderr = fs::read_to_string(&r.stderr).unwrap_or_default();
        let _ = fs::remove_file(&r.stderr);
        if status.success() {
            t.ok += 1;
        } else if status.signal() == Some(9) {
            t.killed += 1;
        } else if r.op == Op::Seal && status.code() == Some(i32::from(exit::FAILED)) {
            // A killed seal can leave its temp in the directory; the next seal refuses to list
            // it ("not a finished file") until a sweep. Refused, never wrong.
            t.refused += 1;
        } else {
            t.failed += 1;
            violations.push(format!("{:?} exited with {status}: {}", r.op, stderr.trim()));
        }
    }
    Ok(())
}

/// The shared targets and the sources of truth to judge them by.
struct World {
    root: PathBuf,
    exe: PathBuf,
    /// The `once` artifact's bytes (a file the producer copies) and its XXH128.
    artifact_src: PathBuf,
    artifact_hex: String,
    artifact: Vec<u8>,
    /// The versions `write` may write.
    versions: Vec<(PathBuf, Vec<u8>)>,
}

impl World {
    fn create(root: &Path, exe: &Path) -> anyhow::Result<World> {
        let inputs = root.join("inputs");
        fs::create_dir_all(&inputs)?;
        let artifact = content(7, 700_000);
        let artifact_src = inputs.join("artifact");
        fs::write(&artifact_src, &artifact)?;
        let mut versions = Vec::new();
        for v in 0..4u64 {
            let path = inputs.join(format!("version-{v}"));
            let bytes = content(100 + v, 50_000 * (v as usize + 1));
            fs::write(&path, &bytes)?;
            versions.push((path, bytes));
        }
        for k in 0..TARGETS {
            fs::write(root.join(format!("status-{k}.json")), &versions[0].1)?;
        }
        // The copy source, and two snapshots: one only ever verified, one sealed again and again.
        for (d, files) in [(0u64, 6usize), (1, 4), (2, 8), (3, 1)] {
            for f in 0..files {
                let bytes = content(d * 100 + f as u64, (f * 37_000) % 400_000 + 1);
                for tree in ["src", "snapshot", "sealed"] {
                    let dir = root.join(format!("{tree}/d{d}"));
                    fs::create_dir_all(&dir)?;
                    fs::write(dir.join(format!("f{f}.bin")), &bytes)?;
                }
            }
        }
        let snapshot = root.join("snapshot");
        snapshot_verify::seal(&snapshot, &snapshot_verify::SealSpec::default(), &())
            .with_context(|| format!("cannot seal {}", names::shown(&snapshot)))?;
        let artifact_hex = hash_bytes(Algo::Xxh128, &artifact).to_string();
        Ok(World {
            root: root.to_owned(),
            exe: exe.to_owned(),
            artifact_src,
            artifact_hex,
            artifact,
            versions,
        })
    }

    fn artifact(&self, k: usize) -> PathBuf {
        self.root.join(format!("artifact-{k}.bin"))
    }

    fn spawn(&self, rng: &mut Rng, n: usize) -> anyhow::Result<Running> {
        let k = rng.below(TARGETS);
        let mut cmd = Command::new(&self.exe);
        cmd.current_dir(&self.root).stdin(Stdio::null()).stdout(Stdio::null()).process_group(0);
        let op = match rng.below(10) {
            0..=2 => {
                cmd.args(["once", "--xxh128", &self.artifact_hex])
                    .arg(self.artifact(k))
                    .arg("--")
                    .arg("cp")
                    .arg(&self.artifact_src)
                    .arg("{}");
                Op::Once
            }
            3..=5 => {
                let (path, _) = &self.versions[rng.below(self.versions.len())];
                cmd.arg("write").arg(format!("status-{k}.json")).stdin(fs::File::open(path)?);
                Op::Write
            }
            6 | 7 => {
                cmd.args(["copy", "--jobs", "2", "src"]).arg(format!("dst-{k}"));
                Op::Copy
            }
            8 => {
                cmd.args(["seal", "sealed"]);
                Op::Seal
            }
            _ => {
                cmd.args(["verify", "--quick", "snapshot"]);
                Op::Verify
            }
        };
        let stderr = self.root.join(format!("stderr-{n}"));
        cmd.stderr(fs::File::create(&stderr)?);
        let child =
            cmd.spawn().with_context(|| format!("cannot run {}", names::shown(&self.exe)))?;
        Ok(Running { op, child, stderr, kill_at: None })
    }

    /// The checks after the storm; see the module docs.
    fn check(&self, violations: &mut Vec<String>) -> anyhow::Result<()> {
        // Judge what the kills left before anything cleans up.
        for k in 0..TARGETS {
            let path = self.artifact(k);
            match fs::read(&path) {
                Ok(bytes) if bytes == self.artifact => {}
                Ok(bytes) => violations.push(format!(
                    "{} has {} bytes: not the complete artifact",
                    names::shown(&path),
                    bytes.len()
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => violations.push(format!("{}: {e}", names::shown(&path))),
            }
            let status = self.root.join(format!("status-{k}.json"));
            match fs::read(&status) {
                Ok(bytes) if self.versions.iter().any(|(_, v)| *v == bytes) => {}
                Ok(bytes) => violations.push(format!(
                    "{} has {} bytes: not one of the versions written",
                    names::shown(&status),
                    bytes.len()
                )),
                Err(e) => violations.push(format!("{}: {e}", names::shown(&status))),
            }
            self.check_copy(&self.root.join(format!("dst-{k}")), violations);
        }
        let full = snapshot_verify::VerifyOptions::default();
        match snapshot_verify::verify(self.root.join("snapshot"), &full, &()) {
            Ok(report) if report.problems.is_empty() => {}
            Ok(report) => violations.push(format!("snapshot: {:?}", report.problems)),
            Err(e) => violations.push(format!("snapshot: {e}")),
        }

        // Then the sweep removes every orphan, and nothing is left.
        let report =
            atomic_io::sweep::sweep(&self.root, &atomic_io::sweep::SweepOptions::default())?;
        say!("soak: sweep removed {} temps left by killed processes", report.removed.len());
        if !report.busy.is_empty() || !report.errors.is_empty() {
            violations.push(format!(
                "sweep left busy {:?}, errors {:?}",
                report.busy,
                report.errors.iter().map(ToString::to_string).collect::<Vec<_>>()
            ));
        }
        let again =
            atomic_io::sweep::sweep(&self.root, &atomic_io::sweep::SweepOptions::default())?;
        if !again.removed.is_empty() {
            violations.push(format!("temps left after the sweep: {:?}", again.removed));
        }

        // A sealed directory is unsealed or verifies (once the killed seals' temps are swept).
        let sealed = self.root.join("sealed");
        if sealed.join(snapshot_verify::MANIFEST).exists() {
            match snapshot_verify::verify(&sealed, &full, &()) {
                Ok(report) if report.problems.is_empty() => {}
                Ok(report) => violations.push(format!("sealed: {:?}", report.problems)),
                Err(e) => violations.push(format!("sealed: {e}")),
            }
        }
        // A final copy completes each destination.
        for k in 0..TARGETS {
            let dst = format!("dst-{k}");
            let out = Command::new(&self.exe)
                .current_dir(&self.root)
                .args(["copy", "src", &dst])
                .output()?;
            if !out.status.success() {
                violations.push(format!(
                    "the final copy into {dst} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(())
    }

    /// Every file of a copy destination is absent or identical to its source.
    fn check_copy(&self, dst: &Path, violations: &mut Vec<String>) {
        let src = self.root.join("src");
        for entry in walkdir::WalkDir::new(dst).into_iter().flatten() {
            if !entry.file_type().is_file() || atomic_io::is_temp_name(entry.file_name()) {
                continue;
            }
            // The walk starts at `dst`, so every path it yields is below it.
            #[allow(clippy::expect_used)]
            let rel = entry.path().strip_prefix(dst).expect("walked below dst");
            match (fs::read(entry.path()), fs::read(src.join(rel))) {
                (Ok(a), Ok(b)) if a == b => {}
                (Ok(a), _) => violations.push(format!(
                    "{} has {} bytes: not its source's content",
                    names::shown(entry.path()),
                    a.len()
                )),
                (Err(e), _) => violations.push(format!("{}: {e}", names::shown(entry.path()))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checks_catch_a_partial_artifact_a_torn_status_and_a_bad_copy() {
        let dir = tempfile::tempdir().unwrap();
        let world = World::create(dir.path(), Path::new("/bin/true")).unwrap();
        let mut violations = Vec::new();
        // /bin/true as the final copy "succeeds"; everything else is intact: no violation.
        world.check(&mut violations).unwrap();
        assert_eq!(violations, Vec::<String>::new());

        fs::write(world.artifact(1), &world.artifact[..1000]).unwrap();
        fs::write(dir.path().join("status-2.json"), b"{\"half\": ").unwrap();
        fs::create_dir_all(dir.path().join("dst-0/d1")).unwrap();
        fs::write(dir.path().join("dst-0/d1/f2.bin"), b"").unwrap();
        world.check(&mut violations).unwrap();
        assert_eq!(violations.len(), 3, "{violations:?}");
        for expected in [
            "artifact-1.bin has 1000 bytes",
            "dst-0/d1/f2.bin has 0 bytes",
            "status-2.json has 9 bytes",
        ] {
            assert!(violations.iter().any(|v| v.contains(expected)), "{expected}: {violations:?}");
        }
    }
}

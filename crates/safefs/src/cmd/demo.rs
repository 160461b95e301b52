//! `cargo xtask demo [--dir D] [--keep]`: the main job on a built-in example, end to end.
//!
//! In a fresh temporary directory (or D), each step runs the toolkit's libraries or verbs the way a
//! user would, checks what came out, and ends up as one row of a summary table:
//!
//! 1. `generate`: a deterministic ROM-like collection (40 folders, files of 16 KiB to 4 MiB,
//!    about 240 MiB) in `source/`;
//! 2. `copy`: `source/` into `copy/` with `folder_copier` and the `copy` verb's progress bar (each
//!    file verified, full durability);
//! 3. `seal`: `copy/manifest.xxh128` with `snapshot_verify`;
//! 4. `verify`: the copy against its manifest, which must find nothing;
//! 5. `corrupt`: one bit flipped in one file (size and mtime restored), another truncated, a third
//!    deleted, each in a different folder; verify must name exactly those three with the right
//!    kind (`hash_differs`, `size_differs`, `missing`);
//! 6. `race`: 8 `once` processes ask for one artifact whose producer is slow; exactly one
//!    production, all 8 exit 0, the artifact has the expected bytes;
//! 7. `kill`: a `write` process is SIGKILLed half-way through replacing a file; the file must still
//!    hold its old bytes exactly, the orphaned temp must be there, and `sweep` must remove it and
//!    nothing else.
//!
//! Details go to stdout as each step ends, then the table (`step | figures | PASS/FAIL`); progress
//! bars to stderr when it is a terminal.
//!
//! The temporary directory is removed at the end unless `--keep` is given. A directory given with
//! `--dir` is always kept; it must be new, empty, or one an earlier demo used (the demo replaces
//! only its own `source/`, `copy/`, `race/` and `writer/` in it).
//!
//! Exit codes: 0 every step passed; 1 some step failed (the table says which and why); 2 the demo
//! could not start (D unusable, or not empty and not an earlier demo's).

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use indicatif::HumanBytes;
use toolkit::atomic_io::sweep::{SweepOptions, sweep};
use toolkit::checksum::Algo;
use toolkit::folder_copier::CopyOptions;
use toolkit::snapshot_verify::{SealSpec, VerifyOptions};
use toolkit::{atomic_io, checksum, folder_copier, names, snapshot_verify};

use super::copy::Progress;
use super::verify::Bar;
use crate::exit;
use crate::trees::{TreeSpec, generate};

/// Flags of `cargo xtask demo`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Work in D (kept afterwards) instead of a fresh temporary directory. D must be new, empty,
    /// or used by an earlier demo.
    #[arg(long, value_name = "D")]
    dir: Option<std::path::PathBuf>,
    /// Keep the temporary working directory afterwards (its path is printed).
    #[arg(long)]
    keep: bool,
    /// Approximate size of the generated collection in MiB (tests use a small one).
    #[arg(long, hide = true, default_value_t = DEFAULT_MIB,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    size_mib: u64,
}

const AFTER_HELP: &str = "\
Exit codes:
  0  every step passed
  1  some step failed (the table says which and why)
  2  the demo could not start (D unusable, or not empty and not an earlier demo's)

Examples:
  safefs demo
  safefs demo --dir /tmp/demo --keep         # keep the trees for the README tour";

/// The collection's default size: "a few hundred MiB", yet about a minute at most on 2 cores.
const DEFAULT_MIB: u64 = 240;
/// Written in a `--dir` the demo has used, so a later run may replace its subdirectories.
const MARKER: &str = ".xtask-demo";
/// The subdirectories the demo owns (and replaces) in its working directory.
const SUBDIRS: [&str; 4] = ["source", "copy", "race", "writer"];
/// Processes racing to produce one artifact.
const RACERS: usize = 8;

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut tempdir = None;
    let root = match &args.dir {
        Some(dir) => {
            prepare_dir(dir)?;
            dir.clone()
        }
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("xtask-demo-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            let path = tmp.path().to_owned();
            fs::write(path.join(MARKER), b"").context("cannot write in the temporary directory")?;
            tempdir = Some(tmp);
            path
        }
    };
    let kept = args.dir.is_some() || args.keep;
    out!(
        "demo: working in {} ({})",
        names::shown(&root),
        if kept { "kept afterwards" } else { "removed at the end; --keep keeps it" }
    );
    let exe = std::env::current_exe().context("cannot find the running binary")?;
    let demo = Demo { root, exe, spec: rom_spec(args.size_mib) };

    let mut steps = Vec::new();
    let mut step = |name: &'static str, result: anyhow::Result<Outcome>| -> anyhow::Result<()> {
        let outcome = result.unwrap_or_else(|err| Outcome::fail(format!("error: {err:#}")));
        out!("{name}: {} {}", if outcome.pass { "PASS" } else { "FAIL" }, outcome.figures);
        for line in &outcome.details {
            out!("  {line}");
        }
        steps.push((name, outcome));
        Ok(())
    };
    step("generate", demo.generate())?;
    step("copy", demo.copy())?;
    step("seal", demo.seal())?;
    step("verify", demo.verify())?;
    step("corrupt", demo.corrupt())?;
    step("race", demo.race())?;
    step("kill", demo.kill())?;

    let passed = steps.iter().filter(|(_, o)| o.pass).count();
    print_table(&steps)?;
    out!(
        "demo: {}, {passed} of {} steps passed in {:.1} s",
        if passed == steps.len() { "PASS" } else { "FAIL" },
        steps.len(),
        started.elapsed().as_secs_f64()
    );
    match tempdir {
        Some(tmp) if args.keep => out!("demo: kept {}", names::shown(&tmp.keep())),
        Some(tmp) => tmp.close().context("cannot remove the temporary directory")?,
        None => out!("demo: kept {}", names::shown(&demo.root)),
    }
    Ok(if passed == steps.len() { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

/// Makes `dir` usable: created if missing; if it exists it must be empty or an earlier demo's
/// (the marker), and the demo's own subdirectories in it are removed.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", names::shown(&dir)))?;
    let mut entries =
        fs::read_dir(dir).with_context(|| format!("cannot read {}", names::shown(&dir)))?;
    if entries.next().is_some() && !dir.join(MARKER).is_file() {
        bail!(
            "{} is not empty and no earlier demo used it ({MARKER} missing); nothing was done",
            names::shown(dir)
        );
    }
    for sub in SUBDIRS {
        let path = dir.join(sub);
        if fs::symlink_metadata(&path).is_ok() {
            fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", names::shown(&path)))?;
        }
    }
    fs::write(dir.join(MARKER), b"")
        .with_context(|| format!("cannot write in {}", names::shown(&dir)))?;
    Ok(())
}

/// The ROM-like collection: 40 folders of files from 16 KiB to 4 MiB (log-uniform), about
/// `size_mib` MiB in all. Below 40 files' worth the largest size shrinks instead.
fn rom_spec(size_mib: u64) -> TreeSpec {
    let target = size_mib << 20;
    let base = TreeSpec {
        name: "roms",
        dirs: 40,
        files_per_dir: 1,
        min_size: 16 << 10,
        max_size: 4 << 20,
        seed: 7,
    };
    let one_each = base.bytes();
    if target < one_each {
        let max_size = (base.max_size as f64 * target as f64 / one_each as f64) as u64;
        return TreeSpec { max_size: max_size.max(base.min_size * 2), ..base };
    }
    // Sizes are drawn afresh for each count, so look around the estimate for the closest total.
    let estimate = (target as f64 / one_each as f64).round().max(1.0) as usize;
    (estimate.saturating_sub(2).max(1)..=estimate + 2)
        .map(|files_per_dir| TreeSpec { files_per_dir, ..base.clone() })
        .min_by_key(|spec| spec.bytes().abs_diff(target))
        .unwrap_or(base)
}

/// How one step went: the summary row, and lines printed under it as it ends.
struct Outcome {
    pass: bool,
    figures: String,
    details: Vec<String>,
}

impl Outcome {
    fn new(pass: bool, figures: String) -> Outcome {
        Outcome { pass, figures, details: Vec::new() }
    }

    fn fail(figures: String) -> Outcome {
        Outcome::new(false, figures)
    }
}

struct Demo {
    root: PathBuf,
    /// The running binary, for the steps that run verbs as separate processes.
    exe: PathBuf,
    spec: TreeSpec,
}

impl Demo {
    fn source(&self) -> PathBuf {
        self.root.join("source")
    }

    fn copy_dir(&self) -> PathBuf {
        self.root.join("copy")
    }

    fn files(&self) -> (u64, u64) {
        let files = self.spec.files();
        (files.len() as u64, files.iter().map(|(_, len)| len).sum())
    }

    fn generate(&self) -> anyhow::Result<Outcome> {
        let (files, bytes) = self.files();
        say!(
            "demo: generating {files} files ({}) in {}",
            HumanBytes(bytes),
            names::shown(&self.source())
        );
        let t = Instant::now();
        generate(&self.source(), &self.spec)?;
        let secs = t.elapsed().as_secs_f64();
        let on_disk: u64 = self
            .spec
            .files()
            .iter()
            .map(|(rel, _)| fs::metadata(self.source().join(rel)).map(|m| m.len()))
            .sum::<Result<_, _>>()?;
        Ok(Outcome::new(
            on_disk == bytes,
            format!(
                "{files} files in {} folders, {}, {secs:.2} s, {}",
                self.spec.dirs,
                HumanBytes(on_disk),
                rate(bytes, secs)
            ),
        ))
    }

    fn copy(&self) -> anyhow::Result<Outcome> {
        let (files, bytes) = self.files();
        let opts = CopyOptions::default();
        let t = Instant::now();
        let plan = folder_copier::plan(self.source(), self.copy_dir(), &opts)?;
        let progress = Progress::new(plan.totals(), true);
        let result = folder_copier::execute(plan, &opts, &progress);
        progress.finish();
        let report = result?;
        let secs = t.elapsed().as_secs_f64();
        let mut outcome = Outcome::new(
            report.is_success()
                && report.verified
                && report.copied == files
                && report.copied_bytes == bytes,
            format!(
                "{} files, {}, {secs:.2} s, {}, all verified, {} failed, {} retries",
                report.copied,
                HumanBytes(report.copied_bytes),
                rate(report.copied_bytes, secs),
                report.failed.len(),
                report.retries
            ),
        );
        outcome.details.extend(report.failed.iter().map(|f| format!("failed {f}")));
        Ok(outcome)
    }

    fn seal(&self) -> anyhow::Result<Outcome> {
        let (files, bytes) = self.files();
        let bar = Bar::new();
        let t = Instant::now();
        let result = snapshot_verify::seal(self.copy_dir(), &SealSpec::default(), &bar);
        bar.finish();
        let sealed = result?;
        let secs = t.elapsed().as_secs_f64();
        Ok(Outcome::new(
            sealed.files == files && sealed.bytes == bytes && sealed.report.is_ok(),
            format!(
                "{} files, {}, {secs:.2} s, {} re-verified before its rename",
                sealed.files,
                HumanBytes(sealed.bytes),
                names::shown(sealed.manifest.file_name().unwrap_or("manifest".as_ref())),
            ),
        ))
    }

    fn verify(&self) -> anyhow::Result<Outcome> {
        let (files, bytes) = self.files();
        // The manifest lists the sizes file too.
        let sizes = self.copy_dir().join(snapshot_verify::SIZES);
        let sizes = fs::metadata(&sizes)
            .with_context(|| format!("cannot stat {}", names::shown(&sizes)))?
            .len();
        let bar = Bar::new();
        let t = Instant::now();
        let result = snapshot_verify::verify(self.copy_dir(), &VerifyOptions::default(), &bar);
        bar.finish();
        let report = result?;
        let secs = t.elapsed().as_secs_f64();
        let mut outcome = Outcome::new(
            report.is_ok() && report.files == files + 1 && report.bytes == bytes + sizes,
            format!(
                "{} files + {}, {} hashed, {secs:.2} s, {}, {} problems",
                report.files.saturating_sub(1),
                snapshot_verify::SIZES,
                HumanBytes(report.bytes),
                rate(report.bytes, secs),
                report.problems.len()
            ),
        );
        outcome.details.extend(report.problems.iter().map(ToString::to_string));
        Ok(outcome)
    }

    /// Corrupts the first file of three folders far apart, three ways, and checks that verify
    /// names exactly those, each with its kind.
    fn corrupt(&self) -> anyhow::Result<Outcome> {
        let dirs = self.spec.dirs;
        ensure!(dirs >= 3, "the collection has fewer than 3 folders");
        let pick = |d: usize| PathBuf::from(format!("dir{d:03}/file0000.bin"));
        let (flipped, truncated, deleted) = (pick(dirs / 6), pick(dirs / 2), pick(dirs * 5 / 6));
        let copy = self.copy_dir();

        flip_one_bit(&copy.join(&flipped))?;
        let path = copy.join(&truncated);
        let len =
            fs::metadata(&path).with_context(|| format!("cannot stat {}", names::shown(&path)))?;
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(len.len() / 2))
            .with_context(|| format!("cannot truncate {}", names::shown(&path)))?;
        let path = copy.join(&deleted);
        fs::remove_file(&path).with_context(|| format!("cannot delete {}", names::shown(&path)))?;

        let t = Instant::now();
        let report = snapshot_verify::verify(self.copy_dir(), &VerifyOptions::default(), &())?;
        let secs = t.elapsed().as_secs_f64();
        let found: Vec<(&Path, &str)> =
            report.problems.iter().map(|p| (p.path.as_path(), p.kind.name())).collect();
        let mut expected = vec![
            (flipped.as_path(), "hash_differs"),
            (truncated.as_path(), "size_differs"),
            (deleted.as_path(), "missing"),
        ];
        expected.sort();
        let pass = found == expected;
        let named: Vec<String> =
            found.iter().map(|(path, kind)| format!("{kind} {}", names::shown(&path))).collect();
        let mut outcome = Outcome::new(
            pass,
            format!(
                "verify named {} of 3{}: {} ({secs:.2} s)",
                found.iter().filter(|f| expected.contains(f)).count(),
                if found.len() > 3 { format!(" and {} more", found.len() - 3) } else { "".into() },
                named.join(", ")
            ),
        );
        outcome.details = vec![
            format!("flipped one bit in {} (size and mtime restored)", names::shown(&flipped)),
            format!("truncated {} to half its size", names::shown(&truncated)),
            format!("deleted {}", names::shown(&deleted)),
            "verify says:".to_owned(),
        ];
        outcome.details.extend(report.problems.iter().map(|p| format!("  {p}")));
        Ok(outcome)
    }

    /// 8 `once` processes, one slow producer: it must run exactly once.
    fn race(&self) -> anyhow::Result<Outcome> {
        let dir = self.root.join("race");
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", names::shown(&dir)))?;
        let target = dir.join("artifact.bin");
        let counter = dir.join("productions.log");
        let content: String = (0..1000)
            .map(|i| format!("line {i} of the artifact all {RACERS} wait for\n"))
            .collect();
        let hash = checksum::hash_bytes(Algo::Xxh128, content.as_bytes()).to_hex();
        // The producer logs itself, then takes its time so the others arrive while it works.
        let script = r#"echo "$$" >> "$2" && sleep 0.5 && printf '%s' "$3" > "$1""#;
        let t = Instant::now();
        let mut children = Vec::new();
        for _ in 0..RACERS {
            let child = Command::new(&self.exe)
                .args(["once", "--timeout", "60", "--xxh128", &hash])
                .arg(&target)
                .args(["--", "sh", "-c", script, "producer", "{}"])
                .arg(&counter)
                .arg(&content)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("cannot start `xtask once`")?;
            children.push(child);
        }
        let mut ok = 0;
        let (mut produced, mut waited, mut reused) = (0, 0, 0);
        let mut details = Vec::new();
        for child in children {
            let out = child.wait_with_output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                ok += 1;
            } else {
                details.push(format!("once exited with {}: {}", out.status, stderr.trim()));
            }
            if stderr.contains("once: produced") {
                produced += 1;
            } else if stderr.contains("once: waited for the producer") {
                waited += 1;
            } else if stderr.contains("once: reused") {
                reused += 1;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        let productions = fs::read_to_string(&counter).unwrap_or_default().lines().count();
        let bytes_ok = fs::read(&target).is_ok_and(|b| b == content.as_bytes());
        let pass = ok == RACERS && productions == 1 && produced == 1 && bytes_ok;
        let mut outcome = Outcome::new(
            pass,
            format!(
                "{RACERS} processes, {productions} production, {ok} exit 0 ({waited} waited, \
                 {reused} reused at once), artifact {}, {secs:.2} s",
                if bytes_ok { "bytes as expected" } else { "bytes WRONG" },
            ),
        );
        outcome.details = details;
        Ok(outcome)
    }

    /// A `write` SIGKILLed half-way: the old file intact, its orphaned temp swept.
    fn kill(&self) -> anyhow::Result<Outcome> {
        let dir = self.root.join("writer");
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", names::shown(&dir)))?;
        let target = dir.join("state.json");
        let old = b"{\"version\": 1, \"note\": \"the old state, which must survive\"}\n";
        fs::write(&target, old)
            .with_context(|| format!("cannot write {}", names::shown(&target)))?;
        let mut new = b"{\"version\": 2, \"blob\": \"".to_vec();
        new.resize(1 << 20, b'x');
        new.extend_from_slice(b"\"}\n");
        let half = new.len() / 2;

        let mut child = Command::new(&self.exe)
            .arg("write")
            .arg(&target)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start `xtask write`")?;
        let killed = feed_half_and_kill(&mut child, &dir, &new[..half]);
        // Whatever happened, the writer does not outlive this step.
        let _ = child.kill();
        let status = child.wait()?;
        let temp = killed?;
        ensure!(status.signal() == Some(9), "the writer was not killed by SIGKILL: {status}");

        let intact = fs::read(&target)? == old;
        let orphan = temp.exists();
        let report = sweep(&dir, &SweepOptions::default())?;
        let swept_exactly = report.removed == [temp.clone()]
            && report.busy.is_empty()
            && report.errors.is_empty()
            && !temp.exists();
        let mut left: Vec<String> = fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        left.sort();
        let pass = intact && orphan && swept_exactly && left == ["state.json"];
        let name = temp.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut outcome = Outcome::new(
            pass,
            format!(
                "SIGKILL at {} of {}: old file {}, orphan temp {}, sweep removed {}",
                HumanBytes(half as u64),
                HumanBytes(new.len() as u64),
                if intact { "intact" } else { "CHANGED" },
                if orphan { "left" } else { "NOT FOUND" },
                if swept_exactly { "it alone".to_owned() } else { format!("{:?}", report.removed) },
            ),
        );
        outcome.details = vec![format!("orphan: {name}")];
        outcome.details.extend(report.busy.iter().map(|p| format!("busy {}", names::shown(&p))));
        outcome.details.extend(report.errors.iter().map(ToString::to_string));
        if left != ["state.json"] {
            outcome.details.push(format!("left in writer/: {left:?}"));
        }
        Ok(outcome)
    }
}

/// Writes `first` to the writer's stdin, waits (bounded) until its temp file holds it, then kills
/// it with SIGKILL. Returns the temp's path.
fn feed_half_and_kill(child: &mut Child, dir: &Path, first: &[u8]) -> anyhow::Result<PathBuf> {
    let mut stdin = child.stdin.take().context("no stdin")?;
    stdin.write_all(first).context("cannot feed the writer")?;
    stdin.flush()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let temp = loop {
        let temp = fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            p.file_name().is_some_and(atomic_io::is_temp_name)
                && fs::metadata(p).is_ok_and(|m| m.len() == first.len() as u64)
        });
        if let Some(temp) = temp {
            break temp;
        }
        if let Some(status) = child.try_wait()? {
            bail!("the writer exited before it was killed: {status}");
        }
        ensure!(Instant::now() < deadline, "the writer never wrote half the data to its temp");
        std::thread::sleep(Duration::from_millis(10)); // polling a condition, bounded above
    };
    child.kill().context("cannot kill the writer")?;
    drop(stdin);
    Ok(temp)
}

/// Flips one bit in the middle of `path`, then puts its mtime back: a silent corruption that
/// size-and-mtime checks cannot see.
fn flip_one_bit(path: &Path) -> anyhow::Result<()> {
    let io = || format!("cannot corrupt {}", names::shown(&path));
    let meta = fs::metadata(path).with_context(io)?;
    let mtime = meta.modified().with_context(io)?;
    let mut file = fs::OpenOptions::new().read(true).write(true).open(path).with_context(io)?;
    let middle = meta.len() / 2;
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(middle)).with_context(io)?;
    file.read_exact(&mut byte).with_context(io)?;
    byte[0] ^= 0x10;
    file.seek(SeekFrom::Start(middle)).with_context(io)?;
    file.write_all(&byte).with_context(io)?;
    file.set_modified(mtime).with_context(io)?;
    let after = fs::metadata(path).with_context(io)?;
    ensure!(
        after.len() == meta.len() && after.modified().ok() == Some(mtime),
        "{}: size or mtime not restored after flipping a bit",
        names::shown(&path)
    );
    Ok(())
}

fn rate(bytes: u64, secs: f64) -> String {
    if secs > 0.0 {
        format!("{}/s", HumanBytes((bytes as f64 / secs) as u64))
    } else {
        "-".to_owned()
    }
}

/// `step | figures | PASS/FAIL`, columns aligned.
fn print_table(steps: &[(&str, Outcome)]) -> anyhow::Result<()> {
    let step_w = steps.iter().map(|(n, _)| n.len()).max().unwrap_or(4).max(4);
    let fig_w = steps.iter().map(|(_, o)| o.figures.chars().count()).max().unwrap_or(7).max(7);
    out!("");
    out!("{:<step_w$} | {:<fig_w$} | result", "step", "figures");
    out!("{:-<step_w$}-+-{:-<fig_w$}-+-------", "", "");
    for (name, outcome) in steps {
        out!(
            "{name:<step_w$} | {:<fig_w$} | {}",
            outcome.figures,
            if outcome.pass { "PASS" } else { "FAIL" }
        );
    }
    Ok(())
}

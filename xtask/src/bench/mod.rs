//! `cargo xtask bench [--only GROUP] [--cold] [--huge] [--quick] [--json]`: whole-process
//! benchmarks side by side with the peer tools people use today, printing medians, MiB/s, ratios
//! and peak memory.
//!
//! How it measures: the trees are generated deterministically (`trees.rs`) under `--data-dir`
//! (default `target/bench-data`) and reused while their spec is unchanged. Every contender runs
//! once to warm up (so the page cache holds the tree: these are warm-cache figures, the data fits
//! in RAM), then `--runs` rounds alternating A B C A B C, so a change in the machine's load hits
//! every contender alike; the table shows the median, MiB/s of the median, the ratio to ours and
//! the min..max spread. With `--cold` there is no warm-up and the caches are dropped (`sync`,
//! then `3` into `/proc/sys/vm/drop_caches`; root only, skipped loudly otherwise) before every
//! run of every contender, peers alike: the figures a user reading from the disk sees. Peak
//! resident memory comes from one extra, untimed run of each whole-process contender under GNU
//! time (`%M`). `--huge` swaps the trees for 100,000 tiny files and a ROM-like tree ten times
//! the usual one (3.5 GiB): how time and memory grow with the tree. A peer tool that is missing
//! is named and skipped; a contender that fails is reported and the others go on. `--quick`
//! shrinks the trees ~20x and runs fewer rounds: a smoke test of the harness, not a measurement.
//!
//! Adding a group: a file `bench/<group>.rs` with `pub(crate) fn run(&Ctx) -> anyhow::Result<()>`
//! that builds `Contender`s, calls `measure` and prints with `print_table`/`print_goal`; then a line
//! in `GROUPS` below.

/// With `--json`, stdout carries the JSON document only; the human tables go to stderr instead.
static JSON_ON_STDOUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `println!` for the human tables: to stdout, or to stderr when `--json` owns stdout. A table
/// that cannot be written is not worth failing a benchmark over.
macro_rules! table {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if $crate::bench::JSON_ON_STDOUT.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = writeln!(std::io::stderr(), $($arg)*);
        } else {
            let _ = writeln!(std::io::stdout(), $($arg)*);
        }
    }};
}

mod card;
mod cephfs;
mod copy;
mod hash;
mod lock;
mod measure;
mod s3;
mod seal;
mod verify;
mod write;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

pub(crate) use measure::{
    Cache, Contender, Settings, Stats, measure, median_of, print_goal, print_read_goals,
    print_table,
};
pub(crate) use safefs::trees::{TreeSpec, ensure_tree};

/// Flags of `cargo xtask bench`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Run only the named group (hash, write, verify, copy, card, seal, lock, cephfs, s3).
    #[arg(long)]
    only: Option<String>,
    /// Smaller trees and fewer runs: a smoke test of the harness, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Rounds per contender after the warm-up (default 5, or 2 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Where the generated trees live (default: target/bench-data); any name, UTF-8 or not.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print every measurement as JSON on stdout after the tables.
    #[arg(long)]
    json: bool,
    /// Drop the page cache before every run (root only): reads come from the device.
    #[arg(long)]
    cold: bool,
    /// The large trees instead: 100,000 tiny files, and ten times the ROM-like tree (3.5 GiB,
    /// generated once, in about a minute).
    #[arg(long)]
    huge: bool,
}

/// What every group gets.
pub(crate) struct Ctx {
    pub(crate) data_dir: PathBuf,
    pub(crate) quick: bool,
    /// The large trees (`--huge`).
    pub(crate) huge: bool,
    /// Rounds, cache state and the memory probe.
    pub(crate) settings: Settings,
    /// The running binary: "ours" as a whole process, as a user runs it.
    pub(crate) exe: PathBuf,
    pub(crate) jobs: usize,
    /// Every table measured, for `--json`.
    pub(crate) results: std::cell::RefCell<Vec<(String, Vec<Stats>)>>,
    /// The one-host Ceph cluster the `cephfs` and `s3` groups measure on when the user names no
    /// target of their own: started by the first group that needs it, stopped when the run ends.
    cluster: std::cell::OnceCell<Option<e2e::ceph::Cluster>>,
}

impl Ctx {
    /// The path of a peer tool, or `None` (said on stderr) when it is not installed.
    pub(crate) fn tool(&self, name: &str) -> Option<PathBuf> {
        let found = which(name);
        if found.is_none() {
            say!("bench: `{name}` is not installed; its contenders are skipped");
        }
        found
    }

    /// Measures, prints and records one table.
    pub(crate) fn table(
        &self,
        title: &str,
        bytes: Option<u64>,
        contenders: &mut [Contender<'_>],
    ) -> Vec<Stats> {
        let stats = measure(contenders, &self.settings);
        print_table(title, bytes, &stats, 0);
        self.results.borrow_mut().push((title.to_owned(), stats.clone()));
        stats
    }

    /// A one-host Ceph cluster (CephFS mounted twice, RGW serving S3) started the way the test
    /// suite starts it, the same one for every group of this run; `None` when this machine
    /// cannot run one (Ceph, curl, root or `/dev/fuse` missing: said loudly on stderr).
    pub(crate) fn cluster(&self) -> Option<&e2e::ceph::Cluster> {
        self.cluster.get_or_init(e2e::ceph::Cluster::start).as_ref()
    }

    /// The trees every group measures: the standard ones, or with `--huge` the large ones.
    pub(crate) fn trees(&self) -> Vec<TreeSpec> {
        if self.huge { TreeSpec::huge(self.quick) } else { TreeSpec::standard(self.quick) }
    }
}

/// The path of `name` on `PATH`, if it is there.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
}

/// File names one peer process is given as arguments at most: 50,000 names of ~20 bytes stay
/// well under the kernel's ~2 MiB limit on arguments.
pub(crate) const MAX_ARGS: usize = 50_000;

/// A command contender made of `n` processes of `tool` (arguments `args`, then an equal share of
/// `files`), run at once in `root`: how a user runs a single-threaded peer on every core, or
/// more processes than cores to keep a disk busy.
pub(crate) fn split<'a>(
    name: &str,
    tool: &'a Path,
    args: &'a [&'a str],
    files: &[String],
    n: usize,
    root: &'a Path,
) -> Contender<'a> {
    let parts = chunks(files, n.max(files.len().div_ceil(MAX_ARGS)));
    Contender::parallel(format!("{name} ({} processes)", parts.len()), move || {
        parts
            .iter()
            .map(|part| {
                let mut cmd = std::process::Command::new(tool);
                cmd.args(args).args(part).current_dir(root);
                cmd
            })
            .collect()
    })
}

/// A group: its name, whether it reads trees (and so means something on a cold cache), and
/// its entry point.
type Group = (&'static str, Cache, fn(&Ctx) -> anyhow::Result<()>);

/// Every group, in the order a full run takes them. `write` and `lock` measure in-process costs
/// that no page cache changes: they run warm only.
const GROUPS: [Group; 9] = [
    ("hash", Cache::Cold, hash::run),
    ("write", Cache::Warm, write::run),
    ("verify", Cache::Cold, verify::run),
    ("copy", Cache::Cold, copy::run),
    ("card", Cache::Cold, card::run),
    ("seal", Cache::Cold, seal::run),
    ("lock", Cache::Warm, lock::run),
    ("cephfs", Cache::Cold, cephfs::run),
    ("s3", Cache::Cold, s3::run),
];

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(only) = &args.only {
        anyhow::ensure!(
            GROUPS.iter().any(|(name, ..)| name == only),
            "unknown benchmark group `{only}`; groups: {}",
            GROUPS.map(|(name, ..)| name).join(", ")
        );
    }
    let cache = if args.cold { Cache::Cold } else { Cache::Warm };
    if cache == Cache::Cold
        && let Err(err) = measure::drop_caches()
    {
        say!("bench: SKIPPED: --cold {err:#}; run it as root. Nothing was measured.");
        return Ok(ExitCode::SUCCESS);
    }
    let time = ["/usr/bin/time", "/bin/time"].map(PathBuf::from).into_iter().find(|p| p.is_file());
    if time.is_none() {
        say!("bench: GNU time (package `time`) is not installed; peak memory is not measured");
    }
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => workspace_root().join("target/bench-data"),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", toolkit::names::shown(&data_dir)))?;
    let ctx = Ctx {
        data_dir,
        quick: args.quick,
        huge: args.huge,
        settings: Settings {
            runs: args.runs.unwrap_or(if args.quick { 2 } else { 5 }).max(1),
            cache,
            time,
        },
        exe: std::env::current_exe().context("cannot find the running xtask binary")?,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        results: Default::default(),
        cluster: Default::default(),
    };
    JSON_ON_STDOUT.store(args.json, std::sync::atomic::Ordering::Relaxed);
    table!(
        "bench: {} cores, load average {}, median of {} alternating runs, {}{}",
        ctx.jobs,
        load_average(),
        ctx.settings.runs,
        match cache {
            Cache::Warm => "after a warm-up, warm page cache",
            Cache::Cold => "COLD: caches dropped before every run, no warm-up",
        },
        if ctx.quick { "; --quick: a smoke test of the harness, NOT a measurement" } else { "" }
    );
    for (name, sensitive, group) in GROUPS {
        if args.only.as_deref().is_some_and(|only| only != name) {
            continue;
        }
        if cache == Cache::Cold && sensitive == Cache::Warm {
            say!("bench: group `{name}` reads no trees; it runs only without --cold");
            continue;
        }
        group(&ctx).with_context(|| format!("benchmark group `{name}`"))?;
    }
    table!("\nbench: load average at the end {}", load_average());
    if args.json {
        let results: Vec<_> = ctx
            .results
            .borrow()
            .iter()
            .map(|(title, stats)| serde_json::json!({ "table": title, "contenders": stats }))
            .collect();
        out!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// The 1, 5 and 15-minute load averages, as `/proc/loadavg` gives them: other work on the
/// machine while measuring.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `items` split into `n` nearly equal consecutive chunks (fewer if there are fewer items).
pub(crate) fn chunks<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let n = n.clamp(1, items.len().max(1));
    let size = items.len().div_ceil(n);
    items.chunks(size.max(1)).map(<[T]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_item_once_in_order() {
        let items: Vec<u32> = (0..10).collect();
        let parts = chunks(&items, 3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), items);
        assert_eq!(chunks(&items[..2], 8).len(), 2);
        assert_eq!(chunks::<u32>(&[], 4), Vec::<Vec<u32>>::new());
    }
}

//! `cargo xtask bench [--only GROUP] [--quick] [--json]`: whole-process benchmarks side by side
//! with the peer tools people use today, printing medians, MiB/s and ratios.
//!
//! How it measures: the trees are generated deterministically (`trees.rs`) under `--data-dir`
//! (default `target/bench-data`) and reused while their spec is unchanged. Every contender runs
//! once to warm up (so the page cache holds the tree: these are warm-cache figures, the data fits
//! in RAM), then `--runs` rounds alternating A B C A B C, so a change in the machine's load hits
//! every contender alike; the table shows the median, MiB/s of the median, the ratio to ours and
//! the min..max spread. A peer tool that is missing is named and skipped; a contender that fails
//! is reported and the others go on. `--quick` shrinks the trees ~20x and runs fewer rounds: a
//! smoke test of the harness, not a measurement.
//!
//! Adding a group: a file `bench/<group>.rs` with `pub(crate) fn run(&Ctx) -> anyhow::Result<()>`
//! that builds `Contender`s, calls `measure` and prints with `print_table`/`print_goal`; then a line
//! in `GROUPS` below.

mod copy;
mod hash;
mod lock;
mod measure;
mod trees;
mod verify;
mod write;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use camino::Utf8PathBuf;

pub(crate) use measure::{Contender, Stats, measure, median_of, print_goal, print_table};
pub(crate) use trees::{TreeSpec, ensure_tree, generate};

/// Flags of `cargo xtask bench`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Run only the named group (hash, write, verify, copy, lock).
    #[arg(long)]
    only: Option<String>,
    /// Smaller trees and fewer runs: a smoke test of the harness, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Rounds per contender after the warm-up (default 5, or 2 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Where the generated trees live.
    #[arg(long)]
    data_dir: Option<Utf8PathBuf>,
    /// Print every measurement as JSON on stdout after the tables.
    #[arg(long)]
    json: bool,
}

/// What every group gets.
pub(crate) struct Ctx {
    pub(crate) data_dir: PathBuf,
    pub(crate) quick: bool,
    pub(crate) runs: usize,
    /// The running binary: "ours" as a whole process, as a user runs it.
    pub(crate) exe: PathBuf,
    pub(crate) jobs: usize,
    /// Every table measured, for `--json`.
    pub(crate) results: std::cell::RefCell<Vec<(String, Vec<Stats>)>>,
}

impl Ctx {
    /// The path of a peer tool, or `None` (said on stderr) when it is not installed.
    pub(crate) fn tool(&self, name: &str) -> Option<PathBuf> {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file())
        });
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
        let stats = measure(contenders, self.runs);
        print_table(title, bytes, &stats, 0);
        self.results.borrow_mut().push((title.to_owned(), stats.clone()));
        stats
    }
}

type Group = (&'static str, fn(&Ctx) -> anyhow::Result<()>);

/// Every group, in the order a full run takes them.
const GROUPS: [Group; 5] = [
    ("hash", hash::run),
    ("write", write::run),
    ("verify", verify::run),
    ("copy", copy::run),
    ("lock", lock::run),
];

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(only) = &args.only {
        anyhow::ensure!(
            GROUPS.iter().any(|(name, _)| name == only),
            "unknown benchmark group `{only}`; groups: {}",
            GROUPS.map(|(name, _)| name).join(", ")
        );
    }
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone().into_std_path_buf(),
        None => workspace_root().join("target/bench-data"),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let ctx = Ctx {
        data_dir,
        quick: args.quick,
        runs: args.runs.unwrap_or(if args.quick { 2 } else { 5 }).max(1),
        exe: std::env::current_exe().context("cannot find the running xtask binary")?,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        results: Default::default(),
    };
    println!(
        "bench: {} cores, median of {} alternating runs after a warm-up, warm page cache{}",
        ctx.jobs,
        ctx.runs,
        if ctx.quick { "; --quick: a smoke test of the harness, NOT a measurement" } else { "" }
    );
    for (name, group) in GROUPS {
        if args.only.as_deref().is_none_or(|only| only == name) {
            group(&ctx).with_context(|| format!("benchmark group `{name}`"))?;
        }
    }
    if args.json {
        let results: Vec<_> = ctx
            .results
            .borrow()
            .iter()
            .map(|(title, stats)| serde_json::json!({ "table": title, "contenders": stats }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(ExitCode::SUCCESS)
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

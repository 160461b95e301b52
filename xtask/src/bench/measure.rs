//! Running contenders side by side and reporting medians, ratios and peak memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One way of doing the job: a whole process a user would run, or an in-process baseline.
pub(crate) struct Contender<'a> {
    pub(crate) name: String,
    pub(crate) run: Box<dyn FnMut() -> anyhow::Result<()> + 'a>,
    /// Run before every run, untimed (e.g. remove the previous run's output).
    pub(crate) reset: Option<Box<dyn FnMut() -> anyhow::Result<()> + 'a>>,
    /// The commands of one run, for measuring their peak resident memory in an extra untimed
    /// run; `None` for an in-process contender.
    pub(crate) commands: Option<Rc<dyn Fn() -> Vec<Command> + 'a>>,
}

impl<'a> Contender<'a> {
    /// A contender that runs `make()` (a fresh command each time) and requires exit 0.
    pub(crate) fn command(name: impl Into<String>, make: impl Fn() -> Command + 'a) -> Self {
        let name = name.into();
        let shown = name.clone();
        let make = Rc::new(make);
        let again = Rc::clone(&make);
        Contender {
            name,
            reset: None,
            commands: Some(Rc::new(move || vec![again()])),
            run: Box::new(move || {
                let out = make().stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
                anyhow::ensure!(
                    out.status.success(),
                    "{shown} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).chars().take(300).collect::<String>()
                );
                Ok(())
            }),
        }
    }

    /// Several commands at once (one process per core), all required to exit 0.
    pub(crate) fn parallel(name: impl Into<String>, make: impl Fn() -> Vec<Command> + 'a) -> Self {
        let make = Rc::new(make);
        let again = Rc::clone(&make);
        Contender {
            name: name.into(),
            reset: None,
            commands: Some(again),
            run: Box::new(move || {
                let children: Vec<_> = make()
                    .into_iter()
                    .map(|mut c| c.stdout(Stdio::null()).stderr(Stdio::null()).spawn())
                    .collect::<Result<_, _>>()?;
                for mut child in children {
                    let status = child.wait()?;
                    anyhow::ensure!(status.success(), "a process failed: {status}");
                }
                Ok(())
            }),
        }
    }

    /// An in-process contender.
    pub(crate) fn func(
        name: impl Into<String>,
        f: impl FnMut() -> anyhow::Result<()> + 'a,
    ) -> Self {
        Contender { name: name.into(), run: Box::new(f), reset: None, commands: None }
    }

    /// The same contender with `reset` run, untimed, before each of its runs.
    pub(crate) fn with_reset(mut self, reset: impl FnMut() -> anyhow::Result<()> + 'a) -> Self {
        self.reset = Some(Box::new(reset));
        self
    }
}

/// What one contender measured.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Stats {
    pub(crate) name: String,
    /// Seconds per run, in the order run; empty if it failed.
    pub(crate) runs: Vec<f64>,
    pub(crate) median: Option<f64>,
    /// Peak resident memory in KiB (GNU time's `%M`, the kernel's `ru_maxrss`) of one extra,
    /// untimed run; summed over the processes of a parallel contender. `None` in-process.
    pub(crate) peak_rss_kib: Option<u64>,
    pub(crate) error: Option<String>,
}

/// Whether the page cache may hold the tree when a contender starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cache {
    /// One warm-up run per contender first, so the tree is in RAM: CPU and syscall costs.
    Warm,
    /// `sync` and drop the page, dentry and inode caches before every run (and no warm-up): what
    /// a user reading a collection from the disk waits for. Needs root.
    Cold,
}

/// How `measure` runs the contenders.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Timed rounds per contender.
    pub(crate) runs: usize,
    pub(crate) cache: Cache,
    /// GNU time, for peak resident memory; `None` leaves that column empty.
    pub(crate) time: Option<PathBuf>,
}

/// Runs every contender once to warm up (skipped on a cold cache), then `runs` rounds,
/// alternating A B C A B C so drift in the machine's load hits every contender alike; then, if
/// GNU time is there, one more untimed run of each command contender for its peak memory. A
/// failing contender is reported and dropped; the others go on.
pub(crate) fn measure(contenders: &mut [Contender<'_>], settings: &Settings) -> Vec<Stats> {
    let mut stats: Vec<Stats> = contenders
        .iter()
        .map(|c| Stats {
            name: c.name.clone(),
            runs: Vec::new(),
            median: None,
            peak_rss_kib: None,
            error: None,
        })
        .collect();
    let first = match settings.cache {
        Cache::Warm => 0,
        Cache::Cold => 1,
    };
    for round in first..=settings.runs {
        for (contender, stat) in contenders.iter_mut().zip(&mut stats) {
            if stat.error.is_some() {
                continue;
            }
            if let Err(err) = prepare(contender, settings.cache) {
                stat.error = Some(format!("{err:#}"));
                continue;
            }
            let start = Instant::now();
            match (contender.run)() {
                Ok(()) if round > 0 => stat.runs.push(start.elapsed().as_secs_f64()),
                Ok(()) => {}
                Err(err) => stat.error = Some(format!("{err:#}")),
            }
        }
    }
    if let Some(time) = &settings.time {
        for (contender, stat) in contenders.iter_mut().zip(&mut stats) {
            let Some(commands) = contender.commands.clone() else { continue };
            if stat.error.is_some() {
                continue;
            }
            match prepare(contender, settings.cache).and_then(|()| peak_rss(time, commands())) {
                Ok(kib) => stat.peak_rss_kib = Some(kib),
                Err(err) => stat.error = Some(format!("memory run: {err:#}")),
            }
        }
    }
    for stat in &mut stats {
        stat.median = median(&stat.runs);
    }
    stats
}

/// What happens, untimed, before each run: the contender's reset, then on a cold cache the
/// caches dropped (after the reset, so its writes are flushed and dropped too).
fn prepare(contender: &mut Contender<'_>, cache: Cache) -> anyhow::Result<()> {
    if let Some(reset) = &mut contender.reset {
        reset().map_err(|err| anyhow::anyhow!("reset failed: {err:#}"))?;
    }
    if cache == Cache::Cold {
        drop_caches()?;
    }
    Ok(())
}

/// Writes back every dirty page (`sync`), then drops the clean page cache, dentries and inodes,
/// so the next read comes from the device. Fails unless we are root.
pub(crate) fn drop_caches() -> anyhow::Result<()> {
    rustix::fs::sync();
    std::fs::write("/proc/sys/vm/drop_caches", b"3")
        .map_err(|err| anyhow::anyhow!("cannot drop the page cache (needs root): {err}"))
}

/// Runs `commands` at once, each under GNU time, and returns the sum of their peak resident
/// memory in KiB. Their exit status is not checked again: the timed runs did that.
fn peak_rss(time: &Path, commands: Vec<Command>) -> anyhow::Result<u64> {
    let dir = tempfile::tempdir()?;
    let mut children = Vec::new();
    for (i, cmd) in commands.iter().enumerate() {
        let report = dir.path().join(format!("{i}"));
        let mut wrapped = Command::new(time);
        wrapped.args(["-f", "%M", "-o"]).arg(&report).arg(cmd.get_program()).args(cmd.get_args());
        if let Some(cwd) = cmd.get_current_dir() {
            wrapped.current_dir(cwd);
        }
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        let child = wrapped.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        children.push((child, report));
    }
    let mut total = 0;
    for (mut child, report) in children {
        child.wait()?;
        let text = std::fs::read_to_string(&report)?;
        // GNU time puts "Command exited with non-zero status N" first when it did.
        let last = text.lines().last().unwrap_or_default().trim();
        total += last
            .parse::<u64>()
            .map_err(|_| anyhow::anyhow!("unexpected GNU time output {text:?}"))?;
    }
    Ok(total)
}

/// The median of the samples (mean of the middle two for an even count).
pub(crate) fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 })
}

/// How `other` compares with `ours`, in words: "ours 2.41x faster" or "ours 1.20x slower".
pub(crate) fn ratio_words(ours: f64, other: f64) -> String {
    if other >= ours {
        format!("ours {:.2}x faster", other / ours)
    } else {
        format!("ours {:.2}x slower", ours / other)
    }
}

/// Prints a table; `bytes` (if any) gives MiB/s, `ours` names the contender ratios refer to.
pub(crate) fn print_table(title: &str, bytes: Option<u64>, stats: &[Stats], ours: usize) {
    table!("\n{title}");
    table!(
        "  {:<40} {:>10} {:>10} {:>24} {:>10}  min..max",
        "contender",
        "median",
        "MiB/s",
        "ratio",
        "peak RSS"
    );
    let ours_median = stats.get(ours).and_then(|s| s.median);
    for (i, stat) in stats.iter().enumerate() {
        let Some(median) = stat.median else {
            table!("  {:<40} FAILED: {}", stat.name, stat.error.as_deref().unwrap_or("no runs"));
            continue;
        };
        let rate =
            bytes.map_or("-".into(), |b| format!("{:.0}", b as f64 / (1 << 20) as f64 / median));
        let ratio = match ours_median {
            Some(_) if i == ours => "(reference)".into(),
            Some(o) => ratio_words(o, median),
            None => "-".into(),
        };
        let min = stat.runs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = stat.runs.iter().copied().fold(0.0, f64::max);
        let rss =
            stat.peak_rss_kib.map_or("-".into(), |kib| format!("{:.1} MiB", kib as f64 / 1024.0));
        table!(
            "  {:<40} {:>10} {rate:>10} {ratio:>24} {rss:>10}  {}..{}",
            stat.name,
            secs(median),
            secs(min),
            secs(max)
        );
    }
}

/// A goal line: whether it was met, with the figure that decided it.
pub(crate) fn print_goal(goal: &str, met: Option<bool>, evidence: &str) {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    };
    table!("  goal: {goal}: {verdict} ({evidence})");
}

/// The two goals every reading job has against its fastest peers: at most the time of `peer` (the
/// widest xxhsum run, named by `peer_goal`), and within 10% of the parallel `cat` read ceiling.
pub(crate) fn print_read_goals(
    peer_goal: &str,
    ours: Option<f64>,
    peer: Option<f64>,
    cat: Option<f64>,
) {
    let ratio = |other: Option<f64>| {
        ours.zip(other).map_or("-".into(), |(o, p)| format!("ours {:.2}x its time", o / p))
    };
    print_goal(peer_goal, ours.zip(peer).map(|(o, p)| o <= p), &ratio(peer));
    print_goal(
        "within 10% of the parallel `cat` read ceiling",
        ours.zip(cat).map(|(o, c)| o <= c * 1.10),
        &ratio(cat),
    );
}

/// The median of the named contender.
pub(crate) fn median_of(stats: &[Stats], name: &str) -> Option<f64> {
    stats.iter().find(|s| s.name == name).and_then(|s| s.median)
}

fn secs(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} us", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// Shorthand for a duration in seconds.
#[allow(dead_code)] // used by groups that time individual operations
pub(crate) fn as_secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratios_say_who_is_faster() {
        assert_eq!(ratio_words(1.0, 2.5), "ours 2.50x faster");
        assert_eq!(ratio_words(2.0, 1.0), "ours 2.00x slower");
    }

    #[test]
    fn contenders_alternate_and_failures_are_isolated() {
        let log = std::cell::RefCell::new(Vec::new());
        let mut contenders = vec![
            Contender::func("a", || {
                log.borrow_mut().push('a');
                Ok(())
            }),
            Contender::func("fails", || anyhow::bail!("broken tool")),
            Contender::func("b", || {
                log.borrow_mut().push('b');
                Ok(())
            }),
        ];
        let settings = Settings { runs: 2, cache: Cache::Warm, time: None };
        let stats = measure(&mut contenders, &settings);
        drop(contenders);
        assert_eq!(log.into_inner(), ['a', 'b', 'a', 'b', 'a', 'b']); // warm-up + 2 rounds
        assert_eq!(stats[0].runs.len(), 2);
        assert!(stats[1].median.is_none() && stats[1].error.as_deref() == Some("broken tool"));
    }

    #[test]
    fn peak_memory_is_that_of_the_command_run() {
        let Some(time) =
            ["/usr/bin/time", "/bin/time"].map(PathBuf::from).into_iter().find(|p| p.is_file())
        else {
            assert!(std::env::var_os("CI").is_none(), "GNU time is missing (package `time`)");
            eprintln!("SKIPPED: GNU time is not installed (package `time`)");
            return;
        };
        let sh = |script: &str| {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", script]);
            cmd
        };
        // `sort` holds its whole input, one 48 MiB line, in memory.
        let big = peak_rss(&time, vec![sh("head -c 50331648 /dev/zero | tr '\\0' a | sort")]);
        let small = peak_rss(&time, vec![sh("true"), sh("true")]).unwrap();
        assert!(big.unwrap() > 48 << 10, "sort of 48 MiB");
        assert!(small < 16 << 10, "two shells running `true`: {small} KiB");
    }
}

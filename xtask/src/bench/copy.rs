//! `copy`: ours (durability none, old-or-new and full, verification on) against `cp -a`, `cp -a`
//! then `sync`, `rsync -a`, `rsync -a --fsync` and `xcp -r`, each into a fresh destination (removed, untimed, before every run).
//! Besides the common trees: one folder of 5,000 files, or with `--huge` one of 100,000 empty
//! files.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Contender, Ctx, TreeSpec, ensure_tree, median_of, print_goal};

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let peers = Peers::find(ctx);
    let mut specs = ctx.trees();
    // One huge folder: the case one task per folder serves worst.
    let one_folder = if ctx.huge {
        TreeSpec {
            name: "empty100k",
            dirs: 1,
            files_per_dir: if ctx.quick { 5000 } else { 100_000 },
            min_size: 0,
            max_size: 0,
            seed: 7,
        }
    } else {
        TreeSpec {
            name: "flat",
            dirs: 1,
            files_per_dir: if ctx.quick { 250 } else { 5000 },
            min_size: 1 << 10,
            max_size: 64 << 10,
            seed: 4,
        }
    };
    specs.insert(specs.len().min(2), one_folder);
    let mut verdicts = (Some(true), Some(true), Some(true));
    for spec in specs {
        let src = ensure_tree(&ctx.data_dir, &spec)?;
        let dst = ctx.data_dir.join(format!("copy-dst-{}", spec.name));
        let bytes = spec.bytes();
        let (src, dst) = (&src, &dst);
        let fresh = removed(dst);
        let mut contenders: Vec<_> = ["none", "old-or-new", "full"]
            .map(|durability| ours(ctx, src, dst, durability).with_reset(fresh))
            .into();
        contenders.extend(peers.contenders(src, dst, fresh));
        let title = format!("copy: {spec}");
        let stats = ctx.table(&title, Some(bytes), &mut contenders);
        fresh()?;
        let none = median_of(&stats, "ours: copy --durability none");
        let full = median_of(&stats, "ours: copy (durability full)");
        let better =
            |ours: Option<f64>, peer: Option<f64>, so_far: Option<bool>| match (ours, peer, so_far)
            {
                (Some(o), Some(p), Some(s)) => Some(s && o < p),
                _ => None,
            };
        // The defaults (verified, durable) against the fastest peer on trees of many folders,
        // and against `cp -a` on one folder and on large files.
        let peer = match spec.name {
            "small" | "rom" | "tiny100k" | "rom10x" => "xcp -r",
            _ => "cp -a",
        };
        let peer_median = median_of(&stats, peer);
        print_goal(
            &format!("copy at the defaults (verified, durable) at most {peer}'s time"),
            full.zip(peer_median).map(|(o, p)| o <= p),
            &full
                .zip(peer_median)
                .map_or("-".into(), |(o, p)| format!("ours {:.2}x its time", o / p)),
        );
        verdicts.0 = better(none, median_of(&stats, "cp -a"), verdicts.0);
        verdicts.1 = better(full, median_of(&stats, "cp -a, then sync"), verdicts.1);
        verdicts.2 = better(none, median_of(&stats, "xcp -r"), verdicts.2);
    }
    print_goal(
        "verified, durability none, faster than cp -a on every tree",
        verdicts.0,
        "see the ratios above",
    );
    print_goal(
        "durability full faster than cp -a then sync on every tree",
        verdicts.1,
        "see the ratios above",
    );
    print_goal(
        "faster than xcp on every tree",
        verdicts.2,
        if peers.xcp.is_some() {
            "see the ratios above"
        } else {
            "xcp not found: cargo install xcp"
        },
    );
    Ok(())
}

/// `ours: copy` of `src` into `dst` at `durability` (`full` is the default, named as such).
pub(crate) fn ours<'a>(
    ctx: &'a Ctx,
    src: &'a Path,
    dst: &'a Path,
    durability: &'static str,
) -> Contender<'a> {
    let name = match durability {
        "full" => "ours: copy (durability full)".to_owned(),
        other => format!("ours: copy --durability {other}"),
    };
    Contender::command(name, move || {
        let mut cmd = Command::new(&ctx.exe);
        cmd.args(["copy", "--durability", durability]).arg(src).arg(dst);
        cmd
    })
}

/// A reset that removes `dst` (a copy's destination) if it is there.
pub(crate) fn removed(dst: &Path) -> impl Fn() -> anyhow::Result<()> + Copy + '_ {
    move || {
        if dst.exists() {
            std::fs::remove_dir_all(dst).map_err(|e| {
                anyhow::anyhow!("cannot remove {}: {e}", toolkit::names::shown(dst))
            })?;
        }
        Ok(())
    }
}

/// The peer tools a copy is measured against, those installed: `cp`, `sync`, `rsync`, `xcp`.
pub(crate) struct Peers {
    cp: Option<PathBuf>,
    sync: Option<PathBuf>,
    rsync: Option<PathBuf>,
    xcp: Option<PathBuf>,
}

impl Peers {
    /// Looks each tool up once (a missing one is said once, on stderr).
    pub(crate) fn find(ctx: &Ctx) -> Peers {
        Peers {
            cp: ctx.tool("cp"),
            sync: ctx.tool("sync"),
            rsync: ctx.tool("rsync"),
            xcp: ctx.tool("xcp"),
        }
    }

    /// The peers copying the contents of `src` into `dst`, each after `fresh` (untimed): `cp -a`,
    /// `cp -a` then `sync`, `rsync -a`, `rsync -a --fsync` and `xcp -r`, those installed.
    pub(crate) fn contenders<'a>(
        &'a self,
        src: &'a Path,
        dst: &'a Path,
        fresh: impl Fn() -> anyhow::Result<()> + Copy + 'a,
    ) -> Vec<Contender<'a>> {
        let mut contenders = Vec::new();
        if let Some(cp) = &self.cp {
            let cp_cmd = move || {
                let mut cmd = Command::new(cp);
                cmd.arg("-a").arg(dot(src)).arg(dst);
                cmd
            };
            contenders.push(Contender::command("cp -a", cp_cmd).with_reset(fresh));
            if let Some(sync) = &self.sync {
                contenders.push(
                    Contender::func("cp -a, then sync", move || {
                        anyhow::ensure!(cp_cmd().status()?.success(), "cp -a failed");
                        anyhow::ensure!(Command::new(sync).status()?.success(), "sync failed");
                        Ok(())
                    })
                    .with_reset(fresh),
                );
            }
        }
        if let Some(rsync) = &self.rsync {
            contenders.push(
                Contender::command("rsync -a", move || {
                    let mut cmd = Command::new(rsync);
                    cmd.arg("-a").arg(slash(src)).arg(dst);
                    cmd
                })
                .with_reset(fresh),
            );
            // rsync's durable mode: an fsync per file before its rename.
            contenders.push(
                Contender::command("rsync -a --fsync", move || {
                    let mut cmd = Command::new(rsync);
                    cmd.args(["-a", "--fsync"]).arg(slash(src)).arg(dst);
                    cmd
                })
                .with_reset(fresh),
            );
        }
        if let Some(xcp) = &self.xcp {
            contenders.push(
                Contender::command("xcp -r", move || {
                    let mut cmd = Command::new(xcp);
                    cmd.arg("-r").arg(src).arg(dst);
                    cmd
                })
                .with_reset(fresh),
            );
        }
        contenders
    }
}

/// `SRC/.`: `cp -a SRC/. DST` copies the contents of SRC into DST, as ours and `rsync SRC/` do.
fn dot(src: &Path) -> PathBuf {
    src.join(".")
}

/// `SRC/`, for rsync to copy the contents of SRC: joining an empty name adds the separator, and
/// keeps every byte of a name that is not UTF-8.
pub(crate) fn slash(src: &Path) -> PathBuf {
    src.join("")
}

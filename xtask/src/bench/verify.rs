//! `verify`: ours (full and `--quick`) against `xxhsum -c` (one process, one per core, and
//! eight) and `b3sum --check` on the same trees, each sealed once beforehand, with 32 `cat`
//! processes reading the same files as the device's read ceiling.

use std::process::Command;

use toolkit::snapshot_verify;

use super::hash::{CAT_STREAMS, XXHSUM_WIDE};
use super::{
    Contender, Ctx, MAX_ARGS, chunks, ensure_tree, median_of, print_goal, print_read_goals, split,
};

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let xxhsum = ctx.tool("xxhsum");
    let b3sum = ctx.tool("b3sum");
    let cat = ctx.tool("cat");
    let mut faster_than_all = Some(true);
    for spec in ctx.trees() {
        let root = ensure_tree(&ctx.data_dir, &spec)?;
        if !root.join("manifest.xxh128").exists() {
            snapshot_verify::seal(&root, &snapshot_verify::SealSpec::default(), &())?;
        }
        let manifest = std::fs::read_to_string(root.join("manifest.xxh128"))?;
        let mut files: Vec<String> =
            spec.files().iter().map(|(rel, _)| rel.to_string_lossy().into_owned()).collect();
        files.sort();
        // Parts of the manifest (one per core, and XXHSUM_WIDE), and a b3sum manifest.
        let lines: Vec<&str> = manifest.lines().collect();
        let split_manifest = |n: usize| -> std::io::Result<Vec<std::path::PathBuf>> {
            chunks(&lines, n)
                .into_iter()
                .enumerate()
                .map(|(i, part)| {
                    let path = ctx.data_dir.join(format!("{}-{n}part{i}.xxh128", spec.name));
                    std::fs::write(&path, part.join("\n") + "\n").map(|()| path)
                })
                .collect()
        };
        let parts = split_manifest(ctx.jobs)?;
        let wide_parts = split_manifest(XXHSUM_WIDE)?;
        let b3_manifest = ctx.data_dir.join(format!("{}.b3", spec.name));
        // Rewritten whenever the tree was regenerated after it (its spec marker is newer).
        let marker = ctx.data_dir.join(format!("{}.spec", spec.name));
        let stale =
            modified(&b3_manifest).is_none_or(|b3| modified(&marker).is_some_and(|m| m > b3));
        // b3sum takes the names as arguments: too many for one process on the huge trees.
        let b3sum = b3sum.as_ref().filter(|_| files.len() <= MAX_ARGS);
        if let Some(b3sum) = b3sum
            && stale
        {
            let out = Command::new(b3sum).args(&files).current_dir(&root).output()?;
            anyhow::ensure!(out.status.success(), "b3sum failed to write its manifest");
            std::fs::write(&b3_manifest, out.stdout)?;
        }
        let bytes = spec.bytes();
        let (root, files) = (&root, &files);
        let (mut per_core_name, mut wide_name, mut cat_name) = (None, None, None);
        let mut contenders = vec![
            Contender::command("ours: xtask verify", move || {
                let mut cmd = Command::new(&ctx.exe);
                cmd.arg("verify").arg(root);
                cmd
            }),
            Contender::command("ours: xtask verify --quick", move || {
                let mut cmd = Command::new(&ctx.exe);
                cmd.args(["verify", "--quick"]).arg(root);
                cmd
            }),
        ];
        if let Some(xxhsum) = &xxhsum {
            contenders.push(Contender::command("xxhsum -c (1 process)", move || {
                let mut cmd = Command::new(xxhsum);
                cmd.args(["-c", "manifest.xxh128"]).current_dir(root);
                cmd
            }));
            let each = |parts: Vec<std::path::PathBuf>| {
                Contender::parallel(format!("xxhsum -c ({} processes)", parts.len()), move || {
                    parts
                        .iter()
                        .map(|part| {
                            let mut cmd = Command::new(xxhsum);
                            cmd.arg("-c").arg(part).current_dir(root);
                            cmd
                        })
                        .collect()
                })
            };
            let (per_core, wide) = (each(parts), each(wide_parts));
            per_core_name = Some(per_core.name.clone());
            if wide.name != per_core.name {
                wide_name = Some(wide.name.clone());
            }
            contenders.push(per_core);
            if wide_name.is_some() {
                contenders.push(wide);
            }
        }
        if let Some(b3sum) = b3sum {
            contenders.push(Contender::command("b3sum --check", move || {
                let mut cmd = Command::new(b3sum);
                cmd.arg("--check").arg(&b3_manifest).current_dir(root);
                cmd
            }));
        }
        if let Some(cat) = &cat {
            let ceiling = split("cat, read ceiling", cat, &[], files, CAT_STREAMS, root);
            cat_name = Some(ceiling.name.clone());
            contenders.push(ceiling);
        }
        let title = format!("verify: {spec}");
        let stats = ctx.table(&title, Some(bytes), &mut contenders);
        let ours = median_of(&stats, "ours: xtask verify");
        let wide = wide_name.and_then(|name| median_of(&stats, &name));
        let cat = cat_name.and_then(|name| median_of(&stats, &name));
        print_read_goals(
            &format!("at most xxhsum -c's time at {XXHSUM_WIDE} processes"),
            ours,
            wide,
            cat,
        );
        let peers: Vec<f64> = stats
            .iter()
            .skip(2)
            .filter(|s| !s.name.starts_with("cat"))
            .filter_map(|s| s.median)
            .collect();
        faster_than_all = match (faster_than_all, ours) {
            (Some(so_far), Some(o)) => Some(so_far && peers.iter().all(|&p| o < p)),
            _ => None,
        };
        if spec.name == "small" {
            let per_core = per_core_name.and_then(|name| median_of(&stats, &name));
            print_goal(
                &format!("at most xxhsum -c's time at {} processes on small files", ctx.jobs),
                ours.zip(per_core).map(|(o, p)| o <= p),
                &ours
                    .zip(per_core)
                    .map_or("-".into(), |(o, p)| format!("ours {:.2}x its time", o / p)),
            );
        }
        if spec.name == "rom" {
            let quick = median_of(&stats, "ours: xtask verify --quick");
            print_goal(
                "quick mode at least 10x faster than a full verify on the ROM-like tree",
                ours.zip(quick).map(|(o, q)| o >= q * 10.0),
                &ours.zip(quick).map_or("-".into(), |(o, q)| format!("{:.1}x", o / q)),
            );
        }
    }
    print_goal(
        "full verify faster than xxhsum -c (1 and per-core) and b3sum --check on every tree",
        faster_than_all,
        "see the per-tree ratios above",
    );
    Ok(())
}

fn modified(path: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

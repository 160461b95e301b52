//! `verify`: ours (full and `--quick`) against `xxhsum -c` (one process, and one per core) and
//! `b3sum --check` on the same trees, each sealed once beforehand.

use std::process::Command;

use camino::Utf8PathBuf;

use super::{Contender, Ctx, TreeSpec, chunks, ensure_tree, median_of, print_goal};

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let xxhsum = ctx.tool("xxhsum");
    let b3sum = ctx.tool("b3sum");
    let mut faster_than_all = Some(true);
    for spec in TreeSpec::standard(ctx.quick) {
        let root = ensure_tree(&ctx.data_dir, &spec)?;
        let root_utf8 = Utf8PathBuf::from_path_buf(root.clone())
            .map_err(|p| anyhow::anyhow!("non-UTF-8 {p:?}"))?;
        if !root.join("manifest.xxh128").exists() {
            snapshot_verify::seal(&root_utf8, &snapshot_verify::SealSpec::default())?;
        }
        let manifest = std::fs::read_to_string(root.join("manifest.xxh128"))?;
        let mut files: Vec<String> =
            spec.files().iter().map(|(rel, _)| rel.to_string_lossy().into_owned()).collect();
        files.sort();
        // Per-core parts of the manifest, and a b3sum manifest, written once per tree.
        let lines: Vec<&str> = manifest.lines().collect();
        let parts: Vec<_> = chunks(&lines, ctx.jobs)
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                let path = ctx.data_dir.join(format!("{}-part{i}.xxh128", spec.name));
                std::fs::write(&path, part.join("\n") + "\n").map(|()| path)
            })
            .collect::<Result<_, _>>()?;
        let b3_manifest = ctx.data_dir.join(format!("{}.b3", spec.name));
        // Rewritten whenever the tree was regenerated after it (its spec marker is newer).
        let marker = ctx.data_dir.join(format!("{}.spec", spec.name));
        let stale =
            modified(&b3_manifest).is_none_or(|b3| modified(&marker).is_some_and(|m| m > b3));
        if let Some(b3sum) = &b3sum
            && stale
        {
            let out = Command::new(b3sum).args(&files).current_dir(&root).output()?;
            anyhow::ensure!(out.status.success(), "b3sum failed to write its manifest");
            std::fs::write(&b3_manifest, out.stdout)?;
        }
        let bytes = spec.bytes();
        let (root, files) = (&root, &files);
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
            contenders.push(Contender::parallel(
                format!("xxhsum -c ({} processes)", parts.len()),
                move || {
                    parts
                        .iter()
                        .map(|part| {
                            let mut cmd = Command::new(xxhsum);
                            cmd.arg("-c").arg(part).current_dir(root);
                            cmd
                        })
                        .collect()
                },
            ));
        }
        if let Some(b3sum) = &b3sum {
            contenders.push(Contender::command("b3sum --check", move || {
                let mut cmd = Command::new(b3sum);
                cmd.arg("--check").arg(&b3_manifest).current_dir(root);
                cmd
            }));
        }
        let title =
            format!("verify: tree `{}` ({} files, {} MiB)", spec.name, files.len(), bytes >> 20);
        let stats = ctx.table(&title, Some(bytes), &mut contenders);
        let ours = median_of(&stats, "ours: xtask verify");
        let peers: Vec<f64> = stats.iter().skip(2).filter_map(|s| s.median).collect();
        faster_than_all = match (faster_than_all, ours) {
            (Some(so_far), Some(o)) => Some(so_far && peers.iter().all(|&p| o < p)),
            _ => None,
        };
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

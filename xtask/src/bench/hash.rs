//! `hash`: ours against `xxhsum -H2` (one process, and one per core), `b3sum`, and a plain
//! parallel read of the same bytes (the ceiling: what reading alone costs).

use std::fs::File;
use std::io::Read;
use std::process::Command;

use rayon::prelude::*;

use super::{Contender, Ctx, TreeSpec, chunks, ensure_tree, median_of, print_goal};

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let xxhsum = ctx.tool("xxhsum");
    let b3sum = ctx.tool("b3sum");
    let mut goal_per_core = Some(true);
    for spec in TreeSpec::standard(ctx.quick) {
        let root = ensure_tree(&ctx.data_dir, &spec)?;
        let mut files: Vec<String> =
            spec.files().iter().map(|(rel, _)| rel.to_string_lossy().into_owned()).collect();
        files.sort();
        let dirs: Vec<String> = (0..spec.dirs).map(|d| format!("dir{d:03}")).collect();
        let bytes = spec.bytes();
        let (root, files, dirs) = (&root, &files, &dirs);
        let mut contenders = vec![Contender::command("ours: xtask hash (XXH128)", move || {
            let mut cmd = Command::new(&ctx.exe);
            cmd.arg("hash").args(dirs).current_dir(root);
            cmd
        })];
        if let Some(xxhsum) = &xxhsum {
            contenders.push(Contender::command("xxhsum -H2 (1 process)", move || {
                let mut cmd = Command::new(xxhsum);
                cmd.arg("-H2").args(files).current_dir(root);
                cmd
            }));
            let parts = chunks(files, ctx.jobs);
            contenders.push(Contender::parallel(
                format!("xxhsum -H2 ({} processes)", parts.len()),
                move || {
                    parts
                        .iter()
                        .map(|part| {
                            let mut cmd = Command::new(xxhsum);
                            cmd.arg("-H2").args(part).current_dir(root);
                            cmd
                        })
                        .collect()
                },
            ));
        }
        if let Some(b3sum) = &b3sum {
            contenders.push(Contender::command("b3sum", move || {
                let mut cmd = Command::new(b3sum);
                cmd.args(files).current_dir(root);
                cmd
            }));
        }
        let pool = rayon::ThreadPoolBuilder::new().num_threads(ctx.jobs).build()?;
        contenders.push(Contender::func("plain read, same threads (ceiling)", move || {
            pool.install(move || {
                files.par_iter().with_max_len(1).try_for_each(|rel| -> anyhow::Result<()> {
                    thread_local! {
                        static BUF: std::cell::RefCell<Vec<u8>> =
                            std::cell::RefCell::new(vec![0u8; checksum::BUF_SIZE]);
                    }
                    let mut file = File::open(root.join(rel))?;
                    BUF.with_borrow_mut(|buf| {
                        while file.read(buf)? > 0 {}
                        Ok(())
                    })
                })
            })
        }));
        let title = format!(
            "hash: tree `{}` ({} files in {} folders, {} MiB)",
            spec.name,
            files.len(),
            spec.dirs,
            bytes >> 20
        );
        let stats = ctx.table(&title, Some(bytes), &mut contenders);
        let ours = median_of(&stats, "ours: xtask hash (XXH128)");
        let per_core = stats.iter().find(|s| s.name.contains("processes)")).and_then(|s| s.median);
        goal_per_core = match (goal_per_core, ours, per_core) {
            (Some(so_far), Some(o), Some(p)) => Some(so_far && o < p),
            _ => None,
        };
        if spec.name == "large" {
            let read = median_of(&stats, "plain read, same threads (ceiling)");
            let met = ours.zip(read).map(|(o, r)| o <= r * 1.10);
            let evidence = ours
                .zip(read)
                .map_or("-".into(), |(o, r)| format!("ours {:.2}x the plain read's time", o / r));
            print_goal("within 10% of the plain read on large files", met, &evidence);
        }
    }
    print_goal(
        "faster than xxhsum at one process per core on every tree",
        goal_per_core,
        "see the per-tree ratios above",
    );
    Ok(())
}

//! `hash`: ours against `xxhsum -H2` (one process, one per core, and eight: more reads in flight
//! than cores, its fastest way on a cold cache), `b3sum`, and plain reads of the same bytes (the
//! ceilings: on our own threads in-process, and 32 `cat` processes, what the device gives).

use std::fs::File;
use std::io::Read;
use std::process::Command;

use rayon::prelude::*;
use toolkit::checksum;

use super::{
    Contender, Ctx, MAX_ARGS, ensure_tree, median_of, print_goal, print_read_goals, split,
};

/// Processes of the peers' "as many reads in flight as the device wants" configurations.
pub(crate) const XXHSUM_WIDE: usize = 8;
/// `cat` processes reading at once: the device's read ceiling.
pub(crate) const CAT_STREAMS: usize = 32;

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let xxhsum = ctx.tool("xxhsum");
    let b3sum = ctx.tool("b3sum");
    let cat = ctx.tool("cat");
    let mut goal_per_core = Some(true);
    for spec in ctx.trees() {
        let root = ensure_tree(&ctx.data_dir, &spec)?;
        let mut files: Vec<String> =
            spec.files().iter().map(|(rel, _)| rel.to_string_lossy().into_owned()).collect();
        files.sort();
        let dirs: Vec<String> = (0..spec.dirs).map(|d| format!("dir{d:03}")).collect();
        let bytes = spec.bytes();
        let (root, files, dirs) = (&root, &files, &dirs);
        let (mut per_core_name, mut wide_name, mut cat_name) = (None, None, None);
        let mut contenders = vec![Contender::command("ours: xtask hash (XXH128)", move || {
            let mut cmd = Command::new(&ctx.exe);
            cmd.arg("hash").args(dirs).current_dir(root);
            cmd
        })];
        // One process cannot take 100,000 names as arguments (the kernel's limit is ~2 MiB).
        let one_process = files.len() <= MAX_ARGS;
        if let Some(xxhsum) = &xxhsum
            && one_process
        {
            contenders.push(Contender::command("xxhsum -H2 (1 process)", move || {
                let mut cmd = Command::new(xxhsum);
                cmd.arg("-H2").args(files).current_dir(root);
                cmd
            }));
        }
        if let Some(xxhsum) = &xxhsum {
            let per_core = split("xxhsum -H2", xxhsum, &["-H2"], files, ctx.jobs, root);
            per_core_name = Some(per_core.name.clone());
            contenders.push(per_core);
            let wide = split("xxhsum -H2", xxhsum, &["-H2"], files, XXHSUM_WIDE, root);
            if Some(&wide.name) != per_core_name.as_ref() {
                wide_name = Some(wide.name.clone());
                contenders.push(wide);
            }
        }
        if let Some(b3sum) = &b3sum
            && one_process
        {
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
        if let Some(cat) = &cat {
            let ceiling = split("cat, read ceiling", cat, &[], files, CAT_STREAMS, root);
            cat_name = Some(ceiling.name.clone());
            contenders.push(ceiling);
        }
        let title = format!("hash: {spec}");
        let stats = ctx.table(&title, Some(bytes), &mut contenders);
        let ours = median_of(&stats, "ours: xtask hash (XXH128)");
        let per_core = per_core_name.and_then(|name| median_of(&stats, &name));
        let wide = wide_name.and_then(|name| median_of(&stats, &name)).or(per_core);
        let cat = cat_name.and_then(|name| median_of(&stats, &name));
        print_read_goals(
            &format!("at most xxhsum's time at {XXHSUM_WIDE} processes"),
            ours,
            wide,
            cat,
        );
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

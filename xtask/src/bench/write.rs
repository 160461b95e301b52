//! `write`: 4 KiB atomic replacements per second, in-process, with durability full and none,
//! beside a plain `std::fs::write` and tempfile's `persist` followed by the same fsyncs by hand.

use std::fs::File;
use std::io::Write;

use toolkit::atomic_io::{AtomicFile, Durability, WriteOptions};

use super::{Contender, Ctx, median_of, print_goal};

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let dir = ctx.data_dir.join("write-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let target = dir.join("status.bin");
    let payload = vec![0x42u8; 4096];
    let writes = if ctx.quick { 20 } else { 200 };

    let atomic = |durability: Durability| {
        let mut opts = WriteOptions::default();
        opts.durability = durability;
        let (target, payload) = (&target, &payload);
        move || -> anyhow::Result<()> {
            for _ in 0..writes {
                let mut file = AtomicFile::create(target, &opts)?;
                file.write_all(payload)?;
                file.commit()?;
            }
            Ok(())
        }
    };
    let mut contenders = vec![
        Contender::func("ours: AtomicFile, durability none", atomic(Durability::None)),
        Contender::func("std::fs::write (not atomic)", || {
            for _ in 0..writes {
                std::fs::write(&target, &payload)?;
            }
            Ok(())
        }),
        Contender::func("ours: AtomicFile, durability full", atomic(Durability::Full)),
        Contender::func("tempfile persist + fsync file and dir", || {
            for _ in 0..writes {
                let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
                tmp.write_all(&payload)?;
                tmp.as_file().sync_all()?;
                tmp.persist(&target)?;
                File::open(&dir)?.sync_all()?;
            }
            Ok(())
        }),
    ];
    let title = format!("write: {writes} atomic replacements of a 4 KiB file per run (in-process)");
    let stats = ctx.table(&title, None, &mut contenders);
    for stat in &stats {
        if let Some(m) = stat.median {
            table!("  {:<40} {:>10.0} writes/s", stat.name, writes as f64 / m);
        }
    }
    let none = median_of(&stats, "ours: AtomicFile, durability none");
    let plain = median_of(&stats, "std::fs::write (not atomic)");
    let full = median_of(&stats, "ours: AtomicFile, durability full");
    let tempfile = median_of(&stats, "tempfile persist + fsync file and dir");
    print_goal(
        "durability none within 1.3x of a plain write",
        none.zip(plain).map(|(n, p)| n <= p * 1.3),
        &none.zip(plain).map_or("-".into(), |(n, p)| format!("{:.2}x", n / p)),
    );
    print_goal(
        "durability full no slower than tempfile + the same fsyncs",
        full.zip(tempfile).map(|(f, t)| f <= t),
        &full.zip(tempfile).map_or("-".into(), |(f, t)| format!("{:.2}x", f / t)),
    );
    Ok(())
}

//! `seal`: what making a snapshot durable before sealing it costs. Before every run (untimed) the
//! tree is copied afresh with `cp -a` and not synced, as a training loop leaves a checkpoint, so
//! the seal pays for writing it back. Ours (`seal`, which syncs every listed file before the
//! manifest: one `syncfs` on ext4) beside the same seal of a tree synced before the run (what
//! sealing cost before it synced the files: the difference is the write-back it now waits for),
//! ours hashing only (`hash`, no sync, no manifest) and `xxhsum -H2` over every file then `sync`
//! (a script's seal).

use std::process::{Command, Stdio};

use super::{Contender, Ctx, ensure_tree};

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let cp = ctx.tool("cp");
    let xxhsum = ctx.tool("xxhsum");
    let Some(cp) = cp else { return Ok(()) };
    for spec in ctx.trees() {
        let src = ensure_tree(&ctx.data_dir, &spec)?;
        let snap = ctx.data_dir.join(format!("seal-{}", spec.name));
        let (src, snap, cp) = (&src, &snap, &cp);
        let fresh = move || -> anyhow::Result<()> {
            if snap.exists() {
                std::fs::remove_dir_all(snap)?;
            }
            let status = Command::new(cp).arg("-a").arg(src).arg(snap).status()?;
            anyhow::ensure!(status.success(), "cp -a failed");
            Ok(())
        };
        let sync = ctx.tool("sync");
        let fresh_synced = move || -> anyhow::Result<()> {
            fresh()?;
            if let Some(sync) = &sync {
                anyhow::ensure!(Command::new(sync).status()?.success(), "sync failed");
            }
            Ok(())
        };
        let ours = |verb: &'static str| {
            move || {
                let mut cmd = Command::new(&ctx.exe);
                cmd.arg(verb);
                if verb == "seal" {
                    cmd.arg("--allow-empty");
                }
                cmd.arg(snap).stdout(Stdio::null());
                cmd
            }
        };
        let mut contenders = vec![
            Contender::command("ours: seal (syncs every file first)", ours("seal"))
                .with_reset(fresh),
            Contender::command("ours: seal of a tree synced before", ours("seal"))
                .with_reset(fresh_synced),
            Contender::command("ours: hash only (no sync, no manifest)", ours("hash"))
                .with_reset(fresh),
        ];
        if let Some(xxhsum) = &xxhsum {
            contenders.push(
                Contender::command("xxhsum -H2 every file, then sync", move || {
                    let mut cmd = Command::new("sh");
                    cmd.arg("-c")
                        .arg("find \"$1\" -type f -print0 | xargs -0 \"$2\" -H2 >/dev/null && sync")
                        .arg("sh")
                        .arg(snap)
                        .arg(xxhsum);
                    cmd
                })
                .with_reset(fresh),
            );
        }
        let title = format!("seal: {spec}, written unsynced before each run");
        ctx.table(&title, Some(spec.bytes()), &mut contenders);
        if snap.exists() {
            std::fs::remove_dir_all(snap)?;
        }
    }
    Ok(())
}

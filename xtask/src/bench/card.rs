//! `card`: a ROM-like tree copied onto a real exFAT file system through FUSE (an image with 128 KiB
//! clusters on a loop device, mounted with `mount.exfat-fuse`), as users copy collections to SD
//! cards: ours (verified from the cache, and from the media) beside `cp -a` and `rsync -a` to the
//! same mount, each into an emptied destination; then a rerun of each onto its own complete copy.
//! Needs root, `/dev/fuse`, exfatprogs and exfat-fuse; without them the group says so and is
//! skipped. The mount is undone and the loop device detached at the end, also on error.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::{Contender, Ctx, TreeSpec, ensure_tree};

/// The image: large enough for the tree once plus slack; created sparse.
const IMAGE_BYTES: u64 = 1 << 30;
const CLUSTER: &str = "131072";

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let (Some(mkfs), Some(losetup), Some(mount)) =
        (ctx.tool("mkfs.exfat"), ctx.tool("losetup"), ctx.tool("mount.exfat-fuse"))
    else {
        return Ok(());
    };
    let spec = TreeSpec {
        name: "card-roms",
        dirs: 24,
        files_per_dir: if ctx.quick { 2 } else { 12 },
        min_size: 16 << 10,
        max_size: 2 << 20,
        seed: 11,
    };
    let src = ensure_tree(&ctx.data_dir, &spec)?;
    let card = match Card::mount(&ctx.data_dir, &mkfs, &losetup, &mount) {
        Ok(card) => card,
        Err(err) => {
            say!("bench: cannot mount an exFAT image here ({err:#}); group `card` skipped");
            return Ok(());
        }
    };
    let bytes = spec.bytes();
    let files = spec.dirs * spec.files_per_dir;
    let dst = |name: &str| card.dir.join(name);
    let empty = |dir: PathBuf| {
        move || -> anyhow::Result<()> {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            Ok(())
        }
    };
    let ours = |extra: &'static [&'static str], dir: PathBuf| {
        let (exe, src) = (ctx.exe.clone(), src.clone());
        move || {
            let mut cmd = Command::new(&exe);
            cmd.arg("copy").args(extra).arg(&src).arg(&dir);
            cmd
        }
    };
    let cp = ctx.tool("cp");
    let rsync = ctx.tool("rsync");
    let cp_cmd = |dir: PathBuf| {
        let (cp, src) = (cp.clone(), src.join("."));
        move || {
            let mut cmd = Command::new(cp.as_deref().unwrap_or(Path::new("cp")));
            cmd.arg("-a").arg(&src).arg(&dir);
            cmd
        }
    };
    let rsync_cmd = |dir: PathBuf| {
        let (rsync, src) = (rsync.clone(), super::copy::slash(&src));
        move || {
            let mut cmd = Command::new(rsync.as_deref().unwrap_or(Path::new("rsync")));
            cmd.arg("-a").arg(&src).arg(&dir);
            cmd
        }
    };

    let mut first = vec![
        Contender::command("ours: copy", ours(&[], dst("ours"))).with_reset(empty(dst("ours"))),
        Contender::command("ours: copy --verify media", ours(&["--verify", "media"], dst("media")))
            .with_reset(empty(dst("media"))),
    ];
    if cp.is_some() {
        first.push(Contender::command("cp -a", cp_cmd(dst("cp"))).with_reset(empty(dst("cp"))));
    }
    if rsync.is_some() {
        first.push(
            Contender::command("rsync -a", rsync_cmd(dst("rsync"))).with_reset(empty(dst("rsync"))),
        );
    }
    let title = format!(
        "card: first copy onto exFAT through FUSE, 128 KiB clusters ({files} files in {} folders, \
         {} MiB)",
        spec.dirs,
        bytes >> 20
    );
    ctx.table(&title, Some(bytes), &mut first);
    drop(first);

    // Each rerun goes onto the complete copy its own first run left (the table above ends with a
    // full copy of each).
    let mut again = vec![
        Contender::command("ours: rerun", ours(&[], dst("ours"))),
        Contender::command(
            "ours: rerun --verify media",
            ours(&["--verify", "media"], dst("media")),
        ),
    ];
    if cp.is_some() {
        again.push(Contender::command("cp -a: rerun", cp_cmd(dst("cp"))));
    }
    if rsync.is_some() {
        again.push(Contender::command("rsync -a: rerun", rsync_cmd(dst("rsync"))));
    }
    let title = format!("card: rerun of the unchanged tree onto its copy ({files} files)");
    ctx.table(&title, Some(bytes), &mut again);
    Ok(())
}

/// A mounted exFAT image; unmounted and detached on drop.
struct Card {
    image: PathBuf,
    dir: PathBuf,
    loop_dev: Option<PathBuf>,
    mounted: bool,
}

impl Card {
    fn mount(data_dir: &Path, mkfs: &Path, losetup: &Path, mount: &Path) -> anyhow::Result<Card> {
        let image = data_dir.join("card.img");
        let dir = data_dir.join("card-mnt");
        std::fs::create_dir_all(&dir)?;
        let _ = std::fs::remove_file(&image);
        std::fs::File::create(&image)?.set_len(IMAGE_BYTES)?;
        exec(Command::new(mkfs).args(["-c", CLUSTER]).arg(&image))?;
        let mut card = Card { image: image.clone(), dir, loop_dev: None, mounted: false };
        let dev = exec(Command::new(losetup).args(["--find", "--show"]).arg(&image))?;
        card.loop_dev = Some(PathBuf::from(dev.trim()));
        exec(Command::new(mount).arg(dev.trim()).arg(&card.dir))?;
        card.mounted = true;
        Ok(card)
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.dir).status();
        }
        if let Some(dev) = self.loop_dev.take() {
            let _ = Command::new("losetup").arg("-d").arg(dev).status();
        }
        let _ = std::fs::remove_file(&self.image);
    }
}

fn exec(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

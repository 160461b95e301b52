//! A real exFAT file system through FUSE, the way users' SD cards are mounted: an image file
//! formatted by `mkfs.exfat` (exfatprogs) with a chosen size and cluster size, attached to a loop
//! device (`losetup`) and mounted with `mount.exfat-fuse` (exfat-fuse). Unmounted and detached
//! when dropped, a panicking test included.
//!
//! [`Card::fat32`] does the same for FAT32 (`mkfs.vfat` from dosfstools, `fusefat -o rw+`).
//!
//! Needs root, `/dev/fuse` and the tools: without them the constructors return `None` after
//! saying so loudly on a developer's machine, and fail the test under `CI=true` (`.ci/run`
//! installs exfatprogs, exfat-fuse, dosfstools, fusefat and fuse3).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::require_tool;

/// A mounted exFAT image on a loop device, with its own temporary directory for the image and the
/// mount point.
///
/// ```no_run
/// let Some(card) = e2e::card::Card::exfat(16 << 20, 4096) else { return Ok(()) };
/// std::fs::write(card.path().join("Zelda.nes"), b"rom")?;
/// assert!(card.path().join("zelda.nes").exists()); // exFAT is case-insensitive
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Card {
    dir: tempfile::TempDir,
    mount: PathBuf,
    loop_dev: Option<PathBuf>,
    mounted: bool,
    /// The FUSE driver and its options before the device and the mount point.
    driver: Vec<String>,
}

impl Card {
    /// Formats an image of `size` bytes with clusters of `cluster` bytes, attaches and mounts it;
    /// `None` (said loudly) when this machine cannot, and a failed test then under `CI=true`.
    pub fn exfat(size: u64, cluster: u64) -> Option<Card> {
        let mkfs = require_tool("mkfs.exfat")?;
        let mkfs = move |image: &Path| {
            run(Command::new(&mkfs).arg("-c").arg(cluster.to_string()).arg(image));
        };
        Card::make(size, mkfs, vec!["mount.exfat-fuse".to_owned()])
    }

    /// A FAT32 image of `size` bytes (`mkfs.vfat -F 32`, dosfstools) mounted read-write with
    /// `fusefat -o rw+`; `None` (said loudly) when this machine cannot, a failure under `CI=true`.
    pub fn fat32(size: u64) -> Option<Card> {
        let mkfs = require_tool("mkfs.vfat")?;
        let _driver = require_tool("fusefat")?;
        let mkfs = move |image: &Path| {
            run(Command::new(&mkfs).args(["-F", "32"]).arg(image));
        };
        Card::make(size, mkfs, vec!["fusefat".to_owned(), "-o".to_owned(), "rw+".to_owned()])
    }

    fn make(size: u64, mkfs: impl FnOnce(&Path), driver: Vec<String>) -> Option<Card> {
        let losetup = require_tool("losetup")?;
        let _mount = require_tool(&driver[0])?;
        if let Some(why) = missing_privilege(&["/dev/fuse", "/dev/loop-control"]) {
            let on_ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!on_ci, "a card image needs root and /dev/fuse on CI: {why}");
            eprintln!("\n!!! SKIPPED: cannot mount a card image here: {why} !!!\n");
            return None;
        }
        let dir = tempfile::tempdir().expect("a temp dir for the card image");
        let image = dir.path().join("card.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).expect("the mount point");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(size))
            .expect("the card image (sparse)");
        mkfs(&image);
        let mut card = Card { dir, mount, loop_dev: None, mounted: false, driver };
        let out = run(Command::new(losetup).args(["--find", "--show"]).arg(&image));
        card.loop_dev = Some(PathBuf::from(out.trim()));
        card.attach();
        Some(card)
    }

    /// The mount point: the card's root directory.
    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// Unmounts and mounts the card again: every page and attribute cached by the kernel or by
    /// the FUSE daemon for it is gone, so what is read afterwards comes from the image.
    pub fn remount(&mut self) {
        self.detach();
        self.attach();
    }

    /// The image file (e.g. to check its size or to corrupt it while unmounted).
    pub fn image(&self) -> PathBuf {
        self.dir.path().join("card.img")
    }

    fn attach(&mut self) {
        let dev = self.loop_dev.as_ref().expect("attached to a loop device");
        run(Command::new(&self.driver[0]).args(&self.driver[1..]).arg(dev).arg(&self.mount));
        self.mounted = true;
    }

    fn detach(&mut self) {
        if !std::mem::take(&mut self.mounted) {
            return;
        }
        // umount(8) of a fuseblk mount waits for the daemon to write back and exit; a busy mount
        // (a test's open file while it panics) is detached lazily instead.
        let ok = Command::new("umount").arg(&self.mount).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        self.detach();
        if let Some(dev) = self.loop_dev.take() {
            let _ = Command::new("losetup").arg("-d").arg(dev).status();
        }
    }
}

/// Why this process cannot mount a FUSE file system (on a loop device), if it cannot: it is not
/// root, or cannot open one of `devices` read-write.
pub(crate) fn missing_privilege(devices: &[&str]) -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".to_owned());
    }
    for dev in devices {
        if let Err(err) = std::fs::OpenOptions::new().read(true).write(true).open(dev) {
            return Some(format!("{dev}: {err}"));
        }
    }
    None
}

/// Runs a setup command; its failure fails the test with its output.
pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

//! Which file system holds a file, and whether one `syncfs(2)` can stand in for an `fsync` of each
//! file on it.
//!
//! `syncfs` (and `sync`) return 0 on FUSE file systems without syncing anything: the kernel sends
//! the file system no request for them (virtiofs aside). Network file systems promise little
//! through them either. So a batch sync is used only where the file system is known to write
//! everything back and to report write-back errors through `syncfs` (Linux 5.8 and later): the
//! local journaling file systems listed in [`FileSystem::honours_syncfs`]. Everywhere else, and
//! whenever the type cannot be read, the caller `fsync`s each file.

use std::io;
use std::os::fd::AsFd;

/// The type of a file system, from `fstatfs(2)`'s magic number.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let fs = atomic_io::FileSystem::of(&std::fs::File::open(dir.path())?);
/// assert!(!fs.name().is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSystem {
    /// `f_type` (32 bits on every Linux file system), or `None` when `fstatfs` failed or the
    /// platform has no such number. Small on purpose: errors carry it.
    magic: Option<u32>,
}

const EXT234: u32 = 0xEF53;
const XFS: u32 = 0x5846_5342;
const BTRFS: u32 = 0x9123_683E;
const F2FS: u32 = 0xF2F5_2010;
const TMPFS: u32 = 0x0102_1994;
const FUSE: u32 = 0x6573_5546;

impl FileSystem {
    /// The file system holding the open file (or directory) `file`.
    pub fn of(file: impl AsFd) -> FileSystem {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            #[allow(clippy::unnecessary_cast)] // f_type's type differs between targets
            let magic = rustix::fs::fstatfs(file).ok().map(|st| st.f_type as i64 as u32);
            FileSystem { magic }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = file;
            FileSystem { magic: None }
        }
    }

    /// A name for messages: the usual suspects by name, others by magic number in hex.
    pub fn name(&self) -> String {
        let Some(magic) = self.magic else { return "unknown".to_owned() };
        match magic {
            EXT234 => "ext4".to_owned(),
            XFS => "xfs".to_owned(),
            BTRFS => "btrfs".to_owned(),
            F2FS => "f2fs".to_owned(),
            TMPFS => "tmpfs".to_owned(),
            FUSE => "fuse".to_owned(),
            0x6969 => "nfs".to_owned(),
            0xFF53_4D42 => "cifs".to_owned(),
            0xFE53_4D42 => "smb2".to_owned(),
            0x794C_7630 => "overlayfs".to_owned(),
            0x4d44 => "vfat".to_owned(),
            0x2011_BAB0 => "exfat".to_owned(),
            0x5346_544e => "ntfs".to_owned(),
            0x00C3_6400 => "ceph".to_owned(),
            other => format!("0x{other:x}"),
        }
    }

    /// Whether one `syncfs` makes every file written on this file system durable and reports
    /// its write-back errors: ext2/3/4, xfs, btrfs and f2fs (local, their `sync_fs` commits the
    /// journal or checkpoint), and tmpfs (nothing survives a power cut there anyway). Not FUSE
    /// (nothing is sent), not network or overlay file systems, not an unknown type.
    pub fn honours_syncfs(&self) -> bool {
        matches!(self.magic, Some(EXT234 | XFS | BTRFS | F2FS | TMPFS))
    }
}

/// One `syncfs(2)` for the file system holding `file`, where [`FileSystem::honours_syncfs`]:
/// `Ok(true)` then means every file written on it so far is durable. `Ok(false)`: nothing was
/// done (a file system that may ignore `syncfs`, or not Linux), so the caller must `fsync` each
/// file it needs durable. An error is the file system's write-back error.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("a"), b"a")?;
/// let file = std::fs::File::open(dir.path().join("a"))?;
/// if !atomic_io::sync_file_system(&file)? {
///     // Makes `a` durable on a file system that may ignore syncfs.
///     file.sync_all()?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn sync_file_system(file: impl AsFd) -> io::Result<bool> {
    if !FileSystem::of(&file).honours_syncfs() {
        return Ok(false);
    }
    #[cfg(target_os = "linux")]
    {
        // Makes everything written on this file system durable; the caller batches for this.
        rustix::fs::syncfs(file)?;
        Ok(true)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(false)
    }
}

/// The mount a device number (`st_dev`) belongs to, from `/proc/self/mountinfo`: the type as
/// mount(8) shows it (`fuse.ceph-fuse`, `nfs4`, `ceph`, where `fstatfs` only says FUSE or NFS)
/// and the mount point. For messages about a file system that failed; `None` when it cannot be
/// found (not Linux, no procfs, unmounted meanwhile).
///
/// ```
/// use std::os::unix::fs::MetadataExt;
/// let dev = std::fs::metadata("/")?.dev();
/// # #[cfg(target_os = "linux")]
/// assert_eq!(atomic_io::Mount::of_device(dev).map(|m| m.point), Some("/".into()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The file system type with its FUSE subtype, e.g. `fuse.ceph-fuse`.
    pub fs_type: String,
    /// Where it is mounted.
    pub point: std::path::PathBuf,
}

impl Mount {
    /// The mount of `dev` (an `st_dev`), if `/proc/self/mountinfo` lists it.
    pub fn of_device(dev: u64) -> Option<Mount> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let want = format!("{}:{}", rustix::fs::major(dev), rustix::fs::minor(dev));
        text.lines().filter_map(parse_mountinfo_line).find(|(id, _)| *id == want).map(|(_, m)| m)
    }
}

/// `36 35 98:0 /root /mnt rw - ext4 /dev/root rw`: the device's `major:minor` and the mount.
fn parse_mountinfo_line(line: &str) -> Option<(&str, Mount)> {
    let mut fields = line.split(' ');
    let id = fields.nth(2)?;
    let point = unescape_octal(fields.nth(1)?);
    let fs_type = fields.skip_while(|f| *f != "-").nth(1)?.to_owned();
    Some((id, Mount { fs_type, point }))
}

/// Undoes mountinfo's `\ooo` escaping of spaces, tabs, newlines and backslashes in paths.
fn unescape_octal(field: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) if bytes[i] == b'\\' => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8).wrapping_add(b - b'0')));
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out).into()
}

impl std::fmt::Display for FileSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_local_file_systems_are_trusted_with_syncfs() {
        assert!(FileSystem { magic: Some(EXT234) }.honours_syncfs());
        assert!(FileSystem { magic: Some(XFS) }.honours_syncfs());
        assert!(!FileSystem { magic: Some(FUSE) }.honours_syncfs());
        assert!(!FileSystem { magic: Some(0x6969) }.honours_syncfs());
        assert!(!FileSystem { magic: None }.honours_syncfs());
        assert_eq!(FileSystem { magic: Some(FUSE) }.name(), "fuse");
        assert_eq!(FileSystem { magic: Some(0x1234) }.name(), "0x1234");
    }

    #[test]
    fn mountinfo_lines_give_the_device_type_and_unescaped_point() {
        let line =
            "52 30 0:48 / /mnt/ceph\\040fs rw,nosuid - fuse.ceph-fuse ceph-fuse rw,user_id=0";
        let (id, mount) = parse_mountinfo_line(line).unwrap();
        assert_eq!(id, "0:48");
        assert_eq!(mount.fs_type, "fuse.ceph-fuse");
        assert_eq!(mount.point, std::path::Path::new("/mnt/ceph fs"));
        assert_eq!(parse_mountinfo_line("garbage"), None);
    }
}

//! The few system calls std lacks (through rustix, no `unsafe`), and small file-system helpers.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use checksum::Timestamp;
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};

/// Device and inode: what makes two paths the same file.
pub(crate) fn dev_ino(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// Opens a source file for reading without following a final symlink and without blocking on a
/// FIFO that replaced it since the walk (`O_NONBLOCK` changes nothing for regular files). The caller
/// checks the type with `fstat` before reading.
pub(crate) fn open_source(path: &Path) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
}

/// Tells the kernel the file is read once, front to back (larger read-ahead). Advisory only.
pub(crate) fn advise_sequential(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::Sequential);
}

/// Gives `to` the owner and group of the source (`from`), as `cp -a` does, when they differ from
/// the ones a new file of this process gets (`ours`, from [`effective_owner`]); then sets `mode` again where it has set-id bits,
/// which the kernel clears on a chown. Fails where the process may not give files away (not
/// root) or the file system keeps no owners.
pub(crate) fn copy_owner(
    from: &Metadata,
    to: &File,
    mode: Option<u32>,
    ours: (u32, u32),
) -> io::Result<()> {
    use rustix::fs::{Gid, Uid};
    let (uid, gid) = (from.uid(), from.gid());
    if (uid, gid) == ours {
        return Ok(());
    }
    rustix::fs::fchown(to, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    if let Some(mode) = mode.filter(|mode| mode & 0o6000 != 0) {
        rustix::fs::fchmod(to, Mode::from_raw_mode(mode))?;
    }
    Ok(())
}

/// Gives the entry at `path` the user and group ids `owner` (a directory's or a symlink's, as
/// `cp -a` keeps them) when they differ from `ours`, in one `fchownat`. A symlink is changed
/// itself, never its target, unless `follow` (DST itself, which the user named). Fails where the
/// process may not give files away (not root) or the file system keeps no owners.
pub(crate) fn copy_owner_at(
    path: &Path,
    owner: (u32, u32),
    ours: (u32, u32),
    follow: bool,
) -> io::Result<()> {
    use rustix::fs::{Gid, Uid};
    if owner == ours {
        return Ok(());
    }
    let flags = if follow { AtFlags::empty() } else { AtFlags::SYMLINK_NOFOLLOW };
    let (uid, gid) = (Uid::from_raw(owner.0), Gid::from_raw(owner.1));
    Ok(rustix::fs::chownat(rustix::fs::CWD, path, Some(uid), Some(gid), flags)?)
}

/// This process's effective user and group ids (what a new file is owned by, unless its
/// directory hands down its group).
pub(crate) fn effective_owner() -> (u32, u32) {
    (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw())
}

/// Copies the extended attributes of the open file `from` onto the open file `to`. A source file
/// system without them is a file without them; any other error is returned as it is (the caller
/// warns once and copies on without them).
pub(crate) fn copy_xattrs(from: &File, to: &File) -> io::Result<()> {
    let size = match rustix::fs::flistxattr_query(from) {
        Ok(0) | Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Ok(size) => size,
        Err(err) => return Err(err.into()),
    };
    let mut names = vec![0u8; size];
    let len = rustix::fs::flistxattr(from, &mut names[..])?;
    for name in names[..len.min(size)].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = OsStr::from_bytes(name);
        let mut value = vec![0u8; rustix::fs::fgetxattr_query(from, name)?];
        let got = rustix::fs::fgetxattr(from, name, &mut value[..])?;
        rustix::fs::fsetxattr(to, name, &value[..got], rustix::fs::XattrFlags::empty())?;
    }
    Ok(())
}

/// The offset of the first hole at or after `from` (the end of the file counts as one); the file
/// offset is left at `from`.
pub(crate) fn next_hole(file: &File, from: u64) -> io::Result<u64> {
    let hole = match rustix::fs::seek(file, rustix::fs::SeekFrom::Hole(from)) {
        Ok(hole) => hole,
        // At or past the end: the end is the hole.
        Err(rustix::io::Errno::NXIO) => from,
        Err(err) => return Err(err.into()),
    };
    rustix::fs::seek(file, rustix::fs::SeekFrom::Start(from))?;
    Ok(hole)
}

/// The offset of the first data at or after `from`, with the file offset moved there; `None` when
/// only a hole follows.
pub(crate) fn next_data(file: &File, from: u64) -> io::Result<Option<u64>> {
    match rustix::fs::seek(file, rustix::fs::SeekFrom::Data(from)) {
        Ok(at) => Ok(Some(at)),
        Err(rustix::io::Errno::NXIO) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Opens `path` afresh and drops its cached pages, so that what is read next comes from below the
/// page cache. The pages must be clean (the file synced): `DONTNEED` leaves dirty pages alone.
pub(crate) fn open_uncached(path: &Path) -> io::Result<File> {
    let file = File::open(path)?;
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)?;
    Ok(file)
}

/// Sets the mtime of `path` itself (a symlink is not followed), leaving its atime alone.
pub(crate) fn set_mtime_nofollow(path: &Path, mtime: Timestamp) -> io::Result<()> {
    set_mtime(path, mtime, AtFlags::SYMLINK_NOFOLLOW)
}

/// Sets the mtime of what `path` names, following symlinks, leaving its atime alone.
pub(crate) fn set_mtime_follow(path: &Path, mtime: Timestamp) -> io::Result<()> {
    set_mtime(path, mtime, AtFlags::empty())
}

/// Sets the mtime, and the atime to the same instant: exfat-fuse ignores an mtime whose atime
/// is left alone (`UTIME_OMIT`), and access times are not kept anyway.
fn set_mtime(path: &Path, mtime: Timestamp, flags: AtFlags) -> io::Result<()> {
    let times = Timestamps { last_access: timespec(mtime), last_modification: timespec(mtime) };
    Ok(rustix::fs::utimensat(rustix::fs::CWD, path, &times, flags)?)
}

fn timespec(t: Timestamp) -> Timespec {
    Timespec { tv_sec: t.sec, tv_nsec: t.nsec }
}

/// `name` with the case of every ASCII letter flipped (`Ab` -> `aB`).
pub(crate) fn flip_case(name: &OsStr) -> OsString {
    let flipped = name.as_bytes().iter().map(|&b| {
        if b.is_ascii_lowercase() {
            b.to_ascii_uppercase()
        } else if b.is_ascii_uppercase() {
            b.to_ascii_lowercase()
        } else {
            b
        }
    });
    OsString::from_vec(flipped.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtimes_set_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        let want = Timestamp { sec: 1_000_000_000, nsec: 123_456_789 };
        set_mtime_nofollow(&path, want).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(Timestamp::mtime(&meta), want);
        assert_eq!(meta.modified().unwrap(), want.to_system_time());
    }

    #[test]
    fn flip_case_flips_ascii_letters_only() {
        assert_eq!(flip_case(OsStr::new("Game.ROM-é1")), "gAME.rom-é1");
        assert_eq!(flip_case(OsStr::from_bytes(b"A\xe9")), OsStr::from_bytes(b"a\xe9"));
    }
}

//! The few system calls std lacks, through rustix (no `unsafe`).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

/// Opens a directory for `renameat`/`unlinkat` and `fsync`: `O_DIRECTORY` makes a non-directory
/// fail with `ENOTDIR` instead of opening.
pub(crate) fn open_dir(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Opens a file for reading without following a final symlink and without blocking on a FIFO
/// (`O_NONBLOCK` has no effect on regular files). The caller checks the type with `fstat`.
pub(crate) fn open_nofollow_nonblock(path: &Path) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
}

/// Opens a file for reading, following symlinks, without blocking on a FIFO.
pub(crate) fn open_nonblock(path: &Path) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
}

/// `renameat(dir, from, dir, to)`: replaces `to` if it exists.
pub(crate) fn rename_replace(dir: &File, from: &OsStr, to: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::renameat(dir, from, dir, to)?)
}

/// The outcome of a no-clobber rename.
pub(crate) enum NoReplace {
    /// `from` now has the name `to` and no longer its own.
    Renamed,
    /// `to` exists; nothing changed.
    Exists,
    /// `to` was linked but removing the name `from` failed: the target is in place, the extra name
    /// is left (it matches the temp pattern, so `sweep` removes it once its lock is released).
    LinkedButNotUnlinked(io::Error),
}

/// Renames `from` to `to` in `dir` only if `to` does not exist: `renameat2(RENAME_NOREPLACE)`,
/// falling back to `linkat` + `unlinkat` where the file system or the kernel does not support the
/// flag (`EINVAL`, `ENOSYS`, `EOPNOTSUPP`).
pub(crate) fn rename_noreplace(dir: &File, from: &OsStr, to: &OsStr) -> io::Result<NoReplace> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    match rustix::fs::renameat_with(dir, from, dir, to, rustix::fs::RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(NoReplace::Renamed),
        Err(Errno::EXIST) => return Ok(NoReplace::Exists),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
        Err(err) => return Err(err.into()),
    }
    link_unlink(dir, from, to)
}

/// The fallback of [`rename_noreplace`]: `link` fails with `EEXIST` rather than replacing.
pub(crate) fn link_unlink(dir: &File, from: &OsStr, to: &OsStr) -> io::Result<NoReplace> {
    match rustix::fs::linkat(dir, from, dir, to, AtFlags::empty()) {
        Ok(()) => {}
        Err(Errno::EXIST) => return Ok(NoReplace::Exists),
        Err(err) => return Err(err.into()),
    }
    match unlink_at(dir, from) {
        Ok(()) => Ok(NoReplace::Renamed),
        Err(err) => Ok(NoReplace::LinkedButNotUnlinked(err)),
    }
}

/// `unlinkat(dir, name, 0)`.
pub(crate) fn unlink_at(dir: &File, name: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?)
}

/// Whether an error is `EPERM` (an unprivileged `fchown` to another owner).
pub(crate) fn is_eperm(err: &io::Error) -> bool {
    err.raw_os_error() == Some(Errno::PERM.raw_os_error())
}

/// Whether an error is `ENOTDIR`.
pub(crate) fn is_enotdir(err: &io::Error) -> bool {
    err.raw_os_error() == Some(Errno::NOTDIR.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_unlink_fallback_renames_or_refuses() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open_dir(tmp.path()).unwrap();
        std::fs::write(tmp.path().join("a"), b"a").unwrap();
        assert!(matches!(
            link_unlink(&dir, OsStr::new("a"), OsStr::new("b")).unwrap(),
            NoReplace::Renamed
        ));
        assert!(!tmp.path().join("a").exists());
        assert_eq!(std::fs::read(tmp.path().join("b")).unwrap(), b"a");

        std::fs::write(tmp.path().join("c"), b"c").unwrap();
        assert!(matches!(
            link_unlink(&dir, OsStr::new("c"), OsStr::new("b")).unwrap(),
            NoReplace::Exists
        ));
        assert_eq!(std::fs::read(tmp.path().join("b")).unwrap(), b"a", "existing file untouched");
        assert!(tmp.path().join("c").exists());
        assert!(matches!(
            rename_noreplace(&dir, OsStr::new("c"), OsStr::new("b")).unwrap(),
            NoReplace::Exists
        ));
    }

    #[test]
    fn open_dir_refuses_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"").unwrap();
        assert!(is_enotdir(&open_dir(&tmp.path().join("f")).unwrap_err()));
    }
}

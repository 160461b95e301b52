//! Opening files inside a snapshot without ever leaving it: no symlink is followed, at any
//! component, and nothing blocks (FIFOs, devices).
//!
//! On Linux `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` does it in one call. Where that
//! syscall is missing (kernels before 5.6, other Unix systems) or refused (some seccomp filters),
//! the path is opened one component at a time with `openat(O_NOFOLLOW)`, which is as strict and
//! only slower.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags};

/// A snapshot directory, held open so that every file is opened relative to it.
#[derive(Debug)]
pub(crate) struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// Flags for the final component: read-only, never through a symlink, never blocking on a FIFO
/// (`O_NONBLOCK` does not change how a regular file is read), never becoming a controlling tty.
fn file_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY
}

/// Flags for intermediate components: a real directory, not a symlink to one.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Set once `openat2` turned out not to exist here, so the fallback is used without asking again.
#[cfg(target_os = "linux")]
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

impl RootDir {
    /// Opens the directory the caller named (a symlink given here is followed: it is the user's
    /// own choice of snapshot, like `cd`).
    pub(crate) fn open(path: &Path) -> io::Result<RootDir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(RootDir { fd, path: path.to_path_buf() })
    }

    /// The path the directory was opened by.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open directory itself.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Opens `rel` (relative, made of normal components only) for reading, refusing any symlink on
    /// the way (`ELOOP`/`ENOTDIR`) and never blocking. The caller checks the file type on the
    /// returned descriptor.
    pub(crate) fn open_file(&self, rel: &Path) -> io::Result<File> {
        if rel.as_os_str().is_empty()
            || rel.components().any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a plain relative path inside the snapshot",
            ));
        }
        #[cfg(target_os = "linux")]
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            use rustix::fs::ResolveFlags;
            use rustix::io::Errno;
            let resolve =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&self.fd, rel, file_flags(), Mode::empty(), resolve) {
                Ok(fd) => return Ok(File::from(fd)),
                Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                // Refused by a seccomp filter or unknown to this kernel's openat2: fall back.
                Err(Errno::PERM | Errno::INVAL | Errno::TOOBIG) => {}
                Err(err) => return Err(err.into()),
            }
        }
        self.open_by_components(rel)
    }

    /// The portable way: one `openat(O_NOFOLLOW)` per component.
    pub(crate) fn open_by_components(&self, rel: &Path) -> io::Result<File> {
        let mut components: Vec<&std::ffi::OsStr> = Vec::new();
        for component in rel.components() {
            match component {
                Component::Normal(name) => components.push(name),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "not a plain relative path inside the snapshot",
                    ));
                }
            }
        }
        let Some((name, parents)) = components.split_last() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
        };
        let mut dir: Option<OwnedFd> = None;
        for parent in parents {
            let at: BorrowedFd<'_> = dir.as_ref().map_or(self.fd.as_fd(), AsFd::as_fd);
            dir = Some(rustix::fs::openat(at, *parent, dir_flags(), Mode::empty())?);
        }
        let at: BorrowedFd<'_> = dir.as_ref().map_or(self.fd.as_fd(), AsFd::as_fd);
        Ok(File::from(rustix::fs::openat(at, *name, file_flags(), Mode::empty())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, symlink};

    /// Both ways of opening must refuse the same things.
    fn both(root: &RootDir, rel: &str) -> [io::Result<File>; 2] {
        [root.open_file(Path::new(rel)), root.open_by_components(Path::new(rel))]
    }

    #[test]
    fn symlinks_are_refused_at_every_component() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"outside").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/f"), b"inside").unwrap();
        symlink(outside.path(), dir.path().join("out")).unwrap();
        symlink(outside.path().join("secret"), dir.path().join("leaf")).unwrap();
        symlink("real", dir.path().join("inner")).unwrap();
        let root = RootDir::open(dir.path()).unwrap();

        for result in both(&root, "real/f") {
            let mut text = String::new();
            result.unwrap().read_to_string(&mut text).unwrap();
            assert_eq!(text, "inside");
        }
        for rel in ["out/secret", "leaf", "inner/f"] {
            for result in both(&root, rel) {
                let err = result.unwrap_err();
                let code = err.raw_os_error();
                assert!(code == Some(libc_eloop()) || code == Some(libc_enotdir()), "{rel}: {err}");
            }
        }
        for rel in ["../x", "/etc/passwd", "./real/f", "real/../real/f", ""] {
            for result in both(&root, rel) {
                assert_eq!(result.unwrap_err().kind(), io::ErrorKind::InvalidInput, "{rel}");
            }
        }
    }

    #[test]
    fn a_fifo_opens_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("pipe"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let root = RootDir::open(dir.path()).unwrap();
        for result in both(&root, "pipe") {
            let file = result.unwrap();
            assert!(file.metadata().unwrap().file_type().is_fifo());
        }
    }

    fn libc_eloop() -> i32 {
        rustix::io::Errno::LOOP.raw_os_error()
    }
    fn libc_enotdir() -> i32 {
        rustix::io::Errno::NOTDIR.raw_os_error()
    }
}

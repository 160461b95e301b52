//! [`StatusWriter`]: the training-daemon story's status files, written only by the one running
//! instance, and always whole.

use std::os::unix::fs::MetadataExt;

use dir_lock::InstanceGuard;
use std::path::{Component, Path, PathBuf};

use crate::{Error, NameRefusal, Result};

/// The right to write a daemon's status files: holds the [`InstanceGuard`] on a pid file for as
/// long as it lives, and writes each file with [`atomic_io::write_atomic`] (temp, fsync, rename,
/// directory fsync), so a reader or a crash never sees half a status file.
///
/// A second daemon cannot get one while the first lives ([`dir_lock::Error::AlreadyRunning`],
/// naming its pid and command); a killed daemon never blocks the next one, because the kernel
/// frees the lock with the process.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use toolkit::prelude::*;
///
/// let status = StatusWriter::acquire(dir.join("trainer.pid"), dir)?;
/// status.write("status.json", br#"{"step": 1200, "loss": 0.31}"#)?;
/// assert_eq!(std::fs::read(dir.join("status.json"))?, br#"{"step": 1200, "loss": 0.31}"#);
/// // Another instance is refused while this one runs.
/// let second = StatusWriter::acquire(dir.join("trainer.pid"), dir).unwrap_err();
/// assert!(second.to_string().starts_with("already running: pid "), "{second}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct StatusWriter {
    _guard: InstanceGuard,
    dir: PathBuf,
    /// The pid file's device and inode: replacing it would swap the locked file for an unlocked
    /// one and let a second instance start, so it is never written as a status file.
    pid_file: (u64, u64),
}

impl StatusWriter {
    /// Takes the instance lock on `pid_file` (without waiting) for status files in `dir`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// let status = toolkit::StatusWriter::acquire(dir.join("d.pid"), dir)?;
    /// assert_eq!(status.dir(), dir);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(pid_file: impl AsRef<Path>, dir: impl AsRef<Path>) -> Result<Self> {
        let pid_file = pid_file.as_ref();
        let guard = InstanceGuard::acquire(pid_file)?;
        let meta = std::fs::metadata(pid_file)
            .map_err(|source| Error::Status { path: pid_file.to_owned(), source })?;
        Ok(StatusWriter {
            _guard: guard,
            dir: dir.as_ref().to_owned(),
            pid_file: (meta.dev(), meta.ino()),
        })
    }

    /// The directory status files are written in.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// let status = toolkit::StatusWriter::acquire(dir.join("d.pid"), dir.join("run"))?;
    /// assert!(status.dir().ends_with("run"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces `dir/name` with `bytes`, atomically and durably. The pid file itself (under any
    /// name, or through a symlink) is refused with [`Error::StatusIsPidFile`].
    ///
    /// `name` is relative to the directory and may go through subdirectories (`logs/last.json`);
    /// a name that is empty, absolute or holds `..` is refused with [`Error::StatusName`] before
    /// anything is written. Symbolic links already inside the directory are followed: whoever can
    /// put them there chose where they lead.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// let status = toolkit::StatusWriter::acquire(dir.join("d.pid"), dir)?;
    /// status.write("progress.json", b"{\"epoch\": 3}")?;
    /// status.write("progress.json", b"{\"epoch\": 4}")?;
    /// assert_eq!(std::fs::read_to_string(dir.join("progress.json"))?, "{\"epoch\": 4}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&self, name: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
        let name = name.as_ref();
        if let Some(reason) = refusal(name) {
            return Err(Error::StatusName { name: name.to_owned(), reason });
        }
        let path = self.dir.join(name);
        if std::fs::metadata(&path).is_ok_and(|m| (m.dev(), m.ino()) == self.pid_file) {
            return Err(Error::StatusIsPidFile { path });
        }
        Ok(atomic_io::write_atomic(path, bytes)?)
    }
}

/// Why `name` cannot be a status file name inside the directory, if it cannot.
fn refusal(name: &Path) -> Option<NameRefusal> {
    let mut names_a_file = false;
    for component in name.components() {
        match component {
            Component::RootDir | Component::Prefix(_) => return Some(NameRefusal::Absolute),
            Component::ParentDir => return Some(NameRefusal::ParentDir),
            Component::CurDir => {}
            Component::Normal(_) => names_a_file = true,
        }
    }
    (!names_a_file).then_some(NameRefusal::Empty)
}

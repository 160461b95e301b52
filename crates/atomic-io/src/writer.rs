//! [`AtomicFile`]: a temp file beside the target, locked while alive, synced and renamed onto the
//! target on commit, removed on discard or drop.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};

use std::path::{Path, PathBuf};

use crate::sys::{self, NoReplace};
use crate::{Error, Result, TEMP_RANDOM_LEN, TEMP_SUFFIX, is_temp_name, temp_prefix};

/// What a commit promises after a power cut (or kernel crash). Every level is atomic against
/// process crashes: the target is the old or the complete new content.
///
/// | level | `fsync`s | after a power cut during the write | after one once it returned |
/// |---|---|---|---|
/// | [`Full`](Durability::Full) | temp, then directory | old or complete new | new |
/// | [`OldOrNew`](Durability::OldOrNew) | temp | old or complete new | old or complete new |
/// | [`None`](Durability::None) | none | old, new, or empty/partial | old, new, or empty/partial |
///
/// Each holds on a file system that honours `fsync`; one whose `fsync` fails is an error, and
/// nothing is renamed onto the target then.
///
/// ```
/// use atomic_io::{Durability, WriteOptions};
/// assert_eq!(WriteOptions::default().durability, Durability::Full);
/// let mut cheaper = WriteOptions::default();
/// cheaper.durability = Durability::OldOrNew;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `fsync` the temp file before the rename and the directory after it: once the commit
    /// returns, the new content survives a power cut; before that, the old content does.
    #[default]
    Full,
    /// `fsync` the temp file before the rename, but not the directory after it: a power cut
    /// leaves the old or the complete new content, never an empty or partial file, but may undo
    /// a commit that had returned (the rename). One `fsync` fewer than [`Full`](Durability::Full).
    OldOrNew,
    /// No `fsync` at all: atomic against process crashes only. After a power cut the target may
    /// be the old content, the new content, or (ext4 without `auto_da_alloc`, xfs) an empty or
    /// partial file.
    None,
}

impl Durability {
    /// Whether the data is synced before the rename (every level but [`None`](Durability::None)).
    pub fn syncs_data(self) -> bool {
        self != Durability::None
    }

    /// Whether the directory is synced after the rename ([`Full`](Durability::Full) only).
    pub fn syncs_dir(self) -> bool {
        self == Durability::Full
    }
}

/// What a commit does when the target already exists.
///
/// ```
/// use atomic_io::{Overwrite, WriteOptions};
/// let mut no_clobber = WriteOptions::default();
/// no_clobber.overwrite = Overwrite::Refuse;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overwrite {
    /// Replace it atomically (`rename`).
    #[default]
    Replace,
    /// Fail with [`Error::TargetExists`] and leave it untouched (`renameat2(RENAME_NOREPLACE)`,
    /// or `link` + `unlink` where that is unsupported). Checked again atomically at commit time, so
    /// two no-clobber writers racing for one path never both succeed.
    Refuse,
}

/// How to write a file atomically. `Default` is durable, replacing, with the mode rules of the
/// crate docs.
///
/// ```
/// use atomic_io::WriteOptions;
/// let mut exact_mode = WriteOptions::default();
/// exact_mode.mode = Some(0o600);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WriteOptions {
    /// `fsync`s or not.
    pub durability: Durability,
    /// Replace an existing target or refuse to.
    pub overwrite: Overwrite,
    /// An exact mode for the new file (`0o7777` bits), instead of the replaced file's mode or
    /// `0o666` filtered by the umask.
    pub mode: Option<u32>,
}

/// How many symlinks are followed from a target before giving up (Linux's limit).
const MAX_SYMLINKS: usize = 40;
/// How many fresh temp names are tried when a sweep keeps taking the newly created one.
const LOCK_ATTEMPTS: usize = 16;

/// A new version of a file being written: a temp file in the target's directory, created
/// exclusively under the crate's temp-name pattern and exclusively `flock`ed for as long as this
/// value lives.
///
/// Nothing is visible at the target until [`commit`](AtomicFile::commit) (or
/// [`stage`](AtomicFile::stage) then [`Staged::rename`]). Dropping it uncommitted removes the temp
/// file; errors while removing it in `drop` are ignored (the temp then stays and, its lock being
/// released, [`sweep()`](crate::sweep::sweep) removes it). Use [`discard`](AtomicFile::discard)
/// to see them.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use std::io::Write;
/// use atomic_io::{AtomicFile, WriteOptions};
///
/// let target = dir.join("model.bin");
/// let mut file = AtomicFile::create(&target, &WriteOptions::default())?;
/// file.write_all(b"weights")?;
/// assert!(!target.exists());               // still only the temp
/// file.commit()?;
/// assert_eq!(std::fs::read(&target)?, b"weights");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    temp: Temp,
}

/// A temp file that has been flushed and (with [`Durability::Full`]) synced, still locked, not yet
/// renamed onto its target. Dropping it removes the temp file.
///
/// Splitting [`AtomicFile::commit`] in two lets a caller re-read the synced temp for verification
/// before it becomes visible, or rename many files and sync their directory once with
/// [`sync_dir`].
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// use std::io::Write;
/// use atomic_io::{AtomicFile, WriteOptions, sync_dir};
///
/// let mut staged = Vec::new();
/// for name in ["a", "b", "c"] {
///     let mut file = AtomicFile::create(dir.join(name), &WriteOptions::default())?;
///     file.write_all(name.as_bytes())?;
///     staged.push(file.stage()?);          // written and fsynced, not visible
/// }
/// for file in staged {
///     file.rename()?;                      // visible, directory not synced yet
/// }
/// sync_dir(dir)?;                          // one directory fsync for the three renames
/// assert_eq!(std::fs::read(dir.join("b"))?, b"b");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Staged {
    temp: Temp,
}

/// The state shared by [`AtomicFile`] and [`Staged`]; its `Drop` removes the temp unless committed.
#[derive(Debug)]
struct Temp {
    /// The temp file, open read-write and exclusively flocked.
    file: File,
    /// The target's directory, for `renameat`/`unlinkat` by name and for its `fsync`.
    dir: File,
    /// The directory as displayed in messages (`.` for a bare file name).
    dir_path: PathBuf,
    temp_name: OsString,
    temp_path: PathBuf,
    /// The file the rename replaces (symlinks followed).
    target: PathBuf,
    target_name: OsString,
    opts: WriteOptions,
    /// Whether dropping this removes the temp file (false once renamed or removed).
    armed: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.armed {
            // Removed while the lock is still held (`self.file` closes after this body), so a sweep
            // never sees this temp unlocked. An error here leaves an unlocked, sweepable temp.
            let _ = sys::unlink_at(&self.dir, &self.temp_name);
        }
    }
}

impl AtomicFile {
    /// Creates the temp file for a new version of `target`, beside it, and locks it.
    ///
    /// `target` may be a symlink (also a dangling one): the file it finally points to is the one
    /// replaced, and the link stays. Fails with a typed error when `target` is a directory or a
    /// special file, when its directory is missing or not writable, when its name matches the temp
    /// pattern, and early (before any data) when [`Overwrite::Refuse`] is set and it exists.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, Error, WriteOptions, is_temp_name};
    ///
    /// let file = AtomicFile::create(dir.join("out.txt"), &WriteOptions::default())?;
    /// assert!(is_temp_name(file.temp_path().file_name().unwrap().as_ref()));
    /// assert_eq!(file.temp_path().parent(), Some(dir));
    ///
    /// let err = AtomicFile::create(dir, &WriteOptions::default()).unwrap_err();
    /// assert!(matches!(err, Error::IsDirectory { .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(target: impl AsRef<Path>, opts: &WriteOptions) -> Result<AtomicFile> {
        let given = target.as_ref();
        let (target, status) = resolve_symlinks(given)?;
        let Some(target_name) = target.file_name().map(OsStr::to_owned) else {
            return Err(Error::InvalidTarget {
                path: given.to_owned(),
                reason: "it does not name a file",
            });
        };
        if is_temp_name(&target_name) {
            return Err(Error::InvalidTarget {
                path: given.to_owned(),
                reason: "its name matches the temp-file pattern that sweep removes",
            });
        }
        let parent = target.parent().unwrap_or(Path::new("")).to_owned();
        let dir_path =
            if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent.clone() };

        // The `lstat` that ended the resolution, of a path that is not a symlink: what `stat`
        // would say of it, without asking again.
        let existing = match status {
            Ok(meta) if meta.is_dir() => return Err(Error::IsDirectory { path: target }),
            Ok(meta) if !meta.is_file() => {
                let kind = names::FileKind::of(&meta).unwrap_or(names::FileKind::Other);
                return Err(Error::NotAFile { path: target, kind });
            }
            Ok(meta) => Some(meta),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) if sys::is_enotdir(&err) => {
                return Err(Error::ParentNotDirectory { path: target, parent: dir_path });
            }
            Err(source) => return Err(Error::Inspect { path: target, source }),
        };
        if existing.is_some() && opts.overwrite == Overwrite::Refuse {
            return Err(Error::TargetExists { path: target });
        }
        let dir = sys::open_dir(&dir_path).map_err(|source| {
            let parent = dir_path.clone();
            match source.kind() {
                io::ErrorKind::NotFound => Error::MissingParent { path: target.clone(), parent },
                _ if sys::is_enotdir(&source) => {
                    Error::ParentNotDirectory { path: target.clone(), parent }
                }
                _ => Error::OpenDir { dir: parent, source },
            }
        })?;

        // Never wider than the final mode, so no one can open the temp while it is more readable
        // than the file it becomes. For a new file the kernel applies the umask to 0o666.
        let create_mode = match (opts.mode, &existing) {
            (Some(mode), _) => mode & 0o777,
            (None, Some(meta)) => meta.mode() & 0o777,
            (None, None) => 0o666,
        };
        let (file, temp_name, status) =
            create_locked(&dir, &dir_path, &target, &target_name, create_mode)?;
        let temp = Temp {
            temp_path: parent.join(&temp_name),
            file,
            dir,
            dir_path,
            temp_name,
            target,
            target_name,
            opts: *opts,
            armed: true,
        };
        set_permissions(&temp, status, opts.mode, existing.as_ref())?;
        Ok(AtomicFile { temp })
    }

    /// The file the commit replaces: the given target with symlinks followed.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// std::os::unix::fs::symlink("real.txt", dir.join("link.txt"))?;
    /// let file = AtomicFile::create(dir.join("link.txt"), &WriteOptions::default())?;
    /// assert_eq!(file.target(), dir.join("real.txt"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn target(&self) -> &Path {
        &self.temp.target
    }

    /// The temp file's path: in the target's directory, relative if the target was given relative.
    ///
    /// Another process may write to it by path (the lock belongs to this value, not the path), as
    /// long as it writes the same inode rather than replacing the path.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let file = AtomicFile::create(dir.join("out"), &WriteOptions::default())?;
    /// std::fs::write(file.temp_path(), b"written by someone else")?;
    /// file.commit()?;
    /// assert_eq!(std::fs::read(dir.join("out"))?, b"written by someone else");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn temp_path(&self) -> &Path {
        &self.temp.temp_path
    }

    /// The open temp file (read-write).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let file = AtomicFile::create(dir.join("out"), &WriteOptions::default())?;
    /// assert_eq!(file.as_file().metadata()?.len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_file(&self) -> &File {
        &self.temp.file
    }

    /// The open temp file, mutably (e.g. for `std::io::copy` or `set_len`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let mut file = AtomicFile::create(dir.join("out"), &WriteOptions::default())?;
    /// std::io::copy(&mut &b"abc"[..], file.as_file_mut())?;
    /// file.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_file_mut(&mut self) -> &mut File {
        &mut self.temp.file
    }

    /// Writes all of `bytes` to the temp file, with an error naming the temp and the target
    /// ([`Error::Write`]) instead of a bare `io::Error`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let mut file = AtomicFile::create(dir.join("out"), &WriteOptions::default())?;
    /// file.append(b"one ")?;
    /// file.append(b"two")?;
    /// file.commit()?;
    /// assert_eq!(std::fs::read(dir.join("out"))?, b"one two");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.temp.file.write_all(bytes).map_err(|source| Error::Write {
            temp: self.temp.temp_path.clone(),
            target: self.temp.target.clone(),
            source,
        })
    }

    /// Flushes the temp file and, with [`Durability::Full`], `fsync`s it. Nothing is visible at the
    /// target yet; the temp stays locked. On error the temp is removed.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let mut file = AtomicFile::create(dir.join("out"), &WriteOptions::default())?;
    /// file.append(b"data")?;
    /// let staged = file.stage()?;
    /// assert_eq!(std::fs::read(staged.temp_path())?, b"data");
    /// staged.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stage(self) -> Result<Staged> {
        let mut temp = self.temp;
        let t = &mut temp;
        t.file.flush().map_err(|source| Error::Write {
            temp: t.temp_path.clone(),
            target: t.target.clone(),
            source,
        })?;
        if t.opts.durability.syncs_data() {
            // Makes the new content (and size) durable before the rename can make it visible;
            // otherwise a power loss after the rename can leave a 0-byte or partial target.
            t.file.sync_all().map_err(|source| Error::SyncTemp {
                temp: t.temp_path.clone(),
                target: t.target.clone(),
                fs: crate::FileSystem::of(&t.file),
                source,
            })?;
        }
        Ok(Staged { temp })
    }

    /// Makes the new content the target's: [`stage`](AtomicFile::stage), rename onto the target,
    /// and with [`Durability::Full`] `fsync` the directory. On error before the rename the target
    /// is untouched and the temp is removed.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let mut file = AtomicFile::create(dir.join("out"), &WriteOptions::default())?;
    /// file.append(b"new")?;
    /// file.commit()?;
    /// assert_eq!(std::fs::read(dir.join("out"))?, b"new");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commit(self) -> Result<()> {
        self.stage()?.commit()
    }

    /// Abandons the new content: removes the temp file (while still holding its lock) and reports
    /// an error if that fails. The target is untouched.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let file = AtomicFile::create(dir.join("out"), &WriteOptions::default())?;
    /// let temp = file.temp_path().to_owned();
    /// file.discard()?;
    /// assert!(!temp.exists() && !dir.join("out").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn discard(self) -> Result<()> {
        self.temp.discard()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.file.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.temp.file.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.file.flush()
    }
}

impl Staged {
    /// The synced temp file's path.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let staged = AtomicFile::create(dir.join("out"), &WriteOptions::default())?.stage()?;
    /// assert!(staged.temp_path().exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn temp_path(&self) -> &Path {
        &self.temp.temp_path
    }

    /// The file the rename replaces (symlinks followed).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let staged = AtomicFile::create(dir.join("out"), &WriteOptions::default())?.stage()?;
    /// assert_eq!(staged.target(), dir.join("out"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn target(&self) -> &Path {
        &self.temp.target
    }

    /// The open temp file, e.g. to re-read it for verification (seek to the start first).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use std::io::{Read, Seek};
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let mut file = AtomicFile::create(dir.join("out"), &WriteOptions::default())?;
    /// file.append(b"check me")?;
    /// let staged = file.stage()?;
    /// let mut back = String::new();
    /// let mut f = staged.as_file();
    /// f.rewind()?;
    /// f.read_to_string(&mut back)?;
    /// assert_eq!(back, "check me");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_file(&self) -> &File {
        &self.temp.file
    }

    /// Renames the temp onto the target (honouring [`Overwrite`]) WITHOUT syncing the directory:
    /// for callers that rename many files and call [`sync_dir`] once. Until that sync, a power
    /// loss may undo the rename (never make the target partial).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions, sync_dir};
    /// let mut file = AtomicFile::create(dir.join("out"), &WriteOptions::default())?;
    /// file.append(b"x")?;
    /// file.stage()?.rename()?;
    /// sync_dir(dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rename(mut self) -> Result<()> {
        self.temp.rename()
    }

    /// Renames the temp onto the target and, with [`Durability::Full`], `fsync`s the directory.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let mut file = AtomicFile::create(dir.join("out"), &WriteOptions::default())?;
    /// file.append(b"x")?;
    /// file.stage()?.commit()?;
    /// assert_eq!(std::fs::read(dir.join("out"))?, b"x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commit(mut self) -> Result<()> {
        self.temp.rename()?;
        if self.temp.opts.durability.syncs_dir() {
            // Makes the rename itself durable: without it a power loss can bring back the old
            // directory entry (the old content) after the commit returned.
            self.temp.dir.sync_all().map_err(|source| Error::SyncDir {
                dir: self.temp.dir_path.clone(),
                fs: crate::FileSystem::of(&self.temp.dir),
                source,
            })?;
        }
        Ok(())
    }

    /// Removes the temp file; the target is untouched.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dir = dir.path();
    /// use atomic_io::{AtomicFile, WriteOptions};
    /// let staged = AtomicFile::create(dir.join("out"), &WriteOptions::default())?.stage()?;
    /// staged.discard()?;
    /// assert_eq!(std::fs::read_dir(dir)?.count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn discard(self) -> Result<()> {
        self.temp.discard()
    }
}

impl Temp {
    fn rename(&mut self) -> Result<()> {
        let rename_error = |t: &Temp, source| Error::Rename {
            temp: t.temp_path.clone(),
            target: t.target.clone(),
            source,
        };
        match self.opts.overwrite {
            Overwrite::Replace => {
                sys::rename_replace(&self.dir, &self.temp_name, &self.target_name)
                    .map_err(|source| rename_error(self, source))?;
                self.armed = false;
                Ok(())
            }
            Overwrite::Refuse => {
                match sys::rename_noreplace(&self.dir, &self.temp_name, &self.target_name) {
                    Ok(NoReplace::Renamed) => {
                        self.armed = false;
                        Ok(())
                    }
                    Ok(NoReplace::Exists) => Err(Error::TargetExists { path: self.target.clone() }),
                    // The target holds the new content; the temp name is a second link to it,
                    // which drop tries once more to remove.
                    Ok(NoReplace::LinkedButNotUnlinked(source)) => {
                        Err(Error::RemoveTemp { temp: self.temp_path.clone(), source })
                    }
                    Err(source) => Err(rename_error(self, source)),
                }
            }
        }
    }

    fn discard(mut self) -> Result<()> {
        self.armed = false;
        sys::unlink_at(&self.dir, &self.temp_name)
            .map_err(|source| Error::RemoveTemp { temp: self.temp_path.clone(), source })
    }
}

/// Creates a temp file named for `target_name` in `dir` and takes its exclusive lock; returns it
/// with its name and its status as taken after the lock.
///
/// Between `open(O_EXCL)` and `flock` a sweep could lock and remove the new file. So after locking,
/// a temp that no longer has a name (`nlink == 0`) is abandoned for a fresh one, and a temp whose
/// lock is held by someone else (a sweep about to remove it) is removed and replaced too. Once the
/// lock is ours and the file still has its name, no sweep can remove it.
fn create_locked(
    dir: &File,
    dir_path: &Path,
    target: &Path,
    target_name: &OsStr,
    mode: u32,
) -> Result<(File, OsString, Metadata)> {
    let prefix = temp_prefix(target_name);
    let mut last_temp = dir_path.join(&prefix);
    for _ in 0..LOCK_ATTEMPTS {
        let create_error = |source| Error::CreateTemp {
            dir: dir_path.to_owned(),
            target: target.to_owned(),
            source,
        };
        // The open tempfile's own `tempfile_in` makes, but through `make_in`: its error is then
        // the system's as it is, not one that appends the temp path unescaped.
        let named = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(TEMP_SUFFIX)
            .rand_bytes(TEMP_RANDOM_LEN)
            .make_in(dir_path, |path| {
                File::options().read(true).write(true).create_new(true).mode(mode).open(path)
            })
            .map_err(create_error)?;
        let (file, path) = named.into_parts();
        // `keep` only disarms tempfile's own removal-on-drop; `Temp` takes over that duty.
        let path = path.keep().map_err(|err| create_error(err.error))?;
        let Some(temp_name) = path.file_name().map(OsStr::to_owned) else {
            let _ = std::fs::remove_file(&path);
            return Err(create_error(io::Error::other("temp path has no file name")));
        };
        last_temp = dir_path.join(&temp_name);
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {
                match file.metadata() {
                    Ok(meta) if meta.nlink() > 0 => return Ok((file, temp_name, meta)),
                    Ok(_) => continue, // a sweep removed it before we locked it
                    Err(source) => {
                        let _ = sys::unlink_at(dir, &temp_name);
                        return Err(Error::Lock { temp: last_temp, source });
                    }
                }
            }
            Err(fs4::TryLockError::WouldBlock) => {
                // A sweep holds it and is removing it; make sure it goes, then take a new name.
                let _ = sys::unlink_at(dir, &temp_name);
            }
            Err(fs4::TryLockError::Error(source)) => {
                let _ = sys::unlink_at(dir, &temp_name);
                return Err(Error::Lock { temp: last_temp, source });
            }
        }
    }
    Err(Error::Lock {
        temp: last_temp,
        source: io::Error::new(
            io::ErrorKind::WouldBlock,
            "every new temp file was locked by a concurrent sweep before its writer could lock it",
        ),
    })
}

/// Gives the temp file its final mode (and owner, where permitted) before any data is written.
/// `ours` is the temp's status since its creation (`create_locked`'s).
fn set_permissions(
    temp: &Temp,
    ours: Metadata,
    mode: Option<u32>,
    existing: Option<&Metadata>,
) -> Result<()> {
    let perm_error = |source| Error::Permissions {
        temp: temp.temp_path.clone(),
        target: temp.target.clone(),
        source,
    };
    let mut current = ours;
    let mode = match (mode, existing) {
        (Some(mode), _) => mode & 0o7777,
        (None, Some(old)) => {
            if (current.uid(), current.gid()) != (old.uid(), old.gid()) {
                // Root may give the file back to its owner; others may at most pick one of their
                // groups. EPERM means "not permitted": the new file keeps the writer's ownership.
                let chown = std::os::unix::fs::fchown(&temp.file, Some(old.uid()), Some(old.gid()))
                    .or_else(|err| {
                        if sys::is_eperm(&err) {
                            std::os::unix::fs::fchown(&temp.file, None, Some(old.gid()))
                        } else {
                            Err(err)
                        }
                    });
                match chown {
                    // A chown clears set-id bits: the mode below is compared with what is left.
                    Ok(()) => current = temp.file.metadata().map_err(perm_error)?,
                    Err(err) if sys::is_eperm(&err) => {}
                    Err(err) => return Err(perm_error(err)),
                }
            }
            // After fchown, which clears set-id bits.
            old.mode() & 0o7777
        }
        // Created with 0o666 & ~umask by the kernel already.
        (None, None) => return Ok(()),
    };
    // A file system that keeps no modes (FAT through FUSE) may refuse any `chmod` (ENOSYS): one
    // that would change nothing is not made.
    if current.mode() & 0o7777 == mode {
        return Ok(());
    }
    temp.file.set_permissions(Permissions::from_mode(mode)).map_err(perm_error)
}

/// Follows symlinks from `path` to the file they finally name (which need not exist); returns it
/// with the result of its `lstat` (not found, or not a directory on the way, are left for the
/// caller to judge).
fn resolve_symlinks(path: &Path) -> Result<(PathBuf, io::Result<Metadata>)> {
    let mut current = path.to_owned();
    for _ in 0..=MAX_SYMLINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&current)
                    .map_err(|source| Error::Symlink { path: current.clone(), source })?;
                current = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            Ok(meta) => return Ok((current, Ok(meta))),
            Err(err) if err.kind() == io::ErrorKind::NotFound || sys::is_enotdir(&err) => {
                return Ok((current, Err(err)));
            }
            Err(source) => return Err(Error::Inspect { path: current, source }),
        }
    }
    Err(Error::SymlinkLoop { path: path.to_owned() })
}

/// Replaces the file at `path` with `bytes` atomically and durably ([`Durability::Full`],
/// [`Overwrite::Replace`], mode kept or `0o666 & ~umask`).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// atomic_io::write_atomic(dir.join("status.json"), br#"{"ok": true}"#)?;
/// assert_eq!(std::fs::read(dir.join("status.json"))?, br#"{"ok": true}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path, &WriteOptions::default())?;
    file.append(bytes)?;
    file.commit()
}

/// `fsync`s a directory, making the renames and creations in it durable. Use it once after
/// several [`Staged::rename`]s.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let dir = dir.path();
/// atomic_io::sync_dir(dir)?;
/// assert!(atomic_io::sync_dir(dir.join("missing")).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn sync_dir(dir: impl AsRef<Path>) -> Result<()> {
    let dir = dir.as_ref();
    let file =
        sys::open_dir(dir).map_err(|source| Error::OpenDir { dir: dir.to_owned(), source })?;
    // Makes the directory's entries (renames, new names) durable; the caller asked for exactly that.
    file.sync_all().map_err(|source| Error::SyncDir {
        dir: dir.to_owned(),
        fs: crate::FileSystem::of(&file),
        source,
    })
}

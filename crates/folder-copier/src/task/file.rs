//! The per-file copy: whether a file is already up to date in DST, and if not one attempt at
//! writing it: the source read once, each buffer hashed and appended to an atomic-io temp beside
//! the destination, the source checked unchanged, then the temp's size and (with `verify`) its
//! bytes read back and compared. Durability and the rename are the batch's (`batch`).

use std::fs::{FileTimes, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::sync::atomic::Ordering;

use atomic_io::{AtomicFile, Durability, Overwrite, Staged, WriteOptions};
use checksum::{Algo, Digest, FileKind, Hasher, Stamp, Timestamp};

use super::{DirTask, Job};
use crate::sys;
use crate::{FileError, Result, Warning};

/// Bytes per `read`/`write`: large enough that syscalls cost little, small enough to stay in L2
/// cache while the same bytes are hashed and written (checksum's measured buffer size).
pub(crate) const BUF_SIZE: usize = checksum::BUF_SIZE;

/// A temp file written and hashed, not yet synced, verified or renamed.
pub(super) struct Written {
    pub(super) temp: AtomicFile,
    pub(super) digest: Digest,
    pub(super) len: u64,
    /// The attempt (1-based) that wrote it.
    pub(super) attempt: u32,
}

/// What became of a file before its batch: up to date, or written to a temp.
pub(super) enum Prepared {
    /// Up to date; its size.
    Skip(u64),
    Written(Written),
}

impl DirTask<'_, '_> {
    /// Decides whether the file is skipped, and if not writes its temp (with retries).
    /// `Ok(None)`: cancelled.
    pub(super) fn prepare(&mut self, job: &Job<'_>) -> Result<Option<Prepared>, FileError> {
        // The destination first: where nothing is there (a first copy), there is nothing to
        // compare with, and the source's status is taken once, on its open descriptor, by
        // `write_temp`, which refuses anything but a regular file as this `lstat` would.
        let dst_meta = match std::fs::symlink_metadata(&job.dst) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(self.write_with_retries(job, 1)?.map(Prepared::Written));
            }
            Err(source) => {
                return Err(FileError::Destination {
                    action: "inspect",
                    path: job.dst.clone(),
                    source,
                });
            }
        };
        let src_meta = std::fs::symlink_metadata(&job.src)
            .map_err(|source| FileError::Open { path: job.src.clone(), source })?;
        if let Some(kind) = FileKind::of(&src_meta) {
            return Err(FileError::NotRegular { path: job.src.clone(), kind });
        }
        if self.up_to_date(job, &src_meta, &dst_meta)? {
            return Ok(Some(Prepared::Skip(src_meta.len())));
        }
        Ok(self.write_with_retries(job, 1)?.map(Prepared::Written))
    }

    /// Whether the destination (whose `lstat` is `dst_meta`) already holds this file (same size
    /// and mtime, or with `checksum` the same content). Anything in the way that is not a regular
    /// file or a directory (a planted symlink, a FIFO) is removed, never opened or written through.
    fn up_to_date(
        &mut self,
        job: &Job<'_>,
        src_meta: &Metadata,
        dst_meta: &Metadata,
    ) -> Result<bool, FileError> {
        let dst = &job.dst;
        if dst_meta.is_dir() {
            return Err(FileError::InTheWay { path: dst.to_owned(), kind: FileKind::Directory });
        }
        if !dst_meta.is_file() {
            // unlink(2) removes the link (or FIFO) itself; nothing at its other end is touched.
            std::fs::remove_file(dst).map_err(|source| FileError::Destination {
                action: "remove",
                path: dst.to_owned(),
                source,
            })?;
            self.changed = true;
            return Ok(false);
        }
        if sys::dev_ino(dst_meta) == sys::dev_ino(src_meta) {
            return Err(FileError::SameFile { src: job.src.clone(), dst: dst.to_owned() });
        }
        if dst_meta.len() != src_meta.len() {
            return Ok(false);
        }
        let same = if self.opts().checksum {
            let ours = checksum::hash_file(Algo::Xxh128, &job.src)?;
            let theirs = checksum::hash_file(Algo::Xxh128, dst)?;
            ours == theirs
        } else {
            Timestamp::mtime(dst_meta).within(Timestamp::mtime(src_meta), self.shared.modify_window)
        };
        if !same {
            return Ok(false);
        }
        let mode = src_meta.mode() & 0o7777;
        if self.shared.keeps_modes && dst_meta.mode() & 0o7777 != mode {
            // Same content, new mode (a chmod in SRC): fixed in place. The path was just seen to
            // be a regular file, not a symlink.
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode)).map_err(
                |source| FileError::Destination {
                    action: "set the mode of",
                    path: dst.to_owned(),
                    source,
                },
            )?;
        }
        Ok(true)
    }

    /// One attempt: the source read once, each buffer hashed and appended to a new temp file
    /// beside the destination; then the source checked unchanged and the temp given its mtime.
    pub(super) fn write_temp(
        &mut self,
        job: &Job<'_>,
        attempt: u32,
    ) -> Result<Option<Written>, FileError> {
        let read_err = |source| FileError::Read { path: job.src.clone(), source };
        let src = match sys::open_source(&job.src) {
            Ok(src) => src,
            // `O_NOFOLLOW` on a symlink: not a regular file, said as `prepare`'s `lstat` says it.
            Err(err) if err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Err(match std::fs::symlink_metadata(&job.src).map(|m| FileKind::of(&m)) {
                    Ok(Some(kind)) => FileError::NotRegular { path: job.src.clone(), kind },
                    _ => FileError::Open { path: job.src.clone(), source: err },
                });
            }
            Err(source) => return Err(FileError::Open { path: job.src.clone(), source }),
        };
        let before = src.metadata().map_err(read_err)?;
        if let Some(kind) = FileKind::of(&before) {
            return Err(FileError::NotRegular { path: job.src.clone(), kind });
        }
        // A file read in one `read` gains nothing from a larger read-ahead: no call for it.
        if before.len() > BUF_SIZE as u64 {
            sys::advise_sequential(&src);
        }
        let mut opts = WriteOptions::default();
        // The batch is synced as a whole before its renames (`flush`), not file by file.
        opts.durability = Durability::None;
        opts.overwrite = Overwrite::Replace;
        // Where DST keeps no modes (FAT through FUSE answers `chmod` with ENOSYS), none is set:
        // the file gets what the file system gives every file.
        opts.mode = self.shared.keeps_modes.then_some(before.mode() & 0o7777);
        let mut temp = AtomicFile::create(&job.dst, &opts)?;
        if temp.target() != job.dst {
            // A symlink was planted after `up_to_date` removed what was there; dropping `temp`
            // removes the temp file, and nothing was written through the link.
            return Err(FileError::DestinationRaced { path: job.dst.clone() });
        }
        // Owners before attributes and modes: a chown clears set-id bits and file capabilities.
        self.shared.keep_owner(&job.src, &mut self.tally.report.warnings, || {
            sys::copy_owner(&before, temp.as_file(), opts.mode, self.shared.owner)
        });
        if self.shared.xattrs_ok.load(Ordering::Relaxed)
            && let Err(err) = sys::copy_xattrs(&src, temp.as_file())
            && self.shared.xattrs_ok.swap(false, Ordering::Relaxed)
        {
            let warning = Warning::XattrsNotKept { path: job.src.clone(), reason: err.to_string() };
            self.shared.progress.warning(&warning);
            self.tally.report.warnings.push(warning);
        }
        if self.buf.len() != BUF_SIZE {
            self.buf = vec![0; BUF_SIZE];
        }
        let mut hasher = Hasher::new(Algo::Xxh128);
        let mut read = 0u64;
        let mut reader = &src;
        // A sparse source onto a destination that keeps holes: each hole is skipped in the temp
        // (and hashed as the zeros it reads as) instead of written out. Holes are found with
        // SEEK_HOLE/SEEK_DATA; a file system without them reports the whole file as data.
        let sparse = self.shared.keeps_holes && before.blocks().saturating_mul(512) < before.len();
        let mut hole = if sparse { sys::next_hole(&src, 0).map_err(read_err)? } else { u64::MAX };
        loop {
            if self.cancelled() {
                return Ok(None);
            }
            if read >= hole {
                let data = sys::next_data(&src, read).map_err(read_err)?.unwrap_or(before.len());
                let gap = data.saturating_sub(read).min(before.len().saturating_sub(read));
                if gap == 0 && data >= before.len() {
                    break;
                }
                self.buf.fill(0);
                let mut left = gap;
                while left > 0 {
                    let n = left.min(self.buf.len() as u64) as usize;
                    hasher.update(&self.buf[..n]);
                    left -= n as u64;
                }
                let temp_err = |source| FileError::Destination {
                    action: "skip a hole in",
                    path: job.dst.clone(),
                    source,
                };
                let skip =
                    i64::try_from(gap).map_err(|_| temp_err(io::ErrorKind::InvalidInput.into()))?;
                temp.as_file_mut().seek(SeekFrom::Current(skip)).map_err(temp_err)?;
                read += gap;
                self.shared.progress.bytes_copied(gap);
                hole = sys::next_hole(&src, read).map_err(read_err)?;
                continue;
            }
            let want = self.buf.len().min(usize::try_from(hole - read).unwrap_or(usize::MAX));
            let n = match reader.read(&mut self.buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(read_err(err)),
            };
            let chunk = &self.buf[..n];
            hasher.update(chunk);
            temp.append(chunk)?;
            read += n as u64;
            self.shared.progress.bytes_copied(n as u64);
            if read > before.len() {
                // Growing while read (a log being appended to): reading on could never end.
                break;
            }
        }
        if sparse {
            // A trailing hole: the seek past it wrote nothing, so the size is set.
            temp.as_file().set_len(read).map_err(|source| FileError::Destination {
                action: "set the size of",
                path: temp.temp_path().to_owned(),
                source,
            })?;
        }
        let (stamp, after) = (Stamp::of(&before), Stamp::of(&src.metadata().map_err(read_err)?));
        // Also what makes a 0-byte copy of a non-empty file impossible: the bytes read must be its
        // length, before and after.
        if stamp.changed_while_read(&after, read) {
            return Err(FileError::SourceChanged {
                path: job.src.clone(),
                before_len: stamp.len,
                after_len: after.len,
                read,
                mtime_changed: after.mtime != stamp.mtime,
            });
        }
        let mtime = stamp.mtime;
        // After the last write (a write would update it), before the fsync that makes it durable.
        // The atime too: exfat-fuse ignores an mtime set alone.
        let times = FileTimes::new()
            .set_modified(mtime.to_system_time())
            .set_accessed(before.accessed().unwrap_or_else(|_| mtime.to_system_time()));
        temp.as_file().set_times(times).map_err(|source| FileError::Destination {
            action: "set the mtime of",
            path: temp.temp_path().to_owned(),
            source,
        })?;
        Ok(Some(Written { temp, digest: hasher.finish(), len: read, attempt }))
    }

    /// Checks the temp: its size, and unless `verify` is off the hash of its bytes read back
    /// (the batch is synced afterwards, in `flush`); returns it staged, with its checked length.
    pub(super) fn finish(
        &mut self,
        job: &Job<'_>,
        written: Written,
    ) -> Result<(Staged, u64), FileError> {
        let staged = written.temp.stage()?;
        let temp = staged.temp_path().to_owned();
        let read_back = |source| FileError::ReadBack { temp: temp.clone(), source };
        let len = staged.as_file().metadata().map_err(read_back)?.len();
        if len != written.len {
            return Err(FileError::SizeMismatch {
                src: job.src.clone(),
                temp: temp.clone(),
                expected: written.len,
                actual: len,
            });
        }
        if self.opts().verify {
            if self.buf.len() != BUF_SIZE {
                self.buf = vec![0; BUF_SIZE];
            }
            let mut hasher = Hasher::new(Algo::Xxh128);
            let mut offset = 0u64;
            while offset < written.len {
                let n = match staged.as_file().read_at(&mut self.buf, offset) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(read_back(err)),
                };
                hasher.update(&self.buf[..n]);
                offset += n as u64;
            }
            let actual = hasher.finish();
            if actual != written.digest || offset != written.len {
                return Err(FileError::HashMismatch {
                    src: job.src.clone(),
                    temp,
                    expected: written.digest,
                    actual,
                });
            }
        }
        Ok((staged, len))
    }
}

//! Hashing readers and files, streaming with a large buffer.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::mpsc;

use crate::{Algo, Digest, Error, FileKind, Hasher, Result};

/// Bytes read per `read` call. Large enough that syscall overhead vanishes next to the hashing,
/// small enough to stay in L2 cache while it is hashed (measured: see `benches/hash.rs`).
pub const BUF_SIZE: usize = 256 * 1024;

/// The digest of a file and how many bytes were hashed.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("f");
/// std::fs::write(&path, b"test\n").unwrap();
/// let fd = checksum::hash_file(checksum::Algo::Xxh128, &path).unwrap();
/// assert_eq!((fd.len, fd.digest.to_hex().as_str()), (5, "364b7492fe58a3947e824cae26e04823"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileDigest {
    /// The digest.
    pub digest: Digest,
    /// Bytes hashed (the file's length as it was read).
    pub len: u64,
}

/// Hashes everything a reader yields, in [`BUF_SIZE`] pieces; returns the digest and the byte count.
/// `Interrupted` reads are retried.
///
/// ```
/// use checksum::{hash_bytes, hash_reader, Algo};
/// let (digest, len) = hash_reader(Algo::Xxh64, &b"abc"[..]).unwrap();
/// assert_eq!((digest, len), (hash_bytes(Algo::Xxh64, b"abc"), 3));
/// ```
pub fn hash_reader(algo: Algo, mut reader: impl Read) -> io::Result<(Digest, u64)> {
    with_buffer(|buf| {
        let mut hasher = Hasher::new(algo);
        let mut len = 0u64;
        loop {
            match reader.read(buf) {
                Ok(0) => return Ok((hasher.finish(), len)),
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    len += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })
}

/// Runs `f` with this thread's [`BUF_SIZE`] read buffer. Reused from call to call: allocating and
/// zeroing 256 KiB per file cost more than reading a tree of 10,000 small files itself.
fn with_buffer<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < BUF_SIZE {
                buf.resize(BUF_SIZE, 0);
            }
            f(&mut buf)
        }
        // Re-entered on this thread (a reader that itself hashes): use a buffer of its own.
        Err(_) => f(&mut vec![0u8; BUF_SIZE]),
    })
}

/// Hashes the regular file at `path` (a symlink given here is followed, as xxhsum does).
///
/// Anything that is not a regular file is refused with [`Error::NotAFile`] before a byte is read:
/// the file is opened with `O_NONBLOCK`, so a FIFO cannot make this call hang, and its type is
/// checked on the open descriptor, so it cannot change between the check and the read.
///
/// ```
/// let err = checksum::hash_file(checksum::Algo::Xxh128, "/").unwrap_err();
/// assert!(err.to_string().contains("not a regular file"));
/// ```
pub fn hash_file(algo: Algo, path: impl AsRef<Path>) -> Result<FileDigest> {
    hash_file_with(algo, path.as_ref(), true)
}

/// [`hash_file`], choosing whether a large file may be read on a second thread: worth it when a
/// core would otherwise idle, a loss when every core already hashes a file of its own (measured:
/// three 256 MiB files on 2 threads took 174 ms pipelined against 156 ms not).
pub(crate) fn hash_file_with(algo: Algo, path: &Path, pipeline: bool) -> Result<FileDigest> {
    // The length comes from the status `open_regular` already took: one `fstat` per file.
    let (file, meta) = open_regular(path)?;
    let size = meta.len();
    let hashed = if pipeline && size >= PIPELINE_MIN {
        hash_pipelined(algo, file)
    } else {
        hash_reader(algo, file)
    };
    let (digest, len) = hashed.map_err(|source| Error::Read { path: path.into(), source })?;
    Ok(FileDigest { digest, len })
}

/// Files at least this large are read on a second thread while the caller hashes: reading from
/// the page cache and hashing then overlap instead of taking turns.
const PIPELINE_MIN: u64 = 8 << 20;

/// Buffers in flight between the reader thread and the hasher.
const PIPELINE_BUFFERS: usize = 4;

/// [`hash_reader`] with the reads on a scoped thread, handing filled buffers over a channel.
fn hash_pipelined(algo: Algo, mut reader: impl Read + Send) -> io::Result<(Digest, u64)> {
    let (full_tx, full_rx) = mpsc::sync_channel::<io::Result<(Vec<u8>, usize)>>(PIPELINE_BUFFERS);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(PIPELINE_BUFFERS);
    for _ in 0..PIPELINE_BUFFERS {
        // Cannot fail: the channel has room for every buffer and its receiver is alive.
        let _ = empty_tx.send(vec![0u8; BUF_SIZE]);
    }
    std::thread::scope(|scope| {
        scope.spawn(move || {
            // Ends when the hasher hangs up (either channel closed) or the file is read.
            while let Ok(mut buf) = empty_rx.recv() {
                let read = read_some(&mut reader, &mut buf).map(|n| (buf, n));
                let last = !matches!(read, Ok((_, n)) if n > 0);
                if full_tx.send(read).is_err() || last {
                    return;
                }
            }
        });
        let mut hasher = Hasher::new(algo);
        let mut len = 0u64;
        loop {
            match full_rx.recv() {
                Ok(Ok((_, 0))) => return Ok((hasher.finish(), len)),
                Ok(Ok((buf, n))) => {
                    hasher.update(&buf[..n]);
                    len += n as u64;
                    let _ = empty_tx.send(buf);
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("reader thread ended early")),
            }
        }
    })
}

/// One `read`, retried on `Interrupted`.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Opens `path` for reading if, and only if, it is a regular file, without ever blocking on a FIFO;
/// returns it with its status, taken on the open descriptor.
pub(crate) fn open_regular(path: &Path) -> Result<(File, Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        // O_NONBLOCK only changes how FIFOs and devices open; reads of a regular file ignore it.
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|source| Error::Open { path: path.into(), source })?;
    let meta = file.metadata().map_err(|source| Error::Open { path: path.into(), source })?;
    match FileKind::of(&meta) {
        None => Ok((file, meta)),
        Some(kind) => Err(Error::NotAFile { path: path.into(), kind }),
    }
}

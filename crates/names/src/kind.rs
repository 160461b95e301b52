//! What a path names when it is not a regular file, in the words every message uses.

use std::fmt;
use std::fs::Metadata;
use std::os::unix::fs::FileTypeExt;

/// What a path names, when it is not a regular file. Its [`Display`](fmt::Display) is the word a
/// message uses ("FIFO", "symlink", ...), the same in every crate.
///
/// ```
/// assert_eq!(names::FileKind::Fifo.to_string(), "FIFO");
/// let meta = std::fs::symlink_metadata("/").unwrap();
/// assert_eq!(names::FileKind::of(&meta), Some(names::FileKind::Directory));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A directory.
    Directory,
    /// A symbolic link (never followed while walking).
    Symlink,
    /// A named pipe: opening it for reading would block.
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A block device.
    BlockDevice,
    /// A character device.
    CharDevice,
    /// Anything else.
    Other,
}

impl FileKind {
    /// The kind of a non-regular file, from its metadata; `None` for a regular file.
    pub fn of(meta: &Metadata) -> Option<FileKind> {
        let t = meta.file_type();
        Some(if t.is_file() {
            return None;
        } else if t.is_dir() {
            FileKind::Directory
        } else if t.is_symlink() {
            FileKind::Symlink
        } else if t.is_fifo() {
            FileKind::Fifo
        } else if t.is_socket() {
            FileKind::Socket
        } else if t.is_block_device() {
            FileKind::BlockDevice
        } else if t.is_char_device() {
            FileKind::CharDevice
        } else {
            FileKind::Other
        })
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "directory",
            FileKind::Symlink => "symlink",
            FileKind::Fifo => "FIFO",
            FileKind::Socket => "socket",
            FileKind::BlockDevice => "block device",
            FileKind::CharDevice => "character device",
            FileKind::Other => "special file",
        })
    }
}

//! Platform details: which `flock` errors mean "not supported here", and the file system's name.

use std::fs::File;
use std::io;

/// ENOLCK (NFS without a lock manager), EOPNOTSUPP and ENOSYS: the file system cannot lock.
pub(crate) fn is_unsupported(e: &io::Error) -> bool {
    let Some(code) = e.raw_os_error() else { return false };
    let errno = rustix::io::Errno::from_raw_os_error(code);
    errno == rustix::io::Errno::NOLCK
        || errno == rustix::io::Errno::OPNOTSUPP
        || errno == rustix::io::Errno::NOSYS
}

/// EIO, ESTALE, ENOTCONN and ESHUTDOWN: the file system under a held lock or an output failed as
/// a whole (a network client evicted or dead, a stale handle), not one operation. ceph-fuse says
/// ESHUTDOWN to an evicted client's writes and EIO to its lock requests.
pub(crate) fn is_lost(e: &io::Error) -> bool {
    let Some(code) = e.raw_os_error() else { return false };
    let errno = rustix::io::Errno::from_raw_os_error(code);
    errno == rustix::io::Errno::IO
        || errno == rustix::io::Errno::STALE
        || errno == rustix::io::Errno::NOTCONN
        || errno == rustix::io::Errno::SHUTDOWN
}

/// The file system type of `file`, named as atomic-io names it in its sync errors.
pub(crate) fn fs_type_name(file: &File) -> String {
    atomic_io::FileSystem::of(file).name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_file_systems_and_unsupported_errors() {
        assert!(is_unsupported(&io::Error::from_raw_os_error(
            rustix::io::Errno::NOLCK.raw_os_error()
        )));
        assert!(!is_unsupported(&io::Error::from_raw_os_error(
            rustix::io::Errno::INTR.raw_os_error()
        )));
        assert!(is_lost(&io::Error::from_raw_os_error(rustix::io::Errno::SHUTDOWN.raw_os_error())));
        assert!(!is_lost(&io::Error::from_raw_os_error(rustix::io::Errno::NOENT.raw_os_error())));
        let f = File::open("/").unwrap();
        assert!(!fs_type_name(&f).is_empty());
    }
}

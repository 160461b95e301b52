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

/// The file system type of `file`: a name for the usual suspects, else the magic number in hex.
pub(crate) fn fs_type_name(file: &File) -> String {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        match rustix::fs::fstatfs(file) {
            #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
            Ok(st) => magic_name(st.f_type as i64 as u32),
            Err(e) => format!("unknown file system: {e}"),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = file;
        "unknown file system".to_owned()
    }
}

fn magic_name(magic: u32) -> String {
    match magic {
        0x6969 => "nfs".to_owned(),
        0xFF53_4D42 => "cifs".to_owned(),
        0xFE53_4D42 => "smb2".to_owned(),
        0x6573_5546 => "fuse".to_owned(),
        0x0102_1994 => "tmpfs".to_owned(),
        0xEF53 => "ext4".to_owned(),
        0x5846_5342 => "xfs".to_owned(),
        0x9123_683E => "btrfs".to_owned(),
        0x794C_7630 => "overlayfs".to_owned(),
        other => format!("0x{other:x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_file_systems_and_unsupported_errors() {
        assert_eq!(magic_name(0x6969), "nfs");
        assert_eq!(magic_name(0x1234), "0x1234");
        assert!(is_unsupported(&io::Error::from_raw_os_error(
            rustix::io::Errno::NOLCK.raw_os_error()
        )));
        assert!(!is_unsupported(&io::Error::from_raw_os_error(
            rustix::io::Errno::INTR.raw_os_error()
        )));
        let f = File::open("/").unwrap();
        assert!(!fs_type_name(&f).is_empty());
    }
}

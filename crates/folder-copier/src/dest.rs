//! What a destination file system can hold and how it compares names and times: found once per
//! copy, before anything is written, from the file system's type (`statfs`, through atomic-io's
//! [`FileSystem`](atomic_io::FileSystem)), its block or cluster
//! size (`statvfs`), and probes on a fresh temp file in the destination (does another spelling of
//! its name resolve? what mtime does it keep? does it keep a mode?). exFAT and FAT through FUSE
//! report only "fuse", so the probes decide there; where a probe cannot decide, the answer that
//! refuses more is taken and said.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use atomic_io::{AtomicFile, Durability, WriteOptions};
use checksum::Timestamp;

use crate::sys;

/// The file-system families whose rules differ, as far as `statfs` and the probes tell them apart.
///
/// ```
/// use folder_copier::FsFamily;
/// assert_eq!(FsFamily::Fat.max_file_size(), Some(u64::from(u32::MAX)));
/// assert_eq!(FsFamily::Exfat.max_file_size(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsFamily {
    /// A Unix file system known to keep any name but `/` and NUL, modes and holes (ext2/3/4, XFS,
    /// Btrfs, tmpfs, F2FS).
    Unix,
    /// FAT12/16/32 (vfat, msdos, or through FUSE): 2 s mtimes, files up to 4 GiB − 1.
    Fat,
    /// exFAT (the kernel driver, or through FUSE): no size limit that matters, coarse mtimes.
    Exfat,
    /// NTFS (ntfs3, ntfs-3g).
    Ntfs,
    /// Anything else (network file systems, unknown FUSE file systems): probed, not assumed.
    Other,
}

impl FsFamily {
    /// The largest file it can hold, when that is a limit a copy can meet.
    pub fn max_file_size(self) -> Option<u64> {
        match self {
            FsFamily::Fat => Some(u64::from(u32::MAX)),
            _ => None,
        }
    }

    /// Whether names follow the Windows rules (no `"*/:<>?\|` or control characters; no trailing
    /// dot or space, which Windows and the devices that read these cards strip or refuse).
    pub fn windows_names(self) -> bool {
        matches!(self, FsFamily::Fat | FsFamily::Exfat | FsFamily::Ntfs)
    }

    /// The family of a file system atomic-io names (by `statfs`'s magic number); `None` for
    /// FUSE and anything not known, which the probes decide.
    fn from_name(name: &str) -> Option<FsFamily> {
        Some(match name {
            "ext4" | "xfs" | "btrfs" | "f2fs" | "tmpfs" => FsFamily::Unix,
            "vfat" => FsFamily::Fat,
            "exfat" => FsFamily::Exfat,
            "ntfs" => FsFamily::Ntfs,
            _ => return None,
        })
    }
}

/// Whether names that differ only by case name one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseRule {
    /// Names differing by case are different files (probed).
    Sensitive,
    /// Another spelling of a fresh name resolves to it (probed, or asked for).
    Insensitive,
    /// The probe could not decide; treated as [`CaseRule::Insensitive`] (fail closed).
    Unknown,
}

/// A destination file system as the copy sees it. [`Destination::probe`] fills it in; the plan
/// uses it to refuse names and sizes the destination cannot hold, to count space in its clusters,
/// and to compare mtimes at its granularity.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let dest = folder_copier::Destination::probe(dir.path());
/// assert!(!dest.case.is_insensitive()); // a temp dir on an ordinary Linux file system
/// assert!(dest.cluster >= 512);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// What kind of file system it is, as far as it can be told.
    pub family: FsFamily,
    /// How it compares names.
    pub case: CaseRule,
    /// The coarsest step in which it stores mtimes (1 ns when it keeps nanoseconds; 2 s on FAT).
    pub time_granularity: Duration,
    /// Its allocation unit: a file takes a whole number of these (`statvfs`'s `f_frsize`).
    pub cluster: u64,
    /// Whether it reports its capacity at all (some network and FUSE file systems report 0).
    pub capacity_reported: bool,
    /// Whether `chmod` sticks (exFAT and FAT through FUSE accept it and keep nothing).
    pub keeps_modes: bool,
    /// Whether it keeps holes in sparse files (known file systems only).
    pub keeps_holes: bool,
    /// What a probe could not find out, said to the user as a warning.
    pub notes: Vec<String>,
}

impl CaseRule {
    /// Whether names must be compared case-insensitively (unknown counts as insensitive).
    pub fn is_insensitive(self) -> bool {
        self != CaseRule::Sensitive
    }
}

impl Destination {
    /// Looks at the existing directory `dir` (DST, or its nearest existing ancestor): its file
    /// system's type and cluster size, and probes with a temp file created there and removed at
    /// once. Never fails: what cannot be found out takes the value that refuses more (case
    /// insensitive, Windows names, whole-second... no: 2 s mtimes are not assumed, see below) and
    /// adds a note.
    ///
    /// An mtime that cannot be probed is compared exactly: that re-copies files, it never skips a
    /// changed one.
    pub fn probe(dir: &Path) -> Destination {
        let mut dest = Destination {
            family: FsFamily::Other,
            case: CaseRule::Unknown,
            time_granularity: Duration::from_nanos(1),
            cluster: 4096,
            capacity_reported: true,
            keeps_modes: true,
            keeps_holes: false,
            notes: Vec::new(),
        };
        let known = match std::fs::File::open(dir) {
            Ok(file) => FsFamily::from_name(&atomic_io::FileSystem::of(&file).name()),
            Err(err) => {
                dest.notes.push(format!("cannot tell the file system type: {err}"));
                None
            }
        };
        match rustix::fs::statvfs(dir) {
            Ok(st) => {
                let unit = if st.f_frsize > 0 { st.f_frsize } else { st.f_bsize };
                dest.cluster = unit.max(512);
                dest.capacity_reported = st.f_blocks > 0;
            }
            Err(err) => dest.notes.push(format!("cannot read the cluster size: {err}")),
        }
        if let Some(family) = known {
            dest.family = family;
            dest.keeps_holes = family == FsFamily::Unix;
        }
        match probe_file(dir, known == Some(FsFamily::Unix)) {
            Ok(probe) => {
                dest.case = if probe.other_spelling_resolves {
                    CaseRule::Insensitive
                } else {
                    CaseRule::Sensitive
                };
                dest.time_granularity = probe.granularity;
                dest.keeps_modes = probe.keeps_modes;
                if known.is_none() && probe.windows_names {
                    // FUSE (or unknown) with Windows names: FAT keeps 2 s mtimes, exFAT finer.
                    dest.family = if probe.granularity >= Duration::from_secs(2) {
                        FsFamily::Fat
                    } else {
                        FsFamily::Exfat
                    };
                }
            }
            Err(err) => {
                dest.notes.push(format!(
                    "cannot probe {} ({err}): names are compared case-insensitively and mtimes \
                     exactly",
                    names::shown(dir)
                ));
                if known.is_none() {
                    dest.family = FsFamily::Other;
                }
            }
        }
        dest
    }
}

struct Probed {
    other_spelling_resolves: bool,
    granularity: Duration,
    keeps_modes: bool,
    windows_names: bool,
}

/// One temp file in `dir` (atomic-io's temp name: unique, swept if a crash leaves it), examined
/// and removed.
fn probe_file(dir: &Path, unix: bool) -> io::Result<Probed> {
    let mut opts = WriteOptions::default();
    opts.durability = Durability::None;
    // The note that says the probe failed is one string: the cause goes into it (atomic-io's
    // messages leave it to `source`).
    let probe = AtomicFile::create(dir.join(".folder-copier-probe"), &opts).map_err(|err| {
        let kind = err.io_kind();
        match std::error::Error::source(&err) {
            Some(cause) => io::Error::new(kind, format!("{err}: {cause}")),
            None => io::Error::new(kind, err.to_string()),
        }
    })?;
    let result = examine(dir, &probe, unix);
    let _ = probe.discard();
    result
}

fn examine(dir: &Path, probe: &AtomicFile, unix: bool) -> io::Result<Probed> {
    let temp = probe.temp_path();
    let name = temp.file_name().unwrap_or_default();
    // Another spelling of a name nobody else has: if it resolves, names are folded. Not compared
    // by inode: FUSE file systems hand out one inode per spelling.
    let other_spelling_resolves = match std::fs::symlink_metadata(dir.join(sys::flip_case(name))) {
        Ok(_) => true,
        Err(err) if err.kind() == io::ErrorKind::NotFound => false,
        Err(err) => return Err(err),
    };

    // An mtime at an odd second and 999,999,999 ns: what comes back shows the step it is kept in.
    let wanted = Timestamp { sec: 1_600_000_001, nsec: 999_999_999 };
    // The atime too: exfat-fuse ignores an mtime set alone.
    let at = wanted.to_system_time();
    let times = std::fs::FileTimes::new().set_modified(at).set_accessed(at);
    probe.as_file().set_times(times)?;
    let kept = Timestamp::mtime(&std::fs::symlink_metadata(temp)?);
    let granularity = granularity_of(wanted, kept);

    let keeps_modes = [0o600, 0o640].iter().all(|&mode| {
        std::fs::set_permissions(temp, std::fs::Permissions::from_mode(mode)).is_ok()
            && std::fs::symlink_metadata(temp).is_ok_and(|m| m.mode() & 0o777 == mode)
    });

    // A character every Unix file system stores and none of the Windows family does; asked only
    // where `statfs` did not tell. The name is a temp name, so a crash that leaves it is swept.
    let windows_names = !unix && {
        let colon = dir.join(atomic_io::temp_name(OsStr::new("folder-copier-probe:")));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&colon) {
            Ok(_) => {
                let _ = std::fs::remove_file(&colon);
                false
            }
            Err(_) => true,
        }
    };
    Ok(Probed { other_spelling_resolves, granularity, keeps_modes, windows_names })
}

/// The step an mtime is kept in, from one written and read back: the smallest usual step larger
/// than the difference (1 ns, 100 ns for NTFS, 1 µs, 1 ms, 10 ms for exFAT, 1 s, 2 s for FAT).
fn granularity_of(wanted: Timestamp, kept: Timestamp) -> Duration {
    let diff = (i128::from(wanted.sec) * 1_000_000_000 + i128::from(wanted.nsec))
        .abs_diff(i128::from(kept.sec) * 1_000_000_000 + i128::from(kept.nsec));
    const STEPS: [u128; 7] = [1, 100, 1_000, 1_000_000, 10_000_000, 1_000_000_000, 2_000_000_000];
    let step = STEPS
        .into_iter()
        .find(|&step| diff < step)
        .unwrap_or_else(|| (diff / 1_000_000_000 + 1) * 1_000_000_000);
    Duration::from_nanos(u64::try_from(step).unwrap_or(u64::MAX))
}

/// Why a destination cannot hold a name, if it cannot.
pub(crate) fn name_problem(name: &OsStr, family: FsFamily) -> Option<&'static str> {
    if !family.windows_names() {
        return None;
    }
    let bytes = name.as_bytes();
    if let Some(&c) = bytes.iter().find(|&&c| c < 0x20 || b"\"*:<>?\\|".contains(&c)) {
        return Some(match c {
            b'"' => "it contains '\"', which this file system cannot store",
            b'*' => "it contains '*', which this file system cannot store",
            b':' => "it contains ':', which this file system cannot store",
            b'<' => "it contains '<', which this file system cannot store",
            b'>' => "it contains '>', which this file system cannot store",
            b'?' => "it contains '?', which this file system cannot store",
            b'\\' => "it contains '\\', which this file system cannot store",
            b'|' => "it contains '|', which this file system cannot store",
            _ => "it contains a control character, which this file system cannot store",
        });
    }
    match bytes.last() {
        Some(b'.') if bytes != b"." && bytes != b".." => {
            Some("it ends with a dot, which Windows and devices reading this card strip")
        }
        Some(b' ') => {
            Some("it ends with a space, which Windows and devices reading this card strip")
        }
        _ => None,
    }
}

/// The key under which a case-insensitive file system takes names as one: each character mapped
/// through Unicode's simple lower case and then its simple upper case (one character to one, as
/// the up-case tables of exFAT and NTFS map), so `Zelda` and `zELDA`, `Ä` and `ä`, `ǅ` and `ǆ`
/// fold together. A byte that is not part of valid UTF-8 stands for itself.
///
/// Folding more than a file system does only refuses more; folding less would let two files land
/// on one. The e2e tests check it against a real exFAT mount.
///
/// ```
/// use folder_copier::fold_name;
/// assert_eq!(fold_name("Zelda.nes".as_ref()), fold_name("zELDA.NES".as_ref()));
/// assert_ne!(fold_name("Zelda.nes".as_ref()), fold_name("Zelda.snes".as_ref()));
/// ```
pub fn fold_name(name: &OsStr) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len());
    for chunk in name.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            let mut buf = [0u8; 4];
            key.extend_from_slice(fold_char(c).encode_utf8(&mut buf).as_bytes());
        }
        key.extend_from_slice(chunk.invalid());
    }
    key
}

fn fold_char(c: char) -> char {
    let lower = single(c.to_lowercase(), c);
    single(lower.to_uppercase(), lower)
}

/// The one character a case mapping gives, or `c` when it gives several (a full mapping such as
/// `ß` → `SS`, which no file system's up-case table applies).
fn single(mut mapped: impl Iterator<Item = char>, c: char) -> char {
    match (mapped.next(), mapped.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granularity_is_the_step_the_time_was_kept_in() {
        let wanted = Timestamp { sec: 1_600_000_001, nsec: 999_999_999 };
        let g = |sec, nsec| granularity_of(wanted, Timestamp { sec, nsec });
        assert_eq!(g(1_600_000_001, 999_999_999), Duration::from_nanos(1));
        assert_eq!(g(1_600_000_001, 999_999_900), Duration::from_nanos(100));
        assert_eq!(g(1_600_000_001, 990_000_000), Duration::from_millis(10));
        assert_eq!(g(1_600_000_001, 0), Duration::from_secs(1));
        assert_eq!(g(1_600_000_000, 0), Duration::from_secs(2));
        assert_eq!(g(1_600_000_002, 0), Duration::from_nanos(100), "rounded up by 1 ns");
        assert_eq!(g(1_600_000_005, 0), Duration::from_secs(4));
    }

    #[test]
    fn windows_names_refuse_reserved_characters_and_trailing_dots_and_spaces() {
        for bad in [
            "a:b.nes",
            "what?.nes",
            "x*",
            "pipe|",
            "q\"",
            "<",
            ">",
            "back\\",
            "dot.",
            "space ",
            "tab\t",
        ] {
            assert!(name_problem(OsStr::new(bad), FsFamily::Exfat).is_some(), "{bad:?}");
            assert!(name_problem(OsStr::new(bad), FsFamily::Unix).is_none(), "{bad:?}");
        }
        for good in ["Zelda.nes", ".hidden", "a.b.c", "ß", "..x"] {
            assert!(name_problem(OsStr::new(good), FsFamily::Fat).is_none(), "{good:?}");
        }
        assert!(name_problem(OsStr::from_bytes(b"caf\xe9"), FsFamily::Ntfs).is_none());
    }

    #[test]
    fn only_fat_limits_file_size() {
        assert_eq!(FsFamily::Fat.max_file_size(), Some(4 * 1024 * 1024 * 1024 - 1));
        for family in [FsFamily::Unix, FsFamily::Exfat, FsFamily::Ntfs, FsFamily::Other] {
            assert_eq!(family.max_file_size(), None);
        }
    }

    #[test]
    fn names_fold_through_simple_case_mappings_and_keep_undecodable_bytes() {
        let same = |a: &str, b: &str| fold_name(a.as_ref()) == fold_name(b.as_ref());
        assert!(same("Zelda.nes", "ZELDA.NES"));
        assert!(same("Ärger", "äRGER"));
        assert!(same("ǅ", "ǆ"));
        assert!(same("Σ", "ς"));
        assert!(!same("ß", "ss"), "no full folding: exFAT keeps ß and ss apart");
        assert!(!same("a", "b"));
        let latin1 = |b: &[u8]| fold_name(OsStr::from_bytes(b));
        assert_eq!(latin1(b"Caf\xe9"), latin1(b"cAF\xe9"));
        assert_ne!(
            latin1(b"Caf\xe9"),
            latin1(b"Caf\xc9"),
            "undecodable bytes stand for themselves"
        );
    }

    #[test]
    fn an_ordinary_temp_dir_is_probed_case_sensitive_with_fine_times_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = Destination::probe(dir.path());
        assert_eq!(dest.case, CaseRule::Sensitive, "{dest:?}");
        assert!(dest.keeps_modes, "{dest:?}");
        assert!(dest.time_granularity <= Duration::from_millis(10), "{dest:?}");
        assert!(dest.notes.is_empty(), "{dest:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe leaves nothing");
    }
}

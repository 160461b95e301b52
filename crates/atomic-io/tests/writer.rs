//! Behaviour of `AtomicFile` on real files: modes, owners, symlinks, no-clobber, the refusals, and
//! 16 threads writing one target at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test
#![allow(clippy::print_stderr)] // a skipped test says so loudly

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::sync::{Arc, Barrier};

use atomic_io::{
    AtomicFile, Durability, Error, Overwrite, WriteOptions, is_temp_name, sync_dir, write_atomic,
};
use std::path::{Path, PathBuf};

fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    (dir, path)
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn commit_replaces_and_leaves_no_temp() {
    let (_t, dir) = tempdir();
    let target = dir.join("data");
    fs::write(&target, b"old").unwrap();
    let mut file = AtomicFile::create(&target, &WriteOptions::default()).unwrap();
    file.write_all(b"new content").unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"old", "nothing visible before commit");
    let temp_name = file.temp_path().file_name().unwrap().to_str().unwrap().to_owned();
    assert!(is_temp_name(temp_name.as_ref()), "{temp_name}");
    assert!(temp_name.starts_with(".data.atomic-"), "{temp_name}");
    file.commit().unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"new content");
    assert_eq!(names(&dir), ["data"]);
}

#[test]
fn durability_none_is_still_atomic_and_complete() {
    let (_t, dir) = tempdir();
    let target = dir.join("data");
    let mut opts = WriteOptions::default();
    opts.durability = Durability::None;
    let mut file = AtomicFile::create(&target, &opts).unwrap();
    file.append(&[7u8; 100_000]).unwrap();
    file.commit().unwrap();
    assert_eq!(fs::read(&target).unwrap(), vec![7u8; 100_000]);
    assert_eq!(names(&dir), ["data"]);
}

#[test]
fn empty_content_gives_an_empty_file() {
    let (_t, dir) = tempdir();
    write_atomic(dir.join("empty"), b"").unwrap();
    assert_eq!(fs::read(dir.join("empty")).unwrap(), b"");
}

#[test]
fn drop_and_discard_remove_the_temp_and_keep_the_target() {
    let (_t, dir) = tempdir();
    let target = dir.join("data");
    fs::write(&target, b"old").unwrap();
    {
        let mut file = AtomicFile::create(&target, &WriteOptions::default()).unwrap();
        file.write_all(b"abandoned").unwrap();
        assert_eq!(names(&dir).len(), 2);
    }
    assert_eq!(names(&dir), ["data"]);
    let mut file = AtomicFile::create(&target, &WriteOptions::default()).unwrap();
    file.write_all(b"abandoned").unwrap();
    file.discard().unwrap();
    let staged = AtomicFile::create(&target, &WriteOptions::default()).unwrap().stage().unwrap();
    drop(staged);
    assert_eq!(names(&dir), ["data"]);
    assert_eq!(fs::read(&target).unwrap(), b"old");
}

#[test]
fn staged_renames_then_one_directory_sync() {
    let (_t, dir) = tempdir();
    let mut staged = Vec::new();
    for i in 0..3 {
        let mut file =
            AtomicFile::create(dir.join(format!("f{i}")), &WriteOptions::default()).unwrap();
        file.append(format!("content {i}").as_bytes()).unwrap();
        let s = file.stage().unwrap();
        assert_eq!(fs::read(s.temp_path()).unwrap(), format!("content {i}").as_bytes());
        assert!(!dir.join(format!("f{i}")).exists());
        staged.push(s);
    }
    for s in staged {
        s.rename().unwrap();
    }
    sync_dir(&dir).unwrap();
    assert_eq!(names(&dir), ["f0", "f1", "f2"]);
    assert_eq!(fs::read(dir.join("f1")).unwrap(), b"content 1");
}

#[test]
fn a_relative_target_works() {
    // Other tests use absolute paths. The working directory is process-wide, so this test only
    // reads it; a bare file name (parent "") is covered by the CLI test, which sets it per process.
    let cwd = std::env::current_dir().unwrap();
    let (_t, dir) = tempdir();
    let rel = pathdiff(&dir, &cwd);
    let target = rel.join("bare");
    write_atomic(&target, b"ok").unwrap();
    assert_eq!(fs::read(dir.join("bare")).unwrap(), b"ok");
}

/// `dir` relative to `base` by climbing to the root (both absolute).
fn pathdiff(dir: &Path, base: &std::path::Path) -> PathBuf {
    let ups = base.components().count() - 1;
    let mut rel = PathBuf::new();
    for _ in 0..ups {
        rel.push("..");
    }
    rel.join(dir.strip_prefix("/").unwrap())
}

#[test]
fn new_files_get_the_mode_a_plain_create_gets() {
    // A plain `File::create` asks for 0o666 and the kernel applies the umask (or default ACL):
    // the reference, measured rather than assumed.
    let (_t, dir) = tempdir();
    fs::File::create(dir.join("plain")).unwrap();
    write_atomic(dir.join("atomic"), b"x").unwrap();
    assert_eq!(mode(&dir.join("atomic")), mode(&dir.join("plain")));
    assert_ne!(mode(&dir.join("atomic")), 0o600, "tempfile's 0600 must not leak through");
}

#[test]
fn replaced_files_keep_their_mode_including_special_bits() {
    let (_t, dir) = tempdir();
    for wanted in [0o600, 0o640, 0o755, 0o444, 0o2755, 0o1777, 0o4750] {
        let target = dir.join(format!("m{wanted:o}"));
        fs::write(&target, b"old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(wanted)).unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(mode(&target), wanted, "mode {wanted:o} not kept");
        assert_eq!(fs::read(&target).unwrap(), b"new");
    }
}

#[test]
fn explicit_mode_wins() {
    let (_t, dir) = tempdir();
    let target = dir.join("secret");
    fs::write(&target, b"old").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    let mut opts = WriteOptions::default();
    opts.mode = Some(0o600);
    let mut file = AtomicFile::create(&target, &opts).unwrap();
    assert_eq!(mode(file.temp_path()), 0o600, "the temp already has the final mode");
    file.append(b"s").unwrap();
    file.commit().unwrap();
    assert_eq!(mode(&target), 0o600);
}

#[test]
fn replaced_files_keep_their_owner_when_permitted() {
    if !is_root() {
        eprintln!("\n!!! SKIPPED: changing a file's owner to another user needs root !!!\n");
        return;
    }
    let (_t, dir) = tempdir();
    let target = dir.join("owned");
    fs::write(&target, b"old").unwrap();
    std::os::unix::fs::chown(&target, Some(1234), Some(5678)).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o6750)).unwrap();
    write_atomic(&target, b"new").unwrap();
    let meta = fs::metadata(&target).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    assert_eq!(meta.mode() & 0o7777, 0o6750, "set-id bits restored after the chown");
}

#[test]
fn writing_through_a_symlink_replaces_its_target_and_keeps_the_link() {
    let (_t, dir) = tempdir();
    fs::create_dir(dir.join("real")).unwrap();
    fs::write(dir.join("real/file"), b"old").unwrap();
    symlink("real/file", dir.join("relative")).unwrap();
    symlink(dir.join("relative"), dir.join("chain")).unwrap(); // absolute, to a symlink
    for (link, content) in [("relative", "one"), ("chain", "two")] {
        let file = AtomicFile::create(dir.join(link), &WriteOptions::default()).unwrap();
        assert_eq!(file.target(), dir.join("real/file"));
        assert_eq!(
            file.temp_path().parent().unwrap(),
            dir.join("real"),
            "temp beside the real file"
        );
        drop(file);
        write_atomic(dir.join(link), content.as_bytes()).unwrap();
        assert!(fs::symlink_metadata(dir.join(link)).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(dir.join("real/file")).unwrap(), content.as_bytes());
    }
    assert_eq!(fs::read_link(dir.join("relative")).unwrap(), std::path::Path::new("real/file"));
    assert_eq!(names(&dir), ["chain", "real", "relative"]);
    assert_eq!(names(&dir.join("real")), ["file"]);
}

#[test]
fn a_dangling_symlink_gets_its_target_created() {
    let (_t, dir) = tempdir();
    symlink("created", dir.join("dangling")).unwrap();
    write_atomic(dir.join("dangling"), b"x").unwrap();
    assert!(fs::symlink_metadata(dir.join("dangling")).unwrap().file_type().is_symlink());
    assert_eq!(fs::read(dir.join("created")).unwrap(), b"x");
}

#[test]
fn a_symlink_loop_is_a_clear_error() {
    let (_t, dir) = tempdir();
    symlink("b", dir.join("a")).unwrap();
    symlink("a", dir.join("b")).unwrap();
    let err = write_atomic(dir.join("a"), b"x").unwrap_err();
    assert!(matches!(err, Error::SymlinkLoop { .. }), "{err}");
}

#[test]
fn no_clobber_refuses_an_existing_target_early_and_at_commit() {
    let (_t, dir) = tempdir();
    let target = dir.join("once");
    let mut opts = WriteOptions::default();
    opts.overwrite = Overwrite::Refuse;

    // Created while absent, then someone else creates the target before the commit.
    let mut file = AtomicFile::create(&target, &opts).unwrap();
    file.append(b"late").unwrap();
    fs::write(&target, b"first").unwrap();
    let err = file.commit().unwrap_err();
    assert!(matches!(err, Error::TargetExists { .. }), "{err}");
    assert!(err.to_string().contains(target.to_str().unwrap()), "{err}");
    assert_eq!(fs::read(&target).unwrap(), b"first");
    assert_eq!(names(&dir), ["once"], "the refused temp is removed");

    // Refused at creation when it already exists.
    let err = AtomicFile::create(&target, &opts).unwrap_err();
    assert!(matches!(err, Error::TargetExists { .. }), "{err}");
}

#[test]
fn no_clobber_racers_never_both_win() {
    let (_t, dir) = tempdir();
    let mut opts = WriteOptions::default();
    opts.overwrite = Overwrite::Refuse;
    for round in 0..20 {
        let target = dir.join(format!("race{round}"));
        let a = AtomicFile::create(&target, &opts).unwrap().stage().unwrap();
        let b = AtomicFile::create(&target, &opts).unwrap().stage().unwrap();
        let results = [a.commit(), b.commit()];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    }
    assert_eq!(names(&dir).len(), 20, "no temps left: {:?}", names(&dir));
}

#[test]
fn a_directory_target_is_refused() {
    let (_t, dir) = tempdir();
    let err = AtomicFile::create(&dir, &WriteOptions::default()).unwrap_err();
    assert!(matches!(err, Error::IsDirectory { .. }), "{err}");
    assert!(err.to_string().contains("is a directory"), "{err}");
    symlink(&dir, dir.join("to-dir")).unwrap();
    let err = write_atomic(dir.join("to-dir"), b"x").unwrap_err();
    assert!(matches!(err, Error::IsDirectory { .. }), "{err}");
    assert_eq!(names(&dir), ["to-dir"]);
}

#[test]
fn a_fifo_target_is_refused_not_opened() {
    let (_t, dir) = tempdir();
    let fifo = dir.join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        fifo.to_str().unwrap(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let err = write_atomic(&fifo, b"x").unwrap_err();
    assert!(matches!(err, Error::NotAFile { kind: atomic_io::FileKind::Fifo, .. }), "{err}");
}

#[test]
fn a_missing_parent_is_named() {
    let (_t, dir) = tempdir();
    let err = write_atomic(dir.join("no/such/dir/file"), b"x").unwrap_err();
    assert!(matches!(err, Error::MissingParent { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("directory {}/no/such/dir does not exist", dir.display())),
        "{err}"
    );

    fs::write(dir.join("plain"), b"").unwrap();
    let err = write_atomic(dir.join("plain/file"), b"x").unwrap_err();
    assert!(matches!(err, Error::ParentNotDirectory { .. }), "{err}");
}

#[test]
fn a_read_only_parent_is_a_clear_error() {
    if is_root() {
        // Root bypasses directory write permission; tests/tests/atomic_write.rs covers this case
        // as root with a read-only bind mount and with an unprivileged user.
        eprintln!(
            "\n!!! SKIPPED: running as root, which ignores directory permissions (see e2e) !!!\n"
        );
        return;
    }
    let (_t, dir) = tempdir();
    let ro = dir.join("ro");
    fs::create_dir(&ro).unwrap();
    fs::write(ro.join("file"), b"old").unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    let err = write_atomic(ro.join("file"), b"new").unwrap_err();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(err, Error::CreateTemp { .. }), "{err}");
    assert!(err.to_string().contains(ro.to_str().unwrap()), "{err}");
    assert_eq!(fs::read(ro.join("file")).unwrap(), b"old");
}

#[test]
fn invalid_targets_are_refused() {
    let (_t, dir) = tempdir();
    let err = write_atomic(dir.join(".x.atomic-0123456789.tmp"), b"x").unwrap_err();
    assert!(matches!(err, Error::InvalidTarget { .. }), "{err}");
    let err = write_atomic("/", b"x").unwrap_err();
    assert!(matches!(err, Error::InvalidTarget { .. } | Error::IsDirectory { .. }), "{err}");
}

#[test]
fn a_name_as_long_as_name_max_still_works() {
    let (_t, dir) = tempdir();
    let name = "n".repeat(255);
    let file = AtomicFile::create(dir.join(&name), &WriteOptions::default()).unwrap();
    let temp = file.temp_path().file_name().unwrap().to_owned();
    assert_eq!(temp.len(), 255);
    assert!(is_temp_name(temp.as_ref()));
    file.commit().unwrap();
    assert_eq!(names(&dir), [name]);
}

/// Content that says who wrote it and how long it is, then a body derived from both.
fn writer_content(id: usize, len: usize) -> Vec<u8> {
    let mut content = format!("writer {id:02} len {len:08}\n").into_bytes();
    let mut x = (id as u32).wrapping_mul(2_654_435_761) | 1;
    while content.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        content.push(x as u8);
    }
    content
}

#[test]
fn sixteen_threads_writing_one_target_leave_exactly_one_complete_version() {
    const THREADS: usize = 16;
    const ROUNDS: usize = 5;
    let (_t, dir) = tempdir();
    let target = dir.join("shared");
    let contents: Vec<Vec<u8>> =
        (0..THREADS).map(|id| writer_content(id, 300_000 + id * 4099)).collect();
    let contents = Arc::new(contents);
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|id| {
                let (barrier, contents, target) =
                    (barrier.clone(), contents.clone(), target.clone());
                std::thread::spawn(move || {
                    let mut opts = WriteOptions::default();
                    opts.durability = Durability::None;
                    let mut file = AtomicFile::create(&target, &opts).unwrap();
                    barrier.wait();
                    // Several writes each, interleaved with the other threads'.
                    for chunk in contents[id].chunks(16 * 1024) {
                        file.write_all(chunk).unwrap();
                    }
                    file.commit().unwrap();
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let got = fs::read(&target).unwrap();
        let matches = contents.iter().filter(|c| **c == got).count();
        assert_eq!(matches, 1, "round {round}: target is not exactly one writer's content");
        assert_eq!(names(&dir), ["shared"], "round {round}: temps left behind");
    }
}

#[test]
fn names_that_are_not_utf8_are_written_like_any_other() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let (_tmp, dir) = tempdir();
    let sub = dir.join(OsStr::from_bytes(b"dir\xe9"));
    fs::create_dir(&sub).unwrap();
    for name in [&b"caf\xe9.nes"[..], b"\xff\xfe", b"\xff\xfd"] {
        let target = sub.join(OsStr::from_bytes(name));
        write_atomic(&target, name).unwrap();
        assert_eq!(fs::read(&target).unwrap(), name);
    }
    // Through a symlink whose target is not UTF-8: the file it names is replaced, the link stays.
    symlink(OsStr::from_bytes(b"\xff\xfe"), sub.join("link")).unwrap();
    let file = AtomicFile::create(sub.join("link"), &WriteOptions::default()).unwrap();
    assert_eq!(file.target(), sub.join(OsStr::from_bytes(b"\xff\xfe")));
    assert!(is_temp_name(file.temp_path().file_name().unwrap()));
    file.commit().unwrap();
    assert_eq!(fs::read(sub.join(OsStr::from_bytes(b"\xff\xfe"))).unwrap(), b"");
    assert!(fs::symlink_metadata(sub.join("link")).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_dir(&sub).unwrap().count(), 4, "no temp left behind");

    // A message shows the name escaped, reversibly, never lossily.
    let err = write_atomic(dir.join(OsStr::from_bytes(b"gone\xe9/x")), b"").unwrap_err();
    assert!(err.to_string().contains(r"gone\xe9/x"), "{err}");
}

#[test]
fn a_temp_that_cannot_be_created_gives_the_system_error_itself() {
    // sysfs takes no new file, not even from root (EPERM; EROFS where it is mounted read-only).
    if !Path::new("/sys/kernel").is_dir() {
        assert!(std::env::var_os("CI").is_none_or(|v| v != "true"), "CI has /sys");
        eprintln!("SKIPPED a_temp_that_cannot_be_created...: no sysfs at /sys");
        return;
    }
    let err =
        AtomicFile::create("/sys/atomic-io-cannot-create", &WriteOptions::default()).err().unwrap();
    assert!(matches!(err, Error::CreateTemp { .. }), "{err:?}");
    // The cause is the system's error as it is: its errno, and no temp path in the words (the
    // message names the directory and the target; a temp path would be shown unescaped).
    let cause =
        std::error::Error::source(&err).and_then(|c| c.downcast_ref::<std::io::Error>()).unwrap();
    assert!(cause.raw_os_error().is_some(), "{cause:?}");
    assert!(!cause.to_string().contains("at path"), "{cause}");
}

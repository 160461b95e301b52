//! Tree hashing on real files: order, symlinks, special files, per-file errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use checksum::{Algo, FileKind, TreeOptions, hash_bytes, hash_tree};

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn hashes_every_file_in_byte_order_of_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    // "a.txt" < "a/x" in byte order ('.' < '/'), although a depth-first walk visits a/ first.
    for rel in ["b", "a/x", "a.txt", "a/y/z", "C"] {
        write(dir.path(), rel, rel.as_bytes());
    }
    for jobs in [1, 4] {
        let mut opts = TreeOptions::default();
        opts.algo = Algo::Xxh64;
        opts.jobs = Some(jobs);
        let report = hash_tree(dir.path(), &opts, &()).unwrap();
        let rels: Vec<_> = report.files.iter().map(|f| f.rel.to_str().unwrap()).collect();
        assert_eq!(rels, ["C", "a.txt", "a/x", "a/y/z", "b"]);
        for f in &report.files {
            let rel = f.rel.to_str().unwrap();
            assert_eq!(f.digest, hash_bytes(Algo::Xxh64, rel.as_bytes()));
            assert_eq!(f.len, rel.len() as u64);
        }
        assert!(report.is_complete() && report.skipped.is_empty());
    }
}

#[test]
fn symlinks_are_reported_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret", b"outside the tree");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "real", b"inside");
    symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
    symlink(outside.path(), dir.path().join("dirlink")).unwrap();
    let report = hash_tree(dir.path(), &TreeOptions::default(), &()).unwrap();
    assert_eq!(report.files.len(), 1);
    let skipped: Vec<_> =
        report.skipped.iter().map(|s| (s.rel.to_str().unwrap(), s.kind)).collect();
    assert_eq!(skipped, [("dirlink", FileKind::Symlink), ("link", FileKind::Symlink)]);
}

#[test]
fn fifo_is_skipped_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a", b"a");
    let fifo = dir.path().join("pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo is part of coreutils");
    assert!(status.success());
    // Were the FIFO opened for reading, this call would block forever and the test would hang.
    let report = hash_tree(dir.path(), &TreeOptions::default(), &()).unwrap();
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.skipped[0].kind, FileKind::Fifo);
    // Given directly, it is refused, again without blocking.
    let err = checksum::hash_file(Algo::Xxh128, &fifo).unwrap_err();
    assert!(matches!(err, checksum::Error::NotAFile { kind: FileKind::Fifo, .. }), "{err}");
}

#[test]
fn an_unreadable_file_is_reported_and_the_rest_hashed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a", b"a");
    write(dir.path(), "c", b"c");
    // Tests run as root, which reads through any permission bits. A file that vanishes between
    // the walk and the read is an unreadable file root cannot bypass: a progress hook that runs
    // after the first file removes the next one.
    struct RemoveNext<'a>(&'a Path);
    impl checksum::TreeProgress for RemoveNext<'_> {
        fn file_done(&self, _rel: &Path, _len: u64) {
            let _ = std::fs::remove_file(self.0.join("c"));
        }
    }
    let mut opts = TreeOptions::default();
    opts.jobs = Some(1);
    let report = hash_tree(dir.path(), &opts, &RemoveNext(dir.path())).unwrap();
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.errors.len(), 1);
    let msg = report.errors[0].to_string();
    assert!(msg.contains("failed to open") && msg.contains("/c"), "{msg}");
}

#[test]
fn root_that_is_not_a_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f", b"");
    let err = hash_tree(dir.path().join("f"), &TreeOptions::default(), &()).unwrap_err();
    assert!(err.to_string().contains("not a regular file") || err.to_string().contains("/f"));
    let err = hash_tree(dir.path().join("missing"), &TreeOptions::default(), &()).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn streaming_equals_one_shot_across_buffer_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let len = checksum::BUF_SIZE * 3 + 17;
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    write(dir.path(), "big", &data);
    for algo in Algo::ALL {
        let fd = checksum::hash_file(algo, dir.path().join("big")).unwrap();
        assert_eq!((fd.digest, fd.len), (hash_bytes(algo, &data), len as u64), "{algo}");
    }
}

#[test]
fn large_files_read_on_a_second_thread_hash_the_same() {
    // Past the 8 MiB threshold hash_file reads on a helper thread; the digest must not change.
    let dir = tempfile::tempdir().unwrap();
    let len = (9 << 20) + 13;
    let data: Vec<u8> = (0..len).map(|i| (i * 13 % 247) as u8).collect();
    write(dir.path(), "big", &data);
    for algo in [Algo::Xxh128, Algo::Xxh64] {
        let fd = checksum::hash_file(algo, dir.path().join("big")).unwrap();
        assert_eq!((fd.digest, fd.len), (hash_bytes(algo, &data), len as u64), "{algo}");
    }
}

/// `jobs` caps every thread that reads or hashes: the default reads more files at once than
/// there are cores (for a cold disk), but a caller's cap is never exceeded.
#[test]
fn jobs_caps_the_threads_that_read() {
    use std::collections::HashSet;
    use std::sync::Mutex;
    struct Threads(Mutex<HashSet<String>>);
    impl checksum::TreeProgress for Threads {
        fn file_done(&self, _rel: &Path, _len: u64) {
            let name = std::thread::current().name().unwrap_or("unnamed").to_owned();
            self.0.lock().unwrap().insert(name);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for i in 0..64 {
        write(dir.path(), &format!("d/f{i}"), &vec![i as u8; 100_000]);
    }
    for cap in [1, 2] {
        let threads = Threads(Mutex::default());
        let mut opts = TreeOptions::default();
        opts.jobs = Some(cap);
        let report = hash_tree(dir.path(), &opts, &threads).unwrap();
        assert_eq!(report.files.len(), 64);
        let seen = threads.0.into_inner().unwrap();
        let allowed: HashSet<String> = (0..cap).map(|i| format!("checksum-{i}")).collect();
        assert!(seen.is_subset(&allowed), "cap {cap}: hashed on {seen:?}");
    }
    assert_eq!(checksum::reading_threads(Some(2)), 2);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(checksum::reading_threads(None), cores * checksum::READS_PER_CORE);
}

/// Folders are listed by several threads at once; the listing is still every file exactly
/// once, in byte order, whatever the shape of the tree.
#[test]
fn a_wide_and_deep_tree_is_listed_completely_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for a in 0..20 {
        for b in 0..3 {
            let rel = format!("a{a}/b{b}/c/f{a}-{b}");
            write(dir.path(), &rel, b"x");
            expected.push(rel);
        }
        let rel = format!("a{a}.txt");
        write(dir.path(), &rel, b"y");
        expected.push(rel);
    }
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    symlink(dir.path().join("a0"), dir.path().join("a0-link")).unwrap();
    expected.sort();
    let listing = checksum::list_tree(dir.path()).unwrap();
    let rels: Vec<String> =
        listing.files.iter().map(|f| f.rel.to_str().unwrap().to_owned()).collect();
    assert_eq!(rels, expected);
    assert_eq!(listing.skipped.len(), 1, "the symlink, not followed");
    assert!(listing.errors.is_empty());
}

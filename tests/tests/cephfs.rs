//! The toolkit on a shared file system: CephFS mounted through two `ceph-fuse` clients of one
//! real cluster ([`e2e::ceph::Cluster`]), standing for two hosts. Processes on both "hosts" race
//! for the same files; a holder is killed; a host is evicted by the MDS, which frees its locks and
//! fences it, as the server does with a host that stopped answering.
//!
//! A cluster takes seconds to start, so this binary starts one, in the single test's own thread,
//! and runs the scenarios against it one after another; each works in its own directory. The
//! scenario that evicts host A runs last. Processes are synchronised through pipes and the
//! messages the verbs print while they wait, never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::io::{BufReader, Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

use e2e::ceph::{Cluster, HostId};
use e2e::once::{
    kill_and_take_over, race_to_agree, start_paused_producer, start_waiter, stderr_of,
};
use e2e::{assert_exit, read_line_within, require_tool, safefs, wait_within};

#[test]
fn cephfs() {
    let Some(mut cluster) = Cluster::start() else { return };
    smoke(&cluster);
    once_across_hosts_produces_once_and_all_agree(&cluster);
    lock_excludes_across_hosts_and_names_the_holder_from_the_lock_file(&cluster);
    a_killed_producer_on_one_host_is_taken_over_by_the_other(&cluster);
    no_clobber_writes_race_across_hosts_one_wins(&cluster);
    seal_racing_verify_across_hosts_never_shows_a_partial_snapshot(&cluster);
    copy_racing_copy_to_one_destination_leaves_only_whole_files(&cluster);
    copy_and_seal_on_cephfs_fsync_each_file_and_never_trust_syncfs(&cluster);
    // Last: they evict host A, and kill its client.
    an_evicted_hosts_lock_is_lost_nothing_is_published_and_the_other_host_takes_over(&cluster);
    cluster.remount(HostId::A);
    a_lazily_unmounted_host_finishes_its_work_whole_and_keeps_its_lock_meanwhile(&mut cluster);
    cluster.remount(HostId::A);
    a_dead_client_keeps_its_lock_until_the_server_evicts_it_and_publishes_nothing(&mut cluster);
}

/// The same directory `name` as host A and host B see it, created through A.
fn shared_dir(cluster: &Cluster, name: &str) -> (PathBuf, PathBuf) {
    let (a, b) = (cluster.host_a().path().join(name), cluster.host_b().path().join(name));
    std::fs::create_dir(&a).unwrap();
    (a, b)
}

/// The harness gives what the other scenarios rely on: one file system seen from both hosts,
/// flock excluding across them, and S3 answering with the test user's keys.
fn smoke(cluster: &Cluster) {
    let (a, b) = shared_dir(cluster, "smoke");
    std::fs::write(a.join("hello"), b"from a").unwrap();
    assert_eq!(std::fs::read(b.join("hello")).unwrap(), b"from a");

    let flock = require_tool("flock").expect("util-linux flock");
    let mut holder = Command::new(&flock)
        .arg(a.join("lock"))
        .args(["-c", "echo held; read _"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(read_line_within(holder.stdout.take().unwrap()), "held\n");
    let other = Command::new(&flock).arg("-n").arg(b.join("lock")).arg("true").output().unwrap();
    assert_exit(&other, 1);
    holder.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert_eq!(wait_within(&mut holder), Some(0));
    // The unlock reaches the MDS after the holder has exited: the kernel sends FUSE's release
    // (which carries the flock unlock) to ceph-fuse in the background, after close returns. So
    // host B may still see the lock for a moment: wait for it, with a bound generous enough to
    // mean "never released" when it runs out. (`-n` here failed once in CI.)
    let other =
        Command::new(&flock).args(["-w", "60"]).arg(b.join("lock")).arg("true").output().unwrap();
    assert_exit(&other, 0);

    let s3 = cluster.s3();
    s3.create_bucket("smoke");
    let (code, _) = s3.request("PUT", "/smoke/hello", b"over s3");
    assert_eq!(code, 200);
    let (code, body) = s3.request("GET", "/smoke/hello", &[]);
    assert_eq!((code, body.as_slice()), (200, b"over s3".as_slice()));
}

/// Eight `once` processes, four through each host, ask for one artifact at the same moment: one
/// produces it (each production leaves a file named after its pid), and all eight read the same
/// bytes afterwards through their own host.
fn once_across_hosts_produces_once_and_all_agree(cluster: &Cluster) {
    let (a, b) = shared_dir(cluster, "once");
    let safefs = safefs().get_program().to_owned();
    for round in 0..4 {
        let target = format!("artifact-{round}");
        std::fs::create_dir(a.join(format!("made-{round}"))).unwrap();
        // Random bytes: two productions could never look alike. Slow enough that the others
        // arrive while it runs (the workload, not synchronisation).
        let producer = format!(
            "touch made-{round}/$$; head -c 300000 /dev/urandom > {{}}; head -c 3000000 /dev/zero | cksum >/dev/null"
        );
        let script = format!("\"$0\" once {target} -- sh -c '{producer}' && cksum < {target}");
        let dirs: Vec<&Path> = (0..8).map(|i| if i % 2 == 0 { &*a } else { &*b }).collect();
        race_to_agree(&script, &safefs, &dirs, round);
        let productions = std::fs::read_dir(b.join(format!("made-{round}"))).unwrap().count();
        assert_eq!(productions, 1, "round {round}: exactly one production across both hosts");
        assert_eq!(std::fs::metadata(a.join(&target)).unwrap().len(), 300_000);
    }
    assert_no_temps(&b);
}

/// `lock` on host A holds; `lock -n` on host B is refused and names A's `lock` process by its
/// pid, from the holder information in the lock file, marked as such: `/proc/locks` lists no lock
/// taken through ceph-fuse. A killed holder frees the lock for a waiter on the other host.
fn lock_excludes_across_hosts_and_names_the_holder_from_the_lock_file(cluster: &Cluster) {
    let (a, b) = shared_dir(cluster, "lock");
    let mut holder = safefs()
        .arg("lock")
        .arg(a.join("job.lock"))
        .args(["-c", "echo held; read _"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(read_line_within(holder.stdout.take().unwrap()), "held\n");
    let ino = std::fs::metadata(b.join("job.lock")).unwrap().ino();
    let proc_locks = std::fs::read_to_string("/proc/locks").unwrap();
    assert!(
        !proc_locks.lines().any(|l| l
            .split_whitespace()
            .nth(5)
            .is_some_and(|id| id.ends_with(&format!(":{ino}")))),
        "/proc/locks shows a ceph-fuse lock after all:\n{proc_locks}"
    );
    let refused =
        safefs().arg("lock").arg("-n").arg(b.join("job.lock")).arg("true").output().unwrap();
    assert_exit(&refused, 1);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(&format!("held by pid {} (", holder.id()))
            && said.contains("as written in the lock file (not seen in /proc/locks)"),
        "{said}"
    );

    // A waiter on host B; the holder on host A is killed while B waits.
    let (mut waiter, _err) = start_saying_waiting(
        safefs().arg("lock").arg(b.join("job.lock")).args(["-c", "echo got it"]),
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    let mut out = String::new();
    waiter.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(wait_within(&mut waiter), Some(0));
    assert_eq!(out, "got it\n");
}

/// A producer on host A is killed mid-write while a `once` on host B waits: B produces, and the
/// target is never the killed producer's partial file.
fn a_killed_producer_on_one_host_is_taken_over_by_the_other(cluster: &Cluster) {
    let (a, b) = shared_dir(cluster, "takeover");
    let mut producer = start_producer(&a, "T", "half-");
    assert!(!b.join("T").exists(), "nothing visible while the producer writes");
    let (mut waiter, mut err) = start_saying_waiting(
        safefs().args(["once", "T", "--", "sh", "-c", "printf complete > {}"]).current_dir(&b),
    );
    kill_and_take_over(&mut producer, &mut waiter, &mut err, "T");
    assert_eq!(std::fs::read_to_string(a.join("T")).unwrap(), "complete");
}

/// CephFS refuses `RENAME_NOREPLACE` (EINVAL); `write --no-clobber` falls back to link + unlink,
/// which refuses an existing name there too: of writers racing from both hosts for one new name,
/// exactly one succeeds and the file holds its complete text.
fn no_clobber_writes_race_across_hosts_one_wins(cluster: &Cluster) {
    let (a, b) = shared_dir(cluster, "noclobber");
    for round in 0..3 {
        let name = format!("report-{round}");
        let mut writers: Vec<(String, Child)> = (0..6)
            .map(|i| {
                let text = format!("writer {i} {}\n", "x".repeat(100_000));
                let child = safefs()
                    .args(["write", "--no-clobber", &name])
                    .current_dir(if i % 2 == 0 { &a } else { &b })
                    .stdin(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (text, child)
            })
            .collect();
        // All six get their text at once, so they reach the rename together. A writer that
        // finds the name taken before reading everything may close its stdin early.
        std::thread::scope(|s| {
            for (text, child) in &mut writers {
                let mut stdin = child.stdin.take().unwrap();
                s.spawn(move || match stdin.write_all(text.as_bytes()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    res => res.unwrap(),
                });
            }
        });
        let mut winners = Vec::new();
        for (text, child) in &mut writers {
            let err = stderr_of(child);
            match wait_within(child) {
                Some(0) => winners.push(text.clone()),
                Some(1) => assert!(err.contains("already exists"), "{err}"),
                other => panic!("write --no-clobber: {other:?}: {err}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one writer creates {name}");
        assert_eq!(std::fs::read_to_string(b.join(&name)).unwrap(), winners[0]);
    }
    assert_no_temps(&a);
}

/// Host A seals a snapshot while host B verifies it over and over: B sees either no manifest yet
/// or a snapshot that verifies, never a manifest that disagrees with the files (the manifest is
/// written last, atomically, after every file is durable); once the seal is done B's verify and
/// `latest` agree.
fn seal_racing_verify_across_hosts_never_shows_a_partial_snapshot(cluster: &Cluster) {
    let (a, b) = shared_dir(cluster, "snapshots");
    for step in 0..3 {
        let snap = format!("step-{step}");
        std::fs::create_dir(a.join(&snap)).unwrap();
        for i in 0..40 {
            std::fs::write(
                a.join(&snap).join(format!("shard-{i}.bin")),
                vec![step as u8 + i; 50_000],
            )
            .unwrap();
        }
        let mut seal =
            safefs().arg("seal").arg(a.join(&snap)).stderr(Stdio::piped()).spawn().unwrap();
        let mut verified_before_end = 0;
        loop {
            let sealed = seal.try_wait().unwrap();
            let out = safefs().arg("verify").arg(b.join(&snap)).output().unwrap();
            let said = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => verified_before_end += usize::from(sealed.is_none()),
                Some(2) if sealed.is_none() && said.contains("has no manifest.xxh128") => {}
                _ => panic!(
                    "verify on host B while host A seals: {:?}\n{}{said}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout)
                ),
            }
            if let Some(status) = sealed {
                assert!(status.success(), "seal: {}", stderr_of(&mut seal));
                assert_eq!(out.status.code(), Some(0), "verify after the seal ended: {said}");
                break;
            }
        }
        let _ = verified_before_end; // how often the race went either way is not asserted
        let latest = safefs().arg("latest").arg(&b).output().unwrap();
        assert_exit(&latest, 0);
        assert!(String::from_utf8_lossy(&latest.stdout).trim_end().ends_with(&snap));
    }
}

/// Host A copies one tree into DST while host B copies another tree with the same names into the
/// same DST: every file host B reads in DST, while the copies run and afterwards, is one source's
/// version entirely (size and bytes), and no temp file is left.
fn copy_racing_copy_to_one_destination_leaves_only_whole_files(cluster: &Cluster) {
    let (a, b) = shared_dir(cluster, "copies");
    let local = tempfile::tempdir().unwrap();
    let sources: Vec<PathBuf> = ["one", "two"]
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let src = local.path().join(name);
            for d in 0..4 {
                std::fs::create_dir_all(src.join(format!("dir-{d}"))).unwrap();
                for f in 0..10 {
                    // Large enough that the copies take a while: a file written in place
                    // (not a temp renamed) would be seen half-written by the reader below.
                    let len = 200_000 + 70_000 * k + 13 * f;
                    let byte = b'a' + u8::try_from(k).unwrap();
                    std::fs::write(src.join(format!("dir-{d}/rom-{f}.bin")), vec![byte; len])
                        .unwrap();
                }
            }
            src
        })
        .collect();
    let versions: std::collections::HashMap<String, Vec<Vec<u8>>> = (0..4)
        .flat_map(|d| (0..10).map(move |f| format!("dir-{d}/rom-{f}.bin")))
        .map(|rel| {
            let bytes = sources.iter().map(|s| std::fs::read(s.join(&rel)).unwrap()).collect();
            (rel, bytes)
        })
        .collect();
    for round in 0..3 {
        let dst = format!("dst-{round}");
        let mut copies: Vec<Child> = [(&sources[0], &a), (&sources[1], &b)]
            .into_iter()
            .map(|(src, host)| {
                safefs()
                    .arg("copy")
                    .arg(src)
                    .arg(host.join(&dst))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Every file host B can read in DST, while the copies run and after, is one source's
        // version entirely: never a file half-written, nor a mix of both.
        let check = |during: &str| {
            let mut files = 0;
            for d in 0..4 {
                for f in 0..10 {
                    let rel = format!("dir-{d}/rom-{f}.bin");
                    let Ok(got) = std::fs::read(b.join(&dst).join(&rel)) else { continue };
                    files += 1;
                    let whole = versions[&rel].contains(&got);
                    assert!(
                        whole,
                        "round {round}, {during}: {rel} is neither source's version ({} bytes)",
                        got.len()
                    );
                }
            }
            files
        };
        while copies.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
            check("while the copies run");
        }
        for copy in &mut copies {
            let err = stderr_of(copy);
            // Either may find the other's files in its way and report them; neither may crash.
            assert!(matches!(wait_within(copy), Some(0 | 1)), "copy: {err}");
        }
        assert!(check("after the copies") > 0, "round {round}: the copies copied nothing");
        assert_no_temps(&b.join(&dst));
    }
}

/// ceph-fuse is a FUSE file system, where `syncfs` syncs nothing: a copy onto it makes each file
/// durable with its own `fsync`, and so does a seal of files another process wrote there without
/// syncing them; neither calls `syncfs` (seen with strace).
fn copy_and_seal_on_cephfs_fsync_each_file_and_never_trust_syncfs(cluster: &Cluster) {
    let Some(strace) = require_tool("strace") else { return };
    let (a, _) = shared_dir(cluster, "durable");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(a.join("snap")).unwrap();
    for i in 0..12 {
        std::fs::write(src.join(format!("file-{i}")), format!("content {i}")).unwrap();
        std::fs::write(a.join("snap").join(format!("file-{i}")), format!("content {i}")).unwrap();
    }
    let trace = work.path().join("strace");
    let synced = |verb: &[&std::ffi::OsStr]| {
        let out = Command::new(&strace)
            .args(["-f", "-qq", "-e", "trace=fsync,fdatasync,syncfs", "-o"])
            .arg(&trace)
            .arg(safefs().get_program())
            .args(verb)
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let calls = std::fs::read_to_string(&trace).unwrap();
        let count = |name: &str| calls.lines().filter(|l| l.contains(&format!("{name}("))).count();
        assert_eq!(count("syncfs"), 0, "{verb:?}: syncfs is not trusted on FUSE:\n{calls}");
        assert!(count("fsync") + count("fdatasync") >= 12, "{verb:?}: an fsync per file:\n{calls}");
    };
    synced(&["copy".as_ref(), src.as_os_str(), a.join("dst").as_os_str()]);
    synced(&["seal".as_ref(), a.join("snap").as_os_str()]);
}

/// A producer on host A holds the lock and has written its temp when the MDS evicts host A (as
/// it does a host that stopped answering): the MDS frees A's lock, so a waiting `once` on host B
/// produces; A's `once` then finds its lock lost (EIO from ceph-fuse), says so naming the file
/// system, and publishes nothing. A `lock` on A whose host is evicted while CMD runs exits 1 and
/// says the lock was lost.
fn an_evicted_hosts_lock_is_lost_nothing_is_published_and_the_other_host_takes_over(
    cluster: &Cluster,
) {
    let (a, b) = shared_dir(cluster, "evicted");
    let mut producer = start_producer(&a, "T", "from-evicted-host-a");
    let mut holder = safefs()
        .arg("lock")
        .arg(a.join("job.lock"))
        .args(["-c", "echo held; read _"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(read_line_within(holder.stdout.take().unwrap()), "held\n");
    let (mut waiter, mut waiter_err) = start_saying_waiting(
        safefs().args(["once", "T", "--", "sh", "-c", "printf from-host-b > {}"]).current_dir(&b),
    );

    cluster.evict(cluster.host_a());
    assert_eq!(wait_within(&mut waiter), Some(0), "B takes over once A is evicted");
    let mut said = String::new();
    waiter_err.read_to_string(&mut said).unwrap();
    assert!(said.contains("produced T"), "{said}");

    // A's producer ends its command now: its temp was complete, but the lock is gone.
    drop(producer.stdin.take());
    let mut err = String::new();
    producer.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(wait_within(&mut producer), Some(1), "{err}");
    assert_lost_lock_reported(cluster, &err);
    assert_eq!(std::fs::read_to_string(b.join("T")).unwrap(), "from-host-b");

    holder.stdin.take().unwrap().write_all(b"\n").unwrap();
    let err = stderr_of(&mut holder);
    assert_eq!(wait_within(&mut holder), Some(1), "{err}");
    assert!(err.contains("lock: lost the lock on") && err.contains("(fuse.ceph-fuse at "), "{err}");

    // The evicted producer's temp is an orphan whose lock died with A's session: host B sweeps it.
    let swept = safefs().arg("sweep").arg(&b).output().unwrap();
    assert_exit(&swept, 0);
    assert_no_temps(&b);
}

/// Spawns `cmd` (a `lock` or `once` that will have to wait) with stdout and stderr piped, and
/// returns once it said it is waiting, with the rest of its stderr.
fn start_saying_waiting(cmd: &mut Command) -> (Child, BufReader<ChildStderr>) {
    let (child, err, said) = start_waiter(cmd);
    assert!(said.starts_with("waiting for lock on"), "{said}");
    (child, err)
}

/// `once` on host `dir`, paused mid-write with `text` in its temp (see
/// [`e2e::once::start_paused_producer`]).
fn start_producer(dir: &Path, target: &str, text: &str) -> Child {
    let mut cmd = safefs();
    cmd.current_dir(dir);
    start_paused_producer(cmd, &[], target, text, "")
}

/// `err`, what host A's `once` said, reports the lock lost under host A's mount and nothing
/// published.
fn assert_lost_lock_reported(cluster: &Cluster, err: &str) {
    assert!(
        err.contains(&format!(
            "lost the lock on T.lock: the file system (fuse.ceph-fuse at {}) failed under it",
            cluster.host_a().path().display()
        )) && err.contains("T not touched"),
        "{err}"
    );
}

/// No toolkit temp file anywhere under `dir`.
fn assert_no_temps(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".atomic-"), "temp left: {}", entry.path().display());
        if entry.file_type().unwrap().is_dir() {
            assert_no_temps(&entry.path());
        }
    }
}

/// Host A's ceph-fuse dies (SIGKILL, as in a crash of the host's client) while A's producer holds
/// the lock. The MDS cannot tell a dead client from a slow one: A's lock holds until the server
/// evicts A (its session timeout, 60 s by default; done by hand here to stay fast). Then B
/// produces, and A's producer, whose mount now answers ENOTCONN, reports the lost lock and
/// publishes nothing.
fn a_dead_client_keeps_its_lock_until_the_server_evicts_it_and_publishes_nothing(
    cluster: &mut Cluster,
) {
    let (a, b) = shared_dir(cluster, "dead-client");
    let mut producer = start_producer(&a, "T", "from-dead-host-a");
    cluster.kill_client(HostId::A);
    // What the MDS does when the dead client's session times out (until then, host B's requests
    // on the files A had open wait for it).
    cluster.evict(cluster.host_a());
    let made = safefs()
        .args(["once", "T", "--", "sh", "-c", "printf from-host-b > {}"])
        .current_dir(&b)
        .output()
        .unwrap();
    assert_exit(&made, 0);

    drop(producer.stdin.take());
    let err = stderr_of(&mut producer);
    assert_eq!(wait_within(&mut producer), Some(1), "{err}");
    assert_lost_lock_reported(cluster, &err);
    assert_eq!(std::fs::read_to_string(b.join("T")).unwrap(), "from-host-b");
}

/// Host A's mount is detached lazily (`umount -l`) while A's producer holds the lock and writes:
/// that is not a lost lock. ceph-fuse keeps serving the files A's processes have open, the lock
/// still excludes host B, and the producer publishes its complete artifact, which B then reuses.
fn a_lazily_unmounted_host_finishes_its_work_whole_and_keeps_its_lock_meanwhile(
    cluster: &mut Cluster,
) {
    let (a, b) = shared_dir(cluster, "lazy-unmount");
    let mut producer = start_producer(&a, "T", "from-host-a");
    cluster.unmount_lazily(HostId::A);
    let refused =
        safefs().arg("lock").arg("-n").arg(b.join("T.lock")).arg("true").output().unwrap();
    assert_exit(&refused, 1);

    drop(producer.stdin.take());
    let err = stderr_of(&mut producer);
    assert_eq!(wait_within(&mut producer), Some(0), "{err}");
    let reused = safefs()
        .args(["once", "T", "--", "sh", "-c", "printf from-host-b > {}"])
        .current_dir(&b)
        .output()
        .unwrap();
    assert_exit(&reused, 0);
    assert!(String::from_utf8_lossy(&reused.stderr).contains("reused T"));
    assert_eq!(std::fs::read_to_string(b.join("T")).unwrap(), "from-host-a");
}

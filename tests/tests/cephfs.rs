//! The toolkit on a shared file system: CephFS mounted through two `ceph-fuse` clients of one
//! real cluster ([`e2e::ceph::Cluster`]), standing for two hosts.
//!
//! A cluster takes seconds to start, so this binary starts one, in the single test's own thread,
//! and runs the scenarios against it one after another; each scenario works in its own directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::io::Write as _;
use std::process::{Command, Stdio};

use e2e::ceph::Cluster;
use e2e::{assert_exit, read_line_within, require_tool, wait_within};

#[test]
fn cephfs() {
    let Some(cluster) = Cluster::start() else { return };
    smoke(&cluster);
}

/// The harness gives what the other scenarios rely on: one file system seen from both hosts,
/// flock excluding across them, and S3 answering with the test user's keys.
fn smoke(cluster: &Cluster) {
    let (a, b) = (cluster.host_a().path().join("smoke"), cluster.host_b().path().join("smoke"));
    std::fs::create_dir(&a).unwrap();
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
    let other = Command::new(&flock).arg("-n").arg(b.join("lock")).arg("true").output().unwrap();
    assert_exit(&other, 0);

    let s3 = cluster.s3();
    s3.create_bucket("smoke");
    let (code, _) = s3.request("PUT", "/smoke/hello", b"over s3");
    assert_eq!(code, 200);
    let (code, body) = s3.request("GET", "/smoke/hello", &[]);
    assert_eq!((code, body.as_slice()), (200, b"over s3".as_slice()));
}

//! `cephfs`: copying the ROM-like tree from the local disk onto CephFS, ours (durability full
//! and none, verification on) against the `copy` group's peers (`cp -a`, `cp -a` then `sync`,
//! `rsync -a`, `rsync -a --fsync`, `xcp -r`, those installed), each into a fresh destination
//! (removed, untimed, before every run).
//!
//! Where: the folder named by `SAFEFS_BENCH_CEPHFS` (on a CephFS mount, or any shared file
//! system a user wants to measure); without it, a one-host Ceph cluster started for the run the
//! way the test suite starts it (`e2e::ceph::Cluster`: an OSD on the in-memory store, CephFS
//! through `ceph-fuse` on the loopback), so the figures measure the clients and the MDS, not
//! disks or a network. Without either, the group says so and measures nothing.

use std::path::PathBuf;

use anyhow::Context as _;

use super::{Ctx, TreeSpec, ensure_tree};
use crate::bench::copy::{Peers, ours, removed};

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let (root, on) = match std::env::var_os("SAFEFS_BENCH_CEPHFS") {
        Some(dir) => (PathBuf::from(dir), "SAFEFS_BENCH_CEPHFS"),
        None => match ctx.cluster() {
            Some(cluster) => (cluster.host_a().path().to_owned(), "a one-host Ceph cluster"),
            None => {
                say!(
                    "bench: group `cephfs` SKIPPED, nothing measured: give SAFEFS_BENCH_CEPHFS=DIR \
                     on a CephFS mount, or install Ceph (ceph-mon ceph-osd ceph-mgr ceph-mds \
                     radosgw ceph-fuse ceph-common) and run as root with /dev/fuse to let the \
                     benchmark start a one-host cluster"
                );
                return Ok(());
            }
        },
    };
    let spec = TreeSpec::standard(ctx.quick)
        .into_iter()
        .find(|s| s.name == "rom")
        .context("no rom tree")?;
    let src = ensure_tree(&ctx.data_dir, &spec)?;
    let dst = root.join(format!("safefs-bench-{}", spec.name));
    let (src, dst) = (&src, &dst);
    let fresh = removed(dst);
    let peers = Peers::find(ctx);
    let mut contenders: Vec<_> =
        ["full", "none"].map(|durability| ours(ctx, src, dst, durability).with_reset(fresh)).into();
    contenders.extend(peers.contenders(src, dst, fresh));
    let title = format!("cephfs: copy {spec} to {} ({on})", toolkit::names::shown(dst));
    ctx.table(&title, Some(spec.bytes()), &mut contenders);
    fresh()
}

//! `s3`: uploading the ROM-like tree to an S3 store, ours (`copy TREE s3://...`, each object
//! read back and verified, and with `--no-verify`) against `rclone copy` and
//! `aws s3 cp --recursive`, each into an emptied prefix (emptied, untimed, before every run).
//!
//! Where: `SAFEFS_BENCH_S3=s3://bucket/prefix` with the AWS variables (endpoint and keys) for
//! it; without it, the RGW of a one-host Ceph cluster started for the run the way the test suite
//! starts it (`e2e::ceph::Cluster`, an OSD on the in-memory store, plain HTTP on the loopback),
//! into `s3://bench/roms`. Without either, the group says so and measures nothing.

use std::process::Command;

use anyhow::Context;

use super::{Contender, Ctx, TreeSpec, ensure_tree};

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    // The store's URL and the AWS variables every contender gets: the user's own, or the
    // cluster's (set on each child; this process's environment is left alone).
    let (url, env) = match std::env::var("SAFEFS_BENCH_S3") {
        Ok(url) => (url, Vec::new()),
        Err(_) => match ctx.cluster() {
            Some(cluster) => {
                cluster.s3().create_bucket("bench");
                let env = cluster.s3().env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                ("s3://bench/roms".to_owned(), env)
            }
            None => {
                say!(
                    "bench: group `s3` SKIPPED, nothing measured: give SAFEFS_BENCH_S3=s3://bucket/prefix \
                     with AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for it, or \
                     install Ceph (ceph-mon ceph-osd ceph-mgr ceph-mds radosgw ceph-fuse \
                     ceph-common) and run as root with /dev/fuse to let the benchmark start a \
                     one-host cluster"
                );
                return Ok(());
            }
        },
    };
    let var = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    };
    let config =
        bucket::Config::from_vars(&url, var).with_context(|| format!("cannot open {url}"))?;
    let at = bucket::Location::parse(&url).with_context(|| format!("cannot open {url}"))?;
    let store =
        bucket::Store::with_config(at, &config).with_context(|| format!("cannot open {url}"))?;
    let rclone = ctx.tool("rclone");
    let aws = ctx.tool("aws");
    let endpoint = var("AWS_ENDPOINT_URL").unwrap_or_default();
    let (key, secret) = (
        var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
        var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
    );
    let spec = TreeSpec::standard(ctx.quick)
        .into_iter()
        .find(|s| s.name == "rom")
        .context("no rom tree")?;
    let src = ensure_tree(&ctx.data_dir, &spec)?;
    let location = store.location().clone();
    let empty = || -> anyhow::Result<()> {
        for object in store.list("")? {
            store.delete(&object.rel)?;
        }
        Ok(())
    };
    let (src, url, location, endpoint) = (&src, &url, &location, &endpoint);
    let (key, secret, env) = (&key, &secret, &env);
    let ours = |verify: bool| {
        move || {
            let mut cmd = Command::new(&ctx.exe);
            cmd.arg("copy");
            if !verify {
                cmd.arg("--no-verify");
            }
            cmd.arg(src).arg(url).envs(env.iter().map(|(k, v)| (k, v)));
            cmd
        }
    };
    let mut contenders = vec![
        Contender::command("ours: copy (read back, verified)", ours(true)).with_reset(empty),
        Contender::command("ours: copy --no-verify", ours(false)).with_reset(empty),
    ];
    if let Some(rclone) = &rclone {
        contenders.push(
            Contender::command("rclone copy", move || {
                let mut cmd = Command::new(rclone);
                // An on-the-fly remote from the same endpoint and keys; rclone checks each
                // upload's MD5 against the ETag.
                cmd.arg("copy")
                    .arg(src)
                    .arg(format!(":s3:{}/{}", location.bucket(), location.prefix()))
                    .args(["--s3-provider", "Ceph"])
                    .arg(format!("--s3-endpoint={endpoint}"))
                    .arg(format!("--s3-access-key-id={key}"))
                    .arg(format!("--s3-secret-access-key={secret}"))
                    // rclone 1.60 refuses to start when AWS_CA_BUNDLE is set and it builds its
                    // own transport ("LoadCustomCABundleError"); the endpoint is plain HTTP.
                    .env_remove("AWS_CA_BUNDLE")
                    .envs(env.iter().map(|(k, v)| (k, v)));
                cmd
            })
            .with_reset(empty),
        );
    }
    if let Some(aws) = &aws {
        contenders.push(
            Contender::command("aws s3 cp --recursive", move || {
                let mut cmd = Command::new(aws);
                cmd.args(["s3", "cp", "--recursive", "--quiet"])
                    .arg(src)
                    .arg(url)
                    .arg(format!("--endpoint-url={endpoint}"))
                    .envs(env.iter().map(|(k, v)| (k, v)));
                cmd
            })
            .with_reset(empty),
        );
    }
    let title = format!("s3: upload {spec} to {url}");
    ctx.table(&title, Some(spec.bytes()), &mut contenders);
    empty()
}

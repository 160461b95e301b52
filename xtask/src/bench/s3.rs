//! `s3`: uploading the ROM-like tree to an S3 store, ours (`copy TREE s3://...`, each object
//! read back and verified, and with `--no-verify`) against `rclone copy` and
//! `aws s3 cp --recursive`, each into an emptied prefix (emptied, untimed, before every run).
//!
//! It needs a store: `SAFEFS_BENCH_S3=s3://bucket/prefix` and the AWS variables (endpoint and
//! keys) for it; without them the group says so and measures nothing. The test suite's one-host
//! Ceph RGW is what the figures in docs/BENCHMARKS.md were measured on.

use std::process::Command;

use anyhow::Context;

use super::{Contender, Ctx, TreeSpec, ensure_tree};

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let Ok(url) = std::env::var("SAFEFS_BENCH_S3") else {
        say!(
            "bench: group `s3` needs SAFEFS_BENCH_S3=s3://bucket/prefix and AWS_ENDPOINT_URL, \
             AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY for it; skipped"
        );
        return Ok(());
    };
    let store = bucket::Store::open(&url).with_context(|| format!("cannot open {url}"))?;
    let rclone = ctx.tool("rclone");
    let aws = ctx.tool("aws");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let endpoint = var("AWS_ENDPOINT_URL");
    let (key, secret) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"));
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
    let (key, secret) = (&key, &secret);
    let ours = |verify: bool| {
        move || {
            let mut cmd = Command::new(&ctx.exe);
            cmd.arg("copy");
            if !verify {
                cmd.arg("--no-verify");
            }
            cmd.arg(src).arg(url);
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
                    .env_remove("AWS_CA_BUNDLE");
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
                    .arg(format!("--endpoint-url={endpoint}"));
                cmd
            })
            .with_reset(empty),
        );
    }
    let title = format!(
        "s3: upload tree `{}` ({} files in {} folders, {} MiB) to {url}",
        spec.name,
        spec.dirs * spec.files_per_dir,
        spec.dirs,
        spec.bytes() >> 20
    );
    ctx.table(&title, Some(spec.bytes()), &mut contenders);
    empty()
}

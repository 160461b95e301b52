//! The `s3://bucket/prefix` forms of the verbs (`copy`, `once --store`, `seal`, `verify`,
//! `latest`): opening the store, and the messages and `--json` shapes they share with the local
//! forms. Each verb's module decides when to come here; the work is the `bucket` crate's.

use std::ffi::OsStr;
use std::path::Path;
use std::process::ExitCode;

use serde_json::json;
use toolkit::{names, snapshot_verify};

use crate::exit;

/// The store a URL argument names (`s3://bucket/prefix`), with endpoint and keys from the AWS
/// variables and profile files; an error naming the URL otherwise.
pub(crate) fn open(url: &OsStr) -> Result<bucket::Store, bucket::Error> {
    let text = url.to_str().ok_or_else(|| bucket::Error::InvalidUrl {
        url: names::escape(Path::new(url)).into_owned(),
        reason: "not UTF-8".to_owned(),
    })?;
    bucket::Store::open(text)
}

/// The store `url` names, or `None` after its error was reported as [`fatal`] reports it (the
/// verb then exits 2 with [`exit::USAGE`]).
fn open_or_report(
    verb: &str,
    json: bool,
    fields: &serde_json::Value,
    url: &Path,
) -> anyhow::Result<Option<bucket::Store>> {
    match open(url.as_os_str()) {
        Ok(store) => Ok(Some(store)),
        Err(err) => fatal(verb, json, fields.clone(), &err).map(|_| None),
    }
}

/// A `bucket` error before any work: on stderr (`VERB: message`), or as
/// `{..., "ok": false, "error": {"kind", "message"}}` with `--json`; exit 2.
pub(crate) fn fatal(
    verb: &str,
    json: bool,
    fields: serde_json::Value,
    err: &bucket::Error,
) -> anyhow::Result<ExitCode> {
    let message = crate::Chain(err).to_string();
    if json {
        let mut value = fields;
        value["ok"] = json!(false);
        value["error"] = json!({ "kind": error_kind(err), "message": message });
        super::verify::print_json(&value)?;
    } else {
        say!("{verb}: {message}");
    }
    Ok(exit::USAGE.into())
}

/// The `kind` of a `bucket` error in `--json` reports.
pub(crate) fn error_kind(err: &bucket::Error) -> &'static str {
    match err {
        bucket::Error::InvalidUrl { .. } => "invalid_url",
        bucket::Error::NoCredentials { .. } => "no_credentials",
        bucket::Error::NoBucket { .. } => "no_bucket",
        bucket::Error::NoConditions { .. } => "no_conditional_writes",
        bucket::Error::Store { .. } => "store",
        bucket::Error::Mismatch { .. } => "mismatch",
        bucket::Error::Invalid { .. } => "invalid",
        _ => "error",
    }
}

/// Which way a copy with `s3://` on one side goes: `(upload, the URL)`; a store on both sides
/// is refused.
fn direction<'a>(src: &'a Path, dst: &'a Path) -> anyhow::Result<(bool, &'a Path)> {
    match (bucket::is_url(src.as_os_str()), bucket::is_url(dst.as_os_str())) {
        (true, true) => anyhow::bail!(
            "copy between two stores is not supported: copy to a local directory first"
        ),
        (false, true) => Ok((true, dst)),
        _ => Ok((false, src)),
    }
}

/// `copy --dry-run` with `s3://` on one side: what each file would get (`copy` or `compare`,
/// decided from both listings: nothing is read or written), in the local dry run's shape.
pub(crate) fn dry_run(src: &Path, dst: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let fields = json!({ "src": names::escape(src), "dst": names::escape(dst), "dry_run": true });
    let (up, url) = direction(src, dst)?;
    let Some(store) = open_or_report("copy", json, &fields, url)? else {
        return Ok(exit::USAGE.into());
    };
    let plan = match up {
        true => bucket::plan_upload(src, &store),
        false => bucket::plan_download(&store, dst),
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(err) => return fatal("copy", json, fields, &err),
    };
    for name in &plan.not_files {
        say!("copy: would skip {name}: not a regular file (object storage holds files only)");
    }
    for problem in &plan.problems {
        say!("copy: would fail {}: {}", problem.path, crate::Chain(&problem.error));
    }
    let ok = plan.problems.is_empty();
    if json {
        let mut value = serde_json::to_value(&plan)?;
        for (key, v) in fields.as_object().into_iter().flatten() {
            value[key] = v.clone();
        }
        value["ok"] = json!(ok);
        super::verify::print_json(&value)?;
    } else {
        let count = |action| plan.entries.iter().filter(move |e| e.action == action);
        let to_copy = count(bucket::Action::Copy);
        let bytes: u64 = to_copy.clone().map(|e| e.len).sum();
        for entry in &plan.entries {
            let action = match entry.action {
                bucket::Action::Copy => "copy",
                bucket::Action::Compare => "compare",
            };
            crate::out!("{action} {}", entry.path);
        }
        crate::out!(
            "dry run: would copy {} ({}), compare {} (skipped where the xxh128 matches); nothing \
             written",
            to_copy.count(),
            indicatif::HumanBytes(bytes),
            count(bucket::Action::Compare).count()
        );
    }
    Ok(if ok { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

/// `copy` with `s3://` on one side: upload a tree to a prefix or download a prefix into a tree.
pub(crate) fn copy(
    src: &Path,
    dst: &Path,
    opts: &bucket::TransferOptions,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let fields = json!({ "src": names::escape(src), "dst": names::escape(dst), "dry_run": false });
    let (up, url) = direction(src, dst)?;
    let Some(store) = open_or_report("copy", json, &fields, url)? else {
        return Ok(exit::USAGE.into());
    };
    let result = match up {
        true => bucket::upload(src, &store, opts, &()),
        false => bucket::download(&store, dst, opts, &()),
    };
    let report = match result {
        Ok(report) => report,
        Err(err) => return fatal("copy", json, fields, &err),
    };
    for failed in &report.failed {
        say!("copy: failed {}: {}", failed.path, crate::Chain(&failed.error));
    }
    for name in &report.not_files {
        say!("copy: skipped {name}: not a regular file (object storage holds files only)");
    }
    for name in &report.size_checked_only {
        say!(
            "copy: {}: no xxh128 in its metadata; checked by size only",
            store.location().url_of(name)
        );
    }
    if json {
        let mut value = serde_json::to_value(&report)?;
        for (key, v) in fields.as_object().into_iter().flatten() {
            value[key] = v.clone();
        }
        value["ok"] = json!(report.is_success());
        super::verify::print_json(&value)?;
    } else {
        crate::out!(
            "copy{} copied {} files ({}); skipped {} up to date; {} failed; {:.2}s{}{}",
            if report.interrupted { " interrupted:" } else { ":" },
            report.copied,
            indicatif::HumanBytes(report.copied_bytes),
            report.skipped,
            report.failed.len(),
            report.elapsed.as_secs_f64(),
            match (report.copied, up, report.verified) {
                (0, _, _) => "",
                (_, true, true) => ", each read back and verified (xxh128)",
                (_, true, false) => ", not read back (--no-verify)",
                (_, false, _) => ", verified (xxh128)",
            },
            match report.interrupted {
                true => format!("; {} not attempted", report.not_attempted),
                false => String::new(),
            }
        );
    }
    Ok(if report.interrupted {
        exit::INTERRUPTED.into()
    } else if report.is_success() {
        ExitCode::SUCCESS
    } else {
        exit::FAILED.into()
    })
}

/// `seal s3://bucket/prefix`: the same output and `--json` shape as a local seal.
pub(crate) fn seal(
    url: &Path,
    spec: &snapshot_verify::SealSpec,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let dir = names::escape(url).into_owned();
    let fields = json!({ "dir": dir });
    let Some(store) = open_or_report("seal", json, &fields, url)? else {
        return Ok(exit::USAGE.into());
    };
    match bucket::seal(&store, spec) {
        Ok(sealed) => {
            if json {
                let mut value = serde_json::to_value(&sealed)?;
                value["dir"] = json!(dir);
                value["ok"] = json!(true);
                super::verify::print_json(&value)?;
            } else {
                crate::out!(
                    "{dir}: sealed ({}, {}; {} verifies)",
                    super::verify::plural(sealed.files + 1, "object", "objects"),
                    indicatif::HumanBytes(sealed.bytes),
                    names::shown(&sealed.manifest)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(bucket::Error::Refused { reasons, .. }) => {
            if json {
                super::verify::print_json(
                    &json!({ "dir": dir, "ok": false, "refusals": reasons }),
                )?;
            } else {
                for reason in &reasons {
                    crate::out!("{reason}");
                }
                crate::out!(
                    "{dir}: seal refused, {}; nothing was written",
                    super::verify::plural(reasons.len() as u64, "reason", "reasons")
                );
            }
            Ok(exit::FAILED.into())
        }
        Err(err @ bucket::Error::AlreadySealed { .. }) => {
            if json {
                let value = json!({ "dir": dir, "ok": false, "error": { "kind": "already_sealed", "message": crate::Chain(&err).to_string() } });
                super::verify::print_json(&value)?;
            } else {
                say!("seal: {}", crate::Chain(&err));
            }
            Ok(exit::FAILED.into())
        }
        Err(err) => fatal("seal", json, fields, &err),
    }
}

/// `verify s3://bucket/prefix`: the same report, lines and `--json` shape as a local verify.
pub(crate) fn verify(
    url: &Path,
    opts: &snapshot_verify::VerifyOptions,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let dir = names::escape(url).into_owned();
    let fields = json!({ "dir": dir });
    let Some(store) = open_or_report("verify", json, &fields, url)? else {
        return Ok(exit::USAGE.into());
    };
    let report = match bucket::verify(&store, opts) {
        Ok(report) => report,
        Err(err) => return fatal("verify", json, fields, &err),
    };
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["dir"] = json!(dir);
        value["ok"] = json!(report.is_ok());
        super::verify::print_json(&value)?;
    } else {
        for problem in &report.problems {
            crate::out!("{problem}");
        }
        crate::out!("{}", super::verify::summary(&dir, &report));
    }
    Ok(if report.is_ok() { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

/// `latest s3://bucket/prefix`: the URL of the newest snapshot under it that verifies.
pub(crate) fn latest(url: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let root = names::escape(url).into_owned();
    let fields = json!({ "root": root });
    let Some(store) = open_or_report("latest", json, &fields, url)? else {
        return Ok(exit::USAGE.into());
    };
    let latest = match bucket::latest(&store, &Default::default()) {
        Ok(latest) => latest,
        Err(err) => return fatal("latest", json, fields, &err),
    };
    if json {
        let mut value = serde_json::to_value(&latest)?;
        value["root"] = json!(root);
        value["ok"] = json!(latest.found.is_some());
        super::verify::print_json(&value)?;
    } else {
        for skipped in &latest.skipped {
            say!("latest: skipped {}: {}", names::shown(&skipped.path), skipped.reason);
        }
        match &latest.found {
            Some(found) => crate::out!("{}", names::shown(found)),
            None => {
                say!("latest: no snapshot under {root} verifies ({} checked)", latest.skipped.len())
            }
        }
    }
    Ok(if latest.found.is_some() { ExitCode::SUCCESS } else { exit::FAILED.into() })
}

//! Endpoint, region and credentials, found the way AWS tools find them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// How to reach a store: what the AWS command-line tools would use.
///
/// [`Config::from_env`] reads, each first found winning:
///
/// - keys: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), else the
///   profile's `aws_access_key_id`/`aws_secret_access_key`/`aws_session_token` in the shared
///   credentials file, else in the config file;
/// - the profile: `AWS_PROFILE`, else `default`;
/// - region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1`;
/// - endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's `endpoint_url`, else AWS;
/// - files: `AWS_SHARED_CREDENTIALS_FILE` (else `~/.aws/credentials`, section `[NAME]`) and
///   `AWS_CONFIG_FILE` (else `~/.aws/config`, section `[profile NAME]`, or `[default]`).
///
/// Not supported (refused as missing credentials, never guessed): instance metadata, SSO,
/// `credential_process`, assumed roles.
///
/// ```
/// let config = bucket::Config {
///     access_key_id: "KEY".into(),
///     secret_access_key: "SECRET".into(),
///     endpoint: Some("http://127.0.0.1:7480".into()),
///     ..Default::default()
/// };
/// assert_eq!(config.region, "us-east-1");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The access key id.
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: String,
    /// A session token, for temporary credentials.
    pub session_token: Option<String>,
    /// The region requests are signed for.
    pub region: String,
    /// An S3-compatible server (`http://host:port`); `None` for AWS itself.
    pub endpoint: Option<String>,
    /// Where the keys came from, for messages (`AWS_ACCESS_KEY_ID`, `profile dev in FILE`).
    pub source: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: None,
            region: "us-east-1".to_owned(),
            endpoint: None,
            source: "given".to_owned(),
        }
    }
}

impl std::fmt::Debug for Config {
    // The secret and the token stay out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The configuration AWS tools would use in this process's environment, for `url` (named in
    /// the error when no keys are found).
    pub fn from_env(url: &str) -> Result<Config> {
        Config::from_vars(url, |name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`Config::from_env`] with the variables looked up by `var` (for tests, and the benchmark's own cluster).
    pub fn from_vars(url: &str, var: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let home = var("HOME").map(PathBuf::from);
        let in_home = |rel: &str| home.as_ref().map(|h| h.join(rel));
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
        let explicit_profile = var("AWS_PROFILE").is_some();
        let cred_file = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| in_home(".aws/credentials"));
        let conf_file =
            var("AWS_CONFIG_FILE").map(PathBuf::from).or_else(|| in_home(".aws/config"));
        let creds = match &cred_file {
            Some(path) => read_section(path, &profile)?,
            None => None,
        };
        let conf_section =
            if profile == "default" { "default".to_owned() } else { format!("profile {profile}") };
        let conf = match &conf_file {
            Some(path) => read_section(path, &conf_section)?,
            None => None,
        };
        if explicit_profile && creds.is_none() && conf.is_none() {
            return Err(Error::NoCredentials {
                url: url.to_owned(),
                reason: format!(
                    "AWS_PROFILE names profile {profile}, which neither {} nor {} has",
                    shown(cred_file.as_deref()),
                    shown(conf_file.as_deref())
                ),
            });
        }
        let from = |map: &Option<HashMap<String, String>>, key: &str| {
            map.as_ref().and_then(|m| m.get(key).cloned()).filter(|v| !v.is_empty())
        };
        let (access_key_id, secret_access_key, session_token, source) =
            match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => {
                    (id, secret, var("AWS_SESSION_TOKEN"), "AWS_ACCESS_KEY_ID".to_owned())
                }
                (Some(_), None) | (None, Some(_)) => {
                    return Err(Error::NoCredentials {
                        url: url.to_owned(),
                        reason: "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set"
                            .to_owned(),
                    });
                }
                (None, None) => {
                    let pick = [(&creds, cred_file.as_deref()), (&conf, conf_file.as_deref())]
                        .into_iter()
                        .find_map(|(map, file)| {
                            Some((
                                from(map, "aws_access_key_id")?,
                                from(map, "aws_secret_access_key")?,
                                from(map, "aws_session_token"),
                                format!("profile {profile} in {}", shown(file)),
                            ))
                        });
                    pick.ok_or_else(|| Error::NoCredentials {
                        url: url.to_owned(),
                        reason: format!(
                            "neither AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY nor profile \
                             {profile} in {} or {} gives keys",
                            shown(cred_file.as_deref()),
                            shown(conf_file.as_deref())
                        ),
                    })?
                }
            };
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| from(&conf, "region"))
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = var("AWS_ENDPOINT_URL_S3")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or_else(|| from(&conf, "endpoint_url"));
        Ok(Config { access_key_id, secret_access_key, session_token, region, endpoint, source })
    }
}

fn shown(path: Option<&Path>) -> String {
    path.map_or_else(|| "(no HOME)".to_owned(), |p| names::shown(p).to_string())
}

/// The `key = value` pairs of section `[name]` of an AWS INI file, or `None` when the file or
/// the section is absent. Keys are lower-cased; `#` and `;` start comments.
fn read_section(path: &Path, name: &str) -> Result<Option<HashMap<String, String>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Config { path: path.to_owned(), source }),
    };
    Ok(parse_section(&text, name))
}

fn parse_section(text: &str, name: &str) -> Option<HashMap<String, String>> {
    let mut found: Option<HashMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.trim() == name;
            if inside {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if let (true, Some((key, value))) = (inside, line.split_once('='))
            && let Some(map) = found.as_mut()
        {
            map.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn environment_wins_over_profiles() {
        let c = Config::from_vars(
            "s3://b",
            vars(&[
                ("AWS_ACCESS_KEY_ID", "K"),
                ("AWS_SECRET_ACCESS_KEY", "S"),
                ("AWS_DEFAULT_REGION", "eu-west-3"),
                ("AWS_ENDPOINT_URL", "http://h:1"),
            ]),
        )
        .unwrap();
        assert_eq!((c.access_key_id.as_str(), c.region.as_str()), ("K", "eu-west-3"));
        assert_eq!(c.endpoint.as_deref(), Some("http://h:1"));
    }

    #[test]
    fn a_named_profile_is_read_from_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        let conf = dir.path().join("conf");
        std::fs::write(&creds, "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n[dev]\n# keys\naws_access_key_id=DEV\naws_secret_access_key = DEVS\n").unwrap();
        std::fs::write(
            &conf,
            "[profile dev]\nregion = ap-south-1\nendpoint_url = http://rgw:7480\n",
        )
        .unwrap();
        let (c1, c2) = (creds.to_str().unwrap(), conf.to_str().unwrap());
        let base = [("AWS_SHARED_CREDENTIALS_FILE", c1), ("AWS_CONFIG_FILE", c2)];
        let c =
            Config::from_vars("s3://b", vars(&[base[0], base[1], ("AWS_PROFILE", "dev")])).unwrap();
        assert_eq!((c.access_key_id.as_str(), c.secret_access_key.as_str()), ("DEV", "DEVS"));
        assert_eq!(
            (c.region.as_str(), c.endpoint.as_deref()),
            ("ap-south-1", Some("http://rgw:7480"))
        );
        assert!(c.source.starts_with("profile dev in "), "{}", c.source);
        let d = Config::from_vars("s3://b", vars(&base)).unwrap();
        assert_eq!((d.access_key_id.as_str(), d.region.as_str()), ("D", "us-east-1"));
        let err = Config::from_vars("s3://b", vars(&[base[0], base[1], ("AWS_PROFILE", "nope")]))
            .unwrap_err();
        assert!(err.to_string().contains("profile nope"), "{err}");
    }

    #[test]
    fn no_keys_is_an_error_naming_the_url() {
        let err = Config::from_vars("s3://b/p", vars(&[("HOME", "/nonexistent")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("s3://b/p") && text.contains("AWS_ACCESS_KEY_ID"), "{text}");
    }
}

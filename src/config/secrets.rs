//! Secrets from files, the container convention: every secret setting `KEY` may be given as
//! `KEY_file` instead, the path of a file that holds it (a mounted Docker or Kubernetes secret).
//! The file is read at start and one trailing newline is dropped (`echo` and most editors add
//! one); setting both `KEY` and `KEY_file` is refused, naming the key, and so is an unreadable
//! or empty file. The secret itself never appears in an error.

use figment::value::{Dict, Value};

use super::ConfigError;

/// The secret settings, as key paths; `*` stands for any provider id. A new provider kind adds
/// its passwords and tokens here.
pub const SECRETS: [&str; 5] = [
    "database.url",
    "providers.*.smartca.sp_password",
    "providers.*.mssp.ap_pwd",
    "providers.*.callback_auth.token",
    "providers.*.callback_auth.secret",
];

/// Replaces every `KEY_file` of a secret in `root` by `KEY`, read from the file. Whether any
/// was replaced.
pub(super) fn resolve(root: &mut Dict) -> Result<bool, ConfigError> {
    let mut replaced = false;
    for pattern in SECRETS {
        let segments: Vec<&str> = pattern.split('.').collect();
        replaced |= visit(root, &segments, String::new())?;
    }
    Ok(replaced)
}

fn visit(dict: &mut Dict, segments: &[&str], path: String) -> Result<bool, ConfigError> {
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    match segments {
        [] => Ok(false),
        [leaf] => read_into(dict, leaf, join(leaf)),
        [first, rest @ ..] => {
            let mut replaced = false;
            for (name, value) in dict.iter_mut() {
                if *first != "*" && name != first {
                    continue;
                }
                if let Value::Dict(_, inner) = value {
                    replaced |= visit(inner, rest, join(name))?;
                }
            }
            Ok(replaced)
        }
    }
}

/// `key` (its full path, for errors) from the file `leaf_file` names, into `leaf`.
fn read_into(dict: &mut Dict, leaf: &str, key: String) -> Result<bool, ConfigError> {
    let file_key = format!("{leaf}_file");
    let Some(file) = dict.get(&file_key) else {
        return Ok(false);
    };
    if dict.contains_key(leaf) {
        return Err(ConfigError::SecretTwice { key });
    }
    let Some(path) = file.as_str().map(str::to_owned) else {
        return Err(ConfigError::SecretFile {
            key,
            why: "must be the path of a file".into(),
        });
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::SecretFile {
        key: key.clone(),
        why: format!("reading {path}: {e}"),
    })?;
    let secret = trim_one_newline(&text);
    if secret.is_empty() {
        return Err(ConfigError::SecretFile {
            key,
            why: format!("{path} is empty"),
        });
    }
    dict.remove(&file_key);
    dict.insert(leaf.to_owned(), Value::from(secret.to_owned()));
    Ok(true)
}

fn trim_one_newline(text: &str) -> &str {
    match text.strip_suffix('\n') {
        Some(line) => line.strip_suffix('\r').unwrap_or(line),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use figment::providers::{Format, Toml};
    use figment::Figment;
    use secrecy::ExposeSecret;

    use super::super::{Config, ConfigError, ProviderKind};

    /// A SmartCA provider `vnpt-smartca` whose password comes from `password`, a TOML line.
    fn with_password(password: &str) -> Result<Config, ConfigError> {
        let toml = format!(
            r#"
[providers.vnpt-smartca]
kind = "smartca"
trust_anchors = []
[providers.vnpt-smartca.smartca]
base_url = "http://127.0.0.1:1"
sp_id = "x"
{password}
"#
        );
        Config::from_figment(Figment::from(Toml::string(&toml)))
    }

    fn sp_password(config: &Config) -> String {
        match &config.providers["vnpt-smartca"].kind {
            ProviderKind::Smartca(c) => c.sp_password.expose_secret().to_owned(),
            other => panic!("not SmartCA: {other:?}"),
        }
    }

    #[test]
    fn a_secret_is_read_from_its_file_without_the_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("sp_password");
        std::fs::write(&file, "s3cret from a file\n").expect("write");
        let line = format!("sp_password_file = {:?}", file.display().to_string());
        let config = with_password(&line).expect("loads");
        assert_eq!(sp_password(&config), "s3cret from a file");

        std::fs::write(&file, "two newlines\n\n").expect("write");
        let config = with_password(&line).expect("loads");
        assert_eq!(
            sp_password(&config),
            "two newlines\n",
            "only one newline is dropped"
        );
    }

    #[test]
    fn a_secret_set_both_ways_is_refused_by_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("sp_password");
        std::fs::write(&file, "from the file").expect("write");
        let lines = format!(
            "sp_password = \"inline\"\nsp_password_file = {:?}",
            file.display().to_string()
        );
        let err = with_password(&lines).expect_err("both set");
        assert_eq!(
            err.to_string(),
            "configuration: `providers.vnpt-smartca.smartca.sp_password` and \
             `providers.vnpt-smartca.smartca.sp_password_file` are both set; set one"
        );
    }

    #[test]
    fn a_missing_or_empty_secret_file_is_refused_by_its_key_without_the_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("absent");
        let line = format!("sp_password_file = {:?}", missing.display().to_string());
        let err = with_password(&line).expect_err("missing file").to_string();
        assert!(
            err.starts_with(
                "configuration: `providers.vnpt-smartca.smartca.sp_password_file`: reading"
            ),
            "{err}"
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        let line = format!("sp_password_file = {:?}", empty.display().to_string());
        let err = with_password(&line).expect_err("empty file").to_string();
        assert!(err.ends_with("is empty"), "{err}");
    }

    #[test]
    fn a_file_key_of_a_setting_that_is_no_secret_is_refused_as_unknown() {
        let err = with_password("sp_password = \"x\"\nsp_id_file = \"/etc/hostname\"")
            .expect_err("sp_id is no secret");
        assert!(err.to_string().contains("sp_id_file"), "{err}");
    }

    #[test]
    fn every_secret_setting_takes_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            format!("{:?}", path.display().to_string())
        };
        let db = dir.path().join("kyso.db");
        let toml = format!(
            r#"
[database]
url_file = {url}
[providers.sca]
kind = "smartca"
trust_anchors = []
callback_auth = {{ kind = "bearer", token_file = {token} }}
[providers.sca.smartca]
base_url = "http://127.0.0.1:1"
sp_id = "x"
sp_password_file = {sp}
[providers.sim]
kind = "mssp"
trust_anchors = []
callback_auth = {{ kind = "hmac_sha256", secret_file = {hmac}, header = "x-signature" }}
[providers.sim.mssp]
base_url = "http://127.0.0.1:1"
ap_id = "x"
ap_pwd_file = {ap}
"#,
            url = file("url", &format!("sqlite://{}\n", db.display())),
            token = file("token", "tok\n"),
            sp = file("sp", "sp\n"),
            hmac = file("hmac", "mac\n"),
            ap = file("ap", "ap\n"),
        );
        let config = Config::from_figment(Figment::from(Toml::string(&toml))).expect("loads");
        assert_eq!(config.database.url, format!("sqlite://{}", db.display()));
        let sim = &config.providers["sim"];
        match (
            &config.providers["sca"].callback_auth,
            &sim.callback_auth,
            &sim.kind,
        ) {
            (
                crate::providers::callback_auth::CallbackAuth::Bearer { token },
                crate::providers::callback_auth::CallbackAuth::HmacSha256 { secret, .. },
                ProviderKind::Mssp(m),
            ) => {
                assert_eq!(token.expose_secret(), "tok");
                assert_eq!(secret.expose_secret(), "mac");
                assert_eq!(m.ap_pwd.expose_secret(), "ap");
            }
            other => panic!("{other:?}"),
        }
        match &config.providers["sca"].kind {
            ProviderKind::Smartca(c) => assert_eq!(c.sp_password.expose_secret(), "sp"),
            other => panic!("{other:?}"),
        }
    }
}

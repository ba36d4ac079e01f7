//! Environment overrides: `KYSO_<SECTION>__<KEY>`, nested keys joined by `__`, e.g.
//! `KYSO_DATABASE__URL` or `KYSO_PROVIDERS__VIETTEL_SIM__MSSP__AP_PWD`. Provider ids hold `-`,
//! which no shell accepts in a variable name (`export KYSO_PROVIDERS__VIETTEL-SIM__…` fails in
//! bash), so a provider id may be written with `_` for each `-`: the variable then applies to
//! the provider of the configuration file whose id reads so. An id that the file spells with
//! `_` itself keeps it, and the `-` spelling still works where the environment is not set by a
//! shell (an env file, a Kubernetes manifest).

use figment::providers::Env;
use figment::value::Uncased;

/// `KYSO_<SECTION>__<KEY>` variables, provider ids read against `ids` (the file's). Variables
/// without a section (`KYSO_DEV_API_KEY`, `KYSO_LOG_FORMAT`) belong to the command line, not to
/// the configuration.
pub fn overrides(ids: Vec<String>) -> Env {
    Env::prefixed("KYSO_")
        .filter(|k| k.as_str().contains("__"))
        .map(move |k| Uncased::from(provider_spelling(k.as_str(), &ids)))
        .split("__")
}

/// `key` (the variable's name after `KYSO_`) with its provider id, if any, spelled as in `ids`.
fn provider_spelling(key: &str, ids: &[String]) -> String {
    let key = key.to_ascii_lowercase();
    let mut parts: Vec<&str> = key.split("__").collect();
    if let [section, id, ..] = parts.as_mut_slice() {
        if *section == "providers" && !ids.iter().any(|known| known == id) {
            if let Some(known) = ids.iter().find(|known| known.replace('-', "_") == *id) {
                *id = known.as_str();
            }
        }
    }
    parts.join("__")
}

#[cfg(test)]
mod tests {
    use super::provider_spelling;

    fn ids() -> Vec<String> {
        ["vnpt-smartca", "viettel-sim", "plain_id"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn an_id_written_with_underscores_names_the_provider_spelled_with_dashes() {
        assert_eq!(
            provider_spelling("PROVIDERS__VNPT_SMARTCA__SMARTCA__SP_PASSWORD", &ids()),
            "providers__vnpt-smartca__smartca__sp_password"
        );
        assert_eq!(
            provider_spelling("providers__viettel-sim__mssp__ap_pwd", &ids()),
            "providers__viettel-sim__mssp__ap_pwd",
            "the dash spelling still works"
        );
    }

    #[test]
    fn ids_with_underscores_and_other_sections_are_left_alone() {
        assert_eq!(
            provider_spelling("PROVIDERS__PLAIN_ID__RATE_PER_S", &ids()),
            "providers__plain_id__rate_per_s"
        );
        assert_eq!(
            provider_spelling("PROVIDERS__NEW_ONE__KIND", &ids()),
            "providers__new_one__kind"
        );
        assert_eq!(
            provider_spelling("DATABASE__VNPT_SMARTCA", &ids()),
            "database__vnpt_smartca"
        );
    }
}

//! Settings from the environment as a shell sets them. Provider ids hold `-`, which bash refuses
//! in a variable name, so the id may be written with `_`: the variable still reaches the
//! provider. Its own test binary, since it sets a variable of its own process.

use std::path::Path;
use std::process::Command;

use kyso::config::{Config, ProviderKind};
use secrecy::ExposeSecret;

const DASHED: &str = "KYSO_PROVIDERS__VNPT-SMARTCA__SMARTCA__SP_PASSWORD";
const SHELL: &str = "KYSO_PROVIDERS__VNPT_SMARTCA__SMARTCA__SP_PASSWORD";

/// A config whose SmartCA provider has no password: it loads only if one arrives from outside.
fn config_without_password(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("kyso.toml");
    let toml = format!(
        r#"
[database]
url = "sqlite://{db}"
[providers.vnpt-smartca]
kind = "smartca"
trust_anchors = []
[providers.vnpt-smartca.smartca]
base_url = "http://127.0.0.1:1"
sp_id = "kyso"
"#,
        db = dir.join("kyso.db").display()
    );
    std::fs::write(&file, toml).expect("write config");
    file
}

/// `kyso migrate` (which loads the configuration) run by bash after `export NAME=VALUE`.
fn migrate_after_export(name: &str, config: &Path) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            r#"export {name}=from-the-shell && exec "$0" migrate --config "$1""#
        ))
        .arg(env!("CARGO_BIN_EXE_kyso"))
        .arg(config)
        .env_remove(DASHED)
        .env_remove(SHELL)
        .output()
        .expect("bash runs")
}

#[test]
fn a_variable_bash_can_export_reaches_a_provider_whose_id_has_a_dash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_without_password(dir.path());

    let dashed = migrate_after_export(DASHED, &config);
    assert!(!dashed.status.success(), "bash cannot export {DASHED}");
    assert!(
        String::from_utf8_lossy(&dashed.stderr).contains("not a valid identifier"),
        "{}",
        String::from_utf8_lossy(&dashed.stderr)
    );

    let shell = migrate_after_export(SHELL, &config);
    assert!(
        shell.status.success(),
        "{SHELL} gives vnpt-smartca its password: {}",
        String::from_utf8_lossy(&shell.stderr)
    );

    // The value itself, read in this process (the only test of this binary sets it).
    std::env::set_var(SHELL, "from-the-env");
    let loaded = Config::load(Some(&config));
    std::env::remove_var(SHELL);
    match loaded.expect("loads").providers["vnpt-smartca"].kind {
        ProviderKind::Smartca(ref c) => assert_eq!(c.sp_password.expose_secret(), "from-the-env"),
        ref other => panic!("{other:?}"),
    }
}

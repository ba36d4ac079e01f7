//! The outside judges tests lean on: `openssl` and Python's `xmlschema`. Where one is missing a
//! test prints a notice and skips, unless its `KYSO_REQUIRE_…` variable is set (`.ci/run` sets
//! both), which makes the absence a failure: CI never passes a check it did not run.

use std::process::Command;

/// True when `openssl version` runs. Panics when it does not and `KYSO_REQUIRE_OPENSSL` is set.
pub fn openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    missing_unless_required(ok, "openssl", "KYSO_REQUIRE_OPENSSL")
}

/// True when `python3 -c 'import xmlschema'` runs. Panics when it does not and
/// `KYSO_REQUIRE_XMLSCHEMA` is set.
pub fn xmlschema() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import xmlschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    missing_unless_required(ok, "python3 with xmlschema", "KYSO_REQUIRE_XMLSCHEMA")
}

fn missing_unless_required(present: bool, tool: &str, variable: &str) -> bool {
    if !present {
        assert!(
            std::env::var_os(variable).is_none(),
            "{tool} is required ({variable} is set) but not installed"
        );
        eprintln!("notice: {tool} is not installed; this check is skipped (set {variable} to make that a failure)");
    }
    present
}

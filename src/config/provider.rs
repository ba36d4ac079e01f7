//! `[providers.<id>]`: one provider instance. The settings every provider has (trust, limits,
//! retries, circuit, pushes, revocation) sit beside `kind`, and the kind's own settings in the
//! sub-table named after it (`[providers.<id>.smartca]`, `[providers.<id>.mssp]`). Read into
//! [`ProviderKind`], a provider carries exactly its kind's settings: a SmartCA instance cannot
//! hold an MSSP section, and no code asks "is the section there?".

use serde::Deserialize;

use crate::providers::callback_auth::CallbackAuth;
use crate::providers::mssp::MsspConfig;
use crate::providers::smartca::SmartcaConfig;
use crate::verify::RevocationPolicy;

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawProvider")]
pub struct ProviderConfig {
    /// Which adapter, with its own settings.
    pub kind: ProviderKind,
    /// PEM or DER files of the CA certificates this provider's signers must chain to.
    pub trust_anchors: Vec<String>,
    pub default_timeout_s: u32,
    pub max_in_flight: usize,
    pub rate_per_s: u32,
    /// How long one call's transient failures are retried.
    pub retry_budget_ms: u64,
    /// Consecutive failed calls (after retries) that open the provider's circuit.
    pub circuit_failures: u32,
    /// How long an open circuit stops calls before one probe is let through.
    pub circuit_open_ms: u64,
    /// Pushes to `/callbacks/{id}` acted on per second (burst: as many); past it they are
    /// answered and ignored, since the session is polled anyway.
    pub callback_rate_per_s: u32,
    /// How the provider's pushes are authenticated.
    pub callback_auth: CallbackAuth,
    /// How hard to insist on an OCSP/CRL answer.
    pub revocation: RevocationPolicy,
}

/// A provider's adapter and its settings, by `kind`.
#[derive(Debug, Clone)]
pub enum ProviderKind {
    /// VNPT SmartCA (`kind = "smartca"`, settings in `[providers.<id>.smartca]`).
    Smartca(SmartcaConfig),
    /// ETSI TS 102 204 SIM signing (Viettel, VNPT, MobiFone MSSPs): `kind = "mssp"`, settings
    /// in `[providers.<id>.mssp]`.
    Mssp(MsspConfig),
}

impl ProviderKind {
    /// The `kind` value, which is also the name of the kind's sub-table.
    pub fn name(&self) -> &'static str {
        match self {
            ProviderKind::Smartca(_) => "smartca",
            ProviderKind::Mssp(_) => "mssp",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindName {
    Smartca,
    Mssp,
}

/// The table as written: `kind` and every kind's sub-table side by side.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    kind: KindName,
    trust_anchors: Vec<String>,
    #[serde(default = "default_timeout")]
    default_timeout_s: u32,
    #[serde(default = "default_in_flight")]
    max_in_flight: usize,
    #[serde(default = "default_rate")]
    rate_per_s: u32,
    #[serde(default = "default_retry_budget")]
    retry_budget_ms: u64,
    #[serde(default = "default_circuit_failures")]
    circuit_failures: u32,
    #[serde(default = "default_circuit_open")]
    circuit_open_ms: u64,
    /// Unset: the provider's `rate_per_s`, at least [`MIN_CALLBACK_RATE`].
    #[serde(default)]
    callback_rate_per_s: Option<u32>,
    smartca: Option<SmartcaConfig>,
    mssp: Option<MsspConfig>,
    #[serde(default)]
    callback_auth: CallbackAuth,
    #[serde(default)]
    revocation: RevocationPolicy,
}

impl TryFrom<RawProvider> for ProviderConfig {
    type Error = String;

    fn try_from(raw: RawProvider) -> Result<Self, String> {
        let kind = match (raw.kind, raw.smartca, raw.mssp) {
            (KindName::Smartca, Some(c), None) => ProviderKind::Smartca(c),
            (KindName::Mssp, None, Some(m)) => ProviderKind::Mssp(m),
            (KindName::Smartca, None, _) => return Err(missing("smartca")),
            (KindName::Mssp, _, None) => return Err(missing("mssp")),
            (KindName::Smartca, Some(_), Some(_)) => return Err(foreign("smartca", "mssp")),
            (KindName::Mssp, Some(_), Some(_)) => return Err(foreign("mssp", "smartca")),
        };
        Ok(Self {
            kind,
            trust_anchors: raw.trust_anchors,
            default_timeout_s: raw.default_timeout_s,
            max_in_flight: raw.max_in_flight,
            rate_per_s: raw.rate_per_s,
            retry_budget_ms: raw.retry_budget_ms,
            circuit_failures: raw.circuit_failures,
            circuit_open_ms: raw.circuit_open_ms,
            callback_rate_per_s: raw
                .callback_rate_per_s
                .unwrap_or(raw.rate_per_s.max(MIN_CALLBACK_RATE)),
            callback_auth: raw.callback_auth,
            revocation: raw.revocation,
        })
    }
}

fn missing(kind: &str) -> String {
    format!("kind `{kind}` needs a [{kind}] section")
}

fn foreign(kind: &str, other: &str) -> String {
    format!("kind `{kind}` takes no [{other}] section")
}

fn default_timeout() -> u32 {
    300
}
fn default_in_flight() -> usize {
    64
}
fn default_rate() -> u32 {
    200
}
fn default_retry_budget() -> u64 {
    10_000
}
fn default_circuit_failures() -> u32 {
    5
}
fn default_circuit_open() -> u64 {
    10_000
}
/// The least default push rate. A push acted on costs at most one status call, which the
/// provider's `rate_per_s` bounds anyway, so by default pushes may come as fast as calls may
/// go: a lower bound (it was a fixed 200) ignored a busy provider's genuine pushes past it,
/// and those sessions waited for their next poll (the bench's throughput fell to ~430/s).
pub const MIN_CALLBACK_RATE: u32 = 200;

#[cfg(test)]
mod tests {
    use figment::providers::{Format, Toml};
    use figment::Figment;

    use super::super::Config;
    use super::ProviderKind;

    fn load(provider: &str) -> Result<Config, String> {
        let toml = format!("[providers.sim]\ntrust_anchors = []\n{provider}");
        Config::from_figment(Figment::from(Toml::string(&toml))).map_err(|e| e.to_string())
    }

    const MSSP: &str =
        "[providers.sim.mssp]\nbase_url = \"http://x\"\nap_id = \"a\"\nap_pwd = \"p\"\n";
    const SMARTCA: &str =
        "[providers.sim.smartca]\nbase_url = \"http://x\"\nsp_id = \"s\"\nsp_password = \"p\"\n";

    #[test]
    fn a_provider_carries_exactly_its_kinds_settings() {
        let config = load(&format!("kind = \"mssp\"\n{MSSP}")).expect("loads");
        let sim = &config.providers["sim"];
        assert!(
            matches!(&sim.kind, ProviderKind::Mssp(m) if m.ap_id == "a"),
            "{sim:?}"
        );
        assert_eq!(sim.kind.name(), "mssp");
        assert_eq!(sim.max_in_flight, 64, "the common defaults apply");
    }

    #[test]
    fn pushes_may_come_as_fast_as_calls_may_go_unless_set() {
        let rate = |extra: &str| {
            let config = load(&format!("kind = \"mssp\"\n{extra}{MSSP}")).expect("loads");
            config.providers["sim"].callback_rate_per_s
        };
        assert_eq!(rate("rate_per_s = 50\n"), 200, "at least 200");
        assert_eq!(
            rate("rate_per_s = 5000\n"),
            5000,
            "the provider's call rate"
        );
        assert_eq!(
            rate("rate_per_s = 5000\ncallback_rate_per_s = 300\n"),
            300,
            "as set"
        );
    }

    #[test]
    fn a_provider_without_its_kinds_section_is_refused_by_id() {
        let err = load("kind = \"smartca\"\n").expect_err("no [smartca]");
        assert!(
            err.contains("kind `smartca` needs a [smartca] section"),
            "{err}"
        );
        assert!(err.contains("providers.sim"), "names the provider: {err}");
    }

    #[test]
    fn a_provider_with_another_kinds_section_is_refused() {
        let err = load(&format!("kind = \"mssp\"\n{MSSP}{SMARTCA}")).expect_err("both");
        assert!(
            err.contains("kind `mssp` takes no [smartca] section"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_provider_setting_is_still_refused() {
        let err = load(&format!("kind = \"mssp\"\nmax_inflight = 3\n{MSSP}")).expect_err("typo");
        assert!(err.contains("max_inflight"), "{err}");
    }
}

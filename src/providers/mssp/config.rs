//! `[providers.<id>.mssp]`: one MSSP instance. The notes leave much to each carrier (wrapper
//! namespace, part qualification, element order, text limits, polling pace), so each of those
//! is a key here with the notes' default, not a guess baked into the code.

use secrecy::SecretString;
use serde::Deserialize;

use super::display::DisplayEncoding;
use crate::outbound::TlsConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsspConfig {
    /// The MSSP's base, e.g. `https://mssp.example.vn`; ports are `{base_url}/soap/services/…`.
    pub base_url: String,
    /// `AP_ID`, e.g. `http://ap.mobile-id.vn/kyso`.
    pub ap_id: String,
    /// `AP_PWD`, sent in every request; never logged, never sent to a notifier.
    pub ap_pwd: SecretString,
    #[serde(default)]
    pub messaging_mode: MessagingMode,
    /// Namespace of the RPC wrapper element; the VN server requires
    /// `http://ae.mobile-id.vn/TS102204/etsi204`. Absent: unqualified (laverca, Swisscom).
    #[serde(default)]
    pub wrapper_namespace: Option<String>,
    /// `mss:`-qualified part element (ETSI examples); the VN server wants it unqualified.
    #[serde(default = "yes")]
    pub qualify_part: bool,
    #[serde(default)]
    pub element_order: ElementOrderSetting,
    /// `MSSP_Info/MSSP_ID/URI`; defaults to `base_url`.
    #[serde(default)]
    pub mssp_id: Option<String>,
    #[serde(default = "default_profile")]
    pub signature_profile: Option<String>,
    /// Additional services asked for with every signature; the default asks for the signing
    /// certificate, which PKCS#1 answers otherwise lack (notes §10, §12).
    #[serde(default = "default_services")]
    pub additional_services: Vec<String>,
    #[serde(default)]
    pub display_encoding: DisplayEncoding,
    /// Septets of GSM-7 text the carrier shows.
    #[serde(default = "default_gsm7_limit")]
    pub gsm7_limit: usize,
    /// Characters of UCS-2 text (any Vietnamese diacritic) the carrier shows.
    #[serde(default = "default_ucs2_limit")]
    pub ucs2_limit: usize,
    #[serde(default)]
    pub mss_format: MssFormat,
    /// HTTP timeout of one call; a synch signature call waits `TimeOut` on top of it.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// First status query after the acknowledgement (FiCom: about 20 s).
    #[serde(default = "default_poll_first_ms")]
    pub poll_first_ms: u64,
    /// Between status queries (FiCom: at most every 5 s); a little jitter is added, never taken.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// kyso's public base URL; asynchServerServer sends `{base}/callbacks/{provider_id}` as
    /// `AP_URL`.
    #[serde(default)]
    pub public_callback_base: Option<String>,
    /// Shown on the phone by an MSS_Receipt once a signature arrived; absent: no receipt.
    #[serde(default)]
    pub receipt_message: Option<String>,
    /// Ask MSS_ProfileQuery before each signature: an unknown subscriber fails before any
    /// push, and a profile that lists certificates supplies the signer's.
    #[serde(default)]
    pub profile_query: bool,
    #[serde(default)]
    pub tls: TlsConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessagingMode {
    /// kyso polls MSS_StatusQuery.
    #[default]
    AsynchClientServer,
    /// The MSSP posts MSS_Notification to kyso; polling stays as a slow safety net.
    AsynchServerServer,
    /// The signature call is held open until the user answers.
    Synch,
}

impl MessagingMode {
    pub fn wire(self) -> &'static str {
        match self {
            MessagingMode::AsynchClientServer => "asynchClientServer",
            MessagingMode::AsynchServerServer => "asynchServerServer",
            MessagingMode::Synch => "synch",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementOrderSetting {
    #[default]
    Etsi,
    Vn,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MssFormat {
    /// Raw RSA signature over the DigestInfo.
    #[default]
    Pkcs1,
    /// PKCS#7/CMS SignedData.
    Cms,
}

fn yes() -> bool {
    true
}
fn default_profile() -> Option<String> {
    Some("http://mobile-id.vn/digitalSignature".into())
}
fn default_services() -> Vec<String> {
    vec!["http://mobile-id.vn/MSSP/v1.0.0#signingCertificate".into()]
}
fn default_gsm7_limit() -> usize {
    160
}
fn default_ucs2_limit() -> usize {
    70
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_poll_first_ms() -> u64 {
    20_000
}
fn default_poll_interval_ms() -> u64 {
    5_000
}

//! The mock MSSP: ETSI TS 102 204 over SOAP 1.2 for the three SIM carriers `viettel-sim`,
//! `vnpt-sim` and `mobifone-sim`, each under `/mssp/{carrier}/soap/services/{port}` with the
//! ports `MSS_SignaturePort`, `MSS_StatusQueryPort`, `MSS_ReceiptPort` and
//! `MSS_ProfileQueryPort` (alias `MSS_ProfilePort`). This module owns the routing, the carrier
//! configuration (AP credentials, strict-VN switch, notification target), the transport-fault
//! rows of the behaviour table and the push side (synch waiters, asynchServerServer
//! notifications). [`soap`] reads requests, [`fault`] writes refusals, [`wire`] and
//! [`sign_req`] check the messages ([`display`] the display-text limits), [`reply`] writes
//! answers, [`signature`] serves MSS_Signature, [`status`] the other three operations and the
//! notification, [`cms`] the PKCS7 format.

mod cms;
mod display;
mod fault;
mod reply;
mod sign_req;
mod signature;
mod soap;
mod status;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::sync::{Notify, Semaphore};

use crate::behaviour::{CallKind, Fault as TransportFault};
use crate::http::dropped_connection;
use crate::pki::Provider;
use crate::requests::{Extra, SignRequest};
use crate::state::Shared;
use reply::Shape;
pub use sign_req::{Format, Mode};
use soap::Fault;
pub use wire::ApInfo;

/// synch MSS_Signature calls held open at once; past it the MSSP answers 900.
const MAX_SYNCH_HELD: usize = 1_024;
/// The content type of notifications, and of answers to callers that did not send text/xml.
const SOAP_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";

/// An application provider's credentials at one carrier (`AP_ID`, `AP_PWD`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApCredentials {
    pub ap_id: String,
    pub ap_password: String,
}

impl Default for ApCredentials {
    fn default() -> Self {
        Self {
            ap_id: "kyso-dev-ap".to_owned(),
            ap_password: "kyso-dev-ap-secret".to_owned(),
        }
    }
}

impl std::fmt::Debug for ApCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApCredentials")
            .field("ap_id", &self.ap_id)
            .field("ap_password", &"<redacted>")
            .finish()
    }
}

/// What the MSSP keeps with a prompt: how the AP asked and how to answer it later.
#[derive(Debug)]
pub struct Transaction {
    pub provider: Provider,
    pub mode: Mode,
    pub format: Format,
    /// The AP_Info of the signature request, echoed in the notification.
    pub ap: ApInfo,
    pub msisdn: String,
    pub timeout_s: u64,
    pub profile: String,
    pub want_certificate: bool,
    pub validate: bool,
    /// Where the asynchServerServer notification goes.
    pub notify_url: Option<String>,
    pub shape: Shape,
}

/// The MSSP's share of the handler state.
pub(crate) struct MsspState {
    aps: BTreeMap<String, ApCredentials>,
    strict_vn: bool,
    /// Template for notifications without AP_URL; `{carrier}` becomes the carrier id.
    notification_url: RwLock<Option<String>>,
    /// Held synch calls wait here for their request to finish, keyed by request id.
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    synch_slots: Arc<Semaphore>,
}

impl MsspState {
    pub fn new(
        aps: BTreeMap<String, ApCredentials>,
        strict_vn: bool,
        notification_url: Option<String>,
    ) -> Self {
        Self {
            aps,
            strict_vn,
            notification_url: RwLock::new(notification_url),
            waiters: Mutex::default(),
            synch_slots: Arc::new(Semaphore::new(MAX_SYNCH_HELD)),
        }
    }

    fn credentials(&self, provider: Provider) -> ApCredentials {
        self.aps.get(provider.id()).cloned().unwrap_or_default()
    }

    pub fn set_notification_url(&self, template: Option<String>) {
        *self
            .notification_url
            .write()
            .unwrap_or_else(|e| e.into_inner()) = template;
    }

    fn notification_url(&self, provider: Provider) -> Option<String> {
        self.notification_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            .map(|t| t.replace("{carrier}", provider.id()))
    }

    fn waiter(&self, request_id: &str) -> Arc<Notify> {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        waiters.entry(request_id.to_owned()).or_default().clone()
    }

    fn wake(&self, request_id: &str) {
        let waiter = self
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(request_id);
        if let Some(waiter) = waiter {
            waiter.notify_waiters();
        }
    }
}

/// The MSSP's URI in `MSSP_Info/MSSP_ID/URI`.
fn mssp_uri(provider: Provider) -> String {
    format!("http://mssp.{}.mock.kyso.vn", provider.id())
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new().route("/mssp/{carrier}/soap/services/{port}", post(port))
}

/// The four operations, by port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Signature,
    Status,
    Receipt,
    Profile,
}

impl Operation {
    fn for_port(port: &str) -> Option<Self> {
        match port {
            "MSS_SignaturePort" => Some(Self::Signature),
            "MSS_StatusQueryPort" => Some(Self::Status),
            "MSS_ReceiptPort" => Some(Self::Receipt),
            "MSS_ProfileQueryPort" | "MSS_ProfilePort" => Some(Self::Profile),
            _ => None,
        }
    }

    fn request_part(self) -> &'static str {
        match self {
            Self::Signature => "MSS_SignatureReq",
            Self::Status => "MSS_StatusReq",
            Self::Receipt => "MSS_ReceiptReq",
            Self::Profile => "MSS_ProfileReq",
        }
    }
}

/// One SOAP call being served: who, at which carrier, and how to answer.
pub(crate) struct Call {
    shared: Arc<Shared>,
    provider: Provider,
    shape: Shape,
    text_xml: bool,
}

impl Call {
    fn state(&self) -> &MsspState {
        &self.shared.mssp
    }

    fn credentials(&self) -> ApCredentials {
        self.state().credentials(self.provider)
    }

    fn content_type(&self) -> &'static str {
        if self.text_xml {
            "text/xml; charset=utf-8"
        } else {
            SOAP_CONTENT_TYPE
        }
    }

    fn ok(&self, xml: String) -> Response {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, self.content_type())],
            xml,
        )
            .into_response()
    }

    fn fault(&self, fault: Fault) -> Response {
        (
            fault.http,
            [(header::CONTENT_TYPE, self.content_type())],
            fault.to_xml(),
        )
            .into_response()
    }

    /// The signer's transport misbehaviour (rows 900, 901, 902); `Some` is the answer to send.
    async fn transport_fault(&self, msisdn: &str, kind: CallKind) -> Option<Response> {
        match self.shared.faults.before_call(msisdn, kind)? {
            TransportFault::Delay(d) => {
                tokio::time::sleep(d).await;
                None
            }
            TransportFault::DropConnection => Some(dropped_connection()),
            TransportFault::InternalError => Some(self.fault(
                Fault::status(900, "internal error").with_http(StatusCode::INTERNAL_SERVER_ERROR),
            )),
            TransportFault::Unavailable => Some(
                self.fault(
                    Fault::status(900, "service temporarily unavailable")
                        .with_http(StatusCode::SERVICE_UNAVAILABLE),
                ),
            ),
        }
    }
}

async fn port(
    State(shared): State<Arc<Shared>>,
    Path((carrier, port)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(provider) = Provider::from_id(&carrier).filter(|p| p.is_sim()) else {
        return (StatusCode::NOT_FOUND, "no such MSSP").into_response();
    };
    let Some(operation) = Operation::for_port(&port) else {
        return (StatusCode::NOT_FOUND, "no such port").into_response();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut call = Call {
        shared,
        provider,
        shape: Shape {
            mssp_uri: mssp_uri(provider),
            ..Shape::default()
        },
        text_xml: content_type.starts_with("text/xml"),
    };
    let acceptable = ["", "application/soap+xml", "text/xml", "application/xml"]
        .iter()
        .any(|t| content_type.split(';').next().map(str::trim) == Some(t));
    if !acceptable {
        let fault = Fault::status(107, "Content-Type must be application/soap+xml or text/xml");
        return call.fault(fault.with_http(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let fault = Fault::wrong_param(format!(
                "the request is larger than {} bytes",
                crate::http::BODY_LIMIT
            ));
            return call.fault(fault.with_http(StatusCode::PAYLOAD_TOO_LARGE));
        }
        Err(_) => return call.fault(Fault::wrong_param("the request body could not be read")),
    };
    let envelope = match soap::parse(&bytes) {
        Ok(root) => soap::unwrap(root),
        Err(e) => Err(Fault::wrong_param(e.to_string())),
    };
    let envelope = match envelope {
        Ok(env) => env,
        Err(fault) => return call.fault(fault),
    };
    if call.state().strict_vn && envelope.wrapper_ns() != Some(wire::VN_WRAPPER_NS) {
        let fault = Fault::new(
            soap::FaultCode::Sender,
            None,
            format!(
                "Cannot find dispatch method for {{{}}}{}",
                envelope.wrapper_ns().unwrap_or(""),
                envelope.wrapper.as_ref().map_or("", |w| w.local.as_str())
            ),
        );
        return call.fault(fault);
    }
    if envelope.part.local != operation.request_part() {
        return call.fault(Fault::wrong_param(format!(
            "{} expects {}, not {}",
            port,
            operation.request_part(),
            envelope.part.local
        )));
    }
    call.shape.wrapper_ns = envelope.wrapper_ns().map(str::to_owned);
    call.shape.part_qualified = envelope.part_qualified();
    match operation {
        Operation::Signature => signature::handle(&call, &envelope.part).await,
        Operation::Status => status::status(&call, &envelope.part).await,
        Operation::Receipt => status::receipt(&call, &envelope.part).await,
        Operation::Profile => status::profile(&call, &envelope.part).await,
    }
}

/// A request of one of the carriers finished: wake held synch calls and push the
/// asynchServerServer notification.
pub(crate) fn announce(shared: &Shared, req: &SignRequest) {
    shared.mssp.wake(&req.id);
    let Extra::Mssp(tx) = &req.extra else {
        return;
    };
    if tx.mode != Mode::AsynchServerServer {
        return;
    }
    let Some(url) = tx.notify_url.clone() else {
        return;
    };
    match status::notification(shared, req, tx) {
        Some(xml) => shared
            .webhooks
            .send_raw(url, SOAP_CONTENT_TYPE, xml.into_bytes()),
        None => tracing::warn!(id = %req.id, "notification skipped: not finished"),
    }
}

//! MSS_Notification (asynchServerServer): the MSSP posts an `MSS_StatusResp` to `AP_URL`. It
//! is unauthenticated, so kyso takes from it only which session to look at now; the outcome
//! comes from kyso's own status query. A notification can arrive while the signature call
//! that caused it is still waiting for its answer; [`Notified`] notes it for that call, which
//! then asks for an immediate status check instead of waiting for the first poll.

use std::collections::HashMap;
use std::sync::Mutex;

use super::call::plausible_id;
use super::soap::{self, Answer};
use super::wire;
use crate::providers::CallbackError;

/// What kyso reads from a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The session's transaction id (`kyso-ses_…`).
    pub transaction_id: String,
    pub ap_trans_id: String,
    pub mssp_trans_id: String,
    pub msisdn: Option<String>,
    /// The `AP_ID` it named: kyso's own, or none.
    pub ap_id: Option<String>,
    /// The `MSSP_ID` it named, as it named it.
    pub mssp_id: Option<String>,
}

pub fn read(body: &[u8], ap_id: &str) -> Result<Note, CallbackError> {
    let refuse = |why: &str| CallbackError(format!("not an MSS_Notification: {why}"));
    let m = match soap::parse_answer(body) {
        Ok(Answer::Message(m)) => m,
        Ok(Answer::Fault(_)) => return Err(refuse("a SOAP Fault")),
        Err(e) => return Err(refuse(&e.to_string())),
    };
    if m.part != "MSS_StatusResp" {
        return Err(refuse(&format!("part `{}`", m.part)));
    }
    // Not authentication (AP_ID is no secret), a guard against a misrouted push.
    if m.ap_id.as_deref().is_some_and(|id| id != ap_id) {
        return Err(CallbackError("notification for another AP_ID".into()));
    }
    let ap_trans_id = m
        .ap_trans_id
        .ok_or_else(|| refuse("no AP_Info/@AP_TransID"))?;
    let transaction_id = wire::transaction_id(&ap_trans_id)
        .ok_or_else(|| CallbackError("AP_TransID was not issued by kyso".into()))?;
    let mssp_trans_id = m
        .mssp_trans_id
        .filter(|id| plausible_id(id))
        .ok_or_else(|| refuse("no usable @MSSP_TransID"))?;
    let msisdn = m
        .msisdn
        .filter(|s| (8..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()));
    Ok(Note {
        transaction_id,
        ap_trans_id,
        mssp_trans_id,
        msisdn,
        ap_id: m.ap_id,
        mssp_id: m.mssp_id,
    })
}

/// Signature calls in flight by `AP_TransID`, and whether a notification came for each. Only
/// calls in flight are kept, so forged notifications cost no memory and the map is bounded by
/// the provider's in-flight limit.
#[derive(Default)]
pub struct Notified {
    in_flight: Mutex<HashMap<String, bool>>,
}

impl Notified {
    /// Registers a signature call until the returned guard is dropped.
    pub fn begin(&self, ap_trans_id: &str) -> InFlight<'_> {
        self.map().insert(ap_trans_id.to_owned(), false);
        InFlight {
            owner: self,
            ap_trans_id: ap_trans_id.to_owned(),
        }
    }

    /// Notes a notification for a call in flight; for any other it does nothing.
    pub fn mark(&self, ap_trans_id: &str) {
        if let Some(seen) = self.map().get_mut(ap_trans_id) {
            *seen = true;
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct InFlight<'a> {
    owner: &'a Notified,
    ap_trans_id: String,
}

impl InFlight<'_> {
    /// Whether a notification for this call came while it was in flight.
    pub fn notified(&self) -> bool {
        self.owner.map().get(&self.ap_trans_id) == Some(&true)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.owner.map().remove(&self.ap_trans_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ULID: &str = "01JH8Q2X7ABCDEFGHJKMNPQRST";

    fn notification(ap_id: &str, ap_tx: &str, status: u32) -> String {
        format!(
            r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
                xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#"><env:Body>
              <MSS_Notification><mss:MSS_StatusResp MajorVersion="1" MinorVersion="1" MSSP_TransID="h4dhx">
                <mss:AP_Info AP_ID="{ap_id}" AP_PWD="s3cret" AP_TransID="{ap_tx}" Instant="2025-01-15T09:30:00Z"/>
                <mss:MSSP_Info><mss:MSSP_ID><mss:URI>http://mssp</mss:URI></mss:MSSP_ID></mss:MSSP_Info>
                <mss:MobileUser><mss:MSISDN>84912345678</mss:MSISDN></mss:MobileUser>
                <mss:Status><mss:StatusCode Value="{status}"/></mss:Status>
              </mss:MSS_StatusResp></MSS_Notification></env:Body></env:Envelope>"#
        )
    }

    #[test]
    fn a_notification_names_the_session_and_nothing_more() {
        let body = notification("kyso-dev-ap", &format!("K{ULID}"), 500);
        let note = read(body.as_bytes(), "kyso-dev-ap").expect("notification");
        assert_eq!(
            note,
            Note {
                transaction_id: format!("kyso-ses_{ULID}"),
                ap_trans_id: format!("K{ULID}"),
                mssp_trans_id: "h4dhx".into(),
                msisdn: Some("84912345678".into()),
                ap_id: Some("kyso-dev-ap".into()),
                mssp_id: Some("http://mssp".into()),
            }
        );
    }

    #[test]
    fn foreign_or_malformed_notifications_are_refused() {
        let ours = format!("K{ULID}");
        for (body, ap_id) in [
            (notification("other-ap", &ours, 500), "kyso-dev-ap"),
            (
                notification("kyso-dev-ap", "K7f3a9c2d1e", 500),
                "kyso-dev-ap",
            ),
            ("<a/>".to_owned(), "kyso-dev-ap"),
            (
                notification("kyso-dev-ap", &ours, 500)
                    .replace("MSS_StatusResp", "MSS_SignatureReq"),
                "kyso-dev-ap",
            ),
        ] {
            assert!(read(body.as_bytes(), ap_id).is_err(), "{body}");
        }
    }

    #[test]
    fn only_a_notification_during_the_call_is_noted() {
        let n = Notified::default();
        n.mark("K1");
        let call = n.begin("K1");
        assert!(
            !call.notified(),
            "a notification before the call is not kept"
        );
        n.mark("K1");
        n.mark("K2");
        assert!(call.notified());
        drop(call);
        assert!(n.map().is_empty(), "nothing outlives the call");
    }
}

//! MSS_Notification (asynchServerServer): the MSSP posts an `MSS_StatusResp` to `AP_URL`. It
//! is unauthenticated, so kyso takes from it only which session to look at now; the outcome
//! comes from kyso's own status query. A notification can arrive while the signature call
//! that caused it is still waiting for its answer; [`Notified`] remembers it so that call can
//! ask for an immediate status check instead of waiting for the first poll.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::call::plausible_id;
use super::soap::{self, Answer};
use super::wire;
use crate::providers::CallbackError;

/// Bounds the memory forged notifications can take.
const MAX_REMEMBERED: usize = 4096;
/// Longer than any signature call is held open.
const REMEMBER_FOR: Duration = Duration::from_secs(15 * 60);

/// What kyso reads from a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The session's transaction id (`kyso-ses_…`).
    pub transaction_id: String,
    pub ap_trans_id: String,
    pub mssp_trans_id: String,
    pub msisdn: Option<String>,
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
    })
}

/// `AP_TransID`s notified recently, for signature calls still in flight.
#[derive(Default)]
pub struct Notified {
    seen: Mutex<HashMap<String, Instant>>,
}

impl Notified {
    pub fn mark(&self, ap_trans_id: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, at| at.elapsed() < REMEMBER_FOR);
            if seen.len() >= MAX_REMEMBERED {
                // Only an early check is lost: the poll still finds the answer.
                seen.clear();
            }
        }
        seen.insert(ap_trans_id.to_owned(), Instant::now());
    }

    /// Whether a notification came for this transaction (and forgets it).
    pub fn take(&self, ap_trans_id: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.remove(ap_trans_id)
            .is_some_and(|at| at.elapsed() < REMEMBER_FOR)
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
    fn an_early_notification_is_remembered_once() {
        let n = Notified::default();
        n.mark("K1");
        assert!(n.take("K1"));
        assert!(!n.take("K1"));
        for i in 0..MAX_REMEMBERED + 10 {
            n.mark(&format!("K{i}"));
        }
        assert!(n.seen.lock().map(|s| s.len()).unwrap_or(0) <= MAX_REMEMBERED);
    }
}

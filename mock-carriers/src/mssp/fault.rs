//! The SOAP 1.2 Fault the mock MSSP sends instead of a response (protocol notes §8): top code
//! `env:Sender` for 101–108 and 701–720, `env:Receiver` for the rest, the ETSI code as the
//! `mss:_NNN` subcode, its name as the reason, and a human-readable detail. Faults go out with
//! HTTP 500 (as Swisscom does) unless the transport calls for 413, 415 or 503.

use axum::http::StatusCode;

use super::soap::SOAP12_NS;
use super::wire::{esc, status_name, MSS_NS};

/// Namespace of the `detail` element in fault details.
const DETAIL_NS: &str = "urn:kyso:mock-carriers:mssp";

/// The top-level fault code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    Sender,
    Receiver,
    VersionMismatch,
    MustUnderstand,
}

/// A SOAP 1.2 Fault, sent instead of a response.
#[derive(Debug, Clone)]
pub struct Fault {
    pub code: FaultCode,
    /// The ETSI status code carried as the `mss:_NNN` subcode.
    pub status: Option<u16>,
    pub detail: String,
    pub http: StatusCode,
}

impl Fault {
    pub fn new(code: FaultCode, status: Option<u16>, detail: impl Into<String>) -> Self {
        Self {
            code,
            status,
            detail: detail.into(),
            http: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A fault for an ETSI status code, `env:Sender` for 101–108 and 701–720 and
    /// `env:Receiver` otherwise (FiCom appendix C).
    pub fn status(code: u16, detail: impl Into<String>) -> Self {
        let sender = (101..=108).contains(&code) || (701..=720).contains(&code);
        let top = if sender {
            FaultCode::Sender
        } else {
            FaultCode::Receiver
        };
        Self::new(top, Some(code), detail)
    }

    pub fn wrong_param(detail: impl Into<String>) -> Self {
        Self::status(101, detail)
    }

    pub fn missing_param(detail: impl Into<String>) -> Self {
        Self::status(102, detail)
    }

    pub fn with_http(mut self, http: StatusCode) -> Self {
        self.http = http;
        self
    }

    /// The fault as a SOAP 1.2 envelope.
    pub fn to_xml(&self) -> String {
        let value = match self.code {
            FaultCode::Sender => "env:Sender",
            FaultCode::Receiver => "env:Receiver",
            FaultCode::VersionMismatch => "env:VersionMismatch",
            FaultCode::MustUnderstand => "env:MustUnderstand",
        };
        let subcode = self
            .status
            .map(|c| {
                format!(
                    "<env:Subcode><env:Value xmlns:mss=\"{MSS_NS}\">mss:_{c}</env:Value></env:Subcode>"
                )
            })
            .unwrap_or_default();
        let reason = match self.status {
            Some(c) => status_name(c).to_owned(),
            None => esc(&self.detail),
        };
        format!(
            concat!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                "<env:Envelope xmlns:env=\"{env}\"><env:Body><env:Fault>",
                "<env:Code><env:Value>{value}</env:Value>{subcode}</env:Code>",
                "<env:Reason><env:Text xml:lang=\"en\">{reason}</env:Text></env:Reason>",
                "<env:Detail><d:detail xmlns:d=\"{detail_ns}\">{detail}</d:detail></env:Detail>",
                "</env:Fault></env:Body></env:Envelope>"
            ),
            env = SOAP12_NS,
            value = value,
            subcode = subcode,
            reason = reason,
            detail_ns = DETAIL_NS,
            detail = esc(&self.detail),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_carries_the_mss_subcode_and_escapes_its_detail() {
        let xml = Fault::status(401, "<user> said no").to_xml();
        assert!(xml.contains("<env:Value>env:Receiver</env:Value>"));
        assert!(xml.contains(">mss:_401</env:Value>"));
        assert!(xml.contains("USER_CANCEL"));
        assert!(xml.contains("&lt;user&gt; said no"));
        assert!(Fault::wrong_param("x").to_xml().contains("env:Sender"));
    }
}

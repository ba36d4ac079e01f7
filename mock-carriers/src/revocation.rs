//! What relying parties fetch to check a mock certificate, under the URLs its AIA and CRL DP
//! extensions name: the OCSP responder of each CA (`POST /ocsp/{ca}` with an
//! `application/ocsp-request` body, or RFC 5019 `GET /ocsp/{ca}/{base64 request}`), its CRL
//! (`GET /crl/{ca}.crl`) and its certificate (`GET /pki/{ca}.crt`). `{ca}` is `root` or a
//! provider id (`vnpt-smartca`, `viettel-sim`, …). OCSP always answers HTTP 200 with an
//! OCSPResponse: `malformedRequest` for a body that does not parse, `unauthorized` for a CA
//! the mock does not run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use x509_ocsp::OcspResponseStatus;

use crate::pki::{ocsp, CaRef};
use crate::state::Shared;

/// OCSP requests larger than this are malformed (a request for 32 CertIDs is ~3 KiB).
const MAX_OCSP_REQUEST: usize = 16 * 1024;

/// Revocation requests served since start, whatever their answer: how a test tells that a
/// relying party asked (or asked nobody).
#[derive(Debug, Default)]
pub(crate) struct Fetches {
    ocsp: AtomicU64,
    crl: AtomicU64,
}

impl Fetches {
    /// `(OCSP requests, CRL downloads)`.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.ocsp.load(Ordering::Relaxed),
            self.crl.load(Ordering::Relaxed),
        )
    }
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/ocsp/{ca}", post(ocsp_post))
        .route("/ocsp/{ca}/{*request}", get(ocsp_get))
        .route("/crl/{file}", get(crl))
        .route("/pki/{file}", get(ca_certificate))
}

fn der(content_type: &'static str, body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn ocsp_answer(shared: &Shared, ca: &str, request: Option<&[u8]>) -> Response {
    shared.fetches.ocsp.fetch_add(1, Ordering::Relaxed);
    let body = match (CaRef::parse(ca), request) {
        (None, _) => ocsp::status_only(OcspResponseStatus::Unauthorized),
        (Some(_), None) => ocsp::status_only(OcspResponseStatus::MalformedRequest),
        (Some(ca), Some(req)) => shared.pki.ocsp_response(ca, req),
    };
    der("application/ocsp-response", body)
}

async fn ocsp_post(
    State(shared): State<Arc<Shared>>,
    Path(ca): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = body.ok().filter(|b| b.len() <= MAX_OCSP_REQUEST);
    ocsp_answer(&shared, &ca, request.as_deref())
}

async fn ocsp_get(
    State(shared): State<Arc<Shared>>,
    Path((ca, encoded)): Path<(String, String)>,
) -> Response {
    let request = decode_get(&encoded);
    ocsp_answer(&shared, &ca, request.as_deref())
}

/// The request of a GET: base64 (standard or URL-safe, padded or not) of the DER, after the
/// URL decoding axum already did.
fn decode_get(encoded: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    if encoded.len() > MAX_OCSP_REQUEST * 2 {
        return None;
    }
    let trimmed = encoded.trim_matches('/');
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(trimmed).ok())
}

async fn crl(State(shared): State<Arc<Shared>>, Path(file): Path<String>) -> Response {
    shared.fetches.crl.fetch_add(1, Ordering::Relaxed);
    let Some(ca) = file.strip_suffix(".crl").and_then(CaRef::parse) else {
        return (StatusCode::NOT_FOUND, "no such CRL").into_response();
    };
    match shared.pki.crl(ca) {
        Ok(body) => der("application/pkix-crl", body),
        Err(e) => {
            tracing::error!(error = %e, "CRL generation failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "CRL generation failed").into_response()
        }
    }
}

async fn ca_certificate(State(shared): State<Arc<Shared>>, Path(file): Path<String>) -> Response {
    match file.strip_suffix(".crt").and_then(CaRef::parse) {
        Some(ca) => der("application/pkix-cert", shared.pki.ca_cert(ca).to_vec()),
        None => (StatusCode::NOT_FOUND, "no such CA").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_requests_decode_in_either_base64_alphabet() {
        assert_eq!(decode_get("MAM+/w=="), Some(vec![0x30, 0x03, 0x3e, 0xff]));
        assert_eq!(decode_get("MAM-_w"), Some(vec![0x30, 0x03, 0x3e, 0xff]));
        assert_eq!(decode_get("not base64!"), None);
    }
}

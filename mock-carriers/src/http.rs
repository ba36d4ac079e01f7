//! HTTP plumbing the provider front ends share: reading a bounded JSON body into a wire struct
//! (with a typed error instead of axum's plain-text rejection), the "dropped connection"
//! answer used to simulate a provider that hangs up, and learning the mock's public base URL
//! from the first request's Host header when nobody set it.
//!
//! A dropped connection is a response whose body fails on its first poll. hyper then tears the
//! connection down before flushing anything (the status line is still only in its write
//! buffer), so the client sees the connection closed with no response at all — the same as a
//! provider crashing mid-request. This works under any server that mounts [`crate::MockCarriers::router`],
//! without a custom accept loop, and never panics a task.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::state::Shared;

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Why a request body could not be read into a wire struct.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body too large")]
    TooLarge,
    #[error("request body unreadable: {0}")]
    Unreadable(String),
    #[error("request body is not valid JSON for this call: {0}")]
    Malformed(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable(_) | Self::Malformed(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Parses a JSON body; an empty body reads as `{}`.
pub fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, BodyError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BodyError::TooLarge
        } else {
            BodyError::Unreadable(rejection.body_text())
        }
    })?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(bytes).map_err(|e| BodyError::Malformed(e.to_string()))
}

/// A response that makes the server close the connection without answering.
pub fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("mock carrier drops this connection"))
    });
    Response::new(Body::from_stream(failing))
}

/// Middleware: until a public base URL is known, take it from the Host header (when that is a
/// plain `host[:port]`), so certificates name where clients actually reach the mock.
pub(crate) async fn learn_public_url(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if !shared.pki.has_public_url() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| is_plain_host(h));
        if let Some(host) = host {
            if shared
                .pki
                .set_public_url_if_unset(&format!("http://{host}"))
            {
                tracing::info!(%host, "public base URL taken from the Host header");
            }
        }
    }
    next.run(request).await
}

/// `host`, `host:port` or `[v6]:port`, nothing that could smuggle a path or markup.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_hosts_become_the_public_url() {
        assert!(is_plain_host("127.0.0.1:8701"));
        assert!(is_plain_host("[::1]:80"));
        assert!(is_plain_host("mock.local"));
        for bad in ["", "a/b", "x\"y", "evil.com/#", "a b"] {
            assert!(!is_plain_host(bad), "{bad:?}");
        }
    }
}

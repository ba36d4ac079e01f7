//! How a provider's pushes to `/callbacks/{provider}` are authenticated (SPEC §2.5): a shared
//! secret HMAC-SHA256 of the body in a header, a bearer token, or nothing. A push that fails a
//! configured check is refused; one that passes (or needs none) is still only a hint — the
//! engine asks the provider for the status itself.

use aws_lc_rs::{constant_time, hmac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CallbackAuth {
    /// Providers that document no authentication (VNPT SmartCA, many MSSPs).
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer { token: SecretString },
    /// Lowercase hex HMAC-SHA256 of the raw body in `header` (e.g. `X-Signature`), with an
    /// optional `sha256=` prefix.
    HmacSha256 {
        secret: SecretString,
        header: String,
    },
}

impl CallbackAuth {
    /// Checks a push; `headers` are looked up case-insensitively by the caller's map.
    pub fn verify(&self, header: impl Fn(&str) -> Option<String>, body: &[u8]) -> bool {
        match self {
            CallbackAuth::None => true,
            CallbackAuth::Bearer { token } => header("authorization")
                .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
                .is_some_and(|got| {
                    constant_time::verify_slices_are_equal(
                        got.trim().as_bytes(),
                        token.expose_secret().as_bytes(),
                    )
                    .is_ok()
                }),
            CallbackAuth::HmacSha256 {
                secret,
                header: name,
            } => {
                let Some(value) = header(name) else {
                    return false;
                };
                let hexed = value.trim();
                let hexed = hexed.strip_prefix("sha256=").unwrap_or(hexed);
                let Ok(tag) = hex::decode(hexed) else {
                    return false;
                };
                let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
                hmac::verify(&key, body, &tag).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac_hex(secret: &str, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        hex::encode(hmac::sign(&key, body).as_ref())
    }

    #[test]
    fn an_hmac_push_passes_only_with_the_right_tag_over_the_exact_body() {
        let auth = CallbackAuth::HmacSha256 {
            secret: "s3cret".into(),
            header: "x-signature".into(),
        };
        let tag = hmac_hex("s3cret", b"{\"a\":1}");
        let with = |v: String| move |h: &str| (h == "x-signature").then(|| v.clone());
        assert!(auth.verify(with(tag.clone()), b"{\"a\":1}"));
        assert!(auth.verify(with(format!("sha256={tag}")), b"{\"a\":1}"));
        assert!(!auth.verify(with(tag.clone()), b"{\"a\":2}"));
        assert!(!auth.verify(with(hmac_hex("other", b"{\"a\":1}")), b"{\"a\":1}"));
        assert!(!auth.verify(|_: &str| None, b"{\"a\":1}"));
    }

    #[test]
    fn a_bearer_push_needs_the_token() {
        let auth = CallbackAuth::Bearer {
            token: "tok".into(),
        };
        assert!(auth.verify(|_: &str| Some("Bearer tok".into()), b""));
        assert!(!auth.verify(|_: &str| Some("Bearer nope".into()), b""));
        assert!(!auth.verify(|_: &str| None, b""));
        assert!(CallbackAuth::None.verify(|_: &str| None, b""));
    }
}

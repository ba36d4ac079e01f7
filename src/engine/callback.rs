//! A provider push (`POST /callbacks/{provider}`), authenticated and parsed by the provider's
//! entry and bounded by its push rate; what it names is handed to [`Engine::push`]. Counted in
//! `kyso_callbacks_total` by provider and result: unauthenticated, malformed, rate_limited,
//! ignored, coalesced, woken.

use super::{Engine, Pushed};
use crate::domain::SessionId;
use crate::providers::CallbackReply;
use crate::store::StoreError;

/// What a push did, and the provider's own acknowledgement when its protocol expects one.
pub struct Callback {
    /// `rate_limited`, `ignored`, `coalesced` or `woken`.
    pub result: &'static str,
    pub reply: Option<CallbackReply>,
}

/// A push that was not acted on.
#[derive(Debug, thiserror::Error)]
pub enum CallbackRefused {
    #[error("no such provider")]
    UnknownProvider,
    #[error("the provider's callback authentication failed")]
    Unauthenticated,
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Engine {
    /// Handles a push to `provider` with `body`; `header` reads the request's headers.
    pub async fn callback(
        self: &std::sync::Arc<Self>,
        provider: &str,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<Callback, CallbackRefused> {
        let entry = self
            .providers
            .get(provider)
            .ok_or(CallbackRefused::UnknownProvider)?;
        let count = |result: &'static str| {
            metrics::counter!("kyso_callbacks_total", "provider" => provider.to_owned(), "result" => result)
                .increment(1);
        };
        if !entry.callback_auth.verify(header, body) {
            count("unauthenticated");
            return Err(CallbackRefused::Unauthenticated);
        }
        let answer = entry.adapter.handle_callback(body).map_err(|e| {
            count("malformed");
            CallbackRefused::Malformed(e.to_string())
        })?;
        let result = if entry.callback_rate.try_take() {
            let mut pushed = Pushed::Missing;
            for hint in answer.hints {
                let Some(id) = SessionId::from_transaction_id(&hint.transaction_id) else {
                    continue;
                };
                pushed = pushed.max(self.push(&id, provider).await?);
            }
            match pushed {
                Pushed::Woken => "woken",
                Pushed::Coalesced => "coalesced",
                Pushed::Missing => "ignored",
            }
        } else {
            "rate_limited"
        };
        count(result);
        Ok(Callback {
            result,
            reply: answer.reply,
        })
    }
}

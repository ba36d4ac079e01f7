//! Cancelling a session (`DELETE /v1/signatures/{id}`), and the gate that keeps a cancel and a
//! start of the same session apart on this instance.
//!
//! Every start attempt passes the session's gate: it is withheld when a cancel has begun (or
//! ended within a lease, which covers a session claimed just before its cancel committed), and
//! otherwise marks the gate `sending` until the provider answers. A cancel marks the gate
//! first, waits (at most [`START_WAIT`]) for an attempt being sent, and then commits
//! `cancelled`. When the request reached, or may have reached, the phone and the provider's
//! protocol cannot withdraw it (SmartCA SP769 and the ETSI TS 102 204 MSSPs cannot), the
//! session's `error.code` is `prompt_not_withdrawn`; where it can, the provider-side cancel is
//! sent. `kyso_starts_withheld_total` counts withheld attempts, `kyso_prompts_after_cancel_total`
//! the starts a cancel came too late to stop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Notify;

use super::Engine;
use crate::domain::{ErrorCode, Session, SessionError, SessionId, Status};
use crate::providers::{ProviderError, SignRequest, Started, StatusRequest};
use crate::store::{Change, StoreError};

use super::registry::ProviderEntry;

/// The longest a cancel waits for a start attempt being sent (a provider answer within its
/// request timeouts). Past it the session is cancelled as if the prompt had been shown.
pub const START_WAIT: Duration = Duration::from_secs(15);

/// Why a cancel did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("no such session")]
    NotFound,
    #[error("the session is already {}", .0.as_str())]
    AlreadyTerminal(Status),
    #[error("the session changed while cancelling; retry")]
    Changed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Per-session gates, only for sessions with a start attempt being sent or a cancel under way
/// or recent (a lease long): bounded by the provider's in-flight limits and the cancel rate.
#[derive(Default)]
pub(super) struct Gates {
    map: Mutex<HashMap<String, Gate>>,
    /// Told whenever an attempt ends.
    ended: Notify,
}

#[derive(Default)]
struct Gate {
    /// Cancels under way.
    cancels: u32,
    /// Start steps under way (from before their first attempt until their write).
    steps: u32,
    /// No attempt may begin before this (a cancel committed here not long ago).
    closed_until: Option<Instant>,
    sending: bool,
    /// An attempt ended that may have reached the phone.
    prompted: bool,
}

impl Gate {
    fn closed(&self, now: Instant) -> bool {
        self.cancels > 0 || self.closed_until.is_some_and(|t| now < t)
    }

    fn idle(&self, now: Instant) -> bool {
        self.steps == 0 && !self.sending && !self.closed(now)
    }
}

impl Gates {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Gate>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a start step of `id` until the returned guard is dropped (after the step's
    /// write), so that a cancel between an attempt and that write knows what it sent.
    pub(super) fn enter<'a>(&'a self, id: &str) -> Stepping<'a> {
        self.lock().entry(id.to_owned()).or_default().steps += 1;
        Stepping {
            gates: self,
            id: id.to_owned(),
        }
    }

    /// Opens the gate for one attempt; `None` when a cancel closed it.
    fn begin<'a>(&'a self, id: &str) -> Option<Sending<'a>> {
        let mut map = self.lock();
        let gate = map.entry(id.to_owned()).or_default();
        if gate.closed(Instant::now()) {
            return None;
        }
        gate.sending = true;
        Some(Sending {
            gates: self,
            id: id.to_owned(),
            prompted: true,
        })
    }

    fn end(&self, id: &str, prompted: bool) {
        let mut map = self.lock();
        if let Some(gate) = map.get_mut(id) {
            gate.sending = false;
            gate.prompted |= prompted;
            if gate.idle(Instant::now()) {
                map.remove(id);
            }
        }
        drop(map);
        self.ended.notify_waiters();
    }

    /// Closes the gate for a cancel (until the returned hold is dropped, and then for `linger`).
    fn hold<'a>(&'a self, id: &str, linger: Duration) -> Hold<'a> {
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, g| !g.idle(now));
        map.entry(id.to_owned()).or_default().cancels += 1;
        Hold {
            gates: self,
            id: id.to_owned(),
            linger,
        }
    }

    /// Whether a cancel here closed `id`'s gate (it accounts for a start it let through).
    fn closed(&self, id: &str) -> bool {
        let now = Instant::now();
        self.lock().get(id).is_some_and(|g| g.closed(now))
    }
}

/// A start step under way.
pub(super) struct Stepping<'a> {
    gates: &'a Gates,
    id: String,
}

impl Drop for Stepping<'_> {
    fn drop(&mut self) {
        let mut map = self.gates.lock();
        if let Some(gate) = map.get_mut(&self.id) {
            gate.steps = gate.steps.saturating_sub(1);
            if gate.idle(Instant::now()) {
                map.remove(&self.id);
            }
        }
    }
}

/// An attempt being sent; ends the attempt when dropped (as one that may have prompted, unless
/// told otherwise).
struct Sending<'a> {
    gates: &'a Gates,
    id: String,
    prompted: bool,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.gates.end(&self.id, self.prompted);
    }
}

/// A cancel's hold on a gate.
struct Hold<'a> {
    gates: &'a Gates,
    id: String,
    linger: Duration,
}

impl Hold<'_> {
    /// Waits (at most `wait`) for an attempt being sent; whether any attempt may have reached
    /// the phone, and whether this cancel waited for one.
    async fn settle(&self, wait: Duration) -> (bool, bool) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut waited = false;
        loop {
            let ended = self.gates.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let (sending, prompted) = match self.gates.lock().get(&self.id) {
                Some(g) => (g.sending, g.prompted),
                None => (false, false),
            };
            if !sending {
                return (prompted, waited);
            }
            waited = true;
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                tracing::warn!(session = %self.id, "a start was still in flight when the cancel stopped waiting");
                return (true, true);
            }
        }
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        let mut map = self.gates.lock();
        if let Some(gate) = map.get_mut(&self.id) {
            gate.cancels = gate.cancels.saturating_sub(1);
            gate.closed_until = Some(Instant::now() + self.linger);
        }
    }
}

impl Engine {
    /// Cancels `tenant`'s session `id`. A start not yet sent is withheld; one being sent is
    /// waited for. Runs on its own task: a caller that goes away does not stop a cancel
    /// half-way (after its commit, before its event or its provider-side cancel).
    pub async fn cancel(
        self: &Arc<Self>,
        tenant: &str,
        id: &SessionId,
    ) -> Result<Session, CancelError> {
        let (engine, tenant, id) = (Arc::clone(self), tenant.to_owned(), id.clone());
        match tokio::spawn(async move { engine.cancel_here(&tenant, &id).await }).await {
            Ok(done) => done,
            Err(e) => Err(CancelError::Store(StoreError::Corrupt(format!(
                "cancel task failed: {e}"
            )))),
        }
    }

    async fn cancel_here(&self, tenant: &str, id: &SessionId) -> Result<Session, CancelError> {
        let hold = self.gates.hold(id.as_str(), self.config.lease);
        // Whether this cancel waited for a start in flight (which may then have written
        // `awaiting_user` before the cancel's first commit).
        let mut waited = false;
        for _ in 0..3 {
            let session = self
                .store
                .get(tenant, id)
                .await?
                .ok_or(CancelError::NotFound)?;
            let expected = session.status;
            if expected.is_terminal() {
                return Err(CancelError::AlreadyTerminal(expected));
            }
            let prompted = match expected {
                Status::Pending => {
                    let (prompted, waited_now) = hold.settle(START_WAIT).await;
                    waited |= waited_now;
                    prompted
                }
                _ => true,
            };
            let entry = self.providers.get(&session.provider).cloned();
            let withdraw = entry.as_ref().is_some_and(|e| e.adapter.can_withdraw());
            let mut cancelled = session.clone();
            cancelled.cancel((prompted && !withdraw).then(not_withdrawn), Utc::now());
            let change = Change {
                session: &cancelled,
                expected,
                next_check_at: None,
                work: None,
                // A cancel holds no lease: it wins over any step by the status alone.
                lease: None,
            };
            // A start that ended meanwhile wrote `awaiting_user`: read again and cancel that.
            if self.commit(change).await?.is_none() {
                continue;
            }
            if waited && prompted {
                metrics::counter!("kyso_prompts_after_cancel_total", "provider" => session.provider.clone())
                    .increment(1);
            }
            if let (Some(entry), true) = (entry, prompted && withdraw) {
                spawn_provider_cancel(entry, &session);
            }
            tracing::info!(session = %id, prompted, "session cancelled");
            return Ok(cancelled);
        }
        Err(CancelError::Changed)
    }

    /// One start attempt, through the session's gate: `Ok(None)` when a cancel withheld it.
    pub(super) async fn send_start(
        &self,
        entry: &ProviderEntry,
        id: &SessionId,
        req: &SignRequest<'_>,
    ) -> Result<Option<Started>, ProviderError> {
        let Some(mut sending) = self.gates.begin(id.as_str()) else {
            metrics::counter!("kyso_starts_withheld_total", "provider" => entry.id.to_string())
                .increment(1);
            tracing::info!(session = %id, "start withheld: the session is being cancelled");
            return Ok(None);
        };
        let started = entry.adapter.start(req).await;
        // A final answer means the provider refused: nothing reached the phone. A transport
        // failure (a timeout, a dropped connection) may have come after the provider acted.
        sending.prompted = !matches!(started, Err(ProviderError::Final(_)));
        started.map(Some)
    }

    /// A start the provider accepted could not be written: when the session was cancelled
    /// meanwhile by a cancel that did not see the start (on another instance), the prompt came
    /// after the cancel.
    pub(super) async fn start_not_written(&self, session: &Session) {
        if self.gates.closed(session.id.as_str()) {
            return;
        }
        if let Ok(Some(now)) = self.store.get(&session.tenant, &session.id).await {
            if now.status == Status::Cancelled {
                tracing::warn!(session = %session.id, "a prompt reached the phone after the session was cancelled");
                metrics::counter!("kyso_prompts_after_cancel_total", "provider" => session.provider.clone())
                    .increment(1);
            }
        }
    }
}

fn not_withdrawn() -> SessionError {
    SessionError {
        code: ErrorCode::PromptNotWithdrawn,
        message: "the request had been sent to the provider, which may have shown it on the \
                  signer's phone and cannot withdraw it; the signer may still see it, and any \
                  answer is ignored"
            .into(),
        provider_code: None,
    }
}

/// Withdraws the prompt at the provider, on its own task (the cancel is already committed).
fn spawn_provider_cancel(entry: Arc<ProviderEntry>, session: &Session) {
    let tx = session.id.transaction_id();
    let signer = session.signer.clone();
    tokio::spawn(async move {
        let state = serde_json::Value::Null;
        let req = StatusRequest {
            transaction_id: &tx,
            signer: &signer,
            state: &state,
        };
        if let Err(e) = entry.adapter.cancel(&req).await {
            tracing::warn!(transaction = %tx, error = %e, "provider-side cancel failed");
        }
    });
}

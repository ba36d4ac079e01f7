//! The pending-request book shared by every provider front end and the virtual phone: one
//! entry per phone prompt, indexed by the caller's transaction id (so a repeated sign never
//! prompts twice) and by the provider's own code. Time-driven outcomes (approve or refuse
//! after the delay, expiry after the confirmation window or the request's own window) sit in
//! a deadline heap and are applied lazily by [`Store::settle_due`], which every read and the
//! background ticker call. Providers whose users can only answer one prompt at a time (a SIM)
//! submit "exclusive" requests: a second one for the same signer is refused while the first
//! is pending.
//! Everything is behind one std mutex held only for map operations — never across an await.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::behaviour::{AutoOutcome, Behaviour};
use crate::pki::Provider;

/// How long a prompt waits on the phone before the mock gives up on it.
pub const CONFIRMATION_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Stored requests; past this the oldest finished ones are forgotten.
pub const MAX_REQUESTS: usize = 200_000;
/// Rows one admin listing returns (newest first).
const MAX_LISTED: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Pending,
    Signed,
    Rejected,
    Expired,
}

/// One document of a batch: what to sign and, prepared in advance, what the phone returns.
#[derive(Debug, Clone)]
pub struct Document {
    pub doc_id: String,
    pub digest: [u8; 32],
    pub signature: Option<Vec<u8>>,
}

/// What a front end keeps with a prompt beyond the common fields.
#[derive(Debug, Clone, Default)]
pub enum Extra {
    #[default]
    None,
    /// The MSSP transaction: messaging mode, where to notify, how to answer.
    Mssp(Arc<crate::mssp::Transaction>),
    /// The SmartCA service-provider account that asked: its webhook URL gets the push.
    SmartCa { sp_id: String },
}

impl Extra {
    /// The account a transaction belongs to, where the provider has accounts: another
    /// account may not repeat it.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Extra::SmartCa { sp_id } => Some(sp_id),
            _ => None,
        }
    }
}

/// A prompt on the virtual phone.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The mock's own id (`req_<n>`), used by the admin API.
    pub id: String,
    pub provider: Provider,
    pub signer: String,
    /// The id the caller chose.
    pub transaction_id: String,
    /// The id the provider handed back (SmartCA `tran_code`).
    pub tran_code: String,
    /// What the phone shows (SmartCA `transaction_desc`).
    pub display_text: String,
    pub documents: Vec<Document>,
    pub behaviour: Behaviour,
    pub status: RequestStatus,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub extra: Extra,
}

/// What a new prompt needs.
pub struct NewRequest {
    pub provider: Provider,
    pub signer: String,
    pub transaction_id: String,
    pub tran_code: String,
    pub display_text: String,
    pub documents: Vec<Document>,
    pub behaviour: Behaviour,
    /// How long the prompt may wait before it expires; `None` is the store's window.
    pub window: Option<Duration>,
    /// Refuse the request while another one for the same signer is pending.
    pub exclusive: bool,
    pub extra: Extra,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("transaction_id already used for another user")]
    Conflict,
    #[error("too many pending requests")]
    Full,
    #[error("another request for this signer is pending")]
    Busy,
}

/// What a deadline in the heap does when it comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// The behaviour's own outcome (approve or refuse after the delay).
    Outcome,
    /// The prompt's window closed.
    Expire,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no such request")]
    NotFound,
    #[error("request is already {0:?}")]
    NotPending(RequestStatus),
}

/// The two things a person can do on the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    requests: HashMap<u64, SignRequest>,
    by_transaction: HashMap<(Provider, String), u64>,
    by_code: HashMap<String, u64>,
    /// Accepted sign calls per caller transaction id.
    sign_calls: HashMap<String, u64>,
    total_sign_calls: u64,
    prompts_created: u64,
    due: BinaryHeap<Reverse<(Instant, u64, Due)>>,
    finished: VecDeque<u64>,
    /// The pending exclusive request of each (provider, signer).
    busy: HashMap<(Provider, String), u64>,
}

/// The request book.
pub struct Store {
    inner: Mutex<Inner>,
    approve_delay: Duration,
    window: Duration,
    max_requests: usize,
}

/// Counters for `GET /admin/stats`.
#[derive(Debug, serde::Serialize)]
pub struct Stats {
    pub sign_requests: HashMap<String, u64>,
    pub total: u64,
    pub prompts: u64,
    pub pending: usize,
}

impl Store {
    pub fn new(approve_delay: Duration) -> Self {
        Self::with_limits(approve_delay, CONFIRMATION_WINDOW, MAX_REQUESTS)
    }

    /// A store with its own confirmation window and capacity (tests use small ones).
    pub fn with_limits(approve_delay: Duration, window: Duration, max_requests: usize) -> Self {
        Self {
            inner: Mutex::default(),
            approve_delay,
            window,
            max_requests,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A repeated sign call for a transaction id already on the phone: counts the call and
    /// returns the existing request. `None` when the id is new.
    pub fn repeat(
        &self,
        provider: Provider,
        transaction_id: &str,
        signer: &str,
        owner: Option<&str>,
    ) -> Option<Result<SignRequest, SubmitError>> {
        let mut inner = self.lock();
        let n = *inner
            .by_transaction
            .get(&(provider, transaction_id.to_owned()))?;
        let req = inner.requests.get(&n)?.clone();
        if req.signer != signer || req.extra.owner() != owner {
            return Some(Err(SubmitError::Conflict));
        }
        inner.count_call(transaction_id);
        Some(Ok(req))
    }

    /// Records a sign call: creates the prompt, or — for a transaction id seen before —
    /// returns the existing one (`false` in the second field) without prompting again.
    pub fn submit(&self, new: NewRequest) -> Result<(SignRequest, bool), SubmitError> {
        let mut inner = self.lock();
        let key = (new.provider, new.transaction_id.clone());
        if let Some(existing) = inner.by_transaction.get(&key).copied() {
            if let Some(req) = inner.requests.get(&existing).cloned() {
                if req.signer != new.signer || req.extra.owner() != new.extra.owner() {
                    return Err(SubmitError::Conflict);
                }
                inner.count_call(&new.transaction_id);
                return Ok((req, false));
            }
        }
        let busy_key = (new.provider, new.signer.clone());
        if new.exclusive && inner.busy.contains_key(&busy_key) {
            return Err(SubmitError::Busy);
        }
        if inner.requests.len() >= self.max_requests && !inner.evict_one() {
            return Err(SubmitError::Full);
        }
        inner.next_id += 1;
        let n = inner.next_id;
        let now = Instant::now();
        let window = new.window.unwrap_or(self.window);
        inner.due.push(Reverse((now + window, n, Due::Expire)));
        match new.behaviour.auto_outcome() {
            AutoOutcome::ApproveAfterDelay | AutoOutcome::RefuseAfterDelay
                if self.approve_delay < window =>
            {
                inner
                    .due
                    .push(Reverse((now + self.approve_delay, n, Due::Outcome)));
            }
            _ => {}
        }
        if new.exclusive {
            inner.busy.insert(busy_key, n);
        }
        let req = SignRequest {
            id: format!("req_{n}"),
            provider: new.provider,
            signer: new.signer,
            transaction_id: new.transaction_id,
            tran_code: new.tran_code,
            display_text: new.display_text,
            documents: new.documents,
            behaviour: new.behaviour,
            status: RequestStatus::Pending,
            created_at: Utc::now(),
            completed_at: None,
            extra: new.extra,
        };
        inner.count_call(&req.transaction_id);
        inner.prompts_created += 1;
        inner.by_transaction.insert(key, n);
        inner.by_code.insert(req.tran_code.clone(), n);
        inner.requests.insert(n, req.clone());
        Ok((req, true))
    }

    /// Finds a request by the mock's id (`req_<n>`), the provider's code or the caller's
    /// transaction id, in that order.
    pub fn find(&self, any_id: &str) -> Option<SignRequest> {
        let inner = self.lock();
        inner
            .resolve(any_id)
            .and_then(|n| inner.requests.get(&n).cloned())
    }

    /// Finds a request of one provider by its code or the caller's transaction id.
    pub fn find_for(&self, provider: Provider, id: &str) -> Option<SignRequest> {
        let inner = self.lock();
        let n = inner
            .by_code
            .get(id)
            .copied()
            .filter(|n| {
                inner
                    .requests
                    .get(n)
                    .is_some_and(|r| r.provider == provider)
            })
            .or_else(|| {
                inner
                    .by_transaction
                    .get(&(provider, id.to_owned()))
                    .copied()
            })?;
        inner.requests.get(&n).cloned()
    }

    /// Applies every time-driven outcome that is due and returns the requests it finished.
    pub fn settle_due(&self) -> Vec<SignRequest> {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut done = Vec::new();
        while let Some(Reverse((at, n, due))) = inner.due.peek().copied() {
            if at > now {
                break;
            }
            inner.due.pop();
            let Some(req) = inner.requests.get(&n) else {
                continue;
            };
            if req.status != RequestStatus::Pending {
                continue;
            }
            let status = match (due, req.behaviour.auto_outcome()) {
                (Due::Expire, _) | (_, AutoOutcome::ExpireAfterWindow) => RequestStatus::Expired,
                (Due::Outcome, AutoOutcome::ApproveAfterDelay) => RequestStatus::Signed,
                (Due::Outcome, AutoOutcome::RefuseAfterDelay) => RequestStatus::Rejected,
            };
            if let Some(req) = inner.finish(n, status) {
                done.push(req);
            }
        }
        done
    }

    /// A person's answer on the phone.
    pub fn decide(&self, any_id: &str, decision: Decision) -> Result<SignRequest, DecideError> {
        let mut inner = self.lock();
        let n = inner.resolve(any_id).ok_or(DecideError::NotFound)?;
        let status = inner
            .requests
            .get(&n)
            .map(|r| r.status)
            .ok_or(DecideError::NotFound)?;
        if status != RequestStatus::Pending {
            return Err(DecideError::NotPending(status));
        }
        let to = match decision {
            Decision::Approve => RequestStatus::Signed,
            Decision::Reject => RequestStatus::Rejected,
        };
        inner.finish(n, to).ok_or(DecideError::NotFound)
    }

    /// Requests matching the filters, newest first, at most [`MAX_LISTED`].
    pub fn list(&self, signer: Option<&str>, status: Option<RequestStatus>) -> Vec<SignRequest> {
        let inner = self.lock();
        let mut rows: Vec<(u64, &SignRequest)> = inner
            .requests
            .iter()
            .filter(|(_, r)| signer.is_none_or(|s| r.signer == s))
            .filter(|(_, r)| status.is_none_or(|s| r.status == s))
            .map(|(n, r)| (*n, r))
            .collect();
        rows.sort_unstable_by_key(|(n, _)| Reverse(*n));
        rows.into_iter()
            .take(MAX_LISTED)
            .map(|(_, r)| r.clone())
            .collect()
    }

    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            sign_requests: inner.sign_calls.clone(),
            total: inner.total_sign_calls,
            prompts: inner.prompts_created,
            pending: inner
                .requests
                .values()
                .filter(|r| r.status == RequestStatus::Pending)
                .count(),
        }
    }
}

impl Inner {
    fn count_call(&mut self, transaction_id: &str) {
        *self
            .sign_calls
            .entry(transaction_id.to_owned())
            .or_insert(0) += 1;
        self.total_sign_calls += 1;
    }

    fn resolve(&self, any_id: &str) -> Option<u64> {
        if let Some(n) = any_id
            .strip_prefix("req_")
            .and_then(|n| n.parse::<u64>().ok())
        {
            if self.requests.contains_key(&n) {
                return Some(n);
            }
        }
        if let Some(n) = self.by_code.get(any_id) {
            return Some(*n);
        }
        Provider::ALL
            .iter()
            .find_map(|p| self.by_transaction.get(&(*p, any_id.to_owned())).copied())
    }

    fn finish(&mut self, n: u64, status: RequestStatus) -> Option<SignRequest> {
        let req = self.requests.get_mut(&n)?;
        req.status = status;
        req.completed_at = Some(Utc::now());
        let snapshot = req.clone();
        self.finished.push_back(n);
        let key = (snapshot.provider, snapshot.signer.clone());
        if self.busy.get(&key) == Some(&n) {
            self.busy.remove(&key);
        }
        Some(snapshot)
    }

    /// Forgets the oldest finished request; `false` when every stored request is pending.
    fn evict_one(&mut self) -> bool {
        while let Some(n) = self.finished.pop_front() {
            if let Some(req) = self.requests.remove(&n) {
                self.by_transaction
                    .remove(&(req.provider, req.transaction_id.clone()));
                self.by_code.remove(&req.tran_code);
                self.sign_calls.remove(&req.transaction_id);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;

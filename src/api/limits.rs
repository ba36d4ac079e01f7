//! The request limits and single-use secrets a portal meets, the same whichever instance
//! answers: on a shared database (PostgreSQL) they live there (`store::shared`), so N
//! instances behind a load balancer allow one tenant rate, one prompt limit per signer, and a
//! challenge or ticket made on one instance is good, once, on any other; on SQLite (one
//! instance) they stay in this process's memory.

use std::time::Duration;

use chrono::Utc;
use rand::RngCore;

use super::challenges::{Issued, NONCE_BYTES};
use super::error::ApiError;
use super::extract::Tenant;
use super::AppState;

const CHALLENGE: &str = "usb_challenge";
const TICKET: &str = "ws_ticket";

/// How long tokens taken from the shared bucket may be spent here: unspent ones are dropped,
/// so an instance cannot save tokens up for a burst beyond the tenant's.
const LEASE: Duration = Duration::from_secs(1);

/// The tenant's request rate: `429 rate_limited` past it. On a shared database this instance
/// takes tokens from the tenant's bucket there in chunks of a tenth of the rate (at most the
/// burst) and spends them here within [`LEASE`]: the tenant never gets more than its rate
/// across all instances, at one statement per chunk instead of one per request (a hot row
/// written per create cost PostgreSQL 0.7 ms per session). An instance may refuse while
/// another still holds unspent tokens: at most a chunk each, for at most a second.
pub async fn tenant_rate(app: &AppState, tenant: &Tenant) -> Result<(), ApiError> {
    let cfg = &tenant.0.config;
    let Some(shared) = app.engine.shared() else {
        return tenant
            .0
            .rate
            .try_take()
            .then_some(())
            .ok_or(ApiError::RateLimited);
    };
    if spend_leased(tenant) {
        return Ok(());
    }
    // One chunk at a time: 64 requests finding the lease empty at once once took 64 chunks,
    // emptying the tenant's bucket for everybody.
    let _refilling = tenant.0.refill.lock().await;
    if spend_leased(tenant) {
        return Ok(());
    }
    let burst = cfg.rate_per_s.saturating_mul(2);
    let chunk = (cfg.rate_per_s / 10).clamp(1, burst.max(1));
    let key = format!("tenant\u{1f}{}", cfg.id);
    let granted = shared
        .take_tokens(&key, cfg.rate_per_s, burst, chunk)
        .await?;
    if granted == 0 {
        return Err(ApiError::RateLimited);
    }
    let mut leased = tenant.0.leased.lock().unwrap_or_else(|p| p.into_inner());
    // This request spends one; the rest (with any left from a racing refill) stay here.
    *leased = (leased.0 + granted - 1, std::time::Instant::now() + LEASE);
    Ok(())
}

/// Spends a token this instance holds for the tenant, if one is left and still good.
fn spend_leased(tenant: &Tenant) -> bool {
    let mut leased = tenant.0.leased.lock().unwrap_or_else(|p| p.into_inner());
    if leased.0 == 0 || std::time::Instant::now() >= leased.1 {
        leased.0 = 0;
        return false;
    }
    leased.0 -= 1;
    true
}

/// The tenant's prompts per signer per minute: `429 rate_limited` past it.
pub async fn signer_prompt(app: &AppState, tenant: &Tenant, signer: &str) -> Result<(), ApiError> {
    let cfg = &tenant.0.config;
    let ok = match app.engine.shared() {
        Some(shared) => {
            let key = format!("signer\u{1f}{}\u{1f}{signer}", cfg.id);
            let minute = Duration::from_secs(60);
            shared
                .hit(&key, cfg.signer_requests_per_minute, minute)
                .await?
        }
        None => tenant.0.per_signer.try_take(signer),
    };
    ok.then_some(()).ok_or(ApiError::RateLimited)
}

fn too_many_challenges(max: usize) -> ApiError {
    ApiError::Conflict {
        code: "too_many_challenges",
        message: format!("{max} unused challenges are open; use or let some expire"),
    }
}

/// A new USB challenge for the tenant.
pub async fn issue_challenge(app: &AppState, tenant: &Tenant) -> Result<Issued, ApiError> {
    let local = &app.usb.challenges;
    let Some(shared) = app.engine.shared() else {
        return local
            .issue(tenant.id(), Utc::now())
            .map_err(|e| too_many_challenges(e.0));
    };
    let mut nonce = [0u8; NONCE_BYTES];
    rand::thread_rng().fill_bytes(&mut nonce);
    let id = format!("chl_{}", ulid::Ulid::new());
    let (ttl, max) = (local.ttl(), local.per_tenant());
    if !shared
        .put_once(CHALLENGE, tenant.id(), &id, &nonce, ttl, max)
        .await?
    {
        return Err(too_many_challenges(max));
    }
    Ok(Issued {
        id,
        nonce,
        expires_at: Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default(),
    })
}

/// Uses up the tenant's challenge `id`: its nonce, or `None` when unknown, used, expired or
/// another tenant's (left as it was).
pub async fn take_challenge(
    app: &AppState,
    tenant: &Tenant,
    id: &str,
) -> Result<Option<[u8; NONCE_BYTES]>, ApiError> {
    let Some(shared) = app.engine.shared() else {
        return Ok(app.usb.challenges.take(tenant.id(), id, Utc::now()));
    };
    let taken = shared.take_once(CHALLENGE, id, Some(tenant.id())).await?;
    Ok(taken.and_then(|t| t.value.try_into().ok()))
}

/// A browser ticket for the tenant's event stream.
pub async fn issue_ticket(app: &AppState, tenant: &Tenant) -> Result<String, ApiError> {
    let too_many = |e: crate::events::tickets::TooManyTickets| ApiError::TooMany {
        code: "too_many_tickets",
        message: e.to_string(),
    };
    let local = &app.tickets;
    let Some(shared) = app.engine.shared() else {
        return local.issue(tenant.id()).map_err(too_many);
    };
    let ticket = crate::events::tickets::new_ticket();
    let max = local.per_tenant();
    if !shared
        .put_once(TICKET, tenant.id(), &ticket, &[], local.ttl(), max)
        .await?
    {
        return Err(too_many(crate::events::tickets::TooManyTickets(max)));
    }
    Ok(ticket)
}

/// The tenant of a valid ticket, consuming it.
pub async fn redeem_ticket(app: &AppState, ticket: &str) -> Result<Option<String>, ApiError> {
    match app.engine.shared() {
        Some(shared) => Ok(shared
            .take_once(TICKET, ticket, None)
            .await?
            .map(|t| t.scope)),
        None => Ok(app.tickets.redeem(ticket)),
    }
}

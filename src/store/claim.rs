//! What the scheduler asks the store for: which due sessions a claim takes ([`Claim`]) and the
//! queues it chooses among ([`Queue`]). Both are read through indexes on (provider, tenant,
//! next check) and (provider, deadline), so their cost depends on what they return, never on
//! the backlog behind it.

use chrono::{DateTime, Utc};

/// Which due sessions `Store::due` takes. The default takes any provider's and any tenant's,
/// earliest next check first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Claim<'a> {
    /// Only these providers' sessions (all when empty). The scheduler names one provider, so
    /// one that cannot take work does not fill a claim with rows to give back.
    pub providers: &'a [String],
    /// Only this tenant's sessions (the scheduler's fair shares, see `engine::fair`).
    pub tenant: Option<&'a str>,
    /// Only sessions past their deadline, earliest deadline first: they need no provider call,
    /// so they end on time while their provider is out of tokens or its circuit is open.
    pub only_expired: bool,
}

impl<'a> Claim<'a> {
    pub fn provider(providers: &'a [String]) -> Self {
        Self {
            providers,
            ..Self::default()
        }
    }

    pub fn tenant(self, tenant: &'a str) -> Self {
        Self {
            tenant: Some(tenant),
            ..self
        }
    }

    pub fn expired(self) -> Self {
        Self {
            only_expired: true,
            ..self
        }
    }
}

/// One tenant's queue on one provider: its unfinished sessions not leased to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub tenant: String,
    /// The earliest next check among them.
    pub next: DateTime<Utc>,
}

/// At most this many tenants' queues are read per provider and pass (by tenant id); a
/// deployment with more tenants on one provider serves the rest when these are drained.
pub const MAX_QUEUES: u32 = 1_000;

/// The queues statement: a skip scan over the (provider, tenant, next check) index that finds
/// each tenant with unfinished sessions on provider `$1` in one probe, then its earliest next
/// check among sessions `unleased` admits; at most `$2` tenants. `p` writes the dialect's
/// placeholder for a parameter number.
pub(crate) fn queues_sql(p: fn(u8) -> String, unleased: &str) -> String {
    let (provider, max) = (p(1), p(2));
    format!(
        "WITH RECURSIVE t(tenant) AS (
             SELECT (SELECT tenant FROM sessions
                     WHERE provider = {provider} AND next_check_at IS NOT NULL
                     ORDER BY tenant LIMIT 1)
             UNION ALL
             SELECT (SELECT s.tenant FROM sessions s
                     WHERE s.provider = {provider} AND s.next_check_at IS NOT NULL
                       AND s.tenant > t.tenant
                     ORDER BY s.tenant LIMIT 1)
             FROM t WHERE t.tenant IS NOT NULL)
         SELECT tenant, (SELECT s.next_check_at FROM sessions s
                         WHERE s.provider = {provider} AND s.tenant = t.tenant
                           AND s.next_check_at IS NOT NULL AND {unleased}
                         ORDER BY s.next_check_at LIMIT 1) AS next
         FROM t WHERE tenant IS NOT NULL LIMIT {max}"
    )
}

/// The queues from the rows of [`queues_sql`] (tenant, earliest next check); a tenant whose
/// sessions are all leased has none.
pub(crate) fn queues_from(rows: Vec<(String, Option<i64>)>) -> Vec<Queue> {
    rows.into_iter()
        .filter_map(|(tenant, next)| {
            Some(Queue {
                tenant,
                next: crate::store::from_ms(next?),
            })
        })
        .collect()
}

/// The earliest deadline of provider `$1`'s unfinished sessions, one probe of its index.
pub(crate) fn next_expiry_sql(p: fn(u8) -> String) -> String {
    format!(
        "SELECT expires_at FROM sessions
         WHERE provider = {} AND next_check_at IS NOT NULL
         ORDER BY expires_at LIMIT 1",
        p(1)
    )
}

/// The conditions, order and limit of a claim's sub-select, earliest first. Parameters are
/// numbered from `first`, bound in this order: `now`, `limit`, the providers when the claim
/// names any (one: a value; more: `list`, which says "provider is in the list at {n}"), the
/// tenant when it names one. `extra` adds a dialect's own condition (PostgreSQL: unleased).
/// One provider and a tenant are equalities on the (provider, tenant, next check) index; a
/// claim past deadlines orders by the (provider, deadline) index instead.
pub(crate) fn claim_where(
    claim: &Claim<'_>,
    p: fn(u8) -> String,
    first: u8,
    list: fn(String) -> String,
    extra: &str,
) -> String {
    let mut n = first;
    let mut next = || {
        let v = p(n);
        n += 1;
        v
    };
    let (now, limit) = (next(), next());
    let mut sql = format!("next_check_at IS NOT NULL AND next_check_at <= {now} AND {extra}");
    match claim.providers {
        [] => {}
        [_] => sql.push_str(&format!(" AND provider = {}", next())),
        _ => sql.push_str(&format!(" AND {}", list(next()))),
    }
    if claim.tenant.is_some() {
        sql.push_str(&format!(" AND tenant = {}", next()));
    }
    if claim.only_expired {
        sql.push_str(&format!(" AND expires_at <= {now} ORDER BY expires_at"));
    } else {
        sql.push_str(" ORDER BY next_check_at");
    }
    sql.push_str(&format!(" LIMIT {limit}"));
    sql
}

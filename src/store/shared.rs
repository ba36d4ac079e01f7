//! State every instance of a cluster must agree on, kept in the shared database: request
//! limits (a tenant's rate, a signer's prompts per window) and single-use secrets (USB
//! challenges, WebSocket tickets). Only a store that several instances share has it
//! (`Store::shared`); on SQLite, one instance, the API keeps the same things in memory.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

/// A single-use secret as taken: whose it was and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub scope: String,
    pub value: Vec<u8>,
}

#[async_trait]
pub trait Shared: Send + Sync {
    /// Takes up to `want` whole tokens from bucket `key` (refilled at `rate_per_s`, holding at
    /// most `burst`, full at first); returns how many it took (0: none left).
    async fn take_tokens(
        &self,
        key: &str,
        rate_per_s: u32,
        burst: u32,
        want: u32,
    ) -> Result<u32, StoreError>;
    /// Counts a hit on `key` in its fixed window of `window` (started by its first hit);
    /// false, and not counted, when the window already has `limit`.
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<bool, StoreError>;
    /// Keeps `value` under (`kind`, `id`) for `scope` until `ttl` has passed; false when
    /// `scope` already holds `max` live ones of `kind`.
    async fn put_once(
        &self,
        kind: &str,
        scope: &str,
        id: &str,
        value: &[u8],
        ttl: Duration,
        max: usize,
    ) -> Result<bool, StoreError>;
    /// Takes (removes) what (`kind`, `id`) holds: `None` when unknown, used, expired, or
    /// (with `scope`) another scope's, which is left as it was.
    async fn take_once(
        &self,
        kind: &str,
        id: &str,
        scope: Option<&str>,
    ) -> Result<Option<Taken>, StoreError>;
}

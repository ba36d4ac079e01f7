//! The range of every numeric setting, checked when the configuration loads. A value the code
//! cannot work with (a zero interval, a tick below the scheduler's shortest sleep, a timeout
//! of zero) is refused at start with its key and range, rather than accepted and then panicking
//! a background task or stalling sessions while `/healthz` still answers ok.

use std::fmt::Display;
use std::ops::RangeInclusive;

use super::{Config, ConfigError, ProviderKind};

const DAY_S: u64 = 86_400;
const HOUR_MS: u64 = 3_600_000;

/// Checks one value against its range.
fn check<T: PartialOrd + Display>(
    key: impl Display,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(ConfigError::OutOfRange {
        key: key.to_string(),
        value: value.to_string(),
        range: format!("{}..={}", range.start(), range.end()),
    })
}

/// Every numeric key of `config`, in file order.
pub(super) fn ranges(config: &Config) -> Result<(), ConfigError> {
    let s = &config.server;
    check(
        "server.body_limit_bytes",
        s.body_limit_bytes,
        1024..=64 << 20,
    )?;
    check("server.max_wait_s", s.max_wait_s, 0..=3600)?;
    check(
        "server.header_read_timeout_s",
        s.header_read_timeout_s,
        1..=60,
    )?;
    check("server.max_connections", s.max_connections, 1..=1_000_000)?;

    let d = &config.database;
    check("database.max_connections", d.max_connections, 1..=1000)?;
    check("database.lease_s", d.lease_s, 1..=3600)?;
    check("database.wal_limit_mb", d.wal_limit_mb, 1..=65_536)?;

    let r = &config.retention;
    check("retention.finished_days", r.finished_days, 0..=36_500)?;
    // A batch is one statement holding SQLite's write lock: small, so the writer never waits long.
    check("retention.batch", r.batch, 1..=10_000)?;
    check("retention.interval_s", r.interval_s, 1..=86_400)?;

    let e = &config.engine;
    // The scheduler sleeps at least 5 ms between looks; a tick below that cannot be honoured.
    check("engine.tick_ms", e.tick_ms, 10..=60_000)?;
    check("engine.max_timeout_s", e.max_timeout_s, 1..=DAY_S as u32)?;
    check("engine.min_timeout_s", e.min_timeout_s, 1..=e.max_timeout_s)?;

    let ev = &config.events;
    check("events.ping_interval_s", ev.ping_interval_s, 1..=3600)?;
    check("events.send_timeout_s", ev.send_timeout_s, 1..=300)?;
    check("events.ticket_ttl_s", ev.ticket_ttl_s, 1..=3600)?;
    check("events.buffer", ev.buffer, 1..=1_000_000)?;
    check(
        "events.max_tickets_per_tenant",
        ev.max_tickets_per_tenant,
        1..=100_000,
    )?;
    check(
        "events.max_sockets_per_tenant",
        ev.max_sockets_per_tenant,
        1..=100_000,
    )?;

    for t in &config.tenants {
        let key = |k: &str| format!("tenants[{}].{k}", t.id);
        check(key("rate_per_s"), t.rate_per_s, 1..=1_000_000)?;
        check(
            key("signer_requests_per_minute"),
            t.signer_requests_per_minute,
            1..=100_000,
        )?;
    }

    for (id, p) in &config.providers {
        let key = |k: &str| format!("providers.{id}.{k}");
        check(
            key("default_timeout_s"),
            p.default_timeout_s,
            e.min_timeout_s..=e.max_timeout_s,
        )?;
        check(key("max_in_flight"), p.max_in_flight, 1..=100_000)?;
        check(key("rate_per_s"), p.rate_per_s, 1..=1_000_000)?;
        check(key("retry_budget_ms"), p.retry_budget_ms, 0..=HOUR_MS)?;
        check(key("circuit_failures"), p.circuit_failures, 1..=10_000)?;
        check(key("circuit_open_ms"), p.circuit_open_ms, 1..=HOUR_MS)?;
        check(
            key("callback_rate_per_s"),
            p.callback_rate_per_s,
            1..=1_000_000,
        )?;
        let key = |k: &str| format!("providers.{id}.{}.{k}", p.kind.name());
        match &p.kind {
            ProviderKind::Smartca(c) => polling(
                &key,
                c.request_timeout_ms,
                c.poll_first_ms,
                c.poll_interval_ms,
            )?,
            ProviderKind::Mssp(m) => {
                polling(
                    &key,
                    m.request_timeout_ms,
                    m.poll_first_ms,
                    m.poll_interval_ms,
                )?;
                check(key("gsm7_limit"), m.gsm7_limit, 24..=10_000)?;
                check(key("ucs2_limit"), m.ucs2_limit, 20..=10_000)?;
            }
        }
    }

    check(
        "revocation.timeout_ms",
        config.revocation.timeout_ms,
        1..=60_000,
    )?;
    let u = &config.usb;
    check("usb.challenge_ttl_s", u.challenge_ttl_s, 1..=DAY_S)?;
    check(
        "usb.max_challenges_per_tenant",
        u.max_challenges_per_tenant,
        1..=1_000_000,
    )
}

/// A provider's HTTP timeout and polling pace.
fn polling(
    key: &dyn Fn(&str) -> String,
    request_timeout_ms: u64,
    poll_first_ms: u64,
    poll_interval_ms: u64,
) -> Result<(), ConfigError> {
    check(key("request_timeout_ms"), request_timeout_ms, 1..=HOUR_MS)?;
    check(key("poll_first_ms"), poll_first_ms, 0..=HOUR_MS)?;
    // A zero interval would poll the provider in a loop.
    check(key("poll_interval_ms"), poll_interval_ms, 10..=HOUR_MS)
}

#[cfg(test)]
mod tests {
    use figment::providers::{Format, Serialized, Toml};
    use figment::Figment;

    use super::super::{Config, ConfigError};

    const BASE: &str = r#"
[[tenants]]
id = "dvc"
api_key_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
[providers.sca]
kind = "smartca"
trust_anchors = []
[providers.sca.smartca]
base_url = "http://127.0.0.1:1"
sp_id = "x"
sp_password = "y"
[providers.sim]
kind = "mssp"
trust_anchors = []
[providers.sim.mssp]
base_url = "http://127.0.0.1:1"
ap_id = "x"
ap_pwd = "y"
"#;

    fn load(key: &str, value: serde_json::Value) -> Result<Config, ConfigError> {
        Config::from_figment(
            Figment::from(Toml::string(BASE)).merge(Serialized::default(key, value)),
        )
    }

    #[test]
    fn a_one_millisecond_tick_is_refused_with_its_key_and_range() {
        let err = load("engine.tick_ms", 1.into()).expect_err("tick_ms = 1 is refused");
        assert_eq!(
            err.to_string(),
            "configuration: `engine.tick_ms` = 1 is outside its range 10..=60000"
        );
    }

    #[test]
    fn every_numeric_setting_out_of_its_range_is_refused_by_name() {
        let zero_is_fatal = [
            "server.header_read_timeout_s",
            "server.max_connections",
            "server.body_limit_bytes",
            "database.max_connections",
            "database.lease_s",
            "database.wal_limit_mb",
            "engine.tick_ms",
            "engine.min_timeout_s",
            "engine.max_timeout_s",
            "events.ping_interval_s",
            "events.send_timeout_s",
            "events.ticket_ttl_s",
            "events.buffer",
            "events.max_tickets_per_tenant",
            "events.max_sockets_per_tenant",
            "providers.sca.default_timeout_s",
            "providers.sca.max_in_flight",
            "providers.sca.rate_per_s",
            "providers.sca.circuit_failures",
            "providers.sca.circuit_open_ms",
            "providers.sca.callback_rate_per_s",
            "providers.sca.smartca.request_timeout_ms",
            "providers.sca.smartca.poll_interval_ms",
            "providers.sim.mssp.request_timeout_ms",
            "providers.sim.mssp.poll_interval_ms",
            "providers.sim.mssp.gsm7_limit",
            "providers.sim.mssp.ucs2_limit",
            "revocation.timeout_ms",
            "usb.challenge_ttl_s",
            "usb.max_challenges_per_tenant",
        ];
        for key in zero_is_fatal {
            match load(key, 0.into()) {
                Err(ConfigError::OutOfRange { key: named, .. }) => assert_eq!(named, key),
                other => panic!("{key} = 0: {other:?}"),
            }
        }
        let too_large = [
            ("server.max_wait_s", 100_000),
            ("server.header_read_timeout_s", 3600),
            ("providers.sca.retry_budget_ms", 100_000_000),
            ("providers.sim.mssp.poll_first_ms", 100_000_000),
        ];
        for (key, value) in too_large {
            assert!(
                matches!(load(key, value.into()), Err(ConfigError::OutOfRange { .. })),
                "{key} = {value}"
            );
        }
    }

    #[test]
    fn tenant_limits_and_a_minimum_above_the_maximum_are_refused() {
        let tenant = Figment::from(Toml::string(BASE)).merge(Toml::string(
            "[[tenants]]\nid = \"slow\"\napi_key_sha256 = \"1111111111111111111111111111111111111111111111111111111111111111\"\nrate_per_s = 0\n",
        ));
        let err = Config::from_figment(tenant).expect_err("rate 0");
        assert!(
            err.to_string().contains("`tenants[slow].rate_per_s` = 0"),
            "{err}"
        );
        let inverted = Config::from_figment(
            Figment::from(Toml::string(BASE))
                .merge(Serialized::default("engine.min_timeout_s", 700))
                .merge(Serialized::default("engine.max_timeout_s", 600)),
        );
        assert!(
            matches!(&inverted, Err(ConfigError::OutOfRange { key, .. }) if key == "engine.min_timeout_s"),
            "{inverted:?}"
        );
    }

    #[test]
    fn the_defaults_are_within_their_ranges() {
        load("engine.tick_ms", 500.into()).expect("the defaults load");
    }
}

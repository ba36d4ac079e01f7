//! The run: prepares the directories and signers, runs each phase in order, turns what each
//! measured into table rows (with the SPEC §9 budget where there is one), and prints the
//! table. A phase that fails becomes an ERROR row; the others still run.

use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

use crate::report::{mib, thousands, Report, Row};
use crate::stats::ms;
use crate::{
    held, hostile, latency, limit, overload, throughput, verification, Ctx, Opts, Resolved,
};

pub async fn run_all(opts: Opts, mock_rt: tokio::runtime::Handle) -> anyhow::Result<Report> {
    let run_id = ulid::Ulid::new().to_string().to_lowercase();
    let dir = opts.dir.join(format!("run-{run_id}"));
    let state = opts.dir.join("state");
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(&state)?;
    let k = opts.signers();
    // 12 digits: individuals (CCCD). `…345` approves at once, `…208` never answers.
    let approvers: Vec<String> = (0..k).map(|i| format!("001{i:06}345")).collect();
    let holders: Vec<String> = (0..k).map(|i| format!("001{i:06}208")).collect();
    eprintln!(
        "kyso-bench: provisioning {} mock signers (cached in {})",
        2 * k,
        state.display()
    );
    let all: Vec<String> = approvers.iter().chain(&holders).cloned().collect();
    crate::mock::provision(&state, &all).await?;
    let ctx = Ctx {
        opts: Resolved {
            concurrency: opts.concurrency,
            window: opts.window,
            sessions: opts.sessions(),
            provider_rate: opts.provider_rate,
            latency_rate: opts.latency_rate,
            latency_events: opts.latency_events(),
            hold: opts.hold_secs(),
            limit: opts.limit_secs(),
        },
        mock_rt,
        dir: dir.clone(),
        state,
        approvers,
        holders,
    };
    let mut report = Report {
        machine: machine(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        rows: Vec::new(),
    };
    eprintln!("kyso-bench: working in {}", dir.display());
    if let Some(wrap) = crate::gateway::wrapper() {
        report.push(
            Row::info(
                "limit",
                "NOTE: the gateway runs under KYSO_BENCH_GATEWAY_WRAP",
                wrap.join(" "),
            )
            .detail("rates, CPU and RSS are the wrapper's: no verdict of this run applies"),
        );
    }

    if opts.wants("verification") {
        match verification::run(&ctx).await {
            Ok(c) => {
                report.push(
                    Row::info(
                        "verification",
                        "signatures verified, first time",
                        format!("{}/s", thousands(c.first_per_s)),
                    )
                    .value(c.first_per_s)
                    .detail(format!("{:.0} µs each, one core", 1e6 / c.first_per_s)),
                );
                // SPEC §9: a known signer costs at most 1.1x the RSA operation itself.
                // Revocation is off in this phase, so the verdict is on the path and identity
                // cache only.
                let over_rsa = c.rsa_per_s / c.cached_per_s;
                report.push(
                    Row::info(
                        "verification",
                        "signatures verified, signer known (cached)",
                        format!("{}/s", thousands(c.cached_per_s)),
                    )
                    .value(c.cached_per_s)
                    .budget(
                        "≤ 1.1x the RSA operation (path cache; revocation off)",
                        over_rsa <= 1.1,
                    )
                    .detail(format!(
                        "{:.0} µs each = {over_rsa:.2}x the RSA operation; {:.1}x the first time",
                        1e6 / c.cached_per_s,
                        c.cached_per_s / c.first_per_s
                    )),
                );
                report.push(
                    Row::info(
                        "verification",
                        "RSA operation alone (aws-lc-rs)",
                        format!("{}/s", thousands(c.rsa_per_s)),
                    )
                    .value(c.rsa_per_s)
                    .detail(format!(
                        "{:.0} µs each, key decoded beforehand",
                        1e6 / c.rsa_per_s
                    )),
                );
            }
            Err(e) => report.push(Row::failed("verification", "signatures verified", &e)),
        }
    }

    let (mut axum_rate, mut mock_rate) = (None, None);
    if opts.wants("limit") {
        match limit::bare_axum(&ctx).await {
            Ok(r) => {
                axum_rate = Some(r);
                report.push(
                    Row::info(
                        "limit",
                        "bare axum GET /",
                        format!("{} req/s", thousands(r)),
                    )
                    .value(r)
                    .detail(format!("{} connections", ctx.opts.concurrency)),
                );
            }
            Err(e) => report.push(Row::failed("limit", "bare axum GET /", &e)),
        }
        match limit::mock_alone(&ctx).await {
            Ok(r) => {
                mock_rate = Some(r);
                report.push(
                    Row::info(
                        "limit",
                        "mock SmartCA alone (cert + sign + status)",
                        format!("{} sessions/s", thousands(r)),
                    )
                    .value(r)
                    .detail(format!("{} loops, 3 calls each", ctx.opts.concurrency)),
                );
            }
            Err(e) => report.push(Row::failed("limit", "mock SmartCA alone", &e)),
        }
    }

    // The gateway's CPU per session at full speed, for the overload section's budget.
    let (mut full_sqlite, mut full_postgres) = (None, None);
    if opts.wants("throughput") {
        for n in opts.instance_counts() {
            let url = format!(
                "sqlite://{}",
                dir.join(format!("throughput-{n}.db")).display()
            );
            let name = format!(
                "SQLite, {n} SmartCA instance{}",
                if n == 1 { "" } else { "s" }
            );
            let r = throughput::run(&ctx, url, n, &format!("throughput-sqlite-{n}")).await;
            let judged = n == 1;
            if judged {
                full_sqlite = r.as_ref().ok().map(|t| t.gateway_cpu_per_session);
            }
            report.push(throughput_row(&name, r, judged, mock_rate, axum_rate));
        }
        if opts.no_postgres {
            report.push(Row::skipped(
                "throughput",
                "PostgreSQL, 1 SmartCA instance",
                "--no-postgres".into(),
            ));
        } else {
            match fresh_database(&opts.postgres).await {
                Ok((url, drop_db)) => {
                    let r = throughput::run(&ctx, url, 1, "throughput-postgres-1").await;
                    full_postgres = r.as_ref().ok().map(|t| t.gateway_cpu_per_session);
                    report.push(throughput_row(
                        "PostgreSQL, 1 SmartCA instance",
                        r,
                        true,
                        mock_rate,
                        axum_rate,
                    ));
                    drop_db.await;
                }
                Err(e) => report.push(Row::skipped(
                    "throughput",
                    "PostgreSQL, 1 SmartCA instance",
                    format!("no PostgreSQL: {e}"),
                )),
            }
        }
    }

    if opts.wants("latency") {
        match latency::run(&ctx).await {
            Ok(l) => {
                let c = &l.callback_to_ws;
                report.push(
                    Row::info(
                        "latency",
                        format!("callback → WebSocket at {}/s", thousands(l.callback_rate)),
                        format!("p99 {}", ms(c.p99)),
                    )
                    .value(c.p99.as_secs_f64() * 1000.0)
                    .detail(format!(
                        "p50 {}, max {}, {} events",
                        ms(c.p50),
                        ms(c.max),
                        c.n
                    ))
                    .budget(
                        "p99 < 10 ms at 1,000/s",
                        c.p99 < Duration::from_millis(10) && l.callback_rate >= 950.0,
                    ),
                );
                let p = &l.create_to_prompt;
                report.push(
                    Row::info(
                        "latency",
                        format!("create → phone prompt at {}/s", thousands(l.create_rate)),
                        format!("p50 {}", ms(p.p50)),
                    )
                    .value(p.p50.as_secs_f64() * 1000.0)
                    .detail(format!(
                        "p99 {}, max {}, {} sampled",
                        ms(p.p99),
                        ms(p.max),
                        p.n
                    )),
                );
            }
            Err(e) => report.push(Row::failed("latency", "callback → WebSocket", &e)),
        }
    }

    if opts.wants("hostile") {
        match hostile::run(&ctx).await {
            Ok(h) => hostile::rows(&h)
                .into_iter()
                .for_each(|row| report.push(row)),
            Err(e) => report.push(Row::failed("hostile", "hostile certificate chains", &e)),
        }
    }

    if opts.wants("overload") {
        for n in opts.overload_sizes() {
            let url = format!(
                "sqlite://{}",
                dir.join(format!("overload-{n}.db")).display()
            );
            let r = overload::run(&ctx, url, "SQLite", n).await;
            report.extend(overload::rows(r, "SQLite", n, full_sqlite));
            if opts.no_postgres {
                report.push(Row::skipped(
                    "overload",
                    "PostgreSQL",
                    "--no-postgres".into(),
                ));
                continue;
            }
            match fresh_database(&opts.postgres).await {
                Ok((url, drop_db)) => {
                    let r = overload::run(&ctx, url, "PostgreSQL", n).await;
                    report.extend(overload::rows(r, "PostgreSQL", n, full_postgres));
                    drop_db.await;
                }
                Err(e) => report.push(Row::skipped(
                    "overload",
                    "PostgreSQL",
                    format!("no PostgreSQL: {e}"),
                )),
            }
        }
    }

    if opts.wants("held") {
        for n in opts.held_sizes() {
            match held::run(&ctx, n).await {
                Ok(h) => h
                    .rows(ctx.opts.provider_rate)
                    .into_iter()
                    .for_each(|r| report.push(r)),
                Err(e) => report.push(Row::failed(
                    "held",
                    format!("{} pending", thousands(n as f64)),
                    &e,
                )),
            }
        }
    }

    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print_table();
    }
    Ok(report)
}

fn throughput_row(
    name: &str,
    r: anyhow::Result<throughput::Throughput>,
    judged: bool,
    mock_rate: Option<f64>,
    axum_rate: Option<f64>,
) -> Row {
    let t = match r {
        Ok(t) => t,
        Err(e) => return Row::failed("throughput", name, &e),
    };
    let mut detail = format!(
        "CPU per session: gateway {:.0} µs, mock {:.0} µs, load {:.0} µs; peak RSS {}",
        t.gateway_cpu_per_session.as_secs_f64() * 1e6,
        t.mock_cpu_per_session.as_secs_f64() * 1e6,
        t.load_cpu_per_session.as_secs_f64() * 1e6,
        mib(t.peak_rss),
    );
    if !t.database_cpu_per_session.is_zero() {
        detail += &format!(
            "; PostgreSQL server {:.0} µs",
            t.database_cpu_per_session.as_secs_f64() * 1e6
        );
    }
    if let Some(s) = &t.create_to_signed {
        detail += &format!("; create→signed p50 {}", ms(s.p50));
    }
    if let Some(m) = mock_rate {
        detail += &format!("; {:.2}x mock alone", t.rate / m);
    }
    if let Some(a) = axum_rate {
        detail += &format!("; {:.3}x bare axum", t.rate / a);
    }
    if !t.all_signed {
        detail += "; NOT ALL SIGNED";
    }
    let row = Row::info(
        "throughput",
        name,
        format!("{} sessions/s", thousands(t.rate)),
    )
    .value(t.rate);
    if !judged {
        return row.detail(detail);
    }
    let fast = t.rate >= 1000.0;
    let Some(m) = mock_rate else {
        return row.detail(detail).budget("≥ 1,000/s", fast);
    };
    // Two budgets in one row: the detail says which one a miss is.
    let half = t.rate >= m / 2.0;
    let said = |ok: bool| if ok { "meets" } else { "misses" };
    row.detail(format!(
        "1,000/s {}, ½ mock {}; {detail}",
        said(fast),
        said(half)
    ))
    .budget(
        format!("≥ 1,000/s and ≥ ½ mock ({})", thousands(m / 2.0)),
        fast && half,
    )
}

/// Creates a fresh database on the server; the future drops it.
async fn fresh_database(
    admin: &str,
) -> anyhow::Result<(String, impl std::future::Future<Output = ()>)> {
    let mut conn = PgConnection::connect(admin).await?;
    let name = format!(
        "kyso_bench_{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    let url = database_url(admin, &name)?;
    let drop_db = async move {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let _ = conn.execute(sql.as_str()).await;
    };
    Ok((url, drop_db))
}

/// `admin` with its database replaced by `name`; the query (`?sslmode=…`) kept.
fn database_url(admin: &str, name: &str) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(admin)?;
    url.set_path(&format!("/{name}"));
    Ok(url.into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn the_fresh_database_url_keeps_the_servers_query() {
        let cases = [
            ("postgres://u@h:5432/postgres", "postgres://u@h:5432/kb"),
            (
                "postgres://u@h:5432/postgres?sslmode=disable",
                "postgres://u@h:5432/kb?sslmode=disable",
            ),
            ("postgres://u@h:5432", "postgres://u@h:5432/kb"),
            (
                "postgres://u@h:5432?sslmode=require",
                "postgres://u@h:5432/kb?sslmode=require",
            ),
            ("postgres:///postgres", "postgres:///kb"),
            (
                "postgres:///postgres?host=/run/pg",
                "postgres:///kb?host=/run/pg",
            ),
        ];
        for (admin, want) in cases {
            assert_eq!(database_url(admin, "kb").expect("url"), want, "{admin}");
        }
    }
}

//! The schema guard, run before any migration: a binary starts only on the schema it was built
//! for. A fresh database is set up at once; an existing one is migrated only when the operator
//! asks (`kyso migrate`, `kyso serve --migrate`, `database.migrate = true`); a database already
//! migrated past what the binary knows is refused. On PostgreSQL, a migration that needs every
//! instance stopped (CHANGELOG, "Upgrading") is refused while other instances hold leases.

use sqlx::migrate::Migrator;

/// What a start may do about migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Migrations {
    /// Set up a fresh database; refuse to start on an older schema (the default of `serve`).
    #[default]
    FreshOnly,
    /// Apply whatever this binary has that the database lacks.
    Apply,
}

/// What the guard found, for the caller to act on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The database has exactly this binary's migrations.
    Current,
    /// Migrations to apply (a fresh database, or the operator asked).
    Migrate,
}

/// The database's state as the guard reads it.
pub(crate) struct Found<'a> {
    /// Versions applied (successfully), ascending.
    pub applied: &'a [i64],
    /// Sessions leased by live instances now (PostgreSQL; 0 on SQLite).
    pub live_leases: i64,
}

/// Decides from what the binary knows (`known`: version and description, ascending), what
/// needs every instance stopped, what is applied and what the operator allowed.
pub(crate) fn decide(
    known: &[(i64, String)],
    needs_stop: &[i64],
    found: &Found<'_>,
    allowed: Migrations,
) -> Result<Plan, String> {
    if let Some(v) = (found.applied.iter()).find(|v| !known.iter().any(|(k, _)| k == *v)) {
        return Err(format!(
            "the database has migration {v}, which this kyso does not know: the schema is \
             newer than this binary; run the kyso release that migrated it (or a later one)"
        ));
    }
    let pending: Vec<&(i64, String)> = (known.iter())
        .filter(|(k, _)| !found.applied.contains(k))
        .collect();
    if pending.is_empty() {
        return Ok(Plan::Current);
    }
    if found.applied.is_empty() {
        return Ok(Plan::Migrate);
    }
    let names: Vec<String> = (pending.iter())
        .map(|(v, d)| format!("{v:04}_{}", d.replace(' ', "_")))
        .collect();
    if allowed == Migrations::FreshOnly {
        return Err(format!(
            "the database lacks this kyso's migrations {}: run `kyso migrate` (or start with \
             --migrate) after reading CHANGELOG.md, \"Upgrading\"",
            names.join(", ")
        ));
    }
    let stopping: Vec<&String> = (pending.iter().zip(&names))
        .filter(|((v, _), _)| needs_stop.contains(v))
        .map(|(_, n)| n)
        .collect();
    if !stopping.is_empty() && found.live_leases > 0 {
        return Err(format!(
            "migration {} needs every instance stopped, but {} sessions are leased by running \
             instances: stop them (or wait for their leases to lapse) and migrate again",
            stopping
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            found.live_leases
        ));
    }
    Ok(Plan::Migrate)
}

/// The guard's verdict on `migrator` for the database as `found`: an error names what to do.
pub(crate) fn check(
    migrator: &Migrator,
    needs_stop: &[i64],
    found: &Found<'_>,
    allowed: Migrations,
) -> Result<Plan, super::StoreError> {
    decide(&known(migrator), needs_stop, found, allowed).map_err(super::StoreError::Schema)
}

/// The versions applied, ascending, from sqlx's table (same SQL on both databases).
pub(crate) const APPLIED: &str =
    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";

/// The versions and descriptions of `migrator`'s migrations, ascending.
pub(crate) fn known(migrator: &Migrator) -> Vec<(i64, String)> {
    let mut all: Vec<(i64, String)> = (migrator.iter())
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    all.sort();
    all.dedup_by_key(|(v, _)| *v);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<(i64, String)> {
        vec![
            (1, "sessions".into()),
            (2, "frames".into()),
            (3, "bundles".into()),
        ]
    }

    fn found(applied: &[i64], live_leases: i64) -> Found<'_> {
        Found {
            applied,
            live_leases,
        }
    }

    #[test]
    fn a_fresh_database_is_set_up_and_a_current_one_is_left_alone() {
        let f = found(&[], 0);
        assert_eq!(
            decide(&known(), &[], &f, Migrations::FreshOnly),
            Ok(Plan::Migrate)
        );
        let f = found(&[1, 2, 3], 7);
        assert_eq!(
            decide(&known(), &[2], &f, Migrations::FreshOnly),
            Ok(Plan::Current)
        );
    }

    #[test]
    fn an_older_schema_is_migrated_only_when_asked() {
        let f = found(&[1], 0);
        let refused = decide(&known(), &[], &f, Migrations::FreshOnly).expect_err("refused");
        assert!(refused.contains("0002_frames, 0003_bundles"), "{refused}");
        assert!(refused.contains("kyso migrate"), "{refused}");
        assert_eq!(
            decide(&known(), &[], &f, Migrations::Apply),
            Ok(Plan::Migrate)
        );
    }

    #[test]
    fn a_newer_schema_is_refused_whatever_was_asked() {
        let f = found(&[1, 2, 3, 4], 0);
        for allowed in [Migrations::FreshOnly, Migrations::Apply] {
            let refused = decide(&known(), &[], &f, allowed).expect_err("refused");
            assert!(refused.contains("migration 4"), "{refused}");
        }
    }

    #[test]
    fn a_migration_that_needs_a_stop_waits_for_leases_to_lapse() {
        let leased = found(&[1], 3);
        let refused = decide(&known(), &[3], &leased, Migrations::Apply).expect_err("refused");
        assert!(
            refused.contains("0003_bundles") && refused.contains("3 sessions"),
            "{refused}"
        );
        // The same with no live lease, or with only online migrations pending.
        let idle = found(&[1], 0);
        assert_eq!(
            decide(&known(), &[3], &idle, Migrations::Apply),
            Ok(Plan::Migrate)
        );
        let online = found(&[1, 2], 3);
        assert_eq!(
            decide(&known(), &[2], &online, Migrations::Apply),
            Ok(Plan::Migrate)
        );
    }
}

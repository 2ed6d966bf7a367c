//! The database: one `sqlx::AnyPool` over SQLite (embedded default) or PostgreSQL.
//!
//! All SQL is written once, in the common dialect of both: `$n` parameters numbered in order
//! of appearance, `BIGINT` milliseconds for times, `ON CONFLICT … DO NOTHING` for
//! exactly-once inserts. The migrations differ only in the names of the binary and float
//! column types, which are filled in per backend.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

/// Migrations in order; each runs once, in a transaction, and is recorded. The first text
/// is common to both backends (statements split at `;`); the other two are for SQLite and
/// PostgreSQL alone (triggers and functions, whose bodies hold `;`), statements split at a
/// line of `---`.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (1, include_str!("../migrations/0001_core.sql"), "", ""),
    (2, include_str!("../migrations/0002_possession.sql"), "", ""),
    (
        3,
        include_str!("../migrations/0003_replication.sql"),
        "",
        "",
    ),
    (
        4,
        include_str!("../migrations/0004_restore_drills.sql"),
        "",
        "",
    ),
    (
        5,
        include_str!("../migrations/0005_audit.sql"),
        include_str!("../migrations/0005_audit.sqlite.sql"),
        include_str!("../migrations/0005_audit.postgres.sql"),
    ),
    (6, include_str!("../migrations/0006_onboarding.sql"), "", ""),
    (
        7,
        include_str!("../migrations/0007_enterprises.sql"),
        "",
        "",
    ),
    (8, include_str!("../migrations/0008_roles.sql"), "", ""),
    (
        9,
        include_str!("../migrations/0009_face_checks.sql"),
        "",
        "",
    ),
    (10, include_str!("../migrations/0010_devices.sql"), "", ""),
    (
        11,
        include_str!("../migrations/0011_archives.sql"),
        include_str!("../migrations/0011_archives.sqlite.sql"),
        include_str!("../migrations/0011_archives.postgres.sql"),
    ),
    (
        12,
        include_str!("../migrations/0012_task_lifecycle.sql"),
        "",
        "",
    ),
    (
        13,
        include_str!("../migrations/0013_ledger.sql"),
        include_str!("../migrations/0013_ledger.sqlite.sql"),
        include_str!("../migrations/0013_ledger.postgres.sql"),
    ),
    (
        14,
        include_str!("../migrations/0014_checks.sql"),
        include_str!("../migrations/0014_checks.sqlite.sql"),
        include_str!("../migrations/0014_checks.postgres.sql"),
    ),
    (
        15,
        include_str!("../migrations/0015_statements.sql"),
        include_str!("../migrations/0015_statements.sqlite.sql"),
        include_str!("../migrations/0015_statements.postgres.sql"),
    ),
    (16, include_str!("../migrations/0016_payouts.sql"), "", ""),
    (
        17,
        include_str!("../migrations/0017_invoices.sql"),
        include_str!("../migrations/0017_invoices.sqlite.sql"),
        include_str!("../migrations/0017_invoices.postgres.sql"),
    ),
    (18, include_str!("../migrations/0018_console.sql"), "", ""),
];

/// Which database the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The connection pool and what it is connected to.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

impl Db {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = pool_options(backend).connect_with(options).await?;
        let db = Self { pool, backend };

        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let create = "CREATE TABLE IF NOT EXISTS schema_migrations \
                      (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";
        self.pool.execute(create).await?;

        for (version, sql, sqlite, postgres) in MIGRATIONS {
            let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&self.pool)
                .await?;
            if done.is_none() {
                let own = match self.backend {
                    Backend::Sqlite => sqlite,
                    Backend::Postgres => postgres,
                };
                self.apply(*version, sql, own).await?;
            }
        }
        Ok(())
    }

    async fn apply(&self, version: i64, sql: &str, own: &str) -> Result<(), sqlx::Error> {
        let (blob, real) = match self.backend {
            Backend::Sqlite => ("BLOB", "REAL"),
            Backend::Postgres => ("BYTEA", "DOUBLE PRECISION"),
        };
        let sql = sql.replace("{BLOB}", blob).replace("{REAL}", real);
        let mut tx = self.pool.begin().await?;
        for statement in sql.split(';').map(strip_comments).filter(|s| !s.is_empty()) {
            tx.execute(sqlx::AssertSqlSafe(statement)).await?;
        }
        for statement in own
            .split("\n---\n")
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            tx.execute(sqlx::AssertSqlSafe(statement.to_owned()))
                .await?;
        }

        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(crate::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied database migration");
        Ok(())
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails
    /// immediately with "database is locked" when another writer got there first.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// The latest applied migration.
    pub async fn schema_version(&self) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT MAX(version) AS v FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        row.try_get::<Option<i64>, _>("v").map(|v| v.unwrap_or(0))
    }
}

fn pool_options(backend: Backend) -> AnyPoolOptions {
    let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
    match backend {
        Backend::Postgres => options.max_connections(16),
        // One file, one writer at a time: a few connections that wait for each other.
        Backend::Sqlite => options.max_connections(4).after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        }),
    }
}

fn strip_comments(statement: &str) -> String {
    let lines = statement
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"));
    lines.collect::<Vec<_>>().join("\n").trim().to_owned()
}

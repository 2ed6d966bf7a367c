//! The double-entry ledger: every movement of money, in integer fen.
//!
//! An [`Entry`] is one business event — a deposit into an enterprise's escrow, a settlement,
//! a payout sent, confirmed or failed — written as two or more postings whose amounts sum to
//! zero (debits positive, credits negative). [`post`] writes it inside the caller's
//! transaction, so the business rows and their money move together or not at all.
//!
//! What the ledger guarantees, and where:
//! - **Balanced**: [`post`] refuses an entry whose postings do not sum to zero before
//!   touching the database; [`check`] re-verifies every event from the stored postings.
//! - **At most once**: each entry carries an idempotency key, unique in the database. Posting
//!   the same key again with the same postings is a no-op that answers
//!   [`Posted::Already`]; the same key with different postings is refused
//!   ([`LedgerError::KeyReused`]), because it means two different events were given one name.
//! - **No account that must not go negative does**: every account keeps a running balance
//!   on its normal side next to a `CHECK` constraint, updated in the same transaction as the
//!   postings; a posting that would overdraw an escrow account fails with
//!   [`LedgerError::Insufficient`] and the transaction is rolled back by the caller.
//!   Balances are updated in account order, so two concurrent postings on PostgreSQL wait
//!   for each other instead of deadlocking.
//! - **Derived balances**: the running balance is a cache of the sum of the postings, and
//!   [`check`] compares the two for every account.
//! - **Immutable**: triggers refuse any update or delete of events and postings.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use crate::error::ApiError;
use crate::{new_id, now_ms};

/// An account of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    /// The escrow bank account the platform holds at its bank for enterprises' funds (an
    /// asset; debit-normal; never negative).
    Bank,
    /// What the platform holds for one enterprise (a liability to it; credit-normal; never
    /// negative: no settlement is paid from money the enterprise has not deposited).
    Escrow(String),
    /// Pay owed to one worker, settled and not yet paid out (credit-normal; never negative).
    WorkerPayable(String),
    /// Payouts handed to the payment provider and not yet confirmed (credit-normal).
    PayoutsInFlight,
    /// Individual income tax withheld and not yet remitted (credit-normal).
    TaxPayable,
    /// The platform's service fees earned (revenue; credit-normal).
    PlatformFees,
}

impl Account {
    /// The account's name as stored, e.g. `escrow:<enterprise id>`.
    pub fn name(&self) -> String {
        match self {
            Account::Bank => "bank".into(),
            Account::Escrow(id) => format!("escrow:{id}"),
            Account::WorkerPayable(id) => format!("worker_payable:{id}"),
            Account::PayoutsInFlight => "payouts_in_flight".into(),
            Account::TaxPayable => "tax_payable".into(),
            Account::PlatformFees => "platform_fees".into(),
        }
    }

    /// Whether the account's balance grows with debits (assets) or credits (liabilities,
    /// revenue).
    pub fn normal_side(&self) -> Side {
        match self {
            Account::Bank => Side::Debit,
            _ => Side::Credit,
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The side of a posting or of an account's normal balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }

    /// The sign a posting on this side carries in `ledger_postings.amount_fen`.
    fn sign(self) -> i64 {
        match self {
            Side::Debit => 1,
            Side::Credit => -1,
        }
    }
}

/// One business event, as postings.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What happened: `deposit`, `settlement`, `payout_sent`, …
    pub kind: &'static str,
    /// Unique name of the event: posting it twice is a no-op.
    pub key: String,
    /// The business object it belongs to (a deposit, an order, a payout).
    pub object_id: String,
    lines: Vec<(Account, i64)>,
}

impl Entry {
    /// An empty entry; add lines with [`Entry::debit`] and [`Entry::credit`].
    pub fn new(kind: &'static str, key: impl Into<String>, object_id: impl Into<String>) -> Self {
        Self {
            kind,
            key: key.into(),
            object_id: object_id.into(),
            lines: Vec::new(),
        }
    }

    /// Debits `account` with `fen`; a zero amount adds no line.
    pub fn debit(mut self, account: Account, fen: i64) -> Self {
        if fen != 0 {
            self.lines.push((account, fen));
        }
        self
    }

    /// Credits `account` with `fen`; a zero amount adds no line.
    pub fn credit(mut self, account: Account, fen: i64) -> Self {
        if fen != 0 {
            self.lines.push((account, -fen));
        }
        self
    }

    /// The postings, debits positive.
    pub fn lines(&self) -> &[(Account, i64)] {
        &self.lines
    }

    fn digest(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(self.kind.as_bytes());
        hash.update([0]);
        hash.update(self.object_id.as_bytes());
        for (account, fen) in &self.lines {
            hash.update([0]);
            hash.update(account.name().as_bytes());
            hash.update(fen.to_be_bytes());
        }
        hex::encode(hash.finalize())
    }
}

/// What [`post`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// The entry was written; its event id.
    New(String),
    /// An identical entry with this key was already written; its event id.
    Already(String),
}

impl Posted {
    /// The event's id, new or not.
    pub fn event_id(&self) -> &str {
        match self {
            Posted::New(id) | Posted::Already(id) => id,
        }
    }
}

/// Why an entry was not posted. After any of these the caller's transaction must be rolled
/// back (dropping it does).
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the postings of {key} sum to {sum} fen, not zero")]
    Unbalanced { key: String, sum: i64 },
    #[error("an entry needs at least two postings ({key})")]
    Empty { key: String },
    #[error("{account} would go below zero")]
    Insufficient { account: String },
    #[error("idempotency key {key} was already used for different postings")]
    KeyReused { key: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Insufficient { account } if account.starts_with("escrow:") => {
                ApiError::conflict(
                    "insufficient_escrow",
                    "the enterprise's escrow balance does not cover this amount; it must \
                     deposit funds first",
                )
            }
            LedgerError::Insufficient { account } => ApiError::conflict(
                "insufficient_balance",
                format!("the ledger account {account} does not cover this amount"),
            ),
            LedgerError::KeyReused { .. } => ApiError::conflict(
                "idempotency_key_reused",
                "this idempotency key was already used for a different request",
            ),
            LedgerError::Database(e) => ApiError::from(e),
            other => ApiError::internal(other),
        }
    }
}

/// Writes `entry` in `tx`, exactly once per key. See the module documentation.
pub async fn post(
    tx: &mut Transaction<'static, Any>,
    entry: &Entry,
) -> Result<Posted, LedgerError> {
    let mut posted = post_many(tx, std::slice::from_ref(entry)).await?;
    Ok(posted.remove(0))
}

/// Rows per multi-row `INSERT`: well under SQLite's limit of bound parameters.
const ROWS_PER_INSERT: usize = 500;

/// Writes many entries in `tx` at once, each exactly once per key, with multi-row inserts
/// and one balance update per account: what a settlement run over thousands of orders uses.
/// The guarantees are those of [`post`], entry by entry; if any entry is refused, nothing of
/// the batch may be committed. Answers what happened to each entry, in order.
pub async fn post_many(
    tx: &mut Transaction<'static, Any>,
    entries: &[Entry],
) -> Result<Vec<Posted>, LedgerError> {
    for entry in entries {
        if entry.lines.len() < 2 {
            return Err(LedgerError::Empty {
                key: entry.key.clone(),
            });
        }
        let sum: i64 = entry.lines.iter().map(|(_, fen)| fen).sum();
        if sum != 0 {
            return Err(LedgerError::Unbalanced {
                key: entry.key.clone(),
                sum,
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = entries.iter().find(|e| !seen.insert(e.key.as_str())) {
        return Err(LedgerError::KeyReused {
            key: twice.key.clone(),
        });
    }

    // Events first: a key already in the ledger inserts nothing and is answered below.
    let now = now_ms();
    let planned: Vec<(String, String)> = entries.iter().map(|e| (new_id(), e.digest())).collect();
    let mut inserted = std::collections::HashSet::new();
    for (chunk, ids) in entries
        .chunks(ROWS_PER_INSERT)
        .zip(planned.chunks(ROWS_PER_INSERT))
    {
        let values = placeholders(chunk.len(), 6);
        let sql = format!(
            "INSERT INTO ledger_events (id, kind, idempotency_key, object_id, digest, \
               created_at) VALUES {values} ON CONFLICT (idempotency_key) DO NOTHING \
             RETURNING idempotency_key"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (entry, (id, digest)) in chunk.iter().zip(ids) {
            query = query
                .bind(id)
                .bind(entry.kind)
                .bind(&entry.key)
                .bind(&entry.object_id)
                .bind(digest)
                .bind(now);
        }
        for row in query.fetch_all(&mut **tx).await? {
            inserted.insert(row.try_get::<String, _>("idempotency_key")?);
        }
    }

    let mut answers = Vec::with_capacity(entries.len());
    let mut fresh = Vec::new();
    for (entry, (id, digest)) in entries.iter().zip(&planned) {
        if inserted.contains(&entry.key) {
            answers.push(Posted::New(id.clone()));
            fresh.push((entry, id));
            continue;
        }
        let row = sqlx::query("SELECT id, digest FROM ledger_events WHERE idempotency_key = $1")
            .bind(&entry.key)
            .fetch_one(&mut **tx)
            .await?;
        if row.try_get::<String, _>("digest")? != *digest {
            return Err(LedgerError::KeyReused {
                key: entry.key.clone(),
            });
        }
        answers.push(Posted::Already(row.try_get("id")?));
    }

    // Net change per account on its normal side, applied in account order.
    let mut changes: BTreeMap<String, (Side, i64)> = BTreeMap::new();
    let mut lines = Vec::new();
    for (entry, id) in &fresh {
        for (line, (account, fen)) in entry.lines.iter().enumerate() {
            let side = account.normal_side();
            let name = account.name();
            changes.entry(name.clone()).or_insert((side, 0)).1 += fen * side.sign();
            lines.push((id.as_str(), line as i64, name, *fen));
        }
    }
    let accounts: Vec<_> = changes.iter().collect();
    for chunk in accounts.chunks(ROWS_PER_INSERT) {
        let values = placeholders(chunk.len(), 3);
        let sql = format!(
            "INSERT INTO ledger_accounts (account, normal_side, created_at) VALUES {values} \
             ON CONFLICT (account) DO NOTHING"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (name, (side, _)) in chunk {
            query = query.bind(name.as_str()).bind(side.as_str()).bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    for chunk in lines.chunks(ROWS_PER_INSERT) {
        let values = placeholders(chunk.len(), 4);
        let sql = format!(
            "INSERT INTO ledger_postings (event_id, line, account, amount_fen) VALUES {values}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, line, name, fen) in chunk {
            query = query.bind(*id).bind(*line).bind(name.as_str()).bind(*fen);
        }
        query.execute(&mut **tx).await?;
    }
    // Read, and on PostgreSQL lock, every touched account in account order (so concurrent
    // batches wait for each other rather than deadlock); refuse before writing if one that
    // must not go negative would; then apply every change in one statement per chunk. The
    // CHECK constraint stays the database's own guard.
    let changed: Vec<(&String, i64)> = changes
        .iter()
        .filter(|(_, (_, change))| *change != 0)
        .map(|(name, (_, change))| (name, *change))
        .collect();
    let lock = if tx.backend_name() == "PostgreSQL" {
        " FOR UPDATE"
    } else {
        ""
    };
    for chunk in changed.chunks(ROWS_PER_INSERT) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT account, balance_fen, may_go_negative FROM ledger_accounts \
             WHERE account IN ({}) ORDER BY account{lock}",
            list.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (name, _) in chunk {
            query = query.bind(name.as_str());
        }
        let rows = query.fetch_all(&mut **tx).await?;
        let mut balances = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get("account")?;
            let balance: i64 = row.try_get("balance_fen")?;
            let free = row.try_get::<i64, _>("may_go_negative")? == 1;
            balances.insert(name, (balance, free));
        }
        for (name, change) in chunk {
            let (balance, free) = balances.get(name.as_str()).copied().unwrap_or((0, false));
            if !free && balance + change < 0 {
                return Err(LedgerError::Insufficient {
                    account: (*name).clone(),
                });
            }
        }

        let values = placeholders(chunk.len(), 2);
        let sql = format!(
            "UPDATE ledger_accounts SET balance_fen = balance_fen + CAST(v.column2 AS BIGINT) \
             FROM (VALUES {values}) AS v WHERE ledger_accounts.account = v.column1"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (name, change) in chunk {
            query = query.bind(name.as_str()).bind(*change);
        }
        match query.execute(&mut **tx).await {
            Ok(_) => {}
            Err(e) if is_check_violation(&e) => {
                let account = chunk.first().map(|(n, _)| (*n).clone()).unwrap_or_default();
                return Err(LedgerError::Insufficient { account });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(answers)
}

/// `($1, $2, $3), ($4, $5, $6), …` for `rows` rows of `columns` parameters.
fn placeholders(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for column in 0..columns {
            if column > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", row * columns + column + 1));
        }
        out.push(')');
    }
    out
}

/// Creates `account` if needed and locks its row until the end of `tx`, so that work which
/// reads history and then posts to the account (a worker's cumulative tax) runs one at a
/// time per account. On PostgreSQL the no-op update takes the row lock; on SQLite the write
/// transaction ([`crate::db::Db::begin_write`]) already excludes every other writer.
pub async fn lock_account(
    tx: &mut Transaction<'static, Any>,
    account: &Account,
) -> Result<(), LedgerError> {
    ensure_account(tx, &account.name(), account.normal_side()).await?;
    sqlx::query("UPDATE ledger_accounts SET balance_fen = balance_fen WHERE account = $1")
        .bind(account.name())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Creates the account on first use, on its normal side.
async fn ensure_account(
    tx: &mut Transaction<'static, Any>,
    name: &str,
    side: Side,
) -> Result<(), LedgerError> {
    sqlx::query(
        "INSERT INTO ledger_accounts (account, normal_side, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (account) DO NOTHING",
    )
    .bind(name)
    .bind(side.as_str())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn is_check_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("23514")
                || db.message().contains("CHECK constraint failed")
        }
        _ => false,
    }
}

/// The balance of `account` on its normal side, as the running balance says.
pub async fn balance(pool: &sqlx::AnyPool, account: &Account) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT balance_fen FROM ledger_accounts WHERE account = $1")
        .bind(account.name())
        .fetch_optional(pool)
        .await?;
    row.map_or(Ok(0), |r| r.try_get("balance_fen"))
}

/// What [`check`] found. A healthy ledger has every list empty.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CheckReport {
    /// Events checked.
    pub events: i64,
    /// Postings checked.
    pub postings: i64,
    /// Sum of all debits, in fen (equal to the sum of all credits when balanced).
    pub debits_fen: i64,
    /// Sum of all credits, in fen, as a positive number.
    pub credits_fen: i64,
    /// Events whose postings do not sum to zero.
    pub unbalanced_events: Vec<String>,
    /// Accounts whose running balance differs from the sum of their postings.
    pub mismatched_accounts: Vec<String>,
    /// Accounts that must not go negative and are.
    pub negative_accounts: Vec<String>,
}

impl CheckReport {
    /// Whether the ledger is consistent.
    pub fn is_healthy(&self) -> bool {
        self.debits_fen == self.credits_fen
            && self.unbalanced_events.is_empty()
            && self.mismatched_accounts.is_empty()
            && self.negative_accounts.is_empty()
    }
}

/// Re-derives everything from the postings and compares it with what is stored.
pub async fn check(pool: &sqlx::AnyPool) -> Result<CheckReport, sqlx::Error> {
    let mut report = CheckReport::default();
    // PostgreSQL sums BIGINT as NUMERIC, which the Any driver cannot read: cast back.
    let totals = sqlx::query(
        // SUM of BIGINT is NUMERIC on PostgreSQL, which the Any driver cannot decode.
        "SELECT COUNT(*) AS n, \
           CAST(COALESCE(SUM(CASE WHEN amount_fen > 0 THEN amount_fen ELSE 0 END), 0) \
             AS BIGINT) AS debits, \
           CAST(COALESCE(SUM(CASE WHEN amount_fen < 0 THEN -amount_fen ELSE 0 END), 0) \
             AS BIGINT) AS credits \
         FROM ledger_postings",
    )
    .fetch_one(pool)
    .await?;
    report.postings = totals.try_get("n")?;
    report.debits_fen = totals.try_get("debits")?;
    report.credits_fen = totals.try_get("credits")?;
    report.events = sqlx::query("SELECT COUNT(*) AS n FROM ledger_events")
        .fetch_one(pool)
        .await?
        .try_get("n")?;

    let unbalanced = sqlx::query(
        "SELECT e.id FROM ledger_events e LEFT JOIN ledger_postings p ON p.event_id = e.id \
         GROUP BY e.id HAVING COALESCE(SUM(p.amount_fen), 0) <> 0 OR COUNT(p.line) < 2 \
         ORDER BY e.id",
    )
    .fetch_all(pool)
    .await?;
    for row in unbalanced {
        report.unbalanced_events.push(row.try_get("id")?);
    }

    let accounts = sqlx::query(
        "SELECT a.account, a.normal_side, a.may_go_negative, a.balance_fen, \
           CAST(COALESCE(SUM(p.amount_fen), 0) AS BIGINT) AS posted \
         FROM ledger_accounts a LEFT JOIN ledger_postings p ON p.account = a.account \
         GROUP BY a.account, a.normal_side, a.may_go_negative, a.balance_fen \
         ORDER BY a.account",
    )
    .fetch_all(pool)
    .await?;
    for row in accounts {
        let name: String = row.try_get("account")?;
        let side: String = row.try_get("normal_side")?;
        let stored: i64 = row.try_get("balance_fen")?;
        let posted: i64 = row.try_get("posted")?;
        let derived = if side == "debit" { posted } else { -posted };
        if derived != stored {
            report.mismatched_accounts.push(name.clone());
        }
        if row.try_get::<i64, _>("may_go_negative")? == 0 && derived < 0 {
            report.negative_accounts.push(name);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (tempfile::TempDir, crate::db::Db) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("l.sqlite").display()
        );
        let db = crate::db::Db::connect(&url).await.expect("database");
        (dir, db)
    }

    fn deposit(key: &str, org: &str, fen: i64) -> Entry {
        Entry::new("deposit", key, key)
            .debit(Account::Bank, fen)
            .credit(Account::Escrow(org.into()), fen)
    }

    fn settle(key: &str, org: &str, worker: &str, gross: i64, tax: i64) -> Entry {
        Entry::new("settlement", key, key)
            .debit(Account::Escrow(org.into()), gross)
            .credit(Account::WorkerPayable(worker.into()), gross - tax)
            .credit(Account::TaxPayable, tax)
    }

    #[tokio::test]
    async fn a_deposit_and_a_settlement_move_balances_and_stay_balanced() {
        let (_dir, db) = db().await;
        let mut tx = db.begin_write().await.unwrap();
        post(&mut tx, &deposit("d1", "acme", 100_000))
            .await
            .unwrap();
        post(&mut tx, &settle("s1", "acme", "wang", 30_000, 4_400))
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let escrow = balance(&db.pool, &Account::Escrow("acme".into()))
            .await
            .unwrap();
        let payable = balance(&db.pool, &Account::WorkerPayable("wang".into()))
            .await
            .unwrap();
        assert_eq!(escrow, 70_000);
        assert_eq!(payable, 25_600);
        assert_eq!(
            balance(&db.pool, &Account::TaxPayable).await.unwrap(),
            4_400
        );
        assert_eq!(balance(&db.pool, &Account::Bank).await.unwrap(), 100_000);

        let report = check(&db.pool).await.unwrap();
        assert!(report.is_healthy(), "{report:?}");
        assert_eq!((report.events, report.postings), (2, 5));
        assert_eq!(report.debits_fen, 130_000);
    }

    #[tokio::test]
    async fn the_same_key_posts_once_and_a_reused_key_is_refused() {
        let (_dir, db) = db().await;
        let mut tx = db.begin_write().await.unwrap();
        let first = post(&mut tx, &deposit("d1", "acme", 500)).await.unwrap();
        let again = post(&mut tx, &deposit("d1", "acme", 500)).await.unwrap();
        assert!(matches!(first, Posted::New(_)));
        assert_eq!(again, Posted::Already(first.event_id().to_owned()));
        let reused = post(&mut tx, &deposit("d1", "acme", 600)).await;
        assert!(
            matches!(reused, Err(LedgerError::KeyReused { .. })),
            "{reused:?}"
        );
        tx.commit().await.unwrap();

        let escrow = balance(&db.pool, &Account::Escrow("acme".into()))
            .await
            .unwrap();
        assert_eq!(escrow, 500);
    }

    #[tokio::test]
    async fn escrow_never_goes_negative_and_a_refused_entry_leaves_nothing() {
        let (_dir, db) = db().await;
        let mut tx = db.begin_write().await.unwrap();
        post(&mut tx, &deposit("d1", "acme", 1_000)).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = db.begin_write().await.unwrap();
        let overdraw = post(&mut tx, &settle("s1", "acme", "wang", 1_001, 0)).await;
        match overdraw {
            Err(LedgerError::Insufficient { account }) => assert_eq!(account, "escrow:acme"),
            other => panic!("expected insufficient escrow, got {other:?}"),
        }
        drop(tx);

        let escrow = balance(&db.pool, &Account::Escrow("acme".into()))
            .await
            .unwrap();
        assert_eq!(escrow, 1_000);
        let report = check(&db.pool).await.unwrap();
        assert!(report.is_healthy(), "{report:?}");
        assert_eq!(report.events, 1);
    }

    #[tokio::test]
    async fn unbalanced_or_one_sided_entries_are_refused_before_writing() {
        let (_dir, db) = db().await;
        let mut tx = db.begin_write().await.unwrap();
        let lopsided = Entry::new("deposit", "d1", "d1")
            .debit(Account::Bank, 100)
            .credit(Account::Escrow("acme".into()), 99);
        assert!(matches!(
            post(&mut tx, &lopsided).await,
            Err(LedgerError::Unbalanced { sum: 1, .. })
        ));
        let alone = Entry::new("deposit", "d2", "d2").debit(Account::Bank, 100);
        assert!(matches!(
            post(&mut tx, &alone).await,
            Err(LedgerError::Empty { .. })
        ));
        tx.commit().await.unwrap();
        assert_eq!(check(&db.pool).await.unwrap().events, 0);
    }

    #[tokio::test]
    async fn a_batch_posts_each_entry_once_and_is_refused_whole_if_one_overdraws() {
        let (_dir, db) = db().await;
        let mut tx = db.begin_write().await.unwrap();
        post(&mut tx, &deposit("d1", "acme", 1_000_000))
            .await
            .unwrap();
        let batch: Vec<Entry> = (0..1_200)
            .map(|n| settle(&format!("s{n}"), "acme", &format!("w{}", n % 7), 500, 20))
            .collect();
        let posted = post_many(&mut tx, &batch).await.unwrap();
        assert!(posted.iter().all(|p| matches!(p, Posted::New(_))));
        // The same batch again, with one new entry: only that one is written.
        let mut again = batch.clone();
        again.push(settle("s-extra", "acme", "w0", 500, 20));
        let posted = post_many(&mut tx, &again).await.unwrap();
        let new = posted
            .iter()
            .filter(|p| matches!(p, Posted::New(_)))
            .count();
        assert_eq!(new, 1);
        tx.commit().await.unwrap();

        let escrow = Account::Escrow("acme".into());
        assert_eq!(
            balance(&db.pool, &escrow).await.unwrap(),
            1_000_000 - 1_201 * 500
        );
        let w0 = balance(&db.pool, &Account::WorkerPayable("w0".into()))
            .await
            .unwrap();
        assert_eq!(w0, (1_200 / 7 + 1 + 1) * 480);

        let mut tx = db.begin_write().await.unwrap();
        let overdraw: Vec<Entry> = (0..2_000)
            .map(|n| settle(&format!("t{n}"), "acme", "w1", 500, 0))
            .collect();
        let refused = post_many(&mut tx, &overdraw).await;
        assert!(
            matches!(refused, Err(LedgerError::Insufficient { .. })),
            "{refused:?}"
        );
        drop(tx);
        let report = check(&db.pool).await.unwrap();
        assert!(report.is_healthy(), "{report:?}");
        assert_eq!(report.events, 1 + 1_201);
    }

    #[tokio::test]
    async fn postings_cannot_be_changed_or_deleted() {
        let (_dir, db) = db().await;
        let mut tx = db.begin_write().await.unwrap();
        post(&mut tx, &deposit("d1", "acme", 1_000)).await.unwrap();
        tx.commit().await.unwrap();

        let update = sqlx::query("UPDATE ledger_postings SET amount_fen = 5")
            .execute(&db.pool)
            .await;
        let delete = sqlx::query("DELETE FROM ledger_events")
            .execute(&db.pool)
            .await;
        assert!(update.is_err() && delete.is_err());
        assert!(check(&db.pool).await.unwrap().is_healthy());
    }
}

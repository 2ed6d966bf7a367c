//! Invoices to enterprises for work that was settled and paid (5.4.5–5.4.8 of the standard).
//!
//! An invoice bills one enterprise for its paid settlements: each line bills one settlement,
//! at most its gross amount (what the enterprise's escrow paid for the work: the worker's
//! net pay plus the tax withheld for them). The database enforces the invariant, not this
//! code: a trigger refuses any line billing a settlement that is not `paid`, that belongs to
//! another enterprise, or that would bring what was billed for it, over every invoice that
//! did not fail, above its gross (`server/migrations/0017_invoices.*.sql`).
//!
//! Invoices are fully digital e-invoices issued by the tax authority's service through an
//! [`InvoicingProvider`]: it assigns the 20-digit number. Only the sandbox provider exists
//! here ([`SandboxInvoicingProvider`]); a licensed service plugs in through the trait.
//!
//! Corrections are red-letter invoices: a red invoice reverses one issued invoice in full
//! (lines of opposite sign), after which the settlements can be billed again. Nothing is
//! voided or deleted; invoice data is kept forever, and each issued invoice carries the
//! dates until which its paper copy (10 years) and stub (5 years) must be kept.
//!
//! Lifecycle: `requested` (lines written, the provider not yet answered) → `issued` (number
//! assigned) or `failed` (the provider refused; its lines no longer count); a call that
//! timed out leaves `unknown`, and [`resolve_unknown`] later asks the provider by the same
//! request key, so a timed-out invoice is never issued twice.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::audit::{self, Event, Outcome};
use crate::auth::{Caller, Permission, WorkScope};
use crate::error::{ApiError, ApiResult};
use crate::realname::BoxFuture;
use crate::{AppState, new_id, now_ms};

const YEAR_MS: i64 = 365 * 24 * 3_600 * 1_000 + 6 * 3_600 * 1_000;
/// Paper invoices are kept 10 years (5.4.7).
pub const PAPER_RETENTION_YEARS: i64 = 10;
/// Invoice stubs are kept 5 years (5.4.7).
pub const STUB_RETENTION_YEARS: i64 = 5;

/// What the provider is asked to issue.
#[derive(Debug, Clone, Serialize)]
pub struct InvoiceRequest {
    /// Unique per invoice: asking again with the same key returns the same invoice.
    pub request_key: String,
    /// The buyer: the enterprise billed.
    pub enterprise_id: String,
    /// Total in fen; negative for a red-letter invoice.
    pub total_fen: i64,
    /// For a red-letter invoice, the number of the invoice it reverses.
    pub reverses_number: Option<String>,
}

/// An invoice the provider issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The 20-digit number of a fully digital e-invoice.
    pub number: String,
    pub issued_at_ms: i64,
}

/// Why the provider did not issue.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvoicingError {
    /// It refused; the invoice will not be issued under this key.
    #[error("the invoicing service refused: {0}")]
    Refused(String),
    /// No answer in time: it may or may not have issued; ask again by key.
    #[error("the invoicing service did not answer in time")]
    Timeout,
}

/// A service that issues fully digital e-invoices. Dyn-compatible (boxed futures), so the
/// platform holds the one configuration chose.
pub trait InvoicingProvider: Send + Sync + fmt::Debug {
    /// Issues the invoice; idempotent by `request.request_key`.
    fn issue<'a>(
        &'a self,
        request: &'a InvoiceRequest,
    ) -> BoxFuture<'a, Result<Issued, InvoicingError>>;
    /// What became of a request: `Ok(None)` if the service never received it.
    fn status<'a>(
        &'a self,
        request_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Issued>, InvoicingError>>;
}

/// How the sandbox invoicing service behaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// Inclusive range of the answer latency, in milliseconds.
    pub latency_ms: (u64, u64),
    /// Fraction of requests (0 to 1) refused.
    pub refuse_rate: f64,
    /// Fraction of requests (0 to 1) that time out; half of those were issued all the same.
    pub timeout_rate: f64,
    /// Seed of the random generator of its behaviour; `None` seeds from the operating
    /// system. Invoice numbers are always drawn from the operating system's generator.
    pub seed: Option<u64>,
    /// A JSON file where the sandbox keeps what it answered per request key, so that after a
    /// restart it still knows them, as the real service does. The server uses
    /// `invoicing-sandbox.json` in its data folder when none is set.
    pub state_file: Option<std::path::PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            latency_ms: (50, 200),
            refuse_rate: 0.0,
            timeout_rate: 0.0,
            seed: None,
            state_file: None,
        }
    }
}

/// Invoicing settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InvoicingConfig {
    /// How the sandbox invoicing service behaves (the only provider wired).
    pub sandbox: SandboxConfig,
}

/// A stand-in for the tax authority's e-invoicing service, for development and tests. It
/// issues numbers of its own (`yy` + `99` + 16 random digits: region code 99 is no real
/// region, and random digits cannot repeat a number another process or an earlier run of
/// this one issued), answers after a random latency, refuses and times out at configured
/// rates, and is idempotent by request key as the real service is, also across restarts
/// when it keeps a state file. It issues nothing real.
#[derive(Debug)]
pub struct SandboxInvoicingProvider {
    config: SandboxConfig,
    state: Mutex<SandboxState>,
}

#[derive(Debug)]
struct SandboxState {
    rng: StdRng,
    issued: HashMap<String, Result<Issued, InvoicingError>>,
}

/// What the state file holds per request key: the number and time issued, or the refusal.
#[derive(Debug, Serialize, Deserialize)]
struct Recorded {
    number: Option<String>,
    issued_at_ms: i64,
    refusal: Option<String>,
}

impl SandboxInvoicingProvider {
    pub fn new(config: SandboxConfig) -> Result<Self, String> {
        let rates = [config.refuse_rate, config.timeout_rate];
        if rates.iter().any(|r| !(0.0..=1.0).contains(r)) {
            return Err("rates must be between 0 and 1".into());
        }
        if config.latency_ms.0 > config.latency_ms.1 {
            return Err("latency range is empty: minimum above maximum".into());
        }
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let mut issued = HashMap::new();
        if let Some(path) = &config.state_file
            && path.exists()
        {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let recorded: HashMap<String, Recorded> =
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            for (key, r) in recorded {
                let answer = match (r.number, r.refusal) {
                    (Some(number), _) => Ok(Issued {
                        number,
                        issued_at_ms: r.issued_at_ms,
                    }),
                    (None, refusal) => Err(InvoicingError::Refused(refusal.unwrap_or_default())),
                };
                issued.insert(key, answer);
            }
        }
        let state = SandboxState { rng, issued };
        Ok(Self {
            config,
            state: Mutex::new(state),
        })
    }

    /// How many invoices the sandbox issued in all (for tests: never more than requested).
    pub fn issued_count(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.issued.values().filter(|r| r.is_ok()).count()
    }

    fn plan(&self, request: &InvoiceRequest) -> (u64, Result<Issued, InvoicingError>, bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (min, max) = self.config.latency_ms;
        let latency = state.rng.random_range(min..=max);
        if let Some(known) = state.issued.get(&request.request_key) {
            return (latency, known.clone(), false);
        }
        let roll: f64 = state.rng.random();
        if roll < self.config.refuse_rate {
            let refused = Err(InvoicingError::Refused(
                "the buyer's taxpayer record is incomplete (sandbox)".into(),
            ));
            state
                .issued
                .insert(request.request_key.clone(), refused.clone());
            self.persist(&state.issued);
            return (latency, refused, false);
        }
        let timed_out = roll < self.config.refuse_rate + self.config.timeout_rate;
        let issued_anyway = !timed_out || state.rng.random_bool(0.5);
        if !issued_anyway {
            return (latency, Err(InvoicingError::Timeout), true);
        }
        let year = crate::shanghai_date(now_ms())[2..4].to_owned();
        let digits: u64 = rand::rng().random_range(0..10_000_000_000_000_000);
        let issued = Issued {
            number: format!("{year}99{digits:016}"),
            issued_at_ms: now_ms(),
        };
        state
            .issued
            .insert(request.request_key.clone(), Ok(issued.clone()));
        self.persist(&state.issued);
        (latency, Ok(issued), timed_out)
    }

    /// Writes what it answered to the state file, if one is configured; called with the
    /// state locked, so writes follow each other in order.
    fn persist(&self, issued: &HashMap<String, Result<Issued, InvoicingError>>) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        let recorded: HashMap<&String, Recorded> = issued
            .iter()
            .map(|(key, answer)| {
                let r = match answer {
                    Ok(i) => Recorded {
                        number: Some(i.number.clone()),
                        issued_at_ms: i.issued_at_ms,
                        refusal: None,
                    },
                    Err(InvoicingError::Refused(why)) => Recorded {
                        number: None,
                        issued_at_ms: 0,
                        refusal: Some(why.clone()),
                    },
                    Err(InvoicingError::Timeout) => Recorded {
                        number: None,
                        issued_at_ms: 0,
                        refusal: None,
                    },
                };
                (key, r)
            })
            .collect();
        let written = serde_json::to_vec(&recorded)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let staging = path.with_extension("json.partial");
                std::fs::write(&staging, bytes)?;
                std::fs::rename(&staging, path)
            });
        if let Err(e) = written {
            tracing::error!(provider = "sandbox", error = %e,
                "invoicing sandbox could not write its state file");
        }
    }
}

impl InvoicingProvider for SandboxInvoicingProvider {
    fn issue<'a>(
        &'a self,
        request: &'a InvoiceRequest,
    ) -> BoxFuture<'a, Result<Issued, InvoicingError>> {
        Box::pin(async move {
            let (latency, outcome, timed_out) = self.plan(request);
            tokio::time::sleep(Duration::from_millis(latency)).await;
            if timed_out {
                return Err(InvoicingError::Timeout);
            }
            outcome
        })
    }

    fn status<'a>(
        &'a self,
        request_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Issued>, InvoicingError>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let known = match state.issued.get(request_key) {
            Some(Ok(issued)) => Some(issued.clone()),
            Some(Err(_)) | None => None,
        };
        Box::pin(async move { Ok(known) })
    }
}

/// An invoice as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invoice {
    pub id: String,
    pub enterprise_id: String,
    /// `blue` (a bill) or `red` (a red-letter reversal of one bill).
    pub kind: String,
    /// For a red-letter invoice, the invoice it reverses.
    pub reverses_id: Option<String>,
    /// For a bill that was reversed, the red-letter invoice.
    pub reversed_by: Option<String>,
    /// Total in fen; negative for a red-letter invoice.
    pub total_fen: i64,
    /// `requested`, `unknown` (the service did not answer; asked again later), `issued`,
    /// `failed`.
    pub status: String,
    /// The 20-digit e-invoice number, once issued.
    pub number: Option<String>,
    /// Why the service refused, for a failed invoice.
    pub failure: Option<String>,
    /// Why a red-letter invoice was issued.
    pub reason: Option<String>,
    pub created_at_ms: i64,
    pub issued_at_ms: Option<i64>,
    /// Until when the paper copy must be kept (10 years from issue).
    pub paper_retain_until_ms: Option<i64>,
    /// Until when the stub must be kept (5 years from issue).
    pub stub_retain_until_ms: Option<i64>,
    pub lines: Vec<InvoiceLine>,
}

/// One settlement billed by an invoice.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvoiceLine {
    pub settlement_id: String,
    pub order_id: String,
    pub amount_fen: i64,
}

/// Bills an enterprise for its paid settlements not yet billed in full — all of them, or
/// those listed — and has the invoice issued. Asking again with the same `request_key`
/// answers the same invoice.
pub async fn bill(
    state: &AppState,
    caller: &Caller,
    enterprise_id: &str,
    only: Option<&[String]>,
    request_key: Option<&str>,
) -> ApiResult<Invoice> {
    let key = request_key.map_or_else(new_id, str::to_owned);
    if let Some(existing) = by_key(state, &key).await? {
        if existing.enterprise_id != enterprise_id || existing.kind != "blue" {
            return Err(ApiError::conflict(
                "idempotency_key_reused",
                "this request key was already used for a different invoice",
            ));
        }
        return Ok(existing);
    }

    let known = sqlx::query("SELECT 1 AS one FROM accounts WHERE id = $1 AND role = 'enterprise'")
        .bind(enterprise_id)
        .fetch_optional(&state.db.pool)
        .await?;
    if known.is_none() {
        return Err(ApiError::not_found("enterprise"));
    }

    let id = new_id();
    let mut tx = state.db.begin_write().await?;
    let rows = sqlx::query(
        "SELECT s.id, s.gross_fen - CAST(COALESCE(( \
             SELECT SUM(l.amount_fen) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id \
             WHERE l.settlement_id = s.id \
               AND ((l.amount_fen > 0 AND i.status <> 'failed') \
                 OR (l.amount_fen < 0 AND i.status = 'issued'))), 0) AS BIGINT) AS open_fen \
         FROM settlements s WHERE s.enterprise_id = $1 AND s.status = 'paid' \
         ORDER BY s.created_at, s.id",
    )
    .bind(enterprise_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut lines = Vec::new();
    for row in rows {
        let settlement: String = row.try_get("id")?;
        let open: i64 = row.try_get("open_fen")?;
        let wanted = only.is_none_or(|ids| ids.contains(&settlement));
        if open > 0 && wanted {
            lines.push((settlement, open));
        }
    }
    let billable = |id: &&String| lines.iter().any(|(s, _)| s == *id);
    if let Some(missing) = only.and_then(|ids| ids.iter().find(|id| !billable(id))) {
        return Err(ApiError::conflict(
            "not_invoiceable",
            format!(
                "settlement {missing} is not a paid settlement of this enterprise with an amount \
                 left to invoice"
            ),
        ));
    }
    if lines.is_empty() {
        return Err(ApiError::conflict(
            "nothing_to_invoice",
            "the enterprise has no paid settlement left to invoice",
        ));
    }
    let total: i64 = lines.iter().map(|(_, fen)| fen).sum();
    insert_invoice(
        &mut tx,
        &id,
        enterprise_id,
        "blue",
        None,
        total,
        &key,
        caller,
        None,
    )
    .await?;
    for (settlement, fen) in &lines {
        insert_line(&mut tx, &id, settlement, *fen).await?;
    }
    tx.commit().await?;

    audit::record(
        state,
        Event::by(caller, "invoice_requested", Outcome::Ok)
            .object(&id)
            .detail(serde_json::json!({
                "enterprise_id": enterprise_id, "total_fen": total, "lines": lines.len(),
            })),
    )
    .await?;
    let request = InvoiceRequest {
        request_key: key,
        enterprise_id: enterprise_id.to_owned(),
        total_fen: total,
        reverses_number: None,
    };
    submit(state, &id, &request).await?;
    get(state, &id).await
}

/// Reverses an issued invoice in full with a red-letter invoice, which has the settlements
/// billable again once issued.
pub async fn reverse(
    state: &AppState,
    caller: &Caller,
    invoice_id: &str,
    reason: &str,
) -> ApiResult<Invoice> {
    let reason = audit::reason(reason, 10)?;
    let original = get(state, invoice_id).await?;
    if original.kind != "blue" {
        return Err(ApiError::conflict(
            "not_reversible",
            "a red-letter invoice cannot itself be reversed",
        ));
    }
    if original.status != "issued" {
        return Err(ApiError::conflict(
            "not_issued",
            "only an issued invoice can be reversed; this one was not issued",
        ));
    }
    if let Some(red) = &original.reversed_by {
        return get(state, red).await;
    }
    let number = original.number.clone().unwrap_or_default();

    let failed: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM invoices WHERE reverses_id = $1 AND status = 'failed'",
    )
    .bind(invoice_id)
    .fetch_one(&state.db.pool)
    .await?
    .try_get("n")?;
    let id = new_id();
    let key = format!("red:{invoice_id}:{}", failed + 1);
    let mut tx = state.db.begin_write().await?;
    let inserted = insert_invoice_row(
        &mut tx,
        &id,
        &original.enterprise_id,
        "red",
        Some(invoice_id),
        -original.total_fen,
        &key,
        caller,
        Some(reason),
    )
    .await;
    if let Err(e) = inserted {
        drop(tx);
        // Two reversals at once: the unique indexes let one through; answer it.
        if let Some(red) = by_key(state, &key).await? {
            return Ok(red);
        }
        if let Some(red) = get(state, invoice_id).await?.reversed_by {
            return get(state, &red).await;
        }
        return Err(e.into());
    }
    for line in &original.lines {
        insert_line(&mut tx, &id, &line.settlement_id, -line.amount_fen).await?;
    }
    tx.commit().await?;

    audit::record(
        state,
        Event::by(caller, "invoice_reversal_requested", Outcome::Ok)
            .object(&id)
            .detail(serde_json::json!({ "reverses": invoice_id, "reason": reason })),
    )
    .await?;
    let request = InvoiceRequest {
        request_key: key,
        enterprise_id: original.enterprise_id.clone(),
        total_fen: -original.total_fen,
        reverses_number: Some(number),
    };
    submit(state, &id, &request).await?;
    get(state, &id).await
}

/// Asks the provider and records its answer.
async fn submit(state: &AppState, id: &str, request: &InvoiceRequest) -> ApiResult<()> {
    let answer = state.invoicing.issue(request).await;
    record_answer(state, id, answer).await
}

async fn record_answer(
    state: &AppState,
    id: &str,
    answer: Result<Issued, InvoicingError>,
) -> ApiResult<()> {
    let result = match &answer {
        Ok(issued) => {
            sqlx::query(
                "UPDATE invoices SET status = 'issued', number = $1, issued_at = $2, \
               stub_retain_until = $3, paper_retain_until = $4 \
             WHERE id = $5 AND status IN ('requested', 'unknown')",
            )
            .bind(&issued.number)
            .bind(issued.issued_at_ms)
            .bind(issued.issued_at_ms + STUB_RETENTION_YEARS * YEAR_MS)
            .bind(issued.issued_at_ms + PAPER_RETENTION_YEARS * YEAR_MS)
            .bind(id)
            .execute(&state.db.pool)
            .await
        }
        Err(InvoicingError::Refused(why)) => {
            sqlx::query(
                "UPDATE invoices SET status = 'failed', failure = $1 \
             WHERE id = $2 AND status IN ('requested', 'unknown')",
            )
            .bind(why)
            .bind(id)
            .execute(&state.db.pool)
            .await
        }
        Err(InvoicingError::Timeout) => {
            sqlx::query(
                "UPDATE invoices SET status = 'unknown' WHERE id = $1 AND status = 'requested'",
            )
            .bind(id)
            .execute(&state.db.pool)
            .await
        }
    };
    result?;
    match answer {
        Ok(issued) => tracing::info!(invoice_id = id, number = %issued.number, "invoice issued"),
        Err(e) => tracing::warn!(invoice_id = id, error = %e, "invoice not issued"),
    }
    Ok(())
}

/// Asks the provider about every invoice whose request went unanswered or was never sent
/// (a stop between writing it and asking) and records the answers. Returns how many were
/// settled one way or the other.
pub async fn resolve_unknown(state: &AppState) -> ApiResult<usize> {
    let rows = sqlx::query(
        "SELECT i.id, i.request_key, i.enterprise_id, i.total_fen, o.number AS reverses_number \
         FROM invoices i LEFT JOIN invoices o ON o.id = i.reverses_id \
         WHERE i.status = 'unknown' OR (i.status = 'requested' AND i.created_at < $1)",
    )
    .bind(now_ms() - 60_000)
    .fetch_all(&state.db.pool)
    .await?;
    let mut resolved = 0;
    for row in rows {
        let id: String = row.try_get("id")?;
        let request = InvoiceRequest {
            request_key: row.try_get("request_key")?,
            enterprise_id: row.try_get("enterprise_id")?,
            total_fen: row.try_get("total_fen")?,
            reverses_number: row.try_get("reverses_number")?,
        };
        // Asking for the status first, then issuing under the same key if it never arrived,
        // cannot issue twice: the service is idempotent by key.
        let answer = match state.invoicing.status(&request.request_key).await {
            Ok(Some(issued)) => Ok(issued),
            Ok(None) => state.invoicing.issue(&request).await,
            Err(e) => Err(e),
        };
        let settled = !matches!(answer, Err(InvoicingError::Timeout));
        // One invoice that cannot be recorded must not hold up the others.
        match record_answer(state, &id, answer).await {
            Ok(()) if settled => resolved += 1,
            Ok(()) => {}
            Err(e) => tracing::warn!(invoice_id = %id, error = %e, "invoice answer not recorded"),
        }
    }
    Ok(resolved)
}

/// Resolves unanswered invoices every minute.
pub fn spawn_resolver(state: AppState) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            match resolve_unknown(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(resolved = n, "unanswered invoices resolved"),
                Err(e) => tracing::warn!(error = %e, "resolving unanswered invoices failed"),
            }
        }
    });
}

#[allow(clippy::too_many_arguments)]
async fn insert_invoice(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    enterprise_id: &str,
    kind: &str,
    reverses: Option<&str>,
    total: i64,
    key: &str,
    caller: &Caller,
    reason: Option<&str>,
) -> ApiResult<()> {
    let inserted = insert_invoice_row(
        tx,
        id,
        enterprise_id,
        kind,
        reverses,
        total,
        key,
        caller,
        reason,
    );
    Ok(inserted.await?)
}

/// The invoice row; a unique violation comes back as the database's error, unlogged.
#[allow(clippy::too_many_arguments)]
async fn insert_invoice_row(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    enterprise_id: &str,
    kind: &str,
    reverses: Option<&str>,
    total: i64,
    key: &str,
    caller: &Caller,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invoices (id, enterprise_id, kind, reverses_id, total_fen, request_key, \
           status, reason, requested_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'requested', $7, $8, $9)",
    )
    .bind(id)
    .bind(enterprise_id)
    .bind(kind)
    .bind(reverses)
    .bind(total)
    .bind(key)
    .bind(reason)
    .bind(&caller.account_id)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_line(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    invoice: &str,
    settlement: &str,
    fen: i64,
) -> ApiResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO invoice_lines (invoice_id, settlement_id, amount_fen) VALUES ($1, $2, $3)",
    )
    .bind(invoice)
    .bind(settlement)
    .bind(fen)
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.message().contains("invoice") => {
            Err(ApiError::conflict(
                "exceeds_paid",
                "an invoice may bill only paid settlements, and never more than was paid; \
                 another invoice may have billed them meanwhile",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn by_key(state: &AppState, key: &str) -> ApiResult<Option<Invoice>> {
    let row = sqlx::query("SELECT id FROM invoices WHERE request_key = $1")
        .bind(key)
        .fetch_optional(&state.db.pool)
        .await?;
    match row {
        Some(row) => Ok(Some(get(state, &row.try_get::<String, _>("id")?).await?)),
        None => Ok(None),
    }
}

/// One invoice with its lines (no access check).
pub async fn get(state: &AppState, id: &str) -> ApiResult<Invoice> {
    let row = sqlx::query(
        "SELECT i.*, r.id AS reversed_by FROM invoices i \
         LEFT JOIN invoices r ON r.reverses_id = i.id AND r.status <> 'failed' \
         WHERE i.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| ApiError::not_found("invoice"))?;
    let lines = sqlx::query(
        "SELECT l.settlement_id, s.order_id, l.amount_fen FROM invoice_lines l \
         JOIN settlements s ON s.id = l.settlement_id WHERE l.invoice_id = $1 \
         ORDER BY l.settlement_id",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?
    .iter()
    .map(|l| {
        Ok(InvoiceLine {
            settlement_id: l.try_get("settlement_id")?,
            order_id: l.try_get("order_id")?,
            amount_fen: l.try_get("amount_fen")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Invoice {
        id: row.try_get("id")?,
        enterprise_id: row.try_get("enterprise_id")?,
        kind: row.try_get("kind")?,
        reverses_id: row.try_get("reverses_id")?,
        reversed_by: row.try_get("reversed_by")?,
        total_fen: row.try_get("total_fen")?,
        status: row.try_get("status")?,
        number: row.try_get("number")?,
        failure: row.try_get("failure")?,
        reason: row.try_get("reason")?,
        created_at_ms: row.try_get("created_at")?,
        issued_at_ms: row.try_get("issued_at")?,
        paper_retain_until_ms: row.try_get("paper_retain_until")?,
        stub_retain_until_ms: row.try_get("stub_retain_until")?,
        lines,
    })
}

/// The invoices the caller may read, oldest first (by creation time, then id), narrowed by
/// the filters: at most `limit`, after `after` (creation time and id). Also says whether more
/// follow.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: &ListFilter<'_>,
    after: (i64, String),
    limit: usize,
) -> ApiResult<(Vec<Invoice>, bool)> {
    let scope = match caller.work_scope() {
        WorkScope::All => "",
        WorkScope::Organisation(org) => org,
        WorkScope::Worker(_) | WorkScope::Nothing => {
            return Err(ApiError::forbidden(
                "invoices are for enterprises, operator teams and regulators",
            ));
        }
    };
    // One more than the page, to know whether another page follows.
    let sql = format!(
        "SELECT id FROM invoices WHERE ($1 = '' OR enterprise_id = $1) \
         AND ($2 = '' OR enterprise_id = $2) AND created_at >= $3 AND created_at <= $4 \
         AND ($5 = '' OR EXISTS (SELECT 1 FROM invoice_lines l \
              JOIN settlements s ON s.id = l.settlement_id \
              WHERE l.invoice_id = invoices.id AND s.order_id = $5)) \
         AND (created_at, id) > ($6, $7) \
         ORDER BY created_at, id LIMIT {}",
        limit + 1
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope)
        .bind(filter.enterprise.unwrap_or_default())
        .bind(filter.period.0)
        .bind(filter.period.1)
        .bind(filter.order.unwrap_or_default())
        .bind(after.0)
        .bind(&after.1)
        .fetch_all(&state.db.pool)
        .await?;
    let more = rows.len() > limit;
    let mut invoices = Vec::with_capacity(rows.len().min(limit));
    for row in rows.iter().take(limit) {
        invoices.push(get(state, &row.try_get::<String, _>("id")?).await?);
    }
    Ok((invoices, more))
}

/// What `GET /invoices` narrows by.
#[derive(Debug, Default)]
pub struct ListFilter<'a> {
    /// One enterprise's invoices.
    pub enterprise: Option<&'a str>,
    /// The invoices billing one order.
    pub order: Option<&'a str>,
    /// Created within these bounds (ms since the epoch, inclusive).
    pub period: (i64, i64),
}

/// One invoice, if the caller may read it (404 otherwise, so ids cannot be probed).
pub async fn visible(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Invoice> {
    let invoice = get(state, id).await?;
    match caller.work_scope() {
        WorkScope::All => Ok(invoice),
        WorkScope::Organisation(org) if org == invoice.enterprise_id => Ok(invoice),
        WorkScope::Worker(_) | WorkScope::Nothing if !caller.can(Permission::ReadAllWork) => Err(
            ApiError::forbidden("invoices are for enterprises, operator teams and regulators"),
        ),
        _ => Err(ApiError::not_found("invoice")),
    }
}

/// The amount of a settlement billed so far, over invoices issued or pending (red-letter
/// reversals counted once issued).
pub async fn billed_fen(state: &AppState, settlement_id: &str) -> ApiResult<i64> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(l.amount_fen), 0) AS BIGINT) AS billed FROM invoice_lines l \
         JOIN invoices i ON i.id = l.invoice_id WHERE l.settlement_id = $1 \
           AND ((l.amount_fen > 0 AND i.status <> 'failed') \
             OR (l.amount_fen < 0 AND i.status = 'issued'))",
    )
    .bind(settlement_id)
    .fetch_one(&state.db.pool)
    .await?;
    Ok(row.try_get("billed")?)
}

/// What issued invoices bill of each of these settlements, by settlement id (absent: none),
/// net of issued red-letter reversals: one query.
pub async fn issued_fen_of(
    state: &AppState,
    settlement_ids: &[String],
) -> ApiResult<std::collections::HashMap<String, i64>> {
    let mut billed = std::collections::HashMap::new();
    if settlement_ids.is_empty() {
        return Ok(billed);
    }
    let sql = format!(
        "SELECT l.settlement_id, CAST(SUM(l.amount_fen) AS BIGINT) AS billed \
         FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id \
         WHERE l.settlement_id IN ({}) AND i.status = 'issued' GROUP BY l.settlement_id",
        crate::evidence::placeholders(1, settlement_ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in settlement_ids {
        query = query.bind(id);
    }
    for row in query.fetch_all(&state.db.pool).await? {
        billed.insert(row.try_get("settlement_id")?, row.try_get("billed")?);
    }
    Ok(billed)
}

/// The amount of a settlement billed by issued invoices, net of issued red-letter reversals:
/// what decides that an order is `invoiced`.
pub async fn issued_fen(state: &AppState, settlement_id: &str) -> ApiResult<i64> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(l.amount_fen), 0) AS BIGINT) AS billed FROM invoice_lines l \
         JOIN invoices i ON i.id = l.invoice_id \
         WHERE l.settlement_id = $1 AND i.status = 'issued'",
    )
    .bind(settlement_id)
    .fetch_one(&state.db.pool)
    .await?;
    Ok(row.try_get("billed")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str) -> InvoiceRequest {
        InvoiceRequest {
            request_key: key.into(),
            enterprise_id: "acme".into(),
            total_fen: 30_000,
            reverses_number: None,
        }
    }

    fn sandbox(refuse_rate: f64, timeout_rate: f64) -> SandboxInvoicingProvider {
        SandboxInvoicingProvider::new(SandboxConfig {
            latency_ms: (0, 1),
            refuse_rate,
            timeout_rate,
            seed: Some(7),
            state_file: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn the_same_key_is_issued_once_with_one_twenty_digit_number() {
        let provider = sandbox(0.0, 0.0);
        let first = provider.issue(&request("k1")).await.unwrap();
        let again = provider.issue(&request("k1")).await.unwrap();
        let other = provider.issue(&request("k2")).await.unwrap();

        assert_eq!(first, again);
        assert_ne!(first.number, other.number);
        assert_eq!(first.number.len(), 20);
        assert!(first.number.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(provider.issued_count(), 2);
    }

    #[tokio::test]
    async fn a_refusal_is_final_for_its_key() {
        let provider = sandbox(1.0, 0.0);
        let refused = provider.issue(&request("k1")).await;
        assert!(matches!(refused, Err(InvoicingError::Refused(_))));
        assert!(matches!(
            provider.issue(&request("k1")).await,
            Err(InvoicingError::Refused(_))
        ));
        assert_eq!(provider.status("k1").await.unwrap(), None);
        assert_eq!(provider.issued_count(), 0);
    }

    #[tokio::test]
    async fn a_timeout_may_have_issued_and_asking_by_key_never_issues_twice() {
        let provider = sandbox(0.0, 1.0);
        let mut issued_anyway = 0;
        for n in 0..40 {
            let key = format!("k{n}");
            assert_eq!(
                provider.issue(&request(&key)).await,
                Err(InvoicingError::Timeout)
            );
            if let Some(issued) = provider.status(&key).await.unwrap() {
                issued_anyway += 1;
                // Issuing again under the key answers the same invoice (still late here).
                assert_eq!(provider.status(&key).await.unwrap(), Some(issued));
            }
        }
        assert!((5..=35).contains(&issued_anyway), "{issued_anyway} of 40");
        assert_eq!(provider.issued_count(), issued_anyway);
    }

    #[tokio::test]
    async fn with_a_state_file_a_restarted_sandbox_answers_what_it_issued_before() {
        let dir = tempfile::tempdir().unwrap();
        let config = SandboxConfig {
            latency_ms: (0, 1),
            state_file: Some(dir.path().join("books.json")),
            ..SandboxConfig::default()
        };
        let before = SandboxInvoicingProvider::new(config.clone()).unwrap();
        let issued = before.issue(&request("k1")).await.unwrap();
        drop(before);

        let after = SandboxInvoicingProvider::new(config).unwrap();
        assert_eq!(after.status("k1").await.unwrap(), Some(issued.clone()));
        assert_eq!(after.issue(&request("k1")).await.unwrap(), issued);
        let other = after.issue(&request("k2")).await.unwrap();
        assert_ne!(other.number, issued.number);
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        let config = SandboxConfig {
            refuse_rate: 1.5,
            ..SandboxConfig::default()
        };
        assert!(SandboxInvoicingProvider::new(config).is_err());
    }
}

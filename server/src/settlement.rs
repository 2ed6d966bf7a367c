//! Settlement: once the three parties confirmed an order's statement ([`crate::statements`]),
//! the worker's pay is computed — gross fee, tax withheld, net pay, the platform's service
//! fee, all in integer fen — and money moves in the ledger, exactly once.
//!
//! [`settle_statement`] does it in one write transaction: it inserts the `settlements` row
//! (status `pending_payout`, which payouts pick up) and posts the ledger entry `settlement`
//! with key `settlement:{order_id}`: debit the enterprise's escrow with gross + fee, credit
//! the worker's payable with net, tax payable with the tax and platform fees with the fee.
//! When the escrow does not cover it, nothing is written and the statement waits in
//! `awaiting_funds`; a deposit for that enterprise, and a periodic job
//! ([`spawn_retry`]), try again. "Exactly once" rests on the database: `settlements.order_id`
//! is unique and the ledger key is posted once, so concurrent or repeated calls settle one.
//!
//! Tax is withheld by the method the dated [`TaxConfig`] names for the settlement date
//! (Asia/Shanghai): the per-payment method of 2018 or, for platform workers from
//! 2025-10-01, the cumulative method of 2025 ([`cumulative_tax_fen`]), which reads the
//! worker's earlier settlements of the year inside the same transaction, after locking the
//! worker's payable account, so two settlements of one worker never both use the same
//! "already withheld".

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::ApiResult;
use crate::ledger::{self, Account, Entry, LedgerError};
use crate::{AppState, new_id, now_ms};

/// Which withholding method applies to payments made in a date range.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaxRule {
    pub method: TaxMethod,
    /// First day the rule applies, `YYYY-MM-DD` (Asia/Shanghai).
    pub effective_from: String,
    /// Last day it applies; empty for open-ended.
    #[serde(default)]
    pub effective_to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaxMethod {
    /// Per-payment prepayment on labour remuneration, SAT notice 2018 No. 61.
    #[serde(rename = "per_payment_2018")]
    PerPayment2018,
    /// Cumulative withholding for platform workers, SAT notice 2025 No. 16.
    #[serde(rename = "cumulative_2025")]
    Cumulative2025,
}

impl TaxMethod {
    /// The name used in configuration and on settlements.
    pub fn as_str(self) -> &'static str {
        match self {
            TaxMethod::PerPayment2018 => "per_payment_2018",
            TaxMethod::Cumulative2025 => "cumulative_2025",
        }
    }
}

/// Dated tax rules; the first whose range contains the payment date applies. The default:
/// per-payment from 2019-01-01 to 2025-09-30, cumulative from 2025-10-01.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TaxConfig {
    pub rules: Vec<TaxRule>,
    /// Cumulative method: whether a calendar month without income from the platform restarts
    /// the count of consecutive months (5,000 CNY deducted per month counted). The notice
    /// does not say; the default `true` withholds the more cautious amount (a worker paid in
    /// January and March has one month counted in March, not two); the difference is settled
    /// in the worker's annual reconciliation. `false` counts every month with income.
    pub cumulative_gap_restarts: bool,
}

impl Default for TaxConfig {
    fn default() -> Self {
        let per_payment = TaxRule {
            method: TaxMethod::PerPayment2018,
            effective_from: "2019-01-01".into(),
            effective_to: "2025-09-30".into(),
        };
        let cumulative = TaxRule {
            method: TaxMethod::Cumulative2025,
            effective_from: "2025-10-01".into(),
            effective_to: String::new(),
        };
        Self {
            rules: vec![per_payment, cumulative],
            cumulative_gap_restarts: true,
        }
    }
}

/// Settlement settings: `[settlement]` in the configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SettlementConfig {
    /// The platform's service fee, in basis points (1/100 of a percent) of the gross fee,
    /// charged to the enterprise on top of the gross (rounded half up to the fen). Default 0:
    /// no fee until the operator's contract with the enterprise names one.
    pub platform_fee_basis_points: i64,
    /// Seconds between retries of statements waiting for escrow funds (a deposit retries its
    /// enterprise's at once); 0 turns the periodic retry off.
    pub retry_interval_secs: u64,
}

impl Default for SettlementConfig {
    fn default() -> Self {
        Self {
            platform_fee_basis_points: 0,
            retry_interval_secs: 60,
        }
    }
}

impl SettlementConfig {
    /// The service fee on a gross amount, in fen, rounded half up.
    pub fn fee_fen(&self, gross_fen: i64) -> i64 {
        div_round(gross_fen * self.platform_fee_basis_points.max(0), 10_000)
    }
}

impl TaxConfig {
    /// The method for a payment on `date` (`YYYY-MM-DD`), if any rule covers it.
    pub fn method_on(&self, date: &str) -> Option<TaxMethod> {
        let covers = |r: &&TaxRule| {
            r.effective_from.as_str() <= date
                && (r.effective_to.is_empty() || date <= r.effective_to.as_str())
        };
        self.rules.iter().find(covers).map(|r| r.method)
    }
}

/// Tax withheld on one payment of `income_fen`, by the per-payment method: taxable income is
/// income − 800 CNY up to 4,000 CNY and 80 % of income above; then 20 % up to 20,000 CNY of
/// taxable income, 30 % − 2,000 up to 50,000, 40 % − 7,000 above. Rounded to the fen.
pub fn per_payment_tax_fen(income_fen: i64) -> i64 {
    let taxable = if income_fen <= 4_000 * YUAN {
        (income_fen - 800 * YUAN).max(0)
    } else {
        div_round(income_fen * 4, 5)
    };

    let (rate_percent, quick_deduction) = if taxable <= 20_000 * YUAN {
        (20, 0)
    } else if taxable <= 50_000 * YUAN {
        (30, 2_000 * YUAN)
    } else {
        (40, 7_000 * YUAN)
    };
    div_round(taxable * rate_percent, 100) - quick_deduction
}

const YUAN: i64 = 100;

/// The cumulative withholding table over cumulative taxable income: upper bound in fen (the
/// last has none), rate in percent, quick deduction in fen.
const CUMULATIVE_TABLE: [(i64, i64, i64); 7] = [
    (36_000 * YUAN, 3, 0),
    (144_000 * YUAN, 10, 2_520 * YUAN),
    (300_000 * YUAN, 20, 16_920 * YUAN),
    (420_000 * YUAN, 25, 31_920 * YUAN),
    (660_000 * YUAN, 30, 52_920 * YUAN),
    (960_000 * YUAN, 35, 85_920 * YUAN),
    (i64::MAX, 45, 181_920 * YUAN),
];

/// Tax to withhold now by the cumulative method (SAT notice 2025 No. 16).
///
/// `income_fen` is the worker's income from the platform this calendar year including this
/// payment; `months` the consecutive months counted (see
/// [`TaxConfig::cumulative_gap_restarts`]); `withheld_fen` the tax already withheld under
/// this method this year. Taxable so far = income − 20 % of it − 5,000 CNY × months (never
/// below zero); tax so far = taxable × rate − quick deduction; now = tax so far − withheld,
/// never negative. Rounding: 80 % of income and taxable × rate are each rounded half up to
/// the fen.
pub fn cumulative_tax_fen(income_fen: i64, months: i64, withheld_fen: i64) -> i64 {
    let taxable = (div_round(income_fen * 4, 5) - 5_000 * YUAN * months).max(0);
    let (_, rate, quick) = CUMULATIVE_TABLE
        .iter()
        .copied()
        .find(|(upper, _, _)| taxable <= *upper)
        .unwrap_or(CUMULATIVE_TABLE[6]);
    let due = (div_round(taxable * rate, 100) - quick).max(0);
    (due - withheld_fen).max(0)
}

/// The months counted for the 5,000 CNY deduction in `month` (1–12), given the months of
/// this year with income from the platform (this one included): the run of consecutive
/// months ending at `month` when a gap restarts the count, otherwise every month with income.
pub fn months_counted(months_with_income: &BTreeSet<u32>, month: u32, gap_restarts: bool) -> i64 {
    if gap_restarts {
        (1..=month)
            .rev()
            .take_while(|m| *m == month || months_with_income.contains(m))
            .count() as i64
    } else {
        let mut counted: BTreeSet<u32> = months_with_income
            .iter()
            .copied()
            .filter(|m| *m <= month)
            .collect();
        counted.insert(month);
        counted.len() as i64
    }
}

/// Division of non-negative integers rounding half up.
fn div_round(numerator: i64, denominator: i64) -> i64 {
    (numerator + denominator / 2) / denominator
}

/// A settlement as the API shows it: what the worker is paid for one order.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Settlement {
    pub id: String,
    pub order_id: String,
    /// The statement whose three confirmations it settles.
    pub statement_id: Option<String>,
    pub worker_id: String,
    pub enterprise_id: String,
    /// The fee for the work, in fen, as the statement says.
    pub gross_fen: i64,
    /// Individual income tax withheld, in fen.
    pub tax_fen: i64,
    /// What the worker is paid: gross − tax, in fen.
    pub net_fen: i64,
    /// The platform's service fee charged to the enterprise on top of the gross, in fen.
    pub fee_fen: i64,
    /// `per_payment_2018` or `cumulative_2025`.
    pub tax_method: String,
    /// The month the income counts in (`YYYY-MM`, Asia/Shanghai).
    pub income_month: Option<String>,
    /// `pending_payout`, then whatever payouts make of it (`in_payout`, `paid`).
    pub status: String,
    pub created_at_ms: i64,
}

/// What [`settle_statement`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleOutcome {
    /// This call settled the statement.
    Settled,
    /// It was settled already (by this or another call).
    AlreadySettled,
    /// The escrow does not cover gross + fee; the statement is `awaiting_funds`.
    AwaitingFunds,
    /// Not all three parties confirmed, or the statement is disputed, superseded or void.
    NotReady,
}

/// Settles a statement confirmed by all three parties: see the module documentation.
pub async fn settle_statement(state: &AppState, statement_id: &str) -> ApiResult<SettleOutcome> {
    let mut tx = state.db.begin_write().await?;
    let Some(row) = sqlx::query("SELECT worker_id FROM statements WHERE id = $1")
        .bind(statement_id)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(SettleOutcome::NotReady);
    };
    let worker: String = row.try_get("worker_id")?;
    // Serialises this worker's settlements (PostgreSQL; SQLite's write lock already does).
    ledger::lock_account(&mut tx, &Account::WorkerPayable(worker.clone())).await?;

    let row = sqlx::query(
        "SELECT s.order_id, s.enterprise_id, s.gross_fen, s.fee_fen, s.status, \
           (SELECT COUNT(*) FROM statement_confirmations c WHERE c.statement_id = s.id) AS n \
         FROM statements s WHERE s.id = $1",
    )
    .bind(statement_id)
    .fetch_one(&mut *tx)
    .await?;
    let status: String = row.try_get("status")?;
    let confirmations: i64 = row.try_get("n")?;
    if status == "settled" {
        return Ok(SettleOutcome::AlreadySettled);
    }
    if !matches!(status.as_str(), "open" | "awaiting_funds") || confirmations < 3 {
        return Ok(SettleOutcome::NotReady);
    }
    let order_id: String = row.try_get("order_id")?;
    let enterprise: String = row.try_get("enterprise_id")?;
    let gross: i64 = row.try_get("gross_fen")?;
    let fee: i64 = row.try_get("fee_fen")?;

    let now = now_ms();
    let today = crate::shanghai_date(now);
    let Some(method) = state.config.tax.method_on(&today) else {
        tracing::error!(order_id, date = %today, "no tax rule covers today; settlement waits");
        return Ok(SettleOutcome::NotReady);
    };
    let month = today[..7].to_owned();
    let tax = match method {
        TaxMethod::PerPayment2018 => per_payment_tax_fen(gross),
        TaxMethod::Cumulative2025 => cumulative_for(&mut tx, state, &worker, &month, gross).await?,
    };
    let net = gross - tax;

    let inserted = sqlx::query(
        "INSERT INTO settlements \
           (id, order_id, worker_id, enterprise_id, gross_fen, tax_fen, net_fen, tax_method, \
            status, created_at, statement_id, fee_fen, income_month) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending_payout', $9, $10, $11, $12) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(new_id())
    .bind(&order_id)
    .bind(&worker)
    .bind(&enterprise)
    .bind(gross)
    .bind(tax)
    .bind(net)
    .bind(method.as_str())
    .bind(now)
    .bind(statement_id)
    .bind(fee)
    .bind(&month)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(SettleOutcome::AlreadySettled);
    }

    let entry = Entry::new("settlement", format!("settlement:{order_id}"), &order_id)
        .debit(Account::Escrow(enterprise.clone()), gross + fee)
        .credit(Account::WorkerPayable(worker.clone()), net)
        .credit(Account::TaxPayable, tax)
        .credit(Account::PlatformFees, fee);
    match ledger::post(&mut tx, &entry).await {
        Ok(_) => {}
        Err(LedgerError::Insufficient { .. }) => {
            drop(tx);
            return mark_awaiting_funds(state, statement_id, &order_id).await;
        }
        Err(e) => return Err(e.into()),
    }
    let settled = sqlx::query(
        "UPDATE statements SET status = 'settled', updated_at = $1 \
         WHERE id = $2 AND status IN ('open', 'awaiting_funds')",
    )
    .bind(now)
    .bind(statement_id)
    .execute(&mut *tx)
    .await?;
    if settled.rows_affected() == 0 {
        // Disputed meanwhile: nothing of this attempt is kept.
        return Ok(SettleOutcome::NotReady);
    }
    tx.commit().await?;

    tracing::info!(
        order_id,
        gross_fen = gross,
        tax_fen = tax,
        fee_fen = fee,
        method = method.as_str(),
        "statement settled"
    );
    let detail = serde_json::json!({
        "order_id": order_id, "gross_fen": gross, "tax_fen": tax, "net_fen": net,
        "fee_fen": fee, "tax_method": method.as_str(), "income_month": month,
    });
    let event = crate::audit::Event::anonymous("statement_settled", crate::audit::Outcome::Ok)
        .object(statement_id)
        .detail(detail);
    crate::audit::record(state, event).await?;
    Ok(SettleOutcome::Settled)
}

/// The cumulative tax of a payment of `gross` to `worker` in `month` (`YYYY-MM`), from the
/// worker's earlier cumulative-method settlements of the year, read in `tx`.
async fn cumulative_for(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    state: &AppState,
    worker: &str,
    month: &str,
    gross: i64,
) -> ApiResult<i64> {
    let year = &month[..4];
    let rows = sqlx::query(
        "SELECT income_month, gross_fen, tax_fen FROM settlements \
         WHERE worker_id = $1 AND tax_method = $2 AND income_month LIKE $3",
    )
    .bind(worker)
    .bind(TaxMethod::Cumulative2025.as_str())
    .bind(format!("{year}-%"))
    .fetch_all(&mut **tx)
    .await?;
    let (mut income, mut withheld) = (gross, 0);
    let mut months = BTreeSet::new();
    for row in rows {
        let m: String = row.try_get("income_month")?;
        income += row.try_get::<i64, _>("gross_fen")?;
        withheld += row.try_get::<i64, _>("tax_fen")?;
        months.insert(m[5..7].parse::<u32>().unwrap_or(0));
    }
    let this_month = month[5..7].parse::<u32>().unwrap_or(1);
    months.insert(this_month);
    let gap_restarts = state.config.tax.cumulative_gap_restarts;
    let counted = months_counted(&months, this_month, gap_restarts);
    Ok(cumulative_tax_fen(income, counted, withheld))
}

async fn mark_awaiting_funds(
    state: &AppState,
    statement_id: &str,
    order_id: &str,
) -> ApiResult<SettleOutcome> {
    let marked = sqlx::query(
        "UPDATE statements SET status = 'awaiting_funds', updated_at = $1 \
         WHERE id = $2 AND status = 'open'",
    )
    .bind(now_ms())
    .bind(statement_id)
    .execute(&state.db.pool)
    .await?;
    if marked.rows_affected() == 1 {
        tracing::warn!(
            order_id,
            "escrow does not cover the statement; awaiting funds"
        );
        let event =
            crate::audit::Event::anonymous("statement_awaiting_funds", crate::audit::Outcome::Ok)
                .object(statement_id)
                .detail(serde_json::json!({ "order_id": order_id }));
        crate::audit::record(state, event).await?;
    }
    Ok(SettleOutcome::AwaitingFunds)
}

/// Tries to settle every confirmed statement of `enterprise` (all enterprises when `None`)
/// that is still open or waiting for funds, oldest first. Returns how many it settled.
pub async fn retry_waiting(state: &AppState, enterprise: Option<&str>) -> ApiResult<usize> {
    let rows = sqlx::query(
        "SELECT s.id FROM statements s \
         WHERE s.status IN ('open', 'awaiting_funds') AND ($1 = '' OR s.enterprise_id = $1) \
           AND (SELECT COUNT(*) FROM statement_confirmations c WHERE c.statement_id = s.id) = 3 \
         ORDER BY s.created_at",
    )
    .bind(enterprise.unwrap_or_default())
    .fetch_all(&state.db.pool)
    .await?;
    let mut settled = 0;
    for row in rows {
        let id: String = row.try_get("id")?;
        if settle_statement(state, &id).await? == SettleOutcome::Settled {
            settled += 1;
        }
    }
    Ok(settled)
}

/// Retries statements waiting for funds every `[settlement] retry_interval_secs`.
pub fn spawn_retry(state: AppState) {
    let every = state.config.settlement.retry_interval_secs;
    if every == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(every));
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match retry_waiting(&state, None).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(settled = n, "settled statements that waited for funds"),
                Err(e) => tracing::warn!(error = %e.message, "retrying waiting statements failed"),
            }
        }
    });
}

/// The order's settlement, if there is one.
pub async fn for_order(state: &AppState, order_id: &str) -> ApiResult<Option<Settlement>> {
    let row = sqlx::query("SELECT * FROM settlements WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&state.db.pool)
        .await?;
    row.map(|r| from_row(&r)).transpose()
}

/// The settlements of these orders, by order id: one query.
pub async fn for_orders(
    state: &AppState,
    order_ids: &[String],
) -> ApiResult<std::collections::HashMap<String, Settlement>> {
    let mut found = std::collections::HashMap::new();
    if order_ids.is_empty() {
        return Ok(found);
    }
    let sql = format!(
        "SELECT * FROM settlements WHERE order_id IN ({})",
        crate::evidence::placeholders(1, order_ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in order_ids {
        query = query.bind(id);
    }
    for row in query.fetch_all(&state.db.pool).await? {
        let settlement = from_row(&row)?;
        found.insert(settlement.order_id.clone(), settlement);
    }
    Ok(found)
}

fn from_row(row: &sqlx::any::AnyRow) -> ApiResult<Settlement> {
    Ok(Settlement {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        statement_id: row.try_get("statement_id")?,
        worker_id: row.try_get("worker_id")?,
        enterprise_id: row.try_get("enterprise_id")?,
        gross_fen: row.try_get("gross_fen")?,
        tax_fen: row.try_get("tax_fen")?,
        net_fen: row.try_get("net_fen")?,
        fee_fen: row.try_get("fee_fen")?,
        tax_method: row.try_get("tax_method")?,
        income_month: row.try_get("income_month")?,
        status: row.try_get("status")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_payment_tax_matches_the_worked_examples() {
        let yuan = |y: i64| y * 100;
        let cases = [
            (800, 0),
            (2_000, 240),
            (3_000, 440),
            (8_000, 1_280),
            (30_000, 5_200),
            (100_000, 25_000),
        ];

        for (income, tax) in cases {
            assert_eq!(
                per_payment_tax_fen(yuan(income)),
                yuan(tax),
                "income {income} CNY"
            );
        }
    }

    #[test]
    fn tax_is_never_negative_and_rounds_to_the_fen() {
        assert_eq!(per_payment_tax_fen(0), 0);
        assert_eq!(per_payment_tax_fen(50_000), 0);
        // 4,000.01 CNY: taxable 3,200.008 → 3,200.01; tax 640.002 → 640.00.
        assert_eq!(per_payment_tax_fen(400_001), 64_000);
    }

    #[test]
    fn the_rule_in_force_is_chosen_by_date() {
        let config = TaxConfig::default();

        assert_eq!(
            config.method_on("2025-09-30"),
            Some(TaxMethod::PerPayment2018)
        );
        assert_eq!(
            config.method_on("2025-10-01"),
            Some(TaxMethod::Cumulative2025)
        );
        assert_eq!(
            config.method_on("2026-12-04"),
            Some(TaxMethod::Cumulative2025)
        );
        assert_eq!(config.method_on("2018-06-01"), None);
    }

    /// Withholds month after month as settlement does: `payments` are (month, income CNY),
    /// answers the tax of each in CNY.
    fn withhold(payments: &[(u32, i64)], gap_restarts: bool) -> Vec<i64> {
        let (mut income, mut withheld) = (0, 0);
        let mut months = BTreeSet::new();
        let mut taxes = Vec::new();
        for (month, yuan) in payments {
            income += yuan * 100;
            months.insert(*month);
            let counted = months_counted(&months, *month, gap_restarts);
            let tax = cumulative_tax_fen(income, counted, withheld);
            withheld += tax;
            taxes.push(tax);
        }
        taxes.iter().map(|t| t / 100).collect()
    }

    #[test]
    fn cumulative_tax_matches_the_worked_example() {
        // 8,000 CNY a month from January. Month 1: 8,000 − 1,600 − 5,000 = 1,400 taxable,
        // 3 % = 42. Month 2: 16,000 − 3,200 − 10,000 = 2,800, 84 − 42 = 42. Month 3:
        // 24,000 − 4,800 − 15,000 = 4,200, 126 − 84 = 42.
        let taxes = withhold(&[(1, 8_000), (2, 8_000), (3, 8_000)], true);
        assert_eq!(taxes, vec![42, 42, 42]);
        // Per payment it would be 1,280 each.
        assert_eq!(per_payment_tax_fen(800_000), 128_000);
    }

    #[test]
    fn cumulative_tax_crosses_the_36000_band() {
        // 20,000 CNY a month. Taxable: 11,000; 22,000; 33,000 (3 %: 330, 660, 990 → 330
        // each); month 4: 80,000 − 16,000 − 20,000 = 44,000 → 10 % − 2,520 = 1,880, minus
        // 990 = 890; month 5: 100,000 − 20,000 − 25,000 = 55,000 → 2,980 − 1,880 = 1,100.
        let monthly: Vec<_> = (1..=5).map(|m| (m, 20_000)).collect();
        assert_eq!(withhold(&monthly, true), vec![330, 330, 330, 890, 1_100]);
    }

    #[test]
    fn a_month_without_income_restarts_the_count_only_when_configured() {
        // 8,000 CNY in January and March. Restarting: March counts 1 month, taxable
        // 16,000 − 3,200 − 5,000 = 7,800, 234 − 42 = 192. Not restarting: 2 months,
        // 16,000 − 3,200 − 10,000 = 2,800, 84 − 42 = 42.
        assert_eq!(withhold(&[(1, 8_000), (3, 8_000)], true), vec![42, 192]);
        assert_eq!(withhold(&[(1, 8_000), (3, 8_000)], false), vec![42, 42]);
        // Two payments in one month count the month once: 4,000 + 4,000 in January:
        // 3,200 − 5,000 < 0 → 0; then 6,400 − 5,000 = 1,400 → 42.
        assert_eq!(withhold(&[(1, 4_000), (1, 4_000)], true), vec![0, 42]);
    }

    #[test]
    fn cumulative_tax_is_never_negative_and_rounds_to_the_fen() {
        assert_eq!(cumulative_tax_fen(500_000, 1, 0), 0);
        // Withheld more than due so far (a smaller later month): nothing more, no refund.
        assert_eq!(cumulative_tax_fen(800_000, 1, 10_000), 0);
        // 6,250.01 CNY: 80 % = 5,000.008 → 5,000.01; taxable 0.01; 3 % = 0.0003 → 0.00.
        assert_eq!(cumulative_tax_fen(625_001, 1, 0), 0);
        // 6,250.50 CNY: taxable 0.40 CNY; 3 % = 1.2 fen → 1 fen.
        assert_eq!(cumulative_tax_fen(625_050, 1, 0), 1);
    }

    #[test]
    fn the_platform_fee_is_basis_points_rounded_half_up() {
        let config = SettlementConfig {
            platform_fee_basis_points: 150,
            retry_interval_secs: 0,
        };
        assert_eq!(config.fee_fen(300_000), 4_500);
        assert_eq!(config.fee_fen(33), 0);
        assert_eq!(config.fee_fen(34), 1);
        assert_eq!(SettlementConfig::default().fee_fen(300_000), 0);
    }
}

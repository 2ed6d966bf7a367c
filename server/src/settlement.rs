//! Settlement: once an order is submitted, its evidence accepted and its completion confirmed,
//! the worker's pay is computed — gross fee, tax withheld, net pay, all in integer fen — and
//! recorded exactly once.
//!
//! The conditions: the order is submitted; its latest evidence is verified (nothing pending);
//! the verdict passed with no operator decision, or it needs review and an operator approved
//! it (an approval is cleared whenever new evidence is verified, so it always covers the
//! current verdict); and the enterprise confirmed.
//!
//! "Exactly once" rests on the database, not on the caller: the settlement row is inserted by
//! a single `INSERT … SELECT … WHERE <all conditions hold> ON CONFLICT (order_id) DO NOTHING`,
//! so any number of concurrent or repeated triggers (verification passing, an operator
//! approving, the enterprise confirming, retries) produce one row. Ledger postings, payouts
//! and invoices attach to that row later.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::ApiResult;
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
}

impl TaxMethod {
    /// The name used in configuration and on settlements.
    pub fn as_str(self) -> &'static str {
        match self {
            TaxMethod::PerPayment2018 => "per_payment_2018",
        }
    }
}

/// Dated tax rules; the first whose range contains the payment date applies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TaxConfig {
    pub rules: Vec<TaxRule>,
}

impl Default for TaxConfig {
    fn default() -> Self {
        let rule = TaxRule {
            method: TaxMethod::PerPayment2018,
            effective_from: "2019-01-01".into(),
            effective_to: String::new(),
        };
        Self { rules: vec![rule] }
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
    const YUAN: i64 = 100;
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

/// Division of non-negative integers rounding half up.
fn div_round(numerator: i64, denominator: i64) -> i64 {
    (numerator + denominator / 2) / denominator
}

/// A settlement as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Settlement {
    pub id: String,
    pub order_id: String,
    pub worker_id: String,
    pub enterprise_id: String,
    pub gross_fen: i64,
    pub tax_fen: i64,
    pub net_fen: i64,
    pub tax_method: String,
    pub status: String,
    pub created_at_ms: i64,
}

/// Creates the order's settlement if every condition holds and none exists yet.
/// Returns whether this call created it.
pub async fn try_settle(state: &AppState, order_id: &str) -> ApiResult<bool> {
    let fee = sqlx::query(
        "SELECT t.fee_fen FROM orders o JOIN tasks t ON t.id = o.task_id WHERE o.id = $1",
    )
    .bind(order_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(fee) = fee else { return Ok(false) };
    let gross: i64 = fee.try_get("fee_fen")?;

    let today = crate::shanghai_date(now_ms());
    let Some(method) = state.config.tax.method_on(&today) else {
        tracing::error!(order_id, date = %today, "no tax rule covers today; settlement waits");
        return Ok(false);
    };
    let tax = match method {
        TaxMethod::PerPayment2018 => per_payment_tax_fen(gross),
    };

    let created = insert_if_ready(state, order_id, gross, tax, method.as_str()).await?;
    if created {
        tracing::info!(
            order_id,
            gross_fen = gross,
            tax_fen = tax,
            "settlement created"
        );
    }
    Ok(created)
}

async fn insert_if_ready(
    state: &AppState,
    order_id: &str,
    gross: i64,
    tax: i64,
    method: &str,
) -> ApiResult<bool> {
    let result = sqlx::query(
        "INSERT INTO settlements \
           (id, order_id, worker_id, enterprise_id, gross_fen, tax_fen, net_fen, tax_method, \
            status, created_at) \
         SELECT $1, o.id, o.worker_id, o.enterprise_id, $2, $3, $4, $5, 'pending_payout', $6 \
         FROM orders o \
         WHERE o.id = $7 \
           AND o.submitted_at IS NOT NULL \
           AND o.needs_verification = 0 \
           AND o.confirmation = 'confirmed' \
           AND ((o.verdict = 'passed' AND o.operator_decision IS NULL) \
                OR (o.verdict = 'needs_review' AND o.operator_decision = 'approved')) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(new_id())
    .bind(gross)
    .bind(tax)
    .bind(gross - tax)
    .bind(method)
    .bind(now_ms())
    .bind(order_id)
    .execute(&state.db.pool)
    .await?;

    Ok(result.rows_affected() == 1)
}

/// The order's settlement, if there is one.
pub async fn for_order(state: &AppState, order_id: &str) -> ApiResult<Option<Settlement>> {
    let row = sqlx::query("SELECT * FROM settlements WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&state.db.pool)
        .await?;
    row.map(|r| from_row(&r)).transpose()
}

fn from_row(row: &sqlx::any::AnyRow) -> ApiResult<Settlement> {
    Ok(Settlement {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        worker_id: row.try_get("worker_id")?,
        enterprise_id: row.try_get("enterprise_id")?,
        gross_fen: row.try_get("gross_fen")?,
        tax_fen: row.try_get("tax_fen")?,
        net_fen: row.try_get("net_fen")?,
        tax_method: row.try_get("tax_method")?,
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
            config.method_on("2026-12-04"),
            Some(TaxMethod::PerPayment2018)
        );
        assert_eq!(config.method_on("2018-06-01"), None);
    }
}

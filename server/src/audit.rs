//! The security audit trail (standard 6.1 a).
//!
//! Every security-relevant event — sign-in and failed sign-in, sign-out, two-factor changes,
//! account creation and suspension, review decisions, reveals of personal data, exports —
//! is one row: when (UTC milliseconds), who (account and role, when known), what, on which
//! object, with what result, and from which address. Rows are only ever inserted: database
//! triggers refuse any change, and any deletion of a row younger than the retention period
//! (183 days), whatever tool issues it. [`purge`] removes older rows on request.
//!
//! Details never carry personal data in the clear: logins of failed sign-ins are kept, but
//! passwords, codes and tokens never are.

use serde::Serialize;
use sqlx::Row;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, new_id, now_ms, rfc3339};

/// Days an audit record is kept at least; the database refuses to delete younger ones.
pub const RETENTION_DAYS: i64 = 183;

/// Longest reason kept with an audited action, in characters.
pub const MAX_REASON_CHARS: usize = 2_000;

/// A reason given for an audited action, trimmed: it must say something (at least
/// `min_chars` characters, one of them a letter or digit) and fit the trail.
pub fn reason(text: &str, min_chars: usize) -> ApiResult<&str> {
    let text = text.trim();
    let count = text.chars().count();
    if count < min_chars.max(1) || !text.chars().any(char::is_alphanumeric) {
        let message = format!(
            "give a reason of at least {} characters; it is kept in the audit trail",
            min_chars.max(1)
        );
        return Err(ApiError::bad_request("reason_required", message).field("reason"));
    }
    if count > MAX_REASON_CHARS {
        let message = format!("a reason is at most {MAX_REASON_CHARS} characters");
        return Err(ApiError::bad_request("reason_too_long", message).field("reason"));
    }
    Ok(text)
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Refused,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
        }
    }
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct Event {
    pub actor_id: Option<String>,
    pub actor_role: Option<&'static str>,
    pub action: &'static str,
    pub object: Option<String>,
    pub outcome: Outcome,
    pub detail: Option<serde_json::Value>,
    pub address: Option<String>,
}

impl Event {
    /// An event done by `caller`.
    pub fn by(caller: &Caller, action: &'static str, outcome: Outcome) -> Self {
        Self {
            actor_id: Some(caller.account_id.clone()),
            actor_role: Some(caller.role.as_str()),
            action,
            object: None,
            outcome,
            detail: None,
            address: caller.address.clone(),
        }
    }

    /// An event whose actor is not (yet) known, such as a failed sign-in.
    pub fn anonymous(action: &'static str, outcome: Outcome) -> Self {
        Self {
            actor_id: None,
            actor_role: None,
            action,
            object: None,
            outcome,
            detail: None,
            address: None,
        }
    }

    pub fn object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn address(mut self, address: Option<String>) -> Self {
        self.address = address;
        self
    }
}

/// Records `event`. A failure to record is an error of the action itself: nothing
/// security-relevant happens unrecorded.
pub async fn record(state: &AppState, event: Event) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO audit_log \
           (id, at, actor_id, actor_role, action, object, result, detail, address) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id())
    .bind(now_ms())
    .bind(event.actor_id)
    .bind(event.actor_role)
    .bind(event.action)
    .bind(event.object)
    .bind(event.outcome.as_str())
    .bind(event.detail.map(|d| redact(d).to_string()))
    .bind(event.address)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// Masks long numbers in every text of a detail: reasons are typed by people and may carry an
/// ID, card or phone number, which must not sit in a trail nobody may delete for months.
fn redact(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(crate::identity::redact_numbers(&text)),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, redact(v))).collect()),
        other => other,
    }
}

/// One audit record as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Record {
    pub at: String,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub object: Option<String>,
    pub result: String,
    pub detail: Option<serde_json::Value>,
    pub address: Option<String>,
}

/// The newest records first, optionally of one actor or one action, at most `limit`.
pub async fn list(
    state: &AppState,
    actor: Option<&str>,
    action: Option<&str>,
    limit: i64,
) -> ApiResult<Vec<Record>> {
    let rows = sqlx::query(
        "SELECT at, actor_id, actor_role, action, object, result, detail, address \
         FROM audit_log \
         WHERE ($1 = '' OR actor_id = $1) AND ($2 = '' OR action = $2) \
         ORDER BY at DESC LIMIT $3",
    )
    .bind(actor.unwrap_or_default())
    .bind(action.unwrap_or_default())
    .bind(limit.clamp(1, 1_000))
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let detail: Option<String> = r.try_get("detail")?;
            Ok(Record {
                at: rfc3339(r.try_get("at")?),
                actor_id: r.try_get("actor_id")?,
                actor_role: r.try_get("actor_role")?,
                action: r.try_get("action")?,
                object: r.try_get("object")?,
                result: r.try_get("result")?,
                detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                address: r.try_get("address")?,
            })
        })
        .collect()
}

/// Deletes records older than `days` days; refuses anything under the retention period.
pub async fn purge(state: &AppState, days: i64) -> ApiResult<u64> {
    if days < RETENTION_DAYS {
        let message =
            format!("audit records are kept at least {RETENTION_DAYS} days; purge only older ones");
        return Err(ApiError::bad_request("retention_period", message));
    }
    let cutoff = now_ms() - days * 86_400_000;
    let done = sqlx::query("DELETE FROM audit_log WHERE at < $1")
        .bind(cutoff)
        .execute(&state.db.pool)
        .await?;
    Ok(done.rows_affected())
}

//! The operator's review of a submitted task (standard 4.2.2): is the task genuine, and is
//! it flexible work one person can do? The reviewer records how they checked (a phone call,
//! a visit, a lookup in public records), sees the automated capacity warnings, and publishes
//! or refuses with a reason code. Every decision is a row of `task_reviews` and an entry in
//! the audit trail; the enterprise sees the history on `GET /tasks/{id}`.

use std::str::FromStr;

use axum::Json;
use axum::extract::{Path, State};
use flexwork_sync::{ContentHash, ErrorBody};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::JsonBody;
use super::tasks::{CapacityWarning, Task, TaskStatus, illegal, transition, visible_task};
use crate::audit::{self, Event, Outcome};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, new_id, now_ms, rfc3339};

/// How a reviewer checked that a task and its enterprise are genuine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Called the enterprise's contact.
    PhoneCall,
    /// Went to the site or the enterprise.
    Visit,
    /// Looked the enterprise or the work up in public records.
    Lookup,
}

/// One authenticity check a reviewer made.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthenticityCheck {
    pub kind: CheckKind,
    /// What was checked and found, 5 to 2000 characters. Long numbers in it (a phone number
    /// called) are masked when stored.
    pub note: String,
    /// Hashes (SHA-256, hex) of files already stored on the platform that back the check,
    /// such as a photo of the site or a document an enterprise uploaded.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// Why a task was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The work is employment, not flexible work.
    NotFlexibleWork,
    /// The work is beyond what one person can do in the window under the rest rules.
    BeyondOnePerson,
    /// The task or its enterprise could not be confirmed as genuine.
    NotGenuine,
    Other,
}

/// `POST /tasks/{id}/review` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TaskReviewDecision {
    /// `publish` or `refuse`.
    pub decision: String,
    /// The checks made; publishing needs at least one.
    #[serde(default)]
    pub checks: Vec<AuthenticityCheck>,
    /// Needed to refuse.
    pub reason_code: Option<RefusalCode>,
    /// Needed to refuse (at least 5 characters); a note when publishing.
    #[serde(default)]
    pub reason: String,
}

/// One review decision, as the task's history shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskReview {
    pub id: String,
    pub reviewer_id: String,
    /// `published` or `refused`.
    pub decision: String,
    pub reason_code: Option<String>,
    pub reason: String,
    pub checks: Vec<AuthenticityCheck>,
    /// The automated capacity warnings the reviewer saw.
    pub capacity_warnings: Vec<CapacityWarning>,
    pub created_at: String,
}

/// Most checks one review records.
const MAX_CHECKS: usize = 20;

/// Publishes or refuses a submitted task.
///
/// Publishing needs at least one authenticity check (`phone_call`, `visit` or `lookup`, a
/// note, optionally hashes of files already stored); refusing needs a `reason_code`
/// (`not_flexible_work`, `beyond_one_person`, `not_genuine`, `other`) and a reason. The
/// automated capacity warnings of the task (also on `GET /tasks?status=submitted`) are kept
/// with the decision. Audited.
///
/// Who may call: Permission `review_tasks`: operators in the reviewer team.
#[utoipa::path(
    post,
    path = "/tasks/{id}/review",
    operation_id = "review_task",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    request_body = TaskReviewDecision,
    responses(
        (status = 200, description = "The task, published or refused, with its reviews",
            body = Task),
        (status = 400, description = "`invalid_decision`, `authenticity_check_required`, \
            `invalid_check`, `unknown_evidence`, `reason_code_required`, `reason_required`, \
            `reason_too_long`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a reviewer", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task", body = ErrorBody),
        (status = 409, description = "`task_not_submitted`: only a submitted task is reviewed",
            body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TaskReviewDecision>,
) -> ApiResult<Json<Task>> {
    caller.require(Permission::ReviewTasks)?;
    let to = match body.decision.as_str() {
        "publish" => TaskStatus::Published,
        "refuse" => TaskStatus::Refused,
        _ => {
            let message = "decision is publish or refuse";
            return Err(ApiError::bad_request("invalid_decision", message));
        }
    };
    let checks = validate_checks(&state, &body.checks).await?;
    let (reason_code, reason) = match to {
        TaskStatus::Published => {
            if checks.is_empty() {
                let message = "record at least one authenticity check (a phone call, a visit \
                               or a lookup, with a note) before publishing";
                return Err(ApiError::bad_request(
                    "authenticity_check_required",
                    message,
                ));
            }
            let note = match body.reason.trim() {
                "" => String::new(),
                text => audit::reason(text, 1)?.to_owned(),
            };
            (None, note)
        }
        _ => {
            let code = body.reason_code.ok_or_else(|| {
                let message = "give a reason_code to refuse: not_flexible_work, \
                               beyond_one_person, not_genuine or other";
                ApiError::bad_request("reason_code_required", message)
            })?;
            (Some(code), audit::reason(&body.reason, 5)?.to_owned())
        }
    };
    let reason = crate::identity::redact_numbers(&reason);
    let code_word = reason_code.map(|c| json_word(&c));

    let task = visible_task(&state, &caller, &id).await?;
    if task.status != TaskStatus::Submitted {
        let what = "only a submitted task is reviewed";
        return Err(illegal(&task, "task_not_submitted", what));
    }
    let warnings = task.capacity_warnings.clone();

    let mut tx = state.db.begin_write().await?;
    let status_reason = (to == TaskStatus::Refused).then_some(reason.as_str());
    if !transition(&mut tx, &id, &[TaskStatus::Submitted], to, status_reason).await? {
        let message = "this task is no longer waiting for review";
        return Err(ApiError::conflict("task_not_submitted", message));
    }
    sqlx::query(
        "INSERT INTO task_reviews (id, task_id, reviewer_id, decision, reason_code, reason, \
         checks, warnings, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id())
    .bind(&id)
    .bind(&caller.account_id)
    .bind(to.as_str())
    .bind(code_word.clone())
    .bind(&reason)
    .bind(serde_json::to_string(&checks).map_err(ApiError::internal)?)
    .bind(serde_json::to_string(&warnings).map_err(ApiError::internal)?)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    let kinds: Vec<String> = checks.iter().map(|c| json_word(&c.kind)).collect();
    let warned: Vec<&str> = warnings.iter().map(|w| w.code.as_str()).collect();
    let event = Event::by(&caller, "task_reviewed", Outcome::Ok)
        .object(format!("task:{id}"))
        .detail(serde_json::json!({
            "decision": to.as_str(), "reason_code": code_word, "reason": reason,
            "checks": kinds, "capacity_warnings": warned,
        }));
    audit::record(&state, event).await?;
    tracing::info!(task_id = %id, decision = to.as_str(), "operator reviewed task");

    let mut task = visible_task(&state, &caller, &id).await?;
    task.reviews = Some(history(&state, &id).await?);
    Ok(Json(task))
}

/// The snake_case word serde gives a unit variant.
fn json_word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Checks the notes and that every evidence hash names a stored file; masks long numbers in
/// the notes.
async fn validate_checks(
    state: &AppState,
    checks: &[AuthenticityCheck],
) -> ApiResult<Vec<AuthenticityCheck>> {
    if checks.len() > MAX_CHECKS {
        let message = format!("at most {MAX_CHECKS} checks go with one review");
        return Err(ApiError::bad_request("invalid_check", message));
    }
    let mut out = Vec::with_capacity(checks.len());
    for check in checks {
        let note = check.note.trim();
        let count = note.chars().count();
        if !(5..=audit::MAX_REASON_CHARS).contains(&count)
            || !note.chars().any(char::is_alphanumeric)
        {
            let message = "each check needs a note of 5 to 2000 characters saying what was \
                           checked and found";
            return Err(ApiError::bad_request("invalid_check", message));
        }
        if check.evidence.len() > MAX_CHECKS {
            let message = format!("at most {MAX_CHECKS} files back one check");
            return Err(ApiError::bad_request("invalid_check", message));
        }
        let mut evidence = Vec::with_capacity(check.evidence.len());
        for hash in &check.evidence {
            let hash = ContentHash::from_str(hash.trim()).map_err(|_| {
                let message = "evidence is given as the SHA-256 hashes (64 hex digits) of files \
                               already stored";
                ApiError::bad_request("invalid_check", message)
            })?;
            let stored = sqlx::query("SELECT hash FROM media_objects WHERE hash = $1")
                .bind(hash.to_hex())
                .fetch_optional(&state.db.pool)
                .await?;
            if stored.is_none() {
                let message = format!("no stored file has the hash {hash}; upload it first");
                return Err(ApiError::bad_request("unknown_evidence", message));
            }
            evidence.push(hash.to_hex());
        }
        out.push(AuthenticityCheck {
            kind: check.kind,
            note: crate::identity::redact_numbers(note),
            evidence,
        });
    }
    Ok(out)
}

/// A task's reviews, oldest first.
pub async fn history(state: &AppState, task_id: &str) -> ApiResult<Vec<TaskReview>> {
    let rows = sqlx::query("SELECT * FROM task_reviews WHERE task_id = $1 ORDER BY created_at")
        .bind(task_id)
        .fetch_all(&state.db.pool)
        .await?;
    rows.iter()
        .map(|row| {
            let checks: String = row.try_get("checks")?;
            let warnings: String = row.try_get("warnings")?;
            Ok(TaskReview {
                id: row.try_get("id")?,
                reviewer_id: row.try_get("reviewer_id")?,
                decision: row.try_get("decision")?,
                reason_code: row.try_get("reason_code")?,
                reason: row.try_get("reason")?,
                checks: serde_json::from_str(&checks).map_err(ApiError::internal)?,
                capacity_warnings: serde_json::from_str(&warnings).map_err(ApiError::internal)?,
                created_at: rfc3339(row.try_get("created_at")?),
            })
        })
        .collect()
}

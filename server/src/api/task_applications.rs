//! Workers applying for published tasks, and the enterprise (or a reviewer) accepting them,
//! which forms the order (standard 4.2.3).
//!
//! A worker applies from their phone (device-signed), declaring their skills, their
//! qualifications and whether they meet the task's health requirements. The declaration is
//! checked against the task at once, and the latest one is kept: direct assignment by the
//! enterprise checks the same declaration.

use axum::Json;
use axum::extract::{Path, State};
use flexwork_sync::ErrorBody;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::JsonBody;
use super::tasks::{Task, TaskStatus, clean_list, form_order, illegal, order_formed, same_name};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, new_id, now_ms, rfc3339};

/// What a worker says about themself when applying.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Declaration {
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub qualifications: Vec<String>,
    /// The worker attests meeting the task's health requirements.
    #[serde(default)]
    pub health_attested: bool,
}

/// An application as the enterprise and operators see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApplicationView {
    pub id: String,
    pub task_id: String,
    pub worker_id: String,
    #[serde(flatten)]
    pub declaration: Declaration,
    /// `pending` or `accepted`.
    pub status: String,
    /// The order formed on acceptance.
    pub order_id: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
}

/// The worker's latest declaration; an empty one if they never applied.
pub async fn declared(state: &AppState, worker_id: &str) -> ApiResult<Declaration> {
    let row = sqlx::query("SELECT * FROM worker_declarations WHERE worker_id = $1")
        .bind(worker_id)
        .fetch_optional(&state.db.pool)
        .await?;
    let Some(row) = row else {
        return Ok(Declaration::default());
    };
    declaration_from_row(&row)
}

fn declaration_from_row(row: &sqlx::any::AnyRow) -> ApiResult<Declaration> {
    let list = |column: &str| -> ApiResult<Vec<String>> {
        let stored: String = row.try_get(column)?;
        serde_json::from_str(&stored).map_err(ApiError::internal)
    };
    Ok(Declaration {
        skills: list("skills")?,
        qualifications: list("qualifications")?,
        health_attested: row.try_get::<i64, _>("health_attested")? != 0,
    })
}

/// Refuses a worker who lacks a skill or qualification the task requires, or has not
/// attested its health requirements: 409 `requirements_not_met` naming what is missing.
pub fn check_eligible(task: &Task, declared: &Declaration) -> ApiResult<()> {
    let lacking = |required: &Option<Vec<String>>, have: &[String]| -> Vec<String> {
        required
            .iter()
            .flatten()
            .filter(|r| !have.iter().any(|h| same_name(h, r)))
            .cloned()
            .collect()
    };
    let skills = lacking(&task.details.skills, &declared.skills);
    let qualifications = lacking(&task.details.qualifications, &declared.qualifications);
    let health = task
        .details
        .health_requirements
        .as_ref()
        .filter(|h| !h.is_empty() && !declared.health_attested);

    let mut missing = Vec::new();
    if !skills.is_empty() {
        missing.push(format!("skills: {}", skills.join(", ")));
    }
    if !qualifications.is_empty() {
        missing.push(format!("qualifications: {}", qualifications.join(", ")));
    }
    if let Some(health) = health {
        missing.push(format!(
            "a health attestation (the task requires: {})",
            health.join(", ")
        ));
    }
    if missing.is_empty() {
        return Ok(());
    }
    let message = format!(
        "the worker does not meet this task's requirements; missing {}",
        missing.join("; ")
    );
    Err(ApiError::conflict("requirements_not_met", message))
}

/// Loads a task a worker may apply for: it exists; whether it is published is checked by
/// the caller.
async fn task_for_worker(state: &AppState, id: &str) -> ApiResult<Task> {
    let row = sqlx::query("SELECT * FROM tasks WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("task"))?;
    let task = super::tasks::task_from_row(&row)?;
    // Drafts and tasks under review are not the public's to know of.
    if matches!(task.status, TaskStatus::Draft | TaskStatus::Submitted) {
        return Err(ApiError::not_found("task"));
    }
    Ok(task)
}

/// Applies for a published task, declaring skills, qualifications and health.
///
/// The declaration is checked against the task's requirements at once; a worker lacking any
/// is refused with `requirements_not_met` naming what is missing. The declaration is kept as
/// the worker's latest (an enterprise assigning them directly is checked against it). One
/// application per worker and task.
///
/// Who may call: Permission `apply_for_tasks`: workers, from their registered phone (the
/// request is signed with the device key).
#[utoipa::path(
    post,
    path = "/tasks/{id}/applications",
    operation_id = "apply_for_task",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    request_body = Declaration,
    responses(
        (status = 200, description = "The application, pending", body = ApplicationView),
        (status = 400, description = "`invalid_skills`, `invalid_qualifications`; \
            `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`; `device_credential_required`: a \
            worker's bearer token instead of the phone's signature", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a worker", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task, or not published yet",
            body = ErrorBody),
        (status = 409, description = "`task_not_published`, `requirements_not_met`, \
            `already_applied`, `conflict_of_interest`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Declaration>,
) -> ApiResult<Json<ApplicationView>> {
    caller.require(Permission::ApplyForTasks)?;
    let declaration = Declaration {
        skills: clean_list(&body.skills, "invalid_skills", "skills")?,
        qualifications: clean_list(
            &body.qualifications,
            "invalid_qualifications",
            "qualifications",
        )?,
        health_attested: body.health_attested,
    };
    let task = task_for_worker(&state, &id).await?;
    if task.status != TaskStatus::Published {
        let what = "only a published task takes applications";
        return Err(illegal(&task, "task_not_published", what));
    }
    let worker_id = caller.account_id.clone();
    let skills = serde_json::to_string(&declaration.skills).map_err(ApiError::internal)?;
    let qualifications =
        serde_json::to_string(&declaration.qualifications).map_err(ApiError::internal)?;
    let attested = i64::from(declaration.health_attested);
    let now = now_ms();
    sqlx::query(
        "INSERT INTO worker_declarations \
           (worker_id, skills, qualifications, health_attested, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (worker_id) DO UPDATE SET \
           skills = excluded.skills, qualifications = excluded.qualifications, \
           health_attested = excluded.health_attested, updated_at = excluded.updated_at",
    )
    .bind(&worker_id)
    .bind(&skills)
    .bind(&qualifications)
    .bind(attested)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    check_eligible(&task, &declaration)?;
    crate::enterprises::refuse_conflict(&state, &task.enterprise_id, &worker_id).await?;

    let application_id = new_id();
    let result = sqlx::query(
        "INSERT INTO task_applications (id, task_id, worker_id, skills, qualifications, \
         health_attested, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) \
         ON CONFLICT (task_id, worker_id) DO NOTHING",
    )
    .bind(&application_id)
    .bind(&id)
    .bind(&worker_id)
    .bind(&skills)
    .bind(&qualifications)
    .bind(attested)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    if result.rows_affected() == 0 {
        let message = "you have already applied for this task";
        return Err(ApiError::conflict("already_applied", message));
    }
    tracing::info!(task_id = %id, application_id, "worker applied for task");
    view(&state, &application_id).await.map(Json)
}

async fn view(state: &AppState, application_id: &str) -> ApiResult<ApplicationView> {
    let row = sqlx::query("SELECT * FROM task_applications WHERE id = $1")
        .bind(application_id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("application"))?;
    view_from_row(&row)
}

fn view_from_row(row: &sqlx::any::AnyRow) -> ApiResult<ApplicationView> {
    Ok(ApplicationView {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        worker_id: row.try_get("worker_id")?,
        declaration: declaration_from_row(row)?,
        status: row.try_get("status")?,
        order_id: row.try_get("order_id")?,
        created_at: rfc3339(row.try_get("created_at")?),
        decided_at: row.try_get::<Option<i64>, _>("decided_at")?.map(rfc3339),
    })
}

/// The applications for a task, oldest first.
///
/// Who may call: the task's enterprise (administrators and staff), and holders of Permission
/// `read_all_work`: operators in the reviewer, risk, finance, legal, welfare, support or regulator
/// liaison team, and regulators.
#[utoipa::path(
    get,
    path = "/tasks/{id}/applications",
    operation_id = "list_task_applications",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The applications", body = Vec<ApplicationView>),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: an operator whose teams read no work",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such task, or not the caller's to see",
            body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ApplicationView>>> {
    let task = super::tasks::visible_task(&state, &caller, &id).await?;
    let rows =
        sqlx::query("SELECT * FROM task_applications WHERE task_id = $1 ORDER BY created_at")
            .bind(&task.id)
            .fetch_all(&state.db.pool)
            .await?;
    rows.iter()
        .map(view_from_row)
        .collect::<ApiResult<_>>()
        .map(Json)
}

/// Accepts a pending application: the order is formed, and the task closes when its
/// headcount is reached.
///
/// Who may call: Permission `publish_tasks`: the task's enterprise, administrators and staff;
/// and Permission `review_tasks`: operators in the reviewer team, on the enterprise's behalf.
#[utoipa::path(
    post,
    path = "/tasks/{id}/applications/{application_id}/accept",
    operation_id = "accept_task_application",
    tag = "tasks",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The task's id"),
        ("application_id" = String, Path, description = "The application's id"),
    ),
    responses(
        (status = 200, description = "The new order", body = super::orders::OrderView),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither an enterprise account nor a reviewer",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such task (or not the caller's) or \
            application", body = ErrorBody),
        (status = 409, description = "`application_not_pending`, `task_not_published`, \
            `already_assigned`, `conflict_of_interest`", body = ErrorBody),
    ),
)]
pub async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, application_id)): Path<(String, String)>,
) -> ApiResult<Json<super::orders::OrderView>> {
    if !caller.can(Permission::PublishTasks) {
        caller.require(Permission::ReviewTasks)?;
    }
    let task = super::tasks::visible_task(&state, &caller, &id).await?;
    let application = view(&state, &application_id).await?;
    if application.task_id != task.id {
        return Err(ApiError::not_found("application"));
    }
    if application.status != "pending" {
        let message = format!("this application is {} already", application.status);
        return Err(ApiError::conflict("application_not_pending", message));
    }
    if task.status != TaskStatus::Published {
        let what = "applications are accepted only while the task is published";
        return Err(illegal(&task, "task_not_published", what));
    }
    crate::enterprises::refuse_conflict(&state, &task.enterprise_id, &application.worker_id)
        .await?;

    let mut tx = state.db.begin_write().await?;
    let decided = sqlx::query(
        "UPDATE task_applications SET status = 'accepted', decided_by = $1, decided_at = $2 \
         WHERE id = $3 AND status = 'pending'",
    )
    .bind(&caller.account_id)
    .bind(now_ms())
    .bind(&application_id)
    .execute(&mut *tx)
    .await?;
    if decided.rows_affected() == 0 {
        let message = "this application was decided meanwhile";
        return Err(ApiError::conflict("application_not_pending", message));
    }
    let order_id = form_order(&mut tx, &task, &application.worker_id).await?;
    sqlx::query("UPDATE task_applications SET order_id = $1 WHERE id = $2")
        .bind(&order_id)
        .bind(&application_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    order_formed(&state, &caller, &task, &order_id, "application").await?;
    super::orders::view(&state, &order_id).await.map(Json)
}

//! The operators' work queues at a glance: how much waits, and since when.

use axum::Json;
use axum::extract::State;
use flexwork_sync::ErrorBody;
use serde::Serialize;
use sqlx::Row;

use crate::auth::{Caller, Permission};
use crate::error::ApiResult;
use crate::{AppState, now_ms, rfc3339};

/// The queues the caller may work or read; a section the caller's teams do not handle is
/// absent.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Queues {
    /// Workers' applications waiting for a decision (reviewer team).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_applications: Option<ApplicationQueue>,
    /// Enterprises' applications waiting for a decision (reviewer team).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise_applications: Option<ApplicationQueue>,
    /// Tasks submitted for review (reviewer team).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks_to_review: Option<TaskQueue>,
    /// Orders whose verdict is `needs_review` and that no operator decided on (reviewer team).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_to_review: Option<EvidenceQueue>,
    /// Orders sent back to their workers (reviewer team).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returned: Option<Count>,
    /// Orders whose completion the enterprise disputed, and disputed statements (reviewer
    /// and finance teams).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disputes: Option<Count>,
}

/// Applications waiting, against their two-working-day deadline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApplicationQueue {
    pub count: i64,
    /// Past their deadline.
    pub overdue: i64,
    /// The nearest deadline among them.
    pub next_deadline: Option<String>,
}

/// Tasks waiting for review.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskQueue {
    pub count: i64,
    pub oldest_submitted_at: Option<String>,
}

/// Evidence waiting for an operator.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EvidenceQueue {
    pub count: i64,
    /// When the longest-waiting one was verified.
    pub oldest: Option<String>,
}

/// How many.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Count {
    pub count: i64,
}

/// Counts for the console's front page: applications with their deadlines, tasks to review,
/// evidence to review, orders sent back, disputes. Only the sections the caller's teams work
/// are present.
///
/// Who may call: operators holding Permission `review_applications`, `review_tasks` or
/// `review_evidence` (operators in the reviewer team) or `resolve_statements` (operators in the
/// finance team); each section needs its own.
#[utoipa::path(
    get,
    path = "/queues",
    operation_id = "operator_queues",
    tag = "orders",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The queues", body = Queues),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller works none of these queues",
            body = ErrorBody),
    ),
)]
pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Queues>> {
    let applications = caller.can(Permission::ReviewApplications);
    let tasks = caller.can(Permission::ReviewTasks);
    let evidence = caller.can(Permission::ReviewEvidence);
    let disputes = evidence || caller.can(Permission::ResolveStatements);
    if !(applications || tasks || evidence || disputes) {
        return Err(crate::error::ApiError::forbidden(
            "the work queues are for the reviewer and finance teams",
        ));
    }
    let mut queues = Queues::default();
    if applications {
        queues.worker_applications = Some(application_queue(&state, "worker_applications").await?);
        queues.enterprise_applications =
            Some(application_queue(&state, "enterprise_applications").await?);
    }
    if tasks {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(status_changed_at) AS oldest FROM tasks \
             WHERE status = 'submitted'",
        )
        .fetch_one(&state.db.pool)
        .await?;
        queues.tasks_to_review = Some(TaskQueue {
            count: row.try_get("n")?,
            oldest_submitted_at: row.try_get::<Option<i64>, _>("oldest")?.map(rfc3339),
        });
    }
    if evidence {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(o.verified_at) AS oldest FROM orders o \
             WHERE o.verdict = 'needs_review' AND o.operator_decision IS NULL \
             AND o.needs_verification = 0 AND o.cancelled_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM statements s WHERE s.order_id = o.id) \
             AND NOT EXISTS (SELECT 1 FROM settlements t WHERE t.order_id = o.id)",
        )
        .fetch_one(&state.db.pool)
        .await?;
        queues.evidence_to_review = Some(EvidenceQueue {
            count: row.try_get("n")?,
            oldest: row.try_get::<Option<i64>, _>("oldest")?.map(rfc3339),
        });
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM orders WHERE operator_decision = 'has_issues' \
             AND cancelled_at IS NULL",
        )
        .fetch_one(&state.db.pool)
        .await?;
        queues.returned = Some(Count {
            count: row.try_get("n")?,
        });
    }
    if disputes {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM orders o WHERE o.confirmation = 'disputed' \
               AND o.cancelled_at IS NULL \
               AND NOT EXISTS (SELECT 1 FROM statements s WHERE s.order_id = o.id)) \
             + (SELECT COUNT(*) FROM statements WHERE status = 'disputed') AS n",
        )
        .fetch_one(&state.db.pool)
        .await?;
        queues.disputes = Some(Count {
            count: row.try_get("n")?,
        });
    }
    Ok(Json(queues))
}

async fn application_queue(state: &AppState, table: &'static str) -> ApiResult<ApplicationQueue> {
    let sql = format!(
        "SELECT COUNT(*) AS n, \
           CAST(COALESCE(SUM(CASE WHEN deadline_at < $1 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             AS overdue, \
           MIN(deadline_at) AS next_deadline \
         FROM {table} WHERE state = 'pending'"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now_ms())
        .fetch_one(&state.db.pool)
        .await?;
    Ok(ApplicationQueue {
        count: row.try_get("n")?,
        overdue: row.try_get("overdue")?,
        next_deadline: row.try_get::<Option<i64>, _>("next_deadline")?.map(rfc3339),
    })
}

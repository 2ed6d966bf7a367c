//! Tasks (what an enterprise wants done, where and when) and assigning them to workers.

use axum::Json;
use axum::extract::{Path, State};
use flexwork_sync::{ErrorBody, RequirementsSpec, SiteSpec, WindowSpec};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::JsonBody;
use crate::auth::{Caller, Permission, WorkScope};
use crate::error::{ApiError, ApiResult};
use crate::verify::{Context, Requirements, Site, Window};
use crate::{AppState, new_id, now_ms};

/// A task as stored and shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Task {
    pub id: String,
    pub enterprise_id: String,
    pub title: String,
    pub description: String,
    /// WGS-84.
    pub site: SiteSpec,
    pub window: WindowSpec,
    pub fee_fen: i64,
    pub requirements: RequirementsSpec,
    pub created_at_ms: i64,
}

impl Task {
    /// What verification checks the evidence against.
    pub fn context(&self) -> Context {
        let site = Site {
            lat: self.site.lat,
            lon: self.site.lon,
            radius_m: self.site.radius_m,
        };
        let window = Window {
            from: from_ms(self.window.from_ms),
            to: from_ms(self.window.to_ms),
        };
        let requirements = Requirements {
            min_photos: self.requirements.min_photos,
            track: self.requirements.track,
            signature: self.requirements.signature,
        };
        Context {
            site: Some(site),
            window: Some(window),
            requirements: Some(requirements),
        }
    }
}

fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Which coordinate system a site was entered in.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Crs {
    /// GPS coordinates.
    #[default]
    Wgs84,
    /// Coordinates read off a map published in China (offset from GPS by ~500 m).
    Gcj02,
}

/// `POST /tasks` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewTask {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub site_lat: f64,
    pub site_lon: f64,
    pub site_radius_m: f64,
    #[serde(default)]
    pub site_crs: Crs,
    /// RFC 3339.
    pub window_from: String,
    /// RFC 3339.
    pub window_to: String,
    pub fee_fen: i64,
    #[serde(default = "one")]
    pub min_photos: u32,
    #[serde(default)]
    pub require_track: bool,
    #[serde(default)]
    pub require_signature: bool,
}

fn one() -> u32 {
    1
}

/// Publishes a task: work to be done, where, when and for what fee.
///
/// The site is a point and radius, in WGS-84 or, with `site_crs: "gcj02"`, as read off a map
/// published in China; it is stored in WGS-84. The window is two RFC 3339 times.
///
/// Who may call: Permission `publish_tasks`: enterprise accounts, administrators and staff; the
/// task belongs to their organisation.
#[utoipa::path(
    post,
    path = "/tasks",
    operation_id = "create_task",
    tag = "tasks",
    security(("bearer" = [])),
    request_body = NewTask,
    responses(
        (status = 200, description = "Published", body = Task),
        (status = 400, description = "`invalid_title`, `invalid_site`, `invalid_radius`, \
            `invalid_fee`, `invalid_requirements`, `invalid_window`; `invalid_json`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an enterprise account", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewTask>,
) -> ApiResult<Json<Task>> {
    caller.require(Permission::PublishTasks)?;
    let task = validate(&body, &caller.organisation_id)?;
    insert(&state, &task).await?;

    tracing::info!(task_id = %task.id, "task created");
    Ok(Json(task))
}

fn validate(body: &NewTask, enterprise_id: &str) -> ApiResult<Task> {
    let bad = |code, message: &str| Err(ApiError::bad_request(code, message));
    if body.title.trim().is_empty()
        || body.title.chars().count() > 200
        || !printable(&body.title)
        || !printable(&body.description)
    {
        return bad(
            "invalid_title",
            "a task needs a title of 1 to 200 characters",
        );
    }
    if !(-90.0..=90.0).contains(&body.site_lat) || !(-180.0..=180.0).contains(&body.site_lon) {
        return bad(
            "invalid_site",
            "the site's latitude or longitude is out of range",
        );
    }
    if !(10.0..=50_000.0).contains(&body.site_radius_m) {
        return bad("invalid_radius", "the site's radius must be 10 m to 50 km");
    }
    if !(1..=100_000_000).contains(&body.fee_fen) {
        return bad(
            "invalid_fee",
            "the fee is a whole number of fen, from 1 to 1,000,000 CNY",
        );
    }
    if body.min_photos > 50 {
        return bad(
            "invalid_requirements",
            "a task can require at most 50 photos",
        );
    }
    let window = parse_window(&body.window_from, &body.window_to)?;

    let (lat, lon) = match body.site_crs {
        Crs::Wgs84 => (body.site_lat, body.site_lon),
        Crs::Gcj02 => crate::api::tasks::gcj02::to_wgs84(body.site_lat, body.site_lon),
    };
    Ok(Task {
        id: new_id(),
        enterprise_id: enterprise_id.to_owned(),
        title: body.title.trim().to_owned(),
        description: body.description.clone(),
        site: SiteSpec {
            lat,
            lon,
            radius_m: body.site_radius_m,
        },
        window,
        fee_fen: body.fee_fen,
        requirements: RequirementsSpec {
            min_photos: body.min_photos,
            track: body.require_track,
            signature: body.require_signature,
        },
        created_at_ms: now_ms(),
    })
}

/// Text without control characters or bidirectional overrides, which can make a title read
/// differently from what it says.
fn printable(text: &str) -> bool {
    let override_char = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    !text
        .chars()
        .any(|c| (c.is_control() && c != '\n') || override_char(c))
}

fn parse_window(from: &str, to: &str) -> ApiResult<WindowSpec> {
    let parse = |s: &str| {
        OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
            let message = format!("`{s}` is not an RFC 3339 time like 2026-12-04T09:00:00+08:00");
            ApiError::bad_request("invalid_window", message)
        })
    };
    let (from, to) = (parse(from)?, parse(to)?);
    if from >= to {
        let message = "the window must end after it starts";
        return Err(ApiError::bad_request("invalid_window", message));
    }

    let ms = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    Ok(WindowSpec {
        from_ms: ms(from),
        to_ms: ms(to),
    })
}

async fn insert(state: &AppState, task: &Task) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO tasks (id, enterprise_id, title, description, site_lat, site_lon, \
         site_radius_m, window_from, window_to, fee_fen, min_photos, require_track, \
         require_signature, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&task.id)
    .bind(&task.enterprise_id)
    .bind(&task.title)
    .bind(&task.description)
    .bind(task.site.lat)
    .bind(task.site.lon)
    .bind(task.site.radius_m)
    .bind(task.window.from_ms)
    .bind(task.window.to_ms)
    .bind(task.fee_fen)
    .bind(i64::from(task.requirements.min_photos))
    .bind(i64::from(task.requirements.track))
    .bind(i64::from(task.requirements.signature))
    .bind(task.created_at_ms)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

pub(crate) fn task_from_row(row: &sqlx::any::AnyRow) -> ApiResult<Task> {
    let min_photos: i64 = row.try_get("min_photos")?;
    Ok(Task {
        id: row.try_get("id")?,
        enterprise_id: row.try_get("enterprise_id")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        site: SiteSpec {
            lat: row.try_get("site_lat")?,
            lon: row.try_get("site_lon")?,
            radius_m: row.try_get("site_radius_m")?,
        },
        window: WindowSpec {
            from_ms: row.try_get("window_from")?,
            to_ms: row.try_get("window_to")?,
        },
        fee_fen: row.try_get("fee_fen")?,
        requirements: RequirementsSpec {
            min_photos: u32::try_from(min_photos).unwrap_or(0),
            track: row.try_get::<i64, _>("require_track")? != 0,
            signature: row.try_get::<i64, _>("require_signature")? != 0,
        },
        created_at_ms: row.try_get("created_at")?,
    })
}

/// Loads a task the caller may see: its enterprise, or an operator.
async fn visible_task(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Task> {
    let row = sqlx::query("SELECT * FROM tasks WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("task"))?;
    let task = task_from_row(&row)?;

    let visible = match caller.work_scope() {
        WorkScope::All => true,
        WorkScope::Organisation(organisation) => task.enterprise_id == organisation,
        WorkScope::Worker(_) => false,
        WorkScope::Nothing => return Err(Permission::ReadAllWork.refusal()),
    };
    if !visible {
        return Err(ApiError::not_found("task"));
    }
    Ok(task)
}

/// One task.
///
/// Who may call: the task's enterprise (administrators and staff), and holders of Permission
/// `read_all_work`: operators in the reviewer, risk, finance, legal, welfare, support or regulator
/// liaison team, and regulators.
#[utoipa::path(
    get,
    path = "/tasks/{id}",
    operation_id = "get_task",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: an operator whose teams read no work",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such task, or not the caller's to see",
            body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Task>> {
    Ok(Json(visible_task(&state, &caller, &id).await?))
}

/// Tasks, oldest first: an enterprise's own, or all of them.
///
/// Who may call: enterprise accounts (their organisation's tasks), and holders of Permission
/// `read_all_work` (every task): operators in the reviewer, risk, finance, legal, welfare, support
/// or regulator liaison team, and regulators. Workers see their tasks through sync.
#[utoipa::path(
    get,
    path = "/tasks",
    operation_id = "list_tasks",
    tag = "tasks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tasks", body = Vec<Task>),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: a worker, or an operator whose teams read \
            no work", body = ErrorBody),
    ),
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Task>>> {
    let rows = match caller.work_scope() {
        WorkScope::All => {
            sqlx::query("SELECT * FROM tasks ORDER BY created_at")
                .fetch_all(&state.db.pool)
                .await?
        }
        WorkScope::Organisation(organisation) => {
            sqlx::query("SELECT * FROM tasks WHERE enterprise_id = $1 ORDER BY created_at")
                .bind(organisation)
                .fetch_all(&state.db.pool)
                .await?
        }
        WorkScope::Worker(_) => {
            return Err(ApiError::forbidden("workers see their tasks through sync"));
        }
        WorkScope::Nothing => return Err(Permission::ReadAllWork.refusal()),
    };
    let tasks = rows.iter().map(task_from_row).collect::<ApiResult<_>>()?;
    Ok(Json(tasks))
}

/// `POST /tasks/{id}/orders` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Assignment {
    /// The worker's login.
    pub worker_login: String,
}

/// Assigns a worker to a task, creating an order.
///
/// One order per worker and task. A worker the enterprise declared among its managers cannot
/// take its tasks.
///
/// Who may call: Permission `publish_tasks`: the task's enterprise, administrators and staff.
#[utoipa::path(
    post,
    path = "/tasks/{id}/orders",
    operation_id = "assign_worker",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    request_body = Assignment,
    responses(
        (status = 200, description = "The new order", body = super::orders::OrderView),
        (status = 400, description = "`invalid_json`: the body is not JSON", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an enterprise account", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task (or not the caller's), or no \
            worker with that login", body = ErrorBody),
        (status = 409, description = "`already_assigned`, `conflict_of_interest`",
            body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Assignment>,
) -> ApiResult<Json<super::orders::OrderView>> {
    caller.require(Permission::PublishTasks)?;
    let task = visible_task(&state, &caller, &id).await?;
    let worker =
        sqlx::query("SELECT id FROM accounts WHERE LOWER(login) = LOWER($1) AND role = 'worker'")
            .bind(&body.worker_login)
            .fetch_optional(&state.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found("worker"))?;
    let worker_id: String = worker.try_get("id")?;
    crate::enterprises::refuse_conflict(&state, &task.enterprise_id, &worker_id).await?;

    let order_id = new_id();
    let result = sqlx::query(
        "INSERT INTO orders (id, task_id, worker_id, enterprise_id, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (task_id, worker_id) DO NOTHING",
    )
    .bind(&order_id)
    .bind(&task.id)
    .bind(&worker_id)
    .bind(&task.enterprise_id)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    if result.rows_affected() == 0 {
        let message = "this worker already has an order for this task";
        return Err(ApiError::conflict("already_assigned", message));
    }

    tracing::info!(order_id, task_id = %task.id, "order created");
    super::orders::view(&state, &order_id).await.map(Json)
}

/// The task an order belongs to.
pub async fn task_of_order(state: &AppState, order_id: &str) -> ApiResult<Task> {
    let row =
        sqlx::query("SELECT t.* FROM tasks t JOIN orders o ON o.task_id = t.id WHERE o.id = $1")
            .bind(order_id)
            .fetch_optional(&state.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found("order"))?;
    task_from_row(&row)
}

pub mod gcj02 {
    //! Converting coordinates read off maps published in China (GCJ-02) back to GPS (WGS-84).
    //!
    //! GCJ-02 is WGS-84 plus a published, deterministic, non-linear offset of a few hundred
    //! metres inside China (and none outside). The forward offset is known in closed form; the
    //! inverse is found by fixed-point iteration, which converges to well under a metre.

    use std::f64::consts::PI;

    const A: f64 = 6_378_245.0;
    const EE: f64 = 0.006_693_421_622_965_943;

    /// Rough bounding box of mainland China, outside which GCJ-02 equals WGS-84.
    fn in_china(lat: f64, lon: f64) -> bool {
        (72.004..=137.8347).contains(&lon) && (0.8293..=55.8271).contains(&lat)
    }

    fn offset_lat(x: f64, y: f64) -> f64 {
        let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
        r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
        r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
        r + (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0
    }

    fn offset_lon(x: f64, y: f64) -> f64 {
        let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
        r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
        r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
        r + (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0
    }

    /// WGS-84 to GCJ-02.
    pub fn from_wgs84(lat: f64, lon: f64) -> (f64, f64) {
        if !in_china(lat, lon) {
            return (lat, lon);
        }
        let (x, y) = (lon - 105.0, lat - 35.0);
        let rad = lat / 180.0 * PI;
        let magic = 1.0 - EE * rad.sin() * rad.sin();
        let sqrt_magic = magic.sqrt();

        let d_lat = offset_lat(x, y) * 180.0 / ((A * (1.0 - EE)) / (magic * sqrt_magic) * PI);
        let d_lon = offset_lon(x, y) * 180.0 / (A / sqrt_magic * rad.cos() * PI);
        (lat + d_lat, lon + d_lon)
    }

    /// GCJ-02 to WGS-84, by iterating the forward transform.
    pub fn to_wgs84(lat: f64, lon: f64) -> (f64, f64) {
        let (mut wlat, mut wlon) = (lat, lon);
        for _ in 0..10 {
            let (glat, glon) = from_wgs84(wlat, wlon);
            wlat -= glat - lat;
            wlon -= glon - lon;
        }
        (wlat, wlon)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_offset_in_beijing_is_hundreds_of_metres_and_the_inverse_round_trips() {
            let (lat, lon) = (39.908_692, 116.397_477);
            let (glat, glon) = from_wgs84(lat, lon);
            let shift_m = ((glat - lat) * 111_000.0).hypot((glon - lon) * 85_000.0);
            let (back_lat, back_lon) = to_wgs84(glat, glon);

            assert!((300.0..700.0).contains(&shift_m), "shift {shift_m} m");
            assert!((back_lat - lat).abs() < 1e-7 && (back_lon - lon).abs() < 1e-7);
        }

        #[test]
        fn outside_china_nothing_moves() {
            assert_eq!(from_wgs84(43.46, 11.88), (43.46, 11.88));
        }
    }
}

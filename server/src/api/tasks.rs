//! Tasks (what an enterprise wants done, where and when), their lifecycle, and assigning
//! them to workers.
//!
//! A task is drafted by its enterprise, submitted for review once every field the standard
//! asks for is filled in (5.3.2.1, 5.5.4), checked by an operator of the reviewer team and
//! published or refused ([`super::task_review`]); workers apply for published tasks or the
//! enterprise assigns them ([`super::task_applications`]), and a task whose headcount is
//! reached closes. The enterprise may cancel a task none of whose orders is unfinished; an
//! operator may void any task not yet in a final state.
//!
//! ```text
//! draft ──submit──▶ submitted ──review: publish──▶ published ──headcount reached──▶ closed
//!   │                  │ └──────review: refuse──▶ refused        │
//!   └──────────────────┴───────── cancel (enterprise) ───────────┴──▶ cancelled
//! draft, submitted, published ──void (operator)──▶ void
//! ```

use axum::Json;
use axum::extract::{Path, State};
use flexwork_sync::{ErrorBody, RequirementsSpec, SiteSpec, WindowSpec};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{JsonBody, QueryParams};
use crate::audit::{self, Event, Outcome};
use crate::auth::{Caller, Permission, WorkScope};
use crate::error::{ApiError, ApiResult};
use crate::verify::{Context, Requirements, Site, Window};
use crate::{AppState, new_id, now_ms};

/// Where a task stands. The words are stored in `tasks.status` as they are written here;
/// deregistering an enterprise sets its draft, submitted and published tasks to `void`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Being written by the enterprise; may be incomplete and may be edited.
    Draft,
    /// Complete, waiting for an operator's review.
    Submitted,
    /// Reviewed and open: workers apply, the enterprise assigns.
    Published,
    /// The operator refused it (with a reason code and a reason). Final.
    Refused,
    /// Its headcount is reached: no more takers; its orders go on. Final.
    Closed,
    /// Withdrawn by the enterprise. Final.
    Cancelled,
    /// Voided by an operator or by the enterprise's deregistration. Final.
    Void,
}

impl TaskStatus {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Draft => "draft",
            TaskStatus::Submitted => "submitted",
            TaskStatus::Published => "published",
            TaskStatus::Refused => "refused",
            TaskStatus::Closed => "closed",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Void => "void",
        }
    }

    /// Reads a stored or queried word.
    pub fn parse(word: &str) -> Option<Self> {
        [
            TaskStatus::Draft,
            TaskStatus::Submitted,
            TaskStatus::Published,
            TaskStatus::Refused,
            TaskStatus::Closed,
            TaskStatus::Cancelled,
            TaskStatus::Void,
        ]
        .into_iter()
        .find(|s| s.as_str() == word)
    }

    /// The states no transition leaves.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            TaskStatus::Draft | TaskStatus::Submitted | TaskStatus::Published
        )
    }
}

/// How the fee is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeBasis {
    PerOrder,
    PerHour,
    PerDay,
    PerPiece,
}

impl FeeBasis {
    fn as_str(self) -> &'static str {
        match self {
            FeeBasis::PerOrder => "per_order",
            FeeBasis::PerHour => "per_hour",
            FeeBasis::PerDay => "per_day",
            FeeBasis::PerPiece => "per_piece",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [
            FeeBasis::PerOrder,
            FeeBasis::PerHour,
            FeeBasis::PerDay,
            FeeBasis::PerPiece,
        ]
        .into_iter()
        .find(|b| b.as_str() == word)
    }
}

/// What the standard asks a task to state besides site, window, fee and evidence (5.3.2.1,
/// 5.5.4). Every field may be left out of a draft; a task is submitted only when all are
/// given. Lists may be empty (nothing of that kind is needed) but must be given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskDetails {
    /// Skills a worker must declare, such as `photography`.
    pub skills: Option<Vec<String>>,
    /// Qualifications (certificates, licences) a worker must declare.
    pub qualifications: Option<Vec<String>>,
    /// Health requirements; when any, the worker must attest meeting them.
    pub health_requirements: Option<Vec<String>>,
    /// Tools or equipment the worker brings or the site provides.
    pub hardware: Option<String>,
    /// How the enterprise will judge the work done.
    pub acceptance_criteria: Option<String>,
    /// How `fee_fen` is charged.
    pub fee_basis: Option<FeeBasis>,
    /// The least the fee may be, in fen; `fee_fen` may not be below it.
    pub min_fee_fen: Option<i64>,
    /// The least time of service a worker gives, in minutes.
    pub min_service_minutes: Option<i64>,
    /// Rest rule: at most this many minutes of work per day.
    pub max_minutes_per_day: Option<i64>,
    /// Rest rule: at least this many minutes of rest between shifts.
    pub min_rest_minutes: Option<i64>,
    /// How many workers the task takes; reaching it closes the task.
    pub headcount: Option<i64>,
    /// Estimated working time of one person, in minutes.
    pub estimated_minutes_per_person: Option<i64>,
}

impl TaskDetails {
    /// These details with every field `patch` gives replaced.
    fn merged(&self, patch: &TaskDetails) -> TaskDetails {
        TaskDetails {
            skills: patch.skills.clone().or_else(|| self.skills.clone()),
            qualifications: patch
                .qualifications
                .clone()
                .or_else(|| self.qualifications.clone()),
            health_requirements: patch
                .health_requirements
                .clone()
                .or_else(|| self.health_requirements.clone()),
            hardware: patch.hardware.clone().or_else(|| self.hardware.clone()),
            acceptance_criteria: patch
                .acceptance_criteria
                .clone()
                .or_else(|| self.acceptance_criteria.clone()),
            fee_basis: patch.fee_basis.or(self.fee_basis),
            min_fee_fen: patch.min_fee_fen.or(self.min_fee_fen),
            min_service_minutes: patch.min_service_minutes.or(self.min_service_minutes),
            max_minutes_per_day: patch.max_minutes_per_day.or(self.max_minutes_per_day),
            min_rest_minutes: patch.min_rest_minutes.or(self.min_rest_minutes),
            headcount: patch.headcount.or(self.headcount),
            estimated_minutes_per_person: patch
                .estimated_minutes_per_person
                .or(self.estimated_minutes_per_person),
        }
    }
}

/// A warning of the automated pre-check shown to the reviewer: the task may be beyond what
/// one person can do within its window and rest rules.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CapacityWarning {
    /// `estimate_exceeds_window`, `estimate_exceeds_daily_limit`,
    /// `daily_limit_leaves_no_rest`, `long_working_day` or `min_service_exceeds_estimate`.
    pub code: String,
    pub message: String,
}

/// A task as stored and shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Task {
    pub id: String,
    pub enterprise_id: String,
    pub title: String,
    /// The service content.
    pub description: String,
    /// WGS-84.
    pub site: SiteSpec,
    pub window: WindowSpec,
    pub fee_fen: i64,
    /// The evidence the task requires.
    pub requirements: RequirementsSpec,
    pub created_at_ms: i64,
    pub status: TaskStatus,
    /// Why the task was refused, cancelled or voided.
    pub status_reason: Option<String>,
    #[serde(flatten)]
    pub details: TaskDetails,
    /// Fields still to be given before the task can be submitted.
    pub missing_fields: Vec<String>,
    /// The automated capacity pre-check.
    pub capacity_warnings: Vec<CapacityWarning>,
    /// Operator reviews, oldest first (shown by `GET /tasks/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviews: Option<Vec<super::task_review::TaskReview>>,
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

    /// The API names of the fields a submission still lacks.
    pub fn missing(&self) -> Vec<String> {
        let d = &self.details;
        let blank = |text: &Option<String>| text.as_deref().is_none_or(|t| t.trim().is_empty());
        let checks = [
            ("description", self.description.trim().is_empty()),
            ("skills", d.skills.is_none()),
            ("qualifications", d.qualifications.is_none()),
            ("health_requirements", d.health_requirements.is_none()),
            ("hardware", blank(&d.hardware)),
            ("acceptance_criteria", blank(&d.acceptance_criteria)),
            ("fee_basis", d.fee_basis.is_none()),
            ("min_fee_fen", d.min_fee_fen.is_none()),
            ("min_service_minutes", d.min_service_minutes.is_none()),
            ("max_minutes_per_day", d.max_minutes_per_day.is_none()),
            ("min_rest_minutes", d.min_rest_minutes.is_none()),
            ("headcount", d.headcount.is_none()),
            (
                "estimated_minutes_per_person",
                d.estimated_minutes_per_person.is_none(),
            ),
        ];
        checks
            .into_iter()
            .filter(|(_, missing)| *missing)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// The automated pre-check: signs that the task is beyond one person's capacity.
    pub fn capacity_check(&self) -> Vec<CapacityWarning> {
        let d = &self.details;
        let window_minutes = (self.window.to_ms - self.window.from_ms) / 60_000;
        let days = (window_minutes + 1_439) / 1_440;
        let mut warnings = Vec::new();
        let mut warn = |code: &str, message: String| {
            warnings.push(CapacityWarning {
                code: code.to_owned(),
                message,
            });
        };
        if let Some(estimate) = d.estimated_minutes_per_person {
            if estimate > window_minutes {
                warn(
                    "estimate_exceeds_window",
                    format!(
                        "one person is estimated to need {estimate} minutes, but the window is \
                         only {window_minutes} minutes long"
                    ),
                );
            } else if let Some(per_day) = d.max_minutes_per_day
                && estimate > per_day * days
            {
                warn(
                    "estimate_exceeds_daily_limit",
                    format!(
                        "one person is estimated to need {estimate} minutes, but the rest rules \
                         allow {per_day} minutes a day over the window's {days} day(s)"
                    ),
                );
            }
            if let Some(min_service) = d.min_service_minutes
                && min_service > estimate
            {
                warn(
                    "min_service_exceeds_estimate",
                    format!(
                        "the minimum service time ({min_service} minutes) is longer than the \
                         estimate per person ({estimate} minutes)"
                    ),
                );
            }
        }
        if let Some(per_day) = d.max_minutes_per_day {
            if per_day + d.min_rest_minutes.unwrap_or(0) > 1_440 {
                warn(
                    "daily_limit_leaves_no_rest",
                    "the daily working limit and the rest between shifts add up to more than a \
                     day"
                    .to_owned(),
                );
            }
            if per_day > 8 * 60 {
                warn(
                    "long_working_day",
                    format!("the rest rules allow {per_day} minutes of work a day, over 8 hours"),
                );
            }
        }
        warnings
    }

    /// Fills in the derived fields: what is missing and the capacity warnings.
    fn derive(mut self) -> Self {
        self.missing_fields = self.missing();
        self.capacity_warnings = self.capacity_check();
        self
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

/// `POST /tasks` body: title, site, window and fee are needed for a draft; the details may
/// follow by `PATCH`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewTask {
    pub title: String,
    /// The service content.
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
    #[serde(flatten)]
    pub details: TaskDetails,
}

fn one() -> u32 {
    1
}

/// Creates a task as a draft: work to be done, where, when and for what fee.
///
/// The site is a point and radius, in WGS-84 or, with `site_crs: "gcj02"`, as read off a map
/// published in China; it is stored in WGS-84. The window is two RFC 3339 times. The details
/// the standard asks for may be given now or later by `PATCH`; whatever is given is checked.
/// `missing_fields` of the answer lists what is still needed before `POST /tasks/{id}/submit`.
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
        (status = 200, description = "The draft", body = Task),
        (status = 400, description = "`invalid_title`, `invalid_description`, `invalid_site`, \
            `invalid_radius`, `invalid_fee`, `invalid_requirements`, `invalid_window`, \
            `invalid_skills`, `invalid_qualifications`, `invalid_health_requirements`, \
            `invalid_hardware`, `invalid_acceptance_criteria`, `invalid_min_fee`, \
            `fee_below_minimum`, `invalid_service_minutes`, `invalid_rest_rules`, \
            `invalid_headcount`, `invalid_estimate`; `invalid_json`", body = ErrorBody),
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

    tracing::info!(task_id = %task.id, "task drafted");
    Ok(Json(task))
}

fn validate(body: &NewTask, enterprise_id: &str) -> ApiResult<Task> {
    let bad = |code, message: &str| Err(ApiError::bad_request(code, message));
    if body.title.trim().is_empty() || body.title.chars().count() > 200 || !printable(&body.title) {
        return bad(
            "invalid_title",
            "a task needs a title of 1 to 200 characters",
        );
    }
    if !printable(&body.description) {
        return bad(
            "invalid_description",
            "the task's description must not contain control characters or \
             direction-changing marks; write it as plain text",
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
    let details = validate_details(&body.details, body.fee_fen)?;

    let (lat, lon) = match body.site_crs {
        Crs::Wgs84 => (body.site_lat, body.site_lon),
        Crs::Gcj02 => crate::api::tasks::gcj02::to_wgs84(body.site_lat, body.site_lon),
    };
    let task = Task {
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
        status: TaskStatus::Draft,
        status_reason: None,
        details,
        missing_fields: Vec::new(),
        capacity_warnings: Vec::new(),
        reviews: None,
    };
    Ok(task.derive())
}

/// Longest item of a task's lists, in characters.
const MAX_ITEM_CHARS: usize = 60;
/// Most items in one of a task's lists.
const MAX_ITEMS: usize = 20;
/// Longest free text of a task's details, in characters.
const MAX_TEXT_CHARS: usize = 2_000;

/// Checks a list of short names (skills, qualifications, health requirements) and gives it
/// back trimmed and without duplicates.
pub(crate) fn clean_list(
    items: &[String],
    code: &'static str,
    what: &str,
) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() || item.chars().count() > MAX_ITEM_CHARS || !printable(item) {
            let message =
                format!("each of the {what} is 1 to {MAX_ITEM_CHARS} characters of plain text");
            return Err(ApiError::bad_request(code, message));
        }
        if !out.iter().any(|o| same_name(o, item)) {
            out.push(item.to_owned());
        }
    }
    if out.len() > MAX_ITEMS {
        let message = format!("at most {MAX_ITEMS} {what} may be listed");
        return Err(ApiError::bad_request(code, message));
    }
    Ok(out)
}

/// Whether two skill or qualification names are the same, ignoring case and outer spaces.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

fn validate_details(details: &TaskDetails, fee_fen: i64) -> ApiResult<TaskDetails> {
    let list = |items: &Option<Vec<String>>, code, what| {
        items
            .as_deref()
            .map(|items| clean_list(items, code, what))
            .transpose()
    };
    let text = |value: &Option<String>, code: &'static str, what: &str| {
        let Some(value) = value else { return Ok(None) };
        if value.chars().count() > MAX_TEXT_CHARS || !printable(value) {
            let message = format!("{what} is plain text of at most {MAX_TEXT_CHARS} characters");
            return Err(ApiError::bad_request(code, message));
        }
        Ok(Some(value.trim().to_owned()))
    };
    let range =
        |value: Option<i64>, range: std::ops::RangeInclusive<i64>, code, message| match value {
            Some(v) if !range.contains(&v) => Err(ApiError::bad_request(code, message)),
            _ => Ok(value),
        };

    let out = TaskDetails {
        skills: list(&details.skills, "invalid_skills", "skills")?,
        qualifications: list(
            &details.qualifications,
            "invalid_qualifications",
            "qualifications",
        )?,
        health_requirements: list(
            &details.health_requirements,
            "invalid_health_requirements",
            "health requirements",
        )?,
        hardware: text(&details.hardware, "invalid_hardware", "hardware")?,
        acceptance_criteria: text(
            &details.acceptance_criteria,
            "invalid_acceptance_criteria",
            "the acceptance criteria",
        )?,
        fee_basis: details.fee_basis,
        min_fee_fen: range(
            details.min_fee_fen,
            1..=100_000_000,
            "invalid_min_fee",
            "the minimum fee is a whole number of fen, from 1 to 1,000,000 CNY",
        )?,
        min_service_minutes: range(
            details.min_service_minutes,
            1..=44_640,
            "invalid_service_minutes",
            "the minimum service time is 1 minute to 31 days, in minutes",
        )?,
        max_minutes_per_day: range(
            details.max_minutes_per_day,
            1..=1_440,
            "invalid_rest_rules",
            "the daily working limit is 1 to 1440 minutes",
        )?,
        min_rest_minutes: range(
            details.min_rest_minutes,
            0..=1_440,
            "invalid_rest_rules",
            "the rest between shifts is 0 to 1440 minutes",
        )?,
        headcount: range(
            details.headcount,
            1..=10_000,
            "invalid_headcount",
            "the headcount is 1 to 10000 workers",
        )?,
        estimated_minutes_per_person: range(
            details.estimated_minutes_per_person,
            1..=525_600,
            "invalid_estimate",
            "the estimate per person is 1 minute to a year, in minutes",
        )?,
    };
    if let Some(min_fee) = out.min_fee_fen
        && fee_fen < min_fee
    {
        let message =
            format!("the fee ({fee_fen} fen) is below the task's minimum fee ({min_fee} fen)");
        return Err(ApiError::bad_request("fee_below_minimum", message));
    }
    Ok(out)
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

fn json_list(list: &Option<Vec<String>>) -> Option<String> {
    list.as_ref()
        .map(|l| serde_json::Value::from(l.clone()).to_string())
}

async fn insert(state: &AppState, task: &Task) -> ApiResult<()> {
    let d = &task.details;
    sqlx::query(
        "INSERT INTO tasks (id, enterprise_id, title, description, site_lat, site_lon, \
         site_radius_m, window_from, window_to, fee_fen, min_photos, require_track, \
         require_signature, created_at, status, skills, qualifications, health_requirements, \
         hardware, acceptance_criteria, fee_basis, min_fee_fen, min_service_minutes, \
         max_minutes_per_day, min_rest_minutes, headcount, estimated_minutes_per_person) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)",
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
    .bind(task.status.as_str())
    .bind(json_list(&d.skills))
    .bind(json_list(&d.qualifications))
    .bind(json_list(&d.health_requirements))
    .bind(d.hardware.clone())
    .bind(d.acceptance_criteria.clone())
    .bind(d.fee_basis.map(FeeBasis::as_str))
    .bind(d.min_fee_fen)
    .bind(d.min_service_minutes)
    .bind(d.max_minutes_per_day)
    .bind(d.min_rest_minutes)
    .bind(d.headcount)
    .bind(d.estimated_minutes_per_person)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

fn list_from_column(row: &sqlx::any::AnyRow, column: &str) -> ApiResult<Option<Vec<String>>> {
    let stored: Option<String> = row.try_get(column)?;
    stored
        .map(|s| serde_json::from_str(&s).map_err(ApiError::internal))
        .transpose()
}

pub(crate) fn task_from_row(row: &sqlx::any::AnyRow) -> ApiResult<Task> {
    let min_photos: i64 = row.try_get("min_photos")?;
    let status: String = row.try_get("status")?;
    let fee_basis: Option<String> = row.try_get("fee_basis")?;
    let details = TaskDetails {
        skills: list_from_column(row, "skills")?,
        qualifications: list_from_column(row, "qualifications")?,
        health_requirements: list_from_column(row, "health_requirements")?,
        hardware: row.try_get("hardware")?,
        acceptance_criteria: row.try_get("acceptance_criteria")?,
        fee_basis: fee_basis.as_deref().and_then(FeeBasis::parse),
        min_fee_fen: row.try_get("min_fee_fen")?,
        min_service_minutes: row.try_get("min_service_minutes")?,
        max_minutes_per_day: row.try_get("max_minutes_per_day")?,
        min_rest_minutes: row.try_get("min_rest_minutes")?,
        headcount: row.try_get("headcount")?,
        estimated_minutes_per_person: row.try_get("estimated_minutes_per_person")?,
    };
    let task = Task {
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
        status: TaskStatus::parse(&status)
            .ok_or_else(|| ApiError::internal("unknown task status in database"))?,
        status_reason: row.try_get("status_reason")?,
        details,
        missing_fields: Vec::new(),
        capacity_warnings: Vec::new(),
        reviews: None,
    };
    Ok(task.derive())
}

/// Loads a task the caller may see: its enterprise, or an operator.
pub(crate) async fn visible_task(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Task> {
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

/// The 409 of a transition the task's state does not allow.
pub(crate) fn illegal(task: &Task, code: &'static str, what: &str) -> ApiError {
    let message = format!("this task is {}; {what}", task.status.as_str());
    ApiError::conflict(code, message)
}

/// Moves a task from one of `from` to `to`, recording why; false when it was in none of
/// `from` (someone else moved it first).
pub(crate) async fn transition(
    conn: &mut sqlx::AnyConnection,
    task_id: &str,
    from: &[TaskStatus],
    to: TaskStatus,
    reason: Option<&str>,
) -> ApiResult<bool> {
    let words: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let sql = format!(
        "UPDATE tasks SET status = $1, status_reason = $2, status_changed_at = $3 \
         WHERE id = $4 AND status IN ({})",
        words.join(", ")
    );
    let result = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.as_str())
        .bind(reason)
        .bind(now_ms())
        .bind(task_id)
        .execute(&mut *conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// One task, with its review history.
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
    let mut task = visible_task(&state, &caller, &id).await?;
    task.reviews = Some(super::task_review::history(&state, &id).await?);
    Ok(Json(task))
}

/// `PATCH /tasks/{id}` body: the fields to change; those left out keep their value.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub site_lat: Option<f64>,
    pub site_lon: Option<f64>,
    pub site_radius_m: Option<f64>,
    /// The system of `site_lat` and `site_lon` when they are given.
    pub site_crs: Option<Crs>,
    /// RFC 3339.
    pub window_from: Option<String>,
    /// RFC 3339.
    pub window_to: Option<String>,
    pub fee_fen: Option<i64>,
    pub min_photos: Option<u32>,
    pub require_track: Option<bool>,
    pub require_signature: Option<bool>,
    #[serde(flatten)]
    pub details: TaskDetails,
}

/// Edits a draft: the fields given replace the stored ones, and the whole task is checked
/// again as on creation.
///
/// Who may call: Permission `publish_tasks`: the task's enterprise, administrators and staff.
#[utoipa::path(
    patch,
    path = "/tasks/{id}",
    operation_id = "edit_task",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    request_body = TaskPatch,
    responses(
        (status = 200, description = "The edited draft", body = Task),
        (status = 400, description = "As for `POST /tasks`; `invalid_site` also when \
            `site_crs` is given without both coordinates", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an enterprise account", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task, or not the caller's",
            body = ErrorBody),
        (status = 409, description = "`task_not_draft`: only drafts are edited", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<TaskPatch>,
) -> ApiResult<Json<Task>> {
    caller.require(Permission::PublishTasks)?;
    let stored = visible_task(&state, &caller, &id).await?;
    if stored.status != TaskStatus::Draft {
        return Err(illegal(
            &stored,
            "task_not_draft",
            "only a draft can be edited",
        ));
    }
    let crs = patch.site_crs.unwrap_or_default();
    if crs == Crs::Gcj02 && (patch.site_lat.is_none() || patch.site_lon.is_none()) {
        let message = "give both site_lat and site_lon with site_crs";
        return Err(ApiError::bad_request("invalid_site", message));
    }
    let body = NewTask {
        title: patch.title.unwrap_or(stored.title),
        description: patch.description.unwrap_or(stored.description),
        site_lat: patch.site_lat.unwrap_or(stored.site.lat),
        site_lon: patch.site_lon.unwrap_or(stored.site.lon),
        site_radius_m: patch.site_radius_m.unwrap_or(stored.site.radius_m),
        site_crs: crs,
        window_from: patch
            .window_from
            .unwrap_or_else(|| crate::rfc3339(stored.window.from_ms)),
        window_to: patch
            .window_to
            .unwrap_or_else(|| crate::rfc3339(stored.window.to_ms)),
        fee_fen: patch.fee_fen.unwrap_or(stored.fee_fen),
        min_photos: patch.min_photos.unwrap_or(stored.requirements.min_photos),
        require_track: patch.require_track.unwrap_or(stored.requirements.track),
        require_signature: patch
            .require_signature
            .unwrap_or(stored.requirements.signature),
        details: stored.details.merged(&patch.details),
    };
    let mut task = validate(&body, &stored.enterprise_id)?;
    task.id = stored.id;
    task.created_at_ms = stored.created_at_ms;
    update_draft(&state, &task).await?;
    tracing::info!(task_id = %task.id, "draft edited");
    Ok(Json(task))
}

async fn update_draft(state: &AppState, task: &Task) -> ApiResult<()> {
    let d = &task.details;
    let result = sqlx::query(
        "UPDATE tasks SET title = $1, description = $2, site_lat = $3, site_lon = $4, \
         site_radius_m = $5, window_from = $6, window_to = $7, fee_fen = $8, min_photos = $9, \
         require_track = $10, require_signature = $11, skills = $12, qualifications = $13, \
         health_requirements = $14, hardware = $15, acceptance_criteria = $16, \
         fee_basis = $17, min_fee_fen = $18, min_service_minutes = $19, \
         max_minutes_per_day = $20, min_rest_minutes = $21, headcount = $22, \
         estimated_minutes_per_person = $23 WHERE id = $24 AND status = 'draft'",
    )
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
    .bind(json_list(&d.skills))
    .bind(json_list(&d.qualifications))
    .bind(json_list(&d.health_requirements))
    .bind(d.hardware.clone())
    .bind(d.acceptance_criteria.clone())
    .bind(d.fee_basis.map(FeeBasis::as_str))
    .bind(d.min_fee_fen)
    .bind(d.min_service_minutes)
    .bind(d.max_minutes_per_day)
    .bind(d.min_rest_minutes)
    .bind(d.headcount)
    .bind(d.estimated_minutes_per_person)
    .bind(&task.id)
    .execute(&state.db.pool)
    .await?;
    if result.rows_affected() == 0 {
        let message = "this task is no longer a draft; only a draft can be edited";
        return Err(ApiError::conflict("task_not_draft", message));
    }
    Ok(())
}

/// Submits a complete draft for an operator's review.
///
/// Refused with `task_incomplete` naming every field still missing (the task's
/// `missing_fields` lists them too).
///
/// Who may call: Permission `publish_tasks`: the task's enterprise, administrators and staff.
#[utoipa::path(
    post,
    path = "/tasks/{id}/submit",
    operation_id = "submit_task",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task, submitted", body = Task),
        (status = 400, description = "`task_incomplete`: the message names the missing fields",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an enterprise account", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task, or not the caller's",
            body = ErrorBody),
        (status = 409, description = "`task_not_draft`: only a draft is submitted",
            body = ErrorBody),
    ),
)]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Task>> {
    caller.require(Permission::PublishTasks)?;
    let task = visible_task(&state, &caller, &id).await?;
    if task.status != TaskStatus::Draft {
        return Err(illegal(
            &task,
            "task_not_draft",
            "only a draft can be submitted",
        ));
    }
    if !task.missing_fields.is_empty() {
        let message = format!(
            "the task cannot be submitted before these fields are given: {}",
            task.missing_fields.join(", ")
        );
        return Err(ApiError::bad_request("task_incomplete", message));
    }
    let mut conn = state.db.pool.acquire().await?;
    let from = [TaskStatus::Draft];
    if !transition(&mut conn, &id, &from, TaskStatus::Submitted, None).await? {
        let message = "this task is no longer a draft; only a draft can be submitted";
        return Err(ApiError::conflict("task_not_draft", message));
    }
    drop(conn);
    tracing::info!(task_id = %id, "task submitted for review");
    Ok(Json(visible_task(&state, &caller, &id).await?))
}

/// A reason for withdrawing or voiding a task.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TaskReason {
    pub reason: String,
}

/// Cancels a draft, submitted or published task.
///
/// Only while none of its orders is unfinished: every order is cancelled, confirmed or
/// settled. Recorded in the audit trail with the reason.
///
/// Who may call: Permission `publish_tasks`: the task's enterprise, administrators and staff.
#[utoipa::path(
    post,
    path = "/tasks/{id}/cancel",
    operation_id = "cancel_task",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    request_body = TaskReason,
    responses(
        (status = 200, description = "The task, cancelled", body = Task),
        (status = 400, description = "`reason_required`, `reason_too_long`; `invalid_json`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an enterprise account", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task, or not the caller's",
            body = ErrorBody),
        (status = 409, description = "`task_not_cancellable`: refused, closed, cancelled or \
            void; `task_has_open_orders`: an order of it is unfinished", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TaskReason>,
) -> ApiResult<Json<Task>> {
    caller.require(Permission::PublishTasks)?;
    let task = visible_task(&state, &caller, &id).await?;
    let reason = audit::reason(&body.reason, 3)?;
    if task.status.is_final() {
        let what = "only a draft, submitted or published task can be cancelled";
        return Err(illegal(&task, "task_not_cancellable", what));
    }

    let mut tx = state.db.begin_write().await?;
    let open = sqlx::query(
        "SELECT COUNT(*) AS n FROM orders o LEFT JOIN settlements s ON s.order_id = o.id \
         WHERE o.task_id = $1 AND o.cancelled_at IS NULL AND s.id IS NULL \
           AND (o.confirmation IS NULL OR o.confirmation <> 'confirmed')",
    )
    .bind(&id)
    .fetch_one(&mut *tx)
    .await?
    .try_get::<i64, _>("n")?;
    if open > 0 {
        let message = format!(
            "{open} order(s) of this task are unfinished; cancel them or let them finish first"
        );
        return Err(ApiError::conflict("task_has_open_orders", message));
    }
    let from = [
        TaskStatus::Draft,
        TaskStatus::Submitted,
        TaskStatus::Published,
    ];
    let reason = crate::identity::redact_numbers(reason);
    if !transition(&mut tx, &id, &from, TaskStatus::Cancelled, Some(&reason)).await? {
        let message = "this task changed meanwhile and can no longer be cancelled";
        return Err(ApiError::conflict("task_not_cancellable", message));
    }
    tx.commit().await?;

    let event = Event::by(&caller, "task_cancelled", Outcome::Ok)
        .object(format!("task:{id}"))
        .detail(serde_json::json!({ "from": task.status.as_str(), "reason": reason }));
    audit::record(&state, event).await?;
    tracing::info!(task_id = %id, "task cancelled by its enterprise");
    Ok(Json(visible_task(&state, &caller, &id).await?))
}

/// Voids a task not yet in a final state, with a reason: it is found not genuine or
/// unlawful after publication, or its enterprise is being removed. Its orders stay as they
/// are; cancel those not yet submitted with `POST /orders/{id}/cancel`.
///
/// Who may call: Permission `review_tasks`: operators in the reviewer team.
#[utoipa::path(
    post,
    path = "/tasks/{id}/void",
    operation_id = "void_task",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    request_body = TaskReason,
    responses(
        (status = 200, description = "The task, void", body = Task),
        (status = 400, description = "`reason_required`, `reason_too_long`; `invalid_json`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a reviewer", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task", body = ErrorBody),
        (status = 409, description = "`task_final`: refused, closed, cancelled or void already",
            body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn void(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TaskReason>,
) -> ApiResult<Json<Task>> {
    caller.require(Permission::ReviewTasks)?;
    let task = visible_task(&state, &caller, &id).await?;
    let reason = audit::reason(&body.reason, 5)?;
    if task.status.is_final() {
        return Err(illegal(
            &task,
            "task_final",
            "a task in a final state is not voided",
        ));
    }
    let reason = crate::identity::redact_numbers(reason);
    let mut conn = state.db.pool.acquire().await?;
    let from = [
        TaskStatus::Draft,
        TaskStatus::Submitted,
        TaskStatus::Published,
    ];
    if !transition(&mut conn, &id, &from, TaskStatus::Void, Some(&reason)).await? {
        let message = "this task reached a final state meanwhile";
        return Err(ApiError::conflict("task_final", message));
    }
    drop(conn);

    let event = Event::by(&caller, "task_voided", Outcome::Ok)
        .object(format!("task:{id}"))
        .detail(serde_json::json!({ "from": task.status.as_str(), "reason": reason }));
    audit::record(&state, event).await?;
    tracing::info!(task_id = %id, "task voided by an operator");
    Ok(Json(visible_task(&state, &caller, &id).await?))
}

/// `GET /tasks` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TaskQuery {
    /// Only tasks in this state: `submitted` is the operators' review queue.
    pub status: Option<String>,
}

/// Tasks, oldest first: an enterprise's own, all of them, or the published ones.
///
/// `?status=submitted` gives operators the tasks awaiting review, each with its automated
/// capacity warnings. Workers see only published tasks, the ones they may apply for.
///
/// Who may call: enterprise accounts (their organisation's tasks), holders of Permission
/// `read_all_work` (every task): operators in the reviewer, risk, finance, legal, welfare, support
/// or regulator liaison team, and regulators; and holders of Permission `apply_for_tasks`
/// (published tasks): workers.
#[utoipa::path(
    get,
    path = "/tasks",
    operation_id = "list_tasks",
    tag = "tasks",
    security(("bearer" = [])),
    params(TaskQuery),
    responses(
        (status = 200, description = "The tasks", body = Vec<Task>),
        (status = 400, description = "`invalid_status`: not a task state", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: an operator whose teams read no work",
            body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<TaskQuery>,
) -> ApiResult<Json<Vec<Task>>> {
    let status = match query.status.as_deref() {
        None => None,
        Some(word) => Some(TaskStatus::parse(word).ok_or_else(|| {
            let message = "status is draft, submitted, published, refused, closed, cancelled \
                           or void";
            ApiError::bad_request("invalid_status", message)
        })?),
    };
    let (filter, owner) = match caller.work_scope() {
        WorkScope::All => ("1 = 1", None),
        WorkScope::Organisation(organisation) => ("enterprise_id = $2", Some(organisation)),
        WorkScope::Worker(_) => {
            caller.require(Permission::ApplyForTasks)?;
            ("status = 'published'", None)
        }
        WorkScope::Nothing => return Err(Permission::ReadAllWork.refusal()),
    };
    let sql = format!(
        "SELECT * FROM tasks WHERE ($1 = '' OR status = $1) AND {filter} ORDER BY created_at"
    );
    let mut select = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(status.map_or("", TaskStatus::as_str).to_owned());
    if let Some(owner) = owner {
        select = select.bind(owner.to_owned());
    }
    let rows = select.fetch_all(&state.db.pool).await?;
    let tasks = rows.iter().map(task_from_row).collect::<ApiResult<_>>()?;
    Ok(Json(tasks))
}

/// `POST /tasks/{id}/orders` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Assignment {
    /// The worker's login.
    pub worker_login: String,
}

/// Assigns a worker to a published task directly, creating an order.
///
/// The worker must meet the task's requirements by what they last declared when applying
/// for any task (skills, qualifications, health attestation); a worker who declared nothing
/// meets only a task requiring none. One order per worker and task. A worker the enterprise
/// declared among its managers cannot take its tasks. Reaching the headcount closes the task.
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
        (status = 409, description = "`task_not_published`, `requirements_not_met`, \
            `already_assigned`, `conflict_of_interest`", body = ErrorBody),
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
    if task.status != TaskStatus::Published {
        let what = "workers are assigned only to published tasks";
        return Err(illegal(&task, "task_not_published", what));
    }
    let declared = super::task_applications::declared(&state, &worker_id).await?;
    super::task_applications::check_eligible(&task, &declared)?;
    crate::enterprises::refuse_conflict(&state, &task.enterprise_id, &worker_id).await?;

    let mut tx = state.db.begin_write().await?;
    let order_id = form_order(&mut tx, &task, &worker_id).await?;
    tx.commit().await?;
    order_formed(&state, &caller, &task, &order_id, "assignment").await?;
    super::orders::view(&state, &order_id).await.map(Json)
}

/// Inserts the order of `worker_id` on a published task, inside the caller's write
/// transaction, and closes the task when its headcount is reached. Returns the order's id.
pub(crate) async fn form_order(
    conn: &mut sqlx::AnyConnection,
    task: &Task,
    worker_id: &str,
) -> ApiResult<String> {
    // Touching the row first takes its lock on PostgreSQL (SQLite's write transaction holds
    // the whole database), so two acceptances cannot both take the last place.
    let open = sqlx::query("UPDATE tasks SET status = status WHERE id = $1 AND status = $2")
        .bind(&task.id)
        .bind(TaskStatus::Published.as_str())
        .execute(&mut *conn)
        .await?;
    if open.rows_affected() == 0 {
        let message = "this task is no longer published; it takes no more workers";
        return Err(ApiError::conflict("task_not_published", message));
    }
    let taken =
        sqlx::query("SELECT COUNT(*) AS n FROM orders WHERE task_id = $1 AND cancelled_at IS NULL")
            .bind(&task.id)
            .fetch_one(&mut *conn)
            .await?
            .try_get::<i64, _>("n")?;

    let order_id = new_id();
    let result = sqlx::query(
        "INSERT INTO orders (id, task_id, worker_id, enterprise_id, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (task_id, worker_id) DO NOTHING",
    )
    .bind(&order_id)
    .bind(&task.id)
    .bind(worker_id)
    .bind(&task.enterprise_id)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        let message = "this worker already has an order for this task";
        return Err(ApiError::conflict("already_assigned", message));
    }
    if task.details.headcount.is_some_and(|h| taken + 1 >= h) {
        let from = [TaskStatus::Published];
        transition(conn, &task.id, &from, TaskStatus::Closed, None).await?;
        tracing::info!(task_id = %task.id, "headcount reached: task closed");
    }
    Ok(order_id)
}

/// Records a new order in the audit trail: it commits the enterprise to a fee.
pub(crate) async fn order_formed(
    state: &AppState,
    caller: &Caller,
    task: &Task,
    order_id: &str,
    by: &str,
) -> ApiResult<()> {
    let event = Event::by(caller, "order_formed", Outcome::Ok)
        .object(format!("order:{order_id}"))
        .detail(serde_json::json!({
            "task_id": task.id, "by": by, "fee_fen": task.fee_fen,
        }));
    audit::record(state, event).await?;
    tracing::info!(order_id, task_id = %task.id, by, "order created");
    Ok(())
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

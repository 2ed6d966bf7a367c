//! What the console's evidence page draws: an order's evidence document, its last
//! verification report and the operators' decisions, in one answer.

use axum::Json;
use axum::extract::{Path, State};
use flexwork_sync::{ErrorBody, Evidence};
use serde::Serialize;
use sqlx::Row;

use super::orders::{IssueItem, OrderView, visible};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::identity::redact_numbers;
use crate::verify::Report;
use crate::{AppState, evidence, rfc3339};

/// An order's evidence, its findings and the decisions on it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EvidenceView {
    pub order_id: String,
    /// As `GET /orders/{id}` shows it.
    pub status: String,
    /// `passed`, `needs_review` or `rejected`: the last verification's.
    pub verdict: Option<String>,
    /// New evidence arrived and has not been verified yet.
    pub verification_pending: bool,
    pub site: SiteView,
    pub window: WindowView,
    pub photos: Vec<PhotoView>,
    pub track: Vec<TrackPointView>,
    pub signatures: Vec<SignatureView>,
    /// What the worker typed; runs of seven or more digits are masked.
    pub notes: Vec<NoteView>,
    pub submissions: Vec<SubmissionView>,
    /// Every finding of the last verification report.
    pub findings: Vec<FindingView>,
    /// The operator's comments per item while the order is sent back (`has_issues`).
    pub remarks: Vec<RemarkView>,
    /// Every operator decision on the evidence, newest last.
    pub decisions: Vec<DecisionView>,
}

/// The task's site: a circle.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SiteView {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    /// `wgs84`: sites are stored in GPS coordinates (a GCJ-02 site was converted when the
    /// task was created).
    pub datum: String,
}

/// The task's work window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WindowView {
    pub start: String,
    pub end: String,
}

/// One photo: what the phone recorded and what verification read from its bytes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PhotoView {
    pub id: String,
    /// SHA-256, for `GET /media/{hash}` and `GET /media/{hash}/thumbnail`.
    pub hash: String,
    pub media_type: String,
    pub size: u64,
    pub captured_at: String,
    /// The phone's own position fix at capture.
    pub fix: Option<FixView>,
    /// What the photo's EXIF block says, once verification read the file.
    pub exif: Option<ExifView>,
    /// The findings about this photo.
    pub findings: Vec<FindingView>,
    /// The operator's comments on this photo, while sent back.
    pub remarks: Vec<RemarkView>,
}

/// A phone's position fix.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FixView {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f64,
    /// The phone's OS marked it as coming from a mock location provider.
    pub mock: bool,
    pub at: String,
}

/// The facts read from a photo's file.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExifView {
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
    pub software: Option<String>,
    /// The camera's clock with its offset, when the file has both.
    pub taken_at: Option<String>,
    /// The camera's clock as written, without a time zone.
    pub taken_at_local: Option<String>,
    pub gps_lat: Option<f64>,
    pub gps_lon: Option<f64>,
    /// The GPS time stamp (UTC).
    pub gps_time: Option<String>,
    /// EXIF orientation: 1 upright, 6 turned 90° clockwise to display, …
    pub orientation: Option<u16>,
    /// Pixels as stored (before orientation), when the header could be read.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `decoded`, `too_large` or `failed`.
    pub decoding: String,
}

/// One point of the trajectory.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrackPointView {
    pub lat: f64,
    pub lon: f64,
    pub at: Option<String>,
    pub accuracy_m: Option<f64>,
}

/// A signature, stroke by stroke, to redraw.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignatureView {
    pub id: String,
    pub signed_at: String,
    pub strokes: Vec<Vec<StrokePointView>>,
}

/// One sampled point of a stroke.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StrokePointView {
    pub x: f64,
    pub y: f64,
    /// Milliseconds since the signature began.
    pub t_ms: i64,
    pub pressure: f64,
}

/// A note the worker typed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoteView {
    pub id: String,
    pub at: String,
    pub text: String,
}

/// A submission of the order from the phone.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubmissionView {
    pub at: String,
}

/// What a verification check noticed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FindingView {
    pub code: String,
    /// `info`, `review` or `reject`.
    pub severity: String,
    /// A sentence for a person.
    pub message: String,
    /// The photo id, or `track`, when it is about one item.
    pub item: Option<String>,
}

/// An operator's comment on one item of a sent-back order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RemarkView {
    pub item: String,
    pub comment: String,
    pub at: String,
}

/// One operator decision.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    /// `approved`, `rejected` or `has_issues`.
    pub decision: String,
    pub reason: String,
    /// The items sent back, for `has_issues`.
    pub items: Vec<IssueItem>,
    /// The verdict decided on.
    pub verdict: String,
    /// The operator's login; shown to platform staff and regulators only.
    pub operator: Option<String>,
    pub at: String,
}

/// Counts of what an order's evidence holds, for lists.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvidenceSummary {
    pub photos: usize,
    pub track_points: usize,
    pub signatures: usize,
    pub notes: usize,
    /// Findings of the last verification report.
    pub findings: usize,
    pub verdict: Option<String>,
}

/// Everything the evidence page of an order draws.
///
/// Who may call: the order's worker, its enterprise (administrators and staff), and holders of
/// Permission `read_all_work`: operators in the reviewer, risk, finance, legal, welfare, support or
/// regulator liaison team, and regulators.
#[utoipa::path(
    get,
    path = "/orders/{id}/evidence",
    operation_id = "get_order_evidence",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The evidence", body = EvidenceView),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: an operator whose teams read no work",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or not the caller's to see",
            body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<EvidenceView>> {
    let order = visible(&state, &caller, &id).await?;
    let task = super::tasks::task_of_order(&state, &id).await?;
    let evidence = read(&state, &id).await?;
    let report = report_of(&order)?;
    let decisions = decisions(&state, &id, caller.can(Permission::ReadAllWork)).await?;
    let remarks = match (order.operator_decision.as_deref(), decisions.last()) {
        (Some("has_issues"), Some(last)) if last.decision == "has_issues" => last
            .items
            .iter()
            .map(|i| RemarkView {
                item: i.item.clone(),
                comment: i.comment.clone(),
                at: last.at.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let findings: Vec<FindingView> = report
        .as_ref()
        .map(|r| r.findings.iter().map(finding_view).collect())
        .unwrap_or_default();

    let photos = evidence
        .photos
        .iter()
        .map(|photo| {
            let facts = report
                .as_ref()
                .and_then(|r| r.photos.iter().find(|p| p.id == photo.id));
            PhotoView {
                id: photo.id.clone(),
                hash: photo.hash.to_hex(),
                media_type: photo.media_type.clone(),
                size: photo.size,
                captured_at: rfc3339(photo.captured_at_ms),
                fix: photo.fix.as_ref().map(|f| FixView {
                    lat: f.lat,
                    lon: f.lon,
                    accuracy_m: f.accuracy_m,
                    mock: f.mock,
                    at: rfc3339(f.at_ms),
                }),
                exif: facts.map(|p| exif_view(&p.facts)),
                findings: of_item(&findings, &photo.id, |f| f.item.as_deref()),
                remarks: of_item(&remarks, &photo.id, |r| Some(r.item.as_str())),
            }
        })
        .collect();

    Ok(Json(EvidenceView {
        order_id: order.id.clone(),
        status: order.status.clone(),
        verdict: order.verdict.clone(),
        verification_pending: order.verification_pending,
        site: SiteView {
            lat: task.site.lat,
            lon: task.site.lon,
            radius_m: task.site.radius_m,
            datum: "wgs84".to_owned(),
        },
        window: WindowView {
            start: rfc3339(task.window.from_ms),
            end: rfc3339(task.window.to_ms),
        },
        photos,
        track: evidence
            .track
            .iter()
            .map(|p| TrackPointView {
                lat: p.lat,
                lon: p.lon,
                at: p.at_ms.map(rfc3339),
                accuracy_m: p.accuracy_m,
            })
            .collect(),
        signatures: evidence
            .signatures
            .iter()
            .map(|s| SignatureView {
                id: s.id.clone(),
                signed_at: rfc3339(s.signed_at_ms),
                strokes: s
                    .strokes
                    .iter()
                    .map(|stroke| {
                        stroke
                            .iter()
                            .map(|p| StrokePointView {
                                x: p.x,
                                y: p.y,
                                t_ms: p.t_ms,
                                pressure: p.pressure,
                            })
                            .collect()
                    })
                    .collect(),
            })
            .collect(),
        notes: evidence
            .notes
            .iter()
            .map(|n| NoteView {
                id: n.id.clone(),
                at: rfc3339(n.at_ms),
                text: redact_numbers(&n.text),
            })
            .collect(),
        submissions: evidence
            .submissions
            .iter()
            .map(|s| SubmissionView {
                at: rfc3339(s.at_ms),
            })
            .collect(),
        findings,
        remarks,
        decisions,
    }))
}

fn of_item<T: Clone>(all: &[T], id: &str, item: impl Fn(&T) -> Option<&str>) -> Vec<T> {
    all.iter()
        .filter(|x| item(x) == Some(id))
        .cloned()
        .collect()
}

/// The order's evidence document as it stands.
pub(crate) async fn read(state: &AppState, order_id: &str) -> ApiResult<Evidence> {
    let mut conn = state.db.pool.acquire().await?;
    let loaded = evidence::load(&mut conn, &state.actor, order_id).await?;
    drop(conn);
    loaded.doc.read().map_err(ApiError::internal)
}

fn report_of(order: &OrderView) -> ApiResult<Option<Report>> {
    order
        .report
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(ApiError::internal)
}

/// The ids an operator may send back: photos, signatures, notes, and `track`.
pub(crate) async fn item_ids(state: &AppState, order_id: &str) -> ApiResult<Vec<String>> {
    let evidence = read(state, order_id).await?;
    let mut ids: Vec<String> = evidence.photos.iter().map(|p| p.id.clone()).collect();
    ids.extend(evidence.signatures.iter().map(|s| s.id.clone()));
    ids.extend(evidence.notes.iter().map(|n| n.id.clone()));
    ids.push("track".to_owned());
    Ok(ids)
}

/// The counts of an order's evidence, for lists.
pub(crate) async fn summary(state: &AppState, order: &OrderView) -> ApiResult<EvidenceSummary> {
    let evidence = read(state, &order.id).await?;
    let findings = order
        .report
        .as_ref()
        .and_then(|r| r.get("findings"))
        .and_then(serde_json::Value::as_array)
        .map_or(0, Vec::len);
    Ok(EvidenceSummary {
        photos: evidence.photos.len(),
        track_points: evidence.track.len(),
        signatures: evidence.signatures.len(),
        notes: evidence.notes.len(),
        findings,
        verdict: order.verdict.clone(),
    })
}

/// The order's decisions, oldest first; the operator's login only for platform staff and
/// regulators.
async fn decisions(
    state: &AppState,
    order_id: &str,
    show_operator: bool,
) -> ApiResult<Vec<DecisionView>> {
    let rows = sqlx::query(
        "SELECT d.decision, d.reason, d.items, d.verdict, d.decided_at, a.login \
         FROM order_decisions d JOIN accounts a ON a.id = d.operator_id \
         WHERE d.order_id = $1 ORDER BY d.decided_at, d.id",
    )
    .bind(order_id)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            let items: String = row.try_get("items")?;
            Ok(DecisionView {
                decision: row.try_get("decision")?,
                reason: row.try_get("reason")?,
                items: serde_json::from_str(&items).map_err(ApiError::internal)?,
                verdict: row.try_get("verdict")?,
                operator: if show_operator {
                    Some(row.try_get("login")?)
                } else {
                    None
                },
                at: rfc3339(row.try_get("decided_at")?),
            })
        })
        .collect()
}

/// The items of the order's current `has_issues` decision, if that is its decision now.
pub(crate) async fn current_issues(
    state: &AppState,
    order_id: &str,
) -> ApiResult<Option<Vec<IssueItem>>> {
    let row = sqlx::query(
        "SELECT d.items FROM orders o JOIN order_decisions d ON d.order_id = o.id \
         AND d.decided_at = o.decided_at AND d.decision = o.operator_decision \
         WHERE o.id = $1 AND o.operator_decision = 'has_issues' ORDER BY d.id DESC",
    )
    .bind(order_id)
    .fetch_optional(&state.db.pool)
    .await?;
    row.map(|row| {
        let items: String = row.try_get("items")?;
        serde_json::from_str(&items).map_err(ApiError::internal)
    })
    .transpose()
}

fn finding_view(finding: &crate::verify::Finding) -> FindingView {
    let severity = match finding.severity {
        crate::verify::Severity::Info => "info",
        crate::verify::Severity::Review => "review",
        crate::verify::Severity::Reject => "reject",
    };
    FindingView {
        code: finding.code.clone(),
        severity: severity.to_owned(),
        message: finding.message.clone(),
        item: finding.item.clone(),
    }
}

fn exif_view(facts: &crate::verify::PhotoFacts) -> ExifView {
    use crate::verify::Decoding;
    let (width, height, decoding) = match &facts.decoding {
        Decoding::Decoded { width, height } => (Some(*width), Some(*height), "decoded"),
        Decoding::TooLarge { width, height } => (Some(*width), Some(*height), "too_large"),
        Decoding::Failed { .. } => (None, None, "failed"),
    };
    let exif = facts.exif.clone().unwrap_or_default();
    let format = time::format_description::well_known::Rfc3339;
    let local = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    ExifView {
        camera_make: exif.make,
        camera_model: exif.model,
        software: exif.software,
        taken_at: exif.taken_at.and_then(|t| t.format(&format).ok()),
        taken_at_local: exif.date_time_original.and_then(|t| t.format(&local).ok()),
        gps_lat: exif.gps.map(|g| g.lat),
        gps_lon: exif.gps.map(|g| g.lon),
        gps_time: exif.gps_time.and_then(|t| t.format(&format).ok()),
        orientation: exif.orientation,
        width,
        height,
        decoding: decoding.to_owned(),
    }
}

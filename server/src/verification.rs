//! Runs verification on orders whose evidence changed, in the background.
//!
//! Each order carries a `needs_verification` counter, bumped whenever its evidence changes
//! (a sync that changed its document, a photo upload that completed). A worker task takes
//! order ids from a queue, verifies, stores the verdict, writes the review back into the
//! evidence document, tries to settle, and clears the counter only if it did not move in the
//! meantime. The counter lives in the database, so orders queued when the server stopped are
//! queued again at start.

use std::collections::HashMap;

use flexwork_sync::{ContentHash, Evidence, FindingRecord, ReviewRecord};
use sqlx::Row;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::verify::{self, Report};
use crate::{AppState, evidence, now_ms, statements};

/// Sends order ids to the verification worker.
#[derive(Debug, Clone)]
pub struct Queue(mpsc::UnboundedSender<String>);

impl Queue {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    pub fn enqueue(&self, order_id: &str) {
        if self.0.send(order_id.to_owned()).is_err() {
            tracing::warn!(
                order_id,
                "verification worker has stopped; order stays pending"
            );
        }
    }
}

/// Starts the worker that drains the queue.
pub fn spawn_worker(state: AppState, mut jobs: mpsc::UnboundedReceiver<String>) {
    tokio::spawn(async move {
        while let Some(order_id) = jobs.recv().await {
            if let Err(e) = run(&state, &order_id).await {
                tracing::error!(order_id, error = %e, "verification failed; retrying in a minute");
                let again = state.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    again.verifier.enqueue(&order_id);
                });
            }
        }
    });
}

/// Queues every order left pending by an earlier run.
pub async fn requeue_pending(state: &AppState) -> Result<(), sqlx::Error> {
    let rows = sqlx::query("SELECT id FROM orders WHERE needs_verification > 0")
        .fetch_all(&state.db.pool)
        .await?;
    for row in rows {
        state.verifier.enqueue(&row.try_get::<String, _>("id")?);
    }
    Ok(())
}

/// Verifies one order now.
pub async fn run(state: &AppState, order_id: &str) -> ApiResult<()> {
    let pending = pending_count(state, order_id).await?;
    if pending == 0 {
        return Ok(());
    }
    let task = crate::api::tasks::task_of_order(state, order_id).await?;
    let mut conn = state.db.pool.acquire().await?;
    let loaded = evidence::load(&mut conn, &state.actor, order_id).await?;
    drop(conn);
    let evidence = loaded.doc.read().map_err(ApiError::internal)?;

    let report = verify_evidence(state, order_id, &task, &evidence).await?;
    // The document gets the review before the order shows the verdict, so a phone that
    // syncs as soon as the order reads verified finds the review there. Storing the report
    // clears any operator decision (it covered the old evidence), so the review carries no
    // operator comment.
    save_review(
        state,
        order_id,
        &review_record(report_findings(&report), &report, None),
    )
    .await?;
    store_report(state, order_id, &report, pending).await?;
    statements::try_open(state, order_id).await?;
    let findings = report.findings.len();
    tracing::info!(order_id, verdict = ?report.verdict, findings, "order verified");
    Ok(())
}

async fn pending_count(state: &AppState, order_id: &str) -> ApiResult<i64> {
    let row = sqlx::query("SELECT needs_verification FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_optional(&state.db.pool)
        .await?;
    Ok(row
        .map(|r| r.try_get("needs_verification"))
        .transpose()?
        .unwrap_or(0))
}

async fn verify_evidence(
    state: &AppState,
    order_id: &str,
    task: &crate::api::tasks::Task,
    evidence: &Evidence,
) -> ApiResult<Report> {
    let blobs = fetch_photos(state, order_id, evidence).await?;
    let known = known_photos(state, order_id).await?;
    let context = task.context();
    let thresholds = state.config.verification.clone();
    let evidence = evidence.clone();

    let report = tokio::task::spawn_blocking(move || {
        let input = verify_input(&evidence, &blobs);
        let mut report = verify::verify(&input, &context, &known, &thresholds);
        note_missing_uploads(&mut report, &evidence, &blobs, &context);
        report
    });
    report.await.map_err(ApiError::internal)
}

/// The evidence document and the photo bytes at hand, as verification takes them.
fn verify_input<'a>(
    evidence: &Evidence,
    blobs: &'a HashMap<ContentHash, bytes::Bytes>,
) -> verify::Evidence<'a> {
    let photos = evidence.photos.iter().filter_map(|photo| {
        let bytes = blobs.get(&photo.hash)?;
        let fix = photo.fix.as_ref().map(|f| verify::DeviceFix {
            lat: f.lat,
            lon: f.lon,
            accuracy_m: f.accuracy_m,
            at: at_ms(f.at_ms),
            mock: f.mock,
        });
        Some(verify::PhotoInput {
            id: photo.id.clone(),
            bytes,
            fix,
        })
    });
    let track = evidence.track.iter().map(|p| verify::TrackPoint {
        lat: p.lat,
        lon: p.lon,
        at: p.at_ms.map(at_ms),
        accuracy_m: p.accuracy_m,
    });

    verify::Evidence {
        photos: photos.collect(),
        track: track.collect(),
        signature_count: evidence.signatures.len(),
    }
}

fn at_ms(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Photos recorded but not uploaded yet are a finding of their own, not missing photos.
fn note_missing_uploads(
    report: &mut Report,
    evidence: &Evidence,
    blobs: &HashMap<ContentHash, bytes::Bytes>,
    context: &verify::Context,
) {
    let waiting: Vec<_> = evidence
        .photos
        .iter()
        .filter(|p| !blobs.contains_key(&p.hash))
        .collect();
    if waiting.is_empty() {
        return;
    }
    for photo in &waiting {
        report.findings.push(verify::Finding {
            code: "photo_not_uploaded".into(),
            severity: verify::Severity::Review,
            message: format!(
                "photo {} is recorded but its file has not reached the server yet; it is checked \
                 when it arrives",
                photo.id
            ),
            item: Some(photo.id.clone()),
        });
    }
    let required = context.requirements.map_or(0, |r| r.min_photos as usize);
    if evidence.photos.len() >= required {
        report.findings.retain(|f| f.code != "photos_missing");
    }
    report.verdict = verify::Verdict::of(&report.findings);
}

fn verdict_str(verdict: verify::Verdict) -> &'static str {
    match verdict {
        verify::Verdict::Passed => "passed",
        verify::Verdict::NeedsReview => "needs_review",
        verify::Verdict::Rejected => "rejected",
    }
}

fn severity_str(severity: verify::Severity) -> &'static str {
    match severity {
        verify::Severity::Info => "info",
        verify::Severity::Review => "review",
        verify::Severity::Reject => "reject",
    }
}

/// The bytes of every photo the order's worker has uploaded; photos not uploaded by them
/// (yet) are absent, even when someone else uploaded the same bytes.
async fn fetch_photos(
    state: &AppState,
    order_id: &str,
    evidence: &Evidence,
) -> ApiResult<HashMap<ContentHash, bytes::Bytes>> {
    let uploaded = uploaded_by_worker(state, order_id).await?;
    let mut blobs = HashMap::new();
    for photo in &evidence.photos {
        if blobs.contains_key(&photo.hash) || !uploaded.contains(&photo.hash.to_hex()) {
            continue;
        }
        // A photo the worker uploaded but no site can serve now is a storage failure, not
        // a missing upload: verification waits and tries again rather than say so.
        let bytes = crate::replication::read(state, &photo.hash).await?;
        blobs.insert(photo.hash, bytes);
    }
    Ok(blobs)
}

async fn uploaded_by_worker(
    state: &AppState,
    order_id: &str,
) -> ApiResult<std::collections::HashSet<String>> {
    let rows = sqlx::query(
        "SELECT u.hash FROM media_uploads u JOIN orders o ON o.worker_id = u.account_id \
         JOIN evidence_photos p ON p.order_id = o.id AND p.hash = u.hash WHERE o.id = $1",
    )
    .bind(order_id)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("hash")?)).collect()
}

/// Photos of other orders, for reuse checks.
async fn known_photos(state: &AppState, order_id: &str) -> ApiResult<Vec<verify::KnownPhoto>> {
    let rows = sqlx::query(
        "SELECT order_id, hash, dhash FROM evidence_photos \
         WHERE order_id <> $1 AND dhash IS NOT NULL",
    )
    .bind(order_id)
    .fetch_all(&state.db.pool)
    .await?;

    let mut known = Vec::with_capacity(rows.len());
    for row in rows {
        let hash: String = row.try_get("hash")?;
        let Ok(sha256) = hash.parse() else { continue };
        let dhash: i64 = row.try_get("dhash")?;
        let order_id = row.try_get("order_id")?;
        known.push(verify::KnownPhoto {
            order_id,
            sha256,
            dhash: dhash as u64,
        });
    }
    Ok(known)
}

async fn store_report(
    state: &AppState,
    order_id: &str,
    report: &Report,
    seen: i64,
) -> ApiResult<()> {
    for photo in &report.photos {
        let Some(dhash) = photo.facts.dhash else {
            continue;
        };
        sqlx::query("UPDATE evidence_photos SET dhash = $1 WHERE order_id = $2 AND photo_id = $3")
            .bind(dhash as i64)
            .bind(order_id)
            .bind(&photo.id)
            .execute(&state.db.pool)
            .await?;
    }

    let json = serde_json::to_string(report).map_err(ApiError::internal)?;
    // New evidence was verified: an operator's earlier decision covered the old evidence.
    sqlx::query(
        "UPDATE orders SET verdict = $1, report = $2, verified_at = $3, \
         needs_verification = \
           CASE WHEN needs_verification = $4 THEN 0 ELSE needs_verification END, \
         operator_decision = NULL, operator_reason = NULL, operator_id = NULL, decided_at = NULL \
         WHERE id = $5",
    )
    .bind(verdict_str(report.verdict))
    .bind(json)
    .bind(now_ms())
    .bind(seen)
    .bind(order_id)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// Writes verdict and findings into the evidence document, so they reach the phone. While
/// an operator has sent the evidence back (`has_issues`), each item's comment is a finding
/// of that item (`operator_has_issues`) after the report's own.
pub async fn write_review(state: &AppState, order_id: &str, report: &Report) -> ApiResult<()> {
    let comment = operator_comment(state, order_id).await?;
    let mut findings = report_findings(report);
    let issues = crate::api::evidence::current_issues(state, order_id).await?;
    findings.extend(
        issues
            .unwrap_or_default()
            .into_iter()
            .map(|issue| FindingRecord {
                code: "operator_has_issues".to_owned(),
                severity: "error".to_owned(),
                message: issue.comment,
                item: Some(issue.item),
            }),
    );
    save_review(state, order_id, &review_record(findings, report, comment)).await
}

fn report_findings(report: &Report) -> Vec<FindingRecord> {
    report.findings.iter().map(finding_record).collect()
}

fn review_record(
    findings: Vec<FindingRecord>,
    report: &Report,
    comment: Option<String>,
) -> ReviewRecord {
    ReviewRecord {
        verdict: verdict_str(report.verdict).to_owned(),
        findings,
        reviewed_at_ms: now_ms(),
        comment,
    }
}

/// Puts `review` into the order's evidence document, retrying while syncs change it.
async fn save_review(state: &AppState, order_id: &str, review: &ReviewRecord) -> ApiResult<()> {
    let mut conn = state.db.pool.acquire().await?;
    for _ in 0..evidence::MAX_ATTEMPTS {
        let mut loaded = evidence::load(&mut conn, &state.actor, order_id).await?;
        loaded
            .doc
            .set_review(review, now_ms())
            .map_err(ApiError::internal)?;
        if evidence::save(&mut conn, order_id, &mut loaded).await? {
            return Ok(());
        }
    }
    Err(ApiError::internal(
        "evidence document kept changing while writing the review",
    ))
}

async fn operator_comment(state: &AppState, order_id: &str) -> ApiResult<Option<String>> {
    let row = sqlx::query("SELECT operator_reason FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_one(&state.db.pool)
        .await?;
    Ok(row.try_get("operator_reason")?)
}

fn finding_record(finding: &verify::Finding) -> FindingRecord {
    FindingRecord {
        code: finding.code.clone(),
        severity: severity_str(finding.severity).to_owned(),
        message: finding.message.clone(),
        item: finding.item.clone(),
    }
}

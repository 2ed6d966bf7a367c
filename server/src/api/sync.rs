//! `POST /sync`: one round of evidence-document sync with a worker's device.
//!
//! The body is a CBOR [`SyncRequest`]. Each document message is checked against the caller's
//! orders, bounded by the sync-message guard, and merged into the stored document; one
//! document's bad message is reported in `rejected` and does not stop the others. The answer
//! carries the server's messages, the worker's orders and the media still wanted.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flexwork_sync::protocol::{self, CBOR_MEDIA_TYPE};
use flexwork_sync::{
    DocMessage, DocPeer, DocRejection, ErrorBody, OrderSummary, PROTOCOL_VERSION, SyncRequest,
    SyncResponse,
};
use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, evidence, now_ms};

/// One round of evidence-document sync with a worker's device.
///
/// The body is a CBOR `SyncRequest` (`application/cbor`), within the server's configured sync
/// body limit; the answer a CBOR `SyncResponse`. One document's bad message is reported in
/// `rejected` and does not stop the others. A device repeats rounds until neither side has
/// anything to send.
///
/// Who may call: Permission `record_evidence`: workers, for their own orders.
#[utoipa::path(
    post,
    path = "/sync",
    operation_id = "sync",
    tag = "sync",
    security(("bearer" = [])),
    request_body(content = SyncRequest, content_type = "application/cbor"),
    responses(
        (status = 200, description = "The server's messages, the worker's orders and the \
            media still wanted", body = SyncResponse, content_type = "application/cbor"),
        (status = 400, description = "`unsupported_protocol`, `malformed_sync_message`, \
            `too_many_documents` (more than 200), `invalid_device_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a worker", body = ErrorBody),
        (status = 413, description = "`body_too_large`: over the configured sync body limit",
            body = ErrorBody),
    ),
)]
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require(Permission::RecordEvidence)?;
    let request = protocol::decode_request(&body).map_err(|e| {
        tracing::warn!(account_id = %caller.account_id, error = ?e, "refused sync request");
        ApiError::bad_request(e.code(), e.to_string())
    })?;
    validate_device_id(&request.device_id)?;

    let response = handle(&state, &caller, &request).await?;
    let mut reply = (StatusCode::OK, protocol::encode(&response)).into_response();
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CBOR_MEDIA_TYPE),
    );
    Ok(reply)
}

fn validate_device_id(device_id: &str) -> ApiResult<()> {
    if device_id.is_empty() || device_id.len() > 128 {
        let message = "device_id must be 1 to 128 bytes";
        return Err(ApiError::bad_request("invalid_device_id", message));
    }
    Ok(())
}

async fn handle(
    state: &AppState,
    caller: &Caller,
    request: &SyncRequest,
) -> ApiResult<SyncResponse> {
    let mut round = Round::default();

    let peer = PeerKey {
        account_id: &caller.account_id,
        device_id: &request.device_id,
    };
    // One transaction for the whole request: one durable commit instead of one per write,
    // and the request's documents and sync states read in two queries. The orders are read
    // inside it, so an order cancelled or confirmed meanwhile is seen as such.
    let mut tx = state.db.begin_write().await?;
    let owned = worker_order_ids(&mut tx, &caller.account_id).await?;
    let (mine, others): (Vec<_>, Vec<_>) = request
        .docs
        .iter()
        .partition(|m| owned.contains_key(&m.order_id));
    for message in others {
        round.rejected.push(rejection(
            &message.order_id,
            "order_not_found",
            "no such order",
        ));
    }

    let mut stored = prefetch(&mut tx, peer, &mine).await?;
    for message in mine {
        let closed = owned
            .get(&message.order_id)
            .copied()
            .unwrap_or(Closed::Confirmed);
        let target = Target { peer, closed };
        apply(state, &mut tx, target, message, &mut stored, &mut round).await?;
    }
    tx.commit().await?;
    for order_id in &round.to_verify {
        state.verifier.enqueue(order_id);
    }

    Ok(SyncResponse {
        protocol: PROTOCOL_VERSION,
        server_time_ms: now_ms(),
        orders: match request.want_orders {
            true => order_summaries(state, &caller.account_id).await?,
            false => Vec::new(),
        },
        docs: round.replies,
        rejected: round.rejected,
        wanted_media: wanted_media(state, &caller.account_id).await?,
    })
}

/// What one request produced so far.
#[derive(Debug, Default)]
struct Round {
    replies: Vec<DocMessage>,
    rejected: Vec<DocRejection>,
    /// Submitted orders whose evidence changed: verified after the commit.
    to_verify: Vec<String>,
}

/// Where a message goes: whose sync state it advances, and whether the order still takes
/// evidence (not once the enterprise confirmed it or it was cancelled).
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    peer: PeerKey<'a>,
    closed: Closed,
}

/// Whether an order still takes evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    Open,
    Confirmed,
    Cancelled,
}

/// Whose sync state a message advances.
#[derive(Debug, Clone, Copy)]
struct PeerKey<'a> {
    account_id: &'a str,
    device_id: &'a str,
}

fn rejection(order_id: &str, code: &str, message: impl Into<String>) -> DocRejection {
    DocRejection {
        order_id: order_id.to_owned(),
        code: code.to_owned(),
        message: message.into(),
    }
}

/// Merges one document message and queues the server's next message for that document.
/// A message the guard or Automerge refuses is a rejection of that document only; a database
/// failure fails the request.
async fn apply(
    state: &AppState,
    conn: &mut AnyConnection,
    target: Target<'_>,
    message: &DocMessage,
    stored: &mut Prefetched,
    round: &mut Round,
) -> ApiResult<()> {
    let order_id = message.order_id.as_str();
    let mut loaded = evidence::open(order_id, &state.actor, stored.docs.remove(order_id))?;
    let saved_state = stored.states.remove(order_id).unwrap_or_default();
    // A state we cannot read only costs an extra round: start afresh.
    let mut peer = DocPeer::from_state_bytes(&saved_state).unwrap_or_default();
    let peer_key = target.peer;
    let before = loaded.doc.automerge().get_heads();

    let limits = &state.config.limits.sync_message;
    if let Err(e) = peer.receive(loaded.doc.automerge(), &message.message, limits) {
        let device_id = peer_key.device_id;
        tracing::warn!(order_id, device_id, error = %e, "refused sync message");
        round
            .rejected
            .push(rejection(order_id, e.code(), e.to_string()));
        return Ok(());
    }
    let changed = loaded.doc.automerge().get_heads() != before;
    let checked = match changed {
        true => check_changes(&mut loaded.doc, &before, target.closed),
        false => Ok(()),
    };
    if let Err((code, message)) = checked {
        let device_id = peer_key.device_id;
        tracing::warn!(order_id, device_id, code, "refused evidence change");
        round.rejected.push(rejection(order_id, code, message));
        return Ok(());
    }
    // Inside this write transaction nobody else can have saved the document meanwhile.
    if changed && !evidence::save(conn, order_id, &mut loaded).await? {
        return Err(ApiError::internal(
            "evidence document changed inside a write transaction",
        ));
    }

    if let Some(reply) = peer.generate(loaded.doc.automerge()) {
        round.replies.push(DocMessage {
            order_id: order_id.to_owned(),
            message: reply,
        });
    }
    if peer.state_bytes() != saved_state {
        save_peer(conn, peer_key, order_id, &peer).await?;
    }
    if changed && evidence::ingest(conn, order_id, &loaded.doc).await? {
        round.to_verify.push(order_id.to_owned());
    }
    Ok(())
}

/// Refuses changes to a confirmed order's evidence, and changes no device may make.
fn check_changes(
    doc: &mut flexwork_sync::EvidenceDoc,
    before: &[automerge::ChangeHash],
    closed: Closed,
) -> Result<(), (&'static str, String)> {
    match closed {
        Closed::Open => {}
        Closed::Confirmed => {
            let message = "this order is confirmed; its evidence can no longer change";
            return Err(("order_closed", message.to_owned()));
        }
        Closed::Cancelled => {
            let message = "this order was cancelled; it takes no more evidence";
            return Err(("order_cancelled", message.to_owned()));
        }
    }
    let earlier = doc
        .at(before)
        .map_err(|e| ("malformed_evidence", e.to_string()))?;
    doc.check_device_changes(&earlier)
        .map_err(|e| ("evidence_rewritten", e.to_string()))
}

/// The stored documents and sync states of one request's orders.
#[derive(Debug, Default)]
struct Prefetched {
    docs: HashMap<String, (Vec<u8>, i64)>,
    states: HashMap<String, Vec<u8>>,
}

async fn prefetch(
    conn: &mut AnyConnection,
    key: PeerKey<'_>,
    messages: &[&DocMessage],
) -> ApiResult<Prefetched> {
    let mut stored = Prefetched::default();
    if messages.is_empty() {
        return Ok(stored);
    }
    let sql = format!(
        "SELECT order_id, doc, version FROM evidence_docs WHERE order_id IN ({})",
        crate::evidence::placeholders(1, messages.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for message in messages {
        query = query.bind(&message.order_id);
    }
    for row in query.fetch_all(&mut *conn).await? {
        let doc = (row.try_get("doc")?, row.try_get("version")?);
        stored.docs.insert(row.try_get("order_id")?, doc);
    }

    let sql = format!(
        "SELECT order_id, state FROM doc_sync_states \
         WHERE account_id = $1 AND device_id = $2 AND order_id IN ({})",
        crate::evidence::placeholders(3, messages.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(key.account_id)
        .bind(key.device_id);
    for message in messages {
        query = query.bind(&message.order_id);
    }
    for row in query.fetch_all(&mut *conn).await? {
        stored
            .states
            .insert(row.try_get("order_id")?, row.try_get("state")?);
    }
    Ok(stored)
}

async fn save_peer(
    conn: &mut AnyConnection,
    key: PeerKey<'_>,
    order_id: &str,
    peer: &DocPeer,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO doc_sync_states (account_id, device_id, order_id, state) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id, device_id, order_id) DO UPDATE SET state = excluded.state",
    )
    .bind(key.account_id)
    .bind(key.device_id)
    .bind(order_id)
    .bind(peer.state_bytes())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The worker's orders, each with whether it is closed to new evidence.
async fn worker_order_ids(
    conn: &mut AnyConnection,
    worker_id: &str,
) -> ApiResult<HashMap<String, Closed>> {
    let rows = sqlx::query(
        "SELECT o.id, CAST(CASE WHEN o.cancelled_at IS NOT NULL THEN 2 \
                WHEN o.confirmation = 'confirmed' OR s.id IS NOT NULL THEN 1 \
                ELSE 0 END AS BIGINT) AS closed \
         FROM orders o LEFT JOIN settlements s ON s.order_id = o.id WHERE o.worker_id = $1",
    )
    .bind(worker_id)
    .fetch_all(&mut *conn)
    .await?;
    let closed = |code: i64| match code {
        0 => Closed::Open,
        2 => Closed::Cancelled,
        _ => Closed::Confirmed,
    };
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, closed(r.try_get::<i64, _>("closed")?))))
        .collect()
}

async fn order_summaries(state: &AppState, worker_id: &str) -> ApiResult<Vec<OrderSummary>> {
    let rows = sqlx::query(
        "SELECT o.id AS order_id, o.submitted_at, o.verdict, o.operator_decision, \
                o.confirmation, o.cancelled_at, s.id AS settlement_id, \
                s.status AS settlement_status, st.status AS statement_status, \
                CAST(CASE WHEN s.status = 'paid' AND s.gross_fen <= ( \
                    SELECT COALESCE(SUM(l.amount_fen), 0) FROM invoice_lines l \
                    JOIN invoices i ON i.id = l.invoice_id \
                    WHERE l.settlement_id = s.id AND i.status = 'issued') \
                  THEN 1 ELSE 0 END AS BIGINT) AS invoiced, t.* \
         FROM orders o JOIN tasks t ON t.id = o.task_id \
         LEFT JOIN settlements s ON s.order_id = o.id \
         LEFT JOIN statements st ON st.order_id = o.id AND st.status <> 'superseded' \
         WHERE o.worker_id = $1 ORDER BY o.created_at",
    )
    .bind(worker_id)
    .fetch_all(&state.db.pool)
    .await?;

    rows.iter().map(summary_from_row).collect()
}

fn summary_from_row(row: &sqlx::any::AnyRow) -> ApiResult<OrderSummary> {
    let task = super::tasks::task_from_row(row)?;
    let verdict: Option<String> = row.try_get("verdict")?;
    let statement: Option<String> = row.try_get("statement_status")?;
    let status = super::orders::Progress {
        cancelled: row.try_get::<Option<i64>, _>("cancelled_at")?.is_some(),
        settled: row.try_get::<Option<String>, _>("settlement_id")?.is_some(),
        statement: statement.as_deref(),
        paid: row
            .try_get::<Option<String>, _>("settlement_status")?
            .as_deref()
            == Some("paid"),
        invoiced: row.try_get::<i64, _>("invoiced")? == 1,
        submitted: row.try_get::<Option<i64>, _>("submitted_at")?.is_some(),
        verdict: verdict.as_deref(),
        decision: row
            .try_get::<Option<String>, _>("operator_decision")?
            .as_deref(),
        confirmation: row.try_get::<Option<String>, _>("confirmation")?.as_deref(),
    }
    .status();

    Ok(OrderSummary {
        order_id: row.try_get("order_id")?,
        task_id: task.id,
        title: task.title,
        description: task.description,
        site: task.site,
        window: task.window,
        fee_fen: task.fee_fen,
        requirements: task.requirements,
        status: status.to_owned(),
        verdict,
    })
}

async fn wanted_media(
    state: &AppState,
    worker_id: &str,
) -> ApiResult<Vec<flexwork_sync::ContentHash>> {
    let rows = sqlx::query(
        "SELECT DISTINCT p.hash FROM evidence_photos p JOIN orders o ON o.id = p.order_id \
         WHERE o.worker_id = $1 \
           AND NOT EXISTS (SELECT 1 FROM media_uploads u \
                           WHERE u.hash = p.hash AND u.account_id = o.worker_id)",
    )
    .bind(worker_id)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>("hash").ok()?.parse().ok())
        .collect())
}

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
    DocMessage, DocPeer, DocRejection, OrderSummary, PROTOCOL_VERSION, SyncRequest, SyncResponse,
};
use sqlx::Row;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, evidence, now_ms};

/// Handles one sync round.
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require(Role::Worker)?;
    let request = protocol::decode_request(&body).map_err(|e| {
        tracing::warn!(account_id = %caller.account_id, error = %e, "refused sync request");
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
    let owned = worker_order_ids(state, &caller.account_id).await?;
    let mut docs = Vec::new();
    let mut rejected = Vec::new();

    for message in &request.docs {
        if !owned.contains(&message.order_id) {
            rejected.push(rejection(
                &message.order_id,
                "order_not_found",
                "no such order",
            ));
            continue;
        }
        match apply(state, caller, &request.device_id, message).await {
            Ok(Some(reply)) => docs.push(reply),
            Ok(None) => {}
            Err(rejection) => rejected.push(rejection),
        }
    }

    Ok(SyncResponse {
        protocol: PROTOCOL_VERSION,
        server_time_ms: now_ms(),
        orders: order_summaries(state, &caller.account_id).await?,
        docs,
        rejected,
        wanted_media: wanted_media(state, &caller.account_id).await?,
    })
}

fn rejection(order_id: &str, code: &str, message: impl Into<String>) -> DocRejection {
    DocRejection {
        order_id: order_id.to_owned(),
        code: code.to_owned(),
        message: message.into(),
    }
}

/// Merges one document message; answers with the server's next message for that document.
async fn apply(
    state: &AppState,
    caller: &Caller,
    device_id: &str,
    message: &DocMessage,
) -> Result<Option<DocMessage>, DocRejection> {
    let order_id = message.order_id.as_str();
    let internal = |e: ApiError| rejection(order_id, e.code, e.message);

    for _ in 0..evidence::MAX_ATTEMPTS {
        let mut loaded = evidence::load(state, order_id).await.map_err(internal)?;
        let mut peer = load_peer(state, caller, device_id, order_id)
            .await
            .map_err(internal)?;
        let before = loaded.doc.automerge().get_heads();

        let limits = &state.config.limits.sync_message;
        if let Err(e) = peer.receive(loaded.doc.automerge(), &message.message, limits) {
            tracing::warn!(order_id, device_id, error = %e, "refused sync message");
            return Err(rejection(order_id, e.code(), e.to_string()));
        }
        let changed = loaded.doc.automerge().get_heads() != before;
        if changed
            && !evidence::save(state, order_id, &mut loaded)
                .await
                .map_err(internal)?
        {
            continue;
        }

        let reply = peer.generate(loaded.doc.automerge());
        save_peer(state, caller, device_id, order_id, &peer)
            .await
            .map_err(internal)?;
        if changed {
            let read = loaded
                .doc
                .read()
                .map_err(|e| internal(ApiError::internal(e)))?;
            evidence::ingest(state, order_id, &read)
                .await
                .map_err(internal)?;
        }
        let order_id = order_id.to_owned();
        return Ok(reply.map(|message| DocMessage { order_id, message }));
    }
    Err(rejection(
        order_id,
        "busy",
        "the document kept changing; sync again",
    ))
}

async fn load_peer(
    state: &AppState,
    caller: &Caller,
    device_id: &str,
    order_id: &str,
) -> ApiResult<DocPeer> {
    let row = sqlx::query(
        "SELECT state FROM doc_sync_states \
         WHERE account_id = $1 AND device_id = $2 AND order_id = $3",
    )
    .bind(&caller.account_id)
    .bind(device_id)
    .bind(order_id)
    .fetch_optional(&state.db.pool)
    .await?;

    let Some(row) = row else {
        return Ok(DocPeer::new());
    };
    let bytes: Vec<u8> = row.try_get("state")?;
    // A state we cannot read only costs an extra round: start afresh.
    Ok(DocPeer::from_state_bytes(&bytes).unwrap_or_default())
}

async fn save_peer(
    state: &AppState,
    caller: &Caller,
    device_id: &str,
    order_id: &str,
    peer: &DocPeer,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO doc_sync_states (account_id, device_id, order_id, state) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id, device_id, order_id) DO UPDATE SET state = excluded.state",
    )
    .bind(&caller.account_id)
    .bind(device_id)
    .bind(order_id)
    .bind(peer.state_bytes())
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

async fn worker_order_ids(
    state: &AppState,
    worker_id: &str,
) -> ApiResult<std::collections::HashSet<String>> {
    let rows = sqlx::query("SELECT id FROM orders WHERE worker_id = $1")
        .bind(worker_id)
        .fetch_all(&state.db.pool)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

async fn order_summaries(state: &AppState, worker_id: &str) -> ApiResult<Vec<OrderSummary>> {
    let rows = sqlx::query(
        "SELECT o.id AS order_id, o.submitted_at, o.verdict, o.operator_decision, \
                o.confirmation, s.id AS settlement_id, t.* \
         FROM orders o JOIN tasks t ON t.id = o.task_id \
         LEFT JOIN settlements s ON s.order_id = o.id \
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
    let status = super::orders::Progress {
        settled: row.try_get::<Option<String>, _>("settlement_id")?.is_some(),
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
           AND NOT EXISTS (SELECT 1 FROM media_objects m WHERE m.hash = p.hash)",
    )
    .bind(worker_id)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>("hash").ok()?.parse().ok())
        .collect())
}

//! Master keys of encryption at rest: status, rotation and retirement.
//!
//! Rotation adds a master key to the key file, makes it current, and re-wraps under it the
//! data key of every blob at every site (the sealed media itself is not read or rewritten)
//! and every personal field and TOTP secret sealed in the database. A master key can be
//! retired (removed from the key file) only once nothing at any site or in the database still
//! needs it.

use std::collections::BTreeMap;

use flexwork_storage::{MediaStore, RewrapReport, Suite};
use serde::Serialize;

use axum::http::StatusCode;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

fn key_file_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "key_file_unavailable",
        format!("the master key file: {e}"),
    )
}

/// Blobs whose copy at `site` is recorded as written (stored by an upload or copied there).
async fn expected_copies(state: &AppState, site: &str) -> ApiResult<i64> {
    use sqlx::Row;

    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM replication_jobs \
         WHERE site = $1 AND state IN ('stored', 'done')",
    )
    .bind(site)
    .fetch_one(&state.db.pool)
    .await?;
    Ok(row.try_get("n")?)
}

/// The master keys and which of them each site's envelopes use.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub current: String,
    pub master_keys: Vec<String>,
    /// Site → master key → envelopes wrapped by it.
    pub envelopes: BTreeMap<String, BTreeMap<String, usize>>,
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    pub previous: String,
    pub current: String,
    /// Site → what the re-wrap of its envelopes did.
    pub sites: BTreeMap<String, RewrapReport>,
    /// Sealed database fields re-wrapped.
    pub fields_rewrapped: usize,
}

/// Every sealed column of the database: table, key column, sealed column, and the context its
/// values were sealed with.
const SEALED_COLUMNS: &[(&str, &str, &str)] = &[
    ("worker_applications", "id", "name"),
    ("worker_applications", "id", "id_number"),
    ("worker_applications", "id", "bank_card"),
    ("worker_applications", "id", "phone"),
    ("enterprise_personnel", "id", "name"),
    ("accounts", "id", "totp"),
];

fn sealed_column(column: &str) -> String {
    if column == "totp" {
        "totp_secret".to_owned()
    } else {
        format!("{column}_sealed")
    }
}

fn field_context(table: &str, column: &str, row: &str) -> Vec<u8> {
    if column == "totp" {
        crate::auth::totp::context(row)
    } else {
        crate::privacy::context(table, column, row)
    }
}

/// Re-wraps every sealed database field not wrapped by `current`; returns how many.
async fn rewrap_fields(state: &AppState, current: &str) -> ApiResult<usize> {
    use flexwork_storage::{Kms, WrappedKey};
    use sqlx::Row;

    let mut done = 0;
    for (table, key, column) in SEALED_COLUMNS {
        let sealed = sealed_column(column);
        let sql =
            format!("SELECT {key} AS k, {sealed} AS v FROM {table} WHERE {sealed} IS NOT NULL");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&state.db.pool)
            .await?;
        for row in rows {
            let (id, value): (String, String) = (row.try_get("k")?, row.try_get("v")?);
            let wrapped: WrappedKey = serde_json::from_str(&value).map_err(ApiError::internal)?;
            if wrapped.master_key == current {
                continue;
            }
            let context = field_context(table, column, &id);
            let keys = &state.sites.keys;
            let plain = keys
                .unwrap(&wrapped, &context)
                .await
                .map_err(ApiError::internal)?;
            let again = keys
                .wrap(&plain, &context)
                .await
                .map_err(ApiError::internal)?;
            let json = serde_json::to_string(&again).map_err(ApiError::internal)?;
            let sql =
                format!("UPDATE {table} SET {sealed} = $1 WHERE {key} = $2 AND {sealed} = $3");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(json)
                .bind(&id)
                .bind(&value)
                .execute(&state.db.pool)
                .await?;
            done += 1;
        }
    }
    Ok(done)
}

/// How many sealed database fields master key `id` still wraps.
async fn fields_using(state: &AppState, id: &str) -> ApiResult<i64> {
    use sqlx::Row;

    let pattern = format!("%\"master_key\":\"{id}\"%");
    let mut total = 0;
    for (table, _, column) in SEALED_COLUMNS {
        let sealed = sealed_column(column);
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {sealed} LIKE $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&pattern)
            .fetch_one(&state.db.pool)
            .await?;
        total += row.try_get::<i64, _>("n")?;
    }
    Ok(total)
}

pub async fn status(state: &AppState) -> ApiResult<KeyStatus> {
    let keys = &state.sites.keys;
    let current = state
        .sites
        .primary()
        .current_master_key()
        .await
        .map_err(key_file_error)?;
    let mut envelopes = BTreeMap::new();
    for site in state.sites.all() {
        let counts = site.envelopes_by_master_key().await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "site_unavailable",
                format!("media site `{}` cannot be read: {e}", site.name()),
            )
        })?;
        envelopes.insert(site.name().to_owned(), counts);
    }
    Ok(KeyStatus {
        current,
        master_keys: keys.key_ids(),
        envelopes,
    })
}

/// Makes a new master key of `suite` current and re-wraps every envelope at every site.
pub async fn rotate(state: &AppState, suite: Suite) -> ApiResult<Rotation> {
    let previous = state
        .sites
        .primary()
        .current_master_key()
        .await
        .map_err(key_file_error)?;
    let current = state.sites.keys.rotate(suite).map_err(key_file_error)?;
    let mut sites = BTreeMap::new();
    for site in state.sites.all() {
        // A site that cannot be reached now keeps its old wrapping; the report says so, and
        // the old key cannot be retired until a later rotation reaches it.
        let report = match site.rewrap_all().await {
            Ok(report) => report,
            Err(e) => {
                tracing::warn!(site = site.name(), error = %e, "site not re-wrapped");
                RewrapReport {
                    failed: 1,
                    ..RewrapReport::default()
                }
            }
        };
        sites.insert(site.name().to_owned(), report);
    }
    let fields_rewrapped = rewrap_fields(state, &current).await?;
    Ok(Rotation {
        previous,
        current,
        sites,
        fields_rewrapped,
    })
}

/// Removes master key `id` from the key file, unless an envelope at some site or a sealed
/// field in the database still uses it, or some site holds fewer envelopes than the blobs it
/// should have (it may be unreachable or restored from an old backup).
pub async fn retire(state: &AppState, id: &str) -> ApiResult<()> {
    let status = status(state).await?;
    if !status.master_keys.iter().any(|k| k == id) {
        let message =
            format!("the key file holds no master key `{id}`; `flexwork keys status` lists them");
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_master_key",
            message,
        ));
    }
    if status.current == id {
        let message = format!("`{id}` is the current master key; rotate to a new one first");
        return Err(ApiError::conflict("master_key_current", message));
    }
    for (site, counts) in &status.envelopes {
        let held: usize = counts.values().sum();
        let expected = expected_copies(state, site).await?;
        if (held as i64) < expected {
            let message = format!(
                "site {site} holds {held} envelopes but {expected} blobs should be there: it \
                 may be unreachable or incomplete; repair it with `flexwork scrub` and rotate \
                 again before retiring"
            );
            return Err(ApiError::conflict("site_incomplete", message));
        }
    }
    for (site, counts) in &status.envelopes {
        if let Some(n) = counts.get(id).filter(|n| **n > 0) {
            let message = format!(
                "{n} blobs at site {site} still need master key {id}; run `flexwork keys \
                 rotate` again once every site can be reached"
            );
            return Err(ApiError::conflict("master_key_in_use", message));
        }
        if let Some(n) = counts.get("?") {
            let message = format!(
                "{n} envelopes at site {site} could not be read; repair them with `flexwork \
                 scrub` before retiring"
            );
            return Err(ApiError::conflict("envelopes_unreadable", message));
        }
    }
    let fields = fields_using(state, id).await?;
    if fields > 0 {
        let message = format!(
            "{fields} sealed fields in the database still need master key {id}; run \
             `flexwork keys rotate` first"
        );
        return Err(ApiError::conflict("master_key_in_use", message));
    }
    state.sites.keys.retire(id).map_err(key_file_error)
}

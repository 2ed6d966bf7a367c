//! Master keys of encryption at rest: status, rotation and retirement.
//!
//! Rotation adds a master key to the key file, makes it current, and re-wraps the data key
//! of every blob at every site under it; the sealed media itself is not read or rewritten.
//! A master key can be retired (removed from the key file) only once no envelope at any site
//! still needs it.

use std::collections::BTreeMap;

use flexwork_storage::{MediaStore, RewrapReport, Suite};
use serde::Serialize;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

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
}

pub async fn status(state: &AppState) -> ApiResult<KeyStatus> {
    let keys = &state.sites.keys;
    let current = state
        .sites
        .primary()
        .current_master_key()
        .await
        .map_err(ApiError::internal)?;
    let mut envelopes = BTreeMap::new();
    for site in state.sites.all() {
        let counts = site
            .envelopes_by_master_key()
            .await
            .map_err(ApiError::internal)?;
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
        .map_err(ApiError::internal)?;
    let current = state.sites.keys.rotate(suite).map_err(ApiError::internal)?;
    let mut sites = BTreeMap::new();
    for site in state.sites.all() {
        let report = site.rewrap_all().await.map_err(ApiError::internal)?;
        sites.insert(site.name().to_owned(), report);
    }
    Ok(Rotation {
        previous,
        current,
        sites,
    })
}

/// Removes master key `id` from the key file, unless an envelope at some site still uses it.
pub async fn retire(state: &AppState, id: &str) -> ApiResult<()> {
    let status = status(state).await?;
    for (site, counts) in &status.envelopes {
        if let Some(n) = counts.get(id).filter(|n| **n > 0) {
            let message = format!(
                "{n} blobs at site {site} still need master key {id}; run `flexwork keys \
                 rotate` (or a scrub, if that site was unreachable) first"
            );
            return Err(ApiError::conflict("master_key_in_use", message));
        }
        if let Some(n) = counts.get("?") {
            let message = format!(
                "{n} envelopes at site {site} could not be read; run a scrub before retiring"
            );
            return Err(ApiError::conflict("envelopes_unreadable", message));
        }
    }
    state.sites.keys.retire(id).map_err(ApiError::internal)
}

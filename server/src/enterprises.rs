//! Enterprise onboarding (standard 5.1.2) and the conflict check of 5.1.1 b.
//!
//! An enterprise applies with its name, Unified Social Credit Code, licence validity and
//! business scope, its declared directors, supervisors and senior managers, and consent to the
//! privacy notice; it then uploads four documents — the business licence scan and photos of
//! the storefront, the office and the business scene — with the one-time upload token the
//! application answered. The documents are stored like evidence media: sealed, replicated to
//! every site. A credit code whose check character fails is not refused (some real pilot
//! registrations fail it): the reviewer is told to verify it with the registry. The review
//! queue and its two-working-day deadline are those of workers; approval needs every document
//! and creates the enterprise's account.
//!
//! Declared managers are kept as keyed hashes of their ID numbers: a worker whose ID number
//! matches one of an enterprise's managers is flagged at application and cannot be given that
//! enterprise's tasks.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::audit::{self, Event, Outcome};
use crate::auth::{self, Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::identity::{self, CreditCode, IdNumber, SHANGHAI};
use crate::privacy::{self, Consent};
use crate::{AppState, new_id, now_ms, rfc3339};

/// The documents every enterprise application needs.
pub const DOCUMENTS: [&str; 4] = ["business_licence", "storefront", "office", "business_scene"];

/// One declared director, supervisor or senior manager.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Manager {
    pub name: String,
    pub id_number: String,
    /// `director`, `supervisor` or `senior_manager`.
    pub position: String,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("name", &identity::mask_name(&self.name))
            .field("id_number", &identity::mask_id_number(&self.id_number))
            .field("position", &self.position)
            .finish()
    }
}

/// An enterprise's application as sent.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = EnterpriseApplication)]
pub struct Application {
    pub login: String,
    pub password: String,
    pub company_name: String,
    pub credit_code: String,
    /// `YYYY-MM-DD`.
    pub licence_valid_from: String,
    /// `YYYY-MM-DD`, or absent for a licence without end date (长期).
    pub licence_valid_to: Option<String>,
    pub business_scope: String,
    pub managers: Vec<Manager>,
    pub consent: Option<Consent>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("login", &self.login)
            .field("company_name", &self.company_name)
            .field("managers", &self.managers.len())
            .finish_non_exhaustive()
    }
}

/// What the applicant gets back: the id, the token for uploading documents, the deadline.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EnterpriseSubmitted)]
pub struct Submitted {
    pub id: String,
    pub upload_token: String,
    pub state: &'static str,
    pub review_deadline: String,
    pub documents_needed: [&'static str; 4],
    pub warnings: Vec<&'static str>,
}

impl std::fmt::Debug for Submitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitted")
            .field("id", &self.id)
            .field("upload_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn parse_date(field: &'static str, value: &str) -> ApiResult<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &format).map_err(|_| {
        ApiError::bad_request("invalid_date", format!("{field} is a date like 2026-12-04"))
    })
}

/// Checks and stores an enterprise's application.
pub async fn submit(
    state: &AppState,
    app: &Application,
    address: Option<String>,
) -> ApiResult<Submitted> {
    auth::throttle_application(state, address.as_deref()).await?;
    let notice_version = privacy::require_consent(app.consent.as_ref())?;
    let now = now_ms();
    let submitted =
        time::OffsetDateTime::from_unix_timestamp(now / 1_000).map_err(ApiError::internal)?;
    let today = submitted.to_offset(SHANGHAI).date();
    let code = CreditCode::parse(&app.credit_code).map_err(|e| {
        ApiError::bad_request(e.code(), format!("the unified social credit code: {e}"))
    })?;
    let from = parse_date("licence_valid_from", &app.licence_valid_from)?;
    let to = app
        .licence_valid_to
        .as_deref()
        .map(|d| parse_date("licence_valid_to", d))
        .transpose()?;
    if to.is_some_and(|to| to < today || to < from) {
        let message = "the business licence has expired; renew it before applying";
        return Err(ApiError::bad_request("licence_expired", message));
    }
    let name = app.company_name.trim();
    if name.is_empty() || name.chars().count() > 200 || app.business_scope.trim().is_empty() {
        let message = "give the company name as registered and its business scope";
        return Err(ApiError::bad_request("invalid_company", message));
    }
    if app.managers.is_empty() {
        let message = "declare the enterprise's directors, supervisors and senior managers";
        return Err(ApiError::bad_request("managers_required", message));
    }
    let mut managers = Vec::with_capacity(app.managers.len());
    if app.managers.len() > 50 || app.business_scope.chars().count() > 2_000 {
        let message = "at most 50 managers and 2,000 characters of business scope";
        return Err(ApiError::bad_request("too_long", message));
    }
    if from > today {
        let message = "the licence cannot be valid only from a future date";
        return Err(ApiError::bad_request("invalid_date", message));
    }
    for manager in &app.managers {
        if !crate::onboarding::plausible_name(manager.name.trim()) {
            let message = "each manager needs a name as on their ID card";
            return Err(ApiError::bad_request("invalid_name", message));
        }
        if !["director", "supervisor", "senior_manager"].contains(&manager.position.as_str()) {
            let message = "a manager's position is director, supervisor or senior_manager";
            return Err(ApiError::bad_request("invalid_position", message));
        }
        let id = IdNumber::parse(&manager.id_number, today)
            .map_err(|e| ApiError::bad_request(e.code(), format!("a manager's ID number: {e}")))?;
        managers.push((manager, id));
    }
    auth::validate_login(&app.login)?;
    auth::validate_password(&app.password)?;
    if auth::login_in_use(state, &app.login).await? {
        return Err(ApiError::conflict(
            "login_taken",
            "that login is already in use",
        ));
    }

    let id = new_id();
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let upload_token = hex::encode(raw);
    let deadline = state
        .config
        .calendar
        .add_working_days(submitted, 2, SHANGHAI);
    let deadline_ms = deadline.unix_timestamp() * 1_000;
    let mut sealed_managers = Vec::with_capacity(managers.len());
    for (manager, number) in &managers {
        let row = new_id();
        let table = "enterprise_personnel";
        let name = privacy::seal(state, table, "name", &row, manager.name.trim()).await?;
        let hash = privacy::lookup_hash(state, "id_number", number.as_str());
        sealed_managers.push((row, manager.position.clone(), name, hash));
    }

    let mut tx = state.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO enterprise_applications (id, login, password_hash, upload_token_hash, \
           company_name, credit_code, licence_valid_from, licence_valid_to, business_scope, \
           notice_version, submitted_at, deadline_at, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending')",
    )
    .bind(&id)
    .bind(&app.login)
    .bind(auth::hash_password(&app.password)?)
    .bind(token_hash(&upload_token))
    .bind(name)
    .bind(code.as_str())
    .bind(&app.licence_valid_from)
    .bind(&app.licence_valid_to)
    .bind(app.business_scope.trim())
    .bind(&notice_version)
    .bind(now)
    .bind(deadline_ms)
    .execute(&mut *tx)
    .await?;
    for (row, position, name, hash) in &sealed_managers {
        sqlx::query(
            "INSERT INTO enterprise_personnel \
               (id, application_id, position, name_sealed, id_number_hash) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(row)
        .bind(&id)
        .bind(position)
        .bind(name)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    }
    let subject = format!("enterprise_application:{id}");
    privacy::record_consent(&mut tx, &subject, &notice_version, now, address.as_deref()).await?;
    tx.commit().await?;

    let event = Event::anonymous("application_submitted", Outcome::Ok)
        .object(format!("enterprise_application:{id}"))
        .address(address);
    audit::record(state, event).await?;
    let mut warnings = Vec::new();
    if !code.check_ok() {
        warnings.push("credit_code_check_failed_verify_with_registry");
    }
    Ok(Submitted {
        id,
        upload_token,
        state: "pending",
        review_deadline: rfc3339(deadline_ms),
        documents_needed: DOCUMENTS,
        warnings,
    })
}

fn token_hash(token: &str) -> String {
    flexwork_sync::ContentHash::of(token.as_bytes()).to_hex()
}

/// Stores one document of a pending application, given its upload token.
pub async fn upload_document(
    state: &AppState,
    id: &str,
    token: &str,
    kind: &str,
    bytes: &[u8],
) -> ApiResult<String> {
    if !DOCUMENTS.contains(&kind) {
        let message = format!("the document is one of {}", DOCUMENTS.join(", "));
        return Err(ApiError::bad_request("unknown_document", message));
    }
    let row = sqlx::query(
        "SELECT state FROM enterprise_applications WHERE id = $1 AND upload_token_hash = $2",
    )
    .bind(id)
    .bind(token_hash(token))
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(ApiError::unauthorized)?;
    if row.try_get::<String, _>("state")? != "pending" {
        let message = "documents can be added only while the application is pending";
        return Err(ApiError::conflict("already_decided", message));
    }
    let readable = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .is_some_and(|(w, h)| w >= 16 && h >= 16);
    let sniffed = crate::api::media::sniff(bytes).filter(|t| t.starts_with("image/"));
    let Some(media_type) = sniffed.filter(|t| readable || *t == "image/heic") else {
        let message = "documents are photos or scans: JPEG, PNG, WebP, GIF, TIFF or HEIC";
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        ));
    };
    let hash = crate::replication::store_object(state, bytes, media_type).await?;
    sqlx::query(
        "INSERT INTO enterprise_documents \
           (application_id, kind, hash, size, media_type, uploaded_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (application_id, kind) DO UPDATE SET hash = excluded.hash, \
           size = excluded.size, media_type = excluded.media_type, \
           uploaded_at = excluded.uploaded_at",
    )
    .bind(id)
    .bind(kind)
    .bind(hash.to_hex())
    .bind(bytes.len() as i64)
    .bind(media_type)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    Ok(hash.to_hex())
}

/// An enterprise application as a reviewer sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = EnterpriseReviewed)]
pub struct Reviewed {
    pub id: String,
    pub login: String,
    pub company_name: String,
    pub credit_code: String,
    /// False means the check character fails: verify the code with the registry.
    pub credit_code_check_ok: bool,
    pub licence_valid_from: String,
    pub licence_valid_to: Option<String>,
    pub business_scope: String,
    /// Declared managers, masked.
    pub managers: Vec<ReviewedManager>,
    /// Document kind → the media hash of the stored document.
    pub documents: std::collections::BTreeMap<String, String>,
    pub documents_missing: Vec<&'static str>,
    pub state: String,
    pub submitted_at: String,
    pub review_deadline: String,
    pub overdue: bool,
    pub decision_reason: Option<String>,
}

/// A declared manager as a reviewer sees it: the name masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewedManager {
    pub position: String,
    pub name: String,
}

/// The enterprise review queue, nearest deadline first; the listing is a recorded masked view.
pub async fn list(state: &AppState, caller: &Caller, wanted: &str) -> ApiResult<Vec<Reviewed>> {
    caller.require(Permission::ReviewApplications)?;
    let rows = sqlx::query(
        "SELECT id FROM enterprise_applications WHERE state = $1 \
         ORDER BY deadline_at, id LIMIT 500",
    )
    .bind(wanted)
    .fetch_all(&state.db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(reviewed(state, &row.try_get::<String, _>("id")?).await?);
    }
    let event = Event::by(caller, "masked_view", Outcome::Ok)
        .object("enterprise_applications")
        .detail(serde_json::json!({ "applications": out.len(), "fields": ["manager_name"] }));
    audit::record(state, event).await?;
    Ok(out)
}

async fn reviewed(state: &AppState, id: &str) -> ApiResult<Reviewed> {
    let row = sqlx::query("SELECT * FROM enterprise_applications WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("application"))?;
    let people = sqlx::query(
        "SELECT id, position, name_sealed FROM enterprise_personnel \
         WHERE application_id = $1 ORDER BY position, id",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    let mut managers = Vec::with_capacity(people.len());
    for person in &people {
        let row_id: String = person.try_get("id")?;
        let sealed: String = person.try_get("name_sealed")?;
        let name = privacy::open(state, "enterprise_personnel", "name", &row_id, &sealed).await?;
        managers.push(ReviewedManager {
            position: person.try_get("position")?,
            name: identity::mask_name(&name),
        });
    }
    let docs = sqlx::query("SELECT kind, hash FROM enterprise_documents WHERE application_id = $1")
        .bind(id)
        .fetch_all(&state.db.pool)
        .await?;
    let mut documents = std::collections::BTreeMap::new();
    for doc in &docs {
        documents.insert(doc.try_get("kind")?, doc.try_get("hash")?);
    }
    let documents_missing = DOCUMENTS
        .into_iter()
        .filter(|k| !documents.contains_key(*k))
        .collect();
    let deadline: i64 = row.try_get("deadline_at")?;
    let row_state: String = row.try_get("state")?;
    let credit_code: String = row.try_get("credit_code")?;
    Ok(Reviewed {
        id: id.to_owned(),
        login: row.try_get("login")?,
        company_name: row.try_get("company_name")?,
        // Derived from the code itself: the stored code passed parsing at submission.
        credit_code_check_ok: CreditCode::parse(&credit_code).is_ok_and(|c| c.check_ok()),
        credit_code,
        licence_valid_from: row.try_get("licence_valid_from")?,
        licence_valid_to: row.try_get("licence_valid_to")?,
        business_scope: row.try_get("business_scope")?,
        managers,
        documents,
        documents_missing,
        overdue: row_state == "pending" && now_ms() > deadline,
        state: row_state,
        submitted_at: rfc3339(row.try_get("submitted_at")?),
        review_deadline: rfc3339(deadline),
        decision_reason: row.try_get("decision_reason")?,
    })
}

/// Approves (creating the enterprise's account) or rejects a pending application.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    id: &str,
    approve: bool,
    reason: &str,
) -> ApiResult<Reviewed> {
    caller.require(Permission::ReviewApplications)?;
    crate::audit::reason(reason, 1)?;
    let current = reviewed(state, id).await?;
    if current.state != "pending" {
        let message = format!("the application is already {}", current.state);
        return Err(ApiError::conflict("already_decided", message));
    }
    if approve && !current.documents_missing.is_empty() {
        let message = format!(
            "documents are missing: {}",
            current.documents_missing.join(", ")
        );
        return Err(ApiError::conflict("documents_missing", message));
    }
    let mut tx = state.db.begin_write().await?;
    let row = sqlx::query("SELECT login, password_hash FROM enterprise_applications WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let account_id = if approve {
        let account_id = new_id();
        sqlx::query(
            "INSERT INTO accounts (id, login, role, display_name, password_hash, created_at, \
             duties, organisation_id) VALUES ($1, $2, 'enterprise', $3, $4, $5, 'admin', $1)",
        )
        .bind(&account_id)
        .bind(row.try_get::<String, _>("login")?)
        .bind(&current.company_name)
        .bind(row.try_get::<String, _>("password_hash")?)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(auth::login_clash)?;
        Some(account_id)
    } else {
        None
    };
    let decided = sqlx::query(
        "UPDATE enterprise_applications SET state = $1, decided_by = $2, decided_at = $3, \
         decision_reason = $4, account_id = $5 WHERE id = $6 AND state = 'pending'",
    )
    .bind(if approve { "approved" } else { "rejected" })
    .bind(&caller.account_id)
    .bind(now_ms())
    .bind(identity::redact_numbers(reason.trim()))
    .bind(&account_id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if decided.rows_affected() != 1 {
        return Err(ApiError::conflict(
            "already_decided",
            "the application was just decided",
        ));
    }
    tx.commit().await?;
    let event = Event::by(caller, "application_decided", Outcome::Ok)
        .object(format!("enterprise_application:{id}"))
        .detail(serde_json::json!({ "approved": approve, "reason": reason.trim() }));
    audit::record(state, event).await?;
    reviewed(state, id).await
}

/// Refuses to give a worker an order of an enterprise that declared them among its managers.
pub async fn refuse_conflict(
    state: &AppState,
    enterprise_id: &str,
    worker_id: &str,
) -> ApiResult<()> {
    let hit = sqlx::query(
        "SELECT 1 AS hit FROM accounts w \
         JOIN enterprise_personnel p ON p.id_number_hash = w.id_number_hash \
         JOIN enterprise_applications e ON e.id = p.application_id \
         WHERE w.id = $1 AND e.account_id = $2 LIMIT 1",
    )
    .bind(worker_id)
    .bind(enterprise_id)
    .fetch_optional(&state.db.pool)
    .await?;
    if hit.is_some() {
        let message = "this worker is one of the enterprise's declared directors, supervisors \
                       or senior managers, who may not work for it through the platform";
        return Err(ApiError::conflict("conflict_of_interest", message));
    }
    Ok(())
}

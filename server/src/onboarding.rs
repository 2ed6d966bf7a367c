//! Worker onboarding (standard 5.1.1, 5.1.3–5.1.5): an application through the API, checked
//! automatically, then decided by a reviewer within two working days.
//!
//! An application carries the person's name, ID number, bank card, phone and trade, the
//! declarations of 5.1.1 b (not a director, supervisor or senior manager of a hiring
//! enterprise or its affiliates; not a civil servant), the acknowledged notice of 5.1.1 g for
//! people on benefits, a signature over exactly the declaration text the server publishes,
//! and explicit consent to the current privacy notice. Malformed identity data and people
//! outside 18 to under 65 on the application date are refused at once, with the reason;
//! everything else goes to the review queue with the automated findings (a card failing the
//! Luhn check, an ID number already applied with) and a deadline of two working days on the
//! configured calendar. Approval creates the worker's account.
//!
//! Personal fields are stored sealed and shown to reviewers masked; the plaintext of one field
//! takes a separate call with a reason, and is audited.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::audit::{self, Event, Outcome};
use crate::auth::{self, Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::identity::{self, BankCard, IdNumber, Phone, SHANGHAI};
use crate::privacy::{self, Consent};
use crate::{AppState, new_id, now_ms, rfc3339};

/// The text an applicant signs. Its SHA-256 must come with the signature.
pub const DECLARATION: &str = "I apply to work through flexwork of my own free will. I declare \
that I am not a director, supervisor or senior manager of any enterprise that hires me through \
the platform, nor of its affiliates, and that I am not a civil servant. I have read the notice \
for people receiving social insurance or assistance benefits, and I will report income from \
this work as those rules require.\n本人自愿通过平台承接灵活用工业务。本人声明：本人不是通过平台用工的企业及其关联企业的董事、监事或高级管理人员，\
不是公务员。本人已阅读享受社会保险或社会救助待遇人员须知，并将按规定申报本业务收入。";

/// The declaration and the hash a signature must carry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Declaration {
    pub text: &'static str,
    pub sha256: String,
}

pub fn declaration() -> Declaration {
    Declaration {
        text: DECLARATION,
        sha256: flexwork_sync::ContentHash::of(DECLARATION.as_bytes()).to_hex(),
    }
}

/// The declarations of 5.1.1 b and g, each of which must be true.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Declarations {
    pub not_manager_of_hiring_enterprise: bool,
    pub not_civil_servant: bool,
    pub benefits_notice_acknowledged: bool,
}

/// The applicant's signature: strokes of points `[x, y, t_ms]`, over the declaration.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Signature {
    pub strokes: Vec<Vec<[f64; 3]>>,
    pub signed_text_sha256: String,
    pub signed_at: String,
}

/// A worker's application as sent.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = WorkerApplication)]
pub struct Application {
    pub login: String,
    pub password: String,
    pub name: String,
    pub id_number: String,
    pub bank_card: String,
    pub phone: String,
    pub trade: String,
    pub declarations: Declarations,
    pub signature: Signature,
    pub consent: Option<Consent>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("login", &self.login)
            .field("name", &identity::mask_name(&self.name))
            .field("id_number", &identity::mask_id_number(&self.id_number))
            .field("trade", &self.trade)
            .finish_non_exhaustive()
    }
}

/// What the automated checks found, for the reviewer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Automated {
    /// The card fails the Luhn check: probably mistyped (a hint, not a refusal).
    pub card_luhn_failed: bool,
    /// Another application with the same ID number is pending or approved.
    pub duplicate_id_number: bool,
    /// An enterprise declared this person among its directors, supervisors or managers: they
    /// may not take that enterprise's tasks (5.1.1 b).
    #[serde(default)]
    pub declared_manager_of_an_enterprise: bool,
    /// The applicant's age on the application date.
    pub age: u32,
    /// Real-name verification (name, ID number, bank card, phone) with the configured
    /// provider: `pending`, `match`, `mismatch: <elements>`, `unverifiable: <why>` or
    /// `error: <code>`, always naming the provider (today the sandbox).
    pub real_name_verification: String,
}

/// What the applicant gets back.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WorkerSubmitted)]
pub struct Submitted {
    pub id: String,
    pub state: &'static str,
    pub review_deadline: String,
    pub warnings: Vec<&'static str>,
}

/// Checks and stores an application, and queues it for review.
pub async fn submit(
    state: &AppState,
    app: &Application,
    address: Option<String>,
) -> ApiResult<Submitted> {
    let notice_version = privacy::require_consent(app.consent.as_ref())?;
    let now = now_ms();
    let today = time::OffsetDateTime::from_unix_timestamp(now / 1_000)
        .map_err(ApiError::internal)?
        .to_offset(SHANGHAI)
        .date();
    let id_number = IdNumber::parse(&app.id_number, today).map_err(|e| {
        let code = e.code();
        ApiError::bad_request(code, format!("the ID number: {e}"))
    })?;
    id_number
        .eligible_on(today)
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    let card = BankCard::parse(&app.bank_card)
        .map_err(|e| ApiError::bad_request(e.code(), format!("the bank card: {e}")))?;
    let phone = Phone::parse(&app.phone)
        .map_err(|e| ApiError::bad_request(e.code(), format!("the phone number: {e}")))?;
    check_text_fields(app)?;
    check_declarations(app)?;
    auth::validate_login(&app.login)?;
    auth::validate_password(&app.password)?;
    if auth::login_in_use(state, &app.login).await? {
        return Err(ApiError::conflict(
            "login_taken",
            "that login is already in use",
        ));
    }

    let id = new_id();
    let id_hash = privacy::lookup_hash(state, "id_number", id_number.as_str());
    let duplicate = sqlx::query(
        "SELECT 1 AS hit FROM worker_applications \
         WHERE id_number_hash = $1 AND state IN ('pending', 'approved') LIMIT 1",
    )
    .bind(&id_hash)
    .fetch_optional(&state.db.pool)
    .await?
    .is_some();
    let manages = sqlx::query(
        "SELECT 1 AS hit FROM enterprise_personnel p \
         JOIN enterprise_applications e ON e.id = p.application_id \
         WHERE p.id_number_hash = $1 AND e.state IN ('pending', 'approved') LIMIT 1",
    )
    .bind(&id_hash)
    .fetch_optional(&state.db.pool)
    .await?
    .is_some();
    let automated = Automated {
        card_luhn_failed: !card.luhn_ok(),
        duplicate_id_number: duplicate,
        declared_manager_of_an_enterprise: manages,
        age: id_number.age_on(today),
        real_name_verification: "pending".into(),
    };
    let submitted =
        time::OffsetDateTime::from_unix_timestamp(now / 1_000).map_err(ApiError::internal)?;
    let deadline = state
        .config
        .calendar
        .add_working_days(submitted, 2, SHANGHAI);
    let deadline_ms = deadline.unix_timestamp() * 1_000;

    let table = "worker_applications";
    let sealed = [
        privacy::seal(state, table, "name", &id, app.name.trim()).await?,
        privacy::seal(state, table, "id_number", &id, id_number.as_str()).await?,
        privacy::seal(state, table, "bank_card", &id, card.as_str()).await?,
        privacy::seal(state, table, "phone", &id, phone.as_str()).await?,
    ];
    let password_hash = auth::hash_password(&app.password)?;
    let mut tx = state.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO worker_applications (id, login, password_hash, name_sealed, \
           id_number_sealed, id_number_hash, bank_card_sealed, phone_sealed, trade, \
           declarations, signature, notice_version, submitted_at, deadline_at, automated, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'pending')",
    )
    .bind(&id)
    .bind(&app.login)
    .bind(password_hash)
    .bind(&sealed[0])
    .bind(&sealed[1])
    .bind(&id_hash)
    .bind(&sealed[2])
    .bind(&sealed[3])
    .bind(app.trade.trim())
    .bind(to_json(&app.declarations)?)
    .bind(to_json(&app.signature)?)
    .bind(&notice_version)
    .bind(now)
    .bind(deadline_ms)
    .bind(to_json(&automated)?)
    .execute(&mut *tx)
    .await?;
    let subject = format!("worker_application:{id}");
    privacy::record_consent(&mut tx, &subject, &notice_version, now, address.as_deref()).await?;
    tx.commit().await?;

    let event = Event::anonymous("application_submitted", Outcome::Ok)
        .object(format!("worker_application:{id}"))
        .detail(serde_json::json!({ "notice_version": notice_version }))
        .address(address);
    audit::record(state, event).await?;
    let request = crate::realname::VerificationRequest {
        request_id: id.clone(),
        name: app.name.trim().to_owned(),
        id_number: id_number.as_str().to_owned(),
        bank_card: card.as_str().to_owned(),
        phone: Some(phone.as_str().to_owned()),
        face_image_sha256: None,
    };
    spawn_real_name_check(state.clone(), request);
    let mut warnings = Vec::new();
    if automated.card_luhn_failed {
        warnings.push("bank_card_may_be_mistyped");
    }
    Ok(Submitted {
        id,
        state: "pending",
        review_deadline: rfc3339(deadline_ms),
        warnings,
    })
}

/// Verifies the applicant with the real-name provider in the background and records the
/// answer among the automated checks; a timeout or an unavailable provider is retried with
/// the same request id (the provider answers a repeated id with its recorded result).
fn spawn_real_name_check(state: AppState, request: crate::realname::VerificationRequest) {
    use crate::realname::{Submission, Verdict};

    tokio::spawn(async move {
        let provider = state.realname.name();
        let mut outcome = String::new();
        for attempt in 0..4u32 {
            outcome = match state.realname.submit(&request).await {
                Ok(Submission::Completed(result)) => match result.verdict {
                    Verdict::Match => format!("match ({provider} provider)"),
                    Verdict::Mismatch { fields } => {
                        let fields: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
                        format!("mismatch: {} ({provider} provider)", fields.join(", "))
                    }
                    Verdict::Unverifiable { reason } => {
                        format!("unverifiable: {reason} ({provider} provider)")
                    }
                },
                Ok(Submission::Pending { .. }) => format!("pending ({provider} provider)"),
                Err(e) if e.is_retryable() && attempt < 3 => {
                    tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                    continue;
                }
                Err(e) => format!("error: {} ({provider} provider)", e.code()),
            };
            break;
        }
        if let Err(e) = record_real_name(&state, &request.request_id, &outcome).await {
            tracing::error!(application = %request.request_id, error = %e,
                "could not record the real-name check");
        }
    });
}

async fn record_real_name(state: &AppState, id: &str, outcome: &str) -> ApiResult<()> {
    let mut tx = state.db.begin_write().await?;
    let row = sqlx::query("SELECT automated FROM worker_applications WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let text: String = row.try_get("automated")?;
    let mut automated: Automated = serde_json::from_str(&text).unwrap_or_default();
    automated.real_name_verification = outcome.to_owned();
    sqlx::query("UPDATE worker_applications SET automated = $1 WHERE id = $2")
        .bind(to_json(&automated)?)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether a person's name is plausible text: some letters, no control or invisible
/// formatting characters.
pub(crate) fn plausible_name(name: &str) -> bool {
    let invisible = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{200b}'..='\u{200f}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2060}'..='\u{2064}'
                    | '\u{feff}'
            )
    };
    let count = name.chars().count();
    (1..=50).contains(&count)
        && name.chars().any(char::is_alphabetic)
        && !name.chars().any(invisible)
}

fn check_text_fields(app: &Application) -> ApiResult<()> {
    let name = app.name.trim();
    if !plausible_name(name) {
        let message = "the name must be given, as on the ID card (at most 50 characters)";
        return Err(ApiError::bad_request("invalid_name", message));
    }
    if app.trade.trim().is_empty() || app.trade.chars().count() > 100 {
        let message = "the trade must be given (at most 100 characters)";
        return Err(ApiError::bad_request("invalid_trade", message));
    }
    Ok(())
}

fn check_declarations(app: &Application) -> ApiResult<()> {
    let d = &app.declarations;
    if !(d.not_manager_of_hiring_enterprise && d.not_civil_servant) {
        let message = "the standard admits only people who are neither directors, supervisors \
                       or senior managers of a hiring enterprise nor civil servants";
        return Err(ApiError::bad_request("declaration_required", message));
    }
    if !d.benefits_notice_acknowledged {
        let message = "read and acknowledge the notice for people receiving benefits";
        return Err(ApiError::bad_request("benefits_notice_required", message));
    }
    let points: usize = app.signature.strokes.iter().map(Vec::len).sum();
    if app.signature.strokes.is_empty() || !(2..=20_000).contains(&points) {
        let message = "sign the declaration: the signature needs its strokes";
        return Err(ApiError::bad_request("signature_required", message));
    }
    if app.signature.signed_text_sha256 != declaration().sha256 {
        let message = "the signature is not over the current declaration text \
                       (GET /api/v1/onboarding/declaration); sign that text";
        return Err(ApiError::bad_request("signature_text_mismatch", message));
    }
    Ok(())
}

/// An application as a reviewer sees it: personal fields masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WorkerReviewed)]
pub struct Reviewed {
    pub id: String,
    pub login: String,
    pub name: String,
    pub id_number: String,
    pub bank_card: String,
    pub phone: String,
    pub trade: String,
    pub state: String,
    pub submitted_at: String,
    pub review_deadline: String,
    pub overdue: bool,
    pub automated: Automated,
    pub decision_reason: Option<String>,
}

/// Applications in `wanted` state, the nearest deadline first, masked; every listing is
/// recorded as a masked view.
pub async fn list(state: &AppState, caller: &Caller, wanted: &str) -> ApiResult<Vec<Reviewed>> {
    caller.require(Permission::ReviewApplications)?;
    let rows = sqlx::query(
        "SELECT * FROM worker_applications WHERE state = $1 ORDER BY deadline_at, id LIMIT 500",
    )
    .bind(wanted)
    .fetch_all(&state.db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(masked(state, row).await?);
    }
    let event = Event::by(caller, "masked_view", Outcome::Ok)
        .object("worker_applications")
        .detail(serde_json::json!({
            "applications": out.len(),
            "fields": ["name", "id_number", "bank_card", "phone"],
        }));
    audit::record(state, event).await?;
    Ok(out)
}

async fn masked(state: &AppState, row: &sqlx::any::AnyRow) -> ApiResult<Reviewed> {
    let id: String = row.try_get("id")?;
    let table = "worker_applications";
    let field = |column: &'static str| {
        let id = id.clone();
        async move {
            let sealed: String = row.try_get(format!("{column}_sealed").as_str())?;
            privacy::open(state, table, column, &id, &sealed).await
        }
    };
    let deadline: i64 = row.try_get("deadline_at")?;
    let row_state: String = row.try_get("state")?;
    let automated: String = row.try_get("automated")?;
    Ok(Reviewed {
        login: row.try_get("login")?,
        name: identity::mask_name(&field("name").await?),
        id_number: identity::mask_id_number(&field("id_number").await?),
        bank_card: identity::mask_bank_card(&field("bank_card").await?),
        phone: identity::mask_phone(&field("phone").await?),
        trade: row.try_get("trade")?,
        overdue: row_state == "pending" && now_ms() > deadline,
        state: row_state,
        submitted_at: rfc3339(row.try_get("submitted_at")?),
        review_deadline: rfc3339(deadline),
        automated: serde_json::from_str(&automated).unwrap_or_default(),
        decision_reason: row.try_get("decision_reason")?,
        id,
    })
}

/// The plaintext of one field, for a reviewer who records why; audited.
pub async fn reveal(
    state: &AppState,
    caller: &Caller,
    id: &str,
    field: &str,
    reason: &str,
) -> ApiResult<String> {
    caller.require(Permission::RevealPersonalData)?;
    let column = match field {
        "name" | "id_number" | "bank_card" | "phone" => field,
        _ => {
            let message = "the field is one of name, id_number, bank_card, phone";
            return Err(ApiError::bad_request("unknown_field", message));
        }
    };
    if reason.trim().chars().count() < 5 {
        let message = "say why the plaintext is needed; the reason is kept in the audit trail";
        return Err(ApiError::bad_request("reason_required", message));
    }
    let sql = format!("SELECT {column}_sealed AS sealed FROM worker_applications WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("application"))?;
    let sealed: String = row.try_get("sealed")?;
    let plain = privacy::open(state, "worker_applications", column, id, &sealed).await?;
    let event = Event::by(caller, "reveal", Outcome::Ok)
        .object(format!("worker_application:{id}"))
        .detail(serde_json::json!({ "field": column, "reason": reason.trim() }));
    audit::record(state, event).await?;
    Ok(plain)
}

/// Approves (creating the worker's account) or rejects a pending application.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    id: &str,
    approve: bool,
    reason: &str,
) -> ApiResult<Reviewed> {
    caller.require(Permission::ReviewApplications)?;
    if reason.trim().is_empty() {
        let message = "give a reason; the applicant is told it and it is audited";
        return Err(ApiError::bad_request("reason_required", message));
    }
    let mut tx = state.db.begin_write().await?;
    let row = sqlx::query("SELECT * FROM worker_applications WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::not_found("application"))?;
    let current: String = row.try_get("state")?;
    if current != "pending" {
        let message = format!("the application is already {current}");
        return Err(ApiError::conflict("already_decided", message));
    }
    let account_id = if approve {
        let account_id = new_id();
        let name: String = row.try_get("name_sealed")?;
        let name = privacy::open(state, "worker_applications", "name", id, &name).await?;
        sqlx::query(
            "INSERT INTO accounts \
               (id, login, role, display_name, password_hash, created_at, id_number_hash) \
             VALUES ($1, $2, 'worker', $3, $4, $5, $6)",
        )
        .bind(&account_id)
        .bind(row.try_get::<String, _>("login")?)
        .bind(identity::mask_name(&name))
        .bind(row.try_get::<String, _>("password_hash")?)
        .bind(now_ms())
        .bind(row.try_get::<String, _>("id_number_hash")?)
        .execute(&mut *tx)
        .await
        .map_err(auth::login_clash)?;
        Some(account_id)
    } else {
        None
    };
    sqlx::query(
        "UPDATE worker_applications SET state = $1, decided_by = $2, decided_at = $3, \
         decision_reason = $4, account_id = $5 WHERE id = $6",
    )
    .bind(if approve { "approved" } else { "rejected" })
    .bind(&caller.account_id)
    .bind(now_ms())
    .bind(identity::redact_numbers(reason.trim()))
    .bind(&account_id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    let event = Event::by(caller, "application_decided", Outcome::Ok)
        .object(format!("worker_application:{id}"))
        .detail(serde_json::json!({ "approved": approve, "reason": reason.trim() }));
    audit::record(state, event).await?;
    if let Some(account) = &account_id {
        let event = Event::by(caller, "account_created", Outcome::Ok)
            .object(format!("account:{account}"))
            .detail(serde_json::json!({ "role": "worker", "application": id }));
        audit::record(state, event).await?;
    }
    let row = sqlx::query("SELECT * FROM worker_applications WHERE id = $1")
        .bind(id)
        .fetch_one(&state.db.pool)
        .await?;
    masked(state, &row).await
}

fn to_json(value: &impl Serialize) -> ApiResult<String> {
    serde_json::to_string(value).map_err(ApiError::internal)
}

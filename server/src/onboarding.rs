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
//!
//! The signature is range-checked: its time must be plausible (not in the future beyond
//! [`CLOCK_SKEW_MS`], not before the declaration's version was published, not older than
//! [`MAX_SIGNATURE_AGE_MS`] — an application signed offline waits that long at most), its
//! points finite and on a canvas of sane size, and their number bounded. A face image captured
//! with liveness may come with the application: it is stored as a sealed media blob and
//! checked by the real-name provider with the other elements ([`crate::face`]). A phone that
//! resubmits under the same `client_reference` gets the first answer again.

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

/// When the current [`DECLARATION`] text was published: no signature over it can be older.
/// Change it together with the text.
pub const DECLARATION_PUBLISHED_AT: &str = "2026-12-04T00:00:00+08:00";

/// How far ahead of the server's clock a phone's clock may be.
pub const CLOCK_SKEW_MS: i64 = 5 * 60 * 1_000;
/// The longest an application may wait on the phone between signing and submission.
pub const MAX_SIGNATURE_AGE_MS: i64 = 30 * 86_400_000;
/// Most points in a signature, over all strokes.
pub const MAX_SIGNATURE_POINTS: usize = 20_000;
/// Most strokes in a signature.
pub const MAX_SIGNATURE_STROKES: usize = 500;
/// Largest coordinate, in canvas pixels, either way from the origin.
pub const MAX_SIGNATURE_COORDINATE: f64 = 100_000.0;
/// Largest point time in milliseconds (relative, or since the epoch up to the 2280s).
const MAX_POINT_TIME_MS: f64 = 1e13;

/// The declaration and the hash a signature must carry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Declaration {
    pub text: &'static str,
    pub sha256: String,
    pub published_at: &'static str,
}

pub fn declaration() -> Declaration {
    Declaration {
        text: DECLARATION,
        sha256: flexwork_sync::ContentHash::of(DECLARATION.as_bytes()).to_hex(),
        published_at: DECLARATION_PUBLISHED_AT,
    }
}

/// The declarations of 5.1.1 b and g, each of which must be true.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Declarations {
    pub not_manager_of_hiring_enterprise: bool,
    pub not_civil_servant: bool,
    pub benefits_notice_acknowledged: bool,
}

/// The applicant's signature: strokes of points `[x, y, t_ms]` or `[x, y, t_ms, pressure]`,
/// over the declaration.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Signature {
    #[schema(value_type = Vec<Vec<Vec<f64>>>)]
    pub strokes: Vec<Vec<SignaturePoint>>,
    pub signed_text_sha256: String,
    pub signed_at: String,
}

/// One sample of a signature stroke, as `[x, y, t_ms]` or `[x, y, t_ms, pressure]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>", into = "Vec<f64>")]
pub struct SignaturePoint {
    pub x: f64,
    pub y: f64,
    pub t_ms: f64,
    pub pressure: Option<f64>,
}

impl TryFrom<Vec<f64>> for SignaturePoint {
    type Error = &'static str;

    fn try_from(v: Vec<f64>) -> Result<Self, Self::Error> {
        match v[..] {
            [x, y, t_ms] => Ok(Self {
                x,
                y,
                t_ms,
                pressure: None,
            }),
            [x, y, t_ms, pressure] => Ok(Self {
                x,
                y,
                t_ms,
                pressure: Some(pressure),
            }),
            _ => Err("a signature point is [x, y, t_ms] or [x, y, t_ms, pressure]"),
        }
    }
}

impl From<SignaturePoint> for Vec<f64> {
    fn from(p: SignaturePoint) -> Self {
        let mut out = vec![p.x, p.y, p.t_ms];
        out.extend(p.pressure);
        out
    }
}

impl SignaturePoint {
    fn in_range(&self) -> bool {
        let coordinate = |v: f64| v.is_finite() && v.abs() <= MAX_SIGNATURE_COORDINATE;
        coordinate(self.x)
            && coordinate(self.y)
            && self.t_ms.is_finite()
            && (0.0..=MAX_POINT_TIME_MS).contains(&self.t_ms)
            && self
                .pressure
                .is_none_or(|p| p.is_finite() && (0.0..=1.0).contains(&p))
    }
}

/// A face image captured with liveness by the app: base64 bytes (JPEG, PNG or WebP) and the
/// capture time. `Debug` shows neither.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FaceCapture {
    pub image_base64: String,
    pub captured_at: String,
}

impl std::fmt::Debug for FaceCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceCapture")
            .field(
                "image_base64",
                &format_args!("<{} chars>", self.image_base64.len()),
            )
            .finish_non_exhaustive()
    }
}

/// A worker's application as sent.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = WorkerApplication)]
pub struct Application {
    /// The phone's own reference of this application (a UUID): resubmitting it answers the
    /// first submission again.
    #[serde(default)]
    pub client_reference: Option<String>,
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
    /// The face image for the face and liveness check of 5.1.4.
    #[serde(default)]
    pub face: Option<FaceCapture>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("login", &self.login)
            .field("name", &identity::mask_name(&self.name))
            .field("id_number", &identity::mask_id_number(&self.id_number))
            .field("trade", &self.trade)
            .field("face", &self.face.as_ref().map(|_| "<present>"))
            .finish_non_exhaustive()
    }
}

/// The face check of 5.1.4 as the reviewer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FaceCheck {
    /// `not_submitted` (no face image came with the application), `pending`, `match`,
    /// `mismatch` (the face is not the ID photo's), `unverifiable` or `error`.
    pub state: String,
    /// Whether the liveness check passed, once the provider answered.
    pub liveness_passed: Option<bool>,
    /// The provider's reason (`unverifiable`) or the error code (`error`).
    pub detail: Option<String>,
    /// Which provider checked (`sandbox` verifies nobody).
    pub provider: Option<String>,
}

impl Default for FaceCheck {
    fn default() -> Self {
        Self::state("not_submitted")
    }
}

impl FaceCheck {
    pub fn state(state: &str) -> Self {
        Self {
            state: state.to_owned(),
            liveness_passed: None,
            detail: None,
            provider: None,
        }
    }

    /// Whether the provider has answered (or failed for good).
    pub fn is_final(&self) -> bool {
        !matches!(self.state.as_str(), "pending" | "not_submitted")
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
    /// The face and liveness check.
    #[serde(default)]
    pub face_check: FaceCheck,
}

/// What the applicant gets back.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WorkerSubmitted)]
pub struct Submitted {
    pub id: String,
    pub state: String,
    pub review_deadline: String,
    pub warnings: Vec<&'static str>,
    /// `pending` when a face image came with the application, else `not_submitted`.
    pub face_check: String,
}

fn warnings(automated: &Automated) -> Vec<&'static str> {
    let mut warnings = Vec::new();
    if automated.card_luhn_failed {
        warnings.push("bank_card_may_be_mistyped");
    }
    warnings
}

/// Checks the form of a client reference and computes the request's keyed fingerprint.
fn reference_and_fingerprint(
    state: &AppState,
    app: &Application,
) -> ApiResult<Option<(String, String)>> {
    let Some(reference) = &app.client_reference else {
        return Ok(None);
    };
    if uuid::Uuid::parse_str(reference).is_err() || reference.len() > 64 {
        let message = "client_reference is a UUID the phone chose for this application";
        return Err(ApiError::bad_request("invalid_client_reference", message));
    }
    let body = serde_json::to_string(app).map_err(ApiError::internal)?;
    let fingerprint = privacy::lookup_hash(state, "worker_application_request", &body);
    Ok(Some((reference.to_ascii_lowercase(), fingerprint)))
}

/// The answer to an application already submitted under `reference`, if any; a reference
/// reused for a different application is refused.
async fn resubmitted(
    state: &AppState,
    reference: &str,
    fingerprint: &str,
) -> ApiResult<Option<Submitted>> {
    let row = sqlx::query(
        "SELECT id, request_fingerprint, deadline_at, automated, state \
         FROM worker_applications WHERE client_reference = $1",
    )
    .bind(reference)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if row
        .try_get::<Option<String>, _>("request_fingerprint")?
        .as_deref()
        != Some(fingerprint)
    {
        let message = "this client_reference was already used for a different application; \
                       a new application needs a new reference";
        return Err(ApiError::conflict("client_reference_reused", message));
    }
    let automated: String = row.try_get("automated")?;
    let automated: Automated = serde_json::from_str(&automated).unwrap_or_default();
    Ok(Some(Submitted {
        id: row.try_get("id")?,
        state: row.try_get("state")?,
        review_deadline: rfc3339(row.try_get("deadline_at")?),
        warnings: warnings(&automated),
        face_check: automated.face_check.state,
    }))
}

/// Checks and stores an application, and queues it for review.
pub async fn submit(
    state: &AppState,
    app: &Application,
    address: Option<String>,
) -> ApiResult<Submitted> {
    let reference = reference_and_fingerprint(state, app)?;
    if let Some((reference, fingerprint)) = &reference
        && let Some(first) = resubmitted(state, reference, fingerprint).await?
    {
        return Ok(first);
    }
    auth::throttle_application(state, address.as_deref()).await?;
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
    check_signature(&app.signature, now)?;
    let face = app
        .face
        .as_ref()
        .map(|f| crate::face::FaceImage::decode(f, now))
        .transpose()?;
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
        face_check: FaceCheck::state(if face.is_some() {
            "pending"
        } else {
            "not_submitted"
        }),
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
    if let Some(face) = &face {
        crate::face::store(state, face).await?;
    }
    let mut tx = state.db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO worker_applications (id, login, password_hash, name_sealed, \
           id_number_sealed, id_number_hash, bank_card_sealed, phone_sealed, trade, \
           declarations, signature, notice_version, submitted_at, deadline_at, automated, state, \
           client_reference, request_fingerprint) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'pending', \
           $16, $17)",
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
    .bind(reference.as_ref().map(|r| r.0.clone()))
    .bind(reference.as_ref().map(|r| r.1.clone()))
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        // The same application, submitted twice at once: the other one got there first.
        let unique = e
            .as_database_error()
            .is_some_and(|d| d.is_unique_violation());
        if let (true, Some((reference, fingerprint))) = (unique, &reference) {
            drop(tx);
            let first = resubmitted(state, reference, fingerprint).await?;
            return first.ok_or_else(|| ApiError::internal(e));
        }
        return Err(e.into());
    }
    if let Some(face) = &face {
        crate::face::record(&mut tx, &id, face, now).await?;
    }
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
        face_image_sha256: face.as_ref().map(|f| f.hash.to_hex()),
    };
    spawn_real_name_check(state.clone(), request);
    Ok(Submitted {
        id,
        state: "pending".into(),
        review_deadline: rfc3339(deadline_ms),
        warnings: warnings(&automated),
        face_check: automated.face_check.state,
    })
}

/// Verifies the applicant with the real-name provider in the background and records the
/// answer among the automated checks; a timeout or an unavailable provider is retried with
/// the same request id (the provider answers a repeated id with its recorded result). A check
/// with a face image answers later, through a callback ([`crate::face::apply_callback`]).
fn spawn_real_name_check(state: AppState, request: crate::realname::VerificationRequest) {
    use crate::face::Answer;
    use crate::realname::Submission;

    tokio::spawn(async move {
        let mut answer = Answer::Failed("realname_unavailable");
        for attempt in 0..4u32 {
            answer = match state.realname.submit(&request).await {
                Ok(Submission::Completed(result)) => Answer::Completed(result),
                Ok(Submission::Pending { ticket }) => Answer::Pending(ticket),
                Err(e) if e.is_retryable() && attempt < 3 => {
                    tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                    continue;
                }
                Err(e) => Answer::Failed(e.code()),
            };
            break;
        }
        if let Err(e) = crate::face::record_answer(&state, &request.request_id, answer).await {
            tracing::error!(application = %request.request_id, error = %e,
                "could not record the real-name check");
        }
    });
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
    if app.signature.signed_text_sha256 != declaration().sha256 {
        let message = "the signature is not over the current declaration text \
                       (GET /api/v1/onboarding/declaration); sign that text";
        return Err(ApiError::bad_request("signature_text_mismatch", message));
    }
    Ok(())
}

/// Checks a signature's strokes and time against what a person signing on a phone can
/// produce.
fn check_signature(signature: &Signature, now: i64) -> ApiResult<()> {
    let points: usize = signature.strokes.iter().map(Vec::len).sum();
    if signature.strokes.is_empty() || points < 2 {
        let message = "sign the declaration: the signature needs its strokes";
        return Err(ApiError::bad_request("signature_required", message));
    }
    if points > MAX_SIGNATURE_POINTS || signature.strokes.len() > MAX_SIGNATURE_STROKES {
        let message = format!(
            "a signature has at most {MAX_SIGNATURE_STROKES} strokes and \
             {MAX_SIGNATURE_POINTS} points in all"
        );
        return Err(ApiError::bad_request("signature_too_long", message));
    }
    if !signature
        .strokes
        .iter()
        .flatten()
        .all(SignaturePoint::in_range)
    {
        let message = format!(
            "every signature point needs finite coordinates within \
             {MAX_SIGNATURE_COORDINATE} pixels of the origin, a time of 0 or more \
             milliseconds and a pressure from 0 to 1"
        );
        return Err(ApiError::bad_request("signature_point_invalid", message));
    }
    let signed_at = parse_time(&signature.signed_at).ok_or_else(|| {
        let message = "signed_at is the signing time in RFC 3339, like 2026-12-04T10:00:00+08:00";
        ApiError::bad_request("signature_time_invalid", message)
    })?;
    check_plausible_time(signed_at, now, "signature", "signed")
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    let format = time::format_description::well_known::Rfc3339;
    let at = time::OffsetDateTime::parse(text, &format).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Refuses a time on the phone's clock that cannot be when `what` (`signature` or
/// `face_capture`) was `done`: in the future beyond the clock skew, before the declaration
/// existed, or older than an application may wait offline. Codes are `{what}_in_future`,
/// `{what}_before_declaration` and `{what}_too_old`.
pub(crate) fn check_plausible_time(
    at: i64,
    now: i64,
    what: &'static str,
    done: &str,
) -> ApiResult<()> {
    let published = parse_time(DECLARATION_PUBLISHED_AT).unwrap_or(0);
    let face = what != "signature";
    let (code, message) = if at > now + CLOCK_SKEW_MS {
        let code = if face {
            "face_capture_in_future"
        } else {
            "signature_in_future"
        };
        let message = format!(
            "the {what} says it was {done} in the future (more than 5 minutes ahead of the \
             server's clock); check the phone's clock and do it again"
        );
        (code, message)
    } else if at < published {
        let code = if face {
            "face_capture_before_declaration"
        } else {
            "signature_before_declaration"
        };
        let message = format!(
            "the {what} says it was {done} before the declaration text was published \
             ({DECLARATION_PUBLISHED_AT}); check the phone's clock and do it again"
        );
        (code, message)
    } else if at < now - MAX_SIGNATURE_AGE_MS {
        let code = if face {
            "face_capture_too_old"
        } else {
            "signature_too_old"
        };
        let message = format!(
            "the {what} was {done} more than 30 days ago; an application waits on the phone \
             30 days at most: read the declaration and do it again"
        );
        (code, message)
    } else {
        return Ok(());
    };
    Err(ApiError::bad_request(code, message))
}

/// The signature as a reviewer sees it: what was signed and when, and its size.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignatureView {
    pub signed_text_sha256: String,
    pub signed_at: String,
    pub strokes: usize,
    pub points: usize,
}

/// A face image as listed: that it exists, never the image or its hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FaceImageView {
    pub shown: &'static str,
    pub media_type: String,
    pub size: i64,
    pub captured_at: String,
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
    pub signature: Option<SignatureView>,
    /// The face image, masked: reveal the `face_image` field to see it.
    pub face_image: Option<FaceImageView>,
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
            "fields": ["name", "id_number", "bank_card", "phone", "face_image"],
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
    let signature: String = row.try_get("signature")?;
    let signature = serde_json::from_str::<Signature>(&signature)
        .ok()
        .map(|s| SignatureView {
            points: s.strokes.iter().map(Vec::len).sum(),
            strokes: s.strokes.len(),
            signed_text_sha256: s.signed_text_sha256,
            signed_at: s.signed_at,
        });
    let face_image = sqlx::query(
        "SELECT media_type, size, captured_at FROM face_checks WHERE application_id = $1",
    )
    .bind(&id)
    .fetch_optional(&state.db.pool)
    .await?
    .map(|face| -> ApiResult<FaceImageView> {
        Ok(FaceImageView {
            shown: "masked: reveal the face_image field to see it",
            media_type: face.try_get("media_type")?,
            size: face.try_get("size")?,
            captured_at: rfc3339(face.try_get("captured_at")?),
        })
    })
    .transpose()?;
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
        signature,
        face_image,
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
        "name" | "id_number" | "bank_card" | "phone" | "face_image" => field,
        _ => {
            let message = "the field is one of name, id_number, bank_card, phone, face_image";
            return Err(ApiError::bad_request("unknown_field", message));
        }
    };
    crate::audit::reason(reason, 5)?;
    if column == "face_image" {
        let plain = crate::face::reveal(state, id).await?;
        let event = Event::by(caller, "reveal", Outcome::Ok)
            .object(format!("worker_application:{id}"))
            .detail(serde_json::json!({ "field": column, "reason": reason.trim() }));
        audit::record(state, event).await?;
        return Ok(plain);
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
    crate::audit::reason(reason, 1)?;
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
    if approve {
        refuse_unverified(&row)?;
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
    // A site that cannot take the archive now does not undo the decision: the hourly
    // backfill archives it later.
    if let Err(e) = crate::archive::archive_worker_application(state, id).await {
        tracing::warn!(application = id, error = %e, "archiving the materials failed; will retry");
    }
    let row = sqlx::query("SELECT * FROM worker_applications WHERE id = $1")
        .bind(id)
        .fetch_one(&state.db.pool)
        .await?;
    masked(state, &row).await
}

/// Nobody is admitted before the real-name check has answered, nor after it found a
/// mismatch (5.1.1 d, 5.1.4): approval waits for the answer; a mismatch is rejected or applied
/// again.
fn refuse_unverified(row: &sqlx::any::AnyRow) -> ApiResult<()> {
    let automated: String = row.try_get("automated")?;
    let automated: Automated = serde_json::from_str(&automated).map_err(ApiError::internal)?;
    let verdict = automated.real_name_verification.as_str();
    if verdict.starts_with("pending") {
        let message = "the real-name check has not answered yet; approve once the queue shows \
                       its result";
        return Err(ApiError::conflict("real_name_pending", message));
    }
    if verdict.starts_with("mismatch") {
        let message = "the real-name check found a mismatch; reject the application, or ask \
                       the applicant to apply again with the right details";
        return Err(ApiError::conflict("real_name_mismatch", message));
    }
    Ok(())
}

pub(crate) fn to_json(value: &impl Serialize) -> ApiResult<String> {
    serde_json::to_string(value).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signing_time_must_be_after_publication_within_30_days_and_not_ahead() {
        let published = parse_time(DECLARATION_PUBLISHED_AT).unwrap();
        let day = 86_400_000;
        let code = |at: i64, now: i64| {
            check_plausible_time(at, now, "signature", "signed")
                .err()
                .map(|e| e.code)
        };
        let now = published + 60 * day;
        assert_eq!(code(now - day, now), None);
        assert_eq!(code(now + CLOCK_SKEW_MS - 1, now), None);
        assert_eq!(
            code(now + CLOCK_SKEW_MS + 1, now),
            Some("signature_in_future")
        );
        assert_eq!(code(now - 31 * day, now), Some("signature_too_old"));
        assert_eq!(
            code(published - 1, now),
            Some("signature_before_declaration")
        );
        let face = check_plausible_time(now - 31 * day, now, "face_capture", "captured");
        assert_eq!(face.unwrap_err().code, "face_capture_too_old");
    }

    #[test]
    fn signature_points_have_three_or_four_numbers_and_sane_values() {
        let point: SignaturePoint = serde_json::from_str("[1, 2, 3]").unwrap();
        assert!(point.in_range() && point.pressure.is_none());
        let point: SignaturePoint = serde_json::from_str("[1, 2, 3, 0.5]").unwrap();
        assert_eq!(serde_json::to_string(&point).unwrap(), "[1.0,2.0,3.0,0.5]");
        assert!(serde_json::from_str::<SignaturePoint>("[1, 2]").is_err());
        for bad in [
            "[1e6, 2, 3]",
            "[1, 2, -1]",
            "[1, 2, 3, 1.5]",
            "[1, 2, 1e14]",
        ] {
            let point: SignaturePoint = serde_json::from_str(bad).unwrap();
            assert!(!point.in_range(), "{bad}");
        }
    }
}

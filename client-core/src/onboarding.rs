//! Applying to work on the platform from the phone (standard 5.1.1 c, 5.1.4, 5.1.5).
//!
//! 1. [`Device::fetch_onboarding_terms`] fetches, while online, the declaration the applicant
//!    signs and the privacy notice they consent to, checks that the declaration's SHA-256 is
//!    the one the server states, and keeps both in the device store, so the app can show them
//!    offline ([`Device::onboarding_terms`]).
//! 2. [`Device::sign_application`] takes what the app collected — the applicant's fields, the
//!    declarations, the explicit acceptance of the notice, the signature strokes, the signing
//!    time and the face image captured with liveness — computes the SHA-256 of exactly the
//!    declaration text shown, and queues the application in one transaction: it survives the
//!    app being killed. Nothing goes over the network.
//! 3. [`Device::submit_applications`] sends each queued application when there is a
//!    connection. An application carries its own reference (a UUID), so sending it again after
//!    an answer was lost gets the first answer back, never a second application. No network
//!    or a server error keeps it queued; an answer or a refusal is final.
//!
//! # What the device keeps
//!
//! Personal data stays on the phone only as long as it must: the full application (name, ID
//! number, bank card, phone, password, signature, face image) is kept while it is queued,
//! because it has to be sent again, and is erased — overwritten with SQLite's
//! `secure_delete`, and the write-ahead log checkpointed and truncated — as soon as the server
//! took or refused it. Afterwards the device keeps only the login, the masked name, the hash of
//! what was signed, the signing time, the notice version and the server's answer. A refused
//! application must therefore be filled in again.

use flexwork_sync::{ContentHash, StrokePoint};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::db::now_ms;
use crate::transport::{HttpTransport, TransportError};
use crate::{ClientError, Device, validate};

/// Largest face image, in bytes (the server's limit).
pub const MAX_FACE_IMAGE_BYTES: usize = 4 * 1024 * 1024;

/// What an applicant reads and agrees to, as fetched from one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnboardingTerms {
    pub server_url: String,
    /// The declaration the applicant signs, exactly as the server published it.
    pub declaration_text: String,
    /// SHA-256 (hex) of `declaration_text`, computed on the device and checked against the
    /// server's.
    pub declaration_sha256: String,
    /// The version of the privacy notice the applicant consents to.
    pub notice_version: String,
    pub notice_text: String,
    pub fetched_at_ms: i64,
}

/// The applicant's fields. `Debug` masks every personal field and hides the password.
#[derive(Clone, Deserialize)]
pub struct Applicant {
    pub login: String,
    pub password: String,
    pub name: String,
    pub id_number: String,
    pub bank_card: String,
    pub phone: String,
    pub trade: String,
}

impl std::fmt::Debug for Applicant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = self.masked();
        f.debug_struct("Applicant")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("name", &masked.name)
            .field("id_number", &masked.id_number)
            .field("bank_card", &masked.bank_card)
            .field("phone", &masked.phone)
            .field("trade", &self.trade)
            .finish()
    }
}

/// The applicant's fields as they may be shown: masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaskedApplicant {
    pub login: String,
    pub name: String,
    pub id_number: String,
    pub bank_card: String,
    pub phone: String,
    pub trade: String,
}

impl Applicant {
    /// The fields as they may be shown: `王**`, `340524********001X`, `622848*********0018`,
    /// `138****5678`.
    pub fn masked(&self) -> MaskedApplicant {
        MaskedApplicant {
            login: self.login.clone(),
            name: mask_name(&self.name),
            id_number: mask_keep(&self.id_number, 6, 4),
            bank_card: mask_keep(&self.bank_card, 6, 4),
            phone: mask_keep(&self.phone, 3, 4),
            trade: self.trade.clone(),
        }
    }
}

/// The declarations of 5.1.1 b and g; each must be true to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicantDeclarations {
    pub not_manager_of_hiring_enterprise: bool,
    pub not_civil_servant: bool,
    pub benefits_notice_acknowledged: bool,
}

/// A face image captured with liveness. `Debug` shows only its size.
#[derive(Clone)]
pub struct FaceCapture {
    /// JPEG, PNG or WebP bytes of the frame the liveness capture chose.
    pub image: Vec<u8>,
    pub captured_at_ms: i64,
}

impl std::fmt::Debug for FaceCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceCapture")
            .field("bytes", &self.image.len())
            .field("captured_at_ms", &self.captured_at_ms)
            .finish()
    }
}

/// Everything the app collected for one application.
#[derive(Debug, Clone)]
pub struct ApplicationDraft {
    pub applicant: Applicant,
    pub declarations: ApplicantDeclarations,
    /// The applicant ticked "I accept" under the privacy notice of the terms.
    pub notice_accepted: bool,
    /// The signature under the declaration, as drawn.
    pub strokes: Vec<Vec<StrokePoint>>,
    /// When the applicant signed, by the phone's clock.
    pub signed_at_ms: i64,
    pub face: Option<FaceCapture>,
}

/// Where an application stands on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationState {
    /// Signed, waiting to be sent; the device holds the application.
    Queued,
    /// The server took it and queued it for review.
    Submitted,
    /// The server refused it (see the error); it must be filled in again.
    Refused,
}

impl ApplicationState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Submitted => "submitted",
            Self::Refused => "refused",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "submitted" => Self::Submitted,
            "refused" => Self::Refused,
            _ => Self::Queued,
        }
    }
}

/// An application as the device knows it. Holds no personal data beyond the login and the
/// masked name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Application {
    /// The device's reference of the application, sent with it (a UUID).
    pub id: String,
    pub server_url: String,
    pub state: ApplicationState,
    pub login: String,
    pub masked_name: String,
    /// SHA-256 (hex) of exactly the declaration text that was signed.
    pub signed_text_sha256: String,
    pub signed_at_ms: i64,
    pub notice_version: String,
    pub has_face: bool,
    /// Whether the device still holds the full application (only while queued).
    pub holds_personal_data: bool,
    /// The server's id of the application, once submitted.
    pub server_id: Option<String>,
    pub review_deadline: Option<String>,
    /// The face check's state as the server answered it (`pending`, `not_submitted`).
    pub face_check: Option<String>,
    pub warnings: Vec<String>,
    /// Why it was refused, or why the last attempt failed.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub attempts: i64,
}

#[derive(Deserialize)]
struct DeclarationWire {
    text: String,
    sha256: String,
}

#[derive(Deserialize)]
struct NoticeWire {
    version: String,
    text: String,
}

#[derive(Deserialize)]
struct SubmittedWire {
    id: String,
    review_deadline: String,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    face_check: Option<String>,
}

impl Device {
    /// Fetches the declaration and the privacy notice from `server_url` and keeps them on the
    /// device. Refuses a declaration whose stated SHA-256 is not that of its text.
    pub fn fetch_onboarding_terms(
        &mut self,
        server_url: &str,
    ) -> Result<OnboardingTerms, ClientError> {
        let server_url = server_url.trim_end_matches('/').to_owned();
        let declaration: DeclarationWire =
            HttpTransport::get_anonymous(&server_url, "/api/v1/onboarding/declaration")?;
        let notice: NoticeWire =
            HttpTransport::get_anonymous(&server_url, "/api/v1/privacy/notice")?;
        let computed = ContentHash::of(declaration.text.as_bytes()).to_hex();
        if !computed.eq_ignore_ascii_case(&declaration.sha256) {
            let message = "the declaration's stated SHA-256 is not that of its text".to_owned();
            return Err(TransportError::BadResponse(message).into());
        }
        let terms = OnboardingTerms {
            server_url,
            declaration_text: declaration.text,
            declaration_sha256: computed,
            notice_version: notice.version,
            notice_text: notice.text,
            fetched_at_ms: now_ms(),
        };
        self.conn.execute(
            "INSERT INTO onboarding_terms (server_url, declaration_text, declaration_sha256,
                 notice_version, notice_text, fetched_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (server_url) DO UPDATE SET declaration_text = ?2,
                 declaration_sha256 = ?3, notice_version = ?4, notice_text = ?5,
                 fetched_at_ms = ?6",
            params![
                terms.server_url,
                terms.declaration_text,
                terms.declaration_sha256,
                terms.notice_version,
                terms.notice_text,
                terms.fetched_at_ms,
            ],
        )?;
        Ok(terms)
    }

    /// The terms last fetched from `server_url`, if any (works offline).
    pub fn onboarding_terms(
        &self,
        server_url: &str,
    ) -> Result<Option<OnboardingTerms>, ClientError> {
        let terms = self
            .conn
            .query_row(
                "SELECT server_url, declaration_text, declaration_sha256, notice_version,
                    notice_text, fetched_at_ms FROM onboarding_terms WHERE server_url = ?1",
                params![server_url.trim_end_matches('/')],
                |row| {
                    Ok(OnboardingTerms {
                        server_url: row.get(0)?,
                        declaration_text: row.get(1)?,
                        declaration_sha256: row.get(2)?,
                        notice_version: row.get(3)?,
                        notice_text: row.get(4)?,
                        fetched_at_ms: row.get(5)?,
                    })
                },
            )
            .optional()?;
        Ok(terms)
    }

    /// Signs the declaration of `terms` and queues the application (no network). The hash
    /// sent is computed here over `terms.declaration_text`: exactly the text shown.
    pub fn sign_application(
        &mut self,
        terms: &OnboardingTerms,
        draft: &ApplicationDraft,
    ) -> Result<Application, ClientError> {
        check_draft(draft)?;
        let id = Uuid::new_v4().to_string();
        let signed_text_sha256 = ContentHash::of(terms.declaration_text.as_bytes()).to_hex();
        let a = &draft.applicant;
        let strokes: Vec<Vec<[f64; 4]>> = draft
            .strokes
            .iter()
            .map(|s| {
                s.iter()
                    .map(|p| [p.x, p.y, p.t_ms as f64, p.pressure])
                    .collect()
            })
            .collect();
        let face = draft.face.as_ref().map(|f| {
            json!({
                "image_base64": data_encoding::BASE64.encode(&f.image),
                "captured_at": rfc3339(f.captured_at_ms),
            })
        });
        let request = json!({
            "client_reference": id,
            "login": a.login.trim(),
            "password": a.password,
            "name": a.name.trim(),
            "id_number": a.id_number.trim(),
            "bank_card": a.bank_card.trim(),
            "phone": a.phone.trim(),
            "trade": a.trade.trim(),
            "declarations": draft.declarations,
            "signature": {
                "strokes": strokes,
                "signed_text_sha256": signed_text_sha256,
                "signed_at": rfc3339(draft.signed_at_ms),
            },
            "consent": { "notice_version": terms.notice_version, "accepted": true },
            "face": face,
        });
        let now = now_ms();
        self.conn.execute(
            "INSERT INTO applications (id, server_url, state, request, login, masked_name,
                 signed_text_sha256, signed_at_ms, notice_version, has_face, created_at_ms,
                 updated_at_ms)
             VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            params![
                id,
                terms.server_url,
                request.to_string(),
                a.login.trim(),
                mask_name(a.name.trim()),
                signed_text_sha256,
                draft.signed_at_ms,
                terms.notice_version,
                draft.face.is_some(),
                now,
            ],
        )?;
        tracing::info!(application = %id, "application signed and queued");
        self.application(&id)
    }

    /// Sends every queued application, oldest first. Without a network or with the server
    /// failing, the application stays queued (and the rest are left for the next call); an
    /// answer or a refusal is final and erases the application's personal data from the
    /// device. Returns the applications tried.
    pub fn submit_applications(&mut self) -> Result<Vec<Application>, ClientError> {
        let queued: Vec<(String, String, String)> = {
            let mut statement = self.conn.prepare(
                "SELECT id, server_url, request FROM applications
                 WHERE state = 'queued' AND request IS NOT NULL ORDER BY seq",
            )?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut tried = Vec::with_capacity(queued.len());
        for (id, server_url, request) in queued {
            let answer: Result<SubmittedWire, TransportError> =
                HttpTransport::post_anonymous(&server_url, "/api/v1/onboarding/workers", &request);
            drop(request);
            let outage = match answer {
                Ok(submitted) => {
                    self.finish(&id, ApplicationState::Submitted, Ok(&submitted))?;
                    tracing::info!(application = %id, "application submitted");
                    false
                }
                Err(TransportError::Server {
                    status,
                    code,
                    message,
                }) if (400..500).contains(&status) && !matches!(status, 408 | 429) => {
                    self.finish(&id, ApplicationState::Refused, Err((&code, &message)))?;
                    tracing::warn!(application = %id, %code, "application refused");
                    false
                }
                Err(e) => {
                    self.conn.execute(
                        "UPDATE applications SET attempts = attempts + 1, error_code = ?2,
                             error_message = ?3, updated_at_ms = ?4 WHERE id = ?1",
                        params![id, e.code(), e.to_string(), now_ms()],
                    )?;
                    tracing::info!(application = %id, code = e.code(), "application not sent yet");
                    true
                }
            };
            tried.push(self.application(&id)?);
            if outage {
                break;
            }
        }
        Ok(tried)
    }

    /// Every application on the device, oldest first.
    pub fn applications(&self) -> Result<Vec<Application>, ClientError> {
        let mut statement = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM applications ORDER BY seq"))?;
        let rows = statement.query_map([], read_application)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One application by the device's reference.
    pub fn application(&self, id: &str) -> Result<Application, ClientError> {
        let sql = format!("SELECT {COLUMNS} FROM applications WHERE id = ?1");
        self.conn
            .query_row(&sql, params![id], read_application)
            .optional()?
            .ok_or_else(|| ClientError::invalid(format!("no application {id} on this device")))
    }

    /// Records the final answer and erases the application's personal data: overwritten in
    /// the database file (the store runs with `secure_delete`), and the write-ahead log
    /// checkpointed and truncated so no older copy of the page stays in it.
    fn finish(
        &mut self,
        id: &str,
        state: ApplicationState,
        answer: Result<&SubmittedWire, (&str, &str)>,
    ) -> Result<(), ClientError> {
        let (server_id, deadline, face, warnings, code, message) = match answer {
            Ok(s) => (
                Some(s.id.as_str()),
                Some(s.review_deadline.as_str()),
                s.face_check.as_deref(),
                Some(serde_json::to_string(&s.warnings).unwrap_or_default()),
                None,
                None,
            ),
            Err((code, message)) => (None, None, None, None, Some(code), Some(message)),
        };
        self.conn.execute(
            "UPDATE applications SET state = ?2, request = NULL, server_id = ?3,
                 review_deadline = ?4, face_check = ?5, warnings = ?6, error_code = ?7,
                 error_message = ?8, attempts = attempts + 1, updated_at_ms = ?9
             WHERE id = ?1",
            params![
                id,
                state.as_str(),
                server_id,
                deadline,
                face,
                warnings,
                code,
                message,
                now_ms()
            ],
        )?;
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        if busy != 0 {
            // Another connection is reading: the log is truncated at the next checkpoint.
            tracing::warn!(application = %id, "write-ahead log not truncated yet");
        }
        Ok(())
    }
}

const COLUMNS: &str = "id, server_url, state, request IS NOT NULL, login, masked_name,
    signed_text_sha256, signed_at_ms, notice_version, has_face, server_id, review_deadline,
    face_check, warnings, error_code, error_message, attempts";

fn read_application(row: &rusqlite::Row<'_>) -> rusqlite::Result<Application> {
    let state: String = row.get(2)?;
    let warnings: Option<String> = row.get(13)?;
    Ok(Application {
        id: row.get(0)?,
        server_url: row.get(1)?,
        state: ApplicationState::parse(&state),
        holds_personal_data: row.get(3)?,
        login: row.get(4)?,
        masked_name: row.get(5)?,
        signed_text_sha256: row.get(6)?,
        signed_at_ms: row.get(7)?,
        notice_version: row.get(8)?,
        has_face: row.get(9)?,
        server_id: row.get(10)?,
        review_deadline: row.get(11)?,
        face_check: row.get(12)?,
        warnings: warnings
            .and_then(|w| serde_json::from_str(&w).ok())
            .unwrap_or_default(),
        error_code: row.get(14)?,
        error_message: row.get(15)?,
        attempts: row.get(16)?,
    })
}

/// What the device can check before queueing: the rest is the server's to judge.
fn check_draft(draft: &ApplicationDraft) -> Result<(), ClientError> {
    if !draft.notice_accepted {
        return Err(ClientError::invalid(
            "the applicant must accept the privacy notice explicitly",
        ));
    }
    let d = draft.declarations;
    if !(d.not_manager_of_hiring_enterprise && d.not_civil_servant) {
        return Err(ClientError::invalid(
            "only people who are neither managers of a hiring enterprise nor civil servants \
             may apply",
        ));
    }
    if !d.benefits_notice_acknowledged {
        return Err(ClientError::invalid(
            "the applicant must acknowledge the notice for people receiving benefits",
        ));
    }
    let a = &draft.applicant;
    let fields = [
        ("login", &a.login),
        ("password", &a.password),
        ("name", &a.name),
        ("ID number", &a.id_number),
        ("bank card", &a.bank_card),
        ("phone", &a.phone),
        ("trade", &a.trade),
    ];
    if let Some((field, _)) = fields.iter().find(|(_, v)| v.trim().is_empty()) {
        return Err(ClientError::invalid(format!("the {field} is missing")));
    }
    validate::strokes(&draft.strokes)?;
    validate::time("signed_at_ms", draft.signed_at_ms)?;
    if let Some(face) = &draft.face {
        validate::time("the face image's captured_at_ms", face.captured_at_ms)?;
    }
    let points: usize = draft.strokes.iter().map(Vec::len).sum();
    if points < 2 {
        return Err(ClientError::invalid(
            "the signature needs at least two points",
        ));
    }
    if let Some(face) = &draft.face
        && (face.image.is_empty() || face.image.len() > MAX_FACE_IMAGE_BYTES)
    {
        let message = format!("a face image has 1 to {MAX_FACE_IMAGE_BYTES} bytes");
        return Err(ClientError::invalid(message));
    }
    Ok(())
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The first character, then one `*` per other character.
fn mask_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    let first = chars.next().map(String::from).unwrap_or_default();
    first + &"*".repeat(chars.count())
}

/// Keeps the first `head` and last `tail` characters, stars in between; a value too short
/// to keep anything is all stars.
fn mask_keep(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len().max(1));
    }
    let hidden = chars.len() - head - tail;
    let mut out: String = chars[..head].iter().collect();
    out.push_str(&"*".repeat(hidden));
    out.extend(&chars[chars.len() - tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applicant() -> Applicant {
        Applicant {
            login: "wang".into(),
            password: "a-long-password".into(),
            name: "王小明".into(),
            id_number: "34052419800101001X".into(),
            bank_card: "6228480402564890018".into(),
            phone: "13812345678".into(),
            trade: "photography".into(),
        }
    }

    #[test]
    fn applicants_show_masked_and_their_password_never() {
        let shown = format!("{:?} {:?}", applicant(), applicant().masked());
        for secret in [
            "王小明",
            "34052419800101001X",
            "6228480402564890018",
            "13812345678",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(!shown.contains("a-long-password"));
        let masked = applicant().masked();
        assert_eq!(masked.name, "王**");
        assert_eq!(masked.id_number, "340524********001X");
        assert_eq!(masked.bank_card, "622848*********0018");
        assert_eq!(masked.phone, "138****5678");
        assert_eq!(mask_keep("123", 3, 4), "***");
    }

    #[test]
    fn a_draft_needs_consent_declarations_and_a_signature() {
        let stroke = |n: usize| {
            (0..n)
                .map(|i| StrokePoint {
                    x: i as f64,
                    y: 1.0,
                    t_ms: i as i64,
                    pressure: 0.5,
                })
                .collect::<Vec<_>>()
        };
        let good = ApplicationDraft {
            applicant: applicant(),
            declarations: ApplicantDeclarations {
                not_manager_of_hiring_enterprise: true,
                not_civil_servant: true,
                benefits_notice_acknowledged: true,
            },
            notice_accepted: true,
            strokes: vec![stroke(5)],
            signed_at_ms: 1,
            face: None,
        };
        assert!(check_draft(&good).is_ok());
        let mut no_consent = good.clone();
        no_consent.notice_accepted = false;
        let mut civil_servant = good.clone();
        civil_servant.declarations.not_civil_servant = false;
        let mut unsigned = good.clone();
        unsigned.strokes = vec![stroke(1)];
        let mut nameless = good.clone();
        nameless.applicant.name = " ".into();
        for bad in [no_consent, civil_servant, unsigned, nameless] {
            assert_eq!(check_draft(&bad).unwrap_err().code(), "invalid_input");
        }
    }
}

//! `flexwork-device apply …`: a person applies to work on the platform, as the app does.
//!
//! Personal data never comes on the command line (where process listings and shell history
//! would keep it): the applicant's fields are read from a JSON file (`--applicant`) or from
//! environment variables, and the password from `FLEXWORK_PASSWORD`. Everything printed is
//! masked.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use flexwork_mobile::{
    Applicant, Application, ApplicationDraft, ApplicationState, FaceCapture, Phone,
    masked_applicant,
};
use serde::Deserialize;
use serde_json::json;

use crate::{Output, parse_time, read_strokes, rfc3339, time_or_now};

/// Environment variables of the applicant's fields, when no `--applicant` file is given.
const FIELD_VARIABLES: [(&str, &str); 6] = [
    ("login", "FLEXWORK_APPLICANT_LOGIN"),
    ("name", "FLEXWORK_APPLICANT_NAME"),
    ("id_number", "FLEXWORK_APPLICANT_ID_NUMBER"),
    ("bank_card", "FLEXWORK_APPLICANT_BANK_CARD"),
    ("phone", "FLEXWORK_APPLICANT_PHONE"),
    ("trade", "FLEXWORK_APPLICANT_TRADE"),
];

#[derive(Debug, Subcommand)]
pub enum ApplyCommand {
    /// Fetch the declaration to sign and the privacy notice (needs the server); they are kept
    /// on the device for signing offline.
    Terms {
        /// Base URL, like http://127.0.0.1:8080.
        #[arg(long)]
        server: String,
        /// Print the whole privacy notice too.
        #[arg(long)]
        notice: bool,
    },
    /// Sign the declaration and queue the application (works offline), then try to send it.
    Sign(SignArgs),
    /// Send the queued applications.
    Submit,
    /// Show the applications on the device.
    Status,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The server whose terms (fetched with `apply terms`) are signed.
    #[arg(long)]
    server: String,
    /// JSON file of the applicant: {login, name, id_number, bank_card, phone, trade}; the
    /// password comes from FLEXWORK_PASSWORD. Without it, every field comes from
    /// FLEXWORK_APPLICANT_LOGIN, _NAME, _ID_NUMBER, _BANK_CARD, _PHONE and _TRADE.
    #[arg(long)]
    applicant: Option<PathBuf>,
    /// JSON array of signature strokes, each an array of {x, y, t_ms, pressure}.
    #[arg(long)]
    strokes: PathBuf,
    /// Signing time, RFC 3339 (default: now).
    #[arg(long)]
    at: Option<String>,
    /// The face image captured with liveness (JPEG, PNG or WebP).
    #[arg(long)]
    face: Option<PathBuf>,
    /// When the face was captured, RFC 3339 (default: the signing time).
    #[arg(long, requires = "face")]
    face_at: Option<String>,
    /// The applicant accepts the privacy notice fetched with the terms.
    #[arg(long)]
    accept_notice: bool,
    /// The applicant declares they are no director, supervisor or senior manager of a hiring
    /// enterprise or its affiliates.
    #[arg(long)]
    not_manager: bool,
    /// The applicant declares they are not a civil servant.
    #[arg(long)]
    not_civil_servant: bool,
    /// The applicant has read the notice for people receiving benefits.
    #[arg(long)]
    benefits_notice_read: bool,
    /// Only queue the application; send it later with `apply submit`.
    #[arg(long)]
    no_submit: bool,
}

/// The applicant's fields as a file or the environment give them.
#[derive(Deserialize)]
struct ApplicantFields {
    login: String,
    password: String,
    name: String,
    id_number: String,
    bank_card: String,
    phone: String,
    trade: String,
}

pub fn run(device: &Phone, out: &Output, command: ApplyCommand) -> Result<()> {
    match command {
        ApplyCommand::Terms { server, notice } => terms(device, out, server, notice),
        ApplyCommand::Sign(args) => sign(device, out, &args),
        ApplyCommand::Submit => submit(device, out),
        ApplyCommand::Status => {
            let all = device.applications()?;
            out.emit(serde_json::to_value(&all)?, || {
                if all.is_empty() {
                    return vec!["no applications on this device".into()];
                }
                all.iter().map(line).collect()
            })
        }
    }
}

fn terms(device: &Phone, out: &Output, server: String, notice: bool) -> Result<()> {
    let terms = device
        .fetch_onboarding_terms_blocking(server)
        .context("cannot fetch the terms")?;
    out.emit(serde_json::to_value(&terms)?, || {
        let mut lines = vec![
            "Declaration to sign:".to_owned(),
            terms.declaration_text.clone(),
            format!("SHA-256 {}", terms.declaration_sha256),
            format!("Privacy notice version {}", terms.notice_version),
        ];
        if notice {
            lines.push(terms.notice_text.clone());
        }
        lines
    })
}

fn sign(device: &Phone, out: &Output, args: &SignArgs) -> Result<()> {
    if device.onboarding_terms(args.server.clone())?.is_none() {
        bail!(
            "no terms of {} on this device: run `apply terms --server {}` while online",
            args.server,
            args.server
        );
    }
    let applicant = read_applicant(args.applicant.as_deref())?;
    let strokes = read_strokes(&args.strokes)?;
    let signed_at_ms = time_or_now(args.at.clone())?;
    let face = match &args.face {
        Some(path) => Some(FaceCapture {
            image: std::fs::read(path)
                .with_context(|| format!("cannot read the face image {}", path.display()))?
                .into(),
            captured_at_ms: match &args.face_at {
                Some(at) => parse_time(at)?,
                None => signed_at_ms,
            },
        }),
        None => None,
    };
    let draft = ApplicationDraft {
        applicant,
        not_manager_of_hiring_enterprise: args.not_manager,
        not_civil_servant: args.not_civil_servant,
        benefits_notice_acknowledged: args.benefits_notice_read,
        notice_accepted: args.accept_notice,
        strokes,
        signed_at_ms,
        face,
    };
    let masked = masked_applicant(draft.applicant.clone());
    let queued = device
        .sign_application(args.server.clone(), draft)
        .context("cannot sign the application")?;
    let mut lines = vec![
        format!(
            "signed the declaration (SHA-256 {}) at {}",
            queued.signed_text_sha256,
            rfc3339(queued.signed_at_ms)
        ),
        format!(
            "applicant {} {} — ID {}, card {}, phone {}, trade {}",
            masked.login,
            masked.name,
            masked.id_number,
            masked.bank_card,
            masked.phone,
            masked.trade
        ),
        format!("queued application {}", queued.id),
    ];
    let mut value = json!({ "applicant": masked, "application": queued });
    if !args.no_submit {
        let tried = device.submit_applications_blocking()?;
        lines.extend(tried.iter().map(line));
        value["submitted"] = serde_json::to_value(&tried)?;
    }
    out.emit(value, || lines)
}

fn submit(device: &Phone, out: &Output) -> Result<()> {
    let tried = device.submit_applications_blocking()?;
    out.emit(serde_json::to_value(&tried)?, || {
        if tried.is_empty() {
            return vec!["no application waiting to be sent".into()];
        }
        tried.iter().map(line).collect()
    })
}

fn line(a: &Application) -> String {
    let answer = match (&a.server_id, &a.error_code) {
        (Some(id), _) => format!(
            "server id {id}, review by {}, face check {}",
            a.review_deadline.as_deref().unwrap_or("?"),
            a.face_check.as_deref().unwrap_or("?")
        ),
        (None, Some(code)) => format!("{code}: {}", a.error_reason.as_deref().unwrap_or_default()),
        (None, None) => "not sent yet".into(),
    };
    let state = match a.state {
        ApplicationState::Queued => "queued",
        ApplicationState::Submitted => "submitted",
        ApplicationState::Refused => "refused",
    };
    format!(
        "{} {:<9} {} {} — {answer}",
        a.id, state, a.login, a.masked_name
    )
}

/// The applicant's fields from a JSON file, or from the environment; the password from
/// FLEXWORK_PASSWORD unless the file has one.
fn read_applicant(file: Option<&Path>) -> Result<Applicant> {
    let mut value = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            // The parser's message could quote a value: say only where it failed.
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not JSON (line {}, column {})",
                    path.display(),
                    e.line(),
                    e.column()
                )
            })?
        }
        None => {
            let mut fields = serde_json::Map::new();
            for (field, variable) in FIELD_VARIABLES {
                let value = std::env::var(variable)
                    .with_context(|| format!("{variable} is not set (or use --applicant FILE)"))?;
                fields.insert(field.into(), value.into());
            }
            serde_json::Value::Object(fields)
        }
    };
    if value.get("password").is_none() {
        let Ok(password) = std::env::var("FLEXWORK_PASSWORD") else {
            bail!("set the password of the future account in FLEXWORK_PASSWORD");
        };
        value["password"] = password.into();
    }
    let fields: ApplicantFields = serde_json::from_value(value).map_err(|_| {
        anyhow::anyhow!(
            "the applicant needs login, name, id_number, bank_card, phone and trade, as text"
        )
    })?;
    Ok(Applicant {
        login: fields.login,
        password: fields.password,
        name: fields.name,
        id_number: fields.id_number,
        bank_card: fields.bank_card,
        phone: fields.phone,
        trade: fields.trade,
    })
}

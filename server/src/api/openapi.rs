//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers' `#[utoipa::path]`
//! annotations as [`super::routes`] registers them, served at `GET /api/v1/openapi.json`,
//! printed by `flexwork openapi` and committed as `server/openapi.json`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Where the generated document is committed, relative to the server crate.
pub const COMMITTED_FILE: &str = "openapi.json";

/// The name of the bearer security scheme operations refer to.
pub const BEARER: &str = "bearer";

const DESCRIPTION: &str = "\
The flexwork platform's HTTP API: accounts and sign-in, worker and enterprise onboarding, \
tasks, orders and their settlement, evidence sync with workers' phones, and media.

Bodies are JSON except where an operation says otherwise: sync rounds are CBOR \
(`application/cbor`), media chunks and enterprise documents are raw bytes, and a media \
download answers the blob's own type.

# Authentication

Sign in with `POST /api/v1/sessions` (login, password and — for operators, enterprises and \
regulators — the current TOTP code of their authenticator app, or a recovery code). The answer's \
`token` goes in `Authorization: Bearer <token>` on every later call. An account of a role that \
needs two factors and has not set them up yet gets a setup-only token, good for \
`POST /me/totp`, `POST /me/totp/confirm`, `GET /me` and `DELETE /sessions` only; everything \
else answers `403 second_factor_setup_required`. Tokens expire, and are revoked by sign-out, \
a password change, a new second factor, a suspension or a change of teams.

Each operation says who may call it. Handlers ask for a permission (`manage_accounts`, \
`read_all_work`, …, listed by `GET /me`), never for a role: workers hold `record_evidence`; \
enterprise accounts `publish_tasks` and `dispute_work`, and their administrators also \
`confirm_work` and `manage_staff`; regulators `read_all_work`; operators the permissions of \
their teams.

# Errors

Every error is a JSON `ErrorBody`: a stable snake_case `code` and a `message` a person \
understands. Besides the errors each operation lists, any call may answer \
`404 no_route` (no such endpoint), `405 method_not_allowed`, `413 body_too_large`, \
`415 invalid_json` (a JSON body sent without `Content-Type: application/json`) or \
`500 internal`.";

/// The document's fixed parts: title, version, description and the bearer scheme. The
/// operations and schemas are added by the router as it registers each handler.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(title = "flexwork API", description = DESCRIPTION),
    modifiers(&BearerScheme),
    tags(
        (name = "sessions", description = "Sign-in, sign-out, two-factor setup, passwords"),
        (name = "accounts", description = "Accounts, operator teams, enterprise staff, audit"),
        (name = "onboarding", description = "Privacy notice, worker and enterprise applications"),
        (name = "tasks", description = "What an enterprise wants done, and assigning workers"),
        (name = "orders", description = "Where each piece of work stands, and its settlement"),
        (name = "money", description = "Escrow deposits, three-party statements and settlement"),
        (name = "sync", description = "Evidence documents between workers' phones and the server"),
        (name = "payouts", description = "Payout cycles, payout runs, payouts, provider callbacks"),
        (name = "media", description = "Content-addressed photos: upload, download, copies"),
        (name = "meta", description = "Health and this document"),
    )
)]
pub struct ApiDoc;

#[derive(Debug)]
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut Document) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "A token from `POST /api/v1/sessions`; for enterprise documents, the upload \
                 token of the application.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// The document of every route [`super::router`] serves.
pub fn document() -> Document {
    // The body limit of sync is configuration, not part of the document.
    super::routes(0).into_openapi()
}

/// The document as the server serves it and as it is committed: pretty JSON, one trailing
/// newline.
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}

/// The OpenAPI 3.1 document of this API.
///
/// Who may call: anyone; no token needed.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi_document",
    tag = "meta",
    responses(
        (status = 200, description = "The document (OpenAPI 3.1, JSON)",
            content_type = "application/json"),
    ),
)]
pub async fn openapi_json() -> axum::response::Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(document_json).as_str();
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Permission;

    /// `server/openapi.json` is what the code generates, so reviewers see every change of
    /// the API as a diff of that file.
    #[test]
    fn committed_document_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED_FILE);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = document_json();
        assert!(
            committed == generated,
            "server/{COMMITTED_FILE} differs from the document the code generates; regenerate \
             it with `cargo run -q -p flexwork-server --bin flexwork -- openapi > \
             server/{COMMITTED_FILE}` and commit it"
        );
    }

    /// Every operation says who may call it; one that names a permission names every
    /// operator team holding it, so the document follows the table in `auth::roles`.
    #[test]
    fn operations_say_who_may_call_them() {
        let doc = serde_json::to_value(document()).unwrap();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let text = operation["description"].as_str().unwrap_or_default();
                assert!(
                    text.contains("Who may call:"),
                    "{method} {path} does not say who may call it: {text}"
                );
                for permission in Permission::ALL {
                    let name = serde_json::to_value(permission).unwrap();
                    let name = format!("Permission `{}`", name.as_str().unwrap());
                    if !text.contains(&name) {
                        continue;
                    }
                    checked += 1;
                    for team in permission.teams() {
                        let team = team.as_str().replace('_', " ");
                        assert!(
                            text.contains(&team),
                            "{method} {path}: {name} but not its team {team}: {text}"
                        );
                    }
                }
            }
        }
        assert!(checked > 10, "only {checked} operations name a permission");
    }
}

//! The web console: plain HTML, CSS and JavaScript modules for operators, enterprises and
//! regulators, embedded in the binary so `flexwork serve` alone serves them, with no external
//! URL anywhere (no CDN, no map tiles). The pages call the same `/api/v1` as everything else.
//!
//! Routes: `GET /` redirects to `/console/`, `GET /console/` is the app shell and
//! `GET /console/assets/{file}` one of the files in `server/console/`. The content security
//! policy allows no inline script or style, so every script and style is one of these files.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::AppState;
use crate::error::ApiError;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The app shell.
const INDEX: &str = include_str!("../console/index.html");

/// Every asset by file name, with its content type.
const ASSETS: &[(&str, &str, &str)] = &[
    ("console.css", CSS, include_str!("../console/console.css")),
    ("api.js", JS, include_str!("../console/api.js")),
    ("app.js", JS, include_str!("../console/app.js")),
    ("badges.js", JS, include_str!("../console/badges.js")),
    ("dom.js", JS, include_str!("../console/dom.js")),
    ("draw.js", JS, include_str!("../console/draw.js")),
    (
        "enterprise.js",
        JS,
        include_str!("../console/enterprise.js"),
    ),
    ("evidence.js", JS, include_str!("../console/evidence.js")),
    ("format.js", JS, include_str!("../console/format.js")),
    ("forms.js", JS, include_str!("../console/forms.js")),
    ("i18n.js", JS, include_str!("../console/i18n.js")),
    ("login.js", JS, include_str!("../console/login.js")),
    ("operator.js", JS, include_str!("../console/operator.js")),
    ("paging.js", JS, include_str!("../console/paging.js")),
    ("regulator.js", JS, include_str!("../console/regulator.js")),
];

/// The console's routes, merged into the API's router (which adds the security headers).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(index))
        .route("/console/assets/{file}", get(asset))
}

/// The names of the embedded assets, for tests and checks.
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(name, _, _)| *name)
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Embedded files change only with the binary; the browser asks again each time.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    file(HTML, INDEX)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file_name, _, _)| *file_name == name) {
        Some((_, content_type, body)) => file(content_type, body),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_asset",
            "the console has no file of that name",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_pages_import_is_embedded() {
        let names: Vec<&str> = asset_names().collect();
        for (name, _, body) in ASSETS {
            for line in body
                .lines()
                .filter(|l| l.trim_start().starts_with("import "))
            {
                let Some(start) = line.find("'./") else {
                    continue;
                };
                let rest = &line[start + 3..];
                let imported = &rest[..rest.find('\'').unwrap_or(rest.len())];
                assert!(
                    names.contains(&imported),
                    "{name} imports {imported}, not embedded"
                );
            }
        }
    }

    #[test]
    fn no_file_names_an_external_url() {
        for body in ASSETS.iter().map(|(_, _, body)| *body).chain([INDEX]) {
            // The SVG namespace is a name, not a URL the browser fetches.
            let rest = body.replace("http://www.w3.org/2000/svg", "");
            assert!(!rest.contains("://"), "an external URL in {}", &body[..40]);
        }
    }

    #[test]
    fn the_shell_has_no_inline_script_or_style() {
        assert!(!INDEX.contains("<style") && !INDEX.contains("style="));
        assert_eq!(INDEX.matches("<script").count(), 1);
        assert!(INDEX.contains(r#"<script type="module" src="assets/app.js"></script>"#));
    }
}

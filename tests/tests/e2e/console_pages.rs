//! The web console's files as `flexwork serve` serves them, without a browser (the browser
//! test is `scripts/browser-test`): the redirect to the console, the app shell and every
//! module it loads with their content types and the security headers, and a clear error for
//! a file that does not exist.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support::TestServer;
use reqwest::blocking::Client;
use reqwest::redirect::Policy;

fn client() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

#[test]
fn the_root_redirects_to_the_console_and_the_shell_loads_its_files() {
    let server = TestServer::start();
    let http = client();
    let base = server.url();

    for path in ["/", "/console"] {
        let root = http.get(format!("{base}{path}")).send().unwrap();
        assert_eq!(root.status().as_u16(), 303, "{path}");
        assert_eq!(root.headers()["location"], "/console/", "{path}");
    }

    let shell = http.get(format!("{base}/console/")).send().unwrap();
    assert_eq!(shell.status().as_u16(), 200);
    let headers = shell.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = shell.text().unwrap();
    assert!(html.contains(r#"<script type="module" src="assets/app.js"></script>"#));
    assert!(html.contains(r#"href="assets/console.css""#));

    // Every module the pages import, followed from the shell's one script.
    let mut pending = vec!["app.js".to_owned()];
    let mut seen = Vec::new();
    while let Some(name) = pending.pop() {
        if seen.contains(&name) {
            continue;
        }
        let file = http
            .get(format!("{base}/console/assets/{name}"))
            .send()
            .unwrap();
        assert_eq!(file.status().as_u16(), 200, "{name}");
        assert_eq!(
            file.headers()["content-type"],
            "text/javascript; charset=utf-8",
            "{name}"
        );
        let text = file.text().unwrap();
        for imported in text.split("from './").skip(1) {
            let module = &imported[..imported.find('\'').unwrap()];
            pending.push(module.to_owned());
        }
        seen.push(name);
    }
    for module in [
        "api.js",
        "i18n.js",
        "evidence.js",
        "draw.js",
        "regulator.js",
    ] {
        assert!(
            seen.iter().any(|s| s == module),
            "{module} is not reached from app.js"
        );
    }

    let css = http
        .get(format!("{base}/console/assets/console.css"))
        .send()
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(
        css.text()
            .unwrap()
            .contains("image-orientation: from-image")
    );
}

#[test]
fn a_file_the_console_does_not_have_is_a_clear_404() {
    let server = TestServer::start();
    let answer = client()
        .get(format!("{}/console/assets/nothing.js", server.url()))
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 404);
    assert!(answer.headers().contains_key("content-security-policy"));
    let body: serde_json::Value = answer.json().unwrap();
    assert_eq!(body["code"], "no_asset");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no file of that name")
    );
}

//! What the web console needs from the API: browser sessions held in a cookie (CSRF token,
//! origin checks, idle expiry, sign-out), security headers on every answer, the evidence
//! page's data and photo thumbnails, sending evidence back to the worker ("has issues"),
//! the operators' queues, and list filters for enterprises and regulators.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support::{
    AREZZO, AREZZO_TAKEN_AT, Phone, Scene, TestServer, apply_as_worker, fix_at_arezzo,
    fixture_bytes, ms, password_of,
};
use flexwork_server::auth::{Role, Team};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// A browser: a session cookie and its CSRF token, sent by hand on every request.
struct Browser {
    http: reqwest::blocking::Client,
    base: String,
    cookie: String,
    csrf: String,
}

/// One answer: status, JSON body (or `Null`) and headers.
struct Answer {
    status: u16,
    body: Value,
    headers: HeaderMap,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    fn set_cookie(&self) -> String {
        self.headers
            .get(reqwest::header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

fn answer(response: reqwest::blocking::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().unwrap();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    }
}

/// The session token a `Set-Cookie` value hands out.
fn cookie_value(set_cookie: &str) -> String {
    let first = set_cookie.split(';').next().unwrap();
    let (name, value) = first.split_once('=').unwrap();
    assert_eq!(name, "flexwork_session");
    value.to_owned()
}

impl Browser {
    /// Signs in with `"cookie": true`, as the console's sign-in page does.
    fn sign_in(server: &TestServer, login: &str) -> (Self, Answer) {
        let http = reqwest::blocking::Client::new();
        let mut body = server.sign_in_body(login);
        body["cookie"] = json!(true);
        let signed_in = answer(
            http.post(format!("{}/api/v1/sessions", server.url()))
                .json(&body)
                .send()
                .unwrap(),
        );
        assert_eq!(signed_in.status, 200, "{}", signed_in.body);
        let browser = Self {
            http,
            base: server.url(),
            cookie: cookie_value(&signed_in.set_cookie()),
            csrf: signed_in.body["csrf_token"].as_str().unwrap().to_owned(),
        };
        (browser, signed_in)
    }

    /// A request with the cookie, the CSRF token unless `csrf` is `None`, and `extra`
    /// headers.
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        csrf: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .header("cookie", format!("flexwork_session={}", self.cookie));
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().unwrap())
    }

    fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, None, &[])
    }

    fn post(&self, path: &str, body: Value) -> Answer {
        self.send(
            Method::POST,
            path,
            Some(body),
            Some(&self.csrf.clone()),
            &[],
        )
    }
}

fn login_exists(server: &TestServer, login: &str) -> bool {
    server.block_on(async {
        sqlx::query("SELECT 1 AS hit FROM accounts WHERE login = $1")
            .bind(login)
            .fetch_optional(&server.state().db.pool)
            .await
            .unwrap()
            .is_some()
    })
}

fn new_worker(login: &str) -> Value {
    json!({
        "login": login, "password": password_of(login), "role": "worker",
        "display_name": "made from the console",
    })
}

/// Makes the browser session look idle for `minutes`, as if no request came meanwhile.
fn idle_for(server: &TestServer, browser: &Browser, minutes: i64) {
    let hash = flexwork_sync::ContentHash::of(browser.cookie.as_bytes()).to_hex();
    server.block_on(async {
        sqlx::query("UPDATE api_tokens SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(crate::support::now_ms() - minutes * 60_000)
            .bind(hash)
            .execute(&server.state().db.pool)
            .await
            .unwrap();
    });
}

#[test]
fn a_cookie_session_needs_its_csrf_token_and_ends_when_idle_or_signed_out() {
    let server = TestServer::start_with(|config| config.console.session_idle_minutes = 5);
    server.add_account(Role::Operator, "console-admin");

    // 1. The cookie carries the flags; the body has no token but a CSRF token.
    let (browser, signed_in) = Browser::sign_in(&server, "console-admin");
    let set_cookie = signed_in.set_cookie();
    for flag in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(set_cookie.contains(flag), "{flag} missing: {set_cookie}");
    }
    assert!(signed_in.body.get("token").is_none(), "{}", signed_in.body);
    assert!(
        signed_in.body["expires_at"].is_string(),
        "{}",
        signed_in.body
    );
    assert_ne!(browser.csrf, browser.cookie);
    let me = browser.get("/me");
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["csrf_token"], browser.csrf.as_str());

    // 2. A write without the CSRF header, with a wrong one, from another site's page or
    //    from a cross-site fetch is refused and changes nothing.
    let path = "/accounts";
    let origin = browser.base.clone();
    let refusals = [
        (None, vec![]),
        (Some("0".repeat(64)), vec![]),
        (
            Some(browser.csrf.clone()),
            vec![("origin", "https://evil.example")],
        ),
        (
            Some(browser.csrf.clone()),
            vec![("sec-fetch-site", "cross-site")],
        ),
    ];
    for (csrf, extra) in &refusals {
        let refused = browser.send(
            Method::POST,
            path,
            Some(new_worker("console-made")),
            csrf.as_deref(),
            extra,
        );
        assert_eq!(
            (refused.status, refused.code()),
            (403, "csrf_token_invalid"),
            "{extra:?}: {}",
            refused.body
        );
        assert!(!refused.body["message"].as_str().unwrap().is_empty());
        assert!(!login_exists(&server, "console-made"));
    }
    let made = browser.send(
        Method::POST,
        path,
        Some(new_worker("console-made")),
        Some(&browser.csrf),
        &[
            ("origin", origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
    );
    assert_eq!(made.status, 200, "{}", made.body);
    assert!(login_exists(&server, "console-made"));

    // 3. A cookie sign-in posted from another site's page is refused.
    let mut body = server.sign_in_body("console-admin");
    body["cookie"] = json!(true);
    let cross = answer(
        reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/sessions", server.url()))
            .header("origin", "https://evil.example")
            .json(&body)
            .send()
            .unwrap(),
    );
    assert_eq!((cross.status, cross.code()), (403, "csrf_token_invalid"));

    // 4. Idle for less than the limit: still signed in (and the clock starts again); idle
    //    longer: the session has ended, for good.
    idle_for(&server, &browser, 4);
    assert_eq!(browser.get("/me").status, 200);
    idle_for(&server, &browser, 6);
    let expired = browser.get("/me");
    assert_eq!((expired.status, expired.code()), (401, "session_expired"));
    // The browser is told to drop the dead cookie.
    let dropped = expired.set_cookie();
    assert!(
        dropped.starts_with("flexwork_session=;") && dropped.contains("Max-Age=0"),
        "{dropped}"
    );
    assert_eq!(browser.get("/orders").code(), "session_expired");

    // 5. Sign-out needs the CSRF token too; it revokes the session and clears the cookie.
    let (browser, _) = Browser::sign_in(&server, "console-admin");
    let refused = browser.send(Method::DELETE, "/sessions", None, None, &[]);
    assert_eq!(refused.status, 403);
    assert_eq!(browser.get("/me").status, 200);
    let out = browser.send(Method::DELETE, "/sessions", None, Some(&browser.csrf), &[]);
    assert_eq!(out.status, 200, "{}", out.body);
    let cleared = out.set_cookie();
    assert!(cleared.starts_with("flexwork_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(browser.get("/me").status, 401);
}

/// A write from the browser with `origin`; the status and code it gets.
fn write_from(browser: &Browser, login: &str, origin: &str) -> (u16, String) {
    let csrf = browser.csrf.clone();
    let sent = browser.send(
        Method::POST,
        "/accounts",
        Some(new_worker(login)),
        Some(&csrf),
        &[("origin", origin)],
    );
    (sent.status, sent.code().to_owned())
}

#[test]
fn behind_a_reverse_proxy_the_origin_must_be_the_public_one() {
    // Configured: the browser's Origin is the proxy's address, not the Host the server
    // was reached at; the server's own address and other sites are refused.
    let public = "https://console.example.cn";
    let server = TestServer::start_with(|config| {
        config.console.public_origin = Some(public.to_owned());
    });
    server.add_account(Role::Operator, "proxy-admin");
    let (browser, _) = Browser::sign_in(&server, "proxy-admin");
    let refused = (403, "csrf_token_invalid".to_owned());
    let own = browser.base.clone();
    for origin in [
        own.as_str(),
        "https://evil.example",
        "http://console.example.cn",
        "https://console.example.cn.evil.example",
    ] {
        assert_eq!(
            write_from(&browser, "proxy-made", origin),
            refused,
            "{origin}"
        );
        assert!(!login_exists(&server, "proxy-made"));
    }
    assert_eq!(
        write_from(&browser, "proxy-made", public),
        (200, String::new())
    );
    assert!(login_exists(&server, "proxy-made"));

    // The cookie sign-in takes the same check.
    let sign_in = |origin: &str| {
        let mut body = server.sign_in_body("proxy-admin");
        body["cookie"] = json!(true);
        let sent = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/sessions", server.url()))
            .header("origin", origin)
            .json(&body)
            .send()
            .unwrap();
        answer(sent).status
    };
    assert_eq!(sign_in(public), 200);
    assert_eq!(sign_in(&own), 403);

    // Unset: the Origin must name the Host, so the proxy's address is refused.
    let direct = TestServer::start();
    direct.add_account(Role::Operator, "direct-admin");
    let (browser, _) = Browser::sign_in(&direct, "direct-admin");
    let own = browser.base.clone();
    assert_eq!(write_from(&browser, "direct-made", public), refused);
    assert!(!login_exists(&direct, "direct-made"));
    assert_eq!(
        write_from(&browser, "direct-made", &own),
        (200, String::new())
    );
}

#[test]
fn two_factor_setup_and_password_change_in_the_browser_move_the_session_to_a_new_cookie() {
    let server = TestServer::start();
    server.add_account(Role::Operator, "console-lead");
    let lead = server.client("console-lead");
    let body = json!({
        "login": "console-new", "password": password_of("console-new"), "role": "operator",
        "display_name": "new reviewer", "teams": ["reviewer"],
    });
    assert_eq!(lead.post("/accounts", body).0, 200);

    // 1. The first sign-in is setup-only, with a cookie like any other.
    let (browser, signed_in) = Browser::sign_in(&server, "console-new");
    assert_eq!(signed_in.body["second_factor_setup_required"], true);
    assert_eq!(
        browser.get("/orders").code(),
        "second_factor_setup_required"
    );
    let enrollment = browser.post("/me/totp", json!({}));
    assert_eq!(enrollment.status, 200, "{}", enrollment.body);
    let secret = enrollment.body["secret"].as_str().unwrap();
    let now = crate::support::unix_secs();
    let code = flexwork_server::auth::totp::code_at(secret, now).unwrap();

    // 2. Confirming answers the recovery codes and a new session in a new cookie.
    let enabled = browser.post("/me/totp/confirm", json!({ "code": code }));
    assert_eq!(enabled.status, 200, "{}", enabled.body);
    assert!(enabled.body.get("token").is_none(), "{}", enabled.body);
    assert_eq!(enabled.body["recovery_codes"].as_array().unwrap().len(), 10);
    let full = Browser {
        http: reqwest::blocking::Client::new(),
        base: server.url(),
        cookie: cookie_value(&enabled.set_cookie()),
        csrf: enabled.body["csrf_token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(
        browser.get("/me").status,
        401,
        "the setup session is revoked"
    );
    let me = full.get("/me");
    assert_eq!(me.status, 200);
    assert_eq!(me.body["csrf_token"], full.csrf.as_str());
    assert_eq!(full.get("/orders").status, 200);

    // 3. A password change does the same.
    let change = json!({
        "current_password": password_of("console-new"), "new_password": "a-new-long-password",
    });
    let changed = full.post("/me/password", change);
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(changed.body.get("token").is_none());
    let renewed = Browser {
        http: reqwest::blocking::Client::new(),
        base: server.url(),
        cookie: cookie_value(&changed.set_cookie()),
        csrf: changed.body["csrf_token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(full.get("/me").status, 401);
    assert_eq!(renewed.get("/me").status, 200);

    // 4. A wrong current password is an error about that field.
    let wrong = json!({ "current_password": "not-it-at-all", "new_password": "x" });
    let refused = renewed.post("/me/password", wrong);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["field"], "current_password");
}

#[test]
fn every_answer_carries_the_security_headers() {
    let server = TestServer::start();
    server.add_account(Role::Operator, "headers-op");
    let op = server.client("headers-op");
    let http = reqwest::blocking::Client::new();
    let url = |path: &str| format!("{}{path}", server.url());
    let answers = [
        ("API", http.get(url("/api/v1/me")).bearer_auth(&op.token)),
        ("error", http.get(url("/api/v1/me"))),
        ("404", http.get(url("/api/v1/no-such-thing"))),
        ("outside the API", http.get(url("/no-such-page"))),
        ("health", http.get(url("/healthz"))),
    ];
    for (what, request) in answers {
        let answer = answer(request.send().unwrap());
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("{what}: no {name}"))
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "img-src 'self' blob: data:",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{what}: {csp}");
        }
        assert_eq!(header("x-frame-options"), "DENY", "{what}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
        assert_eq!(
            header("cross-origin-opener-policy"),
            "same-origin",
            "{what}"
        );
        if what != "outside the API" && what != "health" {
            assert_eq!(header("cache-control"), "no-store", "{what}");
        }
    }
}

/// The Arezzo evidence plus the portrait photo (EXIF orientation 6), submitted and verified.
fn verified_scene(server: &TestServer, tag: &str) -> (Scene, Phone, Value) {
    let scene = server.scene(tag, &AREZZO);
    let mut phone = Phone::for_scene(server, &scene);
    phone.record_arezzo_evidence(&scene.order_id);
    let taken = ms(AREZZO_TAKEN_AT);
    let portrait = fixture_bytes("photos/portrait-orientation-6.jpg");
    phone
        .device
        .record_photo(
            &scene.order_id,
            &portrait,
            "image/jpeg",
            Some(fix_at_arezzo(taken)),
            taken,
        )
        .unwrap();
    phone
        .device
        .add_note(&scene.order_id, "shop closed, call 13812345678", taken)
        .unwrap();
    phone
        .device
        .submit(&scene.order_id, ms("2008-10-23T14:32:00Z"))
        .unwrap();
    phone.sync();
    let order = server.wait_verified(&scene.enterprise, &scene.order_id);
    (scene, phone, order)
}

#[test]
fn the_evidence_page_gets_everything_it_draws_and_upright_thumbnails() {
    let server = TestServer::start();
    let (scene, _phone, order) = verified_scene(&server, "page");
    let other = server.scene("page-other", &AREZZO);
    let path = format!("/orders/{}/evidence", scene.order_id);

    // 1. The owner's enterprise gets the evidence, the findings and the task's site.
    let (status, evidence) = scene.enterprise.get(&path);
    assert_eq!(status, 200, "{evidence}");
    assert_eq!(evidence["verdict"], order["verdict"]);
    assert_eq!(evidence["site"]["radius_m"], 150.0);
    assert_eq!(evidence["site"]["datum"], "wgs84");
    assert_eq!(evidence["window"]["start"], "2008-10-23T12:00:00Z");
    let photos = evidence["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 2);
    let arezzo = &photos[0];
    assert_eq!(arezzo["fix"]["accuracy_m"], 8.0);
    assert!(arezzo["exif"]["camera_make"].is_string(), "{arezzo}");
    assert!(arezzo["exif"]["gps_lat"].as_f64().unwrap() > 43.0);
    let report_findings = order["report"]["findings"].as_array().unwrap();
    assert_eq!(
        evidence["findings"].as_array().unwrap().len(),
        report_findings.len()
    );
    let strokes = evidence["signatures"][0]["strokes"].as_array().unwrap();
    assert_eq!(strokes.len(), 2);
    assert_eq!(strokes[0].as_array().unwrap().len(), 20);
    assert_eq!(evidence["submissions"].as_array().unwrap().len(), 1);
    let note = evidence["notes"][0]["text"].as_str().unwrap();
    assert!(note.starts_with("shop closed"), "{note}");
    assert!(
        !note.contains("13812345678"),
        "the note's phone number is masked: {note}"
    );

    // 2. The regulator reads it too; another enterprise and another worker do not.
    let regulator_login = "page-regulator";
    server.add_account(Role::Regulator, regulator_login);
    assert_eq!(server.client(regulator_login).get(&path).0, 200);
    assert_eq!(other.enterprise.get(&path).0, 404);
    let other_worker = server.device_client(&other.worker_login);
    assert_eq!(other_worker.get(&path).0, 404);

    // 3. The portrait photo's thumbnail is a JPEG within bounds, turned upright: stored
    //    landscape with orientation 6, it is shown taller than wide.
    let portrait = &photos[1];
    assert_eq!(portrait["exif"]["orientation"], 6);
    let (stored_w, stored_h) = (
        portrait["exif"]["width"].as_u64().unwrap(),
        portrait["exif"]["height"].as_u64().unwrap(),
    );
    let hash = portrait["hash"].as_str().unwrap();
    let thumb = scene
        .enterprise
        .request(
            Method::GET,
            &format!("/media/{hash}/thumbnail?max=200"),
            None,
            Vec::new(),
        )
        .send()
        .unwrap();
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    // Evidence is not left in the browser's cache after the session.
    assert_eq!(thumb.headers()["cache-control"], "no-store");
    let bytes = thumb.bytes().unwrap();
    let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    let (w, h) = (u64::from(image.width()), u64::from(image.height()));
    assert!(w.max(h) <= 200 && w.max(h) >= 150, "{w}×{h}");
    assert_eq!(
        w > h,
        stored_h > stored_w,
        "stored {stored_w}×{stored_h}, thumbnail {w}×{h}: not rotated"
    );
    // Asked for more than the photo has, the photo comes at its own size, upright: never
    // enlarged.
    let (status, large) = {
        let response = scene
            .enterprise
            .request(
                Method::GET,
                &format!("/media/{hash}/thumbnail?max=1024"),
                None,
                Vec::new(),
            )
            .send()
            .unwrap();
        (response.status().as_u16(), response.bytes().unwrap())
    };
    assert_eq!(status, 200);
    let large = image::load_from_memory_with_format(&large, image::ImageFormat::Jpeg).unwrap();
    assert_eq!(
        (u64::from(large.width()), u64::from(large.height())),
        (stored_h, stored_w),
        "stored {stored_w}×{stored_h}: shown at its own size, turned upright"
    );

    // 4. Bounds are checked, and the thumbnail is refused to whoever may not read the photo.
    let (status, bad) = scene
        .enterprise
        .get(&format!("/media/{hash}/thumbnail?max=10"));
    assert_eq!((status, bad["field"].as_str()), (400, Some("max")));
    let refused = other.enterprise.get(&format!("/media/{hash}/thumbnail")).0;
    assert!(matches!(refused, 403 | 404), "{refused}");
}

fn has_issues(scene: &Scene, items: Value) -> (u16, Value) {
    let body = json!({
        "decision": "has_issues", "reason": "please redo what is marked", "items": items,
    });
    scene
        .operator
        .post(&format!("/orders/{}/review", scene.order_id), body)
}

fn queues(client: &crate::support::Client) -> Value {
    let (status, queues) = client.get("/queues");
    assert_eq!(status, 200, "{queues}");
    queues
}

#[test]
fn has_issues_sends_the_evidence_back_to_the_phone_until_new_evidence_is_reviewed() {
    let server = TestServer::start();
    let (scene, mut phone, order) = verified_scene(&server, "back");
    assert_eq!(order["verdict"], "needs_review", "{order}");
    let queue = queues(&scene.operator);
    assert_eq!(queue["evidence_to_review"]["count"], 1, "{queue}");
    assert_eq!(queue["returned"]["count"], 0);
    let photo_id = order["report"]["photos"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // 1. Unknown items and items without comments are refused, naming the field.
    let (status, refused) = has_issues(&scene, json!([{ "item": "nope", "comment": "x" }]));
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("unknown_item"))
    );
    assert_eq!(refused["field"], "items");
    let (status, refused) = has_issues(&scene, json!([]));
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("items_required"))
    );
    let twice = json!([
        { "item": photo_id, "comment": "sideways" },
        { "item": photo_id, "comment": "blurred" },
    ]);
    let (status, refused) = has_issues(&scene, twice);
    assert_eq!(
        (status, refused["code"].as_str(), refused["field"].as_str()),
        (400, Some("duplicate_item"), Some("items"))
    );
    let regulator_login = "back-regulator";
    server.add_account(Role::Regulator, regulator_login);
    let regulator = server.client(regulator_login);
    let body = json!({
        "decision": "has_issues", "reason": "x", "items": [{ "item": "track", "comment": "x" }],
    });
    let path = format!("/orders/{}/review", scene.order_id);
    assert_eq!(regulator.post(&path, body).0, 403);

    // 2. Sent back with one item: the order is returned and leaves the review queue.
    let items = json!([{ "item": photo_id, "comment": "the photo is sideways and blurred" }]);
    let (status, returned) = has_issues(&scene, items);
    assert_eq!(status, 200, "{returned}");
    assert_eq!(returned["status"], "returned");
    assert_eq!(returned["operator_decision"], "has_issues");
    let queue = queues(&scene.operator);
    assert_eq!(queue["evidence_to_review"]["count"], 0, "{queue}");
    assert_eq!(queue["returned"]["count"], 1, "{queue}");
    let (_, evidence) = scene
        .operator
        .get(&format!("/orders/{}/evidence", scene.order_id));
    assert_eq!(evidence["remarks"][0]["item"], photo_id.as_str());
    assert_eq!(
        evidence["photos"][1]["remarks"].as_array().unwrap().len(),
        1
    );
    assert_eq!(evidence["decisions"][0]["decision"], "has_issues");

    // 3. The worker's phone shows the comment on that photo, and the order as returned.
    phone.sync();
    let findings = phone
        .device
        .item_findings(&scene.order_id, &photo_id)
        .unwrap();
    let comment = findings
        .iter()
        .find(|f| f.code == "operator_has_issues")
        .unwrap_or_else(|| panic!("no operator finding: {findings:?}"));
    assert_eq!(comment.message, "the photo is sideways and blurred");
    assert_eq!(comment.severity, "error");
    let review = phone
        .device
        .evidence(&scene.order_id)
        .unwrap()
        .review
        .unwrap();
    assert_eq!(
        review.comment.as_deref(),
        Some("please redo what is marked")
    );
    let summary = phone.device.order(&scene.order_id).unwrap().summary;
    assert_eq!(summary.status, "returned");

    // 4. The enterprise can neither confirm nor dispute meanwhile (that would freeze or judge
    //    evidence that is being redone).
    let confirm = format!("/orders/{}/confirm", scene.order_id);
    let (status, refused) = scene.enterprise.post(&confirm, json!({}));
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("order_returned"))
    );
    let dispute = format!("/orders/{}/dispute", scene.order_id);
    let (status, refused) = scene
        .enterprise
        .post(&dispute, json!({ "reason": "not done" }));
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("order_returned"))
    );
    // Nor can the reviewer approve the same evidence the worker was told to redo.
    let (status, refused) = scene.operator.post(
        &format!("/orders/{}/review", scene.order_id),
        json!({ "decision": "approve", "reason": "fine after all" }),
    );
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("order_returned"))
    );

    // 5. New evidence arrives and is verified: reviewed again as usual, then approved; the
    //    statement opens and the operator's remarks are gone from the phone.
    let taken = ms(AREZZO_TAKEN_AT);
    let redo = fixture_bytes("photos/DSCN0012.jpg");
    phone
        .device
        .record_photo(
            &scene.order_id,
            &redo,
            "image/jpeg",
            Some(fix_at_arezzo(taken)),
            taken,
        )
        .unwrap();
    phone.sync();
    let order = server.wait_verified(&scene.enterprise, &scene.order_id);
    assert!(order["operator_decision"].is_null(), "{order}");
    assert_ne!(order["status"], "returned");
    if order["verdict"] == "needs_review" {
        assert_eq!(queues(&scene.operator)["evidence_to_review"]["count"], 1);
        let body = json!({ "decision": "approve", "reason": "the new photo is fine" });
        let (status, approved) = scene.operator.post(&path, body);
        assert_eq!(status, 200, "{approved}");
    }
    let (status, order) = scene.enterprise.post(&confirm, json!({}));
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["status"], "reconciling", "{order}");
    assert!(order["statement"].is_object(), "{order}");
    assert_eq!(queues(&scene.operator)["returned"]["count"], 0);
    phone.sync();
    let findings = phone
        .device
        .item_findings(&scene.order_id, &photo_id)
        .unwrap();
    assert!(
        findings.iter().all(|f| f.code != "operator_has_issues"),
        "{findings:?}"
    );

    // 6. The history keeps every decision, and the audit trail has the reason.
    let (_, evidence) = scene
        .operator
        .get(&format!("/orders/{}/evidence", scene.order_id));
    let decisions = evidence["decisions"].as_array().unwrap();
    assert_eq!(decisions[0]["decision"], "has_issues");
    assert_eq!(decisions[0]["items"][0]["item"], photo_id.as_str());
    assert!(evidence["remarks"].as_array().unwrap().is_empty());
    let (_, records) = scene.operator.get("/audit?action=evidence_reviewed");
    let records = records.as_array().unwrap();
    assert!(
        records
            .iter()
            .any(|r| r["detail"]["decision"] == "has_issues"
                && r["detail"]["reason"] == "please redo what is marked"),
        "{records:?}"
    );
    // The worker's own view names no operator.
    let worker = server.device_client(&scene.worker_login);
    let (_, mine) = worker.get(&format!("/orders/{}/evidence", scene.order_id));
    assert!(mine["decisions"][0]["operator"].is_null(), "{mine}");
}

#[test]
fn decisions_made_at_once_leave_the_order_and_its_evidence_agreeing() {
    let server = TestServer::start();
    let (scene, _phone, order) = verified_scene(&server, "race");
    assert_eq!(order["verdict"], "needs_review", "{order}");
    let photo_id = order["report"]["photos"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/orders/{}/review", scene.order_id);

    // Reviewers answering at the same moment: every answer is a decision or a clear conflict.
    let statuses: Vec<(u16, Value)> = std::thread::scope(|threads| {
        let sent: Vec<_> = (0..8)
            .map(|n| {
                let (scene, path, photo_id) = (&scene, &path, &photo_id);
                threads.spawn(move || {
                    let body = if n % 2 == 0 {
                        json!({ "decision": "has_issues", "reason": format!("redo {n}"),
                                "items": [{ "item": photo_id, "comment": format!("take {n}") }] })
                    } else {
                        json!({ "decision": "approve", "reason": format!("fine {n}") })
                    };
                    scene.operator.post(path, body)
                })
            })
            .collect();
        sent.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (status, body) in &statuses {
        assert!(
            *status == 200
                || (*status == 409
                    && matches!(
                        body["code"].as_str(),
                        Some("order_returned" | "decision_conflict")
                    )),
            "{status} {body}"
        );
    }

    // The order, the decision history and the remarks the console shows name one decision.
    let (_, order) = scene.operator.get(&format!("/orders/{}", scene.order_id));
    let (_, evidence) = scene
        .operator
        .get(&format!("/orders/{}/evidence", scene.order_id));
    let decisions = evidence["decisions"].as_array().unwrap();
    let latest = decisions.last().unwrap();
    assert_eq!(
        latest["decision"], order["operator_decision"],
        "{decisions:?}"
    );
    assert_eq!(latest["reason"], order["operator_reason"], "{decisions:?}");
    let remarks = evidence["remarks"].as_array().unwrap();
    if order["operator_decision"] == "has_issues" {
        assert_eq!(remarks.len(), 1, "{evidence}");
        assert_eq!(remarks[0]["comment"], latest["items"][0]["comment"]);
    } else {
        assert!(remarks.is_empty(), "{evidence}");
    }

    // Once the enterprise disputes completion, the evidence is approved or rejected, not sent
    // back.
    if order["operator_decision"] == "has_issues" {
        let (status, rejected) = scene.operator.post(
            &path,
            json!({ "decision": "reject", "reason": "not redone" }),
        );
        assert_eq!(status, 200, "{rejected}");
    }
    let dispute = format!("/orders/{}/dispute", scene.order_id);
    let (status, disputed) = scene
        .enterprise
        .post(&dispute, json!({ "reason": "the board was not checked" }));
    assert_eq!(status, 200, "{disputed}");
    let items = json!([{ "item": photo_id, "comment": "again" }]);
    let (status, refused) = scene.operator.post(
        &path,
        json!({ "decision": "has_issues", "reason": "redo", "items": items }),
    );
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("order_disputed"))
    );
}

#[test]
fn queues_follow_the_work_and_filters_narrow_the_lists() {
    let server = TestServer::start();
    let scene = server.scene("lists", &AREZZO);
    let second = server.scene("lists-two", &AREZZO);
    let reviewer = &scene.operator;
    let before = queues(reviewer);

    // 1. Applications and tasks come and go from the queues.
    apply_as_worker(&server, "queue-applicant", "34052419800101001X");
    let after = queues(reviewer);
    let count = |q: &Value, section: &str| q[section]["count"].as_i64().unwrap();
    assert_eq!(
        count(&after, "worker_applications"),
        count(&before, "worker_applications") + 1
    );
    assert!(after["worker_applications"]["next_deadline"].is_string());
    let (status, task) = scene
        .enterprise
        .post("/tasks", crate::support::task_body(&AREZZO));
    assert_eq!(status, 200, "{task}");
    let task_id = task["id"].as_str().unwrap();
    let submit = scene
        .enterprise
        .post(&format!("/tasks/{task_id}/submit"), json!({}));
    assert_eq!(submit.0, 200, "{}", submit.1);
    let with_task = queues(reviewer);
    assert_eq!(count(&with_task, "tasks_to_review"), 1);
    assert!(with_task["tasks_to_review"]["oldest_submitted_at"].is_string());
    let refuse = json!({ "decision": "refuse", "reason_code": "other", "reason": "not real" });
    assert_eq!(
        reviewer.post(&format!("/tasks/{task_id}/review"), refuse).0,
        200
    );
    assert_eq!(count(&queues(reviewer), "tasks_to_review"), 0);

    // 2. A disputed completion is a dispute.
    let mut phone = Phone::for_scene(&server, &second);
    phone.record_arezzo_evidence(&second.order_id);
    phone
        .device
        .submit(&second.order_id, ms(AREZZO_TAKEN_AT))
        .unwrap();
    phone.sync();
    server.wait_verified(&second.enterprise, &second.order_id);
    let dispute = json!({ "reason": "nobody came" });
    let path = format!("/orders/{}/dispute", second.order_id);
    assert_eq!(second.enterprise.post(&path, dispute).0, 200);
    assert_eq!(
        count(&queues(reviewer), "disputes"),
        count(&before, "disputes") + 1
    );

    // 3. Sections follow duties: finance sees disputes only; regulators have no queues.
    let finance = server.finance();
    let finance_queues = queues(&finance);
    assert!(
        finance_queues.get("worker_applications").is_none(),
        "{finance_queues}"
    );
    assert!(finance_queues["disputes"]["count"].is_i64());
    server.add_account(Role::Regulator, "lists-regulator");
    let regulator = server.client("lists-regulator");
    assert_eq!(regulator.get("/queues").0, 403);
    server.add_operator("lists-welfare", &[Team::Welfare]);
    assert_eq!(server.client("lists-welfare").get("/queues").0, 403);

    // 4. The regulator filters orders by enterprise, status and date; each order carries
    //    its evidence summary.
    let (_, order) = second
        .enterprise
        .get(&format!("/orders/{}", second.order_id));
    let enterprise = order["enterprise_id"].as_str().unwrap().to_owned();
    let ids = |path: &str| -> Vec<String> {
        let (status, list) = regulator.get(path);
        assert_eq!(status, 200, "{path}: {list}");
        list.as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("/orders").len(), 2);
    assert_eq!(
        ids(&format!("/orders?enterprise_id={enterprise}")),
        vec![second.order_id.clone()]
    );
    assert_eq!(ids("/orders?status=assigned"), vec![scene.order_id.clone()]);
    assert_eq!(
        ids("/orders?status=disputed"),
        vec![second.order_id.clone()]
    );
    let today = flexwork_server::shanghai_date(crate::support::now_ms());
    assert_eq!(ids(&format!("/orders?from={today}&to={today}")).len(), 2);
    assert!(ids("/orders?to=2020-01-01").is_empty());
    assert!(ids("/orders?from=2100-01-01T00:00:00Z").is_empty());
    let (status, bad) = regulator.get("/orders?status=lost");
    assert_eq!((status, bad["field"].as_str()), (400, Some("status")));
    let (status, bad) = regulator.get("/orders?from=last-week");
    assert_eq!((status, bad["code"].as_str()), (400, Some("invalid_query")));
    assert_eq!(bad["field"], "from");
    let (_, listed) = regulator.get(&format!("/orders?enterprise_id={enterprise}"));
    let summary = &listed[0]["evidence_summary"];
    assert_eq!(summary["photos"], 1, "{summary}");
    assert_eq!(summary["signatures"], 1, "{summary}");
    assert_eq!(summary["verdict"], listed[0]["verdict"]);

    // 5. Invoices take the same filters; an enterprise never sees another's.
    let (status, invoices) = regulator.get(&format!("/invoices?enterprise_id={enterprise}"));
    assert_eq!((status, invoices.as_array().map(Vec::len)), (200, Some(0)));
    let (status, bad) = regulator.get("/invoices?to=soon");
    assert_eq!((status, bad["field"].as_str()), (400, Some("to")));
    let (status, theirs) = scene
        .enterprise
        .get(&format!("/invoices?enterprise_id={enterprise}"));
    assert_eq!((status, theirs.as_array().map(Vec::len)), (200, Some(0)));

    // 6. Changing nothing: the regulator cannot review, confirm or dispute.
    let review = json!({ "decision": "reject", "reason": "regulators read only" });
    let path = format!("/orders/{}/review", second.order_id);
    assert_eq!(regulator.post(&path, review).0, 403);
    let path = format!("/orders/{}/confirm", second.order_id);
    assert_eq!(regulator.post(&path, json!({})).0, 403);
}

//! Looking after accounts: applications cannot be used to list the logins in use, an
//! account is suspended once, an administrator resets a lost second factor, and every
//! record carries the address it came from.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod support;

use serde_json::{Value, json};
use support::{AREZZO, Client, TestServer, password_of};

fn public(server: &TestServer) -> Client {
    Client {
        http: reqwest::blocking::Client::new(),
        base: server.url(),
        token: String::new(),
    }
}

fn enterprise_application(public: &Client, login: &str) -> Value {
    let (_, notice) = public.get("/privacy/notice");
    json!({
        "login": login, "password": password_of(login),
        "company_name": "Lotus Trading Co., Ltd.", "credit_code": "91350100M000100Y43",
        "licence_valid_from": "2015-03-01", "business_scope": "retail of daily goods",
        "managers": [{ "name": "李四", "id_number": "110105197001010038", "position": "director" }],
        "consent": { "notice_version": notice["version"], "accepted": true },
    })
}

#[test]
fn applications_from_one_address_are_limited_so_logins_cannot_be_listed() {
    let server = TestServer::start_with(|c| c.login.max_applications_per_address = 3);
    let scene = server.scene("limit", &AREZZO);
    let public = public(&server);

    // Three applications probe three logins (one of them taken); the fourth is refused
    // before its login is looked at.
    for login in ["probe-one", "acme-limit", "probe-two"] {
        let (status, answer) = public.post(
            "/onboarding/enterprises",
            enterprise_application(&public, login),
        );
        assert!(matches!(status, 200 | 409), "{answer}");
    }
    let (status, refused) = public.post(
        "/onboarding/enterprises",
        enterprise_application(&public, "acme-limit"),
    );
    assert_eq!(
        (status, refused["code"].as_str()),
        (429, Some("too_many_attempts")),
        "{refused}"
    );
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("applications")
    );

    // Signing in from the same address is not held back by the applications.
    let again = server.client("acme-limit");
    assert_eq!(again.get("/me").0, 200);
    let (_, records) = scene.operator.get("/audit?action=application");
    let throttled = &records.as_array().unwrap()[0];
    assert_eq!(throttled["result"], "refused");
    assert_eq!(throttled["address"], "127.0.0.1");
}

#[test]
fn suspensions_are_not_repeated_and_lost_second_factors_are_reset_by_another_administrator() {
    let server = TestServer::start();
    let scene = server.scene("reset", &AREZZO);
    let admin = &scene.operator;
    let (_, me) = scene.enterprise.get("/me");
    let enterprise = me["account_id"].as_str().unwrap().to_owned();
    let reason = json!({ "reason": "unpaid invoices under review" });

    // One suspension, then 409 for the second; reinstating twice likewise.
    let suspend = format!("/accounts/{enterprise}/suspend");
    let reinstate = format!("/accounts/{enterprise}/reinstate");
    assert_eq!(admin.post(&suspend, reason.clone()).0, 200);
    let (status, again) = admin.post(&suspend, reason.clone());
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("already_suspended"))
    );
    assert_eq!(admin.post(&reinstate, reason.clone()).0, 200);
    let (status, again) = admin.post(&reinstate, reason.clone());
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("not_suspended"))
    );
    let (_, records) = admin.get("/audit?action=account_suspended");
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["address"], "127.0.0.1");

    // The enterprise lost its phone: an administrator resets the second factor with a
    // reason; its tokens stop working and the password alone gives a setup-only token.
    let enterprise_client = server.client("acme-reset");
    let reset = format!("/accounts/{enterprise}/second-factor/reset");
    let (status, refused) = admin.post(&reset, json!({ "reason": " " }));
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("reason_required"))
    );
    let (status, done) = admin.post(&reset, json!({ "reason": "phone lost, identity checked" }));
    assert_eq!(status, 200, "{done}");
    assert_eq!(enterprise_client.get("/orders").0, 401);
    let (status, session) = public(&server).post(
        "/sessions",
        json!({ "login": "acme-reset", "password": password_of("acme-reset") }),
    );
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["second_factor_setup_required"], true);
    server.set_up_second_factor("acme-reset");
    assert_eq!(server.client("acme-reset").get("/orders").0, 200);

    // Nobody resets their own.
    let (_, me) = admin.get("/me");
    let own = format!(
        "/accounts/{}/second-factor/reset",
        me["account_id"].as_str().unwrap()
    );
    let (status, refused) = admin.post(&own, json!({ "reason": "mine" }));
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("cannot_reset_own_second_factor"))
    );
    let (_, records) = admin.get("/audit?action=second_factor_reset");
    let record = &records.as_array().unwrap()[0];
    assert_eq!(record["detail"]["reason"], "phone lost, identity checked");
    assert_eq!(record["object"], format!("account:{enterprise}"));
}

//! Looking after accounts: applications cannot be used to list the logins in use, an
//! account is suspended once, an administrator resets a lost second factor, and every
//! record carries the address it came from.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support;

use crate::support::{AREZZO, Client, TestServer, password_of};
use serde_json::{Value, json};

fn public(server: &TestServer) -> Client {
    support::anonymous_client(server)
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

#[test]
fn a_suspended_organisation_stops_its_staff_and_the_last_administrator_stays() {
    let server = TestServer::start();
    let scene = server.scene("org", &AREZZO);
    let admin = &scene.operator;

    // The enterprise's clerk works until the organisation's account is suspended.
    let staff = json!({
        "login": "org-clerk", "password": password_of("org-clerk"), "display_name": "clerk",
    });
    assert_eq!(scene.enterprise.post("/enterprise/staff", staff).0, 200);
    server.set_up_second_factor("org-clerk");
    let clerk = server.client("org-clerk");
    assert_eq!(clerk.get("/orders").0, 200);
    let (_, me) = scene.enterprise.get("/me");
    let organisation = me["organisation_id"].as_str().unwrap();
    let reason = json!({ "reason": "fraud investigation of the enterprise" });
    let (status, body) = admin.post(&format!("/accounts/{organisation}/suspend"), reason);
    assert_eq!(status, 200, "{body}");
    assert_eq!(clerk.get("/orders").0, 401);
    assert_eq!(clerk.post("/tasks", support::task_body(&AREZZO)).0, 401);

    // The only administrator cannot be suspended, by anyone; a worker has no second factor
    // to reset; a reason must say something and fit the trail.
    let (_, me) = admin.get("/me");
    let own = me["account_id"].as_str().unwrap().to_owned();
    server.add_operator(
        "second-admin",
        &[flexwork_server::auth::Team::Administrator],
    );
    let second = server.client("second-admin");
    let (status, refused) = second.post(
        &format!("/accounts/{own}/suspend"),
        json!({ "reason": "testing the last administrator" }),
    );
    assert_eq!(status, 200, "{refused}");
    let (_, me) = second.get("/me");
    let second_id = me["account_id"].as_str().unwrap().to_owned();
    server.add_operator("third-admin", &[flexwork_server::auth::Team::Administrator]);
    let third = server.client("third-admin");
    let (status, refused) = third.post(
        &format!("/accounts/{second_id}/suspend"),
        json!({ "reason": "leaves only one" }),
    );
    assert_eq!(status, 200, "{refused}");
    let (_, me) = third.get("/me");
    let third_id = me["account_id"].as_str().unwrap().to_owned();
    // third-admin is now the only active administrator; only another one could suspend it,
    // and the command line is refused too.
    let state = server.state();
    let last = server.block_on(flexwork_server::auth::set_suspended(
        state, &third_id, true, None,
    ));
    assert_eq!(last.unwrap_err().code, "last_administrator");

    let worker = server.block_on(flexwork_server::auth::account_id_of(state, "wang-org"));
    let reset = format!("/accounts/{}/second-factor/reset", worker.unwrap());
    let (status, refused) = third.post(&reset, json!({ "reason": "phone lost" }));
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("no_second_factor"))
    );
    for (reason, code) in [
        ("\u{200b}", "reason_required"),
        (&*"r".repeat(2_001), "reason_too_long"),
    ] {
        let (status, refused) = third.post(&reset, json!({ "reason": reason }));
        assert_eq!((status, refused["code"].as_str()), (400, Some(code)));
    }
}

#[test]
fn a_nul_character_is_bad_input_on_every_backend() {
    let server = TestServer::start();
    let http = reqwest::blocking::Client::new();
    let response = http
        .post(format!("{}/api/v1/sessions", server.url()))
        .json(&json!({ "login": "someone\u{0}", "password": "whatever-123" }))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap();
    assert!(matches!(status, 400 | 401), "{status} {body}");
    assert!(body["code"].is_string());
    assert_eq!(
        reqwest::blocking::get(format!("{}/healthz", server.url()))
            .unwrap()
            .status(),
        200
    );
}

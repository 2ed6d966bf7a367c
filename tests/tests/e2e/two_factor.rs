//! Signing in as an operator or enterprise: two factors, codes that work once, throttling,
//! revocation, suspension, and the audit trail that records all of it.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support;

use crate::support::{Client, TestServer, password_of, unix_secs};
use flexwork_server::auth::Role;
use flexwork_server::auth::totp::code_at;
use serde_json::{Value, json};

fn sign_in(server: &TestServer, body: Value) -> (u16, Value) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/sessions", server.url()))
        .json(&body)
        .send()
        .unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

fn with_token(server: &TestServer, token: &str) -> Client {
    Client {
        http: reqwest::blocking::Client::new(),
        base: server.url(),
        token: token.to_owned(),
        device: None,
    }
}

/// Creates an operator account without setting up its authenticator.
fn bare_operator(server: &TestServer, login: &str) {
    let account = flexwork_server::auth::NewAccount {
        login: login.into(),
        password: password_of(login),
        role: Role::Operator,
        display_name: login.into(),
        teams: vec![flexwork_server::auth::Team::Administrator],
        organisation_id: None,
    };
    let create = flexwork_server::auth::create_account(server.state(), &account);
    server.block_on(create).unwrap();
}

#[test]
fn an_operator_sets_up_an_authenticator_before_anything_else_and_codes_work_once() {
    let server = TestServer::start();
    bare_operator(&server, "op-2fa");
    let password = password_of("op-2fa");

    // 1. The password alone gives a token good only for the setup.
    let (status, session) = sign_in(&server, json!({ "login": "op-2fa", "password": password }));
    assert_eq!(status, 200);
    assert_eq!(session["second_factor_setup_required"], true);
    let setup = with_token(&server, session["token"].as_str().unwrap());
    let (status, refused) = setup.get("/orders");
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("second_factor_setup_required"))
    );

    // 2. A wrong first code is refused; the right one turns it on, revokes the setup token and
    //    hands out ten recovery codes.
    let (_, enrollment) = setup.post("/me/totp", json!({}));
    let secret = enrollment["secret"].as_str().unwrap().to_owned();
    assert!(
        enrollment["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let (status, wrong) = setup.post("/me/totp/confirm", json!({ "code": "000000" }));
    assert_eq!(
        (status, wrong["code"].as_str()),
        (400, Some("invalid_totp"))
    );
    let step = unix_secs() / 30;
    let first = code_at(&secret, step * 30).unwrap();
    let (status, enabled) = setup.post("/me/totp/confirm", json!({ "code": first }));
    assert_eq!(status, 200, "{enabled}");
    let recovery = enabled["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(recovery.len(), 10);
    assert_eq!(setup.get("/me").0, 401, "the setup token is revoked");
    assert_eq!(
        with_token(&server, enabled["token"].as_str().unwrap())
            .get("/audit?limit=5")
            .0,
        200
    );

    // 3. From now on the password alone is not enough, and no code works twice.
    let (status, needed) = sign_in(&server, json!({ "login": "op-2fa", "password": password }));
    assert_eq!(
        (status, needed["code"].as_str()),
        (401, Some("totp_required"))
    );
    let reused = json!({ "login": "op-2fa", "password": password, "totp": first });
    let (status, again) = sign_in(&server, reused);
    assert_eq!(
        (status, again["code"].as_str()),
        (401, Some("invalid_totp"))
    );
    let next = code_at(&secret, (step + 1) * 30).unwrap();
    let fresh = json!({ "login": "op-2fa", "password": password, "totp": next });
    assert_eq!(sign_in(&server, fresh.clone()).0, 200);
    assert_eq!(sign_in(&server, fresh).0, 401);

    // 4. A recovery code works once.
    let code = recovery[0].as_str().unwrap();
    let by_recovery = json!({ "login": "op-2fa", "password": password, "recovery_code": code });
    assert_eq!(sign_in(&server, by_recovery.clone()).0, 200);
    let (status, used) = sign_in(&server, by_recovery);
    assert_eq!(
        (status, used["code"].as_str()),
        (401, Some("invalid_recovery_code"))
    );
}

#[test]
fn repeated_failures_lock_the_account_for_a_while_but_not_other_accounts() {
    let server = TestServer::start();
    bare_operator(&server, "op-locked");
    bare_operator(&server, "op-other");

    for _ in 0..5 {
        let wrong = json!({ "login": "op-locked", "password": "not-the-password" });
        assert_eq!(sign_in(&server, wrong).0, 401);
    }
    let right = json!({ "login": "op-locked", "password": password_of("op-locked") });
    let (status, locked) = sign_in(&server, right);
    let other = json!({ "login": "op-other", "password": password_of("op-other") });

    assert_eq!(
        (status, locked["code"].as_str()),
        (429, Some("too_many_attempts"))
    );
    assert_eq!(sign_in(&server, other).0, 200);
}

#[test]
fn password_changes_and_suspensions_revoke_tokens_and_everything_is_audited() {
    let server = TestServer::start();
    let scene = server.scene("revoke", &support::AREZZO);
    let admin = &scene.operator;
    let second = server.client("acme-revoke");

    // 1. A password change revokes the enterprise's other token and returns a new one.
    let change = json!({
        "current_password": password_of("acme-revoke"),
        "new_password": "a-brand-new-password",
    });
    let (status, changed) = scene.enterprise.post("/me/password", change);
    assert_eq!(status, 200, "{changed}");
    assert_eq!(second.get("/orders").0, 401);
    let renewed = with_token(&server, changed["token"].as_str().unwrap());
    assert_eq!(renewed.get("/orders").0, 200);

    // 2. Suspending the worker revokes their tokens and refuses their sign-in.
    let worker = server.client(&scene.worker_login);
    let (_, me) = worker.get("/me");
    let worker_id = me["account_id"].as_str().unwrap().to_owned();
    let path = format!("/accounts/{worker_id}/suspend");
    assert_eq!(admin.post(&path, json!({ "reason": "" })).0, 400);
    assert_eq!(
        admin
            .post(&path, json!({ "reason": "identity in doubt" }))
            .0,
        200
    );
    assert_eq!(worker.get("/orders").0, 401);
    let login =
        json!({ "login": scene.worker_login, "password": password_of(&scene.worker_login) });
    let (status, refused) = sign_in(&server, login.clone());
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("account_suspended"))
    );
    let reinstate = format!("/accounts/{worker_id}/reinstate");
    assert_eq!(
        admin
            .post(&reinstate, json!({ "reason": "checked in person" }))
            .0,
        200
    );
    assert_eq!(sign_in(&server, login).0, 200);

    // 3. The audit trail has each of these, with actor, object and result, and no secrets.
    let (status, records) = admin.get("/audit?limit=200");
    assert_eq!(status, 200);
    let records = records.as_array().unwrap();
    let has = |action: &str, result: &str| {
        records
            .iter()
            .any(|r| r["action"] == action && r["result"] == result)
    };
    assert!(has("login", "ok") && has("login", "refused"));
    assert!(has("totp_enabled", "ok") && has("password_changed", "ok"));
    assert!(has("account_suspended", "ok") && has("account_reinstated", "ok"));
    let suspended = records
        .iter()
        .find(|r| r["action"] == "account_suspended")
        .unwrap();
    assert_eq!(suspended["object"], format!("account:{worker_id}"));
    assert_eq!(suspended["detail"]["reason"], "identity in doubt");
    let text = serde_json::to_string(records).unwrap();
    assert!(!text.contains("a-brand-new-password"));
    assert!(!text.contains(&password_of("acme-revoke")));
    assert_eq!(
        scene.enterprise.get("/audit").0,
        401,
        "the old token is gone"
    );
    assert_eq!(
        renewed.get("/audit").0,
        403,
        "enterprises do not read the audit trail"
    );
}

#[test]
fn audit_records_cannot_be_changed_or_deleted_young_whatever_asks() {
    let server = TestServer::start();
    bare_operator(&server, "op-audit");
    let password = password_of("op-audit");
    sign_in(
        &server,
        json!({ "login": "op-audit", "password": password }),
    );
    let pool = &server.state().db.pool;

    let update = sqlx::query("UPDATE audit_log SET result = 'ok' WHERE action = 'login'");
    let delete = sqlx::query("DELETE FROM audit_log");
    let purge_young = flexwork_server::audit::purge(server.state(), 30);
    let purge_old = flexwork_server::audit::purge(server.state(), 200);

    assert!(server.block_on(update.execute(pool)).is_err());
    assert!(server.block_on(delete.execute(pool)).is_err());
    assert_eq!(
        server.block_on(purge_young).unwrap_err().code,
        "retention_period"
    );
    assert_eq!(server.block_on(purge_old).unwrap(), 0);
    let count = sqlx::query("SELECT COUNT(*) AS n FROM audit_log");
    let row = server.block_on(count.fetch_one(pool)).unwrap();
    assert!(sqlx::Row::get::<i64, _>(&row, "n") >= 1);
}

#[test]
fn concurrent_guesses_get_no_more_tries_than_sequential_ones() {
    let server = TestServer::start();
    bare_operator(&server, "op-race");
    let url = format!("{}/api/v1/sessions", server.url());
    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let body = json!({ "login": "op-race", "password": format!("guess-{i}") });
                let response = reqwest::blocking::Client::new()
                    .post(url)
                    .json(&body)
                    .send()
                    .unwrap();
                response.status().as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = guesses.into_iter().map(|g| g.join().unwrap()).collect();

    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        checked <= 5,
        "{checked} passwords were checked: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
}

#[test]
fn guessing_the_current_password_is_throttled_and_operators_cannot_suspend_themselves() {
    let server = TestServer::start();
    let scene = server.scene("guess", &support::AREZZO);
    let guess = json!({ "current_password": "not-it-at-all", "new_password": "whatever-long" });
    for _ in 0..5 {
        assert_eq!(scene.enterprise.post("/me/password", guess.clone()).0, 401);
    }
    let (status, locked) = scene.enterprise.post("/me/password", guess);
    assert_eq!(
        (status, locked["code"].as_str()),
        (429, Some("too_many_attempts"))
    );

    let (_, me) = scene.operator.get("/me");
    let own = format!("/accounts/{}/suspend", me["account_id"].as_str().unwrap());
    let (status, refused) = scene
        .operator
        .post(&own, json!({ "reason": "testing 13812345678" }));
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("cannot_suspend_self"))
    );
}

//! Who may decide what, and when: an approval covers exactly the evidence it looked at, a
//! rejected verdict is never paid, and confirmed evidence no longer changes.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support::raw::push;
use crate::support::{AREZZO, Phone, Scene, TestServer, fix_at_arezzo, fixture_bytes, ms};
use flexwork_sync::EvidenceDoc;
use serde_json::json;

const TAKEN_AT: &str = "2008-10-23T14:27:07Z";

fn review(scene: &Scene, decision: &str) -> (u16, serde_json::Value) {
    let body = json!({ "decision": decision, "reason": "looked at the photos" });
    scene
        .operator
        .post(&format!("/orders/{}/review", scene.order_id), body)
}

fn confirm(scene: &Scene) -> (u16, serde_json::Value) {
    scene
        .enterprise
        .post(&format!("/orders/{}/confirm", scene.order_id), json!({}))
}

/// A phone that has the order and recorded the Arezzo photo and a signature, not submitted.
fn phone_with_evidence(server: &TestServer, scene: &Scene) -> Phone {
    let mut phone = Phone::for_scene(server, scene);
    phone.record_arezzo_evidence(&scene.order_id);
    phone
}

#[test]
fn nothing_is_approved_before_it_is_verified_and_a_rejected_verdict_is_never_paid() {
    // 1. Before submission there is no verdict to approve.
    let server = TestServer::start();
    let scene = server.scene("early", &AREZZO);
    assert_eq!(review(&scene, "approve").1["code"], "not_verified");

    // 2. Submitted with nothing at all: rejected, and an operator cannot approve that.
    let mut phone = Phone::new();
    phone.login(&server, &scene.worker_login);
    phone.sync();
    phone.device.submit(&scene.order_id, ms(TAKEN_AT)).unwrap();
    phone.sync();
    let order = server.wait_verified(&scene.enterprise, &scene.order_id);
    assert_eq!(order["verdict"], "rejected");
    assert_eq!(
        review(&scene, "approve").1["code"],
        "cannot_approve_rejected"
    );

    // 3. The enterprise may confirm, but nothing is paid.
    let (status, confirmed) = confirm(&scene);
    assert_eq!(status, 200);
    assert!(confirmed["settlement"].is_null(), "{confirmed}");
    assert!(confirmed["statement"].is_null(), "{confirmed}");
    assert_eq!(
        server.count("settlements WHERE order_id", &scene.order_id),
        0
    );
}

#[test]
fn an_approval_does_not_cover_evidence_added_after_it() {
    // 1. The Arezzo evidence needs review (the camera clock is a day off); an operator approves.
    let server = TestServer::start();
    let scene = server.scene("stale", &AREZZO);
    let mut phone = phone_with_evidence(&server, &scene);
    phone.device.submit(&scene.order_id, ms(TAKEN_AT)).unwrap();
    phone.sync();
    assert_eq!(
        server.wait_verified(&scene.enterprise, &scene.order_id)["verdict"],
        "needs_review"
    );
    assert_eq!(review(&scene, "approve").0, 200);

    // 2. Before the enterprise confirms, the worker adds a photo from a mocked location.
    let taken = ms(TAKEN_AT);
    let mocked = flexwork_sync::Fix {
        mock: true,
        ..fix_at_arezzo(taken)
    };
    let photo = fixture_bytes("photos/DSCN0012.jpg");
    phone
        .device
        .record_photo(&scene.order_id, &photo, "image/jpeg", Some(mocked), taken)
        .unwrap();
    phone.sync();

    // 3. The new verdict stands on its own: the approval is gone, and confirming pays nothing.
    let order = server.wait_verified(&scene.enterprise, &scene.order_id);
    assert_eq!(order["verdict"], "rejected");
    assert!(order["operator_decision"].is_null(), "{order}");
    let (_, confirmed) = confirm(&scene);
    assert!(confirmed["settlement"].is_null(), "{confirmed}");
}

#[test]
fn confirmed_evidence_is_frozen_and_no_device_may_rewrite_evidence() {
    // 1. A settled order.
    let server = TestServer::start();
    let scene = server.scene("frozen", &AREZZO);
    let mut phone = phone_with_evidence(&server, &scene);
    phone.device.submit(&scene.order_id, ms(TAKEN_AT)).unwrap();
    phone.sync();
    server.wait_verified(&scene.enterprise, &scene.order_id);
    assert_eq!(review(&scene, "approve").0, 200);
    assert_eq!(confirm(&scene).1["status"], "reconciling");
    assert_eq!(server.fund_and_settle(&scene)["status"], "settled");
    let settled_report = server.wait_verified(&scene.enterprise, &scene.order_id)["report"].clone();

    // 2. A new note from the phone is refused with a reason, and the report stays as paid.
    phone
        .device
        .add_note(&scene.order_id, "one more thing", 1)
        .unwrap();
    let report = phone.sync();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.rejected[0].code, "order_closed");
    let (_, order) = scene.enterprise.get(&format!("/orders/{}", scene.order_id));
    assert_eq!(order["report"], settled_report);

    // 3. On an open order, a hostile device deleting a photo or replacing a list is refused.
    let open = server.scene("rewrite", &AREZZO);
    let mut honest = phone_with_evidence(&server, &open);
    honest.sync();
    let worker = server.device_client(&open.worker_login);
    let mut doc = EvidenceDoc::new(&open.order_id, automerge::ActorId::random()).unwrap();
    assert!(push(&worker, &open.order_id, &mut doc).is_empty());
    assert_eq!(doc.photos().unwrap().len(), 1);

    use automerge::transaction::Transactable;
    let photos = match automerge::ReadDoc::get(doc.automerge(), automerge::ROOT, "photos").unwrap()
    {
        Some((_, id)) => id,
        None => panic!("no photos list"),
    };
    doc.automerge().delete(&photos, 0).unwrap();
    let refused = push(&worker, &open.order_id, &mut doc);
    assert_eq!(refused[0].code, "evidence_rewritten", "{refused:?}");

    // 4. The server still holds the photo for the honest phone.
    let mut second = Phone::new();
    second.login(&server, &open.worker_login);
    second.sync();
    assert_eq!(
        second.device.evidence(&open.order_id).unwrap().photos.len(),
        1
    );
}

//! The main job end to end: evidence recorded offline on a phone, synced, verified,
//! confirmed, reconciled by three parties, settled from escrow — once.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support::{AREZZO, Phone, TestServer, fix_at_arezzo, fixture_bytes, ms, signature};
use serde_json::json;

/// GPS time of DSCN0010.jpg, which a phone standing there would also report.
const TAKEN_AT: &str = "2008-10-23T14:27:07Z";

#[test]
fn offline_evidence_is_verified_confirmed_and_settled_once() {
    // 1. The enterprise publishes a task where the photos were taken and assigns a worker.
    let mut server = TestServer::start();
    let scene = server.scene("walk", &AREZZO);

    // 2. The worker's phone signs in and receives the order.
    let mut phone = Phone::new();
    phone.login(&server, &scene.worker_login);
    let first = phone.sync();
    assert_eq!(first.new_orders, 1);
    assert_eq!(
        phone.device.orders().unwrap()[0].summary.order_id,
        scene.order_id
    );

    // 3. The server goes away; the worker records evidence with no network.
    server.stop();
    let taken = ms(TAKEN_AT);
    let photo = fixture_bytes("photos/DSCN0010.jpg");
    let record = phone
        .device
        .record_photo(
            &scene.order_id,
            &photo,
            "image/jpeg",
            Some(fix_at_arezzo(taken)),
            taken,
        )
        .unwrap();
    phone
        .device
        .add_signature(&scene.order_id, signature(taken + 60_000), taken + 60_000)
        .unwrap();
    phone
        .device
        .add_note(&scene.order_id, "entrance photographed", taken + 61_000)
        .unwrap();
    phone
        .device
        .submit(&scene.order_id, taken + 62_000)
        .unwrap();
    let transport = phone.device.transport().unwrap();
    assert!(phone.device.sync(&transport).is_err(), "no server, no sync");
    let waiting = phone.device.items(&scene.order_id).unwrap();
    assert_eq!(waiting.len(), 4);
    assert!(
        waiting.iter().all(|i| i.state.as_str() != "synced"),
        "{waiting:?}"
    );

    // 4. The server is back; the phone syncs documents and uploads the photo.
    server.restart();
    let report = phone.sync();
    assert_eq!(report.blobs_uploaded, 1);
    assert_eq!(report.bytes_uploaded, photo.len() as u64);

    // 5. The server verifies: the photo is on site and in the window, the signature is there.
    let order = server.wait_verified(&scene.enterprise, &scene.order_id);
    let codes = finding_codes(&order);
    assert!(
        !codes.contains(&"photo_outside_site".to_owned()),
        "{codes:?}"
    );
    assert!(
        !codes.contains(&"signature_missing".to_owned()),
        "{codes:?}"
    );
    assert!(
        !codes.contains(&"photo_undecodable".to_owned()),
        "{codes:?}"
    );
    let photo_report = &order["report"]["photos"][0];
    assert_eq!(photo_report["id"], record.id.as_str());
    assert_eq!(photo_report["exif"]["model"], "COOLPIX P6000");

    // 6. The verdict comes back down to the phone.
    phone.sync();
    let review = phone
        .device
        .evidence(&scene.order_id)
        .unwrap()
        .review
        .expect("review on phone");
    assert_eq!(Some(review.verdict.as_str()), order["verdict"].as_str());

    // 7. An operator approves whatever needs review; the enterprise confirms.
    if order["verdict"] == "needs_review" {
        let body = json!({ "decision": "approve", "reason": "camera clock known to be a day off" });
        let (status, _) = scene
            .operator
            .post(&format!("/orders/{}/review", scene.order_id), body);
        assert_eq!(status, 200);
    } else {
        assert_eq!(order["verdict"], "passed");
    }
    let (status, confirmed) = scene
        .enterprise
        .post(&format!("/orders/{}/confirm", scene.order_id), json!({}));
    assert_eq!(status, 200, "{confirmed}");

    // 8. The confirmation opens the three-party statement: 3,000.00 CNY for the work, no
    // platform fee by default, nothing settled yet.
    assert_eq!(confirmed["status"], "reconciling", "{confirmed}");
    assert!(confirmed["settlement"].is_null(), "{confirmed}");
    let statement = &confirmed["statement"];
    assert_eq!(statement["gross_fen"], 300_000);
    assert_eq!(statement["fee_fen"], 0);
    assert_eq!(statement["version"], 1);
    assert_eq!(statement["awaiting"].as_array().unwrap().len(), 3);

    // 9. Confirming the order again changes nothing: the statement is what is confirmed now.
    let (status, again) = scene
        .enterprise
        .post(&format!("/orders/{}/confirm", scene.order_id), json!({}));
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("statement_open"))
    );

    // 10. The enterprise's deposit arrives; platform, enterprise and worker confirm: one
    // settlement. Paid in 2026 (cumulative method), 3,000 CNY as the worker's first income
    // of the month: taxable 2,400 − 5,000 < 0, so no tax; net 3,000.00 CNY.
    let settled = server.fund_and_settle(&scene);
    assert_eq!(settled["status"], "settled");
    let settlement = &settled["settlement"];
    assert_eq!(settlement["gross_fen"], 300_000);
    assert_eq!(settlement["tax_method"], "cumulative_2025");
    assert_eq!(settlement["tax_fen"], 0);
    assert_eq!(settlement["net_fen"], 300_000);
    assert_eq!(settlement["status"], "pending_payout");
    assert_eq!(
        server.count("settlements WHERE order_id", &scene.order_id),
        1
    );
    let (_, statement) = scene
        .enterprise
        .get(&format!("/orders/{}/statement", scene.order_id));
    assert_eq!(statement["status"], "settled");
    assert!(statement["awaiting"].as_array().unwrap().is_empty());
}

#[test]
fn the_statement_raced_from_every_trigger_is_opened_exactly_once() {
    // 1. A submitted, verified order ...
    let server = TestServer::start();
    let scene = server.scene("race", &AREZZO);
    let mut phone = Phone::for_scene(&server, &scene);
    phone.record_arezzo_evidence(&scene.order_id);
    let taken = ms(TAKEN_AT);
    phone.device.submit(&scene.order_id, taken).unwrap();
    phone.sync();
    server.wait_verified(&scene.enterprise, &scene.order_id);
    let body = json!({ "decision": "approve", "reason": "checked by hand" });
    assert_eq!(
        scene
            .operator
            .post(&format!("/orders/{}/review", scene.order_id), body)
            .0,
        200
    );

    // 2. ... confirmed by many concurrent requests while settlement is triggered directly too.
    let state = server.state().clone();
    let order_id = scene.order_id.clone();
    let direct = server.block_on(async move {
        let tries = (0..32).map(|_| {
            let (state, order_id) = (state.clone(), order_id.clone());
            tokio::spawn(
                async move { flexwork_server::statements::try_open(&state, &order_id).await },
            )
        });
        let mut created = 0;
        for handle in tries.collect::<Vec<_>>() {
            created += usize::from(handle.await.unwrap().unwrap());
        }
        created
    });
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    scene
                        .enterprise
                        .post(&format!("/orders/{}/confirm", scene.order_id), json!({}))
                        .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // 3. Exactly one statement exists, whoever won, and nothing is settled before the three
    // parties confirm it.
    assert_eq!(direct, 0, "no statement before the enterprise confirms");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(
        server.count("statements WHERE order_id", &scene.order_id),
        1
    );
    assert_eq!(
        server.count("settlements WHERE order_id", &scene.order_id),
        0
    );
    let (_, order) = scene.enterprise.get(&format!("/orders/{}", scene.order_id));
    assert_eq!(order["status"], "reconciling");
}

fn finding_codes(order: &serde_json::Value) -> Vec<String> {
    order["report"]["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|x| x["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

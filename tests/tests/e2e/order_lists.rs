//! `GET /orders` a page at a time: every status filters exactly as `GET /orders/{id}` shows
//! it, pages walk by cursor without losing or repeating an order, and evidence summaries
//! come from counts kept with each document (counted once for documents saved before).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeSet;

use crate::support::{AREZZO, Client, TestServer, list_page};
use flexwork_server::auth::Team;
use serde_json::Value;

/// Every status an order can be in, as the API documents them.
const STATUSES: [&str; 15] = flexwork_server::api::orders::STATUSES;

/// Every order of `path` (which has a `?`), following cursors `limit` at a time; every page
/// but the last is full, and none is empty unless the list is.
fn walk(client: &Client, path: &str, limit: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}&limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let (ids, next) = list_page(client, &url);
        match next {
            Some(_) => assert_eq!(ids.len(), limit, "{url}: a page before the last is full"),
            None => assert!(ids.len() <= limit, "{url}"),
        }
        assert!(
            !ids.is_empty() || all.is_empty(),
            "{url}: an empty page after a cursor"
        );
        all.extend(ids);
        match next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

fn sql(server: &TestServer, statement: &'static str, binds: &[&str]) {
    server.block_on(async {
        let mut query = sqlx::query(statement);
        for bind in binds {
            query = query.bind(*bind);
        }
        query.execute(&server.state().db.pool).await.unwrap();
    });
}

/// Records, as the server's own tables would hold them, the facts that put an order in
/// `status`: the decisions on the order row, its statement, settlement and invoices.
fn put_in(server: &TestServer, order_id: &str, status: &str) {
    let submitted = "UPDATE orders SET submitted_at = 1796054400000 WHERE id = $1";
    let verdict = "UPDATE orders SET verdict = $1 WHERE id = $2";
    let statement = "INSERT INTO statements (id, order_id, version, worker_id, enterprise_id, \
         task_id, period_from, period_to, gross_fen, fee_fen, evidence_digest, status, \
         created_at, updated_at) SELECT $1, o.id, 1, o.worker_id, o.enterprise_id, o.task_id, \
         0, 0, 10000, 0, 'digest', $2, 0, 0 FROM orders o WHERE o.id = $3";
    let settlement = "INSERT INTO settlements (id, order_id, worker_id, enterprise_id, \
         gross_fen, tax_fen, net_fen, tax_method, status, created_at, statement_id) \
         SELECT $1, o.id, o.worker_id, o.enterprise_id, 10000, 0, 10000, 'none', $2, 0, $3 \
         FROM orders o WHERE o.id = $4";
    let invoice = "INSERT INTO invoices (id, enterprise_id, kind, total_fen, request_key, \
         status, requested_by, created_at) SELECT $1, o.enterprise_id, 'blue', \
         CAST($2 AS BIGINT), $1, $3, 'finance', 0 FROM orders o WHERE o.id = $4";
    let line = "INSERT INTO invoice_lines (invoice_id, settlement_id, amount_fen) \
         VALUES ($1, $2, CAST($3 AS BIGINT))";
    let (statement_id, settlement_id) = (format!("st-{order_id}"), format!("se-{order_id}"));
    let settle = |settlement_status: &str| {
        sql(server, statement, &[&statement_id, "settled", order_id]);
        let binds = [&settlement_id, settlement_status, &statement_id, order_id];
        sql(server, settlement, &binds);
    };
    let bill = |fen: &str, invoice_status: &str| {
        let invoice_id = format!("in-{order_id}");
        sql(
            server,
            invoice,
            &[&invoice_id, fen, invoice_status, order_id],
        );
        sql(server, line, &[&invoice_id, &settlement_id, fen]);
    };
    match status {
        "assigned" => {}
        "cancelled" => sql(
            server,
            "UPDATE orders SET cancelled_at = 1 WHERE id = $1",
            &[order_id],
        ),
        "submitted" => sql(server, submitted, &[order_id]),
        "verified" | "needs_review" | "rejected" => {
            sql(server, submitted, &[order_id]);
            let word = if status == "verified" {
                "passed"
            } else {
                status
            };
            sql(server, verdict, &[word, order_id]);
        }
        "returned" => {
            sql(server, submitted, &[order_id]);
            sql(server, verdict, &["needs_review", order_id]);
            let decide = "UPDATE orders SET operator_decision = 'has_issues' WHERE id = $1";
            sql(server, decide, &[order_id]);
        }
        "confirmed" | "disputed" => {
            sql(server, submitted, &[order_id]);
            sql(server, verdict, &["passed", order_id]);
            let confirm = "UPDATE orders SET confirmation = $1 WHERE id = $2";
            sql(server, confirm, &[status, order_id]);
        }
        "reconciling" | "awaiting_funds" | "void" | "statement_disputed" => {
            let word = match status {
                "reconciling" => "open",
                "statement_disputed" => "disputed",
                other => other,
            };
            sql(server, statement, &[&statement_id, word, order_id]);
        }
        "settled" => settle("pending_payout"),
        "paid" => settle("paid"),
        "paid_partly_billed" => {
            settle("paid");
            bill("4000", "issued");
        }
        "paid_invoice_requested" => {
            settle("paid");
            bill("10000", "requested");
        }
        "invoiced" => {
            settle("paid");
            bill("10000", "issued");
        }
        other => panic!("no recipe for {other}"),
    }
}

#[test]
fn every_status_filters_as_the_order_shows_it_and_pages_walk_by_cursor() {
    let server = TestServer::start();
    // One order settled the whole way, with real evidence; the others' facts are written as
    // the server's tables hold them, including orders whose status is derived beyond SQL
    // (paid but partly billed, or billed by an invoice not yet issued: still `paid`).
    let real = server.settled_scene("lists-real");
    let recipes = [
        "assigned",
        "submitted",
        "verified",
        "needs_review",
        "returned",
        "rejected",
        "confirmed",
        "disputed",
        "reconciling",
        "awaiting_funds",
        "statement_disputed",
        "void",
        "settled",
        "paid",
        "paid_partly_billed",
        "paid_invoice_requested",
        "invoiced",
        "cancelled",
    ];
    for (n, recipe) in recipes.iter().enumerate() {
        let scene = server.scene(&format!("lists-{n}"), &AREZZO);
        put_in(&server, &scene.order_id, recipe);
    }
    server.add_operator("lists-reviewer", &[Team::Reviewer]);
    let reviewer = server.client("lists-reviewer");

    // The order of the whole list, as one page.
    let (everything, cursor) = list_page(&reviewer, "/orders?limit=500");
    assert_eq!(everything.len(), recipes.len() + 1);
    assert_eq!(cursor, None, "one page holds them all: no cursor");
    let (first, cursor) = list_page(&reviewer, "/orders");
    assert_eq!(first, everything, "no limit: the first page of 100");
    assert_eq!(cursor, None);

    // What each order shows on its own.
    let shown: Vec<(String, String)> = everything
        .iter()
        .map(|id| {
            let (status, order) = reviewer.get(&format!("/orders/{id}"));
            assert_eq!(status, 200, "{order}");
            (id.clone(), order["status"].as_str().unwrap().to_owned())
        })
        .collect();
    let statuses: BTreeSet<&str> = shown.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        statuses,
        STATUSES.into_iter().collect(),
        "every status is present"
    );

    for status in STATUSES {
        let expected: Vec<String> = shown
            .iter()
            .filter(|(_, s)| s == status)
            .map(|(id, _)| id.clone())
            .collect();
        let (listed, _) = list_page(&reviewer, &format!("/orders?status={status}"));
        assert_eq!(listed, expected, "status {status}");
        // A page of one at a time: full pages, the same orders, the last without a cursor.
        let walked = walk(&reviewer, &format!("/orders?status={status}"), 1);
        assert_eq!(walked, expected, "status {status}, one a page");
    }
    let paid = shown.iter().filter(|(_, s)| s == "paid").count();
    assert_eq!(
        paid, 3,
        "partly billed or billed by a requested invoice is still paid"
    );

    // Pages of four: every order once, in the same order.
    assert_eq!(walk(&reviewer, "/orders?", 4), everything);
    assert_eq!(walk(&reviewer, "/orders?", 7), everything);
    let (ids, cursor) = list_page(&reviewer, &format!("/orders?limit={}", everything.len()));
    assert_eq!(
        (ids.len(), cursor),
        (everything.len(), None),
        "exactly full: last page"
    );

    // The enterprise pages through its own orders only.
    let (own, cursor) = list_page(&real.enterprise, "/orders?limit=1");
    assert_eq!((own, cursor), (vec![real.order_id.clone()], None));

    // Bad paging is refused and names its field.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=", "cursor"),
    ] {
        let (status, refused) = reviewer.get(&format!("/orders?{query}"));
        assert_eq!(status, 400, "{query}: {refused}");
        assert_eq!(refused["code"], "invalid_query", "{query}");
        assert_eq!(refused["field"], field, "{query}");
    }
}

#[test]
fn evidence_summaries_come_from_counts_kept_with_the_document() {
    let server = TestServer::start();
    let real = server.settled_scene("summary-real");
    let bare = server.scene("summary-bare", &AREZZO);
    server.add_operator("summary-reviewer", &[Team::Reviewer]);
    let reviewer = server.client("summary-reviewer");

    let summaries = || -> Vec<(String, Value)> {
        let (status, list) = reviewer.get("/orders");
        assert_eq!(status, 200, "{list}");
        list.as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["id"].as_str().unwrap().to_owned(),
                    o["evidence_summary"].clone(),
                )
            })
            .collect()
    };
    let (_, page) = reviewer.get(&format!("/orders/{}/evidence", real.order_id));
    let first = summaries();
    let of =
        |list: &[(String, Value)], id: &str| list.iter().find(|(i, _)| i == id).unwrap().1.clone();
    let summary = of(&first, &real.order_id);
    assert_eq!(summary["photos"], page["photos"].as_array().unwrap().len());
    assert_eq!(
        summary["signatures"],
        page["signatures"].as_array().unwrap().len()
    );
    assert_eq!(
        summary["track_points"],
        page["track"].as_array().unwrap().len()
    );
    assert_eq!(summary["notes"], page["notes"].as_array().unwrap().len());
    assert_eq!(
        summary["findings"],
        page["findings"].as_array().unwrap().len()
    );
    assert!(summary["photos"].as_u64().unwrap() >= 1, "{summary}");
    let nothing = of(&first, &bare.order_id);
    assert_eq!(
        (
            &nothing["photos"],
            &nothing["signatures"],
            &nothing["findings"]
        ),
        (&Value::from(0), &Value::from(0), &Value::from(0)),
        "no evidence yet: {nothing}"
    );

    // A document saved before counts were kept (as after migration 0019) is counted once
    // from the document, and its counts stored.
    let stored = |server: &TestServer| -> Option<i64> {
        server.block_on(async {
            sqlx::query_scalar("SELECT photos FROM evidence_docs WHERE order_id = $1")
                .bind(&real.order_id)
                .fetch_one(&server.state().db.pool)
                .await
                .unwrap()
        })
    };
    assert_eq!(stored(&server), summary["photos"].as_i64());
    let forget = "UPDATE evidence_docs SET photos = NULL, track_points = NULL, \
                  signatures = NULL, notes = NULL WHERE order_id = $1";
    sql(&server, forget, &[&real.order_id]);
    assert_eq!(stored(&server), None);
    assert_eq!(of(&summaries(), &real.order_id), summary);
    assert_eq!(
        stored(&server),
        summary["photos"].as_i64(),
        "counted once and stored"
    );
}

//! The OpenAPI document the server serves: a well-formed OpenAPI 3.1 document whose every
//! operation says how to call it, and which lists no route the server lacks.
//!
//! The other direction — every route the server serves is in the document — holds by
//! construction: `api::routes` registers each handler through utoipa-axum's `OpenApiRouter`
//! with `routes!`, which adds the handler's operation to the document as it adds the route to
//! the router, and nothing is routed around it (only the `no_route` fallback).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeSet;

use crate::support::TestServer;
use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The operations anyone may call without a token.
const PUBLIC: [&str; 9] = [
    "health",
    "openapi_document",
    "sign_in",
    "privacy_notice",
    "worker_declaration",
    "apply_as_worker",
    "apply_as_enterprise",
    // Authenticated by the provider's HMAC signature, not a token.
    "realname_callback",
    "payment_callback",
];

fn fetch_document(server: &TestServer) -> Value {
    let response = reqwest::blocking::get(format!("{}/api/v1/openapi.json", server.url())).unwrap();
    assert_eq!(response.status(), 200, "the document needs no token");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    serde_json::from_str(&response.text().unwrap()).expect("the document is JSON")
}

/// Every operation of the document: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let item = item.as_object().unwrap();
        let mut found = 0;
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                out.push((path.clone(), method.to_owned(), operation.clone()));
                found += 1;
            }
        }
        assert!(found > 0, "{path} has no operation");
    }
    out
}

fn operation<'a>(ops: &'a [(String, String, Value)], id: &str) -> &'a Value {
    let found = ops.iter().find(|(_, _, op)| op["operationId"] == id);
    &found.unwrap_or_else(|| panic!("no operation {id}")).2
}

/// Every `$ref` in `value`.
fn references(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => {
                        out.insert(target.clone());
                    }
                    _ => references(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_every_operation_says_how_to_call_it() {
    let server = TestServer::start();
    let doc = fetch_document(&server);

    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "flexwork API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let description = doc["info"]["description"].as_str().unwrap();
    assert!(
        description.contains("Authorization: Bearer"),
        "{description}"
    );
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");

    let ops = operations(&doc);
    assert!(ops.len() >= 40, "only {} operations", ops.len());
    let mut ids = BTreeSet::new();
    let mut public = BTreeSet::new();
    for (path, method, op) in &ops {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no id"));
        assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        assert!(
            !op["tags"].as_array().unwrap().is_empty(),
            "{id} has no tag"
        );
        assert!(
            op["description"]
                .as_str()
                .unwrap()
                .contains("Who may call:"),
            "{id} does not say who may call it"
        );
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{id}: no success response"
        );
        for (status, response) in responses {
            assert!(
                response["description"].is_string(),
                "{id} {status}: no description"
            );
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/ErrorBody", "{id} {status}");
            }
        }
        match op.get("security") {
            None => {
                public.insert(id.to_owned());
            }
            Some(security) => {
                assert_eq!(security, &serde_json::json!([{ "bearer": [] }]), "{id}");
                assert!(
                    responses.contains_key("401"),
                    "{id}: no 401 without a token"
                );
            }
        }
    }
    let expected: BTreeSet<String> = PUBLIC.iter().map(|s| s.to_string()).collect();
    assert_eq!(public, expected, "the operations callable without a token");

    // Every reference resolves within the document.
    let mut targets = BTreeSet::new();
    references(&doc, &mut targets);
    assert!(targets.len() > 20, "{targets:?}");
    for target in targets {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{target}"));
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }

    // The bodies that are not JSON say what they are.
    let sync = operation(&ops, "sync");
    assert!(
        sync["requestBody"]["content"]["application/cbor"].is_object(),
        "{sync}"
    );
    assert!(
        sync["responses"]["200"]["content"]["application/cbor"].is_object(),
        "{sync}"
    );
    let chunk = operation(&ops, "upload_media_chunk");
    let chunk_content = chunk["requestBody"]["content"].as_object().unwrap();
    assert_eq!(
        chunk_content.keys().collect::<Vec<_>>(),
        ["application/octet-stream"]
    );
    let query: BTreeSet<_> = chunk["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| (p["name"].as_str().unwrap(), p["required"] == true))
        .collect();
    assert_eq!(query, BTreeSet::from([("offset", true), ("size", true)]));
    let download = operation(&ops, "download_media");
    let bytes = download["responses"]["200"]["content"].as_object().unwrap();
    assert!(
        bytes.contains_key("image/jpeg") && bytes.contains_key("video/mp4"),
        "{download}"
    );
    assert!(!bytes.contains_key("application/json"), "{download}");
}

#[test]
fn the_served_document_is_the_committed_one() {
    let server = TestServer::start();
    let served = fetch_document(&server);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/openapi.json");
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(
        served == committed,
        "server/openapi.json is out of date: run `cargo run -q -p flexwork-server --bin \
         flexwork -- openapi > server/openapi.json`"
    );
}

/// The document lists no route the server lacks: every documented operation, called without
/// a token or a body, reaches a handler — not the `no_route` fallback, not `405` — and one
/// that needs a token refuses with `401 unauthorized`.
#[test]
fn every_documented_operation_reaches_a_route() {
    let server = TestServer::start();
    let doc = fetch_document(&server);
    let http = reqwest::blocking::Client::new();

    let ops = operations(&doc);
    for (path, method, op) in &ops {
        let id = op["operationId"].as_str().unwrap();
        let concrete = fill_parameters(path);
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = http
            .request(method.clone(), format!("{}{concrete}", server.url()))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().unwrap();
        let code = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|b| b["code"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let what = format!("{id}: {method} {concrete} answered {status} {body}");

        assert_ne!(status, 405, "{what}");
        assert!(!(status == 404 && code == "no_route"), "{what}");
        if op.get("security").is_some() {
            assert_eq!((status, code.as_str()), (401, "unauthorized"), "{what}");
        } else {
            assert!(![401, 403].contains(&status), "{what}");
        }
    }
}

/// A documented path with a plausible value for each `{parameter}`.
fn fill_parameters(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(match &rest[start + 1..end] {
            "hash" => "0000000000000000000000000000000000000000000000000000000000000000",
            "kind" => "business_licence",
            _ => "no-such-id",
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

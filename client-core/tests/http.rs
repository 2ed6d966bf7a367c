//! `HttpTransport` and `Device::login` against a scripted HTTP server on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use flexwork_client_core::{Device, DeviceKey, HttpTransport, Transport, TransportError};
use flexwork_sync::device_auth;
use flexwork_sync::protocol::{self, decode_request};
use flexwork_sync::{ContentHash, PROTOCOL_VERSION, SyncRequest, SyncResponse};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};

/// What the scripted server saw of one request.
#[derive(Debug)]
struct Seen {
    request_line: String,
    headers: Vec<String>,
    body: Vec<u8>,
}

/// A canned answer: status, content type, body.
type Answer = (u16, &'static str, Vec<u8>);

/// Serves one answer per connection, in order, and reports each request it read.
fn scripted_server(answers: Vec<Answer>) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for answer in answers {
            let (stream, _) = listener.accept().unwrap();
            tx.send(serve(stream, answer)).unwrap();
        }
    });
    (url, rx)
}

fn serve(mut stream: TcpStream, (status, content_type, body): Answer) -> Seen {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        // Names in lower case, values as sent (signatures are case-sensitive).
        let (name, value) = line.trim().split_once(':').unwrap();
        headers.push(format!("{}: {}", name.to_ascii_lowercase(), value.trim()));
    }
    let length = headers
        .iter()
        .find_map(|h| h.strip_prefix("content-length: "))
        .map_or(0, |n| n.parse().unwrap());
    let mut request_body = vec![0; length];
    reader.read_exact(&mut request_body).unwrap();

    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    Seen {
        request_line: request_line.trim().to_owned(),
        headers,
        body: request_body,
    }
}

fn json(status: u16, body: &str) -> Answer {
    (status, "application/json", body.as_bytes().to_vec())
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    seen.headers.iter().find_map(|h| h.strip_prefix(&prefix))
}

#[test]
fn login_registers_a_device_key_and_every_later_call_is_signed_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let login = r#"{"token":"tok-secret-123","account_id":"acc-9","role":"worker"}"#;
    let registered = r#"{"device_id":"dev-7","name":"phone","registered_at":"2025-01-01T00:00:00Z",
        "session_revoked":true}"#;
    let response = SyncResponse {
        protocol: PROTOCOL_VERSION,
        server_time_ms: 1,
        orders: vec![],
        docs: vec![],
        rejected: vec![],
        wanted_media: vec![],
    };
    let answers = vec![
        json(200, login),
        json(200, registered),
        (200, "application/cbor", protocol::encode(&response)),
    ];
    let (url, seen) = scripted_server(answers);
    let mut device = Device::open(dir.path()).unwrap();

    // 1. Sign in with the password, then register a new key with that session.
    let session = device.login(&format!("{url}/"), "worker-1", "pw").unwrap();
    let login_request = seen.recv().unwrap();
    let register_request = seen.recv().unwrap();

    assert_eq!(login_request.request_line, "POST /api/v1/sessions HTTP/1.1");
    let sent: serde_json::Value = serde_json::from_slice(&login_request.body).unwrap();
    assert_eq!(sent["login"], "worker-1");
    assert_eq!(
        register_request.request_line,
        "POST /api/v1/devices HTTP/1.1"
    );
    assert_eq!(
        header(&register_request, "authorization"),
        Some("Bearer tok-secret-123")
    );
    let registration: serde_json::Value = serde_json::from_slice(&register_request.body).unwrap();
    let public_key = registration["public_key"].as_str().unwrap();
    let key = VerifyingKey::from_sec1_bytes(&BASE64.decode(public_key).unwrap()).unwrap();
    let proof = BASE64
        .decode(registration["proof"].as_str().unwrap())
        .unwrap();
    let message = device_auth::registration_message("acc-9", public_key);
    let proof = Signature::from_slice(&proof).unwrap();
    key.verify(message.as_bytes(), &proof).unwrap();
    assert_eq!(
        (
            session.account_id.as_str(),
            session.role.as_str(),
            session.registered_device_id.as_str()
        ),
        ("acc-9", "worker", "dev-7")
    );

    // 2. The stored key signs a sync over CBOR; no token is sent or kept.
    let transport = device.transport().unwrap();
    assert!(!format!("{transport:?} {device:?}").contains("tok-secret-123"));
    let report = device.sync(&transport).unwrap();
    let sync_request = seen.recv().unwrap();

    assert!(report.converged);
    assert_eq!(sync_request.request_line, "POST /api/v1/sync HTTP/1.1");
    assert_eq!(header(&sync_request, "authorization"), None);
    assert_eq!(
        header(&sync_request, "content-type"),
        Some("application/cbor")
    );
    assert_eq!(header(&sync_request, "x-flexwork-device"), Some("dev-7"));
    let timestamp: i64 = header(&sync_request, "x-flexwork-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let nonce = header(&sync_request, "x-flexwork-nonce").unwrap();
    let text = device_auth::canonical_request(&device_auth::RequestToSign {
        method: "POST",
        path: "/api/v1/sync",
        query: "",
        content_type: "application/cbor",
        device_id: "dev-7",
        timestamp_ms: timestamp,
        nonce,
        body: &sync_request.body,
    });
    let signature = header(&sync_request, "x-flexwork-signature").unwrap();
    let signature = Signature::from_slice(&BASE64.decode(signature).unwrap()).unwrap();
    key.verify(text.as_bytes(), &signature).unwrap();
    let decoded: SyncRequest = decode_request(&sync_request.body).unwrap();
    assert_eq!(decoded.device_id, device.device_id());
    let store = std::fs::read(dir.path().join("device.sqlite")).unwrap();
    assert!(!store.windows(14).any(|w| w == b"tok-secret-123"));
}

#[test]
fn a_clock_skew_refusal_is_retried_once_with_the_server_clock() {
    let refused = r#"{"code":"device_clock_skew","message":"clock is off"}"#;
    let status = format!(
        r#"{{"hash":"{}","state":"absent","received":0}}"#,
        ContentHash::of(b"x")
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server_time = 1_000_000_000_000_i64;
    let (tx, seen) = mpsc::channel();
    let status_body = status.clone();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut first = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            first.push(line.trim().to_owned());
        }
        let head = format!(
            "HTTP/1.1 401 X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             x-flexwork-server-time: {server_time}\r\nconnection: close\r\n\r\n",
            refused.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(refused.as_bytes()).unwrap();
        drop(stream);
        let (stream, _) = listener.accept().unwrap();
        tx.send(serve(stream, json(200, &status_body))).unwrap();
    });
    let transport = HttpTransport::new(&url, "dev-1", DeviceKey::generate()).unwrap();

    let answer = transport.media_status(&ContentHash::of(b"x")).unwrap();
    let retried = seen.recv().unwrap();

    assert_eq!(answer.received, 0);
    let timestamp: i64 = header(&retried, "x-flexwork-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert!((timestamp - server_time).abs() < 60_000, "{timestamp}");
}

#[test]
fn error_bodies_become_server_errors_with_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let refused = r#"{"code":"invalid_credentials","message":"wrong login or password"}"#;
    let (url, _seen) = scripted_server(vec![
        json(401, refused),
        (502, "text/html", b"<h1>bad gateway".to_vec()),
    ]);
    let mut device = Device::open(dir.path()).unwrap();

    let err = device.login(&url, "worker-1", "nope").unwrap_err();
    let transport = HttpTransport::new(&url, "d1", DeviceKey::generate()).unwrap();
    let gateway = transport.media_status(&ContentHash::of(b"x")).unwrap_err();

    assert_eq!(err.code(), "server_refused");
    assert_eq!(
        err.to_string(),
        "server refused the request (401 invalid_credentials): wrong login or password"
    );
    assert!(device.session().unwrap().is_none());
    let TransportError::Server { status, code, .. } = &gateway else {
        panic!("not a server error: {gateway:?}");
    };
    assert_eq!((*status, code.as_str()), (502, "http_502"));
    assert!(gateway.is_outage());
}

#[test]
fn a_chunk_is_put_at_its_offset_with_its_media_type() {
    let hash = ContentHash::of(b"0123456789");
    let status = format!(r#"{{"hash":"{hash}","state":"partial","received":8}}"#);
    let (url, seen) = scripted_server(vec![json(200, &status)]);
    let transport = HttpTransport::new(&url, "d1", DeviceKey::generate()).unwrap();

    let answer = transport
        .upload_chunk(&hash, 4, 10, "image/jpeg", b"4567")
        .unwrap();
    let put = seen.recv().unwrap();

    assert_eq!(answer.received, 8);
    assert_eq!(
        put.request_line,
        format!("PUT /api/v1/media/{hash}?offset=4&size=10 HTTP/1.1")
    );
    assert!(put.headers.contains(&"content-type: image/jpeg".into()));
    assert_eq!(put.body, b"4567");
}

#[test]
fn a_closed_port_is_a_network_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let transport = HttpTransport::new(
        &format!("http://127.0.0.1:{port}"),
        "d1",
        DeviceKey::generate(),
    )
    .unwrap();

    let err = transport.media_status(&ContentHash::of(b"x")).unwrap_err();

    assert_eq!(err.code(), "network");
    assert!(!err.is_permanent());
}

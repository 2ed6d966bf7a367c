//! `HttpTransport` and `Device::login` against a scripted HTTP server on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

use flexwork_client_core::{Device, HttpTransport, Transport, TransportError};
use flexwork_sync::protocol::{self, decode_request};
use flexwork_sync::{ContentHash, PROTOCOL_VERSION, SyncRequest, SyncResponse};

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
        headers.push(line.trim().to_ascii_lowercase());
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

#[test]
fn login_stores_a_session_whose_token_is_sent_as_bearer_but_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let login = r#"{"token":"tok-secret-123","account_id":"acc-9","role":"worker"}"#;
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
        (200, "application/cbor", protocol::encode(&response)),
    ];
    let (url, seen) = scripted_server(answers);
    let mut device = Device::open(dir.path()).unwrap();

    // 1. Log in.
    let session = device.login(&format!("{url}/"), "worker-1", "pw").unwrap();
    let login_request = seen.recv().unwrap();

    assert_eq!(login_request.request_line, "POST /api/v1/sessions HTTP/1.1");
    let sent: serde_json::Value = serde_json::from_slice(&login_request.body).unwrap();
    assert_eq!(sent["login"], "worker-1");
    assert_eq!(
        (session.account_id.as_str(), session.role.as_str()),
        ("acc-9", "worker")
    );

    // 2. The stored session drives a sync over CBOR with the bearer token.
    let transport = device.transport().unwrap();
    assert!(!format!("{transport:?} {device:?}").contains("tok-secret-123"));
    let report = device.sync(&transport).unwrap();
    let sync_request = seen.recv().unwrap();

    assert!(report.converged);
    assert_eq!(sync_request.request_line, "POST /api/v1/sync HTTP/1.1");
    assert!(
        sync_request
            .headers
            .contains(&"authorization: bearer tok-secret-123".into())
    );
    assert!(
        sync_request
            .headers
            .contains(&"content-type: application/cbor".into())
    );
    let decoded: SyncRequest = decode_request(&sync_request.body).unwrap();
    assert_eq!(decoded.device_id, device.device_id());
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
    let transport = HttpTransport::new(&url, "t").unwrap();
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
    let transport = HttpTransport::new(&url, "t").unwrap();

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
    let transport = HttpTransport::new(&format!("http://127.0.0.1:{port}"), "t").unwrap();

    let err = transport.media_status(&ContentHash::of(b"x")).unwrap_err();

    assert_eq!(err.code(), "network");
    assert!(!err.is_permanent());
}

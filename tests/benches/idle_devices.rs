//! idle_devices: the server's memory for each device that holds an idle connection.
//!
//! Measured: the resident memory (VmRSS) of the real `flexwork serve` process before and
//! after 1,000 keep-alive HTTP/1.1 connections each completed one `GET /healthz` and then
//! went quiet, as phones between syncs do. The figure is (after − before) / 1,000.
//!
//! Reference: the same server's own resident memory with no device connected, after a
//! warm-up, so that what a running server costs anyway is not charged to the devices.
//! Target: under 64 KiB per idle device.
//!
//! Needs the server binary: `cargo build --release -p flexwork-server --bin flexwork` (a
//! debug build is used if no release build exists). Needs about 2,100 open files; the bench
//! prints the limit it found and warns below that.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Row, print_header, print_table};

/// Connected idle devices.
const DEVICES: usize = 1_000;
/// Connections opened and closed before the baseline is read.
const WARM_UP: usize = 50;
/// Time for the server to settle before each reading.
const SETTLE: Duration = Duration::from_secs(2);
/// Target: KiB of server memory per idle device.
const TARGET_KIB: f64 = 64.0;

fn main() {
    print_header("idle_devices");
    check_open_files();
    let Some(binary) = server_binary() else {
        println!("no flexwork binary: run cargo build --release -p flexwork-server --bin flexwork");
        std::process::exit(2);
    };
    let binary = binary.canonicalize().unwrap_or(binary);
    println!("server binary: {}", binary.display());

    let data = tempfile::tempdir().expect("temporary folder");
    let server = Server::start(&binary, data.path());
    server.wait_healthy();
    measure(&server);
}

/// Starts the connections and prints the table; the server is killed when `server` drops.
fn measure(server: &Server) {
    for _ in 0..WARM_UP {
        drop(Device::connect(server.addr));
    }
    std::thread::sleep(SETTLE);
    let before = server.rss_kib();

    let started = Instant::now();
    let mut devices: Vec<Device> = (0..DEVICES).map(|_| Device::connect(server.addr)).collect();
    println!(
        "{DEVICES} connections made in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    std::thread::sleep(SETTLE);
    let after = server.rss_kib();

    let alive = devices
        .iter_mut()
        .map(Device::still_served)
        .filter(|ok| *ok)
        .count();
    print_results(before, after, alive);
    drop(devices);
}

fn print_results(before: u64, after: u64, alive: usize) {
    let per_device = after.saturating_sub(before) as f64 / DEVICES as f64;
    println!("VmRSS before: {before} KiB, after: {after} KiB");
    println!("connections still served after the reading: {alive}/{DEVICES}\n");
    print_table(&[
        Row::info(
            "server VmRSS",
            format!("{after} KiB with {DEVICES} idle devices"),
            format!("{before} KiB with none"),
        ),
        Row {
            figure: "VmRSS per idle device".to_owned(),
            value: format!("{per_device:.1} KiB"),
            reference: format!("{before} KiB server baseline"),
            ratio: format!("{:.3}", after as f64 / before as f64),
            target: format!("< {TARGET_KIB} KiB"),
            met: Some(per_device < TARGET_KIB),
        },
    ]);
}

/// Prints the open-files limit of this process (the server inherits it).
fn check_open_files() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files"));
    let soft: Option<u64> = line
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok());
    println!(
        "open files (soft limit): {}",
        soft.map_or("unknown".into(), |s| s.to_string())
    );
    if soft.is_some_and(|s| s < 2 * DEVICES as u64 + 100) {
        println!("warning: too few open files for {DEVICES} devices; run under ulimit -n 4096");
    }
}

/// `target/release/flexwork`, else `target/debug/flexwork`.
fn server_binary() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("flexwork"))
        .find(|path| path.is_file())
}

/// The `flexwork serve` subprocess, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(binary: &Path, data_dir: &Path) -> Self {
        let addr = free_port();
        let log = std::fs::File::create(data_dir.join("server.log")).expect("log file");
        let child = Command::new(binary)
            .arg("serve")
            .env("FLEXWORK_DATA_DIR", data_dir)
            .env("FLEXWORK_LISTEN", addr.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting flexwork serve");
        Self { child, addr }
    }

    /// Polls `GET /healthz` until it answers 200, for up to 60 s.
    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(stream) = TcpStream::connect(self.addr) {
                let mut device = Device::on(stream);
                if device.request_health().is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not answer /healthz within 60 s");
    }

    /// VmRSS of the server process, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("reading the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address")
}

/// One phone's keep-alive connection.
struct Device {
    reader: BufReader<TcpStream>,
}

impl Device {
    fn on(stream: TcpStream) -> Self {
        let timeout = Some(Duration::from_secs(10));
        stream.set_read_timeout(timeout).expect("read timeout");
        Self {
            reader: BufReader::new(stream),
        }
    }

    /// Connects and completes one request; the connection then stays open, idle.
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connecting to the server");
        let mut device = Self::on(stream);
        device.request_health().expect("GET /healthz");
        device
    }

    /// Whether the server still answers on this connection.
    fn still_served(&mut self) -> bool {
        self.request_health().is_ok()
    }

    /// `GET /healthz` with keep-alive; reads the whole answer, fails unless it is a 200.
    fn request_health(&mut self) -> std::io::Result<()> {
        let request = "GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: keep-alive\r\n\r\n";
        self.reader.get_mut().write_all(request.as_bytes())?;

        let mut status = String::new();
        self.reader.read_line(&mut status)?;
        let length = self.read_headers()?;
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        if status.split_whitespace().nth(1) == Some("200") {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("answered {}", status.trim())))
        }
    }

    /// Reads header lines up to the blank one; returns the content length.
    fn read_headers(&mut self) -> std::io::Result<usize> {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end();
            if line.is_empty() {
                return Ok(length);
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
}

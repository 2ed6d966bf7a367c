//! `flexwork-device`: a worker's phone on the command line.
//!
//! It drives [`flexwork_mobile::Phone`], the very interface the Android and iOS apps call
//! through their bindings, so a person can play the worker against a real server over HTTP:
//! log in, fetch tasks, record photos, tracks, signatures and notes, submit, sync, and read
//! the findings. Everything except `login`,
//! `logout`, `sync` and the device commands works with the server stopped.
//!
//! A photo file has no phone location fix. Without `--lat/--lon`, the position and time in
//! the photo's own EXIF GPS tags stand in for the fix, and the command says so; a photo
//! without them is recorded with no fix.
//!
//! `apply` plays a person applying to work on the platform: the declaration is fetched once
//! online, signed and queued offline, and sent when the server answers.
//!
//! Output is for people by default and JSON with `--json`. Keys, tokens, passwords, note texts
//! and positions read from photos are never printed; an applicant's personal fields only
//! masked. Failures exit non-zero with one line.

mod apply;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use flexwork_mobile::photo;
use flexwork_mobile::{
    EvidenceItem, LocationFix, Order, Phone, Statement, Stroke, StrokePoint, SyncSummary,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Accuracy given to a fix from EXIF tags that state none, metres.
const EXIF_DEFAULT_ACCURACY_M: f64 = 30.0;

#[derive(Debug, Parser)]
#[command(
    name = "flexwork-device",
    version,
    about = "Play a flexwork worker's phone"
)]
struct Cli {
    /// Folder of the device store.
    #[arg(
        long,
        global = true,
        env = "FLEXWORK_DEVICE_STORE",
        default_value = "./flexwork-device"
    )]
    store: PathBuf,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign in once with the password and register this phone's new device key; every
    /// later call is signed with the key, and neither password nor token is kept.
    Login {
        /// Base URL, like http://127.0.0.1:8080.
        #[arg(long)]
        server: String,
        #[arg(long)]
        login: String,
        #[arg(long, env = "FLEXWORK_PASSWORD", hide_env_values = true)]
        password: String,
        /// The name this phone gets in the worker's device list.
        #[arg(long)]
        name: Option<String>,
    },
    /// Sign out: the server revokes this phone's registration and the key is deleted.
    Logout,
    /// List the account's registered phones.
    Devices,
    /// Revoke one of the account's phones (a lost one, say).
    RevokeDevice { device_id: String },
    /// List the tasks (orders) on the device.
    Tasks,
    /// Record a photo from a file.
    Photo(PhotoArgs),
    /// Import a GPX trajectory.
    Track { order: String, file: PathBuf },
    /// Record a signature from a JSON file of strokes.
    Sign {
        order: String,
        /// JSON array of strokes, each an array of {x, y, t_ms, pressure}.
        #[arg(long)]
        strokes: PathBuf,
        /// Signing time, RFC 3339 (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Write a note.
    Note {
        order: String,
        text: String,
        #[arg(long)]
        at: Option<String>,
    },
    /// Declare the order done.
    Submit {
        order: String,
        #[arg(long)]
        at: Option<String>,
    },
    /// Show each recorded item with its upload state.
    Status { order: Option<String> },
    /// Show the server's verdict and findings for an order.
    Findings { order: String },
    /// Show the order's three-party statement: the fee, who confirmed, and once settled the
    /// tax withheld and the net pay.
    Statement { order: String },
    /// Confirm the order's statement as the worker; with the platform's and the enterprise's
    /// confirmations it settles the pay.
    ConfirmStatement { order: String },
    /// Apply to work on the platform: fetch the terms, sign, send (personal data from a file
    /// or the environment, never from the command line).
    #[command(subcommand)]
    Apply(apply::ApplyCommand),
    /// Sync with the server: documents, then photo uploads.
    Sync {
        /// Upload chunk size in KiB.
        #[arg(long)]
        chunk_kib: Option<u64>,
    },
}

#[derive(Debug, Args)]
struct PhotoArgs {
    order: String,
    file: PathBuf,
    /// Latitude of the simulated phone fix (WGS-84).
    #[arg(long, requires = "lon", allow_negative_numbers = true)]
    lat: Option<f64>,
    /// Longitude of the simulated phone fix (WGS-84).
    #[arg(long, requires = "lat", allow_negative_numbers = true)]
    lon: Option<f64>,
    /// Accuracy radius of the fix, metres.
    #[arg(long)]
    accuracy: Option<f64>,
    /// Capture time, RFC 3339 (default: the EXIF time when the EXIF fix is used, else now).
    #[arg(long)]
    at: Option<String>,
    /// Mark the fix as coming from a mock location provider.
    #[arg(long)]
    mock: bool,
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEXWORK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> Result<()> {
    let store = cli.store.display().to_string();
    let device = Phone::open(store.clone())
        .with_context(|| format!("cannot open the device store {store}"))?;
    let device = device.as_ref();
    let out = Output { json: cli.json };
    match cli.command {
        Command::Login {
            server,
            login,
            password,
            name,
        } => cmd_login(device, &out, server, login, password, name),
        Command::Logout => {
            device.logout_blocking().context("sign-out failed")?;
            out.emit(json!({ "signed_out": true }), || vec!["signed out".into()])
        }
        Command::Devices => cmd_devices(device, &out),
        Command::RevokeDevice { device_id } => {
            device
                .revoke_device_blocking(device_id.clone())
                .context("revoking failed")?;
            let text = format!("device {device_id} revoked");
            out.emit(json!({ "revoked": device_id }), || vec![text])
        }
        Command::Tasks => cmd_tasks(device, &out),
        Command::Photo(args) => cmd_photo(device, &out, &args),
        Command::Track { order, file } => cmd_track(device, &out, order, &file),
        Command::Sign { order, strokes, at } => cmd_sign(device, &out, order, &strokes, at),
        Command::Note { order, text, at } => cmd_note(device, &out, order, text, at),
        Command::Submit { order, at } => cmd_submit(device, &out, order, at),
        Command::Status { order } => cmd_status(device, &out, order),
        Command::Findings { order } => cmd_findings(device, &out, order),
        Command::Statement { order } => {
            let statement = device
                .statement_blocking(order)
                .context("reading the statement failed")?;
            emit_statement(&out, &statement)
        }
        Command::ConfirmStatement { order } => {
            let confirmed = device
                .confirm_statement_blocking(order)
                .context("confirming the statement failed")?;
            emit_statement(&out, &confirmed)
        }
        Command::Sync { chunk_kib } => cmd_sync(device, &out, chunk_kib),
        Command::Apply(command) => apply::run(device, &out, command),
    }
}

/// Prints either a JSON value or lines of text.
struct Output {
    json: bool,
}

impl Output {
    /// Prints the answer. A reader that stopped early (`| head`) ends the output quietly; the
    /// command's work is done by then.
    fn emit(&self, value: Value, text: impl FnOnce() -> Vec<String>) -> Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let written = if self.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)
        } else {
            text().iter().try_for_each(|line| writeln!(out, "{line}"))
        };
        match written.and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => Ok(other?),
        }
    }
}

fn cmd_login(
    device: &Phone,
    out: &Output,
    server: String,
    login: String,
    pw: String,
    name: Option<String>,
) -> Result<()> {
    let session = device
        .login_blocking(server, login, pw, name)
        .context("login failed")?;
    let text = format!(
        "logged in as {} (account {}); this phone is registered as device {}",
        session.role, session.account_id, session.registered_device_id
    );
    out.emit(serde_json::to_value(&session)?, || vec![text])
}

fn emit_statement(out: &Output, statement: &Statement) -> Result<()> {
    // Integer fen shown as yuan, without floating point.
    let yuan = |fen: i64| format!("{}.{:02}", fen / 100, (fen % 100).abs());
    let mut lines = vec![format!(
        "statement v{} {}: gross {} CNY",
        statement.version,
        statement.status,
        yuan(statement.gross_fen),
    )];
    if !statement.awaiting.is_empty() {
        let waiting = statement.awaiting.join(", ");
        lines.push(format!("awaiting confirmation by: {waiting}"));
    }
    if let Some(settlement) = &statement.settlement {
        lines.push(format!(
            "settled: tax {} CNY ({}), net pay {} CNY",
            yuan(settlement.tax_fen),
            settlement.tax_method,
            yuan(settlement.net_fen),
        ));
    }
    out.emit(serde_json::to_value(statement)?, || lines)
}

fn cmd_devices(device: &Phone, out: &Output) -> Result<()> {
    let devices = device
        .devices_blocking()
        .context("listing devices failed")?;
    out.emit(serde_json::to_value(&devices)?, || {
        devices
            .iter()
            .map(|d| {
                let state = match (&d.revoked_at, &d.revoked_reason) {
                    (Some(at), reason) => {
                        format!("revoked {at} ({})", reason.as_deref().unwrap_or("-"))
                    }
                    (None, _) => format!(
                        "active, last seen {}",
                        d.last_seen_at.as_deref().unwrap_or("never")
                    ),
                };
                let current = if d.current { " (this phone)" } else { "" };
                format!(
                    "{} {}{current}: registered {}, {state}",
                    d.device_id, d.name, d.registered_at
                )
            })
            .collect()
    })
}

fn cmd_tasks(device: &Phone, out: &Output) -> Result<()> {
    let orders = device.orders()?;
    out.emit(serde_json::to_value(&orders)?, || {
        if orders.is_empty() {
            return vec!["no tasks on this device; run `sync`".into()];
        }
        orders.iter().flat_map(task_lines).collect()
    })
}

fn task_lines(s: &Order) -> Vec<String> {
    let verdict = s.verdict.as_deref().unwrap_or("-");
    let unsynced = if s.unsynced {
        "  (unsynced evidence)"
    } else {
        ""
    };
    let mut lines = vec![
        format!(
            "{}  {}  status {}  verdict {verdict}{unsynced}",
            s.order_id, s.title, s.status
        ),
        format!("  fee     {}", yuan(s.fee_fen)),
        format!(
            "  site    {:.5}, {:.5} within {} m",
            s.site_lat, s.site_lon, s.site_radius_m
        ),
        format!(
            "  window  {} .. {}",
            rfc3339(s.window_from_ms),
            rfc3339(s.window_to_ms)
        ),
    ];
    if let (Some(code), Some(message)) = (&s.rejection_code, &s.rejection_reason) {
        lines.push(format!("  refused by server: {code}: {message}"));
    }
    lines
}

fn cmd_photo(device: &Phone, out: &Output, args: &PhotoArgs) -> Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let media_type = photo::sniff_media_type(&bytes)
        .context("the file is not a jpeg, png, webp or heic image")?;
    let at = args.at.as_deref().map(parse_time).transpose()?;
    let (fix, captured_at_ms, source) = choose_fix(args, &bytes, at);

    let record = device.record_photo_blocking(
        args.order.clone(),
        bytes.into(),
        Some(media_type.to_owned()),
        fix,
        captured_at_ms,
    )?;
    let value = json!({ "photo": record, "fix_source": source.code() });
    out.emit(value, || {
        let saved = format!(
            "recorded photo {} ({}, {} bytes)",
            record.item_id, record.sha256, record.size
        );
        vec![source.notice(), saved]
    })
}

/// Where the simulated phone fix of a photo came from.
enum FixSource {
    Flags,
    Exif { accuracy_m: f64 },
    None,
}

impl FixSource {
    fn code(&self) -> &'static str {
        match self {
            Self::Flags => "flags",
            Self::Exif { .. } => "exif",
            Self::None => "none",
        }
    }

    fn notice(&self) -> String {
        match self {
            Self::Flags => "using the position given by --lat/--lon as the phone's fix".into(),
            Self::Exif { accuracy_m } => format!(
                "no --lat/--lon given: using the photo's EXIF GPS position and time as the \
                 phone's fix (accuracy {accuracy_m} m)"
            ),
            Self::None => "no --lat/--lon given and the photo has no EXIF GPS position: \
                           recording it with no fix"
                .into(),
        }
    }
}

fn choose_fix(
    args: &PhotoArgs,
    bytes: &[u8],
    at: Option<i64>,
) -> (Option<LocationFix>, i64, FixSource) {
    let now = now_ms();
    if let (Some(lat), Some(lon)) = (args.lat, args.lon) {
        let captured = at.unwrap_or(now);
        let fix = LocationFix {
            lat,
            lon,
            accuracy_m: args.accuracy.unwrap_or(10.0),
            at_ms: captured,
            mock: args.mock,
        };
        return (Some(fix), captured, FixSource::Flags);
    }

    let Some(exif) = photo::read_exif_fix(bytes) else {
        return (None, at.unwrap_or(now), FixSource::None);
    };
    let accuracy_m = args
        .accuracy
        .or(exif.accuracy_m)
        .unwrap_or(EXIF_DEFAULT_ACCURACY_M);
    let fix_at = exif.at_ms.or(at).unwrap_or(now);
    let fix = LocationFix {
        lat: exif.lat,
        lon: exif.lon,
        accuracy_m,
        at_ms: fix_at,
        mock: args.mock,
    };
    (
        Some(fix),
        at.unwrap_or(fix_at),
        FixSource::Exif { accuracy_m },
    )
}

fn cmd_track(device: &Phone, out: &Output, order: String, file: &Path) -> Result<()> {
    let import = device.import_gpx_file(order, file.display().to_string())?;
    out.emit(serde_json::to_value(&import)?, || {
        vec![format!(
            "recorded track {} ({} points, {} with time)",
            import.item_id, import.points, import.timed_points
        )]
    })
}

/// Reads a JSON file of strokes: an array of arrays of {x, y, t_ms, pressure}.
fn read_strokes(file: &Path) -> Result<Vec<Stroke>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let strokes: Vec<Vec<StrokePoint>> = serde_json::from_str(&text)
        .context("the strokes file is not a JSON array of arrays of {x, y, t_ms, pressure}")?;
    Ok(strokes
        .into_iter()
        .map(|points| Stroke { points })
        .collect())
}

fn cmd_sign(
    device: &Phone,
    out: &Output,
    order: String,
    file: &Path,
    at: Option<String>,
) -> Result<()> {
    let strokes = read_strokes(file)?;
    let signed_at = time_or_now(at)?;
    let (count, points) = (
        strokes.len(),
        strokes.iter().map(|s| s.points.len()).sum::<usize>(),
    );

    let id = device.add_signature(order, strokes, signed_at)?;
    let value = json!({ "id": id, "strokes": count, "points": points });
    out.emit(value, || {
        vec![format!(
            "recorded signature {id} ({count} strokes, {points} points)"
        )]
    })
}

fn cmd_note(
    device: &Phone,
    out: &Output,
    order: String,
    text: String,
    at: Option<String>,
) -> Result<()> {
    let id = device.add_note(order, text, time_or_now(at)?)?;
    out.emit(json!({ "id": id }), || vec![format!("recorded note {id}")])
}

fn cmd_submit(device: &Phone, out: &Output, order: String, at: Option<String>) -> Result<()> {
    let id = device.submit(order.clone(), time_or_now(at)?)?;
    let text = format!("submitted {order} (item {id}); run `sync` to send it");
    out.emit(json!({ "id": id }), || vec![text])
}

fn cmd_status(device: &Phone, out: &Output, order: Option<String>) -> Result<()> {
    let order_ids = match order {
        Some(id) => vec![device.order(id)?.order_id],
        None => device.orders()?.into_iter().map(|o| o.order_id).collect(),
    };
    let mut all = serde_json::Map::new();
    let mut lines = Vec::new();
    for order_id in order_ids {
        let items = device.items(order_id.clone())?;
        lines.push(format!("{order_id}: {} items", items.len()));
        lines.extend(items.iter().map(item_line));
        all.insert(order_id, serde_json::to_value(&items)?);
    }
    out.emit(Value::Object(all), || lines)
}

fn item_line(item: &EvidenceItem) -> String {
    let detail = match (item.size, item.points) {
        (Some(size), _) => format!("{}/{size} bytes", item.uploaded_bytes),
        (None, Some(points)) => format!("{points} points"),
        _ => String::new(),
    };
    let reason = match (&item.failure_code, &item.failure_reason) {
        (Some(code), reason) => format!("  [{code}: {}]", reason.as_deref().unwrap_or("")),
        _ => String::new(),
    };
    format!(
        "  {:<10} {}  {:<9} {detail}{reason}",
        name_of(&item.kind),
        item.item_id,
        name_of(&item.state)
    )
}

/// The snake_case name an enum serializes to.
fn name_of(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn cmd_findings(device: &Phone, out: &Output, order: String) -> Result<()> {
    let review = device.review(order.clone())?;
    out.emit(json!({ "order_id": order, "review": review }), || {
        let Some(review) = &review else {
            return vec![format!("{order}: not reviewed yet")];
        };
        let mut lines = vec![format!("{order}: verdict {}", review.verdict)];
        for f in &review.findings {
            let item = f.item_id.as_deref().unwrap_or("-");
            lines.push(format!(
                "  [{}] {} (item {item}): {}",
                f.severity, f.code, f.message
            ));
        }
        if let Some(comment) = &review.comment {
            lines.push(format!("  comment: {comment}"));
        }
        lines
    })
}

fn cmd_sync(device: &Phone, out: &Output, chunk_kib: Option<u64>) -> Result<()> {
    if let Some(kib) = chunk_kib {
        device.set_upload_chunk_size(kib.saturating_mul(1024));
    }
    let report = device.sync_blocking(None).context("sync failed")?;
    out.emit(serde_json::to_value(&report)?, || report_lines(&report))?;

    // Something that did not get through is a failure for scripts too, not only a line.
    let problems = report.problems.len();
    if problems > 0 {
        anyhow::bail!("{problems} item(s) or document(s) did not get through; see above");
    }
    Ok(())
}

fn report_lines(report: &SyncSummary) -> Vec<String> {
    let state = if report.converged {
        "up to date"
    } else {
        "not converged"
    };
    let mut lines = vec![
        format!(
            "sync {state}: {} rounds, {} requests",
            report.rounds, report.requests
        ),
        format!(
            "  documents  {} sent, {} received",
            report.docs_sent, report.docs_received
        ),
        format!("  orders     {} ({} new)", report.orders, report.new_orders),
        format!(
            "  items      {} synced (tracks, signatures, notes, submissions; photos below)",
            report.items_synced
        ),
        format!(
            "  media      {} uploaded, {} bytes",
            report.photos_uploaded, report.bytes_uploaded
        ),
    ];
    for p in &report.problems {
        let (label, what) = match (&p.sha256, &p.order_id) {
            (Some(hash), _) => ("failed ", hash.as_str()),
            (None, order) => ("refused", order.as_deref().unwrap_or_default()),
        };
        lines.push(format!("  {label}    {what}: {}: {}", p.code, p.reason));
    }
    lines
}

fn parse_time(text: &str) -> Result<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .with_context(|| format!("{text:?} is not an RFC 3339 time"))?;
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    match i64::try_from(ms) {
        Ok(ms) => Ok(ms),
        Err(_) => bail!("{text:?} is out of range"),
    }
}

fn time_or_now(at: Option<String>) -> Result<i64> {
    at.as_deref().map_or(Ok(now_ms()), parse_time)
}

fn now_ms() -> i64 {
    let ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn rfc3339(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000);
    at.ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Integer fen shown as yuan: 15000 → "¥150.00".
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}¥{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_in_fen_show_as_yuan() {
        assert_eq!(yuan(15_000), "¥150.00");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(-1_234), "-¥12.34");
    }

    #[test]
    fn times_parse_from_rfc3339_with_offsets() {
        assert_eq!(
            parse_time("2024-03-01T08:00:00+08:00").ok(),
            Some(1_709_251_200_000)
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn the_example_signature_is_valid_strokes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/signature.json");
        let strokes = read_strokes(&path).expect("strokes");
        assert_eq!(strokes.len(), 2);
    }
}

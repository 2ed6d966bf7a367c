//! Server configuration: defaults in code, then a TOML file, then environment variables.
//!
//! Environment variables are `FLEXWORK_<SECTION>__<KEY>` (double underscore between levels),
//! e.g. `FLEXWORK_LISTEN=0.0.0.0:8080` or `FLEXWORK_LIMITS__MAX_UPLOAD_BYTES=1048576`;
//! `DATABASE_URL` is also honoured. With no file and no variables the server runs on a
//! laptop: SQLite and media in `./flexwork-data`, listening on 127.0.0.1:8080.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use flexwork_storage::{StoreConfig, Suite};
use flexwork_sync::MessageLimits;
use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::settlement::{SettlementConfig, TaxConfig};
use crate::verify::Thresholds;

/// Everything the server reads at start. `Debug` hides the database password.
#[derive(Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Folder for the embedded database, local media and unfinished uploads.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty means a SQLite file in `data_dir`.
    #[serde(default)]
    pub database_url: String,
    /// Where media blobs live when no `sites` are configured; `None` means a local folder in
    /// `data_dir`.
    #[serde(default)]
    pub media: Option<StoreConfig>,
    /// Media sites, the primary first; every blob is copied to each of them.
    #[serde(default)]
    pub sites: Vec<flexwork_storage::SiteConfig>,
    /// Refuse to start unless two sites are more than 200 km apart.
    #[serde(default)]
    pub require_redundancy: bool,
    /// Encryption at rest of every media blob at every site.
    #[serde(default)]
    pub encryption: Encryption,
    /// Seconds between scheduled scrubs of every copy at every site (a day by default); 0 turns
    /// them off.
    #[serde(default = "daily")]
    pub scrub_interval_secs: u64,
    pub limits: Limits,
    /// Public holidays and make-up working days, for review deadlines in working days.
    #[serde(default)]
    pub calendar: crate::identity::Calendar,
    /// Real-name verification of applicants. Only the sandbox provider exists: it behaves
    /// like a licensed provider's test environment and verifies nobody.
    #[serde(default)]
    pub realname: RealNameConfig,
    /// E-invoicing. Only the sandbox provider exists: it issues nothing real.
    #[serde(default)]
    pub invoicing: crate::invoices::InvoicingConfig,
    /// Sign-in rules: throttling and which roles need two-factor login.
    #[serde(default)]
    pub login: LoginPolicy,
    /// Payouts to workers: the batch job and the payment provider. Only the sandbox
    /// provider exists: it behaves like a provider's test environment and pays nobody.
    #[serde(default)]
    pub payments: PaymentsConfig,
    pub verification: Thresholds,
    pub tax: TaxConfig,
    /// Platform service fee and the retry of statements waiting for escrow funds.
    #[serde(default)]
    pub settlement: SettlementConfig,
    /// Daily samples, quarterly screening, regulator outbox and deregistration timing.
    #[serde(default)]
    pub checks: crate::checks::ChecksConfig,
    /// Lifetime of API bearer tokens, in hours.
    pub token_ttl_hours: i64,
    /// Browser sessions of the web console.
    #[serde(default)]
    pub console: ConsoleConfig,
}

/// Browser sessions of the web console (`[console]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsoleConfig {
    /// A browser (cookie) session ends after this many minutes without a request, and in any
    /// case when its token's lifetime is over.
    pub session_idle_minutes: i64,
    /// Whether the session cookie carries `Secure`, so browsers send it over HTTPS only
    /// (they also treat `http://127.0.0.1` and `http://localhost` as secure). Turn it off
    /// only for a plain-HTTP deployment on another host; the server warns at start.
    pub secure_cookies: bool,
    /// The console's address as browsers see it, behind a reverse proxy (scheme, host and
    /// any port, like `https://console.example.cn`): when set, a cookie request that changes
    /// something must carry exactly this `Origin`. Unset: the `Origin` must name the `Host`
    /// the request was sent to.
    pub public_origin: Option<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            session_idle_minutes: 30,
            secure_cookies: true,
            public_origin: None,
        }
    }
}

/// Sizes the server refuses to go beyond.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest media blob, in bytes.
    pub max_upload_bytes: u64,
    /// Largest body of one sync request, in bytes.
    pub max_sync_body_bytes: usize,
    /// Bounds on each Automerge sync message inside a request.
    pub sync_message: MessageLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_upload_bytes: 50 * 1024 * 1024,
            max_sync_body_bytes: 32 * 1024 * 1024,
            sync_message: MessageLimits::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("flexwork-data"),
            database_url: String::new(),
            media: None,
            sites: Vec::new(),
            require_redundancy: false,
            scrub_interval_secs: daily(),
            encryption: Encryption::default(),
            limits: Limits::default(),
            calendar: crate::identity::Calendar::default(),
            realname: RealNameConfig::default(),
            invoicing: crate::invoices::InvoicingConfig::default(),
            login: LoginPolicy::default(),
            payments: PaymentsConfig::default(),
            verification: Thresholds::default(),
            tax: TaxConfig::default(),
            settlement: SettlementConfig::default(),
            checks: crate::checks::ChecksConfig::default(),
            token_ttl_hours: 24 * 30,
            console: ConsoleConfig::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("media", &self.media)
            .field("sites", &self.sites)
            .field("require_redundancy", &self.require_redundancy)
            .field("encryption", &self.encryption)
            .field("scrub_interval_secs", &self.scrub_interval_secs)
            .field("limits", &self.limits)
            .field("calendar", &self.calendar)
            .field("realname", &self.realname)
            .field("invoicing", &self.invoicing)
            .field("login", &self.login)
            .field("payments", &self.payments)
            .field("verification", &self.verification)
            .field("tax", &self.tax)
            .field("settlement", &self.settlement)
            .field("checks", &self.checks)
            .field("token_ttl_hours", &self.token_ttl_hours)
            .field("console", &self.console)
            .finish()
    }
}

/// Which real-name verification provider to use.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RealNameConfig {
    /// How the sandbox provider behaves (latency, failures, duplicate callbacks).
    pub sandbox: crate::realname::SandboxConfig,
    /// The secret a provider signs its HTTP callbacks with (HMAC-SHA256), at least 32
    /// characters; without it `POST /api/v1/realname/callbacks` accepts nothing.
    pub callback_secret: Option<Secret>,
}

/// Payouts to workers (`[payments]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PaymentsConfig {
    /// Seconds between runs of the payout batch job; 0 runs it only on demand
    /// (`POST /api/v1/payouts/run`, `flexwork payouts run`).
    pub batch_interval_secs: u64,
    /// Seconds after which a payout still marked as being sent (its sender stopped midway)
    /// is asked about at the provider by its key. Keep it above the provider's deadline.
    pub stale_after_secs: u64,
    /// The secret the provider signs its HTTP callbacks with (HMAC-SHA256), at least 32
    /// characters; without it `POST /api/v1/payments/callbacks` accepts nothing.
    pub callback_secret: Option<Secret>,
    /// How the sandbox provider behaves (latency, rejections, timeouts, callbacks).
    pub sandbox: crate::payments::SandboxConfig,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            batch_interval_secs: 3_600,
            stale_after_secs: 120,
            callback_secret: None,
            sandbox: crate::payments::SandboxConfig::default(),
        }
    }
}

/// A configured secret: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for computing a MAC.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Sign-in rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LoginPolicy {
    /// Failed sign-ins of one account within the window before it is refused for a while.
    pub max_failures_per_account: i64,
    /// Failed sign-ins from one address within the window before it is refused for a while.
    pub max_failures_per_address: i64,
    /// The window over which failures count, in seconds.
    pub window_secs: i64,
    /// Applications (worker or enterprise) from one address within the window; each
    /// application says whether its login is free, so they are limited like guesses.
    pub max_applications_per_address: i64,
    /// Roles that must sign in with a TOTP code as well as the password (the roles that
    /// sign in on the web). Workers sign in on their phones.
    pub require_totp_roles: Vec<Role>,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_address: 20,
            window_secs: 15 * 60,
            max_applications_per_address: 10,
            require_totp_roles: vec![Role::Operator, Role::Enterprise, Role::Regulator],
        }
    }
}

/// How media is encrypted at rest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Encryption {
    /// Suite for newly stored media: `aes-256-gcm` (with SHA-256) or `sm4-gcm` (with SM3).
    /// Media stored earlier keeps the suite it was sealed with.
    pub suite: Suite,
    /// The local master key file; empty means `master-keys.toml` in `data_dir`. Created on
    /// first start. Back it up apart from the media: without it no media can be read.
    pub key_file: PathBuf,
}

impl Default for Encryption {
    fn default() -> Self {
        Self {
            suite: Suite::Aes256GcmSha256,
            key_file: PathBuf::new(),
        }
    }
}

fn daily() -> u64 {
    24 * 3_600
}

/// A connection URL with the password of its user info replaced.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_owned(),
    }
}

/// The longest a browser session may sit idle: a week, in minutes.
pub const MAX_SESSION_IDLE_MINUTES: i64 = 7 * 24 * 60;

impl Config {
    /// Reads defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("FLEXWORK_").split("__"));
        if let Ok(url) = std::env::var("DATABASE_URL") {
            figment = figment.merge(Serialized::default("database_url", url));
        }

        figment.extract().map_err(Box::new)
    }

    /// Refuses settings the server cannot work with.
    pub fn validate(&self, today: &str) -> Result<(), String> {
        if self.token_ttl_hours < 1 {
            return Err("token_ttl_hours must be at least 1".into());
        }
        if !(1..=MAX_SESSION_IDLE_MINUTES).contains(&self.console.session_idle_minutes) {
            return Err(format!(
                "[console] session_idle_minutes must be 1 to {MAX_SESSION_IDLE_MINUTES} (a week)"
            ));
        }
        if let Some(origin) = self.console.public_origin.as_deref() {
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .map(|rest| rest.trim_end_matches('/'));
            if !host.is_some_and(|h| !h.is_empty() && !h.contains(['/', '?', '#', ' '])) {
                return Err(format!(
                    "[console] public_origin is a scheme and host as browsers send it in \
                     Origin, like https://console.example.cn (not {origin:?})"
                ));
            }
        }
        if self.tax.method_on(today).is_none() {
            return Err(format!(
                "no [tax] rule covers today ({today}); nothing could be settled"
            ));
        }
        if !(0..=10_000).contains(&self.settlement.platform_fee_basis_points) {
            return Err("[settlement] platform_fee_basis_points must be 0 to 10000".into());
        }
        self.calendar
            .validate()
            .map_err(|e| format!("[calendar]: {e}"))?;
        self.checks
            .validate()
            .map_err(|e| format!("[checks]: {e}"))?;
        if let Some(secret) = &self.realname.callback_secret
            && secret.expose().chars().count() < 32
        {
            return Err("[realname] callback_secret must have at least 32 characters".into());
        }
        if let Some(secret) = &self.payments.callback_secret
            && secret.expose().chars().count() < 32
        {
            return Err("[payments] callback_secret must have at least 32 characters".into());
        }
        Ok(())
    }

    /// The database to use, defaulting to a SQLite file in the data folder.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            let path = self.data_dir.join("flexwork.sqlite");
            format!("sqlite://{}?mode=rwc", path.display())
        } else {
            self.database_url.clone()
        }
    }

    /// The media store, defaulting to a folder in the data folder.
    pub fn media_store(&self) -> StoreConfig {
        self.media.clone().unwrap_or_else(|| StoreConfig::Local {
            path: self.data_dir.join("media"),
        })
    }

    /// The master key file: the configured one, or `master-keys.toml` in `data_dir`.
    pub fn key_file(&self) -> PathBuf {
        if self.encryption.key_file.as_os_str().is_empty() {
            self.data_dir.join("master-keys.toml")
        } else {
            self.encryption.key_file.clone()
        }
    }

    /// Folder for unfinished chunked uploads.
    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }

    /// The defaults as a commented TOML file, for `flexwork default-config`.
    pub fn default_toml() -> String {
        let body = toml::to_string_pretty(&Config::default()).unwrap_or_default();
        format!(
            "# flexwork server configuration. Every key is optional; these are the defaults.\n\
             # Environment variables override the file: FLEXWORK_<KEY>,\n\
             # FLEXWORK_<SECTION>__<KEY>,\n\
             # and DATABASE_URL. database_url = \"postgres://user@host/db\" moves off SQLite;\n\
             # a [media] table with kind = \"s3\" moves media to an S3-compatible store, and\n\
             # [[sites]] tables (name, provider, latitude, longitude, kind, ...) keep copies\n\
             # at several sites; see the README's \"Media sites\".\n\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file_and_file_then_env_override() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("flexwork.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\n[limits]\nmax_upload_bytes = 10\n",
        )
        .unwrap();

        let defaults = Config::load(None).unwrap();
        let from_file = Config::load(Some(&file)).unwrap();

        assert_eq!(defaults.listen.port(), 8080);
        assert!(defaults.database_url().starts_with("sqlite://"));
        assert_eq!(from_file.listen.port(), 9999);
        assert_eq!(from_file.limits.max_upload_bytes, 10);
        assert_eq!(
            from_file.limits.max_sync_body_bytes,
            Limits::default().max_sync_body_bytes
        );
    }

    #[test]
    fn settings_the_server_cannot_work_with_are_refused() {
        let dead_tokens = Config {
            token_ttl_hours: 0,
            ..Config::default()
        };
        let mut no_tax = Config::default();
        no_tax.tax.rules.truncate(1);
        no_tax.tax.rules[0].effective_to = "2020-01-01".into();

        assert!(Config::default().validate("2026-12-04").is_ok());
        assert!(
            dead_tokens
                .validate("2026-12-04")
                .unwrap_err()
                .contains("token_ttl_hours")
        );
        assert!(
            no_tax
                .validate("2026-12-04")
                .unwrap_err()
                .contains("no [tax] rule")
        );
        for idle in [0, -5, MAX_SESSION_IDLE_MINUTES + 1, 9_000_000_000_000_000] {
            let mut config = Config::default();
            config.console.session_idle_minutes = idle;
            let refused = config.validate("2026-12-04").unwrap_err();
            assert!(
                refused.contains("session_idle_minutes"),
                "{idle}: {refused}"
            );
        }
    }

    #[test]
    fn a_public_origin_is_a_scheme_and_host() {
        let with = |origin: &str| {
            let mut config = Config::default();
            config.console.public_origin = Some(origin.to_owned());
            config.validate("2026-12-04")
        };
        assert!(with("https://console.example.cn").is_ok());
        assert!(with("http://127.0.0.1:8080").is_ok());
        for bad in [
            "console.example.cn",
            "https://",
            "https://example.cn/console",
            "ftp://x",
        ] {
            let refused = with(bad).unwrap_err();
            assert!(refused.contains("public_origin"), "{bad}: {refused}");
        }
    }

    #[test]
    fn debug_hides_the_database_password() {
        let config = Config {
            database_url: "postgres://flexwork:hunter2-secret@db.internal/flexwork".into(),
            ..Config::default()
        };

        let shown = format!("{config:?}");

        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("postgres://flexwork:<redacted>@db.internal/flexwork"));
    }

    #[test]
    fn the_printed_default_config_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("flexwork.toml");
        std::fs::write(&file, Config::default_toml()).unwrap();

        let config = Config::load(Some(&file)).unwrap();

        assert_eq!(config.token_ttl_hours, Config::default().token_ttl_hours);
    }
}

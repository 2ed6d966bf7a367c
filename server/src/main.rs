//! `flexwork`: the server's command line. `flexwork serve` runs the platform; `flexwork verify`
//! re-checks evidence files by hand; `flexwork account add` creates accounts; `flexwork openapi`
//! prints the HTTP API's OpenAPI document.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flexwork_server::auth::{NewAccount, Role};
use flexwork_server::{AppState, Config};

#[derive(Debug, Parser)]
#[command(
    name = "flexwork",
    version,
    about = "flexwork: flexible staffing platform server"
)]
struct Cli {
    /// TOML configuration file (defaults apply without one; FLEXWORK_* variables override).
    #[arg(long, global = true, env = "FLEXWORK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Verify evidence files and print the verdict as JSON.
    Verify(flexwork_server::verify::cli::VerifyArgs),
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Print the default configuration as TOML.
    DefaultConfig,
    /// Print the OpenAPI 3.1 document of the HTTP API as JSON (what `GET /api/v1/openapi.json`
    /// serves, and what `server/openapi.json` must hold).
    Openapi,
    /// Read every copy of every media blob at every site, verify it, and repair what is
    /// missing or corrupt; prints a summary as JSON.
    Scrub,
    /// Restore every media blob (or a random sample) from one site into a scratch folder,
    /// verify every checksum, and write a dated report; prints the report as JSON.
    RestoreDrill {
        /// The site to restore from.
        #[arg(long)]
        site: String,
        /// Restore only this many blobs, chosen at random.
        #[arg(long)]
        sample: Option<usize>,
        /// Where to restore to, keeping the restored files [default: a scratch folder under
        /// the data folder's drills/, removed once every file is verified].
        #[arg(long)]
        into: Option<PathBuf>,
    },
    /// When the last restore drill ran, and whether a quarter has passed since.
    DrillStatus,
    /// Print the current code of a TOTP secret (base32), as an authenticator app shows it:
    /// for scripts and for checking a phone's app.
    TotpCode {
        /// The secret from `POST /api/v1/me/totp`.
        secret: String,
    },
    /// Delete audit records older than a number of days (at least 183: younger ones are
    /// kept by the database whatever asks).
    AuditPurge {
        #[arg(long)]
        older_than_days: i64,
    },
    /// Master keys of encryption at rest.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Payouts to workers.
    #[command(subcommand)]
    Payouts(PayoutsCommand),
    /// Show where each site's copy of one media blob stands, as JSON.
    Copies {
        /// The blob's SHA-256, 64 hex digits.
        hash: String,
    },
    /// Re-derive every ledger balance from its postings and compare: unbalanced events,
    /// running balances that differ from their postings, accounts below zero. Prints the
    /// report as JSON; exits with status 1 if anything is wrong.
    LedgerCheck,
    /// Authenticity checks: draw a date's samples now (a date already drawn draws nothing).
    #[command(subcommand)]
    Checks(ChecksCommand),
    /// Reports to the regulator.
    #[command(subcommand)]
    Regulator(RegulatorCommand),
}

#[derive(Debug, Subcommand)]
enum PayoutsCommand {
    /// Run the payout batch once, as the scheduled job does: ask the provider about payouts
    /// of unknown outcome, turn due settlements into payouts and send them; prints what the
    /// run did as JSON. Safe while servers run: nothing is paid twice.
    Run,
}

#[derive(Debug, Subcommand)]
enum ChecksCommand {
    /// Draw the samples of a date and create missing screening items; prints what was drawn.
    Run {
        /// `YYYY-MM-DD` (Asia/Shanghai) [default: today].
        #[arg(long)]
        date: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RegulatorCommand {
    /// Make one export and write it to the outbox; prints its record.
    Export {
        #[arg(long, value_enum)]
        kind: flexwork_server::regulator::ExportKind,
        /// `YYYY-MM-DD..YYYY-MM-DD` for orders and invoices, `YYYY-Qn` for worker income.
        #[arg(long)]
        period: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Show the current master key and how many blobs each master key wraps at each site.
    Status,
    /// Make a new master key current and re-wrap every blob's data key under it, at every
    /// site; the media itself is not rewritten.
    Rotate {
        /// Suite of the new master key [default: the configured suite].
        #[arg(long)]
        suite: Option<flexwork_storage::Suite>,
    },
    /// Remove a master key no blob needs any more.
    Retire {
        /// The master key's id, as `keys status` shows it.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Create an account. The password is read from FLEXWORK_NEW_PASSWORD, never from the
    /// command line, where other users of the machine could see it.
    Add {
        #[arg(long, value_enum)]
        role: Role,
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: String,
        /// An operator's team; repeat for several (reviewer, risk, finance, legal, welfare,
        /// support, regulator-liaison, administrator).
        #[arg(long = "team", value_enum)]
        teams: Vec<flexwork_server::auth::Team>,
    },
    /// Suspend an account: its tokens are revoked and it cannot sign in.
    Suspend {
        #[arg(long)]
        login: String,
        /// Why; kept in the audit trail.
        #[arg(long)]
        reason: String,
    },
    /// Lift an account's suspension.
    Reinstate {
        #[arg(long)]
        login: String,
        #[arg(long)]
        reason: String,
    },
    /// Turn off an account's two-factor sign-in when its owner lost the authenticator and
    /// the recovery codes (for instance the last administrator); the owner sets up a new one
    /// at the next sign-in.
    ResetSecondFactor {
        #[arg(long)]
        login: String,
        #[arg(long)]
        reason: String,
    },
}

/// Suspends, reinstates or resets the second factor of an account from the machine itself,
/// audited as done on the command line.
async fn account_state(config: Config, command: AccountCommand) -> anyhow::Result<()> {
    use flexwork_server::audit::{self, Event, Outcome};
    use flexwork_server::auth;

    let (login, reason, action) = match &command {
        AccountCommand::Suspend { login, reason } => (login, reason, "account_suspended"),
        AccountCommand::Reinstate { login, reason } => (login, reason, "account_reinstated"),
        AccountCommand::ResetSecondFactor { login, reason } => {
            (login, reason, "second_factor_reset")
        }
        AccountCommand::Add { .. } => unreachable!("handled by the caller"),
    };
    let reason = audit::reason(reason, 1).context("--reason")?.to_owned();
    let state = AppState::start(config).await?;
    let id = auth::account_id_of(&state, login).await?;
    match command {
        AccountCommand::Suspend { .. } => auth::set_suspended(&state, &id, true, None).await?,
        AccountCommand::Reinstate { .. } => auth::set_suspended(&state, &id, false, None).await?,
        _ => auth::reset_second_factor(&state, &id).await?,
    }
    let event = Event::anonymous(action, Outcome::Ok)
        .object(format!("account:{id}"))
        .detail(serde_json::json!({ "reason": reason, "by": "command line" }));
    audit::record(&state, event).await?;
    println!("{action}: {id}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();

    match cli.command {
        Command::Serve => serve(load(cli.config.as_deref())?).await,
        Command::Verify(args) => {
            let report = flexwork_server::verify::cli::run(&args)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Account(AccountCommand::Add {
            role,
            login,
            name,
            teams,
        }) => {
            let password = std::env::var("FLEXWORK_NEW_PASSWORD")
                .context("set FLEXWORK_NEW_PASSWORD to the new account's password")?;
            let state = AppState::start(load(cli.config.as_deref())?).await?;
            let account = NewAccount {
                login,
                password,
                role,
                display_name: name,
                teams,
                organisation_id: None,
            };
            let id = flexwork_server::auth::create_account(&state, &account).await?;
            let event = flexwork_server::audit::Event::anonymous(
                "account_created",
                flexwork_server::audit::Outcome::Ok,
            )
            .object(format!("account:{id}"))
            .detail(serde_json::json!({
                "role": account.role.as_str(), "teams": account.teams, "by": "command line",
            }));
            flexwork_server::audit::record(&state, event).await?;
            println!("{id}");
            Ok(())
        }
        Command::Account(command) => account_state(load(cli.config.as_deref())?, command).await,
        Command::Scrub => scrub(load(cli.config.as_deref())?).await,
        Command::RestoreDrill { site, sample, into } => {
            let state = AppState::start(load(cli.config.as_deref())?).await?;
            let stamp = flexwork_server::now_ms();
            // Without --into the restored files are plaintext copies nobody asked to keep:
            // they are verified and removed, and only the report stays.
            let keep = into.is_some();
            let into = into.unwrap_or_else(|| {
                state
                    .config
                    .data_dir
                    .join("drills")
                    .join(format!("restore-{stamp}"))
            });
            let report = flexwork_server::drill::run(&state, &site, sample, &into).await?;
            if !keep {
                tokio::fs::remove_dir_all(&into).await?;
            }
            println!("{}", serde_json::to_string_pretty(&report)?);
            anyhow::ensure!(report.failures.is_empty(), "the drill found failures");
            Ok(())
        }
        Command::DrillStatus => {
            let state = AppState::start(load(cli.config.as_deref())?).await?;
            let status = flexwork_server::drill::status(&state).await?;
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(())
        }
        Command::Copies { hash } => {
            let hash = hash.parse().context("reading the hash")?;
            let state = AppState::start(load(cli.config.as_deref())?).await?;
            let copies = flexwork_server::replication::copies(&state, &hash).await?;
            println!("{}", serde_json::to_string_pretty(&copies)?);
            Ok(())
        }
        Command::LedgerCheck => {
            let config = load(cli.config.as_deref())?;
            let db = flexwork_server::db::Db::connect(&config.database_url()).await?;
            let report = flexwork_server::ledger::check(&db.pool).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.is_healthy() {
                anyhow::bail!("the ledger is inconsistent");
            }
            Ok(())
        }
        Command::TotpCode { secret } => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
            let code = flexwork_server::auth::totp::code_at(&secret, now.as_secs())
                .context("the secret is not base32 of at least 128 bits")?;
            println!("{code}");
            Ok(())
        }
        Command::AuditPurge { older_than_days } => {
            let state = AppState::start(load(cli.config.as_deref())?).await?;
            let purged = flexwork_server::audit::purge(&state, older_than_days).await?;
            println!("{}", serde_json::json!({ "purged": purged }));
            Ok(())
        }
        Command::Keys(command) => {
            let state = AppState::start(load(cli.config.as_deref())?).await?;
            let out = match command {
                KeysCommand::Status => {
                    serde_json::to_value(flexwork_server::keys::status(&state).await?)?
                }
                KeysCommand::Rotate { suite } => {
                    let suite = suite.unwrap_or(state.config.encryption.suite);
                    serde_json::to_value(flexwork_server::keys::rotate(&state, suite).await?)?
                }
                KeysCommand::Retire { id } => {
                    flexwork_server::keys::retire(&state, &id).await?;
                    serde_json::json!({ "retired": id })
                }
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Payouts(PayoutsCommand::Run) => {
            let state = AppState::start(load(cli.config.as_deref())?).await?;
            let trigger = flexwork_server::payouts::Trigger::Command;
            let report = flexwork_server::payouts::run(&state, trigger).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Checks(ChecksCommand::Run { date }) => {
            let state = AppState::start(load(cli.config.as_deref())?).await?;
            let date =
                date.unwrap_or_else(|| flexwork_server::shanghai_date(flexwork_server::now_ms()));
            let summary = flexwork_server::checks::run_daily(&state, &date, None, None).await?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        Command::Regulator(RegulatorCommand::Export { kind, period }) => {
            let state = AppState::start(load(cli.config.as_deref())?).await?;
            let record = flexwork_server::regulator::export(&state, None, kind, &period).await?;
            println!("{}", serde_json::to_string_pretty(&record)?);
            Ok(())
        }
        Command::DefaultConfig => {
            print!("{}", Config::default_toml());
            Ok(())
        }
        Command::Openapi => {
            print!("{}", flexwork_server::api::openapi::document_json());
            Ok(())
        }
    }
}

fn load(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Config::load(file).context("reading configuration")
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let state = AppState::start(config).await?;
    let drills = flexwork_server::drill::status(&state).await?;
    if drills.overdue {
        let last = drills.last_drill_at.as_deref().unwrap_or("never");
        tracing::warn!(
            last,
            "no restore drill in the last quarter: run `flexwork restore-drill`"
        );
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };

    flexwork_server::serve(state, listener, shutdown).await?;
    Ok(())
}

async fn scrub(config: Config) -> anyhow::Result<()> {
    let state = AppState::start(config).await?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "scrubbing {bar:40} {pos}/{len} blobs {elapsed}",
    )?);
    let report = flexwork_server::replication::scrub(&state, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .await?;
    bar.finish();

    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

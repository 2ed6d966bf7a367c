//! A simulation in the spirit of ledger databases' own tests: over many random seeds, many
//! orders are reconciled, settled, paid out and invoiced while deposits arrive twice or under
//! a reused reference, parties confirm at once, runs of the payout batch race each other, the
//! payment and invoicing sandboxes time out, reject and call back twice, steps are killed
//! half-way and the server restarts. After every seed:
//!
//! - every debit has its credit (`ledger::check`: each event sums to zero, running balances
//!   equal their postings, no escrow or payable below zero);
//! - every payout is made at most once: the sandbox provider's books hold one payment per
//!   payout, and each worker received exactly the net pay of their paid settlements;
//! - every invoice bills only paid settlements, and never more than their gross;
//! - the bank holds what was deposited less what was paid out.
//!
//! Orders enter already reconciled (evidence verified, completion confirmed): the evidence
//! path has its own scenarios, and here it would only slow the seeds down. Everything after
//! that runs through the platform's own functions. `FLEXWORK_SIM_SEEDS` sets the number of
//! seeds (default 6) and `FLEXWORK_SIM_SEED` runs one.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeMap;
use std::time::Duration;

use flexwork_server::auth::{Caller, Duties, Role, Team};
use flexwork_server::ledger::{self, Account};
use flexwork_server::payments::SandboxConfig;
use flexwork_server::{AppState, invoices, payouts, settlement, statements};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Row;

use crate::support::{AREZZO, TestServer};

const ORDERS_PER_ENTERPRISE: usize = 5;
const STEPS: usize = 60;

#[test]
fn money_stays_balanced_paid_once_and_invoiced_within_what_was_paid_over_random_seeds() {
    let seeds: Vec<u64> = match std::env::var("FLEXWORK_SIM_SEED") {
        Ok(seed) => vec![seed.parse().unwrap()],
        Err(_) => {
            let n = std::env::var("FLEXWORK_SIM_SEEDS").map_or(6, |n| n.parse().unwrap());
            (1..=n).collect()
        }
    };
    let mut totals = [0i64; 4];
    for seed in seeds {
        let activity = simulate(seed);
        for (total, n) in totals.iter_mut().zip(activity) {
            *total += n;
        }
    }
    // The seeds did what they are for: orders settled, workers paid, invoices issued and
    // reversed. A simulation in which nothing happened would prove nothing.
    let [settled, payments, issued, reversed] = totals;
    assert!(
        settled > 10 && payments > 5 && issued > 3 && reversed > 0,
        "settled {settled}, payments {payments}, invoices {issued}, reversals {reversed}"
    );
}

struct World {
    finance: Caller,
    enterprises: Vec<(Caller, String)>,
    workers: Vec<Caller>,
    orders: Vec<String>,
    deposits: Vec<(usize, String, i64)>,
}

fn caller(account_id: &str, role: Role, teams: &[Team], organisation: &str) -> Caller {
    Caller {
        account_id: account_id.to_owned(),
        role,
        duties: Duties {
            teams: teams.to_vec(),
            enterprise_admin: role == Role::Enterprise,
        },
        organisation_id: organisation.to_owned(),
        setup_only: false,
        address: Some("127.0.0.1".into()),
    }
}

/// Runs one seed; answers how many settlements, payments, issued invoices and issued
/// reversals it saw.
fn simulate(seed: u64) -> [i64; 4] {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = TestServer::start_with(|config| {
        config.payments.sandbox = SandboxConfig {
            latency_ms: (0, 3),
            timeout_ms: 20,
            timeout_rate: 0.2,
            reject_rate: 0.15,
            async_rate: 0.2,
            duplicate_callback_rate: 0.5,
            deliver_callbacks: true,
            script: Vec::new(),
            state_file: Some(config.data_dir.join("payments-sandbox.json")),
            seed: Some(seed),
        };
        config.payments.batch_interval_secs = 0;
        config.payments.stale_after_secs = 0;
        config.invoicing.sandbox.latency_ms = (0, 3);
        config.invoicing.sandbox.refuse_rate = 0.1;
        config.invoicing.sandbox.timeout_rate = 0.2;
        config.invoicing.sandbox.seed = Some(seed);
        config.settlement.platform_fee_basis_points = 150;
    });
    let world = build_world(&server, seed);

    for step in 0..STEPS {
        let choice = rng.random_range(0..100);
        let state = server.state().clone();
        match choice {
            0..=14 => deposit(&server, &world, &mut rng),
            15..=44 => confirm_at_once(&server, &world, &mut rng),
            45..=49 => dispute_and_resolve(&server, &world, &mut rng),
            50..=64 => {
                // Time passes: every settlement's daily payout is due.
                server.block_on(async {
                    sqlx::query("UPDATE settlements SET created_at = created_at - 86400000")
                        .execute(&state.db.pool)
                        .await
                        .unwrap();
                });
                race_payout_runs(&server, &mut rng);
            }
            65..=79 => bill_at_once(&server, &world, &mut rng),
            80..=84 => reverse_one(&server, &world, &mut rng),
            85..=92 => killed_half_way(&server, &world, &mut rng),
            _ => {
                server.stop();
                server.restart();
            }
        }
        let report = server
            .block_on(ledger::check(&server.state().db.pool))
            .unwrap();
        assert!(report.is_healthy(), "seed {seed}, step {step}: {report:?}");
    }

    // Let every outcome arrive: payouts resolved by query, invoices asked again.
    for _ in 0..20 {
        let state = server.state().clone();
        server.block_on(async {
            sqlx::query("UPDATE settlements SET created_at = created_at - 86400000")
                .execute(&state.db.pool)
                .await
                .unwrap();
            let _ = payouts::run(&state, payouts::Trigger::Command).await;
            let _ = invoices::resolve_unknown(&state).await;
        });
        std::thread::sleep(Duration::from_millis(30));
    }
    check_invariants(&server, &world, seed);
    let state = server.state().clone();
    let count = |sql: &'static str| {
        server.block_on(async {
            sqlx::query(sql)
                .fetch_one(&state.db.pool)
                .await
                .unwrap()
                .try_get::<i64, _>("n")
                .unwrap()
        })
    };
    [
        count("SELECT COUNT(*) AS n FROM settlements"),
        state.payments.as_sandbox().unwrap().payments().len() as i64,
        count("SELECT COUNT(*) AS n FROM invoices WHERE kind = 'blue' AND status = 'issued'"),
        count("SELECT COUNT(*) AS n FROM invoices WHERE kind = 'red' AND status = 'issued'"),
    ]
}

/// Two enterprises (from scenes, so their accounts and tasks are real), each with
/// `ORDERS_PER_ENTERPRISE` workers whose orders are submitted, verified and confirmed; the
/// statements are opened by the platform's own trigger.
fn build_world(server: &TestServer, seed: u64) -> World {
    let finance_id = server.add_operator(&format!("sim-finance-{seed}"), &[Team::Finance]);
    let finance = caller(&finance_id, Role::Operator, &[Team::Finance], &finance_id);
    let mut enterprises = Vec::new();
    let mut workers = Vec::new();
    let mut orders = Vec::new();
    for e in 0..2 {
        let scene = server.scene(&format!("sim-{seed}-{e}"), &AREZZO);
        let state = server.state().clone();
        let (enterprise_id, task_id): (String, String) = server.block_on(async {
            let row = sqlx::query("SELECT enterprise_id, task_id FROM orders WHERE id = $1")
                .bind(&scene.order_id)
                .fetch_one(&state.db.pool)
                .await
                .unwrap();
            (row.try_get(0).unwrap(), row.try_get(1).unwrap())
        });
        let enterprise = caller(&enterprise_id, Role::Enterprise, &[], &enterprise_id);
        enterprises.push((enterprise, task_id.clone()));
        for w in 0..ORDERS_PER_ENTERPRISE {
            let worker_id = server.add_account(Role::Worker, &format!("sim-w-{seed}-{e}-{w}"));
            let order_id = uuid::Uuid::new_v4().to_string();
            server.block_on(async {
                sqlx::query(
                    "INSERT INTO orders (id, task_id, worker_id, enterprise_id, created_at, \
                       submitted_at, verdict, verified_at, confirmation, confirmed_at) \
                     VALUES ($1, $2, $3, $4, 1, 2, 'passed', 3, 'confirmed', 4)",
                )
                .bind(&order_id)
                .bind(&task_id)
                .bind(&worker_id)
                .bind(&enterprise_id)
                .execute(&state.db.pool)
                .await
                .unwrap();
                assert!(statements::try_open(&state, &order_id).await.unwrap());
            });
            workers.push(caller(&worker_id, Role::Worker, &[], &worker_id));
            orders.push(order_id);
        }
    }
    World {
        finance,
        enterprises,
        workers,
        orders,
        deposits: Vec::new(),
    }
}

fn deposit(server: &TestServer, world: &World, rng: &mut StdRng) {
    let e = rng.random_range(0..world.enterprises.len());
    let enterprise = &world.enterprises[e].0.organisation_id;
    // A reference used before, sometimes with another amount (refused), or a new one.
    let reference = format!("REF-{}", rng.random_range(0..8));
    let amount = rng.random_range(1..=4) * 100_000;
    let state = server.state().clone();
    let finance = world.finance.clone();
    let enterprise = enterprise.clone();
    let answers: Vec<bool> = server.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..2 {
            let (state, finance, enterprise, reference) = (
                state.clone(),
                finance.clone(),
                enterprise.clone(),
                reference.clone(),
            );
            handles.push(tokio::spawn(async move {
                let deposit = statements::NewDeposit {
                    enterprise_id: &enterprise,
                    bank_reference: &reference,
                    amount_fen: amount,
                    value_date: "2026-01-05",
                };
                statements::record_deposit(&state, &finance, &deposit)
                    .await
                    .is_ok()
            }));
        }
        let mut answers = Vec::new();
        for handle in handles {
            answers.push(handle.await.unwrap());
        }
        answers
    });
    // Both copies of one deposit answer alike: recorded (once), or refused as a reuse.
    assert_eq!(
        answers[0], answers[1],
        "a duplicate deposit answered differently"
    );
    let _ = &world.deposits;
}

/// The statement of a random order, confirmed by its three parties, each from several
/// tasks at once.
fn confirm_at_once(server: &TestServer, world: &World, rng: &mut StdRng) {
    let i = rng.random_range(0..world.orders.len());
    let order = world.orders[i].clone();
    let e = i / ORDERS_PER_ENTERPRISE;
    let parties = [
        (world.finance.clone(), "platform"),
        (world.enterprises[e].0.clone(), "enterprise"),
        (world.workers[i].clone(), "worker"),
    ];
    let state = server.state().clone();
    server.block_on(async {
        let Some(statement) = statements::current_for_order(&state, &order).await.unwrap() else {
            return;
        };
        let mut handles = Vec::new();
        for (who, party) in parties.iter().cloned() {
            for _ in 0..2 {
                let (state, who, statement) = (state.clone(), who.clone(), statement.clone());
                handles.push(tokio::spawn(async move {
                    let _ = statements::confirm(&state, &who, &statement, party).await;
                }));
            }
        }
        for handle in handles {
            handle.await.unwrap();
        }
    });
}

fn dispute_and_resolve(server: &TestServer, world: &World, rng: &mut StdRng) {
    let i = rng.random_range(0..world.orders.len());
    let order = world.orders[i].clone();
    let worker = world.workers[i].clone();
    let finance = world.finance.clone();
    let reissue = rng.random_bool(0.7);
    let gross = rng.random_range(1..=5) * 50_000;
    let state = server.state().clone();
    server.block_on(async {
        let Some(statement) = statements::current_for_order(&state, &order).await.unwrap() else {
            return;
        };
        let reason = "the hours on the statement are wrong";
        if statements::dispute(&state, &worker, &statement, "worker", reason)
            .await
            .is_err()
        {
            return;
        }
        let statement = statements::load(&state, &statement.id).await.unwrap();
        let action = if reissue {
            statements::Resolution::Reissue(gross)
        } else {
            statements::Resolution::Void
        };
        statements::resolve(
            &state,
            &finance,
            &statement,
            action,
            "checked with both sides",
        )
        .await
        .unwrap();
    });
}

fn race_payout_runs(server: &TestServer, rng: &mut StdRng) {
    let runs = rng.random_range(1..=3);
    let state = server.state().clone();
    server.block_on(async {
        let handles: Vec<_> = (0..runs)
            .map(|_| {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = payouts::run(&state, payouts::Trigger::Command).await;
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
}

fn bill_at_once(server: &TestServer, world: &World, rng: &mut StdRng) {
    let e = rng.random_range(0..world.enterprises.len());
    let enterprise = world.enterprises[e].0.organisation_id.clone();
    let state = server.state().clone();
    let finance = world.finance.clone();
    server.block_on(async {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (state, finance, enterprise) =
                    (state.clone(), finance.clone(), enterprise.clone());
                tokio::spawn(async move {
                    let _ = invoices::bill(&state, &finance, &enterprise, None, None).await;
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
}

fn reverse_one(server: &TestServer, world: &World, rng: &mut StdRng) {
    let state = server.state().clone();
    let finance = world.finance.clone();
    let pick = rng.random_range(0..1_000);
    server.block_on(async {
        let issued = sqlx::query(
            "SELECT id FROM invoices WHERE kind = 'blue' AND status = 'issued' ORDER BY id",
        )
        .fetch_all(&state.db.pool)
        .await
        .unwrap();
        if issued.is_empty() {
            return;
        }
        let id: String = issued[pick % issued.len()].try_get("id").unwrap();
        let _ = invoices::reverse(&state, &finance, &id, "billed the wrong amount").await;
    });
}

/// A step killed part-way, as by a crash between its awaits: its transaction never commits.
fn killed_half_way(server: &TestServer, world: &World, rng: &mut StdRng) {
    let state: AppState = server.state().clone();
    let after = Duration::from_micros(rng.random_range(0..3_000));
    let kind = rng.random_range(0..3);
    let i = rng.random_range(0..world.orders.len());
    let (order, worker) = (world.orders[i].clone(), world.workers[i].clone());
    let enterprise = world.enterprises[i / ORDERS_PER_ENTERPRISE].0.clone();
    let finance = world.finance.clone();
    server.block_on(async move {
        let step = tokio::spawn(async move {
            match kind {
                0 => {
                    let _ = payouts::run(&state, payouts::Trigger::Command).await;
                }
                1 => {
                    let org = enterprise.organisation_id.clone();
                    let _ = invoices::bill(&state, &finance, &org, None, None).await;
                }
                _ => {
                    if let Ok(Some(s)) = statements::current_for_order(&state, &order).await {
                        let _ = statements::confirm(&state, &worker, &s, "worker").await;
                        let _ = settlement::settle_statement(&state, &s.id).await;
                    }
                }
            }
        });
        tokio::time::sleep(after).await;
        step.abort();
        let _ = step.await;
    });
}

fn check_invariants(server: &TestServer, world: &World, seed: u64) {
    let state = server.state().clone();
    let pool = state.db.pool.clone();
    let sandbox = state.payments.as_sandbox().unwrap();
    let report = server.block_on(ledger::check(&pool)).unwrap();
    assert!(report.is_healthy(), "seed {seed}: {report:?}");
    assert_eq!(report.debits_fen, report.credits_fen, "seed {seed}");

    server.block_on(async {
        // One payment at the provider per payout key, and each worker received exactly the
        // net pay of their paid settlements.
        let payments = sandbox.payments();
        let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
        let mut received: BTreeMap<String, i64> = BTreeMap::new();
        for payment in &payments {
            *per_key.entry(payment.idempotency_key.as_str()).or_default() += 1;
            *received.entry(payment.payee.clone()).or_default() += payment.amount_fen;
        }
        assert!(
            per_key.values().all(|n| *n == 1),
            "seed {seed}: a payout paid twice: {per_key:?}"
        );
        for worker in &world.workers {
            let paid: i64 = sqlx::query(
                "SELECT CAST(COALESCE(SUM(net_fen), 0) AS BIGINT) AS n FROM settlements \
                 WHERE worker_id = $1 AND status = 'paid'",
            )
            .bind(&worker.account_id)
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
            let got = received.get(&worker.account_id).copied().unwrap_or(0);
            assert_eq!(
                got, paid,
                "seed {seed}: worker {} received",
                worker.account_id
            );
        }

        // At most one settlement per order, each within its statement.
        let twice =
            sqlx::query("SELECT order_id FROM settlements GROUP BY order_id HAVING COUNT(*) > 1")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(twice.is_empty(), "seed {seed}: an order settled twice");

        // Every invoice line bills a paid settlement, never beyond its gross.
        let over = sqlx::query(
            "SELECT s.id, s.status, s.gross_fen, CAST(SUM(l.amount_fen) AS BIGINT) AS billed \
             FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id \
             JOIN settlements s ON s.id = l.settlement_id \
             WHERE (l.amount_fen > 0 AND i.status <> 'failed') \
                OR (l.amount_fen < 0 AND i.status = 'issued') \
             GROUP BY s.id, s.status, s.gross_fen \
             HAVING SUM(l.amount_fen) > s.gross_fen OR s.status <> 'paid'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(
            over.is_empty(),
            "seed {seed}: an invoice beyond what was paid"
        );

        // The bank holds the deposits less the payouts made.
        let deposited: i64 =
            sqlx::query("SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS n FROM deposits")
                .fetch_one(&pool)
                .await
                .unwrap()
                .try_get("n")
                .unwrap();
        let paid_out: i64 = payments.iter().map(|p| p.amount_fen).sum();
        let bank = ledger::balance(&pool, &Account::Bank).await.unwrap();
        assert_eq!(bank, deposited - paid_out, "seed {seed}: bank balance");
    });
}

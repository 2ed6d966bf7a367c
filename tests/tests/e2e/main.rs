//! End-to-end scenarios across the flexwork crates: a real server on loopback, real phones
//! (client-core over real HTTP), real SQLite or PostgreSQL, real media stores.
//!
//! One test binary holds every scenario, so the suite links once and its log scan (see
//! [`support::personal_numbers`]) covers every scenario's log lines in one place. Run one
//! scenario with its module path, e.g. `cargo test -p flexwork-tests --test e2e main_flow::`.

mod support;

mod access;
mod account_admin;
mod archive;
mod authorization;
mod bad_input;
mod checks;
mod console_api;
mod device_killed;
mod devices;
mod flagged_evidence;
mod invoices;
mod leak_scan;
mod main_flow;
mod money_simulation;
mod onboarding;
mod openapi;
mod payouts;
mod replication;
mod review_rules;
mod statements;
mod task_lifecycle;
mod two_factor;

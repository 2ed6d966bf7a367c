//! What every bench prints: the machine it ran on, and a table of figures set against their
//! references and targets. A missed target is reported, never a failure: these are
//! measurements.

#![allow(dead_code)]

use std::time::Duration;

/// Prints the bench name, the date, the CPU count and model, and the memory of the machine.
pub fn print_header(bench: &str) {
    let now = time::OffsetDateTime::now_utc();
    let date = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.to_string());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);

    println!("== {bench} ==");
    println!("date:    {date}");
    println!("nproc:   {cpus}");
    println!("cpu:     {}", proc_field("/proc/cpuinfo", "model name"));
    println!("memory:  {}", proc_field("/proc/meminfo", "MemTotal"));
    println!();
}

/// The value of the first `key: value` line of a /proc file, or "unknown".
fn proc_field(path: &str, key: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned())
}

/// One line of a result table: a figure, its reference, and the target it is held to.
#[derive(Debug)]
pub struct Row {
    pub figure: String,
    pub value: String,
    pub reference: String,
    pub ratio: String,
    pub target: String,
    pub met: Option<bool>,
}

impl Row {
    /// A row without a target: context for the rows that have one.
    pub fn info(figure: &str, value: String, reference: String) -> Self {
        Self {
            figure: figure.to_owned(),
            value,
            reference,
            ratio: String::new(),
            target: String::new(),
            met: None,
        }
    }
}

/// Prints rows as a markdown table, ready to paste into RESULTS.md.
pub fn print_table(rows: &[Row]) {
    println!("| figure | value | reference | ratio | target | met? |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for row in rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            row.figure, row.value, row.reference, row.ratio, row.target, met
        );
    }
    println!();
}

/// Formats a duration in the unit that reads best.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// The value at quantile `q` (0..=1) of sorted samples, by the nearest-rank method.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of unsorted values.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

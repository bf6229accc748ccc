//! The load test's report: per query and role, and overall, the transactions, throughput,
//! p50/p95/p99/max latency, empty results and errors by kind; then the cost of row-level
//! security (the same read as `service_role` and as `authenticated`, side by side). A short
//! table for people, or JSON for CI.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::{
    run::{Stats, Variant},
    workload::{Role, Workload},
};
use crate::{
    context::data,
    ui::{Align, Table},
};

/// What the run was.
#[derive(Debug)]
pub(super) struct Setup {
    pub environment: String,
    pub clients: u32,
    /// The local environment's caps, when they applied: clients and seconds.
    pub caps: Option<(u32, u64)>,
}

/// Latency figures of one histogram, in milliseconds.
#[derive(Debug)]
struct Figures {
    count: u64,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

fn figures(h: &Histogram<u64>) -> Figures {
    let ms = |micros: u64| micros as f64 / 1000.0;
    if h.is_empty() {
        return Figures { count: 0, p50: 0.0, p95: 0.0, p99: 0.0, max: 0.0 };
    }
    Figures {
        count: h.len(),
        p50: ms(h.value_at_quantile(0.50)),
        p95: ms(h.value_at_quantile(0.95)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    }
}

/// What the run measured: each variant's stats in the workload's order, and how long.
pub(super) struct Measured<'a> {
    pub workload: &'a Workload,
    pub variants: &'a [Variant],
    pub stats: &'a [Stats],
    pub elapsed: Duration,
}

/// Prints the report: a table on stdout, or JSON with `json`.
pub(super) fn print(setup: &Setup, measured: &Measured, json: bool) -> anyhow::Result<()> {
    let report = Report::new(measured);
    if json {
        return data(to_json(setup, measured, &report).to_string());
    }
    print_table(&report)?;
    print_errors(measured)?;
    print_rls(&report.rls)?;
    let mut footer = format!("{} client(s), {:.1} s on {}", setup.clients, report.seconds, setup.environment);
    if let Some((clients, secs)) = setup.caps {
        footer.push_str(&format!(" (limited: at most {clients} clients and {secs} s)"));
    }
    data(footer)
}

/// A line of the report.
struct Line {
    name: String,
    role: &'static str,
    transactions: u64,
    tps: f64,
    figures: Figures,
    empty: u64,
    errors: u64,
}

/// The report's figures: a line per variant, the overall line, the RLS pairs.
struct Report {
    lines: Vec<Line>,
    overall: Line,
    rls: Vec<(String, Figures, Figures)>,
    seconds: f64,
}

impl Report {
    fn new(measured: &Measured) -> Report {
        let Measured { workload, variants, stats, elapsed } = *measured;
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let line = |name: String, role: &'static str, s: &Stats| Line {
            name,
            role,
            transactions: s.transactions(),
            tps: s.transactions() as f64 / seconds,
            figures: figures(&s.latency),
            empty: s.empty,
            errors: s.errors(),
        };
        let lines: Vec<Line> = variants
            .iter()
            .zip(stats)
            .map(|(v, s)| line(workload.queries[v.query].name.clone(), v.role.name(), s))
            .collect();
        let mut all = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds");
        for s in stats {
            all.add(&s.latency).expect("histograms with the same bounds");
        }
        let transactions: u64 = stats.iter().map(Stats::transactions).sum();
        let overall = Line {
            name: "overall".to_string(),
            role: "",
            transactions,
            tps: transactions as f64 / seconds,
            figures: figures(&all),
            empty: stats.iter().map(|s| s.empty).sum(),
            errors: stats.iter().map(Stats::errors).sum(),
        };
        Report { lines, overall, rls: rls_pairs(workload, variants, stats), seconds }
    }
}

/// The table of every line and the overall one.
fn print_table(report: &Report) -> anyhow::Result<()> {
    let (left, right) = (Align::Left, Align::Right);
    let mut table = Table::new(&[
        ("query", left),
        ("role", left),
        ("tx", right),
        ("tx/s", right),
        ("p50 ms", right),
        ("p95 ms", right),
        ("p99 ms", right),
        ("max ms", right),
        ("empty", right),
        ("errors", right),
    ]);
    for l in report.lines.iter().chain([&report.overall]) {
        let f = &l.figures;
        table.row([
            l.name.clone(),
            l.role.to_string(),
            l.transactions.to_string(),
            format!("{:.1}", l.tps),
            format!("{:.2}", f.p50),
            format!("{:.2}", f.p95),
            format!("{:.2}", f.p99),
            format!("{:.2}", f.max),
            l.empty.to_string(),
            l.errors.to_string(),
        ]);
    }
    table.print_data()
}

/// Errors by kind, with the first message of each, when there were any.
fn print_errors(measured: &Measured) -> anyhow::Result<()> {
    let errors: Vec<String> = measured
        .variants
        .iter()
        .zip(measured.stats)
        .flat_map(|(v, s)| {
            s.errors.iter().map(move |(kind, (count, message))| {
                let name = &measured.workload.queries[v.query].name;
                format!("  {name} as {}: {count} x {kind}: {message}", v.role.name())
            })
        })
        .collect();
    if !errors.is_empty() {
        data("errors by kind (SQLSTATE):")?;
        errors.into_iter().try_for_each(data)?;
    }
    Ok(())
}

/// The cost of row-level security, when a query ran as both roles.
fn print_rls(rls: &[(String, Figures, Figures)]) -> anyhow::Result<()> {
    if rls.is_empty() {
        return Ok(());
    }
    data("row-level security cost (same query, service_role vs authenticated):")?;
    let mut table = Table::new(&[
        ("query", Align::Left),
        ("svc p50", Align::Right),
        ("auth p50", Align::Right),
        ("svc p95", Align::Right),
        ("auth p95", Align::Right),
        ("p95 +ms", Align::Right),
    ]);
    for (name, service, auth) in rls {
        let figures = [service.p50, auth.p50, service.p95, auth.p95, auth.p95 - service.p95];
        table.row(std::iter::once(name.to_string()).chain(figures.iter().map(|v| format!("{v:.2}"))));
    }
    table.lines().iter().try_for_each(|line| data(format!("  {line}")))
}

/// Queries measured as both roles: (name, service_role figures, authenticated figures).
fn rls_pairs(workload: &Workload, variants: &[Variant], stats: &[Stats]) -> Vec<(String, Figures, Figures)> {
    let find = |query: usize, role: Role| {
        variants.iter().position(|v| v.query == query && v.role == role).map(|i| figures(&stats[i].latency))
    };
    (0..workload.queries.len())
        .filter_map(|q| {
            let (service, auth) = (find(q, Role::ServiceRole)?, find(q, Role::Authenticated)?);
            Some((workload.queries[q].name.clone(), service, auth))
        })
        .collect()
}

fn figures_json(l: &Line) -> Value {
    let f = &l.figures;
    json!({
        "transactions": l.transactions, "tps": l.tps, "succeeded": f.count,
        "p50_ms": f.p50, "p95_ms": f.p95, "p99_ms": f.p99, "max_ms": f.max,
        "empty": l.empty, "errors": l.errors,
    })
}

fn to_json(setup: &Setup, measured: &Measured, report: &Report) -> Value {
    let Report { lines, overall, rls, seconds } = report;
    let queries: Vec<Value> = lines
        .iter()
        .zip(measured.variants.iter().zip(measured.stats))
        .map(|(l, (v, s))| {
            let mut value = figures_json(l);
            value["name"] = json!(measured.workload.queries[v.query].name);
            value["role"] = json!(l.role);
            value["errors_by_kind"] = s
                .errors
                .iter()
                .map(|(kind, (count, message))| (kind.clone(), json!({ "count": count, "message": message })))
                .collect::<serde_json::Map<_, _>>()
                .into();
            value
        })
        .collect();
    let rls: Vec<Value> = rls
        .iter()
        .map(|(name, service, auth)| {
            json!({
                "query": name,
                "service_role": { "p50_ms": service.p50, "p95_ms": service.p95 },
                "authenticated": { "p50_ms": auth.p50, "p95_ms": auth.p95 },
                "p95_overhead_ms": auth.p95 - service.p95,
            })
        })
        .collect();
    json!({
        "environment": setup.environment,
        "clients": setup.clients,
        "seconds": seconds,
        "limits": setup.caps.map(|(clients, secs)| json!({ "clients": clients, "seconds": secs })),
        "queries": queries,
        "overall": figures_json(overall),
        "rls": rls,
    })
}

//! The load generator: one thread and one guarded connection per client, each running
//! transactions back to back, the way Supabase's API (PostgREST) runs a request: `begin`,
//! the role and `request.jwt.claims` set for the transaction, the query, then `rollback`, so
//! that writes leave nothing behind. Latencies go into HDR histograms, errors are counted by
//! SQLSTATE, and a query that returns nothing is counted as empty, never as a fast success.
//!
//! Why not pgbench: a pgbench client aborts on the first error that is not a serialization
//! failure, so a query RLS denies would end the run instead of being counted; and drawing a
//! real member per transaction would put a lookup inside every measured transaction.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use app::guard::{WriteConnection, op};
use hdrhistogram::Histogram;
use postgres::{Statement, types::Type};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::sql;

use super::{
    params::Data,
    workload::{Role, Workload},
};

/// A query as one role: what the report has a line for.
#[derive(Debug, Clone)]
pub(super) struct Variant {
    pub query: usize,
    pub role: Role,
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    pub transactions: Option<u64>,
    pub deadline: Duration,
}

/// One variant's measurements.
#[derive(Debug)]
pub(super) struct Stats {
    /// Whole-transaction latency of successful transactions, in microseconds.
    pub latency: Histogram<u64>,
    /// Transactions whose query returned (or changed) no rows.
    pub empty: u64,
    pub rows: u64,
    /// SQLSTATE (or `connection`) -> count and the first message.
    pub errors: BTreeMap<String, (u64, String)>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            latency: Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds"),
            empty: 0,
            rows: 0,
            errors: BTreeMap::new(),
        }
    }

    pub(super) fn errors(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }

    pub(super) fn transactions(&self) -> u64 {
        self.latency.len() + self.errors()
    }

    fn merge(&mut self, other: Stats) {
        self.latency.add(&other.latency).expect("histograms with the same bounds");
        self.empty += other.empty;
        self.rows += other.rows;
        for (kind, (count, message)) in other.errors {
            let entry = self.errors.entry(kind).or_insert((0, message));
            entry.0 += count;
        }
    }
}

/// Shared between the clients and the progress line.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub done: AtomicU64,
    pub errors: AtomicU64,
    next: AtomicU64,
}

/// The weighted order in which transactions pick variants (smooth weighted round robin):
/// the mix is exact, and a run of at least one cycle executes every variant.
pub(super) fn schedule(workload: &Workload) -> (Vec<Variant>, Vec<usize>) {
    let variants: Vec<Variant> = workload
        .queries
        .iter()
        .enumerate()
        .flat_map(|(query, q)| q.roles.iter().map(move |&role| Variant { query, role }))
        .collect();
    let weights: Vec<i64> = variants.iter().map(|v| i64::from(workload.queries[v.query].weight)).collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; variants.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&weights) {
            *c += w;
        }
        let best = (0..current.len()).max_by_key(|&i| (current[i], std::cmp::Reverse(i))).unwrap_or(0);
        current[best] -= total;
        order.push(best);
    }
    (variants, order)
}

/// Every sequence's last value, by name. A rollback does not undo `nextval`, so column
/// defaults (`serial`, identity) and triggers of the rows a workload inserts move them for
/// good; comparing before and after says so instead of claiming the data is as it was.
pub(super) fn sequences(client: &mut postgres::Client) -> Result<BTreeMap<String, Option<i64>>> {
    let rows = client
        .query("select format('%I.%I', schemaname, sequencename), last_value from pg_catalog.pg_sequences", &[])
        .map_err(|err| anyhow::anyhow!("cannot read the target's sequences: {}", sql::server_message(&err)))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Refuses a workload whose queries call a function the target declares `VOLATILE`
/// (`effects::calls`): such a function may write where a rollback does not reach
/// (sequences, other connections, files), under any name.
pub(super) fn refuse_volatile(client: &mut postgres::Client, workload: &Workload, shown: &str) -> Result<()> {
    for query in &workload.queries {
        let names = super::effects::calls(&query.sql);
        if names.is_empty() {
            continue;
        }
        let volatile = client
            .query(
                "select distinct p.proname::text from pg_catalog.pg_proc p where pg_catalog.lower(p.proname) operator(pg_catalog.=) any($1::pg_catalog.text[]) and p.provolatile operator(pg_catalog.=) 'v' order by 1",
                &[&names],
            )
            .map_err(|err| anyhow::anyhow!("cannot read the target's functions: {}", sql::server_message(&err)))?;
        if let Some(row) = volatile.first() {
            let name: String = row.get(0);
            bail!(
                "{shown}: query {} calls `{name}`, which the target declares VOLATILE: it may change what a rollback does not undo\nhint: the load test runs only what a rollback undoes; call a STABLE or IMMUTABLE function, or load-test it on a throwaway database",
                query.name
            );
        }
    }
    Ok(())
}

/// The sequences that moved between two readings, as `name (before -> after)`.
pub(super) fn moved(before: &BTreeMap<String, Option<i64>>, after: &BTreeMap<String, Option<i64>>) -> Vec<String> {
    let shown = |v: Option<i64>| v.map_or_else(|| "unused".to_string(), |v| v.to_string());
    after
        .iter()
        .filter(|(name, value)| before.get(*name).is_some_and(|b| b != *value))
        .map(|(name, value)| format!("{name} ({} -> {})", shown(before[name]), shown(*value)))
        .collect()
}

/// What every client shares: the workload, its parameters, when to stop, the seed of the
/// clients' draws and the counters the progress line reads.
pub(super) struct Shared {
    pub workload: Arc<Workload>,
    pub data: Arc<Data>,
    pub bounds: Bounds,
    pub seed: u64,
    pub counters: Arc<Counters>,
}

/// Runs the clients until the bounds are reached; returns each variant's stats and the
/// elapsed time. A client whose connection dies stops; the others go on.
pub(super) fn run(
    connections: Vec<WriteConnection<op::LoadTesting>>,
    shared: &Shared,
    on_tick: impl Fn(&Counters, Duration),
) -> Result<(Vec<Stats>, Duration)> {
    let (variants, order) = schedule(&shared.workload);
    let (variants, order) = (Arc::new(variants), Arc::new(order));
    let started = Instant::now();
    let handles: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(index, conn)| {
            let client = Client {
                workload: shared.workload.clone(),
                data: shared.data.clone(),
                variants: variants.clone(),
                order: order.clone(),
                bounds: shared.bounds,
                started,
                rng: ChaCha8Rng::seed_from_u64(shared.seed.wrapping_mul(1_000_003).wrapping_add(index as u64)),
                counters: shared.counters.clone(),
            };
            std::thread::spawn(move || client.run(conn))
        })
        .collect();
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        on_tick(&shared.counters, started.elapsed());
    }
    let elapsed = started.elapsed();
    let mut totals: Vec<Stats> = (0..variants.len()).map(|_| Stats::new()).collect();
    for handle in handles {
        let Ok(result) = handle.join() else { bail!("a load-test client panicked") };
        for (total, stats) in totals.iter_mut().zip(result?) {
            total.merge(stats);
        }
    }
    Ok((totals, elapsed))
}

/// One client: its share of the run and its own stream of draws.
struct Client {
    workload: Arc<Workload>,
    data: Arc<Data>,
    variants: Arc<Vec<Variant>>,
    order: Arc<Vec<usize>>,
    bounds: Bounds,
    started: Instant,
    rng: ChaCha8Rng,
    counters: Arc<Counters>,
}

impl Client {
    /// Transactions back to back on this connection until the bounds are reached or the
    /// connection dies; each variant's stats.
    fn run(mut self, mut conn: WriteConnection<op::LoadTesting>) -> Result<Vec<Stats>> {
        let client = conn.client();
        let statements = prepare(client, &self.workload)?;
        let mut stats: Vec<Stats> = self.variants.iter().map(|_| Stats::new()).collect();
        loop {
            if self.started.elapsed() >= self.bounds.deadline {
                break;
            }
            let i = self.counters.next.fetch_add(1, Ordering::Relaxed);
            if self.bounds.transactions.is_some_and(|n| i >= n) {
                break;
            }
            let index = self.order[(i % self.order.len() as u64) as usize];
            self.transaction(client, &statements[self.variants[index].query], index, &mut stats[index]);
            self.counters.done.fetch_add(1, Ordering::Relaxed);
            if client.is_closed() {
                break;
            }
        }
        Ok(stats)
    }

    /// One transaction of one variant, as PostgREST runs a request, recorded in its stats.
    fn transaction(&mut self, client: &mut postgres::Client, statement: &Statement, index: usize, entry: &mut Stats) {
        let variant = &self.variants[index];
        let query = &self.workload.queries[variant.query];
        let draw = self.data.draw(query, variant.role, &mut self.rng);
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
            draw.values.iter().map(|v| v as &(dyn postgres::types::ToSql + Sync)).collect();
        let begin = format!(
            "begin; select set_config('role', {}, true), set_config('request.jwt.claims', {}, true)",
            sql::literal(variant.role.name()),
            sql::literal(&draw.claims)
        );
        let t0 = Instant::now();
        let outcome = client.batch_execute(&begin).and_then(|()| {
            if statement.columns().is_empty() {
                client.execute(statement, &params)
            } else {
                client.query(statement, &params).map(|rows| rows.len() as u64)
            }
        });
        let rolled_back = client.batch_execute("rollback");
        let micros = t0.elapsed().as_micros().max(1) as u64;
        match (outcome, rolled_back) {
            (Ok(rows), Ok(())) => {
                entry.latency.saturating_record(micros);
                entry.rows += rows;
                entry.empty += u64::from(rows == 0);
            }
            (Err(err), _) | (Ok(_), Err(err)) => {
                let (kind, message) = match err.code() {
                    Some(code) => (code.code().to_string(), sql::server_message(&err)),
                    None => ("connection".to_string(), format!("{err:#}")),
                };
                entry.errors.entry(kind).or_insert((0, message)).0 += 1;
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The session's statement timeout and every query prepared, its parameters as text.
fn prepare(client: &mut postgres::Client, workload: &Workload) -> Result<Vec<Statement>> {
    // A statement stuck behind a lock must not hang the run: it fails as 57014.
    client.batch_execute("set statement_timeout = '30s'")?;
    let mut statements = Vec::with_capacity(workload.queries.len());
    for query in &workload.queries {
        let types = vec![Type::TEXT; query.params.len()];
        statements.push(
            client.prepare_typed(&query.sql, &types).map_err(|err| {
                anyhow::anyhow!("query {} does not prepare: {}", query.name, sql::server_message(&err))
            })?,
        );
    }
    Ok(statements)
}

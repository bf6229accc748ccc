//! The seed into a build database (`app::guard::Beside`: a copy of the target that nobody
//! sees before it is swapped in), over several connections: no single transaction is
//! needed, so the work spreads over several backends. One connection empties the seeded
//! tables and sets their indexes and keys aside (`bulk.rs`, every key between them); then
//! each worker takes the next table (the biggest first), writes it through `COPY ... FREEZE`
//! in a transaction that empties it again (so its rows are written frozen, and skip the WAL
//! where `wal_level = minimal`), and at once rebuilds that table's indexes while the others
//! still load; the foreign keys are then added `NOT VALID` in one short transaction and
//! validated in parallel, one table per connection. Each table's rows are counted against
//! what was written by its worker, right after its indexes. The rows are the same as the in-place path's: each table is
//! still one stream from the same generator.

use std::{collections::VecDeque, sync::Mutex, time::Instant};

use anyhow::{Context, Result, bail};
use app::{
    Guard,
    guard::{WriteConnection, op},
};

use super::{
    Loaded, Options, Progress, Report, calendar, copy,
    tables::{Seeder, TABLES, Table},
};
use crate::bulk::{Deferred, Scope, Unit};

/// How many connections load and rebuild at once, unless `XTASK_SEED_CONNECTIONS` says:
/// one per core (at least two, at most eight). Measured on two cores, `large` profile:
/// 2 connections 340k rows/s, 3 connections 322k (more backends than cores only contend).
const CONNECTIONS: std::ops::RangeInclusive<usize> = 2..=8;
/// The biggest tables first, so that no big one starts last; the rest in load order.
const FIRST: [&str; 5] = [
    "public.daily_dentist_production",
    "public.daily_hygiene_production",
    "public.daily_location_financials",
    "public.goals",
    "public.dashboard_widgets",
];
/// For each index build and key validation (`SET LOCAL`, the transaction's own): sorts in
/// memory, no parallel workers (the connections already keep every core busy: a worker
/// per build cost ~0.5 CPU-second more on the `large` seed, 300k rows/s against 335k
/// without), and no wait for the WAL flush at each commit (a build database that a crash loses is dropped by the next command anyway).
/// A killed command's statements are cancelled by the server within 50 ms (servers from
/// 14 on), so the next command finds the build free to drop.
const BUILD_SETTINGS: &str = "set local maintenance_work_mem = '256MB'; set local max_parallel_maintenance_workers = 0; set local synchronous_commit = off;
  select set_config('client_connection_check_interval', '50', true) where current_setting('server_version_num')::int >= 140000;";

/// Seeds the build database behind `guard` (the tables must be empty unless `replace`).
pub(crate) fn load(guard: &Guard, options: &Options, replace: bool) -> Result<Report> {
    let seeder = Seeder {
        seed: options.seed,
        clinics: options.clinics,
        calendar: calendar::Calendar::ending_at_end(options.days),
    };
    let mut first = guard.write::<op::Seed>()?.connect()?;
    let env = first.environment();
    let deferred = {
        let mut tx = first.client().transaction()?;
        let emptied = super::prepare(&mut tx, env, replace)?;
        let deferred = Deferred::drop(&mut tx, &emptied, Scope::All)?;
        tx.commit().context("cannot empty the seeded tables of the build database")?;
        deferred
    };
    let units = deferred.units().to_vec();
    let connections = connections();
    let mut conns = vec![first];
    for _ in 1..connections {
        conns.push(guard.write::<op::Seed>()?.connect()?);
    }
    let progress = Progress::new();
    let queue = Mutex::new(jobs());
    let loaded = Mutex::new(Vec::new());
    let indexes: Vec<&Unit> = units.iter().filter(|u| u.validate.is_none()).collect();
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = conns
            .iter_mut()
            .map(|conn| {
                let (queue, loaded, indexes, seeder, progress) = (&queue, &loaded, &indexes, &seeder, &progress);
                scope.spawn(move || -> Result<()> {
                    while let Some(job) = next(queue) {
                        for table in job {
                            let done = load_table(conn, seeder, table, progress)?;
                            let own = indexes.iter().filter(|u| u.table == table.name).map(|u| u.create.as_str());
                            rebuild(conn, own)?;
                            verify(conn, &done)?;
                            loaded.lock().expect("no worker panicked").push(done);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().map_err(|_| anyhow::anyhow!("a seed worker panicked"))??;
        }
        Ok(())
    })?;
    let started = Instant::now();
    let bar = progress.step("indexes and foreign keys");
    let other = indexes.iter().filter(|u| !TABLES.iter().any(|t| t.name == u.table)).map(|u| u.create.as_str());
    rebuild(&mut conns[0], other)?;
    foreign_keys(&mut conns, &units)?;
    let mut tables = loaded.into_inner().expect("no worker panicked");
    tables.sort_by_key(|l| TABLES.iter().position(|t| t.name == l.table));
    bar.finish();
    Ok(Report { tables, rebuild_seconds: started.elapsed().as_secs_f64() })
}

fn connections() -> usize {
    std::env::var("XTASK_SEED_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=16).contains(n))
        .unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(*CONNECTIONS.start(), |n| n.get());
            cores.clamp(*CONNECTIONS.start(), *CONNECTIONS.end())
        })
}

/// The jobs, biggest first: each a list of tables one connection loads in order
/// (`auth.identities` references `auth.users`, whose key stays through the load).
fn jobs() -> VecDeque<Vec<&'static Table>> {
    let by_name = |name: &str| TABLES.iter().find(|t| t.name == name).expect("a seeded table");
    let mut jobs: VecDeque<Vec<&'static Table>> = FIRST.iter().map(|n| vec![by_name(n)]).collect();
    jobs.push_back(TABLES.iter().filter(|t| t.name.starts_with("auth.")).collect());
    for table in TABLES.iter().filter(|t| !t.name.starts_with("auth.") && !FIRST.contains(&t.name)) {
        jobs.push_back(vec![table]);
    }
    jobs
}

/// One table in its own transaction: emptied again there (it is empty already), so that
/// `COPY ... FREEZE` may write its rows frozen.
fn load_table(
    conn: &mut WriteConnection<op::Seed>,
    seeder: &Seeder,
    table: &'static Table,
    progress: &Progress,
) -> Result<Loaded> {
    let mut tx = conn.client().transaction()?;
    tx.batch_execute(BUILD_SETTINGS)?;
    if table.freeze {
        tx.batch_execute(&format!("truncate table {}", table.name))
            .with_context(|| format!("cannot empty {}", table.name))?;
    }
    let mut writer = copy::TableWriter::start(&mut tx, table.name, table.columns, table.freeze, progress.bar())?;
    (table.write)(seeder, &mut writer).with_context(|| format!("cannot load {}", table.name))?;
    let loaded = writer.finish(table.name)?;
    tx.commit().with_context(|| format!("cannot commit {}", table.name))?;
    Ok(loaded)
}

/// Runs index or key statements, each in a transaction of its own.
fn rebuild<'a>(conn: &mut WriteConnection<op::Seed>, statements: impl Iterator<Item = &'a str>) -> Result<()> {
    for statement in statements {
        let mut tx = conn.client().transaction()?;
        tx.batch_execute(BUILD_SETTINGS)?;
        tx.batch_execute(statement)
            .map_err(|err| anyhow::anyhow!("cannot restore {statement}: {}", crate::sql::server_message(&err)))?;
        tx.commit()?;
    }
    Ok(())
}

/// Adds the foreign keys `NOT VALID` in one transaction, then validates them, each
/// referencing table's on one connection, the tables spread over all of them.
fn foreign_keys(conns: &mut [WriteConnection<op::Seed>], units: &[Unit]) -> Result<()> {
    let keys: Vec<&Unit> = units.iter().filter(|u| u.validate.is_some()).collect();
    if keys.is_empty() {
        return Ok(());
    }
    let mut tx = conns[0].client().transaction()?;
    for key in &keys {
        tx.batch_execute(&key.create)
            .map_err(|err| anyhow::anyhow!("cannot add {}: {}", key.create, crate::sql::server_message(&err)))?;
    }
    tx.commit().context("cannot add the foreign keys")?;
    let mut tables: Vec<&str> = keys.iter().map(|k| k.table.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    let queue = Mutex::new(tables.into_iter().collect::<VecDeque<&str>>());
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = conns
            .iter_mut()
            .map(|conn| {
                let (queue, keys) = (&queue, &keys);
                scope.spawn(move || -> Result<()> {
                    while let Some(table) = next(queue) {
                        let own = keys.iter().filter(|k| k.table == table).filter_map(|k| k.validate.as_deref());
                        rebuild(conn, own)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().map_err(|_| anyhow::anyhow!("a seed worker panicked"))??;
        }
        Ok(())
    })
}

/// The table holds the rows written to it (the seeded logins, for `auth.users`), counted
/// by its worker once its indexes are back.
fn verify(conn: &mut WriteConnection<op::Seed>, loaded: &Loaded) -> Result<()> {
    let seeded_logins = format!("%.{}", super::model::EMAIL_DOMAIN);
    let probe = match loaded.table {
        "auth.users" => "select count(*) from auth.users where email like $1".to_string(),
        "auth.identities" => {
            "select count(*) from auth.identities i join auth.users u on u.id = i.user_id where u.email like $1"
                .to_string()
        }
        name => format!("select count(*) from {name} where $1::text is not null"),
    };
    let rows: i64 = conn.client().query_one(probe.as_str(), &[&seeded_logins])?.get(0);
    if rows as u64 != loaded.rows {
        bail!(
            "the build database's {} holds {rows} rows, not the {} written: not swapped in",
            loaded.table,
            loaded.rows
        );
    }
    Ok(())
}

/// The next job off a shared queue. A function of its own so that the lock is released
/// before the job runs: in `while let Some(job) = queue.lock()...pop_front()` the guard
/// would live through the loop's body and the workers would run one after another.
fn next<T>(queue: &Mutex<VecDeque<T>>) -> Option<T> {
    queue.lock().expect("no worker panicked").pop_front()
}

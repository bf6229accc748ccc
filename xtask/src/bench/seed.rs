//! `cargo xtask bench seed`: on a throwaway cluster, runs `xtask seed --profile large` and
//! measures rows/s over the whole command (process start to exit) and its peak memory; then, in the same run and on the same tables (emptied in a
//! transaction that is rolled back), times what the server alone does to write as many
//! rows with `INSERT ... SELECT`: the small tables from copies of the seeded rows, the daily
//! tables from `generate_series`. The ratio of the two rates says what generating and
//! streaming the rows costs over the inserts themselves.

use std::time::Instant;

use anyhow::{Context, Result};
use app::guard::op;
use postgres::Transaction;

use crate::bulk::{Deferred, Scope};
use crate::seed::{Loaded, Options, calendar::Calendar, model::EMAIL_DOMAIN};
use crate::{
    context::{data, status},
    flags::{Global, Profile},
    throwaway::Throwaway,
};

/// The targets the issue sets.
pub(crate) const TARGET_RATE: f64 = 500_000.0;
pub(crate) const TARGET_RATIO: f64 = 0.5;
pub(crate) const TARGET_MEMORY_MB: f64 = 200.0;

/// The daily tables, written server-side from `generate_series`; the rest are copied.
const GENERATED: [&str; 3] =
    ["public.daily_dentist_production", "public.daily_hygiene_production", "public.daily_location_financials"];

/// What `bench seed` measured, for `cargo xtask bench`'s summary.
pub(crate) struct Figures {
    pub rate: f64,
    pub ratio: f64,
    pub peak_mb: f64,
}

pub(crate) fn run(_global: &Global) -> Result<Figures> {
    status("starting a throwaway cluster");
    let throwaway = Throwaway::start()?;
    let guard = throwaway.guard()?;
    crate::migrate::up_all(&guard)?;
    let options = Options::new(Profile::Large, None, None, 1)?;
    status(format!("seeding the large profile: {} clinics, {} days", options.clinics, options.days));

    let busy_before = busy_seconds();
    let Command { seconds, rebuild_seconds, peak_mb } = seed_command(&throwaway)?;
    let busy = busy_before.zip(busy_seconds()).map(|(before, after)| after - before);
    // The seed swapped a new database in under the name: a guard pinned to it.
    let guard = throwaway.guard()?;
    let mut conn = guard.write::<op::Seed>()?.connect()?;
    let loaded = &loaded_rows(&mut conn)?;
    let rows: u64 = loaded.iter().map(|l| l.rows).sum();
    let rate = rows as f64 / seconds;

    status("writing as many rows server-side (INSERT ... SELECT, rolled back)");
    let calendar = Calendar::ending_at_end(options.days);
    let mut tx = conn.client().transaction()?;
    let server_seconds = server_side(&mut tx, loaded, &calendar)?;
    tx.rollback()?;
    let server_rate = rows as f64 / server_seconds;
    let ratio = rate / server_rate;

    data(format!(
        "seed large: {rows} rows in {seconds:.2} s, process start to exit (its last step, foreign keys and indexes of other tables, {rebuild_seconds:.2} s) = {} rows/s (target >= {}); server-side insert-select: {} rows/s in {server_seconds:.2} s; ratio {ratio:.2} (target >= {TARGET_RATIO}); peak memory {peak_mb:.0} MB (target < {TARGET_MEMORY_MB:.0} MB)",
        human(rate),
        human(TARGET_RATE),
        human(server_rate),
    ))?;
    if let Some(busy) = busy {
        // What the whole machine (server, command, anything else) kept busy meanwhile: with
        // every core busy the whole time, the command could not take less than this.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let floor = busy / cores as f64;
        data(format!(
            "the machine was busy {busy:.2} CPU-s during the seed ({:.0}% of {cores} cores over {seconds:.2} s): with every core busy throughout, {} rows/s at most",
            100.0 * busy / (cores as f64 * seconds),
            human(rows as f64 / floor.max(1e-6))
        ))?;
    }
    let in_place = in_place_seconds()?;
    data(format!(
        "side by side: built beside and swapped in {} rows/s ({seconds:.2} s); in place, one transaction {} rows/s ({in_place:.2} s)",
        human(rate),
        human(rows as f64 / in_place)
    ))?;
    let missed: Vec<&str> =
        [(rate < TARGET_RATE, "rows/s"), (ratio < TARGET_RATIO, "ratio"), (peak_mb >= TARGET_MEMORY_MB, "peak memory")]
            .into_iter()
            .filter_map(|(missed, name)| missed.then_some(name))
            .collect();
    data(if missed.is_empty() {
        "targets: all met".to_string()
    } else {
        format!("targets missed: {}", missed.join(", "))
    })?;
    Ok(Figures { rate, ratio, peak_mb })
}

/// What the seed command reported: its time from process start to exit, its index and key
/// step, its peak memory.
struct Command {
    seconds: f64,
    rebuild_seconds: f64,
    peak_mb: f64,
}

/// Runs `cargo xtask seed --profile large` into the throwaway, as people run it: process
/// start to commit and exit.
fn seed_command(throwaway: &Throwaway) -> Result<Command> {
    // The whole command, as people run it: process start to commit and exit.
    let started = Instant::now();
    let out = std::process::Command::new(crate::context::xtask_exe()?)
        .args(["seed", "--env", "test", "--profile", "large"])
        .env("DATABASE_URL", throwaway.url("postgres"))
        .env(crate::PEAK_MEMORY_VAR, "1")
        .output()
        .context("cannot run `xtask seed`")?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        anyhow::bail!("{}", stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or("the seed failed"));
    }
    for line in stderr.lines().filter(|l| !l.starts_with("peak-memory-kb:")) {
        status(line);
    }
    let figure = |prefix: &str| -> Result<f64> {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(prefix))
            .with_context(|| format!("the seed printed no `{prefix}`"))?;
        Ok(line.split_whitespace().last().and_then(|v| v.parse().ok()).unwrap_or_default())
    };
    let rebuild_seconds = figure("indexes and foreign keys")?;
    let peak_mb = figure("peak-memory-kb:")? / 1024.0;
    Ok(Command { seconds, rebuild_seconds, peak_mb })
}

/// Each seeded table's rows, counted.
fn loaded_rows(conn: &mut app::guard::WriteConnection<op::Seed>) -> Result<Vec<Loaded>> {
    let mut loaded = Vec::new();
    for table in &crate::seed::tables::TABLES {
        let rows: i64 = conn.client().query_one(&format!("select count(*) from {}", table.name), &[])?.get(0);
        loaded.push(Loaded { table: table.name, rows: rows as u64, seconds: 0.0 });
    }
    Ok(loaded)
}

/// The whole command on the path staging takes (`XTASK_SEED_IN_PLACE=1`: in place, one
/// transaction), on a throwaway cluster of its own, for the side-by-side figure.
fn in_place_seconds() -> Result<f64> {
    let throwaway = Throwaway::start()?;
    crate::migrate::up_all(&throwaway.guard()?)?;
    let started = Instant::now();
    let out = std::process::Command::new(crate::context::xtask_exe()?)
        .args(["seed", "--env", "test", "--profile", "large", "-q"])
        .env("DATABASE_URL", throwaway.url("postgres"))
        .env("XTASK_SEED_IN_PLACE", "1")
        .output()
        .context("cannot run `xtask seed`")?;
    if !out.status.success() {
        anyhow::bail!("the in-place seed failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Empties the seeded tables and writes the same number of rows into each, server-side;
/// returns the seconds the writes took (the set-up before is not timed).
fn server_side(tx: &mut Transaction, loaded: &[Loaded], calendar: &Calendar) -> Result<f64> {
    let copied: Vec<&Loaded> = loaded.iter().filter(|l| !GENERATED.contains(&l.table)).collect();
    stage(tx, &copied)?;
    let public: Vec<&str> = loaded.iter().map(|l| l.table).filter(|t| t.starts_with("public.")).collect();
    tx.batch_execute(&format!("truncate table {}", public.join(", ")))?;
    tx.execute("delete from auth.users where email like $1", &[&format!("%.{EMAIL_DOMAIN}")])?;
    // The same bulk-load path as the seed: indexes and foreign keys re-created at the end.
    let deferred = Deferred::drop(tx, &public, Scope::Unreferenced)?;
    let sizes = Sizes::read(tx, calendar)?;
    let inserts = copy_inserts(tx, &copied)?;

    let started = Instant::now();
    for insert in &inserts {
        tx.batch_execute(insert)?;
    }
    for l in loaded.iter().filter(|l| GENERATED.contains(&l.table)) {
        let n = l.rows;
        let written = tx
            .execute(&sizes.generated_insert(l), &[])
            .with_context(|| format!("server-side insert into {}", l.table))?;
        if written != n {
            anyhow::bail!("server-side insert into {} wrote {written} rows, not {n}", l.table);
        }
    }
    deferred.restore(tx)?;
    Ok(started.elapsed().as_secs_f64())
}

/// Copies of the tables that are copied back (`bench_<i>`), and the provider-office pairs
/// (numbered per kind) and offices, with their sheets, that the daily rows draw from.
fn stage(tx: &mut Transaction, copied: &[&Loaded]) -> Result<()> {
    for (i, l) in copied.iter().enumerate() {
        tx.batch_execute(&format!("create temp table bench_{i} as select * from {}", l.table))?;
    }
    tx.batch_execute(
        "create temp table bench_pairs as
           select (row_number() over (partition by p.provider_type order by pl.id) - 1)::bigint as n,
                  p.provider_type::text as kind, pl.clinic_id, pl.location_id, pl.provider_id, ds.id as source_id
           from public.provider_locations pl
           join public.providers p on p.id = pl.provider_id
           join public.data_sources ds on ds.location_id = pl.location_id and ds.source_type = 'google_sheets';
         create temp table bench_offices as
           select (row_number() over (order by l.id) - 1)::bigint as n, l.clinic_id, l.id as location_id, ds.id as source_id
           from public.locations l
           join public.data_sources ds on ds.location_id = l.id and ds.source_type = 'google_sheets';
         analyze bench_pairs; analyze bench_offices;",
    )?;
    Ok(())
}

/// One `INSERT ... SELECT` per copied table from its copy. Generated columns (auth.users'
/// `confirmed_at`) take no values: the others are named.
fn copy_inserts(tx: &mut Transaction, copied: &[&Loaded]) -> Result<Vec<String>> {
    let mut inserts = Vec::new();
    for (i, l) in copied.iter().enumerate() {
        let columns: String = tx
            .query_one(
                "select string_agg(quote_ident(attname), ', ' order by attnum) from pg_attribute
                 where attrelid = $1::text::regclass and attnum > 0 and not attisdropped and attgenerated = ''",
                &[&l.table],
            )?
            .get(0);
        inserts.push(format!("insert into {} ({columns}) select {columns} from bench_{i}", l.table));
    }
    Ok(inserts)
}

/// What the daily tables' rows are spread over: the first day (a quoted literal), and the dentist pairs,
/// hygienist pairs and offices (at least one each).
struct Sizes {
    first: String,
    dentists: i64,
    hygienists: i64,
    offices: i64,
}

impl Sizes {
    fn read(tx: &mut Transaction, calendar: &Calendar) -> Result<Sizes> {
        let first = crate::sql::literal(&String::from_utf8_lossy(&calendar.days[0].text));
        let count = |tx: &mut Transaction, sql: &str| -> Result<i64> { Ok(tx.query_one(sql, &[])?.get(0)) };
        let dentists = count(tx, "select count(*) from bench_pairs where kind = 'dentist'")?.max(1);
        let hygienists = count(tx, "select count(*) from bench_pairs where kind = 'hygienist'")?.max(1);
        let offices = count(tx, "select count(*) from bench_offices")?.max(1);
        Ok(Sizes { first, dentists, hygienists, offices })
    }

    /// The `INSERT ... SELECT ... generate_series` of as many rows as the seed wrote into
    /// this daily table.
    fn generated_insert(&self, l: &Loaded) -> String {
        let Sizes { first, dentists, hygienists, offices } = self;
        let n = l.rows;
        match l.table {
            "public.daily_dentist_production" => format!(
                "insert into public.daily_dentist_production (id, clinic_id, location_id, provider_id, date, production, verified_production, hours_worked, patients_seen, new_patients, data_source_id, notes, created_at, updated_at)
                 select gen_random_uuid(), b.clinic_id, b.location_id, b.provider_id, v.day, v.p, v.p, 8 - floor(random() * 5) * 0.25,
                        8 + floor(random() * 6)::int, floor(random() * 4)::int, b.source_id, null, v.at, v.at
                 from generate_series(0, {n} - 1) g
                 join bench_pairs b on b.kind = 'dentist' and b.n = g % {dentists},
                 lateral (select {first}::date + (g / {dentists})::int as day, round((2500 + random() * 3000)::numeric, 2) as p,
                                 ({first}::date + (g / {dentists})::int + time '22:00')::timestamptz as at) v"
            ),
            "public.daily_hygiene_production" => format!(
                "insert into public.daily_hygiene_production (id, clinic_id, location_id, provider_id, date, production, verified_production, hours_worked, patients_seen, data_source_id, notes, created_at, updated_at)
                 select gen_random_uuid(), b.clinic_id, b.location_id, b.provider_id, v.day, v.p, v.p, 8 - floor(random() * 4) * 0.25,
                        7 + floor(random() * 4)::int, b.source_id, null, v.at, v.at
                 from generate_series(0, {n} - 1) g
                 join bench_pairs b on b.kind = 'hygienist' and b.n = g % {hygienists},
                 lateral (select {first}::date + (g / {hygienists})::int as day, round((900 + random() * 700)::numeric, 2) as p,
                                 ({first}::date + (g / {hygienists})::int + time '22:00')::timestamptz as at) v"
            ),
            _ => format!(
                "insert into public.daily_location_financials (id, clinic_id, location_id, date, production, adjustments, write_offs, net_production, patient_income, insurance_income, collections, data_source_id, notes, created_at, updated_at)
                 select gen_random_uuid(), b.clinic_id, b.location_id, v.day, v.p, v.a, v.w, v.p - v.a - v.w, v.c * 0.35, v.c * 0.65, v.c,
                        b.source_id, null, v.at, v.at
                 from generate_series(0, {n} - 1) g
                 join bench_offices b on b.n = g % {offices},
                 lateral (select {first}::date + (g / {offices})::int as day, 12000.00 + g % 5000 as p, 240.00 as a, 1500.00 as w,
                                 9000.00 + g % 900 as c, ({first}::date + (g / {offices})::int + time '23:00')::timestamptz as at) v"
            ),
        }
    }
}

fn human(rate: f64) -> String {
    if rate >= 1e6 { format!("{:.2}M", rate / 1e6) } else { format!("{:.0}k", rate / 1e3) }
}

/// CPU-seconds every core of the machine spent busy since boot (Linux's `/proc/stat`:
/// user, nice, system, irq, softirq, steal), or `None` elsewhere.
fn busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat.lines().next()?.split_whitespace().skip(1).map_while(|f| f.parse().ok()).collect();
    let busy: f64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| fields.get(i)).sum();
    Some(busy / 100.0)
}

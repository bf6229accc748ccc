//! The executor's steps, inside the one target transaction: the target emptied with its
//! indexes and keys deferred, every table streamed masked from the snapshot, then keys and
//! indexes rebuilt, sequences advanced and everything verified before the caller commits.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{catalog, mask::Masker, pipe, plan::Plan, progress::Progress, verify};

mod carry;
mod mixed;
mod pair;
mod run;
mod shadow;
mod supabase;
mod swap;
mod unvalidated;
mod views;

pub(super) use run::{after_commit, execute};

/// Step 1 of the in-place path (triggers are off already, see [`run::execute`]: user
/// triggers and the foreign-key checks; every foreign key is verified before commit
/// instead, which also makes cycles load): the target's tables `emptied` (the plan's, with
/// GoTrue's per-user tables that reference them), and, as pg_restore does, indexes and
/// keys off until after the load, which builds each index once and validates each foreign
/// key with one join (the keys to small tables stay, and their rows are checked in one
/// query per table).
///
/// Tables the sync does not own that reference the emptied ones are handled as
/// [`supabase`] says: GoTrue's per-user tables are emptied in the one `TRUNCATE`, the
/// foreign keys of others (`storage.objects.owner`) are dropped until after the load.
pub(super) fn empty_target(tx: &mut postgres::Transaction, plan: &Plan, emptied: &[String]) -> Result<Emptied> {
    let synced: Vec<String> = plan.tables.iter().map(|t| t.qualified()).collect();
    let detached = supabase::detach(tx, emptied, &synced)?;
    if !emptied.is_empty() {
        tx.batch_execute(&format!("truncate {}", emptied.join(", "))).context("cannot empty the target's tables")?;
    }
    // A table owned by a role the login cannot act as (on Supabase, GoTrue's `auth.users`,
    // owned by supabase_auth_admin) keeps its indexes through the load: only its owner may
    // drop them, and the login's grants suffice to empty and fill it.
    let loaded = alterable(tx, &plan.loaded())?;
    let loaded: Vec<&str> = loaded.iter().map(String::as_str).collect();
    // Small tables keep the keys that foreign keys point at, and those foreign keys stay:
    // keeping a key on a few thousand rows costs little, and the rows are then checked by
    // one parallel query per referencing table, several times faster than re-adding each key.
    let small: Vec<String> =
        plan.tables.iter().filter(|t| t.estimate <= SMALL_TABLE_ROWS).map(|t| t.qualified()).collect();
    let small: Vec<&str> = small.iter().map(String::as_str).collect();
    let deferred = crate::bulk::Deferred::drop_keeping(tx, &loaded, crate::bulk::Scope::All, &small)?;
    Ok(Emptied { deferred, detached })
}

/// The tables of `tables` (qualified) whose owner the login can act as, in order.
fn alterable(tx: &mut postgres::Transaction, tables: &[String]) -> Result<Vec<String>> {
    let rows = tx
        .query(
            "select r.name from unnest($1::text[]) with ordinality as r(name, i)
             join pg_class c on c.oid = r.name::regclass
             where pg_has_role(c.relowner, 'USAGE') order by r.i",
            &[&tables],
        )
        .context("cannot read the owners of the loaded tables")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// What step 1 took away until step 3: the loaded tables' indexes and keys, and the
/// foreign keys of other tables to the emptied ones.
pub(super) struct Emptied {
    deferred: crate::bulk::Deferred,
    detached: Vec<OutsideKey>,
}

/// After the load of a copied `auth.users`: GoTrue's shape of `auth` on staging (see
/// [`supabase::stage_logins`]); `password` is `STAGE_SYNC_LOGIN_PASSWORD`, staging's only.
pub(super) fn stage_logins(tx: &mut postgres::Transaction, plan: &Plan, password: Option<&str>) -> Result<()> {
    if plan.copies_auth_users { supabase::stage_logins(tx, password) } else { Ok(()) }
}

/// Up to how many rows (the source's estimate) a referenced table keeps its key through
/// the load.
const SMALL_TABLE_ROWS: i64 = 50_000;

/// What the load copied: rows per table, and how long each took.
#[derive(Default)]
pub(super) struct Loaded {
    pub counts: Vec<(String, u64)>,
    pub timings: Vec<Timing>,
    pub leaks: pipe::LeakSets,
}

/// One copied table: its rows, how long it took, in which COPY format.
pub(super) struct Timing {
    pub table: String,
    pub rows: u64,
    pub took: Duration,
    pub format: &'static str,
}

/// Where step 2 writes a copied table (qualified, as the plan names it): into itself, its
/// shadow copy, or `None` for a table another part of the load copies.
pub(super) type Route<'a> = &'a dyn Fn(&str) -> Option<Dest>;

/// Where one copied table goes: the table written, and whether COPY may freeze its rows
/// (see [`pipe::Job::freeze`]).
pub(super) struct Dest {
    pub into: String,
    pub freeze: bool,
}

/// Step 2: every copied table `route` takes, in load order, streamed masked from the
/// snapshot, added to `loaded`.
pub(super) fn load(
    snapshot: &mut postgres::Transaction,
    tx: &mut postgres::Transaction,
    plan: &Plan,
    (masker, binary): (&Masker, bool),
    route: Route,
    loaded: &mut Loaded,
) -> Result<()> {
    let progress = Progress::new(&plan.tables, &plan.order, &plan.rules);
    pipe::set_text_format(snapshot, tx)?;
    for mut job in plan.jobs() {
        let table = job.table;
        let Some(dest) = route(&table.qualified()) else { continue };
        (job.into, job.freeze) = (Some(dest.into), dest.freeze);
        let bar = progress.table(table);
        let table_started = Instant::now();
        let copied =
            pipe::copy_table(snapshot, tx, job, &pipe::Settings { masker, bar: &bar, binary }, &mut loaded.leaks)?;
        let rows = copied.rows;
        bar.finish_and_clear();
        progress.overall.inc(rows.saturating_sub(bar.position()));
        loaded.counts.push((table.key(), rows));
        loaded.timings.push(Timing { table: table.key(), rows, took: table_started.elapsed(), format: copied.format });
    }
    progress.overall.finish_and_clear();
    Ok(())
}

/// Whether the two servers are one major version, so that they read each other's binary
/// COPY (the pipe's faster format; other versions are sent as text).
pub(super) fn same_major_version(
    source: &mut postgres::Transaction,
    target: &mut postgres::Transaction,
) -> Result<bool> {
    let query = "select current_setting('server_version_num')::int / 10000";
    let (a, b): (i32, i32) = (source.query_one(query, &[])?.get(0), target.query_one(query, &[])?.get(0));
    Ok(a == b)
}

/// Step 3: keys and indexes back (which validates them), sequences advanced, materialized
/// views refreshed, then every check; any failure leaves the target as it was.
pub(super) fn finish_and_verify(
    tx: &mut postgres::Transaction,
    plan: &Plan,
    loaded: &Loaded,
    emptied: Emptied,
) -> Result<Finished> {
    let started = Instant::now();
    emptied
        .deferred
        .restore(tx)
        .context("verification failed, nothing was changed: a key or index does not hold on the copy")?;
    supabase::reattach(tx, emptied.detached)?;
    let rebuilt = started.elapsed();
    verify::advance_sequences(tx, &plan.tables, &plan.rules)?;
    for view in catalog::materialized_views(tx, &plan.rules.schemas)? {
        tx.batch_execute(&format!("refresh materialized view {view}"))
            .with_context(|| format!("cannot refresh the materialized view {view}; the target is unchanged"))?;
    }
    let problems = verify::verify(tx, &plan.tables, &plan.rules, &loaded.counts, &loaded.leaks)?;
    if !problems.is_empty() {
        bail!("verification failed, nothing was changed: {}", problems.join("; "));
    }
    Ok(Finished { rebuilt, verified: started.elapsed() - rebuilt })
}

/// How long step 3's parts took.
pub(super) struct Finished {
    pub rebuilt: Duration,
    pub verified: Duration,
}

/// A foreign key from a table the sync keeps to one it replaces: dropped or detached before
/// the replaced table's rows go, added back after.
#[derive(Clone, Debug)]
pub(super) struct OutsideKey {
    child: String,
    name: String,
    definition: String,
    columns: Vec<String>,
    parent: String,
    parent_columns: Vec<String>,
}

impl OutsideKey {
    /// From a catalog row whose first six columns are the child (qualified), the key's
    /// name, its definition, its columns, the parent (qualified) and the parent's columns.
    fn from_row(row: &postgres::Row) -> OutsideKey {
        OutsideKey {
            child: row.get(0),
            name: row.get(1),
            definition: row.get(2),
            columns: row.get(3),
            parent: row.get(4),
            parent_columns: row.get(5),
        }
    }

    /// References from the child to rows of the parent that the sync removed become NULL,
    /// as before the key is added back.
    fn null_dangling(&self, tx: &mut postgres::Transaction) -> Result<()> {
        let quoted: Vec<String> = self.columns.iter().map(|c| crate::sql::ident(c)).collect();
        let set = quoted.iter().map(|c| format!("{c} = null")).collect::<Vec<_>>().join(", ");
        let present = quoted.iter().map(|c| format!("c.{c} is not null")).collect::<Vec<_>>().join(" and ");
        let joins = self
            .parent_columns
            .iter()
            .zip(&quoted)
            .map(|(p, c)| format!("p.{} = c.{c}", crate::sql::ident(p)))
            .collect::<Vec<_>>()
            .join(" and ");
        let cleared = tx
            .execute(
                &format!(
                    "update {child} c set {set} where {present} and not exists (select from {parent} p where {joins})",
                    child = self.child,
                    parent = self.parent
                ),
                &[],
            )
            .with_context(|| format!("cannot clear {}'s references to rows the sync removed", self.child))?;
        if cleared > 0 {
            crate::context::status(format!(
                "{}: {cleared} reference(s) to rows of {} that the sync replaced set to NULL ({})",
                self.child,
                self.parent,
                self.columns.join(", ")
            ));
        }
        Ok(())
    }
}

/// Test-only: with `var` set to a path, writes that file and waits (at most a minute)
/// until the test removes it.
fn pause_for_tests(var: &str) {
    let Some(path) = std::env::var_os(var).map(std::path::PathBuf::from) else { return };
    if std::fs::write(&path, b"paused\n").is_err() {
        return;
    }
    let until = Instant::now() + Duration::from_secs(60);
    while path.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

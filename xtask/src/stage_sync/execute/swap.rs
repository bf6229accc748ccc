//! The swap: the live tables replaced by their loaded, verified shadows in one short stretch
//! at the end of the sync's transaction. What hangs on the live tables and cannot be made
//! on the shadow beforehand is read first ([`Plan::read`], before anything changes) and
//! carried here: row-level security and policies (with their comments), replica identity,
//! publication membership, sequences' `OWNED BY`, other tables' policies that name them
//! (dropped first, made again last), the views and materialized views that name the
//! tables (they bind to the old table, so they are dropped and made again from
//! `pg_get_viewdef`, dependents in order, with owner, options, grants, comments and
//! indexes), and the foreign keys of other tables, added back `NOT VALID`, recorded, and
//! validated after the commit ([`after_commit`], [`unvalidated`]), which does not block readers.
//!
//! The locks are taken at once with a short `lock_timeout` and retried: the swap never
//! queues behind a long reader for long, so the readers queued behind it never wait much
//! longer than the swap itself.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use postgres::Transaction;

use super::{OutsideKey, pair::Pair, unvalidated, views::View};
use crate::{context::warn, sql};

/// The shadow tables, ready to load, and what the swap will carry.
pub(crate) struct Shadow {
    pub pairs: Vec<Pair>,
    /// Shadow schema (as printed) and the live schema it stands for (as printed).
    pub schemas: Vec<(String, String)>,
    pub swap: Plan,
    /// The shadows' foreign keys to the tables replaced in place, added after their load.
    pub later: super::carry::LaterKeys,
}

impl Shadow {
    /// Where a table (qualified, as the plan names it) is loaded: its shadow, if it has one.
    pub(crate) fn target_of(&self, live: &str) -> String {
        self.pairs.iter().find(|p| p.live == live).map_or_else(|| live.to_string(), |p| p.shadow.clone())
    }

    /// A message about the shadows in the live tables' names, as the server prints those
    /// (`public`'s without their schema).
    pub(crate) fn live_names(&self, message: &str) -> String {
        let mut message = message.to_string();
        for (shadow, live) in &self.schemas {
            let live = if live == "public" { String::new() } else { format!("{live}.") };
            message = message.replace(&format!("{shadow}."), &live);
        }
        message
    }

    /// The shadow of the table with this key (`schema.name`), if it has one.
    pub(crate) fn target_of_key(&self, key: &str) -> Option<String> {
        self.pairs.iter().find(|p| p.key == key).map(|p| p.shadow.clone())
    }
}

/// What the swap carries, read from the live catalog before anything changes.
pub(crate) struct Plan {
    tables: Vec<TableState>,
    views: Vec<View>,
    sequences: Vec<(String, String)>,
    foreign_keys: Vec<ForeignKey>,
    /// Policies of other tables that name a replaced table or a view made again (a
    /// `storage.objects` policy checking the app's membership table).
    outside_policies: Vec<OutsidePolicy>,
}

/// A policy of a table the sync does not replace: dropped before the tables are, made
/// again (with its comment) once the new tables and views are in place.
struct OutsidePolicy {
    table: String,
    drop: String,
    create: Vec<String>,
}

/// A replaced table's row-level security, policies, replica identity and publications.
struct TableState {
    live: String,
    rls: bool,
    force: bool,
    /// `d`, `f`, `n`, or `i` with the index.
    identity: (String, Option<String>),
    policies: Vec<String>,
    publications: Vec<String>,
}

/// A foreign key of a table that is not replaced, to one that is.
#[derive(Clone)]
pub(super) struct ForeignKey {
    key: OutsideKey,
    /// Validated before: validated again after the commit.
    valid: bool,
}

impl Plan {
    /// Reads it; `Ok(Err(why))` for what it cannot carry. `kept`: synced tables whose rows
    /// stay (their foreign keys to replaced tables keep today's in-place refusal).
    pub(crate) fn read(tx: &mut Transaction, pairs: &[Pair], kept: &[String]) -> Result<Result<Plan, String>> {
        let oids: Vec<u32> = pairs.iter().map(|p| p.oid).collect();
        let filtered = tx.query_opt(
            "select format('%s is in publication %s with a row filter or column list', r.prrelid::regclass, p.pubname)
             from pg_publication_rel r join pg_publication p on p.oid = r.prpubid
             where r.prrelid = any($1) and (to_jsonb(r) ->> 'prqual' is not null or to_jsonb(r) ->> 'prattrs' is not null)
             limit 1",
            &[&oids],
        )?;
        if let Some(row) = filtered {
            return Ok(Err(row.get(0)));
        }
        let mut tables = Vec::new();
        for pair in pairs {
            tables.push(table_state(tx, pair)?);
        }
        let views = match super::views::read(tx, &oids)? {
            Ok(views) => views,
            Err(reason) => return Ok(Err(reason)),
        };
        let sequences = tx
            .query(
                "select format('%I.%I', n.nspname, s.relname), format('%I', a.attname), d.refobjid
                 from pg_depend d join pg_class s on s.oid = d.objid and s.relkind = 'S'
                 join pg_namespace n on n.oid = s.relnamespace
                 join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                 where d.classid = 'pg_class'::regclass and d.refobjid = any($1) and d.deptype = 'a'",
                &[&oids],
            )?
            .iter()
            .map(|r| {
                let table: u32 = r.get(2);
                let pair = pairs.iter().find(|p| p.oid == table).expect("the table is replaced");
                (r.get::<_, String>(0), format!("{}.{}", pair.live, r.get::<_, String>(1)))
            })
            .collect();
        let foreign_keys = match foreign_keys(tx, &oids, kept)? {
            Ok(keys) => keys,
            Err(reason) => return Ok(Err(reason)),
        };
        let mut related = oids.clone();
        related.extend(views.iter().map(|v| v.oid));
        let outside_policies = outside_policies(tx, &oids, &related)?;
        Ok(Ok(Plan { tables, views, sequences, foreign_keys, outside_policies }))
    }

    /// The views to make again.
    pub(crate) fn view_oids(&self) -> Vec<u32> {
        self.views.iter().map(|v| v.oid).collect()
    }
}

fn table_state(tx: &mut Transaction, pair: &Pair) -> Result<TableState> {
    let row = tx.query_one(
        "select c.relrowsecurity, c.relforcerowsecurity, c.relreplident::text,
                (select i.indexrelid::regclass::text from pg_index i where i.indrelid = c.oid and i.indisreplident),
                (select i.relname::text from pg_index x join pg_class i on i.oid = x.indexrelid
                 where x.indrelid = c.oid and x.indisreplident)
         from pg_class c where c.oid = $1",
        &[&pair.oid],
    )?;
    let policies = tx
        .query(
            &format!("select {POLICY} from pg_policy p where p.polrelid = $1 order by p.polname"),
            &[&pair.oid, &pair.live],
        )?
        .iter()
        .flat_map(|r| [r.get::<_, Option<String>>(0), r.get(1)])
        .flatten()
        .collect();
    let publications = tx
        .query(
            "select quote_ident(p.pubname) from pg_publication_rel r join pg_publication p on p.oid = r.prpubid
             where r.prrelid = $1 order by 1",
            &[&pair.oid],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(TableState {
        live: pair.live.clone(),
        rls: row.get(0),
        force: row.get(1),
        identity: (row.get(2), row.get::<_, Option<String>>(4)),
        policies,
        publications,
    })
}

/// A policy `p` of the table named by the query's last column, as `create policy` and
/// `comment on policy` (NULL without a comment).
const POLICY: &str = "concat('create policy ', quote_ident(p.polname), ' on ', $2::text,
        case when p.polpermissive then ' as permissive' else ' as restrictive' end,
        ' for ', case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                               when 'd' then 'delete' else 'all' end,
        ' to ', (select string_agg(case when r = 0 then 'public' else quote_ident(g.rolname) end, ', ')
                 from unnest(p.polroles) r left join pg_roles g on g.oid = r),
        ' using (' || pg_get_expr(p.polqual, p.polrelid) || ')',
        ' with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')'),
    'comment on policy ' || quote_ident(p.polname) || ' on ' || $2::text || ' is '
        || quote_literal(obj_description(p.oid, 'pg_policy'))";

/// The policies of tables outside `tables` that depend on one of `related` (the replaced
/// tables and the views made again) or their row types. Those of a table whose owner the
/// login cannot act as are left to [`super::shadow`], which sends the sync in place.
fn outside_policies(tx: &mut Transaction, tables: &[u32], related: &[u32]) -> Result<Vec<OutsidePolicy>> {
    let rows = tx.query(
        &format!(
            "with p as (select p.*, p.polrelid::regclass::text as on_table from pg_policy p
                        join pg_class c on c.oid = p.polrelid
                        where not p.polrelid = any($1) and pg_has_role(c.relowner, 'USAGE')
                          and exists (select from pg_depend d where d.classid = 'pg_policy'::regclass
                            and d.objid = p.oid and ((d.refclassid = 'pg_class'::regclass and d.refobjid = any($2))
                              or (d.refclassid = 'pg_type'::regclass
                                  and d.refobjid in (select reltype from pg_class where oid = any($2))))))
             select {}, on_table, quote_ident(polname) from p order by on_table, polname",
            POLICY.replace("$2::text", "on_table")
        ),
        &[&tables, &related],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let table: String = r.get(2);
            OutsidePolicy {
                drop: format!("drop policy {} on {table}", r.get::<_, String>(3)),
                create: [r.get::<_, Option<String>>(0), r.get(1)].into_iter().flatten().collect(),
                table,
            }
        })
        .collect())
}

/// Foreign keys of tables that are not replaced, to ones that are. One of a synced table
/// whose rows stay, or over a NOT NULL column, is for the in-place path to refuse.
fn foreign_keys(tx: &mut Transaction, oids: &[u32], kept: &[String]) -> Result<Result<Vec<ForeignKey>, String>> {
    let rows = tx.query(
        "select format('%I.%I', n.nspname, c.relname), k.conname::text, pg_get_constraintdef(k.oid),
                array(select a.attname::text from unnest(k.conkey) with ordinality u(n, i)
                      join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.i),
                format('%I.%I', pn.nspname, p.relname),
                array(select a.attname::text from unnest(k.confkey) with ordinality u(n, i)
                      join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.i),
                k.convalidated,
                exists (select from unnest(k.conkey) u(n) join pg_attribute a
                        on a.attrelid = k.conrelid and a.attnum = u.n where a.attnotnull),
                k.conrelid in (select name::regclass from unnest($2::text[]) name)
         from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
         join pg_class p on p.oid = k.confrelid join pg_namespace pn on pn.oid = p.relnamespace
         where k.contype = 'f' and k.conparentid = 0 and k.confrelid = any($1) and not k.conrelid = any($1)
         order by 1, 2",
        &[&oids, &kept],
    )?;
    let mut keys = Vec::new();
    for row in &rows {
        let key = OutsideKey::from_row(row);
        if row.get::<_, bool>(7) || row.get::<_, bool>(8) {
            return Ok(Err(format!(
                "{} keeps its rows and references {} (foreign key {})",
                key.child, key.parent, key.name
            )));
        }
        keys.push(ForeignKey { key, valid: row.get(6) });
    }
    Ok(Ok(keys))
}

/// What [`after_commit`] does: validate the foreign keys added `NOT VALID`, analyze.
pub(crate) struct Swapped {
    foreign_keys: Vec<ForeignKey>,
    tables: Vec<String>,
    pub took: Duration,
    pub attempts: u32,
}

/// How long the swap waits for a lock before it lets the readers queued behind it go and
/// tries again, and for how long in all.
const LOCK_TIMEOUT: &str = "100ms";
const GIVE_UP: Duration = Duration::from_secs(120);

/// Swaps, retrying while another session holds a lock; `finish` runs last inside (the
/// sequences advanced and checked). Fails with the transaction unchanged by the swap.
pub(super) fn swap(
    tx: &mut Transaction,
    shadow: &Shadow,
    finish: &mut dyn FnMut(&mut Transaction) -> Result<()>,
) -> Result<Swapped> {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut savepoint = tx.savepoint("xtask_swap")?;
        let attempt = Instant::now();
        match swap_once(&mut savepoint, shadow).and_then(|()| finish(&mut savepoint)) {
            Ok(()) => {
                savepoint.batch_execute("set local lock_timeout = 0")?;
                savepoint.commit()?;
                return Ok(Swapped {
                    foreign_keys: shadow.swap.foreign_keys.clone(),
                    tables: shadow.pairs.iter().map(|p| p.live.clone()).collect(),
                    took: attempt.elapsed(),
                    attempts,
                });
            }
            Err(err) if lock_not_available(&err) && started.elapsed() < GIVE_UP => {
                drop(savepoint);
                std::thread::sleep(Duration::from_millis(50 * u64::from(attempts.min(10))));
            }
            Err(err) => {
                let waited = if lock_not_available(&err) {
                    format!(" (other sessions held locks on the tables for {} s)", started.elapsed().as_secs())
                } else {
                    String::new()
                };
                return Err(err.context(format!("cannot swap the synced tables in{waited}; the target is unchanged")));
            }
        }
    }
}

fn lock_not_available(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<postgres::Error>().and_then(|e| e.code())
            == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE)
    })
}

fn swap_once(tx: &mut Transaction, shadow: &Shadow) -> Result<()> {
    let plan = &shadow.swap;
    tx.batch_execute(&format!("set local lock_timeout = {}", sql::literal(LOCK_TIMEOUT)))?;
    let saved: String = tx.query_one("select current_setting('search_path')", &[])?.get(0);
    tx.query("select set_config('search_path', '', true)", &[])?;
    let mut locked: Vec<String> = shadow.pairs.iter().map(|p| p.live.clone()).collect();
    // The views are locked by their drop (a materialized view cannot be locked by name).
    for name in plan.foreign_keys.iter().map(|k| &k.key.child).chain(plan.outside_policies.iter().map(|p| &p.table)) {
        if !locked.contains(name) {
            locked.push(name.clone());
        }
    }
    tx.batch_execute(&format!("lock table {} in access exclusive mode", locked.join(", ")))?;
    for policy in &plan.outside_policies {
        tx.batch_execute(&policy.drop).with_context(|| format!("cannot drop to make again: {}", policy.drop))?;
    }
    for view in plan.views.iter().rev() {
        view.drop(tx)?;
    }
    for ForeignKey { key, .. } in &plan.foreign_keys {
        tx.batch_execute(&format!("alter table {} drop constraint {}", key.child, sql::ident(&key.name)))?;
    }
    // A sequence owned by a column goes with its table: loose until the new table is in
    // place (`OWNED BY` wants one schema), then owned by the new table's column.
    for (sequence, _) in &plan.sequences {
        tx.batch_execute(&format!("alter sequence {sequence} owned by none"))?;
    }
    let live: Vec<&str> = shadow.pairs.iter().map(|p| p.live.as_str()).collect();
    tx.batch_execute(&format!("drop table {}", live.join(", "))).context("cannot drop the replaced tables")?;
    for pair in &shadow.pairs {
        tx.batch_execute(&format!("alter table {} set schema {}", pair.shadow, sql::ident(&pair.schema)))?;
    }
    for (sequence, column) in &plan.sequences {
        tx.batch_execute(&format!("alter sequence {sequence} owned by {column}"))?;
    }
    for table in &plan.tables {
        table.carry(tx)?;
    }
    for view in &plan.views {
        view.create(tx)?;
    }
    for statement in plan.outside_policies.iter().flat_map(|p| &p.create) {
        tx.batch_execute(statement).with_context(|| format!("cannot make a policy again: {statement}"))?;
    }
    for key in &plan.foreign_keys {
        key.reattach(tx)?;
    }
    unvalidated::record(tx, &to_validate(&plan.foreign_keys))?;
    for (shadow, _) in &shadow.schemas {
        tx.batch_execute(&format!("drop schema {}", sql::ident(shadow)))?;
    }
    tx.query("select set_config('search_path', $1, true)", &[&saved])?;
    Ok(())
}

impl TableState {
    fn carry(&self, tx: &mut Transaction) -> Result<()> {
        let mut statements = Vec::new();
        if self.rls {
            statements.push(format!("alter table {} enable row level security", self.live));
        }
        if self.force {
            statements.push(format!("alter table {} force row level security", self.live));
        }
        match (self.identity.0.as_str(), &self.identity.1) {
            ("f", _) => statements.push(format!("alter table {} replica identity full", self.live)),
            ("n", _) => statements.push(format!("alter table {} replica identity nothing", self.live)),
            ("i", Some(index)) => {
                statements.push(format!("alter table {} replica identity using index {}", self.live, sql::ident(index)))
            }
            _ => {}
        }
        statements.extend(self.policies.iter().cloned());
        for publication in &self.publications {
            statements.push(format!("alter publication {publication} add table {}", self.live));
        }
        for statement in statements {
            tx.batch_execute(&statement).with_context(|| format!("cannot carry over to {}: {statement}", self.live))?;
        }
        Ok(())
    }
}

impl ForeignKey {
    /// References to rows that are gone become NULL (as the in-place sync does), then the
    /// key is added back without the scan, which [`after_commit`] runs.
    fn reattach(&self, tx: &mut Transaction) -> Result<()> {
        let key = &self.key;
        key.null_dangling(tx)?;
        let not_valid = if key.definition.ends_with("NOT VALID") { "" } else { " not valid" };
        tx.batch_execute(&format!(
            "alter table {} add constraint {} {}{not_valid}",
            key.child,
            sql::ident(&key.name),
            key.definition
        ))
        .with_context(|| format!("cannot add back the foreign key {} of {}", key.name, key.child))
    }
}

/// After the commit, outside any transaction: each foreign key added back `NOT VALID`
/// validated (see [`unvalidated`]), then the new tables analyzed. A failure here is a
/// warning: the data is committed and the keys hold for new rows.
pub(super) fn after_commit(client: &mut postgres::Client, swapped: &Swapped) {
    unvalidated::validate(client, &to_validate(&swapped.foreign_keys));
    if let Err(err) = client.batch_execute(&format!("analyze {}", swapped.tables.join(", "))) {
        warn(format!("cannot analyze the synced tables: {}", sql::server_message(&err)));
    }
}

/// The keys the swap adds back `NOT VALID` that were valid before: (table, name) each.
fn to_validate(keys: &[ForeignKey]) -> Vec<(String, String)> {
    keys.iter().filter(|k| k.valid).map(|k| (k.key.child.clone(), k.key.name.clone())).collect()
}

//! The shadow copy a sync loads into while readers keep the live tables: for each table the
//! sync replaces, a table of the same name in a schema of the tool's own
//! (`xtask_shadow_<n>`, commented [`MARK`]), made from the live table's catalog: columns,
//! defaults, identities, checks, keys and indexes (their names), triggers and their enabled
//! state, storage options, statistics targets, owner, grants (column grants too), comments.
//! What is carried only at the swap (policies, other tables' policies naming the tables,
//! publications, views, other tables' foreign keys, sequences' `OWNED BY`) is read here too ([`swap::Plan`]), before anything changes.
//!
//! The shadow is then compared with the live table, line by line of one catalog
//! description ([`carry::describe`]). Anything the shadow cannot carry (a partitioned
//! table, a rule, extended statistics, a function on the table's row type, a policy of
//! another table naming it whose owner the login cannot act as, ...) is found here, the shadow is rolled back, and the sync runs
//! in place as before, with one warning saying why: nothing is ever lost silently.
//!
//! Everything happens inside the sync's one transaction: a kill or a failure leaves no
//! shadow behind. So a committed schema named like a shadow is never one the tool left,
//! whatever its comment says (anyone may write that comment): it is never dropped, and the
//! shadow takes names that are free.

use anyhow::{Context, Result};
use postgres::Transaction;

use super::{
    carry,
    pair::Pair,
    swap::{self, Shadow},
};
use crate::sql;

/// The comment on every shadow schema, for whoever sees one mid-sync.
pub(super) const MARK: &str = "xtask-shadow";
const PREFIX: &str = "xtask_shadow_";

/// A prepared shadow, or why the sync runs in place.
pub(super) enum Prepared {
    Ready(Shadow),
    InPlace(String),
}

/// Builds the shadow of `replaced` (qualified names) inside a savepoint; `kept` are the
/// synced tables whose rows stay (`schema_only`), `in_place` the ones replaced in place
/// (the shadows' keys to them are added later, see [`carry::LaterKeys`]). On anything it
/// cannot carry, the savepoint is rolled back and the reason returned.
pub(super) fn prepare(
    tx: &mut Transaction,
    replaced: &[String],
    kept: &[String],
    in_place: &[String],
) -> Result<Prepared> {
    if replaced.is_empty() {
        return Ok(Prepared::InPlace("no table is replaced".into()));
    }
    let mut savepoint = tx.savepoint("xtask_shadow").context("cannot start the shadow's savepoint")?;
    let saved: String = savepoint.query_one("select current_setting('search_path')", &[])?.get(0);
    match build(&mut savepoint, replaced, kept, in_place) {
        Ok(Ok(shadow)) => {
            savepoint.query("select set_config('search_path', $1, true)", &[&saved])?;
            savepoint.commit()?;
            Ok(Prepared::Ready(shadow))
        }
        Ok(Err(reason)) => Ok(Prepared::InPlace(reason)),
        Err(err) => Ok(Prepared::InPlace(format!("{err:#}"))),
    }
}

/// The shadow, or why not; `search_path` is empty throughout, so the server prints every
/// name qualified.
fn build(
    tx: &mut Transaction,
    replaced: &[String],
    kept: &[String],
    in_place: &[String],
) -> Result<Result<Shadow, String>> {
    tx.query("select set_config('search_path', '', true)", &[])?;
    let parents = tx.query("select t::regclass::oid from unnest($1::text[]) t", &[&in_place])?;
    let mut later = carry::LaterKeys { parents: parents.iter().map(|r| r.get(0)).collect(), keys: Vec::new() };
    let pairs = pairs(tx, replaced)?;
    let oids: Vec<u32> = pairs.iter().map(|p| p.oid).collect();
    if let Some(reason) = unsupported_shape(tx, &oids)? {
        return Ok(Err(reason));
    }
    let swap = match swap::Plan::read(tx, &pairs, kept)? {
        Ok(plan) => plan,
        Err(reason) => return Ok(Err(reason)),
    };
    let mut related = oids.clone();
    related.extend(swap.view_oids());
    if let Some(reason) = unhandled_dependent(tx, &related)? {
        return Ok(Err(reason));
    }
    let schemas = create_schemas(tx, &pairs)?;
    for pair in &pairs {
        create_table(tx, pair)?;
    }
    for foreign in [false, true] {
        for pair in &pairs {
            carry::keys_and_indexes(tx, pair, &pairs, foreign, &mut later)?;
        }
    }
    for pair in &pairs {
        if let Err(reason) = carry::table_parts(tx, pair)? {
            return Ok(Err(reason));
        }
    }
    for pair in &pairs {
        let live = carry::describe(tx, pair.oid, &[])?;
        let shadow_oid: u32 = tx.query_one("select $1::text::regclass::oid", &[&pair.shadow])?.get(0);
        let shadow = carry::describe(tx, shadow_oid, &schemas)?;
        if let Some(line) = live.iter().find(|line| !shadow.contains(line) && !later.excuse(&pair.shown, line)) {
            return Ok(Err(format!("the shadow of {} would lack: {line}", pair.shown)));
        }
        if let Some(line) = shadow.iter().find(|line| !live.contains(line)) {
            return Ok(Err(format!("the shadow of {} would add: {line}", pair.shown)));
        }
    }
    Ok(Ok(Shadow { pairs, schemas, swap, later }))
}

/// The replaced tables with their shadow names: one shadow schema per live schema.
fn pairs(tx: &mut Transaction, replaced: &[String]) -> Result<Vec<Pair>> {
    let rows = tx.query(
        "select c.oid, n.nspname::text, c.relname::text, c.oid::regclass::text
         from unnest($1::text[]) with ordinality as r(name, i)
         join pg_class c on c.oid = r.name::regclass join pg_namespace n on n.oid = c.relnamespace
         order by r.i",
        &[&replaced],
    )?;
    let mut schemas: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    schemas.sort();
    schemas.dedup();
    // One free name per live schema: a schema already named like a shadow is somebody's.
    let taken: Vec<String> = tx
        .query("select nspname::text from pg_namespace where nspname like 'xtask\\_shadow\\_%'", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let free: Vec<String> =
        (0..).map(|n| format!("{PREFIX}{n}")).filter(|name| !taken.contains(name)).take(schemas.len()).collect();
    Ok(rows
        .iter()
        .map(|row| {
            let (schema, name): (String, String) = (row.get(1), row.get(2));
            let n = schemas.iter().position(|s| *s == schema).unwrap_or_default();
            Pair {
                oid: row.get(0),
                live: sql::qualified(&schema, &name),
                shadow: sql::qualified(&free[n], &name),
                key: format!("{schema}.{name}"),
                schema,
                shown: row.get(3),
            }
        })
        .collect())
}

/// A table shape the shadow does not carry, named. (A table whose owner the login cannot
/// act as never comes here: it is replaced in place, see [`super::mixed`].)
fn unsupported_shape(tx: &mut Transaction, oids: &[u32]) -> Result<Option<String>> {
    let row = tx.query_opt(
        "select format('%s is %s', c.oid::regclass, w.why) from pg_class c
         cross join lateral (values
           (case when c.relkind = 'p' or c.relispartition then 'partitioned' end),
           (case when exists (select from pg_inherits i where i.inhrelid = c.oid or i.inhparent = c.oid)
                 then 'in an inheritance tree' end),
           (case when c.reloftype <> 0 then 'a typed table' end),
           (case when c.relhasrules then 'given a rule (CREATE RULE)' end),
           (case when exists (select from pg_statistic_ext s where s.stxrelid = c.oid)
                 then 'given extended statistics' end),
           (case when exists (select from pg_depend d where d.classid = 'pg_class'::regclass
                              and d.objid = c.oid and d.deptype = 'e') then 'part of an extension' end),
           (case when exists (select from pg_seclabel l where l.classoid = 'pg_class'::regclass and l.objoid = c.oid)
                 then 'given a security label' end)) as w(why)
         where c.oid = any($1) and w.why is not null order by array_position($1, c.oid), 1 limit 1",
        &[&oids],
    )?;
    Ok(row.map(|r| r.get(0)))
}

/// An object that hangs on a replaced table (or a view on one, or their row types) and
/// that neither the shadow nor the swap carries: a function using the row type, a policy
/// of another table naming it whose owner the login cannot act as (the swap makes the
/// others again), a column of that type, a rule.
fn unhandled_dependent(tx: &mut Transaction, oids: &[u32]) -> Result<Option<String>> {
    let row = tx.query_opt(
        "with rel as (select unnest($1::oid[]) as oid),
         typ as (select c.reltype as oid from pg_class c where c.oid in (select oid from rel))
         select pg_describe_object(d.classid, d.objid, d.objsubid) || ' depends on '
                || pg_describe_object(d.refclassid, d.refobjid, 0)
         from pg_depend d
         where ((d.refclassid = 'pg_class'::regclass and d.refobjid in (select oid from rel))
             or (d.refclassid = 'pg_type'::regclass and d.refobjid in (select oid from typ)))
           and d.deptype not in ('a', 'i')
           and not (d.classid = 'pg_rewrite'::regclass and exists (select from pg_rewrite r where r.oid = d.objid
                    and r.rulename = '_RETURN' and r.ev_class in (select oid from rel)))
           and not (d.classid = 'pg_constraint'::regclass and exists (select from pg_constraint k
                    where k.oid = d.objid and (k.contype = 'f' or k.conrelid in (select oid from rel))))
           and not (d.classid = 'pg_trigger'::regclass and exists (select from pg_trigger t
                    where t.oid = d.objid and t.tgrelid in (select oid from rel)))
           and not (d.classid = 'pg_attrdef'::regclass and exists (select from pg_attrdef a
                    where a.oid = d.objid and a.adrelid in (select oid from rel)))
           and not (d.classid = 'pg_class'::regclass and exists (select from pg_index i
                    where i.indexrelid = d.objid and i.indrelid in (select oid from rel)))
           and not (d.classid = 'pg_policy'::regclass and exists (select from pg_policy p
                    join pg_class c on c.oid = p.polrelid where p.oid = d.objid
                    and (p.polrelid in (select oid from rel) or pg_has_role(c.relowner, 'USAGE'))))
         order by 1 limit 1",
        &[&oids],
    )?;
    Ok(row.map(|r| r.get(0)))
}

/// The shadow schemas, marked; returns (shadow, live) schema pairs as the server prints them.
fn create_schemas(tx: &mut Transaction, pairs: &[Pair]) -> Result<Vec<(String, String)>> {
    let mut schemas: Vec<(String, String)> = Vec::new();
    for pair in pairs {
        let shadow = pair.shadow.split('.').next().unwrap_or_default().trim_matches('"').to_string();
        if schemas.iter().any(|(s, _)| *s == shadow) {
            continue;
        }
        tx.batch_execute(&format!(
            "create schema {s}; comment on schema {s} is {mark}",
            s = sql::ident(&shadow),
            mark = sql::literal(MARK)
        ))
        .with_context(|| format!("cannot create the shadow schema {shadow}"))?;
        let live: String = tx.query_one("select quote_ident($1)", &[&pair.schema])?.get(0);
        schemas.push((shadow, live));
    }
    Ok(schemas)
}

/// The shadow table: the live table's columns with their types, collations, defaults,
/// identities, generated expressions, checks, storage, compression and comments.
fn create_table(tx: &mut Transaction, pair: &Pair) -> Result<()> {
    let unlogged: bool = tx.query_one("select relpersistence = 'u' from pg_class where oid = $1", &[&pair.oid])?.get(0);
    tx.batch_execute(&format!(
        "create {}table {} (like {} including defaults including generated including identity
           including constraints including storage including compression including comments)",
        if unlogged { "unlogged " } else { "" },
        pair.shadow,
        pair.live
    ))
    .with_context(|| format!("cannot create the shadow of {}", pair.shown))
}

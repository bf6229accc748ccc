//! What a shadow table takes from its live table, read from the catalog (`pg_get_*def`)
//! with `search_path` empty, so that every name in a definition is qualified and the one
//! naming the live table can be found exactly and pointed at the shadow: keys and indexes
//! (their names), foreign keys (to the other shadows when their parent is replaced too),
//! triggers with their enabled state and comments, storage options (of columns too:
//! `n_distinct`), statistics targets (of index columns too), the clustered index, owner, grants and column grants, comments.
//! [`describe`] is the comparison both are held to.

use anyhow::{Context, Result};
use postgres::Transaction;

use super::pair::Pair;
use crate::sql;

/// Replaces the one occurrence of `find` in `definition`, or says why it cannot.
fn retarget(definition: &str, find: &str, replace: &str) -> Result<String> {
    if definition.matches(find).count() != 1 {
        anyhow::bail!("cannot point `{definition}` at the shadow: `{find}` is not in it exactly once");
    }
    Ok(definition.replacen(find, replace, 1))
}

/// The shadows' foreign keys to tables replaced in place (`parents`): added only once those
/// hold their new rows, which checks the key against them. (Adding a key locks its parent
/// against writers until the commit, so not from the start of the sync.)
#[derive(Default)]
pub(crate) struct LaterKeys {
    pub parents: Vec<u32>,
    pub keys: Vec<LaterKey>,
}

/// One foreign key of a shadow to a table replaced in place, and how to add it.
pub(crate) struct LaterKey {
    /// The live table (as the server prints it), the key's name, the parent.
    pub table: String,
    pub name: String,
    pub parent: String,
    /// `constraint <name> `, as [`describe`] begins its line.
    described: String,
    pub statements: Vec<String>,
}

impl LaterKeys {
    /// The foreign key in `row` of [`keys_and_indexes`]'s query, to be added to `pair`'s
    /// shadow later, with its comment.
    fn push(&mut self, pair: &Pair, row: &postgres::Row) {
        let (name, definition, comment): (String, String, Option<String>) = (row.get(1), row.get(2), row.get(4));
        let mut statements =
            vec![format!("alter table {} add constraint {} {definition}", pair.shadow, sql::ident(&name))];
        statements.extend(comment.map(|c| {
            format!("comment on constraint {} on {} is {}", sql::ident(&name), pair.shadow, sql::literal(&c))
        }));
        let described = format!("constraint {} ", row.get::<_, String>(6));
        self.keys.push(LaterKey { table: pair.shown.clone(), name, parent: row.get(5), described, statements });
    }

    /// Whether `line` of the live table `shown`'s description is a key added later.
    pub(super) fn excuse(&self, shown: &str, line: &str) -> bool {
        self.keys.iter().any(|k| k.table == shown && line.starts_with(&k.described))
    }
}

/// Primary, unique and exclusion constraints and other indexes, or (`foreign`) foreign
/// keys (to the shadow of a replaced parent, else to the live parent; to a parent replaced
/// in place, into `later`), each with its name and comment.
pub(super) fn keys_and_indexes(
    tx: &mut Transaction,
    pair: &Pair,
    pairs: &[Pair],
    foreign: bool,
    later: &mut LaterKeys,
) -> Result<()> {
    let rows = tx.query(
        "select case k.contype when 'f' then 2 else 0 end, k.conname::text, pg_get_constraintdef(k.oid),
                k.confrelid, obj_description(k.oid, 'pg_constraint'), k.confrelid::regclass::text,
                quote_ident(k.conname)
         from pg_constraint k where k.conrelid = $1 and k.contype in ('p', 'u', 'x', 'f')
         union all
         select 1, c.relname::text, pg_get_indexdef(i.indexrelid), 0::oid, obj_description(i.indexrelid, 'pg_class'), '',
                quote_ident(c.relname)
         from pg_index i join pg_class c on c.oid = i.indexrelid
         where i.indrelid = $1 and not exists (select from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = $1)
         order by 1, 2",
        &[&pair.oid],
    )?;
    let mut statements = Vec::new();
    for row in &rows {
        let (phase, name, definition, parent): (i32, String, String, u32) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if (phase == 2) != foreign {
            continue;
        }
        let comment: Option<String> = row.get(4);
        if phase == 2 && later.parents.contains(&parent) {
            later.push(pair, row);
            continue;
        }
        let statement = match phase {
            1 => {
                let only = if definition.contains(&format!(" ON ONLY {} USING ", pair.shown)) { "ONLY " } else { "" };
                let find = format!(" ON {only}{} USING ", pair.shown);
                retarget(&definition, &find, &format!(" ON {only}{} USING ", pair.shadow))?
            }
            _ => {
                let mut definition = definition.clone();
                if let Some(parent) = pairs.iter().find(|p| phase == 2 && p.oid == parent) {
                    let shown: String = row.get(5);
                    definition = retarget(
                        &definition,
                        &format!("REFERENCES {shown}("),
                        &format!("REFERENCES {}(", parent.shadow),
                    )?;
                }
                format!("alter table {} add constraint {} {definition}", pair.shadow, sql::ident(&name))
            }
        };
        statements.push(statement);
        if let Some(comment) = comment {
            statements.push(match phase {
                1 => format!(
                    "comment on index {}.{} is {}",
                    pair.shadow.split('.').next().unwrap_or_default(),
                    sql::ident(&name),
                    sql::literal(&comment)
                ),
                _ => format!(
                    "comment on constraint {} on {} is {}",
                    sql::ident(&name),
                    pair.shadow,
                    sql::literal(&comment)
                ),
            });
        }
    }
    for statement in statements {
        tx.batch_execute(&statement)
            .with_context(|| format!("cannot give the shadow of {}: {statement}", pair.shown))?;
    }
    Ok(())
}

/// Triggers (and whether each fires), storage options, columns' statistics targets and
/// options, index settings, the table's comment, owner, then grants: of the table, its columns and its identities' sequences.
/// `Ok(Err(why))` when the owner cannot be given.
pub(super) fn table_parts(tx: &mut Transaction, pair: &Pair) -> Result<Result<(), String>> {
    let triggers = tx.query(
        "select t.tgname::text, pg_get_triggerdef(t.oid), t.tgenabled::text, obj_description(t.oid, 'pg_trigger')
         from pg_trigger t where t.tgrelid = $1 and not t.tgisinternal order by 1",
        &[&pair.oid],
    )?;
    for row in &triggers {
        let (name, definition, enabled): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let statement = retarget(&definition, &format!(" ON {} ", pair.shown), &format!(" ON {} ", pair.shadow))?;
        tx.batch_execute(&statement).with_context(|| format!("cannot copy the trigger {name} of {}", pair.shown))?;
        if let Some(comment) = row.get::<_, Option<String>>(3) {
            tx.batch_execute(&format!(
                "comment on trigger {} on {} is {}",
                sql::ident(&name),
                pair.shadow,
                sql::literal(&comment)
            ))?;
        }
        let state = match enabled.as_str() {
            "D" => "disable",
            "R" => "enable replica",
            "A" => "enable always",
            _ => continue,
        };
        tx.batch_execute(&format!("alter table {} {state} trigger {}", pair.shadow, sql::ident(&name)))?;
    }
    let row = tx.query_one(
        "select c.reloptions::text[], obj_description(c.oid, 'pg_class'), r.rolname::text
         from pg_class c join pg_roles r on r.oid = c.relowner where c.oid = $1",
        &[&pair.oid],
    )?;
    let (options, comment, owner): (Option<Vec<String>>, Option<String>, String) = (row.get(0), row.get(1), row.get(2));
    if let Some(options) = options.filter(|o| !o.is_empty()) {
        tx.batch_execute(&format!("alter table {} set ({})", pair.shadow, reloptions(&options)))?;
    }
    column_settings(tx, pair)?;
    let schema = pair.shadow.split('.').next().unwrap_or_default().to_string();
    for statement in index_settings(tx, pair.oid, &schema, &pair.shadow)? {
        tx.batch_execute(&statement)
            .with_context(|| format!("cannot give the shadow of {}: {statement}", pair.shown))?;
    }
    if let Some(comment) = comment {
        tx.batch_execute(&format!("comment on table {} is {}", pair.shadow, sql::literal(&comment)))?;
    }
    if let Err(err) = tx.batch_execute(&format!("alter table {} owner to {}", pair.shadow, sql::ident(&owner))) {
        return Ok(Err(format!(
            "cannot give the shadow of {} its owner {owner}: {}",
            pair.shown,
            sql::server_message(&err)
        )));
    }
    let shadow_oid: u32 = tx.query_one("select $1::text::regclass::oid", &[&pair.shadow])?.get(0);
    copy_grants(tx, pair.oid, shadow_oid, &pair.shadow)?;
    let sequences = tx.query(
        "select l.objid, s.objid, s.objid::regclass::text from pg_depend l join pg_depend s
           on s.refobjsubid = l.refobjsubid and s.deptype = 'i' and s.classid = 'pg_class'::regclass
         where l.refobjid = $1 and l.deptype = 'i' and l.classid = 'pg_class'::regclass and l.refobjsubid > 0
           and s.refobjid = $2",
        &[&pair.oid, &shadow_oid],
    )?;
    for row in sequences {
        copy_grants(tx, row.get(0), row.get(1), &row.get::<_, String>(2))?;
    }
    Ok(Ok(()))
}

/// Each column's statistics target and options (`n_distinct`, ...).
fn column_settings(tx: &mut Transaction, pair: &Pair) -> Result<()> {
    // `attstattarget` is an int4 up to PostgreSQL 16 and an int2 from 17: read as int4.
    for row in tx.query(
        "select attname::text, attstattarget::int4 from pg_attribute where attrelid = $1 and attnum > 0
         and not attisdropped and attstattarget >= 0",
        &[&pair.oid],
    )? {
        let (column, target): (String, i32) = (row.get(0), row.get(1));
        tx.batch_execute(&format!(
            "alter table {} alter column {} set statistics {target}",
            pair.shadow,
            sql::ident(&column)
        ))?;
    }
    for row in tx.query(
        "select attname::text, attoptions::text[] from pg_attribute where attrelid = $1 and attnum > 0
         and not attisdropped and attoptions is not null",
        &[&pair.oid],
    )? {
        let (column, options): (String, Vec<String>) = (row.get(0), row.get(1));
        tx.batch_execute(&format!(
            "alter table {} alter column {} set ({})",
            pair.shadow,
            sql::ident(&column),
            reloptions(&options)
        ))?;
    }
    Ok(())
}

/// Statistics targets of index columns (`alter index ... alter column 1 set statistics`,
/// on expression indexes) and the index the table is clustered on (`cluster on`), as
/// statements on `table` whose indexes are in `schema` (both quoted): the shadow takes
/// them from the live table (the load's index rebuild keeps them, see `bulk`).
pub(super) fn index_settings(tx: &mut Transaction, oid: u32, schema: &str, table: &str) -> Result<Vec<String>> {
    let rows = tx.query(
        "select c.relname::text, a.attnum::int4, a.attstattarget::int4, i.indisclustered from pg_index i
         join pg_class c on c.oid = i.indexrelid join pg_attribute a on a.attrelid = i.indexrelid
         where i.indrelid = $1 and (a.attstattarget >= 0 or (i.indisclustered and a.attnum = 1)) order by 1, 2",
        &[&oid],
    )?;
    let mut statements = Vec::new();
    for row in rows {
        let (index, column, target, clustered): (String, i32, i32, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if target >= 0 {
            statements.push(format!(
                "alter index {schema}.{} alter column {column} set statistics {target}",
                sql::ident(&index)
            ));
        }
        if clustered && column == 1 {
            statements.push(format!("alter table {table} cluster on {}", sql::ident(&index)));
        }
    }
    Ok(statements)
}

/// `k=v` storage options as `k = 'v'`, each part of a name quoted.
fn reloptions(options: &[String]) -> String {
    options
        .iter()
        .map(|option| {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            let key = key.split('.').map(sql::ident).collect::<Vec<_>>().join(".");
            format!("{key} = {}", sql::literal(value))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One privilege: on a column or the whole relation, to a role or `public` (`None`).
#[derive(Clone, Debug)]
pub(super) struct Grant {
    column: Option<String>,
    grantee: Option<String>,
    privilege: String,
    grantable: bool,
}

/// The privileges listed on a relation and its columns; `None` when the relation has its
/// owner's defaults (none ever granted or revoked, on it or on a column). A relation that
/// only its columns were granted on keeps no list of its own: its owner's defaults are
/// spelled out.
pub(super) fn grants_of(tx: &mut Transaction, oid: u32) -> Result<Option<Vec<Grant>>> {
    // In the order of the ACL arrays: `pg_dump` prints them so, and the sync compares the
    // synced schemas by that text.
    const ENTRIES: &str = "
        select null::text, case when x.grantee = 0 then null else r.rolname::text end, x.privilege_type,
               x.is_grantable, 0::int2 as column, x.n
        from pg_class c cross join aclexplode(coalesce(c.relacl,
               acldefault(case when c.relkind = 'S' then 's' else 'r' end::\"char\", c.relowner)))
             with ordinality x(grantor, grantee, privilege_type, is_grantable, n)
        left join pg_roles r on r.oid = x.grantee where c.oid = $1
        union all
        select a.attname::text, case when x.grantee = 0 then null else r.rolname::text end, x.privilege_type,
               x.is_grantable, a.attnum, x.n
        from pg_attribute a cross join aclexplode(a.attacl) with ordinality x(grantor, grantee, privilege_type, is_grantable, n)
        left join pg_roles r on r.oid = x.grantee
        where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
        order by 5, 6";
    let grants = tx
        .query(ENTRIES, &[&oid])?
        .iter()
        .map(|row| Grant { column: row.get(0), grantee: row.get(1), privilege: row.get(2), grantable: row.get(3) })
        .collect();
    let default: bool = tx
        .query_one(
            "select c.relacl is null and not exists (select from pg_attribute a where a.attrelid = c.oid
                    and a.attnum > 0 and a.attacl is not null)
             from pg_class c where c.oid = $1",
            &[&oid],
        )?
        .get(0);
    Ok(if default { None } else { Some(grants) })
}

/// Makes `to`'s privileges (relation and columns) exactly `grants`: whatever `to` was
/// given on creation (default privileges) is revoked first. `name` names `to`.
pub(super) fn set_grants(tx: &mut Transaction, to: u32, name: &str, grants: &Option<Vec<Grant>>) -> Result<()> {
    let kind: String = tx.query_one("select relkind::text from pg_class where oid = $1", &[&to])?.get(0);
    let on = if kind == "S" { format!("sequence {name}") } else { format!("table {name}") };
    let mut statements = Vec::new();
    for grant in grants_of(tx, to)?.unwrap_or_default() {
        let columns = grant.column.map(|c| format!(" ({})", sql::ident(&c))).unwrap_or_default();
        statements.push(format!("revoke all{columns} on {on} from {}", who(grant.grantee.as_deref())));
    }
    match grants {
        None => statements.push(format!("grant all on {on} to {}", owner_of(tx, to)?)),
        Some(grants) => {
            if !grants.iter().any(|g| g.column.is_none()) {
                statements.push(format!("revoke all on {on} from {}", owner_of(tx, to)?));
            }
            for grant in grants {
                let privilege = &grant.privilege;
                anyhow::ensure!(privilege.chars().all(|c| c.is_ascii_uppercase()), "unexpected privilege {privilege}");
                let columns = grant.column.as_ref().map(|c| format!(" ({})", sql::ident(c))).unwrap_or_default();
                let option = if grant.grantable { " with grant option" } else { "" };
                statements
                    .push(format!("grant {privilege}{columns} on {on} to {}{option}", who(grant.grantee.as_deref())));
            }
        }
    }
    for statement in statements {
        tx.batch_execute(&statement).with_context(|| format!("cannot copy the privileges: {statement}"))?;
    }
    Ok(())
}

/// Copies `from`'s privileges onto `to` (see [`set_grants`]).
pub(super) fn copy_grants(tx: &mut Transaction, from: u32, to: u32, name: &str) -> Result<()> {
    let grants = grants_of(tx, from)?;
    set_grants(tx, to, name, &grants)
}

fn owner_of(tx: &mut Transaction, oid: u32) -> Result<String> {
    let owner: String = tx.query_one("select relowner::regrole::text from pg_class where oid = $1", &[&oid])?.get(0);
    Ok(owner)
}

/// A grantee: a quoted role, or `public`.
fn who(grantee: Option<&str>) -> String {
    grantee.map_or_else(|| "public".to_string(), sql::ident)
}

/// One relation described line by line: columns (type, collation, NOT NULL, default,
/// identity and its sequence, generated, storage, statistics target, comment, grants),
/// constraints, indexes, triggers, owner, persistence, options, comment, grants (owner's
/// defaults spelled out). `schemas` (shadow, live) are renamed so the two compare.
pub(super) fn describe(tx: &mut Transaction, oid: u32, schemas: &[(String, String)]) -> Result<Vec<String>> {
    let rows = tx.query(DESCRIBE, &[&oid]).context("cannot describe a table")?;
    let mut lines: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut line: String = r.get(0);
            for (shadow, live) in schemas {
                line = line.replace(&format!("{shadow}."), &format!("{live}."));
            }
            line
        })
        .collect();
    lines.sort();
    Ok(lines)
}

const DESCRIBE: &str = "
select concat_ws(' ', 'column', quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
         'collate', a.attcollation::regcollation::text, 'not null', a.attnotnull, 'identity', a.attidentity,
         'generated', a.attgenerated, 'default', pg_get_expr(d.adbin, d.adrelid), 'storage', a.attstorage, 'options', a.attoptions::text,
         'compression', a.attcompression, 'statistics', a.attstattarget, 'comment', col_description(a.attrelid, a.attnum))
from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
union all
select concat_ws(' ', 'column grant', quote_ident(a.attname), x.grantee::regrole::text, x.privilege_type, x.is_grantable)
from pg_attribute a cross join aclexplode(a.attacl) x where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
union all
select concat_ws(' ', 'identity', quote_ident(a.attname), s.relname, format_type(q.seqtypid, null), q.seqstart,
         q.seqincrement, q.seqmax, q.seqmin, q.seqcache, q.seqcycle, 'owner', s.relowner::regrole::text,
         (select string_agg(concat_ws(' ', x.grantee::regrole::text, x.privilege_type, x.is_grantable), ', ' order by 1)
          from aclexplode(coalesce(s.relacl, acldefault('s', s.relowner))) x))
from pg_attribute a join pg_depend dep on dep.refobjid = a.attrelid and dep.refobjsubid = a.attnum and dep.deptype = 'i'
  and dep.classid = 'pg_class'::regclass
join pg_class s on s.oid = dep.objid join pg_sequence q on q.seqrelid = s.oid
where a.attrelid = $1
union all
select concat_ws(' ', 'constraint', quote_ident(k.conname), pg_get_constraintdef(k.oid), obj_description(k.oid, 'pg_constraint'))
from pg_constraint k where k.conrelid = $1
union all
select concat_ws(' ', 'index', pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class'),
         'clustered', i.indisclustered, 'statistics', (select string_agg(a.attnum || '=' || a.attstattarget, ',' order by a.attnum)
                                                      from pg_attribute a where a.attrelid = i.indexrelid))
from pg_index i where i.indrelid = $1
union all
select concat_ws(' ', 'trigger', pg_get_triggerdef(t.oid), t.tgenabled, obj_description(t.oid, 'pg_trigger'))
from pg_trigger t where t.tgrelid = $1 and not t.tgisinternal
union all
select concat_ws(' ', 'table owner', c.relowner::regrole::text, 'persistence', c.relpersistence, 'options',
         c.reloptions::text, 'comment', obj_description(c.oid, 'pg_class'))
from pg_class c where c.oid = $1
union all
select concat_ws(' ', 'grant', x.grantee::regrole::text, x.privilege_type, x.is_grantable)
from pg_class c cross join aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) x where c.oid = $1";

//! What the access matrix reads from the catalog: the tables it probes (every table in an
//! exposed schema, and `storage.objects`), the tables their foreign keys lead to (which get
//! probe rows too), and for each its columns, foreign keys, checks and row-level security.
//! A few queries for all tables at once.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use postgres::Transaction;

/// Schemas the API never exposes, whose tables are planted only when a foreign key leads
/// there (`auth.users`), and whose functions are the platform's, not the app's.
pub(super) const PLATFORM_SCHEMAS: &[&str] = &[
    "auth",
    "storage",
    "realtime",
    "extensions",
    "graphql",
    "graphql_public",
    "vault",
    "cron",
    "pgbouncer",
    "supabase_functions",
    "net",
    "app_meta",
    "information_schema",
];

#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub name: String,
    /// `pg_type.typcategory`, and the type's name (`uuid`, `jsonb`, `time`, ...).
    pub category: char,
    pub type_name: String,
    pub enum_labels: Vec<String>,
    pub not_null: bool,
    /// A default, an identity or a generated expression: the probe leaves it to the server.
    pub defaulted: bool,
    pub generated: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct ForeignKey {
    pub columns: Vec<String>,
    /// `schema.name` of the referenced table.
    pub to: String,
    pub to_columns: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Table {
    /// `schema.name`, and quoted.
    pub name: String,
    pub quoted: String,
    pub rls: bool,
    /// Probed (in an exposed schema), or only planted because a foreign key leads to it.
    pub exposed: bool,
    pub columns: Vec<Column>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Check constraints and unique indexes by name, with their columns; checks' string
    /// literals are tried as values.
    pub constraints: BTreeMap<String, Vec<String>>,
    pub check_literals: BTreeMap<String, Vec<String>>,
}

/// A view in an exposed schema, and whether it runs with its caller's rights.
#[derive(Clone, Debug)]
pub(super) struct View {
    pub name: String,
    pub invoker: bool,
}

/// The exposed tables (and what their keys reach) in load order: parents first.
pub(super) fn tables(tx: &mut Transaction, exposed: &[String]) -> Result<Vec<Table>> {
    let rows = tx.query(
        "select format('%s.%s', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname), c.relrowsecurity,
                n.nspname = any($1) or (n.nspname = 'storage' and c.relname = 'objects'), c.oid::int8,
                array(select format('%s.%s', fn.nspname, fc.relname) from pg_constraint k
                      join pg_class fc on fc.oid = k.confrelid join pg_namespace fn on fn.oid = fc.relnamespace
                      where k.conrelid = c.oid and k.contype = 'f')
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where c.relkind in ('r', 'p') and not c.relispartition
           and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_'
         order by 1",
        &[&exposed],
    )?;
    let all: BTreeMap<String, (String, bool, bool, i64, Vec<String>)> =
        rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))).collect();
    // Exposed tables, then every table a foreign key leads to from them.
    let mut wanted: BTreeSet<String> = all.iter().filter(|(_, t)| t.2).map(|(name, _)| name.clone()).collect();
    let mut queue: Vec<String> = wanted.iter().cloned().collect();
    while let Some(name) = queue.pop() {
        for parent in &all[&name].4 {
            if all.contains_key(parent) && wanted.insert(parent.clone()) {
                queue.push(parent.clone());
            }
        }
    }
    let oids: Vec<i64> = wanted.iter().map(|name| all[name].3).collect();
    let mut tables: BTreeMap<i64, Table> = wanted
        .iter()
        .map(|name| {
            let (quoted, rls, exposed, oid, _) = all[name].clone();
            let table = Table {
                name: name.clone(),
                quoted,
                rls,
                exposed,
                columns: Vec::new(),
                foreign_keys: Vec::new(),
                constraints: BTreeMap::new(),
                check_literals: BTreeMap::new(),
            };
            (oid, table)
        })
        .collect();
    columns(tx, &oids, &mut tables)?;
    constraints(tx, &oids, &mut tables)?;
    Ok(load_order(tables.into_values().collect()))
}

fn columns(tx: &mut Transaction, oids: &[i64], tables: &mut BTreeMap<i64, Table>) -> Result<()> {
    let rows = tx.query(
        "select a.attrelid::int8, a.attname::text, t.typcategory::text, coalesce(e.typname, t.typname)::text,
                array(select l.enumlabel::text from pg_enum l where l.enumtypid = t.oid order by l.enumsortorder),
                a.attnotnull, a.atthasdef or a.attidentity <> '' or a.attgenerated <> '', a.attgenerated <> ''
         from pg_attribute a join pg_type t on t.oid = a.atttypid
         left join pg_type e on e.oid = t.typelem and t.typcategory = 'A'
         where a.attrelid = any($1::int8[]::oid[]) and a.attnum > 0 and not a.attisdropped
         order by a.attrelid, a.attnum",
        &[&oids],
    )?;
    for r in rows {
        let category: String = r.get(2);
        tables.get_mut(&r.get::<_, i64>(0)).expect("asked for").columns.push(Column {
            name: r.get(1),
            category: category.chars().next().unwrap_or('X'),
            type_name: r.get(3),
            enum_labels: r.get(4),
            not_null: r.get(5),
            defaulted: r.get(6),
            generated: r.get(7),
        });
    }
    Ok(())
}

fn constraints(tx: &mut Transaction, oids: &[i64], tables: &mut BTreeMap<i64, Table>) -> Result<()> {
    let rows = tx.query(
        "select k.conrelid::int8, k.conname::text, k.contype::text,
                array(select a.attname::text from unnest(k.conkey) with ordinality u(n, i)
                      join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.i),
                coalesce(format('%s.%s', fn.nspname, fc.relname), ''),
                array(select a.attname::text from unnest(k.confkey) with ordinality u(n, i)
                      join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.i),
                pg_get_constraintdef(k.oid)
         from pg_constraint k
         left join pg_class fc on fc.oid = k.confrelid left join pg_namespace fn on fn.oid = fc.relnamespace
         where k.conrelid = any($1::int8[]::oid[]) and k.contype in ('f', 'c')
         union all
         select i.indrelid::int8, ic.relname::text, 'u',
                array(select a.attname::text from unnest(i.indkey::int2[]) u(n)
                      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.n),
                '', '{}'::text[], ''
         from pg_index i join pg_class ic on ic.oid = i.indexrelid
         where i.indrelid = any($1::int8[]::oid[]) and i.indisunique
         order by 1, 2",
        &[&oids],
    )?;
    for r in rows {
        let table = tables.get_mut(&r.get::<_, i64>(0)).expect("asked for");
        let (name, kind, columns): (String, String, Vec<String>) = (r.get(1), r.get(2), r.get(3));
        match kind.as_str() {
            "f" => table.foreign_keys.push(ForeignKey { columns, to: r.get(4), to_columns: r.get(5) }),
            "c" => {
                let definition: String = r.get(6);
                for column in &columns {
                    table.check_literals.entry(column.clone()).or_default().extend(string_literals(&definition));
                }
                table.constraints.insert(name, columns);
            }
            _ => {
                table.constraints.insert(name, columns);
            }
        }
    }
    Ok(())
}

/// The string literals of a check's definition (`'sum'`, `'avg'`): values it may accept.
pub(super) fn string_literals(definition: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = definition;
    while let Some(start) = rest.find('\'') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('\'') else { break };
        let literal = &after[..end];
        if !literal.is_empty() && !found.iter().any(|f| f == literal) {
            found.push(literal.to_string());
        }
        rest = &after[end + 1..];
    }
    found
}

/// Parents before children; a cycle is broken where it is met (its nullable keys stay empty).
fn load_order(tables: Vec<Table>) -> Vec<Table> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut ordered = Vec::new();
    let mut pending = tables;
    while !pending.is_empty() {
        let ready: Vec<usize> = (0..pending.len())
            .filter(|&i| {
                pending[i].foreign_keys.iter().all(|fk| {
                    fk.to == pending[i].name || done.contains(&fk.to) || !pending.iter().any(|t| t.name == fk.to)
                })
            })
            .collect();
        let take = if ready.is_empty() { vec![0] } else { ready };
        for i in take.into_iter().rev() {
            let table = pending.remove(i);
            done.insert(table.name.clone());
            ordered.push(table);
        }
    }
    ordered
}

/// Views in the exposed schemas, with `security_invoker` or not.
pub(super) fn views(tx: &mut Transaction, exposed: &[String]) -> Result<Vec<View>> {
    let rows = tx.query(
        "select format('%s.%s', n.nspname, c.relname),
                coalesce(array['security_invoker=true', 'security_invoker=on', 'security_invoker=1'] && c.reloptions, false)
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where c.relkind in ('v', 'm') and n.nspname = any($1)
         order by 1",
        &[&exposed],
    )?;
    Ok(rows.iter().map(|r| View { name: r.get(0), invoker: r.get(1) }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_of_a_check() {
        assert_eq!(
            string_literals("CHECK ((aggregation = ANY (ARRAY['sum'::text, 'avg'::text, 'sum'::text])))"),
            ["sum", "avg"]
        );
        assert!(string_literals("CHECK ((btrim(name) <> ''::text))").is_empty());
    }
}

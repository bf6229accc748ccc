//! What the access matrix reads rather than probes: the API roles' privileges on each table
//! (an operation without one is `err:42501` unprobed), column privileges that differ from
//! the table's, `security definer` functions a caller may execute and the tables they name,
//! views and whether they run with the caller's rights, and the policies' cost: `auth.uid()`
//! evaluated per row, and lookups into columns no index starts with.

use std::collections::BTreeMap;

use anyhow::Result;
use postgres::Transaction;

use super::{
    catalog::{PLATFORM_SCHEMAS, Table, View},
    personas::Persona,
    snapshot::Line,
};

/// The roles the API sets; column lines name these.
const API_ROLES: [&str; 3] = ["anon", "authenticated", "service_role"];

/// Per role and table (or view): select, insert, update, delete held on it or on a column.
pub(super) type Privileges = BTreeMap<(String, String), [bool; 4]>;

pub(super) fn privileges(tx: &mut Transaction, names: &[String]) -> Result<Privileges> {
    let rows = tx.query(
        "select r.rolname::text, format('%s.%s', n.nspname, c.relname),
                array[has_table_privilege(r.oid, c.oid, 'SELECT') or has_any_column_privilege(r.oid, c.oid, 'SELECT'),
                      has_table_privilege(r.oid, c.oid, 'INSERT') or has_any_column_privilege(r.oid, c.oid, 'INSERT'),
                      has_table_privilege(r.oid, c.oid, 'UPDATE') or has_any_column_privilege(r.oid, c.oid, 'UPDATE'),
                      has_table_privilege(r.oid, c.oid, 'DELETE')]
         from pg_class c join pg_namespace n on n.oid = c.relnamespace cross join pg_roles r
         where format('%s.%s', n.nspname, c.relname) = any($1) and r.rolname = any($2)
           and has_schema_privilege(r.oid, n.oid, 'USAGE')",
        &[&names, &API_ROLES.as_slice()],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let held: Vec<bool> = r.get(2);
            ((r.get(0), r.get(1)), [held[0], held[1], held[2], held[3]])
        })
        .collect())
}

/// Columns an API role holds a privilege on that it does not hold on the whole table.
pub(super) fn columns(tx: &mut Transaction, names: &[String]) -> Result<Vec<Line>> {
    let rows = tx.query(
        "select format('%s.%s.%s', n.nspname, c.relname, a.attname), r.rolname::text,
                string_agg(lower(x.privilege_type) || '=granted', ' ' order by x.privilege_type)
         from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
         cross join lateral aclexplode(a.attacl) x join pg_roles r on r.oid = x.grantee
         where format('%s.%s', n.nspname, c.relname) = any($1) and r.rolname = any($2)
           and not has_table_privilege(r.oid, c.oid, x.privilege_type)
         group by 1, 2 order by 1, 2",
        &[&names, &API_ROLES.as_slice()],
    )?;
    Ok(rows.iter().map(|r| line(r.get(0), r.get(1), &r.get::<_, String>(2))).collect())
}

fn line(object: String, persona: String, cells: &str) -> Line {
    let cells = cells.split(' ').filter_map(|c| c.split_once('=')).map(|(a, b)| (a.into(), b.into())).collect();
    Line { object, persona, cells }
}

/// `security definer` functions `anon` or `authenticated` may execute (outside the
/// platform's schemas), and the probed tables their body names.
pub(super) fn definers(tx: &mut Transaction, tables: &[Table]) -> Result<Vec<Line>> {
    let rows = tx.query(
        "select format('%s.%s(%s)', n.nspname, p.proname, replace(oidvectortypes(p.proargtypes), ', ', ',')),
                r.rolname::text, p.prosrc
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace cross join pg_roles r
         where p.prosecdef and r.rolname in ('anon', 'authenticated')
           and n.nspname <> all($1) and n.nspname !~ '^pg_'
           and has_function_privilege(r.oid, p.oid, 'EXECUTE') and has_schema_privilege(r.oid, n.oid, 'USAGE')
         order by 1, 2",
        &[&PLATFORM_SCHEMAS],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let body: String = r.get(2);
            let mut reach: Vec<&str> =
                tables.iter().filter(|t| names(&body, &t.name)).map(|t| t.name.as_str()).collect();
            reach.sort();
            let reach = if reach.is_empty() { "-".to_string() } else { reach.join(",") };
            Line {
                object: r.get(0),
                persona: r.get(1),
                cells: vec![("execute".into(), "definer".into()), ("reaches".into(), reach)],
            }
        })
        .collect())
}

/// Whether `body` names `table` (`schema.name`), qualified or (for `public`) bare.
fn names(body: &str, table: &str) -> bool {
    let lower = body.to_lowercase();
    let word = |needle: &str| {
        lower.match_indices(needle).any(|(i, _)| {
            let before = lower[..i].chars().next_back();
            let after = lower[i + needle.len()..].chars().next();
            let edge = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '"'));
            edge(before) && edge(after)
        })
    };
    word(table) || table.strip_prefix("public.").is_some_and(word)
}

/// Each persona's line for each view: `bypass` when it may select and the view runs with its
/// owner's rights (row-level security of the tables below is the owner's, not the caller's).
pub(super) fn views(views: &[View], personas: &[Persona], privileges: &Privileges) -> Vec<Line> {
    let mut lines = Vec::new();
    for view in views {
        for persona in personas {
            let may = privileges.get(&(persona.role.to_string(), view.name.clone())).is_some_and(|p| p[0]);
            let token = match (may, view.invoker) {
                (false, _) => "err:42501",
                (true, true) => "invoker",
                (true, false) => "bypass",
            };
            lines.push(Line {
                object: view.name.clone(),
                persona: persona.name.clone(),
                cells: vec![("select".into(), token.into())],
            });
        }
    }
    lines
}

/// Policies that cost per row what could be paid once per query.
pub(super) fn cost(tx: &mut Transaction, names: &[String]) -> Result<Vec<String>> {
    let mut findings = Vec::new();
    let policies = tx.query(
        "select format('%s.%s', schemaname, tablename), policyname::text, coalesce(qual, '') || ' ' || coalesce(with_check, '')
         from pg_policies where format('%s.%s', schemaname, tablename) = any($1) order by 1, 2",
        &[&names],
    )?;
    for r in policies {
        let (table, policy, text): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        for call in ["auth.uid()", "auth.jwt()", "auth.role()"] {
            if text.match_indices(call).any(|(i, _)| !text[..i].ends_with("SELECT ")) {
                findings.push(format!(
                    "cost: {table}: policy {policy} calls {call} once per row; write (select {call}) to call it once per query"
                ));
            }
        }
    }
    let lookups = tx.query(
        "select distinct format('%s.%s', n.nspname, pc.relname), p.polname::text, format('%s.%s', rn.nspname, rc.relname),
                a.attname::text
         from pg_policy p join pg_class pc on pc.oid = p.polrelid join pg_namespace n on n.oid = pc.relnamespace
         join pg_depend d on d.classid = 'pg_policy'::regclass and d.objid = p.oid
              and d.refclassid = 'pg_class'::regclass and d.refobjsubid > 0 and d.refobjid <> p.polrelid
         join pg_class rc on rc.oid = d.refobjid join pg_namespace rn on rn.oid = rc.relnamespace
         join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
         where format('%s.%s', n.nspname, pc.relname) = any($1)
           and not exists (select 1 from pg_index i where i.indrelid = d.refobjid and i.indkey[0] = d.refobjsubid)
         order by 1, 2, 3, 4",
        &[&names],
    )?;
    for r in lookups {
        let (table, policy, other, column): (String, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        findings.push(format!(
            "cost: {table}: policy {policy} looks up {other}.{column}, which no index starts with: every row scans {other}"
        ));
    }
    Ok(findings)
}

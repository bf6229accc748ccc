//! Checks on the target, inside the load's transaction, before it commits: counts, foreign
//! keys, unique indexes, sequences, and that no masked source value reached the target.

use std::io::{BufRead, BufReader};

use anyhow::Result;
use postgres::Transaction;

use super::{
    catalog::{Table, quote},
    mask,
    pipe::LeakSets,
    rules::{Mode, Rule, Rules},
};

/// Every problem found; empty means the copy is right.
pub fn verify(
    tx: &mut Transaction,
    tables: &[Table],
    rules: &Rules,
    counts: &[(String, u64)],
    leaks: &LeakSets,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (key, expected) in counts {
        let table = tables.iter().find(|t| &t.key() == key).expect("counted tables exist");
        let actual: i64 = tx.query_one(&format!("select count(*) from {}", table.qualified()), &[])?.get(0);
        if actual as u64 != *expected {
            problems.push(format!("{key}: {actual} rows in the target, {expected} in the snapshot"));
        }
    }
    // Foreign keys, also to tables outside the sync (auth.users). Those from or to a copied
    // table were added back after the load, which validated them; the others (a
    // schema-only table's) are checked by query, as the load ran with triggers off.
    let copied = |key: &str| rules.tables.get(key).is_some_and(|r| r.mode == Mode::Copy);
    for table in tables {
        for fk in &table.foreign_keys {
            if copied(&table.key()) || copied(&fk.target) {
                continue;
            }
            let not_null =
                fk.columns.iter().map(|c| format!("c.{} is not null", quote(c))).collect::<Vec<_>>().join(" and ");
            let joins = fk
                .columns
                .iter()
                .zip(&fk.target_columns)
                .map(|(c, p)| format!("p.{} = c.{}", quote(p), quote(c)))
                .collect::<Vec<_>>()
                .join(" and ");
            let sql = format!(
                "select count(*) from {} c where {not_null} and not exists (select 1 from {} p where {joins})",
                table.qualified(),
                fk.target_qualified
            );
            let orphans: i64 = tx.query_one(&sql, &[])?.get(0);
            if orphans > 0 {
                problems.push(format!(
                    "{}: {orphans} row(s) break foreign key {} to {}",
                    table.key(),
                    fk.name,
                    fk.target
                ));
            }
        }
    }
    // Unique and primary keys are enforced by their indexes during COPY; an index that is
    // not valid would not have been.
    let schemas = &rules.schemas;
    let invalid: Vec<String> = tx
        .query(
            "select i.indexrelid::regclass::text from pg_index i join pg_class c on c.oid = i.indrelid
             join pg_namespace n on n.oid = c.relnamespace
             where i.indisunique and not (i.indisvalid and i.indisready) and n.nspname = any($1)",
            &[schemas],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for index in invalid {
        problems.push(format!("unique index {index} is not valid, so uniqueness is unproven"));
    }
    // Sequences: past the highest id of their column.
    for table in tables.iter().filter(|t| rules.tables[&t.key()].mode != Mode::SchemaOnly) {
        for column in table.copied_columns() {
            let row = tx.query_one("select pg_get_serial_sequence($1, $2)", &[&table.qualified(), &column.name])?;
            let Some(sequence) = row.get::<_, Option<String>>(0) else { continue };
            let sql = format!(
                "select (select last_value from {sequence}) < coalesce(max({col}), 0)
                   or ((select not is_called from {sequence}) and max({col}) is not null and (select last_value from {sequence}) <= max({col}))
                 from {}",
                table.qualified(),
                col = quote(&column.name)
            );
            let behind: bool = tx.query_one(&sql, &[])?.get(0);
            if behind {
                problems.push(format!(
                    "{}.{}: sequence {sequence} is not past the highest value",
                    table.key(),
                    column.name
                ));
            }
        }
    }
    problems.extend(leak_check(tx, tables, rules, leaks)?);
    Ok(problems)
}

/// Sets every sequence of a synced column past the column's highest value.
pub fn advance_sequences(tx: &mut Transaction, tables: &[Table], rules: &Rules) -> Result<()> {
    for table in tables.iter().filter(|t| rules.tables[&t.key()].mode != Mode::SchemaOnly) {
        for column in table.copied_columns() {
            let row = tx.query_one("select pg_get_serial_sequence($1, $2)", &[&table.qualified(), &column.name])?;
            let Some(sequence) = row.get::<_, Option<String>>(0) else { continue };
            let sql = format!(
                "select setval($1::text::regclass, coalesce(max({col}), 1), max({col}) is not null) from {}",
                table.qualified(),
                col = quote(&column.name)
            );
            tx.query(&sql, &[&sequence])?;
        }
    }
    Ok(())
}

/// Reads the masked columns back from the target: none of their values may be one the
/// source had in that column (or under that JSON key).
fn leak_check(tx: &mut Transaction, tables: &[Table], rules: &Rules, leaks: &LeakSets) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for table in tables {
        let table_rules = &rules.tables[&table.key()];
        let masked: Vec<&(String, Rule)> = table_rules.columns.iter().filter(|(_, rule)| rule.is_masking()).collect();
        if table_rules.mode != Mode::Copy || masked.is_empty() {
            continue;
        }
        let list = masked.iter().map(|(c, _)| quote(c)).collect::<Vec<_>>().join(", ");
        let reader = tx.copy_out(&format!("COPY (SELECT {list} FROM {}) TO STDOUT", table.qualified()))?;
        let mut leaked = vec![0u64; masked.len()];
        for line in BufReader::with_capacity(1 << 16, reader).split(b'\n') {
            let line = line?;
            for (i, field) in line.split(|b| *b == b'\t').enumerate() {
                if field == b"\\N" {
                    continue;
                }
                let value = mask::unescape(field);
                let (name, rule) = masked[i];
                let column = format!("{}.{name}", table.key());
                let hit = match rule {
                    Rule::Json(keys) => json_values(&value)
                        .iter()
                        .any(|(key, v)| keys.contains_key(key) && leaks.contains(&format!("{column}->{key}"), v)),
                    _ => leaks.contains(&column, &value),
                };
                leaked[i] += u64::from(hit);
            }
        }
        for (i, count) in leaked.into_iter().enumerate().filter(|(_, n)| *n > 0) {
            problems.push(format!(
                "{}.{}: {count} value(s) in the target equal a source value (leak)",
                table.key(),
                masked[i].0
            ));
        }
    }
    Ok(problems)
}

fn json_values(text: &str) -> Vec<(String, String)> {
    fn walk(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    if let serde_json::Value::String(s) = inner {
                        out.push((key.clone(), s.clone()));
                    }
                    walk(inner, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::from_str(text) {
        walk(&value, &mut out);
    }
    out
}

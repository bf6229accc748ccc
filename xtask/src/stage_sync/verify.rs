//! Checks on the target, inside the load's transaction, before it commits: counts, foreign
//! keys, unique indexes, sequences, and that no masked source value reached the target.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};

use anyhow::{Context, Result};
use postgres::Transaction;

use super::{
    batches,
    catalog::{Category, Table},
    mask,
    pipe::{LeakSets, Values},
    rules::{Mode, Rule, Rules},
};
use crate::sql;

/// Every problem found; empty means the copy is right.
pub(super) fn verify(
    tx: &mut Transaction,
    tables: &[Table],
    rules: &Rules,
    counts: &[(String, u64)],
    leaks: &LeakSets,
) -> Result<Vec<String>> {
    let mut problems = verify_in(tx, tables, rules, counts, leaks, &|_, qualified| qualified.to_string())?;
    problems.extend(check_sequences(tx, tables, rules)?);
    Ok(problems)
}

/// Where a table's rows are: from its key (`schema.name`) and quoted name, the name to read.
pub(super) type Into<'a> = &'a dyn Fn(&str, &str) -> String;

/// [`verify`]'s checks but the sequences', on the tables `into` names (a shadow copy).
pub(super) fn verify_in(
    tx: &mut Transaction,
    tables: &[Table],
    rules: &Rules,
    counts: &[(String, u64)],
    leaks: &LeakSets,
    into: Into,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (key, expected) in counts {
        let table = tables.iter().find(|t| &t.key() == key).expect("counted tables exist");
        let actual: i64 = tx.query_one(&format!("select count(*) from {}", into(key, &table.qualified())), &[])?.get(0);
        if actual as u64 != *expected {
            problems.push(format!("{key}: {actual} rows in the target, {expected} in the snapshot"));
        }
    }
    problems.extend(orphans(tx, tables, rules, into)?);
    problems.extend(invalid_unique_indexes(tx, &rules.schemas)?);
    problems.extend(leak_check(tx, tables, rules, leaks, into)?);
    Ok(problems)
}

/// Foreign keys, also to tables outside the sync (auth.users). Those from or to a copied
/// table were added back after the load, which validated them; the others (a schema-only
/// table's) are checked by query, as the load ran with triggers off.
fn orphans(tx: &mut Transaction, tables: &[Table], rules: &Rules, into: Into) -> Result<Vec<String>> {
    let copied = |key: &str| rules.tables.get(key).is_some_and(|r| r.mode == Mode::Copy);
    let mut problems = Vec::new();
    for table in tables {
        for fk in &table.foreign_keys {
            if copied(&table.key()) || copied(&fk.target) {
                continue;
            }
            let not_null =
                fk.columns.iter().map(|c| format!("c.{} is not null", sql::ident(c))).collect::<Vec<_>>().join(" and ");
            let joins = fk
                .columns
                .iter()
                .zip(&fk.target_columns)
                .map(|(c, p)| format!("p.{} = c.{}", sql::ident(p), sql::ident(c)))
                .collect::<Vec<_>>()
                .join(" and ");
            let sql = format!(
                "select count(*) from {} c where {not_null} and not exists (select 1 from {} p where {joins})",
                into(&table.key(), &table.qualified()),
                into(&fk.target, &fk.target_qualified)
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
    Ok(problems)
}

/// Unique and primary keys are enforced by their indexes during COPY; an index that is not
/// valid would not have been.
fn invalid_unique_indexes(tx: &mut Transaction, schemas: &[String]) -> Result<Vec<String>> {
    let invalid: Vec<String> = tx
        .query(
            "select i.indexrelid::regclass::text from pg_index i join pg_class c on c.oid = i.indrelid
             join pg_namespace n on n.oid = c.relnamespace
             where i.indisunique and not (i.indisvalid and i.indisready) and n.nspname = any($1)",
            &[&schemas],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(invalid
        .into_iter()
        .map(|index| format!("unique index {index} is not valid, so uniqueness is unproven"))
        .collect())
}

/// Sequences: the next value of each is past the highest value of every column it feeds,
/// so the target's next insert cannot collide with a copied row.
pub(super) fn check_sequences(tx: &mut Transaction, tables: &[Table], rules: &Rules) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (sequence, columns) in sequence_uses(tables, rules) {
        let highest = highest_sql(&columns);
        let row = tx.query_one(
            &format!(
                "select case when s.is_called then s.last_value + p.seqincrement else s.last_value end, p.seqincrement, {highest}
                 from {sequence} s, pg_sequence p where p.seqrelid = $1::text::regclass"
            ),
            &[&sequence],
        )?;
        let (next, increment, max): (i64, i64, Option<i64>) = (row.get(0), row.get(1), row.get(2));
        if increment > 0 && max.is_some_and(|max| next <= max) {
            let fed = columns.iter().map(|(t, c)| format!("{t}.{c}")).collect::<Vec<_>>().join(", ");
            problems.push(format!(
                "sequence {sequence} would next give {next}, but {fed} already hold(s) {}",
                max.unwrap_or_default()
            ));
        }
    }
    Ok(problems)
}

/// Sets every sequence that feeds a synced column past the highest value of the columns it
/// feeds (a sequence shared by several tables past all of them); a sequence whose columns
/// are all empty starts over.
pub(super) fn advance_sequences(tx: &mut Transaction, tables: &[Table], rules: &Rules) -> Result<()> {
    for (sequence, columns) in sequence_uses(tables, rules) {
        let highest = highest_sql(&columns);
        let sql = format!(
            "select case when m is null then setval($1::text::regclass, p.seqstart, false)
                         else setval($1::text::regclass, m, true) end
             from (select {highest} as m) h, pg_sequence p where p.seqrelid = $1::text::regclass"
        );
        tx.query(&sql, &[&sequence]).with_context(|| format!("cannot advance the sequence {sequence}"))?;
    }
    Ok(())
}

/// Each sequence feeding a column of a table the sync replaces, with every column it feeds
/// (in any synced table, also one whose rows the target keeps). Only numeric columns count:
/// a text column built from `nextval` has no highest number to go past.
fn sequence_uses(tables: &[Table], rules: &Rules) -> BTreeMap<String, Vec<(String, String)>> {
    let mut uses: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut replaced = BTreeSet::new();
    for table in tables {
        let numeric = |c: &str| table.columns.iter().any(|col| col.name == c && col.category == Category::Numeric);
        for (column, sequence) in table.sequences.iter().filter(|(c, _)| numeric(c)) {
            uses.entry(sequence.clone()).or_default().push((table.qualified(), sql::ident(column)));
            if rules.tables[&table.key()].mode != Mode::SchemaOnly {
                replaced.insert(sequence.clone());
            }
        }
    }
    uses.retain(|sequence, _| replaced.contains(sequence));
    uses
}

/// The highest value of the columns, as a bigint (NULL when all are empty).
fn highest_sql(columns: &[(String, String)]) -> String {
    let parts: Vec<String> =
        columns.iter().map(|(table, column)| format!("(select max({column})::bigint from {table})")).collect();
    format!("greatest({})", parts.join(", "))
}

/// Reads the masked columns back from the target: none of their values may be one the
/// source had in that column (or under that JSON key).
fn leak_check(
    tx: &mut Transaction,
    tables: &[Table],
    rules: &Rules,
    leaks: &LeakSets,
    into: Into,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for table in tables {
        let table_rules = &rules.tables[&table.key()];
        if table_rules.mode != Mode::Copy {
            continue;
        }
        // JSON columns were checked as they were written (see `LeakSets`): every string
        // under a masked key and, under an allowlist, every object key written (`KEYS`)
        // against the source's; the others are read back.
        let mut leaked: Vec<(&str, u64)> = Vec::new();
        for (name, _) in table_rules.columns.iter().filter(|(_, rule)| matches!(rule, Rule::Json(_))) {
            leaked.push((name.as_str(), leaks.emitted_leaks(&format!("{}.{name}", table.key()))?));
        }
        let masked: Vec<&(String, Rule)> = table_rules
            .columns
            .iter()
            .filter(|(_, rule)| rule.is_masking() && !matches!(rule, Rule::Json(_)))
            .collect();
        if !masked.is_empty() {
            leaked
                .extend(masked.iter().map(|(name, _)| name.as_str()).zip(read_back(tx, table, &masked, leaks, into)?));
        }
        for (name, count) in leaked.into_iter().filter(|(_, n)| *n > 0) {
            problems
                .push(format!("{}.{name}: {count} value(s) in the target equal a source value (leak)", table.key()));
        }
    }
    Ok(problems)
}

/// Per masked column, the values read back from the target that are in the leak sets.
fn read_back(
    tx: &mut Transaction,
    table: &Table,
    masked: &[&(String, Rule)],
    leaks: &LeakSets,
    into: Into,
) -> Result<Vec<u64>> {
    let list = masked.iter().map(|(c, _)| sql::ident(c)).collect::<Vec<_>>().join(", ");
    // Rows whose masked columns are all NULL hold nothing to check: the server skips
    // them (with parallel workers on a big table) instead of sending them.
    let any = masked.iter().map(|(c, _)| format!("{} is not null", sql::ident(c))).collect::<Vec<_>>().join(" or ");
    let reader = tx.copy_out(&format!(
        "COPY (SELECT {list} FROM {} WHERE {any}) TO STDOUT",
        into(&table.key(), &table.qualified())
    ))?;
    let columns: Vec<String> = masked.iter().map(|(name, _)| format!("{}.{name}", table.key())).collect();
    count_leaks(reader, masked, &columns, leaks)
}

/// Counts, per masked column (JSON columns aside), the target values (array elements) that
/// are in the leak sets: a reader thread batches the lines, two workers hash the values,
/// which are then merged against the sets on disk (`pipe/leaks.rs`): memory stays flat.
fn count_leaks(
    reader: impl Read + Send,
    masked: &[&(String, Rule)],
    columns: &[String],
    leaks: &LeakSets,
) -> Result<Vec<u64>> {
    let reader = BufReader::with_capacity(1 << 16, reader);
    let (_, values) = batches::run(
        reader,
        |reader, batch| Ok(reader.read_until(b'\n', batch)? > 0),
        2,
        || masked.iter().map(|_| Values::default()).collect::<Vec<_>>(),
        |values, batch, _| {
            for line in batch.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                record_line(line, masked, values)?;
            }
            Ok(())
        },
        |(), _| Ok(()),
    )?;
    let mut total: Vec<Values> = masked.iter().map(|_| Values::default()).collect();
    for worker in values {
        for (all, one) in total.iter_mut().zip(worker) {
            all.merge(one)?;
        }
    }
    total.iter().zip(columns).map(|(values, column)| leaks.count(column, values)).collect()
}

/// One line of the masked columns: each value (each element of an array) recorded for its
/// column.
fn record_line(line: &[u8], masked: &[&(String, Rule)], values: &mut [Values]) -> Result<()> {
    for (i, field) in line.split(|b| *b == b'\t').enumerate() {
        if field == b"\\N" {
            continue;
        }
        let value = mask::unescape(field);
        match &masked[i].1 {
            Rule::Elements(_) => {
                let mut recorded = Ok(());
                mask::map_array(&value, &mut |element| {
                    if recorded.is_ok() {
                        recorded = values[i].record(element);
                    }
                    String::new()
                });
                recorded?;
            }
            _ => values[i].record(&value)?,
        }
    }
    Ok(())
}

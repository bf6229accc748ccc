//! The access matrix's probe rows, generated from the catalog so that any schema can be
//! probed with no hand-written fixtures: for each table (parents first) one row of tenant A
//! and one of tenant B, each foreign key pointing at its own tenant's parent row, NOT NULL
//! columns filled by type (enum labels, the string literals of checks, numbers, dates,
//! uuids), the rest left to defaults. A value a check or a unique index refuses is replaced
//! by the next candidate. Planted as the owner, inside the matrix's rolled-back transaction.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use postgres::{Transaction, error::SqlState};
use serde_json::{Map, Value, json};

use super::catalog::{Column, Table};
use crate::sql;

/// Attempts per row before the probe gives up on a table.
const ATTEMPTS: usize = 24;

/// A planted row: where it is (`tableoid:ctid`), the values given to the insert, and the
/// row as stored.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub locator: String,
    pub given: Map<String, Value>,
    pub stored: Map<String, Value>,
}

/// The rows planted so far, by table (`schema.name`) and tag (`a`, `b`, or a persona's).
#[derive(Default)]
pub(crate) struct Planted {
    pub rows: BTreeMap<(String, String), Row>,
    serial: u64,
}

impl Planted {
    pub(crate) fn get(&self, table: &str, tag: &str) -> Option<&Row> {
        self.rows.get(&(table.to_string(), tag.to_string()))
    }

    /// A uuid of this run's probe rows (the prefix keeps them apart from real ones).
    pub(crate) fn uuid(&mut self) -> String {
        self.serial += 1;
        format!("e2e0f15c-7a1e-4000-8000-{:012x}", self.serial)
    }

    /// Plants one row of `table` for `tag`: its foreign keys lead to `parent_tag`'s rows
    /// (tenant A's where that tag has none), `overrides` fix some columns. Inside a savepoint, so a refused attempt leaves nothing.
    pub(crate) fn plant(
        &mut self,
        tx: &mut Transaction,
        table: &Table,
        (tag, parent_tag): (&str, &str),
        overrides: &Map<String, Value>,
    ) -> Result<Row> {
        let mut given = Map::new();
        for fk in table.foreign_keys.iter().filter(|fk| fk.to != table.name) {
            if let Some(parent) = self.get(&fk.to, parent_tag).or_else(|| self.get(&fk.to, "a")) {
                for (mine, theirs) in fk.columns.iter().zip(&fk.to_columns) {
                    given.insert(mine.clone(), parent.stored.get(theirs).cloned().unwrap_or(Value::Null));
                }
            }
        }
        given.extend(overrides.clone());
        let mut attempts: BTreeMap<String, usize> = BTreeMap::new();
        let mut required: Vec<String> = Vec::new();
        for _ in 0..ATTEMPTS {
            let mut values = given.clone();
            for column in table.columns.iter().filter(|c| !c.generated && !given.contains_key(&c.name)) {
                if (column.not_null && !column.defaulted) || required.contains(&column.name) {
                    let literals = table.check_literals.get(&column.name).map(Vec::as_slice).unwrap_or_default();
                    let n = attempts.get(&column.name).copied().unwrap_or(0);
                    let value = self.candidate(column, literals, tag, n);
                    values.insert(column.name.clone(), value);
                }
            }
            let mut sp = tx.transaction()?;
            match insert(&mut sp, table, &values) {
                Ok((locator, stored)) => {
                    sp.commit()?;
                    let row = Row { locator, given: values, stored };
                    self.rows.insert((table.name.clone(), tag.to_string()), row.clone());
                    return Ok(row);
                }
                Err(err) => {
                    sp.rollback()?;
                    let Some(db) = err.as_db_error() else { return Err(err.into()) };
                    if let (&SqlState::NOT_NULL_VIOLATION, Some(column)) = (db.code(), db.column()) {
                        if !required.iter().any(|r| r == column) {
                            required.push(column.to_string());
                            continue;
                        }
                    }
                    let columns = conflicting(db, table, &values);
                    let generated: Vec<&String> = columns.iter().filter(|c| !given.contains_key(*c)).collect();
                    if generated.is_empty() {
                        // A row with these keys exists already (a trigger made it, as a
                        // profile per new auth user): that one is the probe row.
                        if db.code() == &SqlState::UNIQUE_VIOLATION && !columns.is_empty() {
                            if let Some(row) = adopt(tx, table, &columns, &values)? {
                                self.rows.insert((table.name.clone(), tag.to_string()), row.clone());
                                return Ok(row);
                            }
                        }
                        bail!(
                            "cannot plant a probe row in {}: {}\nhint: the probe generates rows from the catalog; \
                             a check or trigger it cannot satisfy by guessing needs a value it can (see README, the access matrix)",
                            table.name,
                            sql::server_message(&err)
                        );
                    }
                    for column in generated {
                        *attempts.entry(column.clone()).or_default() += 1;
                    }
                }
            }
        }
        bail!(
            "cannot plant a probe row in {}: no generated value passed its checks and unique indexes\n\
             hint: a check the probe cannot satisfy by guessing; report the table's definition",
            table.name
        )
    }

    /// The `n`th value tried for `column` in a row tagged `tag`.
    fn candidate(&mut self, column: &Column, literals: &[String], tag: &str, n: usize) -> Value {
        let salt = tag.bytes().map(usize::from).sum::<usize>() % 7;
        if !column.enum_labels.is_empty() {
            return json!(column.enum_labels[n % column.enum_labels.len()]);
        }
        match (column.category, column.type_name.as_str()) {
            ('A', _) => json!([]),
            ('B', _) => json!(n % 2 == 0),
            // Small first (checks like `between 1 and 5`); a unique index moves on to the next.
            ('N', _) => json!(format!("{}", n + 1)),
            ('D', "date") => json!(format!("2024-01-{:02}", (n * 7 + salt) % 28 + 1)),
            ('D', "time" | "timetz") => json!(format!("{:02}:00:00", (n + salt) % 24)),
            ('D', _) => json!(format!("2024-01-{:02} 10:00:00+00", (n * 7 + salt) % 28 + 1)),
            ('T', _) => json!(format!("{} days", n + 1)),
            ('I', _) => json!(format!("10.0.{}.{}", salt, n % 250 + 1)),
            ('U', "uuid") => json!(self.uuid()),
            ('U', "json" | "jsonb") => json!({}),
            _ => json!(text(literals, tag, n)),
        }
    }
}

/// Text: first the literals a check names, then a word with an underscore, a word of
/// letters and digits only, an email address (for checks that want an `@`), each unique to
/// the tag and attempt.
fn text(literals: &[String], tag: &str, n: usize) -> String {
    if n < literals.len() {
        return literals[n].clone();
    }
    let k = n - literals.len();
    let tag: String = tag.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
    match k % 3 {
        0 => format!("probe_{tag}_{}", k / 3),
        1 => format!("probe{tag}{}", k / 3),
        _ => format!("probe-{tag}-{}@probe.invalid", k / 3),
    }
}

/// The columns a refused row's values must change in: a check's or unique index's, every
/// column for a value of the wrong form, none for anything else.
fn conflicting(db: &postgres::error::DbError, table: &Table, values: &Map<String, Value>) -> Vec<String> {
    match (db.code(), db.constraint()) {
        (&SqlState::CHECK_VIOLATION | &SqlState::UNIQUE_VIOLATION, Some(name)) => {
            table.constraints.get(name).cloned().unwrap_or_default()
        }
        (code, _) if code.code().starts_with("22") => values.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The existing row whose `columns` hold `values`' values.
fn adopt(tx: &mut Transaction, table: &Table, columns: &[String], values: &Map<String, Value>) -> Result<Option<Row>> {
    let t = &table.quoted;
    let sql = format!(
        "select t.tableoid::text || ':' || t.ctid::text, to_jsonb(t)::text
         from {t} t, jsonb_populate_record(null::{t}, $1::text::jsonb) v
         where ({}) is not distinct from ({}) limit 1",
        sql::columns_of("t", columns),
        sql::columns_of("v", columns)
    );
    let json = Value::Object(values.clone()).to_string();
    let Some(found) = tx.query_opt(&sql, &[&json])? else { return Ok(None) };
    let stored = match serde_json::from_str(&found.get::<_, String>(1)) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    Ok(Some(Row { locator: found.get(0), given: values.clone(), stored }))
}

/// `insert ... returning` the row's locator and its stored values, as JSON.
fn insert(
    tx: &mut Transaction,
    table: &Table,
    values: &Map<String, Value>,
) -> Result<(String, Map<String, Value>), postgres::Error> {
    let returning = "returning t.tableoid::text || ':' || t.ctid::text, to_jsonb(t)::text";
    let t = &table.quoted;
    let row = if values.is_empty() {
        tx.query_one(&format!("insert into {t} as t default values {returning}"), &[])?
    } else {
        let names: Vec<&String> = values.keys().collect();
        let columns = sql::idents(&names);
        let json = Value::Object(values.clone()).to_string();
        tx.query_one(
            &format!(
                "insert into {t} as t ({columns}) select {columns} from jsonb_populate_record(null::{t}, $1::text::jsonb) {returning}"
            ),
            &[&json],
        )?
    };
    let stored: String = row.get(1);
    let stored = match serde_json::from_str(&stored) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    Ok((row.get(0), stored))
}

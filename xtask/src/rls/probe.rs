//! One persona's probe of one table, the way the API runs a request: in a savepoint, `set
//! local role`, the JWT claims in `request.jwt.claims`; each statement in a savepoint of its
//! own that is rolled back, so a write that got through changes nothing the next one sees.
//! Select reads tenant A's and B's probe rows by address; update and delete aim at each by
//! address and count what they touched; insert offers a copy of each (row-level security
//! checks a new row before constraints do, so a unique violation means it was let through).

use anyhow::{Result, bail};
use postgres::{SimpleQueryMessage, Transaction};

use super::{catalog::Table, personas::Persona, probe_rows::Row};
use crate::sql;

pub(super) const OPERATIONS: [&str; 4] = ["select", "insert", "update", "delete"];

/// What one statement did to one tenant's row.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Allowed,
    /// Row-level security filtered or refused it.
    Refused,
    /// Refused for lack of privilege, or failed otherwise: `err:SQLSTATE`.
    Error(String),
}

/// Becomes `persona` until `leave`.
pub(super) fn enter(tx: &mut Transaction, persona: &Persona) -> Result<()> {
    tx.batch_execute(&format!(
        "savepoint rls_persona; set local role {}; select set_config('request.jwt.claims', {}, true)",
        sql::ident(persona.role),
        sql::literal(&persona.claims)
    ))?;
    Ok(())
}

pub(super) fn leave(tx: &mut Transaction) -> Result<()> {
    tx.batch_execute("rollback to savepoint rls_persona; release savepoint rls_persona")?;
    Ok(())
}

/// The four outcomes, in `OPERATIONS` order; `privileges` (same order) says which the
/// persona's role holds on the table or some column, the rest are `err:42501` unprobed.
pub(super) fn table(
    tx: &mut Transaction,
    table: &Table,
    (a, b): (&Row, &Row),
    privileges: [bool; 4],
) -> Result<Vec<String>> {
    let t = &table.quoted;
    let at = |row: &Row| -> String {
        let (oid, tid) = row.locator.split_once(':').unwrap_or(("0", &row.locator));
        format!("t.tableoid = {oid}::oid and t.ctid = {}::tid", sql::literal(tid))
    };
    // A column the probe row was given a value for: never generated, never an identity
    // that refuses to be written.
    let touch = a
        .given
        .keys()
        .next()
        .or_else(|| table.columns.iter().find(|c| !c.generated && !c.defaulted).map(|c| &c.name))
        .or_else(|| table.columns.iter().find(|c| !c.generated).map(|c| &c.name))
        .map(|name| sql::ident(name))
        .unwrap_or_default();
    let mut tokens = Vec::new();
    for (op, allowed) in OPERATIONS.iter().zip(privileges) {
        if !allowed {
            tokens.push("err:42501".to_string());
            continue;
        }
        let outcomes = match *op {
            "select" => {
                let sql = format!(
                    "select t.tableoid::text || ':' || t.ctid::text from {t} t where ({}) or ({})",
                    at(a),
                    at(b)
                );
                match statement(tx, &sql)? {
                    Ok(messages) => {
                        let seen: Vec<String> = messages
                            .iter()
                            .filter_map(|m| match m {
                                SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
                                _ => None,
                            })
                            .collect();
                        [a, b].map(|row| if seen.contains(&row.locator) { Outcome::Allowed } else { Outcome::Refused })
                    }
                    Err(err) => [classify(&err, op), classify(&err, op)],
                }
            }
            "insert" => [write(tx, &insert(t, a), op)?, write(tx, &insert(t, b), op)?],
            "update" => {
                let update = |row: &Row| format!("update {t} t set {touch} = {touch} where {}", at(row));
                [write(tx, &update(a), op)?, write(tx, &update(b), op)?]
            }
            _ => {
                let delete = |row: &Row| format!("delete from {t} t where {}", at(row));
                [write(tx, &delete(a), op)?, write(tx, &delete(b), op)?]
            }
        };
        tokens.push(token(&outcomes));
    }
    Ok(tokens)
}

fn insert(t: &str, row: &Row) -> String {
    if row.given.is_empty() {
        return format!("insert into {t} default values");
    }
    let names: Vec<&String> = row.given.keys().collect();
    let columns = sql::idents(&names);
    let json = serde_json::Value::Object(row.given.clone()).to_string();
    format!(
        "insert into {t} ({columns}) select {columns} from jsonb_populate_record(null::{t}, {}::jsonb)",
        sql::literal(&json)
    )
}

/// A write's outcome: rows touched (update, delete) or the row accepted (insert).
fn write(tx: &mut Transaction, sql: &str, op: &str) -> Result<Outcome> {
    Ok(match statement(tx, sql)? {
        Ok(messages) => {
            let counts: Vec<u64> = messages
                .iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::CommandComplete(n) => Some(*n),
                    _ => None,
                })
                .collect();
            // savepoint, the statement, rollback to, release.
            if op == "insert" || counts.get(1).is_some_and(|n| *n > 0) { Outcome::Allowed } else { Outcome::Refused }
        }
        Err(err) => classify(&err, op),
    })
}

fn classify(err: &postgres::Error, op: &str) -> Outcome {
    let Some(db) = err.as_db_error() else { return Outcome::Error("connection".into()) };
    let code = db.code().code();
    if code == "42501" && db.message().starts_with("new row violates row-level security") {
        Outcome::Refused
    } else if op != "select" && code.starts_with("23") {
        // Constraints and foreign keys are checked after row-level security let the row
        // through (a delete refused by a referencing row was allowed by the policies).
        Outcome::Allowed
    } else {
        Outcome::Error(code.to_string())
    }
}

/// One statement in a savepoint that is always rolled back; the server's refusal is an
/// answer, a lost connection is not.
fn statement(tx: &mut Transaction, sql: &str) -> Result<Result<Vec<SimpleQueryMessage>, postgres::Error>> {
    let wrapped = format!("savepoint rls_probe; {sql}; rollback to savepoint rls_probe; release savepoint rls_probe");
    match tx.simple_query(&wrapped) {
        Ok(messages) => Ok(Ok(messages)),
        Err(err) if err.as_db_error().is_none() => {
            bail!("the access matrix lost its connection: {}", app::connect::error_chain(&err))
        }
        Err(err) => {
            tx.batch_execute("rollback to savepoint rls_probe; release savepoint rls_probe")?;
            Ok(Err(err))
        }
    }
}

fn token(outcomes: &[Outcome; 2]) -> String {
    if let Some(Outcome::Error(code)) = outcomes.iter().find(|o| matches!(o, Outcome::Error(_))) {
        return format!("err:{code}");
    }
    match (outcomes[0] == Outcome::Allowed, outcomes[1] == Outcome::Allowed) {
        (true, true) => "all",
        (true, false) => "own",
        (false, true) => "other",
        (false, false) => "none",
    }
    .to_string()
}

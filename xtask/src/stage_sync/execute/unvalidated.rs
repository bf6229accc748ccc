//! The foreign keys of other tables that the swap added back `NOT VALID`, recorded in the
//! target's bookkeeping schema (`app_meta.stage_sync_unvalidated`) inside the swap's own
//! transaction and validated after the commit. A kill between the commit and the
//! validation leaves the record, and the next sync validates what it names: a key the tool
//! added back stays `NOT VALID` only until the next sync, and a key someone made `NOT
//! VALID` on purpose is never touched, since only recorded keys are validated.

use anyhow::{Context, Result};
use postgres::Transaction;

use crate::{context::warn, sql};

/// The record: one row per key, by its table (qualified, as the server prints it) and name.
const TABLE: &str = "app_meta.stage_sync_unvalidated";

/// Test-only: a file the sync creates after its commit, before it validates the keys, then
/// waits until the test removes it (at most a minute), so a test can kill it there.
const PAUSE_VAR: &str = "XTASK_TEST_PAUSE_BEFORE_VALIDATE";

/// Records `keys` (table, name) in the swap's transaction, creating the record's table the
/// first time. Where the login may neither write the record nor create it, nothing is
/// recorded: the keys are still validated after the commit, only not mended after a kill.
pub(super) fn record(tx: &mut Transaction, keys: &[(String, String)]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let allowed: bool = tx
        .query_one(
            "select case when to_regclass($1) is not null then has_table_privilege($1, 'INSERT, DELETE')
                         else to_regnamespace('app_meta') is not null and has_schema_privilege('app_meta', 'CREATE') end",
            &[&TABLE],
        )?
        .get(0);
    if !allowed {
        return Ok(());
    }
    tx.batch_execute(&format!(
        "create table if not exists {TABLE} (child text not null, name text not null,
           added_at timestamptz not null default now(), primary key (child, name))"
    ))
    .context("cannot keep the record of the foreign keys to validate")?;
    for (child, name) in keys {
        tx.execute(
            &format!("insert into {TABLE} (child, name) values ($1, $2) on conflict do nothing"),
            &[child, name],
        )
        .context("cannot record a foreign key to validate")?;
    }
    Ok(())
}

/// After the commit, outside any transaction: every recorded key (this sync's, and any a
/// killed sync left) and every key of `current` that is still `NOT VALID` is validated, a
/// lock that lets readers and writers on, and its record removed. A failure is a warning:
/// the data is committed, the key holds for new rows, and the record stays for the next sync.
pub(super) fn validate(client: &mut postgres::Client, current: &[(String, String)]) {
    super::pause_for_tests(PAUSE_VAR);
    let record = recorded(client);
    let mut keys = record.clone().unwrap_or_default();
    for key in current {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    for (child, name) in &keys {
        let state = client.query_opt(
            "select convalidated from pg_constraint where conrelid = to_regclass($1) and conname = $2",
            &[child, name],
        );
        let outcome = match state {
            Ok(Some(row)) if !row.get::<_, bool>(0) => client
                .batch_execute(&format!("alter table {child} validate constraint {}", sql::ident(name)))
                .map_err(|err| sql::server_message(&err)),
            Ok(_) => Ok(()),
            Err(err) => Err(sql::server_message(&err)),
        };
        match outcome {
            Ok(()) if record.is_some() => forget(client, child, name),
            Ok(()) => {}
            Err(message) => warn(format!("the foreign key {name} of {child} stays NOT VALID: {message}")),
        }
    }
}

/// The recorded keys; `None` where there is no record (or it cannot be read).
fn recorded(client: &mut postgres::Client) -> Option<Vec<(String, String)>> {
    let exists = client
        .query_one("select to_regclass($1) is not null and has_table_privilege($1, 'SELECT, DELETE')", &[&TABLE])
        .is_ok_and(|row| row.get(0));
    if !exists {
        return None;
    }
    match client.query(&format!("select child, name from {TABLE} order by added_at, child, name"), &[]) {
        Ok(rows) => Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect()),
        Err(err) => {
            warn(format!("cannot read {TABLE}: {}", sql::server_message(&err)));
            None
        }
    }
}

/// The key's record removed (the record exists: [`recorded`] found it).
fn forget(client: &mut postgres::Client, child: &str, name: &str) {
    if let Err(err) = client.execute(&format!("delete from {TABLE} where child = $1 and name = $2"), &[&child, &name]) {
        warn(format!("cannot update {TABLE}: {}", sql::server_message(&err)));
    }
}

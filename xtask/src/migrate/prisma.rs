//! Prisma's ledger, `public._prisma_migrations`, read and written as Prisma's migration
//! engine does (prisma-engines' `sql-migration-connector`): one row per attempt, a uuid
//! `id`, `checksum` the sha256 of `migration.sql`'s bytes in lowercase hex,
//! `migration_name` the folder's name, `finished_at` set once it applied, `rolled_back_at`
//! set by `prisma migrate resolve --rolled-back`. So `prisma migrate status` and this tool
//! agree, and a database Prisma built is adopted on its own history.

use anyhow::{Context, Result, bail};
use postgres::GenericClient;

use super::files::Migration;

/// The table as Prisma's migration engine creates it on PostgreSQL.
const DDL: &str = "create table if not exists public._prisma_migrations (
    id varchar(36) primary key not null,
    checksum varchar(64) not null,
    finished_at timestamptz,
    migration_name varchar(255) not null,
    logs text,
    rolled_back_at timestamptz,
    started_at timestamptz not null default now(),
    applied_steps_count integer not null default 0
)";

/// One row of Prisma's ledger.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub migration_name: String,
    pub checksum: String,
    pub finished: bool,
    pub rolled_back: bool,
    pub logs: Option<String>,
}

impl Row {
    /// The version: the digits before the first `_` of the name (`20240101120000_init`).
    pub(super) fn version(&self) -> Option<u64> {
        self.migration_name.split_once('_')?.0.parse().ok()
    }
}

/// Prisma's name for a migration: its folder's name.
pub(super) fn migration_name(m: &Migration) -> String {
    let folder = m.up.file.strip_suffix("/migration.sql").unwrap_or(&m.up.file);
    folder.rsplit('/').next().unwrap_or(folder).to_string()
}

/// Every row of the ledger in the order Prisma wrote them; empty when there is none.
pub(super) fn read(client: &mut impl GenericClient) -> Result<Vec<Row>> {
    let exists: bool = client.query_one("select to_regclass('public._prisma_migrations') is not null", &[])?.get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "select migration_name::text, checksum::text, finished_at is not null, rolled_back_at is not null, logs
             from public._prisma_migrations order by started_at, migration_name",
            &[],
        )
        .context("public._prisma_migrations is not in the shape Prisma writes")?;
    Ok(rows
        .iter()
        .map(|r| Row {
            migration_name: r.get(0),
            checksum: r.get(1),
            finished: r.get(2),
            rolled_back: r.get(3),
            logs: r.get(4),
        })
        .collect())
}

/// Records an applied migration as `prisma migrate deploy` does, in the caller's
/// transaction; a migration Prisma's ledger already holds as applied is left as it is.
pub(super) fn record(client: &mut impl GenericClient, m: &Migration) -> Result<(), postgres::Error> {
    client.batch_execute(DDL)?;
    client.execute(
        "insert into public._prisma_migrations
             (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
         select gen_random_uuid()::text, $1::varchar, now(), $2::varchar, null, null, now(), 1
         where not exists (select from public._prisma_migrations
                           where migration_name = $2::varchar and finished_at is not null and rolled_back_at is null)",
        &[&m.checksum, &migration_name(m)],
    )?;
    Ok(())
}

/// Whether the ledger is the folder's history: every migration recorded as applied with
/// the file's checksum, nothing applied that has no folder, nothing failed. `Ok(false)`
/// when there is no ledger at all; an error naming the first disagreement otherwise.
pub(super) fn matches_history(rows: &[Row], files: &[Migration], shown: &str) -> Result<bool> {
    let applied: Vec<&Row> = rows.iter().filter(|r| r.finished && !r.rolled_back).collect();
    if rows.is_empty() {
        return Ok(false);
    }
    if let Some(failed) = rows.iter().find(|r| !r.finished && !r.rolled_back) {
        bail!(
            "Prisma's ledger records {} as failed ({})\nhint: settle it with Prisma first (`prisma migrate resolve`), then adopt",
            failed.migration_name,
            failed.logs.as_deref().unwrap_or("no log").lines().next().unwrap_or_default()
        );
    }
    for row in &applied {
        let Some(file) = files.iter().find(|m| migration_name(m) == row.migration_name) else {
            bail!(
                "Prisma's ledger records {} as applied, and {shown} has no such folder\nhint: restore the folder from the project's history (git), then adopt",
                row.migration_name
            );
        };
        if !checksum_matches(&file.up.sql, &row.checksum) {
            bail!(
                "{} is not the file Prisma applied: its checksum is {}, Prisma's ledger records {}\nhint: restore the file as it was applied (`git log -- {}`), then adopt",
                file.up.file,
                file.checksum,
                row.checksum,
                file.up.file
            );
        }
    }
    if let Some(pending) = files.iter().find(|m| !applied.iter().any(|r| r.migration_name == migration_name(m))) {
        bail!(
            "{} is not in Prisma's ledger: the database has not had it\nhint: adopt with the folder as the database has it (move that migration aside), then `cargo xtask migrate up` applies it",
            pending.up.file
        );
    }
    Ok(true)
}

/// Prisma compares checksums with the file's line endings as they are, or switched between
/// LF and CRLF (a checkout on another system).
fn checksum_matches(sql: &str, checksum: &str) -> bool {
    let hex = |text: &str| super::files::sha256_hex(text.as_bytes());
    let lf = sql.replace("\r\n", "\n");
    [hex(sql), hex(&lf), hex(&lf.replace('\n', "\r\n"))].iter().any(|c| c.eq_ignore_ascii_case(checksum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_of_the_bytes_with_either_line_ending() {
        let lf = "select 1;\n";
        let sum = super::super::files::sha256_hex(lf.as_bytes());
        assert_eq!(sum.len(), 64);
        assert!(checksum_matches(lf, &sum));
        assert!(checksum_matches("select 1;\r\n", &sum));
        assert!(!checksum_matches("select 2;\n", &sum));
    }

    #[test]
    fn versions_come_from_the_names() {
        let row = |name: &str| Row {
            migration_name: name.into(),
            checksum: String::new(),
            finished: true,
            rolled_back: false,
            logs: None,
        };
        assert_eq!(row("20240101120000_init").version(), Some(20240101120000));
        assert_eq!(row("0_init").version(), Some(0));
        assert_eq!(row("init").version(), None);
    }
}

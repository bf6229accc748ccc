//! What a finished sync leaves behind: its row in the target's `app_meta.sync_log`, the
//! table on stderr, and with `--json` the summary on stdout.

use std::time::Duration;

use anyhow::Result;
use app::Guard;

use super::{
    execute::{Finished, Timing},
    rules::Rules,
};
use crate::context::status;

/// Records the sync in the target's own `app_meta` (its stamp stays as it is).
pub(super) fn record(
    tx: &mut postgres::Transaction,
    source: &Guard,
    rules: &Rules,
    counts: &[(String, u64)],
    took: Duration,
) -> Result<Option<i32>> {
    tx.batch_execute(crate::app_meta::SYNC_LOG_DDL)?;
    // A target adopted without this repository's ledger has no version to record; a
    // Supabase-layout ledger's timestamp versions (bigint) do not fit the log's integer
    // column: recorded as null there.
    let ledger: bool = tx.query_one("select to_regclass('app_meta.schema_migrations') is not null", &[])?.get(0);
    let version: Option<i64> = if ledger {
        tx.query_one("select max(version)::bigint from app_meta.schema_migrations where outcome = 'applied'", &[])?
            .get(0)
    } else {
        None
    };
    let version = version.and_then(|v| i32::try_from(v).ok());
    let rows: serde_json::Value =
        counts.iter().map(|(t, n)| (t.clone(), serde_json::Value::from(*n))).collect::<serde_json::Map<_, _>>().into();
    tx.execute(
        "insert into app_meta.sync_log (source_environment, source_project, rows_per_table, rules_checksum, schema_version, duration_ms)
         values ($1, $2, $3::text::jsonb, $4, $5, $6)",
        &[
            &source.environment().name(),
            &source.resolved().project_ref,
            &rows.to_string(),
            &rules.checksum,
            &version,
            &(took.as_millis() as i64),
        ],
    )?;
    Ok(version)
}

pub(super) fn summary(timings: &[Timing], finished: &Finished, total: u64, took: Duration) {
    status(format!("\n{:<36} {:>10} {:>8} {:>12}  {}", "table", "rows", "seconds", "rows/s", "COPY format"));
    for Timing { table, rows, took, format } in timings {
        let rate = *rows as f64 / took.as_secs_f64().max(1e-6);
        status(format!("{table:<36} {rows:>10} {:>8.2} {rate:>12.0}  {format}", took.as_secs_f64()));
    }
    status(format!("{:<36} {:>10} {:>8.2}", "keys and indexes rebuilt", "", finished.rebuilt.as_secs_f64()));
    status(format!("{:<36} {:>10} {:>8.2}", "verified", "", finished.verified.as_secs_f64()));
    let rate = total as f64 / took.as_secs_f64().max(1e-6);
    status(format!("{:<36} {total:>10} {:>8.2} {rate:>12.0}", "total (verified, committed)", took.as_secs_f64()));
}

/// A finished sync's figures: each table's copy, the rows in all, the time in all.
pub(super) struct Figures<'a> {
    pub timings: &'a [Timing],
    pub total: u64,
    pub took: Duration,
}

/// `--json`: the summary as one JSON object.
pub(super) fn json_summary(
    source: &Guard,
    target: &Guard,
    rules: &Rules,
    figures: &Figures,
    schema_version: Option<i32>,
) -> String {
    let Figures { timings, total, took } = *figures;
    let tables: Vec<serde_json::Value> = timings
        .iter()
        .map(|t| {
            serde_json::json!({ "table": t.table, "rows": t.rows, "seconds": t.took.as_secs_f64(), "copy_format": t.format })
        })
        .collect();
    serde_json::json!({
        "source": { "environment": source.environment().name(), "project_ref": source.resolved().project_ref },
        "target": { "environment": target.environment().name() },
        "tables": tables,
        "total_rows": total,
        "seconds": took.as_secs_f64(),
        "rules_checksum": rules.checksum,
        "schema_version": schema_version,
        "verified": true,
    })
    .to_string()
}

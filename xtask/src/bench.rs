//! `cargo xtask bench`: benchmarks that print ratios measured side by side in one run.

use anyhow::Result;
use xshell::Shell;

use crate::flags::{self, BenchCommand, BenchSchema, Global};
use crate::stage_sync::bench::{Schema, generated};

/// Rows the `large` seed profile writes per clinic (1,051,091 rows for 150 clinics).
const LARGE_ROWS_PER_CLINIC: u64 = 7_007;

impl flags::Bench {
    pub fn run(self, global: &Global) -> Result<()> {
        match self.command {
            None => todo_all(global),
            Some(BenchCommand::Seed) => crate::seed::bench::run(global),
            Some(BenchCommand::StageSync { rows, schema }) => {
                crate::stage_sync::bench::run(&Shell::new()?, &schemas(rows, schema)).map(drop)
            }
            Some(BenchCommand::DbUp) => crate::db::bench::run(),
            Some(BenchCommand::Reset) => crate::db::reset_bench::run(),
        }
    }
}

fn todo_all(_global: &Global) -> Result<()> {
    Ok(())
}

/// The schemas `bench stage-sync` copies: both unless `--schema` picks one; `--rows` sizes
/// each.
fn schemas(rows: Option<u64>, only: Option<BenchSchema>) -> Vec<Schema> {
    let large = Schema::Large { clinics: rows.map(|rows| rows.div_ceil(LARGE_ROWS_PER_CLINIC).max(1)) };
    let generated = Schema::Generated { rows: rows.unwrap_or(generated::DEFAULT_ROWS) };
    match only {
        None => vec![large, generated],
        Some(BenchSchema::Large) => vec![large],
        Some(BenchSchema::Generated) => vec![generated],
    }
}

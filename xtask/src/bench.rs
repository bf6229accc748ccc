//! `cargo xtask bench`: benchmarks that print ratios measured side by side in one run.

use anyhow::Result;
use xshell::Shell;

use crate::flags::{self, BenchCommand, Global};

/// Rows the `large` seed profile writes per clinic (1,051,091 rows for 150 clinics).
const LARGE_ROWS_PER_CLINIC: u64 = 7_007;

impl flags::Bench {
    pub fn run(self, global: &Global) -> Result<()> {
        match self.command {
            BenchCommand::Seed => crate::seed::bench::run(global),
            BenchCommand::StageSync { rows } => {
                let clinics = rows.map(|rows| rows.div_ceil(LARGE_ROWS_PER_CLINIC).max(1));
                crate::stage_sync::bench::run(&Shell::new()?, clinics)
            }
            BenchCommand::DbUp => crate::db::bench::run(),
            BenchCommand::Reset => crate::db::reset_bench::run(),
        }
    }
}

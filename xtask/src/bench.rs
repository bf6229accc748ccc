//! `cargo xtask bench`: benchmarks that print ratios measured side by side in one run.

use anyhow::{Result, bail};

use crate::flags::{self, BenchCommand, Global};

impl flags::Bench {
    pub fn run(self, global: &Global) -> Result<()> {
        match self.command {
            BenchCommand::Seed => crate::seed::bench::run(global),
            BenchCommand::StageSync { .. } => bail!("not built yet"),
        }
    }
}

//! `cargo xtask stage-sync`.

use anyhow::{Result, bail};

use crate::flags::{self, Global};

impl flags::StageSync {
    pub fn run(self, _global: &Global) -> Result<()> {
        bail!("not built yet")
    }
}

//! `cargo xtask seed`.

use anyhow::{Result, bail};

use crate::flags::{self, Global};

impl flags::Seed {
    pub fn run(self, _global: &Global) -> Result<()> {
        bail!("not built yet")
    }
}

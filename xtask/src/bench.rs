//! `cargo xtask bench`.

use anyhow::{Result, bail};

use crate::flags::{self, Global};

impl flags::Bench {
    pub fn run(self, _global: &Global) -> Result<()> {
        bail!("not built yet")
    }
}

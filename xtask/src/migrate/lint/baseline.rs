//! The lint baseline, `migrations/lint-baseline.toml`: migration files reviewed and applied
//! before `migrate lint` existed, each pinned by its checksum, with the findings accepted in
//! it. Applied files cannot take acknowledgement comments (that changes their checksum, which
//! the ledger reads as an edit), so their acknowledgements live here. A file whose text
//! changes loses its entry and is linted like a new one.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::Finding;
use crate::migrate::files;

pub(crate) const BASELINE_FILE: &str = "lint-baseline.toml";

const HEADER: &str = "# Written by `cargo xtask migrate lint --update-baseline`: migration files already applied\n# (their text can no longer change), and the lint findings accepted in each. New migrations\n# never go here: acknowledge their findings with `-- migrate:ack RULE: why` comments.\n\n";

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Baseline {
    #[serde(default, rename = "file")]
    files: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    name: String,
    checksum: String,
    /// `LINE: RULE` of each accepted finding.
    #[serde(default)]
    accepted: Vec<String>,
}

impl Baseline {
    pub(super) fn load(dir: &Path) -> Result<Baseline> {
        let path = dir.join(BASELINE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| {
                format!("migrations/{BASELINE_FILE} is invalid\nhint: restore it from git, or re-write it with `cargo xtask migrate lint --all --update-baseline`")
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Baseline::default()),
            Err(err) => Err(err).with_context(|| format!("cannot read migrations/{BASELINE_FILE}")),
        }
    }

    /// Whether the file is in the baseline exactly as it is now.
    pub(super) fn holds(&self, name: &str, sql: &str) -> bool {
        self.entry(name, sql).is_some()
    }

    /// Marks the findings the baseline accepts as acknowledged.
    pub(super) fn apply(&self, name: &str, sql: &str, findings: &mut [Finding]) {
        let Some(entry) = self.entry(name, sql) else { return };
        for f in findings.iter_mut().filter(|f| f.acknowledged.is_none()) {
            if entry.accepted.contains(&format!("{}: {}", f.line, f.rule)) {
                f.acknowledged = Some(format!("in migrations/{BASELINE_FILE}"));
            }
        }
    }

    /// Records the file as it is, accepting its open findings.
    pub(super) fn record(&mut self, name: &str, sql: &str, findings: &[Finding]) {
        self.files.retain(|e| e.name != name);
        let accepted =
            findings.iter().filter(|f| f.acknowledged.is_none()).map(|f| format!("{}: {}", f.line, f.rule)).collect();
        self.files.push(Entry { name: name.to_string(), checksum: files::checksum(sql), accepted });
        self.files.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub(super) fn save(&self, dir: &Path) -> Result<()> {
        let text = toml::to_string(self).context("cannot write the baseline")?;
        std::fs::write(dir.join(BASELINE_FILE), format!("{HEADER}{text}"))
            .with_context(|| format!("cannot write migrations/{BASELINE_FILE}"))
    }

    fn entry(&self, name: &str, sql: &str) -> Option<&Entry> {
        let checksum = files::checksum(sql);
        self.files.iter().find(|e| e.name == name && e.checksum == checksum)
    }
}

//! Per-environment settings and the registry of known remote projects,
//! from `env/environments.toml`.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::Environment;

/// Everything `env/environments.toml` says.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    environments: BTreeMap<Environment, EnvSettings>,
    pub local: LocalSettings,
    #[serde(default)]
    pub projects: Vec<Project>,
    /// Where the migrations are; the repository's `migrations/` when absent.
    #[serde(default)]
    pub migrations: MigrationSettings,
}

/// `[migrations]`: the folder (relative to the project root) and its layout, `pairs`
/// (`NNNN_name.up.sql`/`.down.sql`) or `supabase` (`<timestamp>_name.sql`, the Supabase
/// CLI's `supabase/migrations`); a folder ending in `supabase/migrations` defaults to
/// `supabase`. `cargo xtask migrate` checks the values.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationSettings {
    pub dir: Option<String>,
    pub layout: Option<String>,
    /// Skip, with a warning, `create extension` of extensions only Supabase's platform
    /// provides (`pg_graphql`, `pg_net`, `pgsodium`, ...) instead of refusing the migration.
    #[serde(default)]
    pub skip_platform_extensions: bool,
}

/// The design's environment-specific configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EnvSettings {
    pub allow_test_data: bool,
    pub require_backup: bool,
    pub require_confirmation: bool,
}

/// Where `cargo xtask db` runs the local cluster.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    pub port: u16,
    pub data_dir: String,
}

/// A known remote Supabase project.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    #[serde(rename = "ref")]
    pub project_ref: String,
    pub environment: Environment,
    pub name: String,
}

impl Settings {
    pub const PATH: &'static str = "env/environments.toml";

    /// Reads `env/environments.toml` under the project root.
    pub fn load(root: &Path) -> Result<Settings> {
        let path = root.join(Settings::PATH);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", Settings::PATH))?;
        Settings::parse(&text).with_context(|| format!("{} is invalid", Settings::PATH))
    }

    /// Parses the settings; errors are one line, with the line number.
    pub fn parse(text: &str) -> Result<Settings> {
        let settings: Settings = toml::from_str(text).map_err(|err| {
            let line = err.span().map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let message = err.message().replace('\n', " ");
            match line {
                Some(line) => anyhow::anyhow!("line {line}: {message}"),
                None => anyhow::anyhow!("{message}"),
            }
        })?;
        for env in Environment::ALL {
            if !settings.environments.contains_key(&env) {
                bail!("no [environments.{env}] table\nhint: every environment needs its settings");
            }
        }
        for project in &settings.projects {
            if !project.environment.is_on_this_machine() {
                continue;
            }
            bail!(
                "project `{}` is registered as {}, but only production and staging are remote",
                project.project_ref,
                project.environment
            );
        }
        if !settings.environments[&Environment::Production].require_confirmation {
            bail!("[environments.production] must keep require_confirmation = true");
        }
        Ok(settings)
    }

    pub(crate) fn for_env(&self, env: Environment) -> &EnvSettings {
        // `parse` checked that every environment is present.
        &self.environments[&env]
    }

    /// The environment a remote project ref is registered as, if any.
    pub fn project(&self, project_ref: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.project_ref.eq_ignore_ascii_case(project_ref))
    }

    /// The production project's ref, which typed confirmations ask for.
    pub fn production_ref(&self) -> Option<&str> {
        self.projects.iter().find(|p| p.environment == Environment::Production).map(|p| p.project_ref.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../env/environments.toml");

    #[test]
    fn committed_settings_parse() {
        let settings = Settings::parse(COMMITTED).unwrap();
        assert!(settings.for_env(Environment::Production).require_confirmation);
        assert!(!settings.for_env(Environment::Production).allow_test_data);
        assert_eq!(settings.local.port, 54322);
        assert_eq!(settings.project("yovbdmjwrrgardkgrenc").unwrap().environment, Environment::Production);
    }

    #[test]
    fn errors_name_the_line() {
        let broken = COMMITTED.replace("require_backup = false", "require_backup = \"loud\"");
        let err = Settings::parse(&broken).unwrap_err().to_string();
        assert!(err.starts_with("line "), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = Settings::parse("not toml at all [").unwrap_err().to_string();
        assert!(err.starts_with("line 1"), "{err}");
    }
}

//! The four environments.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Where a command acts. Production holds real clinic data; staging a separate Supabase
/// project with anonymized data; local the developer's cluster on port 54322; test the
/// throwaway databases that tests and CI create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Production,
    Staging,
    Local,
    Test,
}

impl Environment {
    pub const ALL: [Environment; 4] =
        [Environment::Production, Environment::Staging, Environment::Local, Environment::Test];

    pub fn name(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Staging => "staging",
            Environment::Local => "local",
            Environment::Test => "test",
        }
    }

    /// Local and test live on this machine (loopback or a unix socket).
    pub fn is_on_this_machine(self) -> bool {
        matches!(self, Environment::Local | Environment::Test)
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Environment {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Environment> {
        let trimmed = s.trim().to_ascii_lowercase();
        Environment::ALL.into_iter().find(|env| env.name() == trimmed).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown environment `{}`\nhint: use one of production, staging, local, test",
                s.escape_debug()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for env in Environment::ALL {
            assert_eq!(env.name().parse::<Environment>().unwrap(), env);
        }
        assert_eq!(" Staging ".parse::<Environment>().unwrap(), Environment::Staging);
        let err = "prod".parse::<Environment>().unwrap_err().to_string();
        assert!(err.starts_with("unknown environment `prod`"), "{err}");
    }
}

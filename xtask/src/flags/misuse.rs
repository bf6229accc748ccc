//! Where `--env` is a usage error: every command either acts on the environment it
//! selects or refuses it here, before anything runs (exit 2).

use app::Environment;

use super::{Command, Db, DbCommand, Env, EnvCommand, Migrate, MigrateCommand, RehearseData, Xtask};

impl Xtask {
    /// `--env` selects the environment a command acts on, and nothing else: where a command
    /// acts on no environment, or takes its target from another flag, it is a usage error
    /// (exit 2), never silently ignored. Returns the message, if so.
    pub(crate) fn env_misuse(&self) -> Option<String> {
        let env = self.global.env?;
        let why = match &self.command {
            Command::Env(Env { command: Some(EnvCommand::Matrix) }) => {
                "`env matrix` prints every environment's access and selects none".to_string()
            }
            Command::Migrate(Migrate { command }) => match command {
                MigrateCommand::New { .. } => "`migrate new` writes files and reaches no database".to_string(),
                MigrateCommand::Lint(_) => "`migrate lint` reads files and reaches no database".to_string(),
                MigrateCommand::Verify => "`migrate verify` runs on a throwaway cluster of its own".to_string(),
                MigrateCommand::Rehearse(r) if r.data != RehearseData::Copy => {
                    "`migrate rehearse` on seeded data runs on a throwaway cluster; only --data copy reads an environment".to_string()
                }
                MigrateCommand::Diff { .. } => {
                    "`migrate diff` compares the environments --from and --to name".to_string()
                }
                _ => return None,
            },
            Command::StageSync(sync) => {
                return match sync.to {
                    Some(to) if to == env => None,
                    Some(to) => Some(format!("stage-sync's target is --to {to}, which --env {env} contradicts")),
                    None => Some(format!(
                        "stage-sync takes its target from --to only (staging when absent), never from --env: write --to {env}"
                    )),
                };
            }
            Command::Db(Db { command }) => return db_env_misuse(command, env),
            Command::Bench(_) => "benchmarks run on throwaway clusters of their own".to_string(),
            Command::Ci(_) => "`ci` runs on throwaway clusters of its own and acts on no environment".to_string(),
            _ => return None,
        };
        Some(format!("--env {env} means nothing here: {why}"))
    }
}

/// `db up`, `status`, `down` and `destroy` manage the local cluster: `--env local` is what
/// they do anyway, any other environment a usage error. `reset` and `undo` act on local or
/// test (the guard refuses the rest).
fn db_env_misuse(command: &DbCommand, env: Environment) -> Option<String> {
    let name = match command {
        DbCommand::Up(_) => "up",
        DbCommand::Status => "status",
        DbCommand::Down => "down",
        DbCommand::Destroy { .. } => "destroy",
        DbCommand::Reset(_) | DbCommand::Undo => return None,
    };
    (env != Environment::Local).then(|| {
        format!(
            "`db {name}` manages the local cluster only, not {env}\nhint: drop --env, or use `cargo xtask db reset --env test` for a test database"
        )
    })
}

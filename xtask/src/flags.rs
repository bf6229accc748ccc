//! The command line: one documented struct per command.

use clap::{Args, Parser, Subcommand};

use app::Environment;

/// The project's automation: environments, the local database, migrations, seed data,
/// staging sync and CI.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, propagate_version = true)]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// The environment to act on: production, staging, local or test. Without it: $APP_ENV,
    /// else detection from DATABASE_URL, else local.
    #[arg(long = "env", global = true, value_name = "NAME", value_parser = parse_env)]
    pub env: Option<Environment>,
    /// Print nothing but errors (and the data a command exists to print).
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the selected environment, check its configuration, or print the access matrix.
    Env(Env),
    /// The local Supabase-style database: up, status, down, reset, destroy.
    Db(Db),
    /// Run every check CI runs: format, clippy, tests.
    Ci(Ci),
}

#[derive(Debug, Args)]
pub struct Env {
    #[command(subcommand)]
    pub command: Option<EnvCommand>,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// The environment, the rule that decided it, files, database and settings (the default).
    Show,
    /// Check the configuration: keys, URLs, secret files, reachability, stamp. Exit 1 on problems.
    Check {
        /// Seconds to wait for the database.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Print the access matrix: which operation each environment allows.
    Matrix,
}

#[derive(Debug, Args)]
pub struct Db {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create (the first time) and start the local cluster; bootstrap and stamp it.
    Up(DbUp),
    /// Whether the local cluster runs, its port, data folder and stamp.
    Status,
    /// Stop the local cluster, keeping its data.
    Down,
    /// Re-create the database (local or test only): bootstrap, stamp, migrations, seed.
    Reset(DbReset),
    /// Stop the local cluster and delete its data folder.
    Destroy {
        /// Don't ask; needed when stdin is not a terminal.
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct DbUp {
    /// Don't load seed data into a newly created database.
    #[arg(long)]
    pub no_seed: bool,
}

#[derive(Debug, Args)]
pub struct DbReset {
    /// Don't load seed data.
    #[arg(long)]
    pub no_seed: bool,
}

#[derive(Debug, Args)]
pub struct Ci {
    /// Skip the format and clippy sections.
    #[arg(long)]
    pub tests_only: bool,
}

fn parse_env(raw: &str) -> Result<Environment, String> {
    raw.parse::<Environment>().map_err(|err| err.to_string().lines().next().unwrap_or_default().to_string())
}

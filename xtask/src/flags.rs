//! The command line: one documented struct per command.

use clap::{Args, Parser, Subcommand};

use app::Environment;

/// The project's automation: environments, the local database, migrations, seed data,
/// staging sync and CI.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, propagate_version = true)]
pub(crate) struct Xtask {
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
pub(crate) enum Command {
    /// Show the selected environment, check its configuration, or print the access matrix.
    Env(Env),
    /// The local Supabase-style database: up, status, down, reset, destroy.
    Db(Db),
    /// Schema migrations: status, up, down, new, resolve, verify, diff.
    Migrate(Migrate),
    /// Take a verified backup (`pg_dump -Fc`) of the environment's database into `backups/`.
    Backup(Backup),
    /// The row-level security suite: every tenant table, every role, in a rolled-back transaction.
    Rls(Rls),
    /// Load deterministic, realistic clinic data (local, staging, test).
    Seed(Seed),
    /// Copy production (or staging) into staging (or local, test), anonymized, atomically, verified.
    StageSync(StageSync),
    /// Load-test the dashboard's queries under row-level security (never production; limited on local).
    Load(Load),
    /// Benchmarks that print ratios measured side by side in one run.
    Bench(Bench),
    /// Run every check CI runs: format, clippy, tests.
    Ci(Ci),
}

#[derive(Debug, Args)]
pub(crate) struct Env {
    #[command(subcommand)]
    pub command: Option<EnvCommand>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EnvCommand {
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
pub(crate) struct Db {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Create (the first time) and start the local cluster; bootstrap and stamp it.
    Up(DbUp),
    /// Whether the local cluster runs, its port, data folder and stamp.
    Status,
    /// Stop the local cluster, keeping its data.
    Down,
    /// Re-create the database (local or test only): bootstrap, stamp, migrations, seed.
    Reset(DbReset),
    /// Swap the restore point the last `db reset` or `seed --replace` kept back in (local or
    /// test only); the replaced state becomes the restore point, so undo twice is redo.
    Undo,
    /// Stop the local cluster and delete its data folder.
    Destroy {
        /// Don't ask; needed when stdin is not a terminal.
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DbUp {
    /// Don't load seed data into a newly created database.
    #[arg(long)]
    pub no_seed: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DbReset {
    /// Don't load seed data.
    #[arg(long)]
    pub no_seed: bool,
    /// Keep no restore point (the database replaced is dropped, and `db undo` swaps back
    /// the one an earlier command kept, if any).
    #[arg(long)]
    pub no_restore_point: bool,
    /// Internal: drop the database a template reset replaced (run detached by `db reset`).
    #[arg(long, hide = true)]
    pub drop_replaced: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Migrate {
    #[command(subcommand)]
    pub command: MigrateCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MigrateCommand {
    /// Each migration: applied, pending, modified (checksum differs), missing (file gone), failed.
    Status,
    /// Apply pending migrations, each in its own transaction with its ledger row.
    Up(MigrateUp),
    /// Revert applied migrations, newest first (local and test only).
    Down {
        /// Revert down to this version, which stays applied; without it, only the newest.
        #[arg(long, value_name = "VERSION")]
        to: Option<u64>,
    },
    /// Write the next numbered up/down pair.
    New {
        /// What the migration does, in a few words (becomes the file name).
        name: String,
    },
    /// Settle a failed migration after fixing the database by hand.
    Resolve {
        version: u64,
        /// The migration's changes are in place: record it as applied.
        #[arg(long, conflicts_with = "rolled_back", required_unless_present = "rolled_back")]
        applied: bool,
        /// The migration's changes are not in place: forget the failure so `up` retries it.
        #[arg(long)]
        rolled_back: bool,
    },
    /// On a throwaway cluster: apply all, then down and up again each from the newest, comparing schemas.
    Verify,
    /// Lint migration files: locking rules (Squawk) and the project's rules; exit 1 on unacknowledged findings.
    Lint(MigrateLint),
    /// On a throwaway copy of the data: apply the pending migrations statement by statement (time, locks, rewrites), then the downs and the ups again.
    Rehearse(MigrateRehearse),
    /// Compare two environments' ledgers and schemas; exit 1 on drift.
    Diff {
        #[arg(long, value_parser = parse_env)]
        from: Environment,
        #[arg(long, value_parser = parse_env)]
        to: Environment,
    },
    /// Adopt an existing database: prove the migrations make its schema (or write its schema
    /// as the first migration), then record them as applied and stamp it, after a typed
    /// confirmation.
    Baseline(MigrateBaseline),
}

#[derive(Debug, Args)]
pub(crate) struct MigrateBaseline {
    /// The typed confirmation: the production project's ref, or the environment's name.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
    /// Run the whole proof on a scratch cluster; write and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Put this table's rows (a small configuration table) into the first migration;
    /// repeatable.
    #[arg(long = "with-data", value_name = "TABLE")]
    pub with_data: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateUp {
    /// Apply pending migrations up to and including this version.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<u64>,
    /// Print what would be applied, and apply nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The production project ref, to confirm without a terminal.
    #[arg(long, value_name = "PROJECT_REF")]
    pub confirm: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateLint {
    /// Files to lint; without them, the migrations the baseline does not hold (new or changed).
    pub files: Vec<std::path::PathBuf>,
    /// Lint every migration, the baselined ones too (CI).
    #[arg(long, conflicts_with = "files")]
    pub all: bool,
    /// Record the linted files and their findings in migrations/lint-baseline.toml (only for
    /// files already applied to production).
    #[arg(long)]
    pub update_baseline: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateRehearse {
    /// The data: `copy` (the environment's database, copied read-only), or a seeded profile.
    #[arg(long, value_enum, default_value_t = RehearseData::Copy)]
    pub data: RehearseData,
    /// With seeded data: rehearse the migrations from this version on; the earlier ones build
    /// the schema the seed fills. Without it, the newest migration alone.
    #[arg(long, value_name = "VERSION")]
    pub from: Option<u64>,
    /// With a copy: rehearse the migrations pending on this environment (its ledger is only
    /// read); a copy that is ahead of it is first reverted there with the downs.
    #[arg(long, value_name = "NAME", value_parser = parse_env)]
    pub pending_on: Option<Environment>,
    /// Print the report as JSON on stdout (for CI).
    #[arg(long)]
    pub json: bool,
    /// A lock that blocks writes, held longer than this on a large table, is a problem.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub max_lock_ms: u64,
    /// Tables with more rows than this are large: long locks and rewrites on them are problems.
    #[arg(long, value_name = "ROWS", default_value_t = 10_000)]
    pub max_rows: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RehearseData {
    Copy,
    Minimal,
    Realistic,
    Large,
}

#[derive(Debug, Args)]
pub(crate) struct Backup {}

#[derive(Debug, Args)]
pub(crate) struct Rls {
    #[command(subcommand)]
    pub command: Option<RlsCommand>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RlsCommand {
    /// The access matrix: every persona x exposed table x operation, probed on generated rows
    /// in a rolled-back transaction; with column grants, definer functions and views.
    Matrix(RlsMatrix),
}

#[derive(Debug, Args)]
pub(crate) struct RlsMatrix {
    /// Compare with the committed snapshot (env/rls-matrix.txt); exit 1 naming changed cells.
    #[arg(long, conflicts_with = "update")]
    pub check: bool,
    /// Rewrite the committed snapshot (after reviewing the change).
    #[arg(long)]
    pub update: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Seed {
    /// How much data: minimal (test fixtures), realistic (about five clinics over two years),
    /// large (at least 1M rows, for load tests).
    #[arg(long, value_enum, default_value_t = Profile::Realistic)]
    pub profile: Profile,
    /// Number of clinics (overrides the profile's).
    #[arg(long)]
    pub clinics: Option<u32>,
    /// Number of days of history (overrides the profile's).
    #[arg(long)]
    pub days: Option<u32>,
    /// The random seed: the same seed and options give byte-identical data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Empty the seeded tables first (in the same transaction), keeping the database as it
    /// was as its restore point on local and test (see `db undo`).
    #[arg(long)]
    pub replace: bool,
    /// With --replace: keep no restore point.
    #[arg(long)]
    pub no_restore_point: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Profile {
    Minimal,
    Realistic,
    Large,
}

#[derive(Debug, Args)]
pub(crate) struct StageSync {
    #[command(subcommand)]
    pub command: Option<StageSyncCommand>,
    /// The source: production or staging.
    #[arg(long, value_parser = parse_env, default_value = "production")]
    pub from: Environment,
    /// The target: staging (the default), local or test. Never production. The target is
    /// chosen here only: `--env`, if given, must name the same environment.
    #[arg(long, value_parser = parse_env)]
    pub to: Option<Environment>,
    /// The rules file: what happens to every column.
    #[arg(long, value_name = "FILE", default_value = "env/stage-sync.toml")]
    pub rules: std::path::PathBuf,
    /// Print the plan, rule coverage, collision risks and a sample of masked output; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Don't ask before replacing the target's data; needed when stdin is not a terminal.
    #[arg(long, short)]
    pub yes: bool,
    /// Write a machine-readable summary to stdout.
    #[arg(long)]
    pub json: bool,
    /// Apply the target's pending migrations first, instead of refusing when the schemas differ.
    #[arg(long)]
    pub migrate_target: bool,
    /// Copy only these clinics (ids, comma-separated) or the first N, and all they reach through foreign keys.
    #[arg(long, value_name = "ID,...|N")]
    pub clinics: Option<Clinics>,
    /// The source is this `pg_dump -Fc` file of production, restored into a throwaway cluster (no production connection).
    #[arg(long, value_name = "FILE", conflicts_with = "from")]
    pub from_dump: Option<std::path::PathBuf>,
    /// Into local or test: keep no restore point of the database as it was before the sync.
    #[arg(long)]
    pub no_restore_point: bool,
}

impl StageSync {
    /// The target: `--to`, else staging.
    pub(crate) fn target(&self) -> Environment {
        self.to.unwrap_or(Environment::Staging)
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum StageSyncCommand {
    /// Write a starting rules file from the source's schema, with suggestions.
    InitRules {
        /// Overwrite an existing rules file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Load {
    /// Concurrent clients, one connection each, running transactions back to back.
    #[arg(long, default_value_t = 4)]
    pub clients: u32,
    /// Seconds to run (10 without --transactions); capped on local.
    #[arg(long, value_name = "SECONDS", conflicts_with = "transactions")]
    pub duration: Option<u64>,
    /// Run this many transactions in all, then stop.
    #[arg(long, value_name = "N")]
    pub transactions: Option<u64>,
    /// The workload: the queries, their weights, roles and parameters.
    #[arg(long, value_name = "FILE", default_value = "env/load.toml")]
    pub workload: std::path::PathBuf,
    /// Write the report as JSON to stdout.
    #[arg(long)]
    pub json: bool,
    /// Don't ask before load-testing staging; needed when stdin is not a terminal.
    #[arg(long, short)]
    pub yes: bool,
    /// The random seed for drawing members and parameters.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub(crate) struct Bench {
    /// Without a subcommand: every benchmark, then one table of the targets.
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Seed the large profile on a throwaway cluster; compare with a server-side INSERT ... SELECT.
    Seed,
    /// Compare stage-sync with pg_dump | pg_restore (single and -j2) and a raw COPY pipe of the same data.
    StageSync {
        /// Rows to generate in the source (about 1M by default for each schema).
        #[arg(long)]
        rows: Option<u64>,
        /// Only this schema: the `large` seed, or the generated Prisma-style one (default: both).
        #[arg(long, value_enum)]
        schema: Option<BenchSchema>,
    },
    /// Time `db up` from nothing (with and without the seed) next to a bare initdb and start.
    DbUp,
    /// Time `db reset` from its template (hit) and rebuilt (miss) next to a raw template clone.
    Reset,
    /// Time `rls matrix` on a generated schema: tables x 4 operations x 8 personas.
    RlsMatrix {
        /// Tenant tables in the generated schema.
        #[arg(long, default_value_t = 50)]
        tables: usize,
    },
}

/// `bench stage-sync --schema`: which source schema the tools copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BenchSchema {
    /// The project's migrations with the `large` seed: many indexes, uuid keys.
    Large,
    /// A generated Prisma-style schema: 23 tables, text keys, few indexes.
    Generated,
}

#[derive(Debug, Args)]
pub(crate) struct Ci {
    /// Skip the format and clippy sections.
    #[arg(long)]
    pub tests_only: bool,
}

fn parse_env(raw: &str) -> Result<Environment, String> {
    raw.parse::<Environment>().map_err(|err| err.to_string().lines().next().unwrap_or_default().to_string())
}

/// `stage-sync --clinics`: the first N clinics by key, or these keys. Parsed before any
/// connection, so a bad value is a usage error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Clinics {
    First(i64),
    Ids(Vec<String>),
}

impl std::str::FromStr for Clinics {
    type Err = String;

    fn from_str(spec: &str) -> Result<Clinics, String> {
        if let Ok(count) = spec.trim().parse::<i64>() {
            return match count {
                1.. => Ok(Clinics::First(count)),
                _ => Err(format!("{count} is not a positive number of clinics; give a count or clinic ids")),
            };
        }
        let ids: Vec<String> = spec.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if ids.is_empty() {
            return Err("no clinic ids given; give a count or clinic ids, comma-separated".to_string());
        }
        Ok(Clinics::Ids(ids))
    }
}

mod misuse;
#[cfg(test)]
mod tests;

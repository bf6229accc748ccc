//! The access matrix: which operation each environment allows. Every command consults it
//! (through the [`Guard`](crate::Guard)) before it acts.

use std::fmt;

use crate::Environment;

/// What a command is about to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    // The design's rows.
    RlsTesting,
    MigrationTesting,
    LoadTesting,
    FeatureDevelopment,
    DataExperiments,
    CustomerDemos,
    // The commands' own.
    Seed,
    Reset,
    /// Swapping a database's restore point back in (`db undo`), and keeping one: a
    /// database created beside the target, so only where databases may be created.
    Undo,
    Migrate,
    /// Reverting migrations: only where losing data is fine.
    MigrateDown,
    /// Adopting an existing database: recording its schema as the baseline and stamping it.
    Baseline,
    StageSyncSource,
    StageSyncTarget,
    Backup,
    /// `env`, `db status`, `migrate status` and `diff`: looking, never writing.
    Inspect,
}

/// How far an operation may go in an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Never,
    Yes,
    /// Allowed with a warning: the environment is not sized for it.
    Limited,
    /// Reads only, through a read-only session.
    ReadOnly,
    /// Allowed only after the typed confirmation that the environment's settings require.
    Confirmed,
}

impl Operation {
    pub const ALL: [Operation; 16] = [
        Operation::RlsTesting,
        Operation::MigrationTesting,
        Operation::LoadTesting,
        Operation::FeatureDevelopment,
        Operation::DataExperiments,
        Operation::CustomerDemos,
        Operation::Seed,
        Operation::Reset,
        Operation::Undo,
        Operation::Migrate,
        Operation::MigrateDown,
        Operation::Baseline,
        Operation::StageSyncSource,
        Operation::StageSyncTarget,
        Operation::Backup,
        Operation::Inspect,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Operation::RlsTesting => "RLS testing",
            Operation::MigrationTesting => "Migration testing",
            Operation::LoadTesting => "Load testing",
            Operation::FeatureDevelopment => "Feature development",
            Operation::DataExperiments => "Data experiments",
            Operation::CustomerDemos => "Customer demos",
            Operation::Seed => "Seed (test data)",
            Operation::Reset => "Create / reset database",
            Operation::Undo => "Undo (restore point)",
            Operation::Migrate => "Migrate",
            Operation::MigrateDown => "Migrate down",
            Operation::Baseline => "Adopt (baseline)",
            Operation::StageSyncSource => "Stage-sync source",
            Operation::StageSyncTarget => "Stage-sync target",
            Operation::Backup => "Backup",
            Operation::Inspect => "Inspect (env, status, diff)",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Access {
    pub(crate) fn allows_writes(self) -> bool {
        matches!(self, Access::Yes | Access::Limited | Access::Confirmed)
    }

    pub(crate) fn allows_reads(self) -> bool {
        self != Access::Never
    }

    pub fn label(self) -> &'static str {
        match self {
            Access::Never => "NEVER",
            Access::Yes => "yes",
            Access::Limited => "limited",
            Access::ReadOnly => "read-only",
            Access::Confirmed => "confirm",
        }
    }
}

/// The matrix itself: the design's table, with local and test as separate columns, plus
/// the operations the commands need.
pub fn access(op: Operation, env: Environment) -> Access {
    use Access::*;
    use Environment::*;
    use Operation::*;
    match (op, env) {
        (RlsTesting | MigrationTesting | LoadTesting | FeatureDevelopment | DataExperiments, Production) => Never,
        (RlsTesting | MigrationTesting | FeatureDevelopment | DataExperiments, _) => Yes,
        (LoadTesting, Staging | Test) => Yes,
        (LoadTesting, Local) => Limited,
        (CustomerDemos, Production) => ReadOnly,
        (CustomerDemos, Staging) => Yes,
        (CustomerDemos, Local | Test) => Never,
        (Seed, Production) => Never,
        (Seed, _) => Yes,
        (Reset, Local | Test) => Yes,
        (Reset, Production | Staging) => Never,
        (Undo, Local | Test) => Yes,
        (Undo, Production | Staging) => Never,
        (Migrate, Production) => Confirmed,
        (Migrate, _) => Yes,
        (Baseline, Production) => Confirmed,
        (Baseline, _) => Yes,
        (MigrateDown, Local | Test) => Yes,
        (MigrateDown, Production | Staging) => Never,
        (StageSyncSource, Production) => ReadOnly,
        (StageSyncSource, Staging) => ReadOnly,
        (StageSyncSource, Local | Test) => Never,
        (StageSyncTarget, Production) => Never,
        (StageSyncTarget, _) => Yes,
        (Backup | Inspect, _) => ReadOnly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_never_takes_development_writes() {
        for op in Operation::ALL {
            let access = access(op, Environment::Production);
            if matches!(op, Operation::Migrate | Operation::Baseline) {
                assert_eq!(access, Access::Confirmed);
            } else {
                assert!(!access.allows_writes(), "{op} may write to production");
            }
        }
        assert_eq!(access(Operation::CustomerDemos, Environment::Production), Access::ReadOnly);
        assert_eq!(access(Operation::LoadTesting, Environment::Local), Access::Limited);
    }
}

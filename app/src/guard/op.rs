//! Operations as types, so that a function's signature says what it is allowed to do, and
//! what each one demands beyond the access matrix: a write that plants test data is refused
//! where the environment's settings allow none (`allow_test_data = false`).

use crate::matrix::Operation;

mod sealed {
    pub trait Sealed {}
}

pub trait Op: sealed::Sealed {
    const OPERATION: Operation;
    /// It writes (a [`WriteOp`]); else it only reads.
    const WRITES: bool;
    /// It plants test data (seed rows, rolled-back probe rows): refused where the
    /// environment's settings say `allow_test_data = false`, with this message (`{env}`
    /// stands for the environment).
    const TEST_DATA: Option<&'static str>;
}

/// Operations that write. `STAMPS`: whether it may stamp an unstamped, empty database
/// (it creates or first migrates one).
pub trait WriteOp: Op {
    const STAMPS: bool;
}

/// Operations that only read, in read-only transactions. `SESSION`: it needs a server
/// session of its own (a snapshot across statements, a client program that sets
/// session state), so a transaction pooler is refused.
pub trait ReadOp: Op {
    const SESSION: bool;
}

macro_rules! ops {
    ($($(#[$doc:meta])* $name:ident => $op:ident, $kind:ident($flag:expr) $(, $test_data:expr)?;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl sealed::Sealed for $name {}
        impl Op for $name {
            const OPERATION: Operation = Operation::$op;
            const WRITES: bool = ops!(@writes $kind);
            const TEST_DATA: Option<&'static str> = ops!(@test_data $($test_data)?);
        }
        ops!(@kind $name $kind $flag);
    )*};
    (@writes write) => { true };
    (@writes read) => { false };
    (@test_data) => { None };
    (@test_data $message:expr) => { Some($message) };
    (@kind $name:ident write $stamps:expr) => { impl WriteOp for $name { const STAMPS: bool = $stamps; } };
    (@kind $name:ident read $session:expr) => { impl ReadOp for $name { const SESSION: bool = $session; } };
}

ops! {
    Seed => Seed, write(false), "seeding {env} is refused: its settings do not allow test data\nhint: env/environments.toml sets allow_test_data = false for {env}; seed local or test instead";
    Reset => Reset, write(true);
    Undo => Undo, write(false);
    Migrate => Migrate, write(true);
    MigrateDown => MigrateDown, write(false);
    Baseline => Baseline, write(true);
    /// The RLS suite (`cargo xtask rls`).
    RlsTesting => RlsTesting, write(false), "the RLS suite plants test rows (rolled back), but {env} has allow_test_data = false";
    /// The access matrix (`cargo xtask rls matrix`): RLS testing with probe rows.
    RlsMatrix => RlsTesting, write(false), "the access matrix plants probe rows (rolled back), but {env} has allow_test_data = false";
    LoadTesting => LoadTesting, write(false);
    StageSyncTarget => StageSyncTarget, write(false);
    StageSyncSource => StageSyncSource, read(true);
    /// Reading a copy of an environment to rehearse migrations on (`migrate rehearse --data copy`).
    MigrationTesting => MigrationTesting, read(true);
    Backup => Backup, read(true);
    Inspect => Inspect, read(false);
}

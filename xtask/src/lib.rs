//! `cargo xtask`: the project's automation, one module per command. The binary's `main`
//! only calls [`main`]; the end-to-end tests use [`pg`] for their throwaway clusters.

mod backup;
mod bench;
mod ci;
pub mod context;
mod db;
mod env;
mod flags;
mod migrate;
pub mod pg;
mod rls;
mod seed;
mod stage_sync;

use std::process::ExitCode;

use clap::Parser;

/// The bootstrap SQL that gives a plain cluster Supabase's roles and `auth` schema.
pub const SUPABASE_SQL: &str = include_str!("db/supabase.sql");

/// Runs the command line; prints errors as `error: ...` with their causes, secrets masked.
///
/// Exit codes: 0 success, 1 the command failed (the message says why), 2 bad usage.
pub fn main() -> ExitCode {
    let flags = flags::Xtask::parse();
    context::set_quiet(flags.global.quiet);
    let result = match flags.command {
        flags::Command::Env(cmd) => cmd.run(&flags.global),
        flags::Command::Db(cmd) => cmd.run(&flags.global),
        flags::Command::Migrate(cmd) => cmd.run(&flags.global),
        flags::Command::Backup(cmd) => cmd.run(&flags.global),
        flags::Command::Rls(cmd) => cmd.run(&flags.global),
        flags::Command::Seed(cmd) => cmd.run(&flags.global),
        flags::Command::StageSync(cmd) => cmd.run(&flags.global),
        flags::Command::Bench(cmd) => cmd.run(&flags.global),
        flags::Command::Ci(cmd) => cmd.run(&flags.global),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", app::secrets::redact(&format!("{err:#}")));
            ExitCode::FAILURE
        }
    }
}

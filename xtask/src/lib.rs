//! `cargo xtask`: the project's automation, one module per command. The binary's `main`
//! only calls [`main`]; the end-to-end tests use [`throwaway`] for their throwaway clusters
//! ([`testing`] for the migrated ones), [`pg`] for plain clusters and [`generated`] for the
//! benchmark's generated schema.

mod app_meta;
mod backup;
mod bench;
mod bulk;
mod ci;
pub mod context;
mod db;
mod env;
mod flags;
/// The benchmark's generated Prisma-style schema, which the end-to-end tests sync too.
pub mod generated;
mod load;
mod migrate;
pub mod pg;
mod restore_point;
mod rls;
mod seed;
mod sql;
mod stage_sync;
mod supabase;
mod tenancy;
#[doc(hidden)]
pub mod testing;
pub mod throwaway;
#[cfg(test)]
mod tidy;
pub mod ui;

use std::process::ExitCode;

use clap::Parser;

/// The bootstrap SQL that gives a plain cluster what Supabase's platform creates.
pub use supabase::SUPABASE_SQL;

/// Set, the binary reports its peak memory on stderr at exit: the benchmarks measure their
/// child processes with it.
pub const PEAK_MEMORY_VAR: &str = "XTASK_REPORT_PEAK_MEMORY";

/// This process's peak resident memory (`VmHWM`), in kB.
pub fn peak_memory_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Runs the command line; prints errors as `error: ...` with their causes, secrets masked.
///
/// Exit codes: 0 success, 1 the command failed (the message says why), 2 bad usage.
pub fn main() -> ExitCode {
    let flags = flags::Xtask::parse();
    if let Some(misuse) = flags.env_misuse() {
        use clap::CommandFactory;
        let _ = flags::Xtask::command().error(clap::error::ErrorKind::ArgumentConflict, misuse).print();
        return ExitCode::from(2);
    }
    let printer = ui::init(flags.global.quiet);
    let result = match flags.command {
        flags::Command::Env(cmd) => cmd.run(&flags.global),
        flags::Command::Db(cmd) => cmd.run(&flags.global),
        flags::Command::Migrate(cmd) => cmd.run(&flags.global),
        flags::Command::Backup(cmd) => cmd.run(&flags.global),
        flags::Command::Rls(cmd) => cmd.run(&flags.global),
        flags::Command::Seed(cmd) => cmd.run(&flags.global),
        flags::Command::StageSync(cmd) => cmd.run(&flags.global),
        flags::Command::Load(cmd) => cmd.run(&flags.global),
        flags::Command::Bench(cmd) => cmd.run(&flags.global),
        flags::Command::Ci(cmd) => cmd.run(&flags.global),
    };
    if std::env::var_os(PEAK_MEMORY_VAR).is_some() {
        ui::report(format!("peak-memory-kb: {}", peak_memory_kb().unwrap_or(0)));
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `| head` closed stdout: the command stopped early, as asked, and cleaned up.
        Err(err) if ui::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            printer.error(&format!("{err:#}"));
            ExitCode::FAILURE
        }
    }
}

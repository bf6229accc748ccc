//! End-to-end tests: the real `xtask` binary against real PostgreSQL clusters that the
//! [`harness`] starts and always removes. One test binary for the whole repository.

// A test binary has no outside: `pub` in its modules means "for the other suites".
#![allow(unreachable_pub)]

mod harness;
mod helpers;
mod pgbouncer;

mod attack;
mod attack_beside;
mod attack_restore;
mod baseline;
mod baseline_platform;
mod baseline_prisma;
mod boundaries;
mod db;
mod env;
mod guard;
mod load;
mod migrate;
mod migrate_lint;
mod ownership;
mod pooler;
mod rehearse;
mod reset_template;
mod rls;
mod rls_matrix;
mod seed;
mod seed_beside;
mod stage_sync;
mod stage_sync_binary;
mod stage_sync_dump;
mod stage_sync_fixtures;
mod stage_sync_generated;
mod stage_sync_init;
mod stage_sync_shadow;
mod stage_sync_shapes;
mod stage_sync_supabase;
mod stage_sync_supabase_login;
mod stage_sync_tryout;
mod stage_sync_types;
mod supabase;
mod undo;

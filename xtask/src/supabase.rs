//! What Supabase's platform gives a project before its first migration, for clusters this
//! tool makes: the bootstrap SQL (`supabase/supabase.sql`: roles, `auth`, `storage`,
//! `realtime`, `extensions` on the search path, grants, the `supabase_realtime`
//! publication) and its version (`supabase/bootstrap.rs`), and the extensions migrations
//! create, checked before anything changes (`supabase/extensions.rs`). Used by `db`,
//! `migrate` and the throwaway clusters; it stands on `pg` alone.

pub(crate) mod bootstrap;
pub(crate) mod extensions;

/// The bootstrap SQL that gives a plain cluster what Supabase's platform creates before a
/// project's first migration (roles, `auth`, `storage`, `realtime`, `extensions`, grants).
pub const SUPABASE_SQL: &str = include_str!("supabase/supabase.sql");

//! Where the migrations are and in which layout: this repository's `migrations/` of
//! `NNNN_name.up.sql`/`.down.sql` pairs, a Supabase project's `supabase/migrations` of
//! `<timestamp>_name.sql` files without down files, or Prisma's `prisma/migrations` of
//! `<timestamp>_name/migration.sql` folders (chosen in `env/environments.toml`
//! `[migrations]`). The other tool's own ledger (`supabase_migrations.schema_migrations`,
//! Prisma's `_prisma_migrations`) is read, so a database migrated by `supabase db push` or
//! `prisma migrate deploy` shows the right status, and written, so that tool sees what we
//! applied.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use anyhow::{Context, Result, bail};
use postgres::GenericClient;

use super::files::{self, Migration};
use crate::context;

/// How the migration files are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `NNNN_name.up.sql` and `NNNN_name.down.sql` pairs.
    Pairs,
    /// The Supabase CLI's `<timestamp>_name.sql`, forward only.
    Supabase,
    /// Prisma's `<timestamp>_name/migration.sql`, forward only.
    Prisma,
}

impl Layout {
    /// Another tool's layout: no down files, timestamps for versions, that tool's ledger.
    pub(crate) fn forward_only(self) -> bool {
        self != Layout::Pairs
    }
}

/// The migrations folder of the project.
#[derive(Clone, Debug)]
pub(crate) struct Folder {
    pub dir: PathBuf,
    /// The folder relative to the project root, as messages show it.
    pub shown: String,
    pub layout: Layout,
    /// `[migrations] skip_platform_extensions`.
    pub skip_platform_extensions: bool,
}

/// The folder `env/environments.toml` names (`[migrations] dir`, default `migrations`); a
/// folder ending in `supabase/migrations` is in the Supabase layout, one ending in
/// `prisma/migrations` in Prisma's, unless `layout` says otherwise.
pub(crate) fn folder() -> Result<&'static Folder> {
    static FOLDER: OnceLock<Folder> = OnceLock::new();
    if let Some(folder) = FOLDER.get() {
        return Ok(folder);
    }
    let root = context::project_root();
    let settings = app::Settings::load(&root)?;
    let shown = settings.migrations.dir.clone().unwrap_or_else(|| "migrations".to_string());
    let shown = shown.trim_end_matches('/').to_string();
    let layout = match settings.migrations.layout.as_deref() {
        Some("supabase") => Layout::Supabase,
        Some("pairs") => Layout::Pairs,
        Some("prisma") => Layout::Prisma,
        None if Path::new(&shown).ends_with("supabase/migrations") => Layout::Supabase,
        None if Path::new(&shown).ends_with("prisma/migrations") => Layout::Prisma,
        None => Layout::Pairs,
        Some(other) => bail!(
            "{}: [migrations] layout = \"{other}\" is not a layout\nhint: use \"pairs\" (NNNN_name.up.sql/.down.sql), \"supabase\" (<timestamp>_name.sql) or \"prisma\" (<timestamp>_name/migration.sql)",
            app::Settings::PATH
        ),
    };
    let skip_platform_extensions = settings.migrations.skip_platform_extensions;
    Ok(FOLDER.get_or_init(|| Folder { dir: root.join(&shown), shown, layout, skip_platform_extensions }))
}

/// Every migration in the project's folder, in version order. With
/// `skip_platform_extensions`, the statements on extensions only Supabase's platform has
/// are blanked out of the SQL that runs (the checksum stays the file's).
pub(crate) fn load() -> Result<Vec<Migration>> {
    let folder = folder()?;
    if !folder.dir.is_dir() && folder.shown != "migrations" {
        bail!(
            "{}: [migrations] dir = \"{}\" is not a folder\nhint: point it at the project's migrations folder, relative to the project root",
            app::Settings::PATH,
            folder.shown
        );
    }
    let mut migrations = match folder.layout {
        Layout::Pairs => files::load(&folder.dir, &folder.shown)?,
        Layout::Supabase => files::load_supabase(&folder.dir, &folder.shown)?,
        Layout::Prisma => files::load_prisma(&folder.dir, &folder.shown)?,
    };
    if folder.skip_platform_extensions {
        for m in &mut migrations {
            if let Some(sql) = crate::supabase::extensions::skip_platform_only(&m.up.file, &m.up.sql) {
                m.up.sql = sql;
            }
        }
    }
    Ok(migrations)
}

/// The Supabase CLI's ledger: the versions (and names, where recorded) that `supabase db
/// push` or `supabase migration up` applied. Empty when the database has none.
pub(crate) fn read_cli_ledger(client: &mut impl GenericClient) -> Result<Vec<(u64, String)>> {
    let exists: bool =
        client.query_one("select to_regclass('supabase_migrations.schema_migrations') is not null", &[])?.get(0);
    if !exists {
        return Ok(Vec::new());
    }
    // Older CLI versions have no `name` column: read it through the row's JSON.
    let rows = client.query(
        "select version::text, coalesce(to_jsonb(m) ->> 'name', '') from supabase_migrations.schema_migrations m",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            let version: String = r.get(0);
            let parsed = version.parse().with_context(|| {
                format!("supabase_migrations.schema_migrations holds version `{version}`, which is not a number")
            })?;
            Ok((parsed, r.get(1)))
        })
        .collect()
}

/// Records an applied migration in the other tool's ledger, in the caller's transaction:
/// Prisma's for the Prisma layout, else the Supabase CLI's as the CLI does (the version as
/// text, the name, the statements: here the whole file).
pub(crate) fn record_in_cli_ledger(client: &mut impl GenericClient, m: &Migration) -> Result<(), postgres::Error> {
    if folder().is_ok_and(|f| f.layout == Layout::Prisma) {
        return super::prisma::record(client, m);
    }
    client.batch_execute(
        "create schema if not exists supabase_migrations;
         create table if not exists supabase_migrations.schema_migrations (version text primary key, statements text[], name text);
         alter table supabase_migrations.schema_migrations add column if not exists name text;",
    )?;
    client.execute(
        "insert into supabase_migrations.schema_migrations (version, statements, name) values ($1, array[$2], $3)
         on conflict (version) do nothing",
        &[&m.version.to_string(), &m.up.sql, &m.name],
    )?;
    Ok(())
}

/// The file name `migrate new` writes in the Supabase layout: the UTC time as the CLI
/// writes it (`YYYYMMDDHHMMSS`), then the name.
pub(crate) fn supabase_file_name(slug: &str, unix_seconds: u64) -> String {
    let (days, secs) = ((unix_seconds / 86_400) as i64, unix_seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (secs / 3_600, secs / 60 % 60, secs % 60);
    format!("{year:04}{month:02}{day:02}{h:02}{m:02}{s:02}_{slug}.sql")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supabase_file_names_carry_the_utc_time() {
        assert_eq!(supabase_file_name("init", 0), "19700101000000_init.sql");
        // 2024-02-29 13:45:07 UTC.
        assert_eq!(supabase_file_name("add_notes", 1_709_214_307), "20240229134507_add_notes.sql");
    }
}

//! What an unstamped database holds that is not the platform's: the test of "empty" that
//! decides whether a database without the stamp may become this project's. It fails
//! closed: what the tool's bootstrap (`xtask/src/supabase/supabase.sql`) or Supabase's platform
//! creates is listed here, and everything else counts: a row in any table of any schema
//! (platform tables included, but for the platform's own ledgers), a large object, a
//! schema, table, view, sequence, function or type that no extension and no platform made.

use anyhow::{Context, Result};
use postgres::GenericClient;

/// Schemas whose objects the platform makes (Supabase's services, the tool's `app_meta`):
/// their tables count by their rows only. Every schema Supabase manages but `extensions`,
/// where only extension members and the few objects below are the platform's (`public` is
/// not Supabase's either).
fn platform_schemas() -> Vec<String> {
    super::SUPABASE_SCHEMAS.iter().filter(|s| **s != "extensions").map(|s| s.to_string()).collect()
}

/// Tables the platform fills itself, with the columns each has: its services' migration
/// ledgers (the storage API's, GoTrue's, Realtime's, the functions hooks', the image's own
/// `public.schema_migrations`), `pg_net`'s request queue and responses, and the tool's own
/// ledger (a first migration that failed leaves its row there, unstamped). Their rows are
/// bookkeeping, not a project's data, but only in that shape: a table that bears the name
/// with a column more, or `pg_net`'s tables not made by `pg_net`, is a table like any other.
/// `supabase_migrations.schema_migrations` is not here: it is a project's history.
const BOOKKEEPING_TABLES: &[(&str, &[&str])] = &[
    ("auth.schema_migrations", &["version"]),
    ("storage.migrations", &["id", "name", "hash", "executed_at"]),
    ("realtime.schema_migrations", &["version", "inserted_at"]),
    ("supabase_functions.migrations", &["version", "inserted_at"]),
    ("public.schema_migrations", &["version"]),
    ("net.http_request_queue", &["id", "method", "url", "headers", "body", "timeout_milliseconds"]),
    (
        "net._http_response",
        &["id", "status_code", "content_type", "headers", "content", "timed_out", "error_msg", "created"],
    ),
    (
        "app_meta.schema_migrations",
        &[
            "version",
            "name",
            "checksum",
            "applied_at",
            "duration_ms",
            "outcome",
            "environment",
            "error",
            "backup_path",
            "backup_bytes",
        ],
    ),
];

/// Which of the bookkeeping tables exist in their platform shape: ordinary tables whose
/// every column is among the ledger's, `net`'s members of the `pg_net` extension. `$1` is
/// the names, `$2` each one's columns joined by commas.
const BOOKKEEPING_SHAPED: &str = r"
select b.name from unnest($1::text[], $2::text[]) as b(name, columns)
join pg_catalog.pg_class c on c.oid = pg_catalog.to_regclass(b.name) and c.relkind = 'r'
where not exists (select from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0
                  and not a.attisdropped and a.attname::text <> all(pg_catalog.string_to_array(b.columns, ',')))
  and (b.name !~ '^net[.]' or exists (select from pg_catalog.pg_depend d
                                       join pg_catalog.pg_extension e on e.oid = d.refobjid
                                       where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid
                                         and d.deptype = 'e' and e.extname = 'pg_net'))
";

/// The tables Supabase's platform image keeps in `public` (its own ledger): the platform's,
/// though in the application's schema. `migrate baseline` and `stage-sync` leave them out
/// on Supabase only: elsewhere a `public.schema_migrations` is an application's (Rails',
/// golang-migrate's).
pub const SUPABASE_PUBLIC_TABLES: &[&str] = &["schema_migrations"];

/// Functions Supabase's platform puts in `extensions` that belong to no extension: the
/// targets of its event triggers.
const PLATFORM_FUNCTIONS: &[&str] = &[
    "extensions.grant_pg_cron_access",
    "extensions.grant_pg_graphql_access",
    "extensions.grant_pg_net_access",
    "extensions.pgrst_ddl_watch",
    "extensions.pgrst_drop_watch",
    "extensions.set_graphql_placeholder",
];

/// Supabase's event triggers and publication.
const PLATFORM_EVENT_TRIGGERS: &[&str] = &[
    "issue_graphql_placeholder",
    "issue_pg_cron_access",
    "issue_pg_graphql_access",
    "issue_pg_net_access",
    "pgrst_ddl_watch",
    "pgrst_drop_watch",
];
const PLATFORM_PUBLICATIONS: &[&str] = &["supabase_realtime"];

/// How many findings a refusal names.
const NAMED: usize = 5;

/// The objects that are not the platform's, one description each (`table public.x`,
/// `function extensions.f`, `schema s`, `event trigger e`, `publication p`). Extension
/// members are an extension's; array types, table row types and serial sequences go with
/// what they belong to. `information_schema` is looked into too: what `initdb` made there
/// has an OID below the first a user's object gets (16384), a table a superuser added not.
const OBJECTS: &str = r"
with own_ns as (
  select n.oid, n.nspname from pg_catalog.pg_namespace n
  where n.nspname !~ '^pg_' and n.nspname <> all($1::text[])
),
member as (select d.classid, d.objid from pg_catalog.pg_depend d where d.deptype = 'e')
select what from (
  select 1 as k, format('schema %I', n.nspname) as what from own_ns n
  where n.nspname not in ('public', 'extensions') and n.oid >= 16384
    and not exists (select from member m where m.classid = 'pg_catalog.pg_namespace'::regclass and m.objid = n.oid)
  union all
  select 2, format('%s %I.%I', case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
                     when 'f' then 'foreign table' when 'S' then 'sequence' else 'table' end, n.nspname, c.relname)
  from pg_catalog.pg_class c join own_ns n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S') and c.oid >= 16384
    and format('%s.%s', n.nspname, c.relname) <> all($5::text[])
    and not exists (select from member m where m.classid = 'pg_catalog.pg_class'::regclass and m.objid = c.oid)
    and not (c.relkind = 'S' and exists (select from pg_catalog.pg_depend d where d.classid = 'pg_catalog.pg_class'::regclass
                                         and d.objid = c.oid and d.deptype in ('a', 'i')))
  union all
  select 2, format('%s %I.%I', case c.relkind when 'm' then 'materialized view' else 'foreign table' end,
                   n.nspname, c.relname)
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('m', 'f') and n.nspname = any($1::text[])
    and not exists (select from member m where m.classid = 'pg_catalog.pg_class'::regclass and m.objid = c.oid)
  union all
  select 3, format('function %I.%I', n.nspname, p.proname)
  from pg_catalog.pg_proc p join own_ns n on n.oid = p.pronamespace
  where format('%s.%s', n.nspname, p.proname) <> all($2::text[]) and p.oid >= 16384
    and not exists (select from member m where m.classid = 'pg_catalog.pg_proc'::regclass and m.objid = p.oid)
  union all
  select 4, format('type %I.%I', n.nspname, t.typname)
  from pg_catalog.pg_type t join own_ns n on n.oid = t.typnamespace
  where t.typtype in ('b', 'c', 'd', 'e', 'r') and t.oid >= 16384
    and (t.typrelid = 0 or (select c.relkind from pg_catalog.pg_class c where c.oid = t.typrelid) = 'c')
    and not exists (select from pg_catalog.pg_type e where e.typarray = t.oid)
    and not exists (select from member m where m.classid = 'pg_catalog.pg_type'::regclass and m.objid = t.oid)
  union all
  select 5, format('event trigger %I', e.evtname) from pg_catalog.pg_event_trigger e
  where e.evtname <> all($3::text[])
    and not exists (select from member m where m.classid = 'pg_catalog.pg_event_trigger'::regclass and m.objid = e.oid)
  union all
  select 6, format('publication %I', p.pubname) from pg_catalog.pg_publication p where p.pubname <> all($4::text[])
) found
order by k, what
";

/// Tables whose rows are a project's data though no user made them: every table of the
/// platform's schemas and of extensions, but for the bookkeeping ones. Whether this login
/// can see all their rows: a table it may not read, or whose row-level security applies to
/// it, counts as holding data.
const PLATFORM_TABLES: &str = r"
select format('%I.%I', n.nspname, c.relname),
       pg_catalog.has_table_privilege(c.oid, 'select')
         and not (c.relrowsecurity and not r.rolsuper and not r.rolbypassrls
                  and (c.relforcerowsecurity or not pg_catalog.pg_has_role(c.relowner, 'usage')))
from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_roles r on r.rolname = current_user
where c.relkind in ('r', 'p') and not c.relispartition
  and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and format('%s.%s', n.nspname, c.relname) <> all($2::text[])
  and (n.nspname = any($1::text[])
       or exists (select from pg_catalog.pg_depend d where d.classid = 'pg_catalog.pg_class'::regclass
                  and d.objid = c.oid and d.deptype = 'e'))
order by 1
";

/// What the database holds that is not the platform's, described for a refusal (the first
/// few named, then how many more); `None` when it holds nothing of its own. Runs in a
/// nested transaction that is rolled back, with row-level security off so that a table
/// whose rows this login cannot see is an error, never a silent "empty".
pub fn describe(client: &mut impl GenericClient) -> Result<Option<String>> {
    let found = contents(client)?;
    if found.is_empty() {
        return Ok(None);
    }
    let mut shown = found.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
    if found.len() > NAMED {
        shown.push_str(&format!(" and {} more", found.len() - NAMED));
    }
    Ok(Some(shown))
}

/// Every finding, in a stable order: large objects, objects, then tables holding rows.
pub(crate) fn contents(client: &mut impl GenericClient) -> Result<Vec<String>> {
    let mut tx = client.transaction().context("cannot look at what the database holds")?;
    tx.batch_execute("set local row_security = off").context("cannot look at what the database holds")?;
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let (schemas, functions) = (platform_schemas(), strings(PLATFORM_FUNCTIONS));
    let (triggers, publications) = (strings(PLATFORM_EVENT_TRIGGERS), strings(PLATFORM_PUBLICATIONS));
    let bookkeeping = bookkeeping(&mut tx)?;
    let mut found = Vec::new();
    let large_objects: i64 = tx
        .query_one("select count(*) from pg_catalog.pg_largeobject_metadata", &[])
        .context("cannot count the database's large objects")?
        .get(0);
    if large_objects > 0 {
        found.push(format!("{large_objects} large object(s)"));
    }
    for row in tx
        .query(OBJECTS, &[&schemas, &functions, &triggers, &publications, &bookkeeping])
        .map_err(|err| anyhow::anyhow!("cannot list the database's objects: {}", crate::connect::error_chain(&err)))?
    {
        found.push(row.get(0));
    }
    let tables = tx
        .query(PLATFORM_TABLES, &[&schemas, &bookkeeping])
        .map_err(|err| anyhow::anyhow!("cannot list the platform's tables: {}", crate::connect::error_chain(&err)))?;
    for row in tables {
        let (table, visible): (String, bool) = (row.get(0), row.get(1));
        if !visible {
            found.push(format!("{table} (which this login cannot read in full)"));
            continue;
        }
        let rows: bool = tx
            .query_one(&format!("select exists (select from {table})"), &[])
            .map_err(|err| {
                anyhow::anyhow!("cannot tell whether {table} holds rows: {}", crate::connect::error_chain(&err))
            })?
            .get(0);
        if rows {
            found.push(format!("rows in {table}"));
        }
    }
    tx.rollback().context("cannot look at what the database holds")?;
    Ok(found)
}

/// The bookkeeping tables present in the platform's shape, by qualified name.
fn bookkeeping(tx: &mut postgres::Transaction<'_>) -> Result<Vec<String>> {
    let names: Vec<String> = BOOKKEEPING_TABLES.iter().map(|(name, _)| name.to_string()).collect();
    let columns: Vec<String> = BOOKKEEPING_TABLES.iter().map(|(_, columns)| columns.join(",")).collect();
    let rows = tx.query(BOOKKEEPING_SHAPED, &[&names, &columns]).map_err(|err| {
        anyhow::anyhow!("cannot tell the platform's ledgers apart: {}", crate::connect::error_chain(&err))
    })?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

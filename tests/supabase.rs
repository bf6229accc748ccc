//! Tests for the Supabase platform bootstrap and the Supabase CLI's migration layout:
//! migrations in the shapes real Supabase projects write (written here, not copied), applied
//! by `db up` and `migrate`, the extension check, the Supabase CLI's ledger, and the
//! identities of seeded logins.

use std::path::Path;

use crate::harness::{Project, TestCluster, bins, closed_port, migrated};

/// A user migration on what a Supabase project has before its first migration: profiles
/// keyed by `auth.users`, filled by a sign-up trigger.
const PROFILES: &str = r#"
create table public.profiles (
  id uuid not null references auth.users on delete cascade primary key,
  username text unique,
  full_name text,
  updated_at timestamptz
);
alter table public.profiles enable row level security;
create policy "profiles are readable by their owner" on public.profiles
  for select to authenticated using ((select auth.uid()) = id);
create policy "owners update their profile" on public.profiles
  for update to authenticated using ((select auth.uid()) = id);

create function public.handle_new_user() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into public.profiles (id, full_name) values (new.id, new.raw_user_meta_data ->> 'full_name');
  return new;
end;
$$;
create trigger on_auth_user_created after insert on auth.users
  for each row execute procedure public.handle_new_user();
"#;

/// A private bucket where each user reads and writes only their own folder.
const STORAGE: &str = r#"
insert into storage.buckets (id, name, public) values ('avatars', 'avatars', false);
create policy "users read their own folder" on storage.objects for select to authenticated
  using (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid()::text));
create policy "users upload into their own folder" on storage.objects for insert to authenticated
  with check (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid()::text)
              and storage.extension(name) in ('png', 'jpg'));
"#;

/// Unqualified `uuid_generate_v4()` and `gen_random_bytes()` (in `extensions`, on the search
/// path), and a table published to Realtime.
const TODOS: &str = r#"
create extension if not exists "uuid-ossp" with schema extensions;
create table public.todos (
  id uuid default uuid_generate_v4() primary key,
  user_id uuid not null references auth.users default auth.uid(),
  task text not null,
  share_token text default encode(gen_random_bytes(8), 'hex')
);
alter table public.todos enable row level security;
create policy "own todos" on public.todos for all to authenticated using (user_id = auth.uid());
alter publication supabase_realtime add table public.todos;
"#;

/// Functions reading the JWT's claims and the user's identities.
const CLAIMS: &str = r#"
create function public.is_admin() returns boolean language sql stable
as $$ select coalesce(auth.jwt() -> 'app_metadata' ->> 'role' = 'admin', false) $$;

create function public.my_providers() returns text[] language sql stable security definer set search_path = ''
as $$ select array_agg(provider order by provider) from auth.identities where user_id = auth.uid() $$;
grant execute on function public.my_providers() to authenticated;
"#;

/// A nightly job: pg_cron in `pg_catalog`, as Supabase's dashboard installs it.
const CRON: &str = r#"
create extension if not exists pg_cron with schema pg_catalog;
grant usage on schema cron to postgres;
select cron.schedule('purge-done-todos', '0 3 * * *', $$delete from public.todos where task = ''$$);
"#;

/// A scratch project whose migrations are in `supabase/migrations`, with its local cluster
/// on a free port; returns it with the port.
fn supabase_project(files: &[(&str, &str)]) -> (Project, u16) {
    let mut project = Project::new();
    let port = closed_port();
    project.edit_settings("port = 54322", &format!("port = {port}"));
    let settings = project.root.join("env/environments.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(&settings, format!("{text}\n[migrations]\ndir = \"supabase/migrations\"\n")).unwrap();
    project.env_file(
        ".env.local",
        &format!("DATABASE_URL=postgresql://postgres:postgres@127.0.0.1:{port}/postgres\nNEXT_PUBLIC_SUPABASE_URL=http://127.0.0.1:54321\n"),
    );
    write_migrations(&project, files);
    (project, port)
}

fn write_migrations(project: &Project, files: &[(&str, &str)]) {
    let dir = project.root.join("supabase/migrations");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
}

/// Stops the project's cluster even when the test fails halfway.
struct Cleanup<'a>(&'a Project);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.xtask(&["db", "destroy", "--yes"]).run();
    }
}

/// Whether these server binaries can install `name` (its control file is installed).
fn installable(name: &str) -> bool {
    let out = std::process::Command::new(bins().dir.join("pg_config")).arg("--sharedir").output().unwrap();
    let share = String::from_utf8(out.stdout).unwrap();
    Path::new(share.trim()).join("extension").join(format!("{name}.control")).is_file()
}

#[test]
fn supabase_shaped_migrations_apply_on_db_up() {
    let version = bins().version;
    assert!(
        installable("pg_cron"),
        "pg_cron is not installed for PostgreSQL {version}: this test needs it (apt-get install postgresql-{version}-cron; .ci/run installs it)"
    );
    let (project, port) = supabase_project(&[
        ("20240101000000_profiles.sql", PROFILES),
        ("20240102000000_avatars_bucket.sql", STORAGE),
        ("20240103000000_todos.sql", TODOS),
        ("20240104000000_claims.sql", CLAIMS),
        ("20240105000000_nightly_cleanup.sql", CRON),
    ]);
    let _cleanup = Cleanup(&project);
    let out = project.xtask(&["db", "up", "--no-seed"]).ok();
    assert!(out.stderr.contains("applied 5 migration(s)"), "{}", out.stderr);
    let out = project.xtask(&["db", "status"]).ok();
    assert!(out.stdout.contains("bootstrap       supabase v2 (current)"), "{}", out.stdout);

    let url = format!("postgresql://postgres:postgres@127.0.0.1:{port}/postgres");
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let (me, other) = ("8a4f2f4e-5b1a-4a57-9d3c-1f0e8a7b6c5d", "1b2c3d4e-0000-4000-8000-000000000002");
    // Signing up fills the profile through the trigger; GoTrue writes an identity too.
    client
        .batch_execute(&format!(
            "insert into auth.users (id, email, raw_user_meta_data) values
               ('{me}', 'me@example.test', '{{\"full_name\": \"Ada Example\"}}'), ('{other}', 'other@example.test', '{{}}');
             insert into auth.identities (provider_id, user_id, identity_data, provider)
               values ('{me}', '{me}', '{{\"sub\": \"{me}\", \"email\": \"Me@Example.test\"}}', 'email');"
        ))
        .unwrap();
    let name: String =
        client.query_one("select full_name from public.profiles where id = $1::text::uuid", &[&me]).unwrap().get(0);
    assert_eq!(name, "Ada Example");

    let mut tx = client.transaction().unwrap();
    tx.batch_execute("set local role authenticated").unwrap();
    let claims = format!(r#"{{"sub":"{me}","role":"authenticated","app_metadata":{{"role":"admin"}}}}"#);
    tx.execute("select set_config('request.jwt.claims', $1, true)", &[&claims]).unwrap();
    let row = tx
        .query_one("select public.is_admin(), public.my_providers(), (select count(*) from public.profiles)", &[])
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, Vec<String>>(1), ["email"]);
    assert_eq!(row.get::<_, i64>(2), 1, "row-level security shows only the own profile");
    // Storage: the own folder is writable, another user's is not.
    tx.execute("insert into storage.objects (bucket_id, name) values ('avatars', $1)", &[&format!("{me}/face.png")])
        .unwrap();
    tx.execute("insert into public.todos (task) values ('floss')", &[]).unwrap();
    tx.batch_execute("savepoint before_other").unwrap();
    let err = tx
        .execute("insert into storage.objects (bucket_id, name) values ('avatars', $1)", &[&format!("{other}/x.png")])
        .unwrap_err();
    let message = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_default();
    assert!(message.contains("row-level security"), "{message}");
    tx.batch_execute("rollback to savepoint before_other").unwrap();
    let todo = tx.query_one("select id::text, user_id::text, length(share_token) from public.todos", &[]).unwrap();
    assert_eq!((todo.get::<_, String>(1), todo.get::<_, i32>(2)), (me.to_string(), 16));
    drop(tx);

    let row = client
        .query_one(
            "select (select string_agg(tablename, ',') from pg_publication_tables where pubname = 'supabase_realtime'),
                    (select count(*) from cron.job),
                    (select string_agg(version, ',' order by version) from supabase_migrations.schema_migrations),
                    (select email from auth.identities)",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "todos");
    assert_eq!(row.get::<_, i64>(1), 1, "pg_cron scheduled the job");
    assert_eq!(
        row.get::<_, String>(2),
        "20240101000000,20240102000000,20240103000000,20240104000000,20240105000000",
        "the Supabase CLI's ledger knows what was applied"
    );
    assert_eq!(row.get::<_, String>(3), "me@example.test");
}

/// An extension the server lacks, among those with a known package; `None` when this
/// machine has them all.
fn missing_extension() -> Option<(&'static str, &'static str)> {
    [("vector", "pgvector"), ("postgis", "postgis-3"), ("pgrouting", "pgrouting")]
        .into_iter()
        .find(|(name, _)| !installable(name))
}

#[test]
fn a_missing_extension_stops_db_up_before_anything_is_made() {
    let (name, package) = missing_extension().expect("this machine has vector, postgis and pgrouting: none to miss");
    let version = bins().version;
    let needing = format!("create extension if not exists {name} with schema extensions;\n");
    let (project, _) =
        supabase_project(&[("20240101000000_profiles.sql", PROFILES), ("20240102000000_needs_it.sql", &needing)]);
    let _cleanup = Cleanup(&project);
    let out = project.xtask(&["db", "up"]).fails(&format!(
        "extension {name} (needed by supabase/migrations/20240102000000_needs_it.sql) is not installed on this PostgreSQL {version} server; Debian/Ubuntu: apt-get install postgresql-{version}-{package}"
    ));
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert!(!project.root.join(".local/db").exists(), "db up made a cluster before stopping");
}

#[test]
fn migrate_stops_on_missing_and_platform_only_extensions_before_writing() {
    let cluster = TestCluster::start();
    let (project, _) = supabase_project(&[
        ("20240101000000_profiles.sql", PROFILES),
        ("20240102000000_webhooks.sql", "create extension if not exists pg_net with schema extensions;\n"),
    ]);
    let before = cluster.checksum();
    let out = project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &cluster.url()).fails(
        "extension pg_net (needed by supabase/migrations/20240102000000_webhooks.sql) exists only on Supabase's platform",
    );
    assert!(out.stderr.contains("pg_available_extensions"), "the hint shows how to guard it:\n{}", out.stderr);
    assert_eq!(cluster.checksum(), before, "nothing was written");
    // The same statement guarded in a do block is the project's own business.
    write_migrations(
        &project,
        &[(
            "20240102000000_webhooks.sql",
            "do $$ begin if exists (select from pg_available_extensions where name = 'pg_net') then create extension pg_net; end if; end $$;\n",
        )],
    );
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    // A `supabase db pull` dump names platform-only extensions: skipped with a warning when
    // the project says so, the rest applies.
    let pulled = "create schema if not exists pgsodium;\ncreate extension if not exists \"pgsodium\" with schema \"pgsodium\";\ncomment on extension pgsodium is 'Supabase; encryption';\ncreate table public.pulled (id int);\n";
    write_migrations(&project, &[("20240103000000_remote_schema.sql", pulled)]);
    project
        .xtask(&["migrate", "up", "--env", "test"])
        .env("DATABASE_URL", &cluster.url())
        .fails("extension pgsodium (needed by supabase/migrations/20240103000000_remote_schema.sql) exists only");
    let settings = project.root.join("env/environments.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(&settings, format!("{text}skip_platform_extensions = true\n")).unwrap();
    let out = project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    assert!(out.stderr.contains("warning: supabase/migrations/20240103000000_remote_schema.sql: skipping the statement on extension pgsodium"), "{}", out.stderr);
    let exists: bool =
        cluster.client().query_one("select to_regclass('public.pulled') is not null", &[]).unwrap().get(0);
    assert!(exists);
}

/// Applies migrations as `supabase db push` does: the SQL, then a row in its ledger.
fn push_like_the_supabase_cli(cluster: &TestCluster, files: &[(&str, &str)]) {
    let mut client = cluster.client();
    client
        .batch_execute(
            "create schema if not exists supabase_migrations;
             create table if not exists supabase_migrations.schema_migrations (version text not null primary key);
             alter table supabase_migrations.schema_migrations add column if not exists statements text[];
             alter table supabase_migrations.schema_migrations add column if not exists name text;",
        )
        .unwrap();
    for (file, sql) in files {
        let (version, name) = file.trim_end_matches(".sql").split_once('_').unwrap();
        client.batch_execute(sql).unwrap();
        client
            .execute(
                "insert into supabase_migrations.schema_migrations (version, statements, name) values ($1, array[$2], $3)",
                &[&version, sql, &name],
            )
            .unwrap();
    }
}

#[test]
fn the_supabase_cli_layout_status_up_verify_diff_new_and_its_ledger() {
    let files = [
        ("20240101000000_profiles.sql", PROFILES),
        ("20240102000000_avatars_bucket.sql", STORAGE),
        ("20240103000000_todos.sql", TODOS),
    ];
    let (mut project, _) = supabase_project(&files);
    // Production was migrated by `supabase db push`; the test database by us.
    let production = TestCluster::start();
    project.env_file(".env.production", &format!("DATABASE_URL={}\n", production.production_url()));
    production.stamp("production");
    push_like_the_supabase_cli(&production, &files);
    let test = TestCluster::start();
    push_like_the_supabase_cli(&test, &files[..2]);
    let url = test.url();

    let out = project.xtask(&["migrate", "status", "--env", "test"]).env("DATABASE_URL", &url).ok();
    let line = |version: &str| out.stdout.lines().find(|l| l.starts_with(version)).unwrap_or_default().to_string();
    assert!(
        line("20240101000000").contains("profiles") && line("20240101000000").contains("applied"),
        "{}",
        out.stdout
    );
    assert!(line("20240102000000").contains("(supabase CLI)"), "{}", out.stdout);
    assert!(line("20240103000000").contains("pending"), "{}", out.stdout);

    let out = project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &url).ok();
    assert!(out.stderr.contains("applied 20240103000000_todos"), "{}", out.stderr);
    assert!(!out.stderr.contains("20240101000000"), "only the pending one is applied:\n{}", out.stderr);
    let versions = test.strings("select version from supabase_migrations.schema_migrations order by version");
    assert_eq!(versions, ["20240101000000", "20240102000000", "20240103000000"]);

    let out =
        project.xtask(&["migrate", "diff", "--from", "production", "--to", "test"]).env("DATABASE_URL", &url).ok();
    assert!(out.stderr.contains("production and test agree"), "{}", out.stderr);
    write_migrations(&project, &[("20240104000000_notes.sql", "alter table public.todos add column notes text;\n")]);
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &url).ok();
    let out = project
        .xtask(&["migrate", "diff", "--from", "production", "--to", "test"])
        .env("DATABASE_URL", &url)
        .fails("production and test have drifted (2 difference(s))");
    assert!(out.stdout.contains("20240104000000_notes is applied on test only"), "{}", out.stdout);

    let out = project.xtask(&["migrate", "verify"]).ok();
    assert!(out.stderr.contains("verified 4 migrations"), "{}", out.stderr);
    project
        .xtask(&["migrate", "down", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails("supabase/migrations is in the Supabase CLI's layout, which has no down migrations");

    let out = project.xtask(&["migrate", "new", "Add due dates"]).ok();
    let written = out.stdout.trim();
    let file = written.strip_prefix("supabase/migrations/").unwrap_or_default();
    let (stamp, rest) = file.split_once('_').unwrap_or_default();
    assert!(stamp.len() == 14 && stamp.starts_with("20") && rest == "add_due_dates.sql", "{written}");
    assert!(project.root.join(written).is_file());
    std::fs::rename(project.root.join("supabase"), project.root.join("elsewhere")).unwrap();
    project
        .xtask(&["migrate", "status", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails("env/environments.toml: [migrations] dir = \"supabase/migrations\" is not a folder");
    std::fs::rename(project.root.join("elsewhere"), project.root.join("supabase")).unwrap();
    write_migrations(&project, &[("notes.sql", "select 1;\n")]);
    project
        .xtask(&["migrate", "status", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails("supabase/migrations/notes.sql: not a Supabase migration file name");
}

#[test]
fn a_failed_supabase_migration_names_its_file_and_resolves_into_both_ledgers() {
    let cluster = TestCluster::start();
    let broken = "create table public.partial (id int);\nselect * from public.no_such_table;\n";
    let (project, _) =
        supabase_project(&[("20240101000000_profiles.sql", PROFILES), ("20240102000000_broken.sql", broken)]);
    let url = cluster.url();
    project
        .xtask(&["migrate", "up", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails("supabase/migrations/20240102000000_broken.sql:2: relation \"public.no_such_table\" does not exist");
    let out = project.xtask(&["migrate", "up", "--dry-run", "--env", "test"]).env("DATABASE_URL", &url).run();
    assert!(out.stderr.contains("migration 20240102000000_broken failed"), "{}", out.stderr);
    project
        .xtask(&["migrate", "resolve", "20240102000000", "--applied", "--env", "test"])
        .env("DATABASE_URL", &url)
        .ok();
    let versions = cluster.strings("select version from supabase_migrations.schema_migrations order by version");
    assert_eq!(versions, ["20240101000000", "20240102000000"]);
    let out = project.xtask(&["migrate", "status", "--env", "test"]).env("DATABASE_URL", &url).ok();
    let applied = out.stdout.lines().filter(|l| l.starts_with("2024") && l.contains(" applied ")).count();
    assert_eq!(applied, 2, "{}", out.stdout);
}

#[test]
fn seeded_logins_have_email_identities() {
    let (cluster, project) = migrated();
    project.xtask(&["seed", "--env", "test", "--profile", "minimal"]).env("DATABASE_URL", &cluster.url()).ok();
    let row = cluster
        .client()
        .query_one(
            "select count(*), count(i.id), count(*) filter (where i.provider = 'email' and i.provider_id = u.id::text
                       and i.email = u.email and i.identity_data ->> 'sub' = u.id::text),
                    count(*) filter (where u.email_change = '' and u.email_change_token_new = '')
             from auth.users u left join auth.identities i on i.user_id = u.id",
            &[],
        )
        .unwrap();
    let users: i64 = row.get(0);
    assert!(users > 10, "{users} users");
    assert_eq!((row.get::<_, i64>(1), row.get::<_, i64>(2), row.get::<_, i64>(3)), (users, users, users));
}

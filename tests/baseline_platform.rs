//! Tests for `cargo xtask migrate baseline` on a Supabase-shaped production: the platform's
//! extensions, event triggers, schemas and GoTrue's `auth.users` (with its partial unique
//! indexes and the tables that reference it) are left out of the proof and of the written
//! first migration; the application's schema, its signup trigger on `auth.users`, its
//! policy on `storage.objects` and its publication membership are kept; SQL functions
//! naming tables created later apply; failures write nothing and name only real steps.

use crate::harness::{Project, TestCluster};

/// What Supabase's platform adds to a project beyond this tool's bootstrap, written here in
/// its shape: stand-ins for extensions no package ships (`pg_stat_statements` is real),
/// event triggers calling functions in `extensions`, platform schemas with tables, the
/// platform's own ledger in `public`,
/// GoTrue's partial unique indexes, a GoTrue table referencing `auth.users`, and the
/// storage service's own trigger.
const PLATFORM: &str = r#"
create extension if not exists pg_stat_statements with schema extensions;
create schema graphql;
create table graphql.schema_version (version integer not null);
create schema vault;
create table vault.secrets (id uuid primary key default gen_random_uuid(), name text unique, secret text not null);
create schema pgsodium;
create table pgsodium.key (id uuid primary key default gen_random_uuid(), name text);
create schema supabase_functions;
create table supabase_functions.hooks (id bigserial primary key, hook_table_id integer not null, hook_name text not null);
create function extensions.grant_pg_cron_access() returns event_trigger language plpgsql as $$ begin end $$;
create function extensions.grant_pg_graphql_access() returns event_trigger language plpgsql as $$ begin end $$;
create function extensions.grant_pg_net_access() returns event_trigger language plpgsql as $$ begin end $$;
create function extensions.pgrst_ddl_watch() returns event_trigger language plpgsql as $$ begin end $$;
create function extensions.pgrst_drop_watch() returns event_trigger language plpgsql as $$ begin end $$;
create function extensions.set_graphql_placeholder() returns event_trigger language plpgsql as $$ begin end $$;
create event trigger issue_pg_cron_access on ddl_command_end when tag in ('CREATE EXTENSION')
    execute function extensions.grant_pg_cron_access();
create event trigger issue_pg_graphql_access on ddl_command_end when tag in ('CREATE FUNCTION')
    execute function extensions.grant_pg_graphql_access();
create event trigger issue_pg_net_access on ddl_command_end when tag in ('CREATE EXTENSION')
    execute function extensions.grant_pg_net_access();
create event trigger pgrst_ddl_watch on ddl_command_end execute function extensions.pgrst_ddl_watch();
create event trigger pgrst_drop_watch on sql_drop execute function extensions.pgrst_drop_watch();
create event trigger issue_graphql_placeholder on sql_drop when tag in ('DROP EXTENSION')
    execute function extensions.set_graphql_placeholder();
create unique index confirmation_token_idx on auth.users (confirmation_token) where confirmation_token !~ '^[0-9 ]*$';
create unique index recovery_token_idx on auth.users (recovery_token) where recovery_token !~ '^[0-9 ]*$';
create unique index reauthentication_token_idx on auth.users (reauthentication_token)
    where reauthentication_token !~ '^[0-9 ]*$';
create table auth.flow_state (id uuid primary key, user_id uuid references auth.users (id) on delete cascade,
    auth_code text not null, created_at timestamptz);
create table public.schema_migrations (version varchar(128) primary key);
create function storage.update_updated_at_column() returns trigger language plpgsql as $$
begin new.updated_at = now(); return new; end $$;
create trigger update_objects_updated_at before update on storage.objects
    for each row execute function storage.update_updated_at_column();
"#;

/// The application, in a schema of its own, as a public Supabase app's migrations make it.
const APP: &str = r#"
create schema app;
create table app.plans (id text primary key, monthly_cents integer not null);
insert into app.plans values ('free', 0), ('pro', 2900);
create table app.profiles (
    id uuid primary key references auth.users (id) on delete cascade,
    plan text not null default 'free' references app.plans (id), display_name text);
alter table app.profiles enable row level security;
create policy "own profile" on app.profiles for select to authenticated using (auth.uid() = id);
create function app.handle_new_user() returns trigger language plpgsql security definer set search_path = '' as $$
begin
  insert into app.profiles (id, display_name) values (new.id, new.raw_user_meta_data ->> 'name');
  return new;
end $$;
create trigger on_auth_user_created after insert on auth.users
    for each row execute function app.handle_new_user();
create policy "avatars are public" on storage.objects for select using (bucket_id = 'avatars');
alter publication supabase_realtime add table app.profiles;
set check_function_bodies = false;
create function app.open_tickets() returns bigint language sql stable set search_path = '' as
    $$ select count(*) from app.tickets where not closed $$;
create function app.my_tickets() returns bigint language sql stable set search_path = app as
    $$ select count(*) from tickets $$;
reset check_function_bodies;
create table app.tickets (id bigint generated always as identity primary key,
    owner uuid not null references app.profiles (id), closed boolean not null default false);
insert into auth.users (id, email, raw_user_meta_data)
    values ('00000000-0000-0000-0000-0000000000a1', 'ann.real@example.com', '{"name": "Ann Real"}');
insert into app.tickets (owner) values ('00000000-0000-0000-0000-0000000000a1');
"#;

/// A Supabase-shaped production this project did not create.
fn supabase_production() -> TestCluster {
    let cluster = TestCluster::start();
    cluster.unstamp();
    cluster.client().batch_execute(&format!("{PLATFORM}{APP}")).unwrap();
    cluster
}

fn stamp_of(cluster: &TestCluster) -> Vec<String> {
    if cluster.strings("select coalesce(to_regclass('app_meta.environment_stamp')::text, '')") == [""] {
        return Vec::new();
    }
    cluster.strings("select environment from app_meta.environment_stamp")
}

fn migration_files(project: &Project) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(project.root.join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_supabase_shaped_production_is_adopted_without_its_platform_and_its_baseline_applies() {
    let production = supabase_production();
    let mut project = Project::new();
    let url = production.url();
    let baseline = |extra: &[&str]| {
        let mut args = vec!["migrate", "baseline", "--env", "test", "--with-data", "app.plans"];
        args.extend_from_slice(extra);
        project.xtask(&args).env("DATABASE_URL", &url)
    };
    // The dry run runs the whole proof, and writes and changes nothing.
    let out = baseline(&["--dry-run"]).ok();
    assert!(out.stderr.contains("a Supabase database"), "{}", out.stderr);
    assert!(out.stderr.contains("proved on a scratch cluster"), "{}", out.stderr);
    assert!(migration_files(&project).is_empty());
    assert!(stamp_of(&production).is_empty());

    baseline(&["--confirm", "test"]).ok();
    assert_eq!(stamp_of(&production), ["test"]);
    assert_eq!(migration_files(&project), ["0001_baseline.down.sql", "0001_baseline.up.sql"]);
    let up = std::fs::read_to_string(project.root.join("migrations/0001_baseline.up.sql")).unwrap();
    for kept in [
        "SET LOCAL check_function_bodies = false;",
        "SELECT pg_catalog.set_config('search_path', '', true);",
        "CREATE SCHEMA app;",
        "CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users",
        "CREATE POLICY \"avatars are public\" ON storage.objects",
        "ALTER PUBLICATION supabase_realtime ADD TABLE ONLY app.profiles;",
        "INSERT INTO app.plans (id, monthly_cents) VALUES ('pro', 2900);",
    ] {
        assert!(up.contains(kept), "the baseline lacks `{kept}`:\n{up}");
    }
    for left_out in [
        "EVENT TRIGGER",
        "pg_stat_statements",
        "CREATE TABLE auth.",
        "confirmation_token_idx",
        "update_objects_updated_at",
        "vault.",
        "CREATE SCHEMA graphql",
        "public.schema_migrations",
        "ann.real",
    ] {
        assert!(!up.contains(left_out), "the baseline holds the platform's or the data's `{left_out}`:\n{up}");
    }
    // The data rows come before the constraints and triggers, as pg_dump restores them.
    assert!(up.find("INSERT INTO app.plans").unwrap() < up.find("plans_pkey").unwrap());

    // A new staging (a bootstrapped database) is built from it, and works: the signup
    // trigger makes a profile, the SQL functions find their tables, the plans are there.
    // The next migration, in the same run, has the session's search path again (pg_dump's
    // empty one would leave its unqualified table nowhere to go).
    project
        .migration("0002_notes.up.sql", "create table notes (id int primary key);\n")
        .migration("0002_notes.down.sql", "drop table notes;\n");
    let staging = TestCluster::start();
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &staging.url()).ok();
    let mut client = staging.client();
    client
        .batch_execute(
            "insert into auth.users (id, email) values ('00000000-0000-0000-0000-0000000000b2', 'new@example.com')",
        )
        .unwrap();
    let profiles: i64 = client.query_one("select count(*) from app.profiles", &[]).unwrap().get(0);
    assert_eq!(profiles, 1, "the signup trigger on auth.users did not run");
    client.batch_execute("insert into app.tickets (owner) values ('00000000-0000-0000-0000-0000000000b2')").unwrap();
    let counts = client.query_one("select app.open_tickets(), app.my_tickets()", &[]).unwrap();
    assert_eq!((counts.get::<_, i64>(0), counts.get::<_, i64>(1)), (1, 1));
    assert_eq!(staging.strings("select id from app.plans order by 1"), ["free", "pro"]);
    assert_eq!(staging.strings("select to_regclass('notes')::text"), ["notes"]);
}

#[test]
fn a_first_migration_that_cannot_apply_writes_nothing_and_the_dry_run_fails_too() {
    let production = supabase_production();
    // A role this cluster has and a scratch cluster lacks: its policy cannot be recreated.
    production
        .client()
        .batch_execute("create role reporting_reader nologin; create policy reporting on app.tickets for select to reporting_reader using (true);")
        .unwrap();
    let project = Project::new();
    let before = production.checksum();
    for args in [&["--dry-run"][..], &["--confirm", "test"][..]] {
        let mut all = vec!["migrate", "baseline", "--env", "test"];
        all.extend_from_slice(args);
        let out = project
            .xtask(&all)
            .env("DATABASE_URL", &production.url())
            .fails("the live schema, written as a first migration, does not apply on a scratch cluster");
        assert!(out.stderr.contains("role \"reporting_reader\" does not exist"), "{}", out.stderr);
        assert!(out.stderr.contains("nothing was written or changed"), "{}", out.stderr);
        assert!(
            !out.stderr.contains("migrate resolve"),
            "a hint names a step for a cluster that is gone:\n{}",
            out.stderr
        );
        assert!(migration_files(&project).is_empty(), "a refused baseline left files behind");
        assert!(stamp_of(&production).is_empty());
    }
    assert_eq!(production.checksum(), before);
}

#[test]
fn migrations_that_fail_on_the_scratch_cluster_name_no_ledger_step() {
    let production = supabase_production();
    let mut project = Project::new();
    project
        .migration(
            "0001_app.up.sql",
            "create schema app;\ncreate table app.nope (id int references app.missing (id));\n",
        )
        .migration("0001_app.down.sql", "drop schema app cascade;\n");
    let out = project
        .xtask(&["migrate", "baseline", "--env", "test", "--dry-run"])
        .env("DATABASE_URL", &production.url())
        .fails("the migrations in migrations do not apply on a scratch cluster");
    assert!(out.stderr.contains("relation \"app.missing\" does not exist"), "{}", out.stderr);
    assert!(!out.stderr.contains("migrate resolve"), "{}", out.stderr);
    assert!(out.stderr.contains("hint: fix that migration"), "{}", out.stderr);
    // --with-data belongs to a new first migration only, and never to a platform table.
    project
        .xtask(&["migrate", "baseline", "--env", "test", "--with-data", "app.plans"])
        .env("DATABASE_URL", &production.url())
        .fails("--with-data puts rows into a new first migration");
    let empty = Project::new();
    empty
        .xtask(&["migrate", "baseline", "--env", "test", "--with-data", "auth.users"])
        .env("DATABASE_URL", &production.url())
        .fails("--with-data auth.users: a table of the platform");
}

/// The application's privileges, as a Supabase app grants them: its own schema opened to
/// the API roles, default privileges for its future tables, a sensitive `public` table
/// taken from `anon` (which Supabase's default privileges hand every new `public` table),
/// and a grant to a role only this production has.
const GRANTS: &str = r#"
grant usage on schema app to anon, authenticated;
grant select, insert, update, delete on all tables in schema app to authenticated;
grant select on app.plans to anon;
alter default privileges in schema app grant select on tables to authenticated;
create table public.clinic_notes (id int primary key, body text);
revoke all on public.clinic_notes from anon;
create role reporting_reader nologin;
grant select on app.tickets to reporting_reader;
"#;

/// What the API roles may do with the application's tables, as `has_*_privilege` says.
const PRIVILEGES: &str = "select format('%s %s %s %s', r, t, p, has_table_privilege(r, t, p))
    from unnest(array['anon', 'authenticated']) r,
         unnest(array['app.plans', 'app.tickets', 'app.profiles', 'public.clinic_notes']) t,
         unnest(array['select', 'insert', 'delete']) p
    union all select format('%s usage on app %s', r, has_schema_privilege(r, 'app', 'usage'))
    from unnest(array['anon', 'authenticated', 'service_role']) r order by 1";

#[test]
fn the_app_s_grants_and_a_revoke_from_anon_survive_the_baseline_and_are_proved() {
    let production = supabase_production();
    production.client().batch_execute(GRANTS).unwrap();
    let project = Project::new();
    let out = project
        .xtask(&["migrate", "baseline", "--env", "test", "--confirm", "test"])
        .env("DATABASE_URL", &production.url())
        .ok();
    assert!(
        out.stderr.contains("1 grant(s) of the application's objects to roles a new database lacks (reporting_reader)"),
        "{}",
        out.stderr
    );
    let up = std::fs::read_to_string(project.root.join("migrations/0001_baseline.up.sql")).unwrap();
    for kept in [
        "GRANT USAGE ON SCHEMA app TO anon;",
        "GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.tickets TO authenticated;",
        "GRANT SELECT ON TABLE app.plans TO anon;",
        "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA app GRANT SELECT ON TABLES  TO authenticated;",
    ] {
        assert!(up.contains(kept), "the baseline lacks `{kept}`:\n{up}");
    }
    assert!(!up.contains("reporting_reader"), "{up}");

    // A new database built from the baseline gives the API roles what production gives,
    // no more: anon still cannot read the notes, although the bootstrap's default
    // privileges hand it every new table in public.
    let staging = TestCluster::start();
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &staging.url()).ok();
    assert_eq!(staging.strings(PRIVILEGES), production.strings(PRIVILEGES));
    let check = "select has_table_privilege('anon', 'public.clinic_notes', 'select'),
        has_table_privilege('authenticated', 'public.clinic_notes', 'select'),
        has_table_privilege('authenticated', 'app.tickets', 'insert'),
        has_table_privilege('anon', 'app.tickets', 'select'), has_schema_privilege('anon', 'app', 'usage')";
    let row = staging.client().query_one(check, &[]).unwrap();
    let got: Vec<bool> = (0..5).map(|i| row.get(i)).collect();
    assert_eq!(got, [false, true, true, false, true]);
    // The default privileges came along: a table the app adds later is readable.
    staging.client().batch_execute("create table app.later (id int)").unwrap();
    assert_eq!(staging.strings("select has_table_privilege('authenticated', 'app.later', 'select')::text"), ["true"]);

    // Migrations that grant anon more than production gives are refused, naming the table.
    let other = supabase_production();
    other.client().batch_execute(GRANTS).unwrap();
    let down = std::fs::read_to_string(project.root.join("migrations/0001_baseline.down.sql")).unwrap();
    let mut widened = Project::new();
    widened
        .migration("0001_baseline.up.sql", &format!("{up}\nGRANT INSERT ON TABLE app.plans TO anon;\n"))
        .migration("0001_baseline.down.sql", &down);
    let out = widened
        .xtask(&["migrate", "baseline", "--env", "test", "--dry-run"])
        .env("DATABASE_URL", &other.url())
        .fails("the live schema is not what the migrations make: the grants on table app.plans differ");
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert!(stamp_of(&other).is_empty());
}

#[test]
fn init_rules_leaves_out_the_platform_s_ledger_in_public() {
    let production = TestCluster::start();
    production.client().batch_execute(&format!("{PLATFORM}{APP}")).unwrap();
    production.client().batch_execute("insert into public.schema_migrations values ('20240101000000')").unwrap();
    production.stamp("production");
    let mut project = Project::new();
    project.env_file(".env.production", &format!("DATABASE_URL={}\n", production.production_url()));
    project.xtask(&["stage-sync", "init-rules"]).ok();
    let text = std::fs::read_to_string(project.root.join("env/stage-sync.toml")).unwrap();
    assert!(text.contains("[tables.\"app.profiles\".columns]"), "{text}");
    assert!(!text.contains("schema_migrations"), "rules for the platform's own ledger:\n{text}");
}

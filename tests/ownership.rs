//! Ownership fails closed (issue 21, class 4; issue 20, failure 6): a database without the
//! stamp is empty only if it holds nothing but what the tool's bootstrap or Supabase's
//! platform makes. Each attack points `db reset --env test` and `migrate up --env test` at an
//! unstamped database whose only data the old test missed, and checks the data independently
//! before and after. A brand-new Supabase-shaped project (platform bookkeeping rows only)
//! is empty, and `migrate up` on a database lacking Supabase's layer lays it down (test) or
//! stops naming what is missing (staging).

use xtask::pg::{Binaries, Cluster, Durability};

use crate::harness::{Project, TestCluster, scratch_dir, test_password};

/// Everything an attack could change: every table's rows, the large objects' contents, the
/// non-system schemas, functions and extensions, and whether a stamp exists.
fn state(cluster: &TestCluster) -> String {
    let objects = cluster.strings(
        "select concat_ws(' | ',
           (select count(*)::text || ':' || coalesce(string_agg(md5(lo_get(oid)), ',' order by oid), '') from pg_largeobject_metadata),
           (select string_agg(nspname, ',' order by nspname) from pg_namespace),
           (select string_agg(p.oid::regprocedure::text, ',' order by 1) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
              where n.nspname not in ('pg_catalog', 'information_schema')),
           (select string_agg(extname, ',' order by extname) from pg_extension),
           (select (to_regclass('app_meta.environment_stamp') is not null)::text))",
    );
    format!("{}\n{}", objects.join(""), cluster.checksum())
}

/// Runs both writing commands against the unstamped `foreign` cluster: each must be refused,
/// naming `finding`, with the state exactly as it was.
fn refused_everywhere(foreign: &TestCluster, finding: &str) {
    let before = state(foreign);
    let mut project = Project::new();
    project.with_migrations();
    for args in [&["db", "reset", "--env", "test", "--no-seed"][..], &["migrate", "up", "--env", "test"]] {
        let out = project.xtask(args).env("DATABASE_URL", &foreign.url()).run();
        assert_eq!(state(foreign), before, "`{}` changed an unstamped database:\n{out:#?}", args.join(" "));
        let out = out.failed_with("the database at");
        assert!(out.stderr.contains("has no environment stamp but holds"), "{}", out.stderr);
        assert!(out.stderr.contains(finding), "the refusal does not name `{finding}`:\n{}", out.stderr);
    }
    let out = project.xtask(&["migrate", "up", "--dry-run", "--env", "test"]).env("DATABASE_URL", &foreign.url()).run();
    assert!(out.stderr.contains(finding), "the dry run does not name `{finding}`:\n{}", out.stderr);
    out.failed_with("the database has no environment stamp but holds");
}

/// An unstamped cluster holding what `sql` makes: [`refused_everywhere`], naming `finding`.
fn refused_after(sql: &str, finding: &str) -> TestCluster {
    let foreign = unstamped();
    foreign.client().batch_execute(sql).unwrap();
    refused_everywhere(&foreign, finding);
    foreign
}

fn unstamped() -> TestCluster {
    let cluster = TestCluster::start();
    cluster.unstamp();
    cluster
}

#[test]
fn large_objects_alone_make_a_database_not_empty() {
    refused_after("select lo_from_bytea(0, 'x-ray of a real patient'::bytea)", "1 large object(s)");
}

#[test]
fn rows_in_realtime_messages_make_a_database_not_empty() {
    refused_after(
        "insert into realtime.messages (topic, extension, payload)
             values ('clinic:7', 'broadcast', '{\"patient\": \"carol@real.example\"}')",
        "rows in realtime.messages",
    );
}

#[test]
fn a_table_in_extensions_makes_a_database_not_empty() {
    refused_after(
        "create table extensions.ledger (id int primary key, note text); insert into extensions.ledger values (1, 'kept')",
        "table extensions.ledger",
    );
}

/// No rows anywhere, only a function someone wrote: a user object is not the platform's.
#[test]
fn a_user_function_makes_a_database_not_empty() {
    refused_after(
        "create function public.their_report() returns int language sql as 'select 42'",
        "function public.their_report",
    );
}

#[test]
fn a_materialized_view_in_a_platform_schema_makes_a_database_not_empty() {
    let rows = "select email from auth.patients_seen";
    let foreign = refused_after(
        "create materialized view auth.patients_seen as select 'carol@real.example'::text as email",
        "materialized view auth.patients_seen",
    );
    assert_eq!(foreign.strings(rows), ["carol@real.example"]);
}

/// A table that only bears a ledger's name is not a ledger: its rows count.
#[test]
fn a_table_named_like_a_platform_ledger_makes_a_database_not_empty() {
    refused_after(
        "create table public.schema_migrations (version text primary key, patient text);
             insert into public.schema_migrations values ('1', 'carol@real.example')",
        "public.schema_migrations",
    );
    refused_after(
        "alter table storage.migrations add column note text;
             insert into storage.migrations values (0, 'create-migrations-table', 'e18d', now(), 'carol@real.example')",
        "rows in storage.migrations",
    );
}

/// `information_schema` is an ordinary schema to a superuser: a table added there is data.
#[test]
fn a_table_in_information_schema_makes_a_database_not_empty() {
    let foreign = refused_after(
        "create table information_schema.patients (email text); insert into information_schema.patients values ('carol@real.example')",
        "table information_schema.patients",
    );
    assert_eq!(foreign.strings("select email from information_schema.patients"), ["carol@real.example"]);
}

/// What a fresh Supabase project holds on top of the bootstrap's layer, in the platform's
/// shape: its services' ledgers with their rows (the image's own `public.schema_migrations`
/// among them), the functions and event triggers it puts in `extensions`, `pgbouncer`'s auth
/// function, an empty vault, an extension in `extensions`. Written for this test.
const FRESH_SUPABASE_PROJECT: &str = r"
create table public.schema_migrations (version varchar(128) primary key);
insert into public.schema_migrations values ('20211115181400'), ('20230201083204');
create table auth.schema_migrations (version varchar(255) primary key);
insert into auth.schema_migrations values ('20171026211738'), ('20240427152123');
insert into storage.migrations (id, name, hash) values (0, 'create-migrations-table', 'e18d'), (1, 'initialmigration', '6ab1');
create table realtime.schema_migrations (version bigint primary key, inserted_at timestamp(0));
insert into realtime.schema_migrations values (20211116024918, now());
create schema supabase_functions;
create table supabase_functions.migrations (version text primary key, inserted_at timestamptz default now());
insert into supabase_functions.migrations (version) values ('initial');
create schema vault;
create table vault.secrets (id uuid primary key default gen_random_uuid(), secret text not null);
create schema pgbouncer;
create function pgbouncer.get_auth(p_usename text) returns table (username text, password text)
  language sql security definer as $$ select rolname::text, null::text from pg_roles where rolname = p_usename $$;
create function extensions.pgrst_ddl_watch() returns event_trigger language plpgsql as $$ begin notify pgrst, 'reload schema'; end $$;
create function extensions.grant_pg_net_access() returns event_trigger language plpgsql as $$ begin null; end $$;
create event trigger pgrst_ddl_watch on ddl_command_end execute function extensions.pgrst_ddl_watch();
create event trigger issue_pg_net_access on ddl_command_end when tag in ('CREATE EXTENSION')
  execute function extensions.grant_pg_net_access();
create extension pg_stat_statements with schema extensions;
";

#[test]
fn a_brand_new_supabase_project_counts_as_empty() {
    let fresh = unstamped();
    fresh.client().batch_execute(FRESH_SUPABASE_PROJECT).unwrap();
    let mut project = Project::new();
    project.with_migrations();
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &fresh.url()).ok();
    assert_eq!(fresh.strings("select environment from app_meta.environment_stamp"), ["test"]);
    assert_eq!(fresh.strings("select to_regclass('public.clinics')::text"), ["clinics"]);
    // The platform's bookkeeping is left as it was.
    assert_eq!(fresh.strings("select count(*)::text from storage.migrations"), ["2"]);
    assert_eq!(fresh.strings("select count(*)::text from public.schema_migrations"), ["2"]);
}

/// A plain cluster (initdb only: no Supabase roles) with one empty database per case,
/// stopped and deleted on drop.
struct PlainCluster {
    cluster: Cluster,
}

impl PlainCluster {
    fn start(databases: &[&str]) -> PlainCluster {
        let sh = xshell::Shell::new().unwrap();
        let cluster = Cluster::new(scratch_dir("plain"), xtask::pg::free_port().unwrap(), Binaries::find().unwrap());
        cluster.init(&sh, test_password(), Durability::Throwaway).unwrap();
        cluster.start(&sh).unwrap();
        let plain = PlainCluster { cluster };
        for db in databases {
            plain.client("postgres").batch_execute(&format!("create database {db}")).unwrap();
        }
        plain
    }

    fn url(&self, db: &str) -> String {
        self.cluster.url(test_password(), db)
    }

    fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).unwrap()
    }
}

impl Drop for PlainCluster {
    fn drop(&mut self) {
        let _ = self.cluster.stop(&xshell::Shell::new().unwrap(), true);
        let _ = std::fs::remove_dir_all(&self.cluster.dir);
    }
}

#[test]
fn migrate_up_lays_down_supabase_layer_on_test_and_stops_on_staging() {
    let plain = PlainCluster::start(&["fresh_test", "fresh_staging"]);
    let mut project = Project::new();
    project.with_migrations();
    let out = project
        .xtask(&["migrate", "up", "--dry-run", "--env", "test"])
        .env("DATABASE_URL", &plain.url("fresh_test"))
        .ok();
    assert!(out.stdout.contains("would lay down Supabase's layer first (role anon"), "{}", out.stdout);
    let out = project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &plain.url("fresh_test")).ok();
    assert!(out.stderr.contains("laying down Supabase's layer"), "{}", out.stderr);
    let mut client = plain.client("fresh_test");
    let row = client
        .query_one(
            "select (select environment from app_meta.environment_stamp),
                    to_regclass('public.clinics') is not null, to_regclass('auth.users') is not null,
                    exists (select from pg_roles where rolname = 'anon')",
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, String>(0), row.get(1), row.get(2), row.get(3)), ("test".to_string(), true, true, true));

    // Staging is a real Supabase project, which has the layer: a database without it is
    // not staging's, and nothing is written to it.
    let role = "postgres.STAGING_REF";
    plain
        .client("postgres")
        .batch_execute(&format!("create role \"{role}\" login superuser password '{}'", test_password()))
        .unwrap();
    let staging_url = plain.url("fresh_staging").replacen("//postgres:", &format!("//{role}:"), 1);
    project.env_file(".env.staging", &format!("DATABASE_URL={staging_url}\n"));
    let schemas = "select string_agg(nspname, ',' order by nspname) from pg_namespace";
    let before: Vec<String> =
        plain.client("fresh_staging").query(schemas, &[]).unwrap().iter().map(|r| r.get(0)).collect();
    let out = project.xtask(&["migrate", "up", "--env", "staging"]).fails("the database at");
    assert!(out.stderr.contains("lacks what every Supabase project has (schema auth"), "{}", out.stderr);
    let after: Vec<String> =
        plain.client("fresh_staging").query(schemas, &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(before, after, "staging was changed");
}

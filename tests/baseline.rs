//! Tests for `cargo xtask migrate baseline`: adopting databases this project did not create
//! (a Prisma-built schema with text ids, quoted mixed-case names, jsonb and Prisma's own
//! ledger), then migrating and syncing them like any other.

use crate::harness::{Project, TestCluster};

/// A schema in the shape Prisma leaves on a Supabase project, written by plain SQL.
const PRISMA_SHAPED: &str = r#"
create table public._prisma_migrations (
    id varchar(36) primary key, checksum varchar(64) not null, finished_at timestamptz,
    migration_name varchar(255) not null, logs text, rolled_back_at timestamptz,
    started_at timestamptz not null default now(), applied_steps_count integer not null default 0);
insert into public._prisma_migrations (id, checksum, finished_at, migration_name)
values ('m1', 'c1', now(), '20240101000000_init'), ('m2', 'c2', now(), '20240301000000_accounts');
create table public."User" (
    id text primary key, "emailAddress" text not null unique,
    profile jsonb not null default '{}', "createdAt" timestamptz not null default now());
create table public."Account" (
    id text primary key, "userId" text not null references public."User"(id) on delete cascade,
    provider text not null, access_token text);
"#;

const ROWS: &str = r#"
insert into public."User" (id, "emailAddress", profile) values
    ('u1', 'ann.real@example.com', '{"name": "Ann Real"}'), ('u2', 'bob.real@example.com', '{}');
insert into public."Account" values ('a1', 'u1', 'google', 'ya29.real-token-value');
"#;

const RULES: &str = r#"
schemas = ["public"]

[tables."public._prisma_migrations".columns]
id = "keep"
checksum = "keep"
finished_at = "keep"
migration_name = { rule = "keep", reviewed = true } # migration file names, not people
logs = "keep"
rolled_back_at = "keep"
started_at = "keep"
applied_steps_count = "keep"

[tables."public.User".columns]
id = "keep"
emailAddress = "email"
profile = { rule = "jsonb", keys = { name = "full_name" } }
createdAt = "keep"

[tables."public.Account".columns]
id = "keep"
userId = "keep"
provider = "keep"
access_token = "redact"
"#;

/// A cluster holding the Prisma-shaped schema and no stamp: a database this project did
/// not create.
fn foreign(extra: &str) -> TestCluster {
    let cluster = TestCluster::start();
    cluster.unstamp();
    cluster.client().batch_execute(&format!("{PRISMA_SHAPED}{extra}")).unwrap();
    cluster
}

fn stamp_of(cluster: &TestCluster) -> Option<String> {
    let mut client = cluster.client();
    let exists: bool =
        client.query_one("select to_regclass('app_meta.environment_stamp') is not null", &[]).unwrap().get(0);
    if !exists {
        return None;
    }
    client.query_opt("select environment from app_meta.environment_stamp", &[]).unwrap().map(|r| r.get(0))
}

#[test]
fn adopting_production_and_staging_then_migrating_and_syncing() {
    let production = foreign(ROWS);
    let staging = foreign("");
    let mut project = Project::new();
    project.env_file(
        ".env.production",
        &format!("DATABASE_URL={}\nSTAGE_SYNC_KEY=Baseline-Test-Key-0123456789\n", production.production_url()),
    );
    project.secret("Baseline-Test-Key-0123456789");
    std::fs::write(project.root.join("env/stage-sync.toml"), RULES).unwrap();
    let before = production.checksum();

    // Without the typed confirmation nothing is written: no stamp, no migration file.
    project
        .xtask(&["migrate", "baseline", "--env", "production"])
        .fails("adopting production needs a typed confirmation");
    assert_eq!(stamp_of(&production), None);
    assert!(std::fs::read_dir(project.root.join("migrations")).unwrap().next().is_none());
    project
        .xtask(&["migrate", "baseline", "--env", "production", "--confirm", "staging"])
        .fails("confirmation does not match the production project ref");
    assert_eq!(stamp_of(&production), None);

    let out = project.xtask(&["migrate", "baseline", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"]).ok();
    assert!(out.stdout.contains("public.\"User\""), "{}", out.stdout);
    assert!(out.stdout.contains("Prisma ledger public._prisma_migrations: 2 applied, latest 20240301000000_accounts"));
    assert!(out.stdout.contains("migrations/0001_baseline.up.sql"), "{}", out.stdout);
    assert_eq!(stamp_of(&production).as_deref(), Some("production"));
    assert_eq!(production.checksum_of("public"), before_public(&before), "adopting changed the data");
    let baseline = std::fs::read_to_string(project.root.join("migrations/0001_baseline.up.sql")).unwrap();
    assert!(baseline.contains("CREATE TABLE public.\"User\""), "{baseline}");
    assert!(!baseline.contains("ann.real"), "the baseline holds data");
    let out = project.xtask(&["migrate", "status", "--env", "production"]).ok();
    assert!(out.stdout.contains("0001     baseline"), "{}", out.stdout);
    // The adopted schema is what production holds, not a change under review.
    let out = project.xtask(&["migrate", "lint"]).ok();
    assert!(out.stderr.contains("linted 0 file(s)"), "{}", out.stderr);

    // Staging, built the same way, is adopted against the same history.
    project
        .xtask(&["migrate", "baseline", "--env", "test", "--confirm", "test"])
        .env("DATABASE_URL", &staging.url())
        .ok();
    assert_eq!(stamp_of(&staging).as_deref(), Some("test"));

    // Migrations apply on top of both.
    project
        .migration("0002_user_locale.up.sql", "alter table public.\"User\" add column locale text;\n")
        .migration("0002_user_locale.down.sql", "alter table public.\"User\" drop column locale;\n");
    project.xtask(&["migrate", "up", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"]).ok();
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &staging.url()).ok();
    let rules = RULES.replace("createdAt = \"keep\"", "createdAt = \"keep\"\nlocale = \"keep\"");
    std::fs::write(project.root.join("env/stage-sync.toml"), rules).unwrap();

    // And a sync between them works: masked, verified.
    project
        .xtask(&["stage-sync", "--from", "production", "--to", "test", "--yes"])
        .env("DATABASE_URL", &staging.url())
        .ok();
    let mut client = staging.client();
    let emails: Vec<String> =
        client.query("select \"emailAddress\" from public.\"User\"", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(emails.len(), 2);
    assert!(emails.iter().all(|e| !e.contains(".real@")), "{emails:?}");
    let token: Option<String> = client.query_one("select access_token from public.\"Account\"", &[]).unwrap().get(0);
    assert_ne!(token.as_deref(), Some("ya29.real-token-value"));
}

/// The `public.` lines of a whole-database checksum.
fn before_public(checksum: &str) -> String {
    checksum.lines().filter(|l| l.starts_with("public.")).collect::<Vec<_>>().join("\n")
}

#[test]
fn adopting_with_history_that_does_not_match_is_refused_with_the_first_difference() {
    let project = Project::new();
    let reference = foreign("");
    project
        .xtask(&["migrate", "baseline", "--env", "test", "--confirm", "test"])
        .env("DATABASE_URL", &reference.url())
        .ok();
    // Another database whose schema went its own way.
    let drifted = foreign("alter table public.\"Account\" add column refresh_token text;");
    let out = project
        .xtask(&["migrate", "baseline", "--env", "test", "--confirm", "test"])
        .env("DATABASE_URL", &drifted.url())
        .fails("the live schema is not what the migrations make");
    assert!(
        out.stderr.contains("in `CREATE TABLE public.\"Account\" (`"),
        "the first difference is named:\n{}",
        out.stderr
    );
    assert_eq!(stamp_of(&drifted), None, "a refused baseline stamped the database");
    // A database that is already this project's has nothing to adopt.
    project
        .xtask(&["migrate", "baseline", "--env", "test", "--confirm", "test"])
        .env("DATABASE_URL", &reference.url())
        .fails("the database is already this project's");
}

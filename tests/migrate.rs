//! Tests for `cargo xtask migrate` and `cargo xtask backup`.

use crate::{
    harness::{Project, TestCluster, migrated},
    helpers::{latest_migration, repo_migrations},
};

fn ledger(cluster: &TestCluster) -> Vec<(i32, String)> {
    cluster
        .client()
        .query("select version, outcome from app_meta.schema_migrations order by version", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn up_applies_everything_once_with_the_no_transaction_file() {
    let (cluster, project) = migrated();
    let applied = ledger(&cluster);
    assert_eq!(applied.len(), repo_migrations().len());
    assert!(applied.iter().all(|(_, outcome)| outcome == "applied"));
    // The no-transaction migration built its index concurrently, and validly.
    let valid: bool = cluster
        .client()
        .query_one("select bool_and(indisvalid) from pg_index where indexrelid::regclass::text like '%financials%clinic%date%'", &[])
        .unwrap()
        .get(0);
    assert!(valid);
    let out = project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    assert!(out.stderr.contains("test is up to date"), "{}", out.stderr);
    let out = project.xtask(&["migrate", "status", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    let applied = out.stdout.lines().filter(|l| l.starts_with('0') && l.contains(" applied "));
    assert_eq!(applied.count(), repo_migrations().len(), "{}", out.stdout);
}

#[test]
fn checksum_drift_and_missing_files_block_up() {
    let (cluster, mut project) = migrated();
    let url = cluster.url();
    project.migration("9001_extra.up.sql", "create table public.extra (id int);\n");
    project.migration("9001_extra.down.sql", "drop table public.extra;\n");
    let file = project.root.join("migrations/0002_providers.up.sql");
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{original}\n-- an innocent edit\n")).unwrap();
    project
        .xtask(&["migrate", "up", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails("applied migrations changed: 0002_providers (modified");
    let out = project.xtask(&["migrate", "status", "--env", "test"]).env("DATABASE_URL", &url).run();
    assert!(out.stdout.lines().any(|l| l.starts_with("0002") && l.contains("modified")), "{}", out.stdout);
    // CRLF line endings are not a modification.
    std::fs::write(&file, original.replace('\n', "\r\n")).unwrap();
    std::fs::remove_file(project.root.join("migrations/0007_dashboard_query_indexes.up.sql")).unwrap();
    std::fs::remove_file(project.root.join("migrations/0007_dashboard_query_indexes.down.sql")).unwrap();
    project
        .xtask(&["migrate", "up", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails("applied migrations changed: 0007_dashboard_query_indexes (missing");
    assert_eq!(ledger(&cluster).len(), repo_migrations().len(), "nothing was applied");
}

#[test]
fn a_failed_migration_is_recorded_and_resolved() {
    let (cluster, mut project) = migrated();
    let url = cluster.url();
    project.migration(
        "9001_broken.up.sql",
        "-- Breaks on purpose.\ncreate table public.ok_part (id int);\nselect * from public.no_such_table;\n",
    );
    project.migration("9001_broken.down.sql", "drop table public.ok_part;\n");
    project
        .xtask(&["migrate", "up", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails("migrations/9001_broken.up.sql:3: relation \"public.no_such_table\" does not exist");
    let exists: bool =
        cluster.client().query_one("select to_regclass('public.ok_part') is not null", &[]).unwrap().get(0);
    assert!(!exists, "the failed migration's first statement was not rolled back");
    assert_eq!(ledger(&cluster).last().unwrap(), &(9001, "failed".to_string()));
    project
        .xtask(&["migrate", "up", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails("migration 9001_broken failed at ");
    let (latest, _) = latest_migration();
    project
        .xtask(&["migrate", "resolve", &latest.to_string(), "--applied", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails(&format!("migration {latest:04} has no recorded failure"));
    project.xtask(&["migrate", "resolve", "9001", "--rolled-back", "--env", "test"]).env("DATABASE_URL", &url).ok();
    project.migration("9001_broken.up.sql", "-- Fixed.\ncreate table public.ok_part (id int);\n");
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &url).ok();
    assert_eq!(ledger(&cluster).last().unwrap(), &(9001, "applied".to_string()));
}

#[test]
fn two_concurrent_runs_apply_each_migration_once() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project.with_migrations();
    project.migration("9001_slow.up.sql", "select pg_sleep(1);\ncreate table public.slow (id int);\n");
    project.migration("9001_slow.down.sql", "drop table public.slow;\n");
    let all = repo_migrations().len() + 1;
    let url = cluster.url();
    let first = project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &url).spawn();
    let second = project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &url).spawn();
    let outputs = [first.wait(), second.wait()];
    assert!(outputs.iter().all(|o| o.code == Some(0)), "{outputs:#?}");
    let appliers = outputs.iter().filter(|o| o.stderr.contains(&format!("applied {all} migration(s)"))).count();
    let idle = outputs.iter().filter(|o| o.stderr.contains("up to date")).count();
    assert_eq!((appliers, idle), (1, 1), "{outputs:#?}");
    assert_eq!(ledger(&cluster).len(), all);
}

#[test]
fn a_no_transaction_file_must_hold_one_statement() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project.migration(
        "0001_two.up.sql",
        "-- migrate:no-transaction\ncreate table a (id int);\ncreate table b (id int);\n",
    );
    project.migration("0001_two.down.sql", "drop table a; drop table b;\n");
    project
        .xtask(&["migrate", "up", "--env", "test"])
        .env("DATABASE_URL", &cluster.url())
        .fails("migrations/0001_two.up.sql: a -- migrate:no-transaction file must hold exactly one statement, not 2");
}

#[test]
fn production_needs_a_typed_confirmation_and_gets_a_verified_backup() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project.with_migrations();
    let production = cluster.production_url();
    cluster.stamp("production");
    project.env_file(".env.production", &format!("DATABASE_URL={production}\n"));
    let before = cluster.checksum();
    project
        .xtask(&["migrate", "up", "--env", "production"])
        .fails("migrating production needs a typed confirmation, and stdin is not a terminal");
    project
        .xtask(&["migrate", "up", "--env", "production", "--confirm", "wrongref"])
        .fails("confirmation does not match the production project ref");
    assert_eq!(cluster.checksum(), before, "an unconfirmed run wrote to production");
    assert!(!project.root.join("backups").exists());

    project.xtask(&["migrate", "up", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"]).ok();
    let rows = cluster
        .client()
        .query("select distinct backup_path, backup_bytes from app_meta.schema_migrations", &[])
        .unwrap();
    assert_eq!(rows.len(), 1);
    let (path, bytes): (String, i64) = (rows[0].get(0), rows[0].get(1));
    assert!(path.contains("/backups/production-") && path.ends_with(".dump"), "{path}");
    assert_eq!(std::fs::metadata(&path).unwrap().len() as i64, bytes);
    let listing = std::process::Command::new(crate::harness::bins().dir.join("pg_restore"))
        .arg("--list")
        .arg(&path)
        .output()
        .unwrap();
    assert!(listing.status.success());
    // The backup was taken before the migrations: it holds the stamp but no clinic table.
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("environment_stamp") && !listing.contains("TABLE public clinics"), "{listing}");
}

#[test]
fn backup_writes_a_verified_dump() {
    let (cluster, project) = migrated();
    let out = project.xtask(&["backup", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    let path = out.stdout.trim();
    assert!(path.contains("/backups/test-"), "{path}");
    assert!(std::fs::metadata(path).unwrap().len() > 1000);
    let leftovers: Vec<_> = std::fs::read_dir(project.root.join("backups"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn verify_passes_on_the_project_and_fails_on_a_broken_down() {
    let mut project = Project::new();
    project.with_migrations();
    let out = project.xtask(&["migrate", "verify"]).ok();
    assert!(out.stderr.contains(&format!("verified {} migrations", repo_migrations().len())), "{}", out.stderr);
    // A down that forgets an index leaves the schema changed.
    project.migration("0007_dashboard_query_indexes.down.sql", "-- Forgets everything.\nselect 1;\n");
    project.xtask(&["migrate", "verify"]).fails("migrations/0007_dashboard_query_indexes.down.sql does not restore the schema from before its up: expected `CREATE INDEX");
}

#[test]
fn down_reverts_on_test_and_is_refused_on_staging() {
    let (cluster, mut project) = migrated();
    let url = cluster.url();
    let out = project.xtask(&["migrate", "down", "--env", "test"]).env("DATABASE_URL", &url).ok();
    assert!(out.stderr.contains(&format!("reverted {}", latest_migration().1)), "{}", out.stderr);
    project.xtask(&["migrate", "down", "--to", "5", "--env", "test"]).env("DATABASE_URL", &url).ok();
    assert_eq!(ledger(&cluster).len(), 5);
    let dashboards: bool =
        cluster.client().query_one("select to_regclass('public.dashboards') is not null", &[]).unwrap().get(0);
    assert!(!dashboards);
    project.remote("staging");
    project
        .xtask(&["migrate", "down", "--env", "staging"])
        .fails("Migrate down on staging is refused: the access matrix says NEVER");
}

#[test]
fn diff_finds_drift_between_environments() {
    let (test_cluster, mut project) = migrated();
    let prod_cluster = TestCluster::start();
    project.env_file(".env.production", &format!("DATABASE_URL={}\n", prod_cluster.production_url()));
    prod_cluster.stamp("production");
    project.xtask(&["migrate", "up", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"]).ok();
    let url = test_cluster.url();
    let out =
        project.xtask(&["migrate", "diff", "--from", "production", "--to", "test"]).env("DATABASE_URL", &url).ok();
    assert!(out.stderr.contains("production and test agree"), "{}", out.stderr);
    test_cluster.client().batch_execute("alter table public.clinics add column planted text").unwrap();
    project.xtask(&["migrate", "down", "--env", "test"]).env("DATABASE_URL", &url).ok();
    let out = project
        .xtask(&["migrate", "diff", "--from", "production", "--to", "test"])
        .env("DATABASE_URL", &url)
        .fails("production and test have drifted (2 difference(s))");
    assert!(out.stdout.contains(&format!("{} is applied on production only", latest_migration().1)), "{}", out.stdout);
    assert!(out.stdout.contains("schemas differ"), "{}", out.stdout);
}

#[test]
fn new_writes_the_next_numbered_pair() {
    let mut project = Project::new();
    project.with_migrations();
    let out = project.xtask(&["migrate", "new", "Add patient notes!"]).ok();
    let next = format!("{:04}_add_patient_notes", latest_migration().0 + 1);
    assert_eq!(out.stdout, format!("migrations/{next}.up.sql\nmigrations/{next}.down.sql\n"));
    assert!(project.root.join(format!("migrations/{next}.down.sql")).is_file());
    project.xtask(&["migrate", "new", "!!!"]).fails("`!!!` gives an empty file name");
}

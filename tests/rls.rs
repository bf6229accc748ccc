//! Tests for the `cargo xtask rls` command.

use crate::harness::{Output, Project, Run, TABLES, TestCluster, migrated};

/// `cargo xtask rls --env test` against the cluster.
fn rls<'a>(project: &'a Project, cluster: &TestCluster) -> Run<'a> {
    project.xtask(&["rls", "--env", "test"]).env("DATABASE_URL", &cluster.url())
}

/// The cells of `table`'s line in the report.
fn cells<'a>(out: &'a Output, table: &str) -> Vec<&'a str> {
    let line = out.stdout.lines().find(|line| line.split_whitespace().next() == Some(table));
    line.unwrap_or_else(|| panic!("no line for {table}:\n{}", out.stdout)).split_whitespace().skip(1).collect()
}

#[test]
fn passes_on_the_migrations() {
    let (cluster, project) = migrated();
    let out = rls(&project, &cluster).ok();
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    for table in TABLES {
        assert_eq!(cells(&out, table), ["ok"; 8], "{table}:\n{}", out.stdout);
    }
    assert!(out.stderr.contains("RLS suite passed: 14 tables"), "{}", out.stderr);
}

#[test]
fn a_table_without_rls_fails() {
    let (cluster, project) = migrated();
    cluster
        .client()
        .batch_execute(
            "create table public.planted (id uuid primary key default gen_random_uuid(), clinic_id uuid references clinics(id));
             grant all on public.planted to authenticated;",
        )
        .unwrap();
    let out = rls(&project, &cluster).fails("RLS suite failed:");
    assert_eq!(cells(&out, "planted")[..2], ["FAIL", "FAIL"], "{}", out.stdout);
    assert!(out.stderr.contains("planted: row-level security is not enabled"), "{}", out.stderr);
    for table in TABLES {
        assert!(!cells(&out, table).contains(&"FAIL"), "{table}:\n{}", out.stdout);
    }
}

#[test]
fn a_policy_that_shows_everything_fails() {
    let (cluster, project) = migrated();
    // A trigger gives the planted table a row for each clinic the fixtures create, so that
    // the policy, not a lack of rows, is what fails.
    cluster
        .client()
        .batch_execute(
            "create table public.planted (id uuid primary key default gen_random_uuid(), clinic_id uuid references clinics(id));
             grant all on public.planted to authenticated;
             alter table public.planted enable row level security;
             create policy planted_all on public.planted using (true);
             create function public.plant_row() returns trigger language plpgsql as
               $$ begin insert into public.planted (clinic_id) values (new.id); return new; end $$;
             create trigger plant_row after insert on public.clinics for each row execute function public.plant_row();",
        )
        .unwrap();
    let before = cluster.checksum();
    let out = rls(&project, &cluster).fails("RLS suite failed:");
    assert_eq!(
        cells(&out, "planted"),
        ["ok", "ok", "FAIL", "FAIL", "FAIL", "FAIL", "FAIL", "ok"],
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stderr.contains("planted: user A sees 2 rows (1 not meant for it), expected 1"), "{}", out.stderr);
    assert!(out.stderr.contains("user A inserted a row for clinic B"), "{}", out.stderr);
    // The writes that got through were rolled back with everything else.
    assert_eq!(cluster.checksum(), before);
}

#[test]
fn refused_on_production() {
    let mut project = Project::new();
    project.remote("production");
    project.xtask(&["rls", "--env", "production"]).fails("RLS testing on production is refused");
}

#[test]
fn leaves_the_database_unchanged() {
    let (cluster, project) = migrated();
    let before = cluster.checksum();
    rls(&project, &cluster).ok();
    assert_eq!(cluster.checksum(), before);
}

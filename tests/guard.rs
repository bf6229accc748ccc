//! Tests for the guard: writes refused where the matrix or the stamp says no, with the
//! protected database unchanged.

use crate::harness::{Project, TestCluster};

#[test]
fn a_database_stamped_production_refuses_writes() {
    let cluster = TestCluster::start();
    cluster.client().batch_execute("create table public.patients (id int primary key, name text); insert into patients values (1, 'Real Person');").unwrap();
    cluster.stamp("production");
    let before = cluster.checksum();
    let project = Project::new();
    project
        .xtask(&["db", "reset", "--env", "test"])
        .env("DATABASE_URL", &cluster.url())
        .fails("the database at 127.0.0.1:");
    assert_eq!(cluster.checksum(), before);
}

#[test]
fn an_unstamped_database_is_not_reset_blindly_by_other_operations() {
    let cluster = TestCluster::start();
    cluster.stamp("local");
    let before = cluster.checksum();
    let project = Project::new();
    let out = project
        .xtask(&["db", "reset", "--env", "test"])
        .env("DATABASE_URL", &cluster.url())
        .fails("the database at 127.0.0.1:");
    assert!(out.stderr.contains("is stamped local, not test"), "{}", out.stderr);
    assert_eq!(cluster.checksum(), before);
}

#[test]
fn reset_is_refused_on_staging_and_production_by_the_matrix() {
    let mut project = Project::new();
    project.secret("Stg-Pw-1234").env_file(
        ".env.staging",
        "DATABASE_URL=postgresql://postgres.STAGING_REF:Stg-Pw-1234@aws-0-us-east-2.pooler.supabase.com:5432/postgres\n",
    );
    project
        .xtask(&["db", "reset", "--env", "staging"])
        .fails("Create / reset database on staging is refused: the access matrix says NEVER");
    project.secret("Prod-Pw-1234").env_file(
        ".env.production",
        "DATABASE_URL=postgresql://postgres.yovbdmjwrrgardkgrenc:Prod-Pw-1234@aws-0-us-east-2.pooler.supabase.com:5432/postgres\n",
    );
    project.xtask(&["db", "reset", "--env", "production"]).fails("Create / reset database on production is refused");
}

#[test]
fn reset_re_creates_a_test_database() {
    let cluster = TestCluster::start();
    cluster.client().batch_execute("create table public.scratch (id int)").unwrap();
    let project = Project::new();
    project.xtask(&["db", "reset", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    let mut client = cluster.client();
    let scratch: bool = client.query_one("select to_regclass('public.scratch') is not null", &[]).unwrap().get(0);
    assert!(!scratch, "the old table survived the reset");
    let stamp: String = client.query_one("select environment from app_meta.environment_stamp", &[]).unwrap().get(0);
    assert_eq!(stamp, "test");
}

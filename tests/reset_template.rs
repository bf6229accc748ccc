//! Tests for `db reset` from a template database: a hit clones exactly what a rebuild
//! makes (data, stamp, the database's own settings and comment), a changed migration or
//! seed option is a miss that rebuilds and refreshes the template, and a target someone
//! else is connected to is rebuilt in place instead of swapped.

use crate::harness::{Project, TestCluster};

fn reset(project: &Project, cluster: &TestCluster, extra: &[&str]) -> String {
    let mut args = vec!["db", "reset", "--env", "test"];
    args.extend_from_slice(extra);
    project.xtask(&args).env("DATABASE_URL", &cluster.url()).ok().stderr
}

/// The seeded data, byte for byte (the ledger's and stamp's times are left out).
fn data(cluster: &TestCluster) -> String {
    format!("{}\n{}", cluster.checksum_of("public"), cluster.checksum_of("auth"))
}

/// What a database keeps outside its tables: the stamp, its comment (the bootstrap
/// version) and its `search_path` setting, and the databases the server holds.
fn database_state(cluster: &TestCluster) -> (String, Option<String>, String, Vec<String>) {
    let mut client = cluster.client();
    let stamp: String = client.query_one("select environment from app_meta.environment_stamp", &[]).unwrap().get(0);
    let comment: Option<String> = client
        .query_one(
            "select shobj_description(oid, 'pg_database') from pg_database where datname = current_database()",
            &[],
        )
        .unwrap()
        .get(0);
    let search_path: String = client.query_one("show search_path", &[]).unwrap().get(0);
    // The database a clone replaced is dropped by a detached process, whenever it runs.
    let databases = client
        .query("select datname::text from pg_database where datname not like '%\\_xtask\\_old' order by 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (stamp, comment, search_path, databases)
}

#[test]
fn a_hit_clones_what_a_miss_builds_and_changes_invalidate_it() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project.with_migrations();

    let out = reset(&project, &cluster, &[]);
    assert!(out.contains("(rebuilt)"), "the first reset has no template: {out}");
    let built = data(&cluster);
    let state = database_state(&cluster);
    assert_eq!(state.0, "test");
    assert!(state.1.as_deref().is_some_and(|c| c.starts_with("supabase-bootstrap")), "{state:?}");
    assert!(state.2.contains("extensions"), "{state:?}");
    assert!(state.3.contains(&"postgres_xtask_template".to_string()), "{state:?}\n{out}");
    assert!(cluster.checksum_of("public").contains("public.clinics="), "seeded");

    let out = reset(&project, &cluster, &[]);
    assert!(out.contains("(cloned from its template)"), "{out}");
    assert_eq!(data(&cluster), built, "a clone holds what the rebuild made");
    assert_eq!(database_state(&cluster), state, "stamp, comment, settings and databases as after the rebuild");

    // A seed option is part of the key: a miss, then a hit of the new key.
    let out = reset(&project, &cluster, &["--no-seed"]);
    assert!(out.contains("(rebuilt)"), "{out}");
    assert_ne!(data(&cluster), built);
    let unseeded = data(&cluster);
    assert!(reset(&project, &cluster, &["--no-seed"]).contains("(cloned from its template)"));
    assert_eq!(data(&cluster), unseeded);

    // Back to the seeded key: rebuilt, and byte-identical to the first build.
    assert!(reset(&project, &cluster, &[]).contains("(rebuilt)"));
    assert_eq!(data(&cluster), built, "a rebuild makes the same data as the clone it replaces");

    // A new migration is a miss; the template then holds it.
    project.migration("0100_extra.up.sql", "create table public.template_probe (id int primary key);");
    project.migration("0100_extra.down.sql", "drop table public.template_probe;");
    assert!(reset(&project, &cluster, &[]).contains("(rebuilt)"));
    assert!(reset(&project, &cluster, &[]).contains("(cloned from its template)"));
    assert!(cluster.checksum().contains("public.template_probe="), "the clone has the new migration's table");

    // Someone connected to the target: no swap, the database is rebuilt in place.
    let mut other = cluster.client();
    let out = reset(&project, &cluster, &[]);
    assert!(out.contains("other session(s) are connected") && out.contains("(rebuilt)"), "{out}");
    other.batch_execute("select 1").unwrap();
    drop(other);
    assert_eq!(database_state(&cluster).0, "test");
}

#[test]
fn a_template_stamped_for_another_environment_is_never_swapped_in() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project.with_migrations();
    reset(&project, &cluster, &["--no-seed"]);
    // Someone re-stamps the template by hand as production.
    let mut client = cluster.client();
    client.batch_execute("alter database postgres_xtask_template with allow_connections true").unwrap();
    let url = format!("{}_xtask_template", cluster.url());
    let mut template = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    template.batch_execute("update app_meta.environment_stamp set environment = 'production'").unwrap();
    drop(template);
    drop(client);
    let before = cluster.checksum();
    let out = project
        .xtask(&["db", "reset", "--env", "test", "--no-seed"])
        .env("DATABASE_URL", &cluster.url())
        .fails("the template postgres_xtask_template is stamped production, not test");
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert_eq!(cluster.checksum(), before, "the target is unchanged");
    let databases = cluster.strings("select datname::text from pg_database");
    assert!(!databases.iter().any(|d| d.ends_with("_xtask_new")), "the clone is dropped: {databases:?}");
}

//! Tests for restore points and `db undo`: `db reset` (a template hit or a rebuild),
//! `seed --replace` and `stage-sync --to test` keep the database they replace, closed to connections, and `db undo`
//! swaps it back byte for byte (a checksum of every table); undo twice is redo; the matrix
//! refuses undo on staging and production; a reset killed at random moments leaves the old
//! or the new database, and the next command leaves no stray database behind.

use crate::harness::{Project, TestCluster};
use crate::helpers::settled;

const RESTORE: &str = "postgres_xtask_restore";

fn xtask(project: &Project, cluster: &TestCluster, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--env", "test"]);
    project.xtask(&all).env("DATABASE_URL", &cluster.url()).ok().stderr
}

/// The restore point's comment and whether it takes connections.
fn restore_point(cluster: &TestCluster) -> Option<(String, bool)> {
    let row = cluster
        .client()
        .query_opt(
            "select shobj_description(oid, 'pg_database'), datallowconn from pg_database where datname = $1",
            &[&RESTORE],
        )
        .unwrap();
    row.map(|r| (r.get::<_, Option<String>>(0).unwrap_or_default(), r.get(1)))
}

/// Hand-made test data: what a developer would lose to a reset in the wrong terminal.
fn hand_made(cluster: &TestCluster) {
    cluster
        .client()
        .batch_execute(
            "create table if not exists public.hand_made (id int primary key, note text);
             insert into public.hand_made select coalesce(max(id), 0) + 1, 'by hand' from public.hand_made;
             update public.clinics set name = name || ' (edited)' where id = (select id from public.clinics order by id limit 1);",
        )
        .unwrap();
}

fn database_comment(cluster: &TestCluster) -> Option<String> {
    cluster
        .client()
        .query_one("select shobj_description(oid, 'pg_database') from pg_database where datname = 'postgres'", &[])
        .unwrap()
        .get(0)
}

#[test]
fn reset_and_seed_replace_are_undone_byte_for_byte_and_undo_twice_is_redo() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project.with_migrations();
    assert!(xtask(&project, &cluster, &["db", "reset"]).contains("(rebuilt)"));
    hand_made(&cluster);
    let (before, comment) = (cluster.checksum(), database_comment(&cluster));
    assert!(before.contains("public.hand_made="), "{before}");

    // A template hit keeps the database it replaces, closed to connections.
    let out = xtask(&project, &cluster, &["db", "reset"]);
    assert!(out.contains("(cloned from its template)"), "{out}");
    let reset = cluster.checksum();
    assert_ne!(reset, before);
    let (mark, allows) = restore_point(&cluster).expect("a restore point");
    assert!(mark.starts_with("xtask-restore-point\n") && mark.contains("\ndb reset\n"), "{mark}");
    assert!(!allows, "nobody may connect to the restore point by mistake");

    let out = xtask(&project, &cluster, &["db", "undo"]);
    assert!(out.contains("swapped back to its state from before the db reset of"), "{out}");
    assert_eq!(cluster.checksum(), before, "undo gives back every table as it was");
    assert_eq!(database_comment(&cluster), comment, "and the database's own comment");
    assert!(!restore_point(&cluster).unwrap().1, "the reset state is now the closed restore point");
    xtask(&project, &cluster, &["db", "undo"]);
    assert_eq!(cluster.checksum(), reset, "undo twice is redo");
    xtask(&project, &cluster, &["db", "undo"]);
    assert_eq!(cluster.checksum(), before);

    // `seed --replace` keeps one too, a copy made before it rewrites the tables.
    let out = xtask(&project, &cluster, &["seed", "--profile", "minimal", "--replace"]);
    assert!(out.contains("as its restore point"), "{out}");
    let seeded = cluster.checksum();
    assert_ne!(seeded, before);
    assert!(restore_point(&cluster).unwrap().0.contains("\nseed --replace\n"));
    xtask(&project, &cluster, &["db", "undo"]);
    assert_eq!(cluster.checksum(), before, "undo of a seed --replace");
    xtask(&project, &cluster, &["db", "undo"]);
    assert_eq!(cluster.checksum(), seeded, "and its redo");

    // A rebuild (a template miss: another seed option) keeps one the same way.
    let out = xtask(&project, &cluster, &["db", "reset", "--no-seed"]);
    assert!(out.contains("(rebuilt)") && out.contains("as its restore point"), "{out}");
    xtask(&project, &cluster, &["db", "undo"]);
    assert_eq!(cluster.checksum(), seeded, "undo of a rebuild");

    // Turned off: the restore point an earlier command kept stays as it was.
    let kept = restore_point(&cluster).unwrap().0;
    let out = xtask(&project, &cluster, &["seed", "--profile", "minimal", "--replace", "--no-restore-point"]);
    assert!(!out.contains("restore point"), "{out}");
    assert_eq!(restore_point(&cluster).unwrap().0, kept);
    assert_eq!(settled(&cluster), ["postgres_xtask_restore", "postgres_xtask_template"]);
}

/// `stage-sync --to test` keeps the database as it was before the sync: `db undo` gives it
/// back byte for byte, a second undo gives the synced state again; with
/// `--no-restore-point` the restore point an earlier command kept stays as it was.
#[test]
fn a_stage_sync_into_test_is_undone_byte_for_byte() {
    let s = crate::stage_sync_fixtures::setup();
    s.target
        .client()
        .batch_execute(
            "insert into public.clinics (id, name) values ('c0000000-0000-4000-8000-0000000000ee', 'Hand-made Clinic')",
        )
        .unwrap();
    let before = s.target.checksum();
    let out = s.sync(&[]).ok();
    assert!(out.stderr.contains("as its restore point"), "{}", out.stderr);
    let synced = s.target.checksum();
    assert_ne!(synced, before);
    let (mark, allows) = restore_point(&s.target).expect("a restore point");
    assert!(mark.contains("\nstage-sync\n") && !allows, "{mark}");
    let out = xtask(&s.project, &s.target, &["db", "undo"]);
    assert!(out.contains("before the stage-sync of"), "{out}");
    assert_eq!(s.target.checksum(), before, "undo gives back the database as it was before the sync");
    xtask(&s.project, &s.target, &["db", "undo"]);
    assert_eq!(s.target.checksum(), synced, "undo twice is redo");

    let kept = restore_point(&s.target).unwrap().0;
    let out = s.sync(&["--no-restore-point"]).ok();
    assert!(!out.stderr.contains("restore point"), "{}", out.stderr);
    assert_eq!(restore_point(&s.target).unwrap().0, kept);
}

#[test]
fn undo_is_refused_without_a_restore_point_while_someone_is_connected_and_off_local_and_test() {
    let mut project = Project::new();
    project.remote("staging");
    project
        .xtask(&["db", "undo", "--env", "staging"])
        .fails("Undo (restore point) on staging is refused: the access matrix says NEVER");
    project.remote("production");
    project.xtask(&["db", "undo", "--env", "production"]).fails("Undo (restore point) on production is refused");

    let cluster = TestCluster::start();
    project.with_migrations();
    let undo = || project.xtask(&["db", "undo", "--env", "test"]).env("DATABASE_URL", &cluster.url());
    let out = undo().fails("postgres has no restore point: there is nothing to undo");
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    xtask(&project, &cluster, &["db", "reset", "--no-seed"]);
    xtask(&project, &cluster, &["db", "reset", "--no-seed"]);
    let before = cluster.checksum();
    let mut other = cluster.client();
    undo().fails("1 other session(s) are connected to postgres: nothing was undone");
    other.batch_execute("select 1").unwrap();
    drop(other);
    assert_eq!(cluster.checksum(), before, "nothing changed");
    assert!(!restore_point(&cluster).unwrap().1, "the restore point is closed again");
    undo().ok();
}

#[test]
fn a_reset_killed_at_random_moments_leaves_old_or_new_and_no_stray_database() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project.with_migrations();
    let started = std::time::Instant::now();
    xtask(&project, &cluster, &["db", "reset"]);
    let rebuild = started.elapsed().as_millis() as u64;
    let started = std::time::Instant::now();
    xtask(&project, &cluster, &["db", "reset"]);
    let full = started.elapsed().as_millis() as u64;
    let complete = cluster.checksum();
    let reset = || project.xtask(&["db", "reset", "--env", "test"]).env("DATABASE_URL", &cluster.url()).spawn();
    crate::helpers::kill_suite(
        &format!("db reset with a restore point ({full} ms a run, {rebuild} ms rebuilt)"),
        &crate::harness::random_delays(8, full / 10, full + full / 5),
        &complete,
        || {
            hand_made(&cluster);
            cluster.checksum()
        },
        reset,
        || cluster.checksum(),
    );
    // The next command completes and clears what the kills left.
    xtask(&project, &cluster, &["db", "reset"]);
    assert_eq!(cluster.checksum(), complete);
    assert_eq!(settled(&cluster), ["postgres_xtask_restore", "postgres_xtask_template"]);
}

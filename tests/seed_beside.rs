//! Tests for the seed and the rebuild built beside the target: `seed --replace` and a
//! rebuilding `db reset` on test seed a copy over several connections and swap it in. The
//! rows, keys and indexes equal the in-place path's (`XTASK_SEED_IN_PLACE=1`, one
//! transaction); a kill at random moments leaves the old or the new state, and the next
//! command leaves no build database behind; the restore point undoes a beside seed.

use crate::harness::{Project, Run, TestCluster, migrated};
use crate::helpers::settled;

const RESTORE: &str = "postgres_xtask_restore";
const ARGS: [&str; 6] = ["--profile", "realistic", "--clinics", "4", "--days", "200"];

fn seed<'a>(cluster: &TestCluster, project: &'a Project, args: &[&str]) -> Run<'a> {
    let mut all = vec!["seed", "--env", "test"];
    all.extend_from_slice(args);
    project.xtask(&all).env("DATABASE_URL", &cluster.url())
}

/// The constraints (with whether they are validated) and indexes of `public`.
fn keys_and_indexes(cluster: &TestCluster) -> Vec<String> {
    cluster.strings(
        "select conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated
           from pg_constraint where connamespace = 'public'::regnamespace
         union all
         select pg_get_indexdef(indexrelid) from pg_index
           where indrelid in (select oid from pg_class where relnamespace = 'public'::regnamespace)
         order by 1",
    )
}

#[test]
fn the_beside_seed_gives_the_in_place_seeds_rows_keys_and_indexes_and_is_undone() {
    let (cluster, project) = migrated();
    let migrated_schema = keys_and_indexes(&cluster);
    let out = seed(&cluster, &project, &ARGS).env("XTASK_SEED_IN_PLACE", "1").ok();
    assert!(out.stderr.contains("(in place, one transaction)"), "{}", out.stderr);
    assert_eq!(keys_and_indexes(&cluster), migrated_schema);
    cluster.client().batch_execute("create table public.hand_made (id int primary key)").unwrap();
    cluster.client().batch_execute("insert into public.hand_made values (1)").unwrap();
    let (before, schema) = (cluster.checksum(), keys_and_indexes(&cluster));

    let out = seed(&cluster, &project, &[&ARGS[..], &["--replace"]].concat()).ok();
    assert!(out.stderr.contains("then swapped in)"), "{}", out.stderr);
    assert!(out.stderr.contains("as its restore point"), "{}", out.stderr);
    assert_eq!(cluster.checksum(), before, "the beside seed wrote other rows than the in-place one");
    assert!(!schema.is_empty());
    assert_eq!(keys_and_indexes(&cluster), schema, "keys or indexes differ, or are left unvalidated");

    // Another seed, beside; its restore point gives back the earlier one byte for byte.
    seed(&cluster, &project, &["--profile", "minimal", "--seed", "3", "--replace"]).ok();
    let other = cluster.checksum();
    assert_ne!(other, before);
    project.xtask(&["db", "undo", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    assert_eq!(cluster.checksum(), before, "undo of a beside seed");
    assert_eq!(settled(&cluster), [RESTORE]);

    // Without --replace, a beside seed refuses a database that holds data, and leaves no
    // build database behind.
    seed(&cluster, &project, &ARGS).fails("the test database already holds data (");
    assert_eq!(cluster.checksum(), before);
    assert_eq!(settled(&cluster), [RESTORE]);
}

#[test]
fn someone_connected_makes_the_seed_work_in_place_as_before() {
    let (cluster, project) = migrated();
    let mut other = cluster.client();
    let out = seed(&cluster, &project, &["--profile", "minimal"]).ok();
    assert!(out.stderr.contains("not built beside the database: 1 other session(s) are connected"), "{}", out.stderr);
    assert!(out.stderr.contains("(in place, one transaction)"), "{}", out.stderr);
    other.batch_execute("select 1").unwrap();
    assert_eq!(settled(&cluster), Vec::<String>::new());
}

#[test]
fn a_seed_replace_killed_at_random_moments_leaves_old_or_new_and_the_next_leaves_no_build() {
    let (cluster, project) = migrated();
    let args = [&ARGS[..], &["--replace", "--no-restore-point"]].concat();
    let started = std::time::Instant::now();
    seed(&cluster, &project, &args).ok();
    let full = started.elapsed().as_millis() as u64;
    let complete = cluster.checksum();
    crate::helpers::kill_suite(
        &format!("seed --replace beside ({full} ms a run)"),
        &crate::harness::random_delays(8, full / 10, full + full / 5),
        &complete,
        || {
            cluster.client().batch_execute("update public.clinics set name = name || '.' where id = (select id from public.clinics order by id limit 1)").unwrap();
            cluster.checksum()
        },
        || seed(&cluster, &project, &args).spawn(),
        || cluster.checksum(),
    );
    seed(&cluster, &project, &args).ok();
    assert_eq!(cluster.checksum(), complete);
    assert_eq!(settled(&cluster), Vec::<String>::new(), "a killed run's build database is left");
}

#[test]
fn a_rebuilding_reset_killed_at_random_moments_leaves_old_or_new_and_no_stray_database() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project.with_migrations();
    let reset = || project.xtask(&["db", "reset", "--env", "test"]).env("DATABASE_URL", &cluster.url());
    let no_template = || {
        let mut client = cluster.client();
        let sql = "select exists (select from pg_database where datname = 'postgres_xtask_template')";
        if client.query_one(sql, &[]).unwrap().get(0) {
            client.batch_execute("drop database postgres_xtask_template").unwrap();
        }
    };
    // The migration ledger records when each migration ran: every rebuild writes others.
    let state = || cluster.checksum().lines().filter(|l| !l.starts_with("app_meta.")).collect::<Vec<_>>().join("\n");
    reset().ok();
    no_template();
    let started = std::time::Instant::now();
    let out = reset().ok();
    let full = started.elapsed().as_millis() as u64;
    assert!(
        out.stderr.contains("rebuilding beside the database") && out.stderr.contains("(rebuilt)"),
        "{}",
        out.stderr
    );
    let complete = state();
    crate::helpers::kill_suite(
        &format!("db reset rebuilding beside ({full} ms a run)"),
        &crate::harness::random_delays(8, full / 10, full + full / 5),
        &complete,
        || {
            // Every run a template miss: it rebuilds.
            no_template();
            cluster.client().batch_execute("create table if not exists public.hand_made (id int)").unwrap();
            cluster.client().batch_execute("insert into public.hand_made values (1)").unwrap();
            state()
        },
        || reset().spawn(),
        state,
    );
    no_template();
    reset().ok();
    assert_eq!(state(), complete);
    assert_eq!(settled(&cluster), [RESTORE, "postgres_xtask_template"]);
}

//! Attacks on what builds beside a database and swaps it in (issue 24): the build
//! `<db>_xtask_new`, the replaced `<db>_xtask_old`, the restore point `<db>_xtask_restore`
//! and the shadow schemas of a sync. What drops or renames them must not be fooled by a
//! name or a comment (anyone who owns a database can write its comment): databases planted
//! under those names, stamped production or holding data of their own, are never swapped
//! in, renamed or dropped; a second command on the same database waits for the first
//! instead of ending its build; libpq's variables move nothing; names that need quoting are
//! quoted everywhere and names too long for their derived names are never truncated.

use crate::harness::{Project, Run, TestCluster, migrated};
use crate::helpers::settled;

const RESTORE: &str = "postgres_xtask_restore";
const ARGS: [&str; 6] = ["--profile", "realistic", "--clinics", "4", "--days", "200"];

fn xtask<'a>(cluster: &TestCluster, project: &'a Project, args: &[&str]) -> Run<'a> {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--env", "test"]);
    project.xtask(&all).env("DATABASE_URL", &cluster.url())
}

/// A connection to another database of the cluster.
fn on(cluster: &TestCluster, dbname: &str) -> postgres::Client {
    let mut config: postgres::Config = cluster.url().parse().unwrap();
    config.dbname(dbname).connect(postgres::NoTls).unwrap()
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A database under `name` that this project did not make: a copy of the target that holds
/// a table of its own, stamped `stamp` (or unstamped), with `comment` (forged, when it is
/// one of the project's marks). Returns its oid, which a drop and re-create would change.
fn planted(cluster: &TestCluster, name: &str, stamp: Option<&str>, comment: Option<&str>) -> u32 {
    let mut admin = on(cluster, "template1");
    // The test's own sessions on the target end asynchronously, and pg_cron's launcher
    // stays connected to it (the server restarts it a second after it ends).
    let pause_cron = "select pg_terminate_backend(pid) from pg_stat_activity where backend_type = 'pg_cron launcher'";
    for attempt in 0.. {
        admin.batch_execute(pause_cron).unwrap();
        match admin.batch_execute(&format!("create database {} template postgres", quoted(name))) {
            Ok(()) => break,
            Err(err) if attempt < 20 => {
                assert!(err.to_string().contains("accessed by other users") || err.as_db_error().is_some(), "{err}");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(err) => panic!("cannot plant {name}: {err}"),
        }
    }
    let mut db = on(cluster, name);
    db.batch_execute(
        "create table public.not_yours (id int primary key); insert into public.not_yours values (1), (2), (3)",
    )
    .unwrap();
    match stamp {
        Some(env) => {
            assert_eq!(db.execute("update app_meta.environment_stamp set environment = $1", &[&env]).unwrap(), 1)
        }
        None => db.batch_execute("drop schema app_meta cascade").unwrap(),
    }
    drop(db);
    if let Some(comment) = comment {
        admin.batch_execute(&format!("comment on database {name} is '{}'", comment.replace('\'', "''"))).unwrap();
    }
    oid_of(cluster, name).unwrap()
}

fn oid_of(cluster: &TestCluster, name: &str) -> Option<u32> {
    cluster.client().query_opt("select oid from pg_database where datname = $1", &[&name]).unwrap().map(|r| r.get(0))
}

/// Every database of the cluster, once no build or replaced database is left beside one.
fn databases(cluster: &TestCluster) -> Vec<String> {
    for _ in 0..600 {
        let names = cluster.strings("select datname::text from pg_database order by 1");
        if !names.iter().any(|n| n.ends_with("_xtask_old") || n.ends_with("_xtask_new")) {
            return names;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("a build or replaced database stayed beside its target");
}

/// A name that needs quoting everywhere (a quote, spaces, a slash, a non-ASCII letter) is
/// built beside, kept and undone under exactly its own derived names; a name too long for
/// those names (63 bytes) is never truncated into another database's: the seed works in
/// place and keeps no restore point.
#[test]
fn awkward_names_are_quoted_everywhere_and_too_long_ones_are_never_truncated() {
    let (cluster, project) = migrated();
    let (awkward, long) = ("Dental \"Q\" ü/1", "d".repeat(49));
    let clinics = |name: &str| -> i64 {
        on(&cluster, name).query_one("select count(*) from public.clinics", &[]).unwrap().get(0)
    };
    for name in [awkward, long.as_str()] {
        planted(&cluster, name, Some("test"), None);
    }
    let all = databases(&cluster);
    let url = |name: &str| {
        let encoded: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
        format!("{}/{encoded}", cluster.url().rsplit_once('/').unwrap().0)
    };
    let seed = |name: &str| {
        project
            .xtask(&["seed", "--profile", "minimal", "--replace", "--env", "test"])
            .env("DATABASE_URL", &url(name))
            .ok()
    };
    let before = clinics(awkward);
    let out = seed(awkward);
    assert!(out.stderr.contains("then swapped in)") && out.stderr.contains("as its restore point"), "{}", out.stderr);
    assert_ne!(clinics(awkward), before);
    let restore = format!("{awkward}_xtask_restore");
    let added: Vec<String> = databases(&cluster).into_iter().filter(|n| !all.contains(n)).collect();
    assert_eq!(added, [restore], "the restore point, under exactly its derived name, and nothing else");
    project.xtask(&["db", "undo", "--env", "test"]).env("DATABASE_URL", &url(awkward)).ok();
    assert_eq!(clinics(awkward), before, "undo under a quoted name");

    let out = seed(&long);
    let why = "the database's name is too long for a template beside it";
    assert!(out.stderr.contains(&format!("not built beside the database: {why}")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("no restore point kept: {why}")), "{}", out.stderr);
    assert!(out.stderr.contains("(in place, one transaction)"), "{}", out.stderr);
    assert_ne!(clinics(&long), before);
    assert_eq!(databases(&cluster).len(), all.len() + 1, "only the quoted name's restore point was added");
}

/// A forged restore point: the mark's comment, closed to connections, owned by the
/// target's owner, but stamped production and holding a table the target never had.
const FORGED_RESTORE: &str = "xtask-restore-point\n2026-01-01 00:00:00 UTC\ndb reset\n";

#[test]
fn a_forged_restore_point_stamped_production_is_neither_swapped_in_nor_dropped() {
    let (cluster, project) = migrated();
    let oid = planted(&cluster, RESTORE, Some("production"), Some(FORGED_RESTORE));
    cluster.client().batch_execute(&format!("alter database {RESTORE} with allow_connections false")).unwrap();
    let before = cluster.checksum();

    let out = xtask(&cluster, &project, &["db", "undo"])
        .fails("the restore point postgres_xtask_restore is stamped production, not test: not swapped in");
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert_eq!(cluster.checksum(), before, "undo swapped something in");

    // Keeping a new restore point would rename the one there to scratch, to be dropped.
    let refused = "no restore point kept: the database postgres_xtask_restore, marked as this project's, is stamped production, not test";
    let out = xtask(&cluster, &project, &["seed", "--profile", "minimal", "--replace"]).ok();
    assert!(out.stderr.contains("then swapped in)") && out.stderr.contains(refused), "{}", out.stderr);
    let out =
        xtask(&cluster, &project, &["seed", "--profile", "minimal", "--replace"]).env("XTASK_SEED_IN_PLACE", "1").ok();
    assert!(out.stderr.contains("(in place, one transaction)") && out.stderr.contains(refused), "{}", out.stderr);
    assert_eq!(settled(&cluster), [RESTORE]);
    assert_eq!(oid_of(&cluster, RESTORE), Some(oid), "the planted database was dropped or replaced");
    let comment: String = cluster
        .client()
        .query_one("select shobj_description(oid, 'pg_database') from pg_database where datname = $1", &[&RESTORE])
        .unwrap()
        .get(0);
    assert_eq!(comment, FORGED_RESTORE, "the planted database was renamed or re-marked");
}

#[test]
fn a_forged_scratch_mark_never_gets_a_database_of_other_stamp_or_holding_data_dropped() {
    let (cluster, project) = migrated();
    let new = planted(&cluster, "postgres_xtask_new", None, Some("xtask-scratch"));
    let old = planted(&cluster, "postgres_xtask_old", Some("production"), Some("xtask-scratch"));

    let out = xtask(&cluster, &project, &["seed", "--profile", "minimal", "--replace"]).ok();
    let why = "the database postgres_xtask_new, marked as this project's, is stamped (unstamped, holding ";
    assert!(out.stderr.contains(&format!("not built beside the database: {why}")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("no restore point kept: {why}")), "{}", out.stderr);
    assert!(out.stderr.contains("(in place, one transaction)"), "{}", out.stderr);
    xtask(&cluster, &project, &["db", "undo"]).fails("postgres has no restore point");

    // With the build out of the way, the replaced database's name is the one tried.
    cluster.client().batch_execute("alter database postgres_xtask_new rename to planted_new").unwrap();
    xtask(&cluster, &project, &["db", "reset", "--drop-replaced"]).fails(
        "the database postgres_xtask_old, marked as this project's, is stamped production, not test: not dropped or renamed",
    );
    let out = xtask(&cluster, &project, &["seed", "--profile", "minimal", "--replace"]).ok();
    assert!(out.stderr.contains("not built beside the database: the database postgres_xtask_old"), "{}", out.stderr);
    assert_eq!(oid_of(&cluster, "planted_new"), Some(new));
    assert_eq!(oid_of(&cluster, "postgres_xtask_old"), Some(old));
    assert_eq!(
        on(&cluster, "postgres_xtask_old")
            .query_one("select count(*) from public.not_yours", &[])
            .unwrap()
            .get::<_, i64>(0),
        3
    );
}

#[test]
fn databases_under_the_beside_names_without_the_mark_are_refused_and_kept() {
    let (cluster, project) = migrated();
    planted(&cluster, "postgres_xtask_new", Some("test"), Some("my copy"));
    let restore = planted(&cluster, RESTORE, None, None);
    let out = xtask(&cluster, &project, &["seed", "--profile", "minimal", "--replace"]).ok();
    let why = "a database named postgres_xtask_new exists that this project did not make";
    assert!(out.stderr.contains(&format!("not built beside the database: {why}")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("no restore point kept: {why}")), "{}", out.stderr);
    xtask(&cluster, &project, &["db", "undo"]).fails("postgres has no restore point: there is nothing to undo");
    cluster.client().batch_execute("drop database postgres_xtask_new").unwrap();
    let out = xtask(&cluster, &project, &["seed", "--profile", "minimal", "--replace"]).ok();
    assert!(
        out.stderr.contains(
            "no restore point kept: a database named postgres_xtask_restore exists that this project did not make"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("then swapped in)"), "{}", out.stderr);
    assert_eq!(settled(&cluster), [RESTORE]);
    assert_eq!(oid_of(&cluster, RESTORE), Some(restore));
}

/// Two seeds of one database at once: the second used to take the first one's build for a
/// killed run's, end its sessions and drop it (and, a moment later, could have had its own
/// half-made build swapped in by the first). Now it waits for the first to finish.
#[test]
fn a_second_seed_waits_for_the_first_instead_of_ending_its_build() {
    let (cluster, project) = migrated();
    let args = [&["seed"][..], &ARGS[..], &["--replace"]].concat();
    let first = xtask(&cluster, &project, &args).spawn();
    let building = "select count(*) from pg_stat_activity where datname = 'postgres_xtask_new'";
    let started = std::time::Instant::now();
    while cluster.client().query_one(building, &[]).unwrap().get::<_, i64>(0) == 0 {
        assert!(started.elapsed().as_secs() < 120, "the first seed never built beside the database");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = xtask(&cluster, &project, &args).run();
    let first = first.wait();
    assert_eq!(first.code, Some(0), "the first seed failed:\n{}", first.stderr);
    assert!(first.stderr.contains("then swapped in)"), "{}", first.stderr);
    assert_eq!(second.code, Some(0), "the second seed failed:\n{}", second.stderr);
    assert!(second.stderr.contains("then swapped in)"), "{}", second.stderr);
    // The second replaced the first's result, which became the restore point: the same rows.
    let seeded = cluster.checksum();
    xtask(&cluster, &project, &["db", "undo"]).ok();
    assert_eq!(cluster.checksum(), seeded);
    assert_eq!(settled(&cluster), [RESTORE]);
}

/// libpq's variables aimed at another server change nothing: the driver and the client
/// programs ignore them, so the build, the swap and the restore point stay on the
/// checked server.
#[test]
fn libpq_variables_aimed_elsewhere_move_neither_the_build_nor_the_maintenance_connection() {
    let (cluster, project) = migrated();
    let other = TestCluster::start();
    let other_before = other.checksum();
    let port = other.port().to_string();
    let out = xtask(&cluster, &project, &["seed", "--profile", "minimal", "--replace"])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", &port)
        .env("PGDATABASE", "postgres")
        .env("PGOPTIONS", "-c default_transaction_read_only=on")
        .env("PGSERVICE", "nowhere")
        .env("PGTARGETSESSIONATTRS", "read-only")
        .ok();
    assert!(out.stderr.contains("then swapped in)") && out.stderr.contains("as its restore point"), "{}", out.stderr);
    assert_eq!(settled(&cluster), [RESTORE]);
    assert_eq!(
        other.strings("select datname::text from pg_database where datname like '%xtask%'"),
        Vec::<String>::new()
    );
    assert_eq!(other.checksum(), other_before);
}

/// A shadow of a sync lives only inside the sync's transaction, so a committed schema
/// named `xtask_shadow_*` is never one the tool left: with a forged comment it was dropped,
/// and by `cascade` a view of the team's in `public`. Now nothing is dropped at the start
/// and the shadow takes a name not taken.
#[test]
fn a_forged_shadow_mark_does_not_get_a_schema_and_what_depends_on_it_dropped() {
    let s = crate::stage_sync_fixtures::setup();
    // On both ends (the synced schema must match); the rows on the target only.
    for cluster in [&s.source, &s.target] {
        cluster
            .client()
            .batch_execute(
                "create schema xtask_shadow_0; comment on schema xtask_shadow_0 is 'xtask-shadow';
                 create table xtask_shadow_0.kept (id int primary key);
                 create view public.kept_report as select count(*) as n from xtask_shadow_0.kept;",
            )
            .unwrap();
    }
    s.target.client().batch_execute("insert into xtask_shadow_0.kept values (1), (2)").unwrap();
    s.sync(&[]).ok();
    assert_eq!(s.target.strings("select n::text from public.kept_report"), ["2"]);
}

//! Tests for `cargo xtask stage-sync --from-dump`: a production dump as the source, restored
//! into a throwaway cluster that is gone afterwards.

use std::path::{Path, PathBuf};

use crate::{
    harness::bins,
    stage_sync_fixtures::{KEY, Setup, setup},
};

/// `pg_dump -Fc` of the source, into the project.
fn dump(s: &Setup) -> PathBuf {
    let file = s.project.root.join("production.dump");
    let out = std::process::Command::new(bins().dir.join("pg_dump"))
        .arg(format!("--dbname={}", s.source.url()))
        .args(["-Fc", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    file
}

fn from_dump<'a>(s: &'a Setup, file: &Path) -> crate::harness::Run<'a> {
    s.project
        .xtask(&["stage-sync", "--from-dump", file.to_str().unwrap(), "--to", "test", "--yes"])
        .env("DATABASE_URL", &s.target.url())
        .env("STAGE_SYNC_KEY", KEY)
}

/// The throwaway folder a run named in its status line.
fn cluster_dir(stderr: &str) -> PathBuf {
    let line = stderr.lines().find(|l| l.contains("into a throwaway cluster (")).expect(stderr);
    let inside = line.split_once("throwaway cluster (").unwrap().1;
    PathBuf::from(inside.split_once(", port").unwrap().0)
}

#[test]
fn a_dump_is_synced_like_production_and_its_cluster_removed() {
    let s = setup();
    // Something of another platform: a grant to a role the throwaway cluster doesn't have.
    s.source
        .client()
        .batch_execute(
            "create role legacy_reader; create schema reporting; grant usage on schema reporting to legacy_reader;",
        )
        .unwrap();
    let file = dump(&s);
    // The live source is not needed: a sync from the dump works with it gone.
    s.source.client().batch_execute("drop schema public cascade").unwrap();
    let out = from_dump(&s, &file).ok();
    s.assert_no_planted();
    let counts: (i64, i64) = {
        let r = s
            .target
            .client()
            .query_one(
                "select (select count(*) from public.daily_dentist_production), (select count(*) from public.users)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(counts, (500, 2));
    let dir = cluster_dir(&out.stderr);
    assert!(!dir.exists(), "the dump's cluster {} is still there", dir.display());
    assert!(
        out.stderr.contains("1 grant(s) or default privilege(s) naming roles this machine does not have")
            && out.stderr.contains("role \"legacy_reader\" does not exist"),
        "{}",
        out.stderr
    );
    let logged: String =
        s.target.client().query_one("select source_environment from app_meta.sync_log", &[]).unwrap().get(0);
    assert_eq!(logged, "production");
    // Same key, same pseudonyms: the dump gives what production gives.
    let users = "select string_agg(email || name, ',' order by id) from public.users";
    let from_the_dump: String = s.target.client().query_one(users, &[]).unwrap().get(0);
    assert!(from_the_dump.contains("@example.com"), "{from_the_dump}");
    // The rules can be started from the dump as well.
    let rules = s.project.root.join("env/stage-sync.toml");
    std::fs::remove_file(&rules).unwrap();
    s.project.xtask(&["stage-sync", "--from-dump", file.to_str().unwrap(), "init-rules"]).ok();
    let text = std::fs::read_to_string(&rules).unwrap();
    assert!(text.contains("[tables.\"public.users\".columns]") && text.contains("email = \"email\""), "{text}");
}

#[test]
fn bad_dumps_are_refused_and_nothing_is_left() {
    let s = setup();
    let before = s.target.checksum();
    from_dump(&s, Path::new("/nonexistent/production.dump")).fails("cannot read the dump /nonexistent/production.dump");
    let text = s.project.root.join("plain.sql");
    std::fs::write(&text, "create table x ();\n").unwrap();
    let out = from_dump(&s, &text).fails(&format!("{} is not a pg_dump custom-format archive", text.display()));
    assert!(out.stderr.contains("hint: make one with `pg_dump -Fc`"), "{}", out.stderr);
    assert!(!out.stderr.contains("into a throwaway cluster"), "a cluster was started for a text file");
    // A truncated archive: its data does not load, and nothing is synced.
    let whole = std::fs::read(dump(&s)).unwrap();
    let cut = s.project.root.join("cut.dump");
    std::fs::write(&cut, &whole[..whole.len() * 2 / 3]).unwrap();
    from_dump(&s, &cut).fails(&format!(
        "cannot read {} as a pg_dump custom-format archive (could not read from input file: end of file)",
        cut.display()
    ));
    from_dump(&s, &dump(&s)).env("STAGE_SYNC_KEY", "").fails("STAGE_SYNC_KEY is not set");
    // A dump of another environment's database (here the test target itself): refused, and
    // the hint speaks of the dump, not of a URL the command never used.
    let other = s.project.root.join("test.dump");
    let out = std::process::Command::new(bins().dir.join("pg_dump"))
        .arg(format!("--dbname={}", s.target.url()))
        .args(["-Fc", "-f"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = from_dump(&s, &other).fails("the source database is stamped test, not production");
    assert!(
        out.stderr.contains(&format!("hint: the dump {} was taken from the test database", other.display())),
        "{}",
        out.stderr
    );
    s.project
        .xtask(&["stage-sync", "--from-dump", "x.dump", "--from", "staging", "--to", "test"])
        .run()
        .code
        .filter(|c| *c == 2)
        .expect("--from and --from-dump together are a usage error");
    assert_eq!(s.target.checksum(), before);
}

#[test]
fn a_killed_sync_from_a_dump_leaves_nothing_behind() {
    let s = setup();
    let file = dump(&s);
    let before = s.target.checksum_of("public");
    let running = from_dump(&s, &file).spawn();
    let process_dir = std::env::temp_dir().join("xtask-throwaway").join(running.id().to_string());
    // Wait for the dump's cluster to run, then kill the command.
    let started = std::time::Instant::now();
    let postmaster = loop {
        let found = std::fs::read_dir(&process_dir).into_iter().flatten().flatten().find_map(|entry| {
            let pid_file = entry.path().join("data/postmaster.pid");
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = std::fs::read_to_string(pid_file).ok()?.lines().next()?.trim().parse::<u32>().ok()?;
            name.starts_with("cluster").then_some(pid)
        });
        if let Some(pid) = found {
            break pid;
        }
        assert!(started.elapsed().as_secs() < 60, "the dump's cluster never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    running.kill();
    let state = s.target.checksum_of("public");
    assert!(state == before, "the killed sync changed the target");
    // The next command that starts a throwaway removes what the killed one left.
    from_dump(&s, &file).ok();
    assert!(!process_dir.exists(), "{} is still there", process_dir.display());
    assert!(
        !Path::new("/proc").join(postmaster.to_string()).exists(),
        "the killed run's server {postmaster} still runs"
    );
}

#[test]
fn a_closed_stdout_ends_a_dry_run_quietly_and_still_removes_its_cluster() {
    let s = setup();
    let file = dump(&s);
    let out = s
        .project
        .xtask(&["stage-sync", "--from-dump", file.to_str().unwrap(), "--to", "test", "--dry-run"])
        .env("DATABASE_URL", &s.target.url())
        .env("STAGE_SYNC_KEY", KEY)
        .closed_stdout();
    assert_eq!(out.code, Some(0), "a closed pipe is not a failure:\n{out:#?}");
    assert!(!out.stderr.contains("error:"), "{}", out.stderr);
    // The plan is printed while the dump's cluster runs: ending there must still stop it.
    let dir = cluster_dir(&out.stderr);
    assert!(!dir.exists(), "the dump's cluster {} was left behind", dir.display());
}

/// Issue 20 item 3: a dump of a Supabase-shaped production holds what this machine cannot
/// restore as the (unprivileged) restorer: platform event triggers, an extension only a
/// superuser may create (`pg_stat_statements` in `extensions`, as Supabase declares it), a
/// view depending on it, grants to platform roles this machine lacks, publications for all
/// tables or for a schema (only a superuser may create them). Each kind is left
/// out with one warning and a count; every table of the app is restored with its rows.
#[test]
fn a_supabase_shaped_dump_restores_with_one_warning_per_kind_left_out() {
    let s = setup();
    s.source
        .client()
        .batch_execute(
            "create extension if not exists pg_stat_statements with schema extensions;
             create view extensions.slow_queries as select query from extensions.pg_stat_statements;
             create function extensions.pgrst_watch() returns event_trigger language plpgsql as $$ begin null; end $$;
             create event trigger pgrst_ddl_watch on ddl_command_end execute function extensions.pgrst_watch();
             create event trigger pgrst_drop_watch on sql_drop execute function extensions.pgrst_watch();
             create role platform_auditor_of_another_cloud;
             grant usage on schema extensions to platform_auditor_of_another_cloud;
             grant select on all tables in schema public to platform_auditor_of_another_cloud;
             create schema audit; create table audit.events (id int primary key);
             create publication audit_changes for tables in schema audit;
             create publication everything for all tables;",
        )
        .unwrap();
    let file = dump(&s);
    let out = s
        .project
        .xtask(&["stage-sync", "--from-dump", file.to_str().unwrap(), "--to", "test", "--yes"])
        .env("DATABASE_URL", &s.target.url())
        .env("STAGE_SYNC_KEY", KEY)
        .ok();
    let warnings: Vec<&str> = out.stderr.lines().filter(|l| l.contains("left out of")).collect();
    let kind = |text: &str| warnings.iter().filter(|w| w.contains(text)).count();
    assert_eq!(kind("2 event trigger(s)"), 1, "{}", out.stderr);
    assert_eq!(kind("extension(s)"), 1, "{}", out.stderr);
    assert_eq!(kind("naming roles this machine does not have"), 1, "{}", out.stderr);
    assert_eq!(kind("depending on what was left out"), 1, "{}", out.stderr);
    assert_eq!(kind("2 publication(s) for all tables or for a schema"), 1, "{}", out.stderr);
    assert!(warnings.iter().any(|w| w.contains("pg_stat_statements")), "{}", out.stderr);
    // Every table of the app arrived, with as many rows as the source has.
    let count = |c: &crate::harness::TestCluster| -> Vec<(String, i64)> {
        let tables = c.strings(
            "select format('%I.%I', schemaname, tablename) from pg_tables where schemaname = 'public' order by 1",
        );
        let mut client = c.client();
        tables
            .into_iter()
            .map(|t| {
                let n: i64 = client.query_one(&format!("select count(*) from {t}"), &[]).unwrap().get(0);
                (t, n)
            })
            .collect()
    };
    assert_eq!(count(&s.target), count(&s.source));
    s.assert_no_planted();
}

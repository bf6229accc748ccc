//! Tests for the `cargo xtask stage-sync` command.

use crate::{
    harness::TestCluster,
    stage_sync_fixtures::{AUTH_USERS_RULES, OTHER_KEY, PLANTED, setup},
    stage_sync_shapes::setup_shapes,
};

#[test]
fn copies_anonymized_consistent_and_verified() {
    let s = setup();
    let out = s.sync(&["--json"]).ok();
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(summary["verified"], true);
    assert_eq!(summary["total_rows"], 508, "{summary}");
    s.assert_no_planted();
    let mut target = s.target.client();
    // The same person's email is the same pseudonym in users and in providers.
    let joined: i64 = target
        .query_one("select count(*) from public.users u join public.providers p on p.email = u.email", &[])
        .unwrap()
        .get(0);
    assert_eq!(joined, 2);
    let counts: (i64, i64) = {
        let r = target.query_one("select (select count(*) from public.daily_dentist_production), (select count(*) from public.users where auth_id is null)", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(counts, (500, 2));
    // The target keeps its stamp and records the sync.
    let stamp: String = target.query_one("select environment from app_meta.environment_stamp", &[]).unwrap().get(0);
    assert_eq!(stamp, "test");
    let logged: (String, Option<String>) = {
        let r = target.query_one("select source_environment, source_project from app_meta.sync_log", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(logged, ("production".to_string(), Some("yovbdmjwrrgardkgrenc".to_string())));
}

#[test]
fn same_key_same_target_other_key_other_target() {
    let s = setup();
    s.sync(&[]).ok();
    let first = s.target.checksum_of("public");
    s.sync(&[]).ok();
    assert_eq!(s.target.checksum_of("public"), first, "two runs with one key differ");
    s.project.xtask(&["env"]).ok();
    std::fs::write(s.project.root.join("env/.env.production.local"), format!("STAGE_SYNC_KEY={OTHER_KEY}\n")).unwrap();
    s.sync(&[]).ok();
    assert_ne!(s.target.checksum_of("public"), first, "another key gave the same target");
}

#[test]
fn strict_rules_refuse_before_anything_is_written() {
    let s = setup();
    let before = s.target.checksum();
    let rules = s.project.root.join("env/stage-sync.toml");
    let text = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(&rules, text.replace("timezone = \"keep\"\n", "")).unwrap();
    s.sync(&[]).fails("1 column(s) have no rule in env/stage-sync.toml: public.clinics.timezone");
    std::fs::write(
        &rules,
        text.replace("email = \"email\"\nname = \"full_name\"", "email = \"keep\"\nname = \"full_name\""),
    )
    .unwrap();
    s.sync(&[]).fails("env/stage-sync.toml has 1 problem(s): public.users.email is kept, but its name looks personal");
    std::fs::write(&rules, &text).unwrap();
    std::fs::remove_file(s.project.root.join("env/.env.production.local")).unwrap();
    s.sync(&[]).fails("STAGE_SYNC_KEY is not set");
    assert_eq!(s.target.checksum(), before);
}

#[test]
fn refused_targets() {
    let s = setup();
    s.target.stamp("production");
    let before = s.target.checksum();
    s.sync(&[]).fails("the database at 127.0.0.1:");
    assert_eq!(s.target.checksum(), before);
    s.project
        .xtask(&["stage-sync", "--from", "staging", "--to", "production", "--yes"])
        .fails("Stage-sync target on production is refused");
    s.project
        .xtask(&["stage-sync", "--from", "production", "--to", "production", "--yes"])
        .fails("source and target are both production");
    // The target is the source under another name.
    s.target.stamp("test");
    s.project
        .xtask(&["stage-sync", "--from", "production", "--to", "test", "--yes"])
        .env("DATABASE_URL", &s.source.url().replace("127.0.0.1", "localhost"))
        .fails("the database at localhost:");
    let out = s.sync(&[]).run();
    assert_eq!(out.code, Some(0), "{out:#?}");
    // Without --yes and without a terminal to ask on, nothing is replaced.
    let before = s.target.checksum();
    let out = s
        .project
        .xtask(&["stage-sync", "--from", "production", "--to", "test"])
        .env("DATABASE_URL", &s.target.url())
        .fails("stage-sync replaces all data in test, and stdin is not a terminal");
    assert!(out.stderr.contains("hint: pass --yes to confirm"), "{}", out.stderr);
    assert_eq!(s.target.checksum(), before);
}

#[test]
fn dry_run_shows_the_plan_without_originals_or_writes() {
    let s = setup();
    let before = s.target.checksum();
    let out = s.sync(&["--dry-run"]).ok();
    assert!(out.stdout.contains("load order:") && out.stdout.contains("public.clinics"), "{}", out.stdout);
    assert!(out.stdout.contains("public.users.email (email):"), "{}", out.stdout);
    for planted in PLANTED {
        assert!(!out.stdout.contains(planted), "the dry run showed `{planted}`");
    }
    assert_eq!(s.target.checksum(), before);
}

#[test]
fn schema_drift_is_refused_or_migrated() {
    let s = setup();
    s.project.xtask(&["migrate", "down", "--env", "test"]).env("DATABASE_URL", &s.target.url()).ok();
    let out = s.sync(&[]).fails("the schemas of production and test differ (public): ");
    assert!(
        out.stderr.contains(&format!("{} is applied on production only", crate::helpers::latest_migration().1)),
        "{}",
        out.stderr
    );
    s.sync(&["--migrate-target"]).ok();
}

#[test]
fn equal_schemas_sync_without_a_ledger() {
    let s = setup();
    // A target whose schema was made by plain SQL, as another tool would: no ledger.
    let adopted = TestCluster::start();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    for file in files.iter().filter(|f| f.to_string_lossy().ends_with(".up.sql")) {
        adopted.client().batch_execute(&std::fs::read_to_string(file).unwrap()).unwrap();
    }
    s.project
        .xtask(&["stage-sync", "--from", "production", "--to", "test", "--yes"])
        .env("DATABASE_URL", &adopted.url())
        .ok();
    let users: i64 = adopted.client().query_one("select count(*) from public.users", &[]).unwrap().get(0);
    assert_eq!(users, 2);
}

#[test]
fn sigkill_during_the_load_leaves_the_target_as_it_was() {
    let s = setup_shapes();
    // The synced data: app_meta.sync_log gains a timestamped row per committed run.
    let before = s.target.checksum_of("public");
    let started = std::time::Instant::now();
    s.sync(&[]).ok();
    let full = started.elapsed().as_millis() as u64;
    let after = s.target.checksum_of("public");
    assert_ne!(before, after);
    // Kills spread over a whole run: before the load, during it, after the commit. Every
    // run copies the same data, so a complete run and an untouched target look the same;
    // anything else is a half-written target.
    crate::helpers::kill_suite(
        &format!("stage-sync ({full} ms a run)"),
        &crate::harness::random_delays(10, full / 4, full + full / 10),
        &after,
        || {
            s.target
                .client()
                .batch_execute("delete from public.audit_log where ctid in (select ctid from public.audit_log limit 1)")
                .unwrap();
            s.target.checksum_of("public")
        },
        || s.sync(&[]).spawn(),
        || s.target.checksum_of("public"),
    );
}

#[test]
fn auth_users_are_copied_masked_only_when_configured_and_sessions_never() {
    let s = setup();
    let rules = s.project.root.join("env/stage-sync.toml");
    let text = std::fs::read_to_string(&rules).unwrap().replace("auth_id = \"null\"", "auth_id = \"keep\"");
    std::fs::write(&rules, &text).unwrap();
    // Without auth.users in the rules, keeping the link would break the foreign key.
    let out = s.sync(&[]).fails("verification failed, nothing was changed: a key or index does not hold");
    assert!(out.stderr.contains("violates foreign key constraint \"users_auth_id_fkey\""), "{}", out.stderr);
    std::fs::write(&rules, format!("{text}\n{AUTH_USERS_RULES}")).unwrap();
    s.target
        .client()
        .batch_execute(
            "insert into auth.users (id, email) values ('f0000000-0000-4000-8000-000000000001', 'staging.tester@example.org');
             insert into auth.sessions (id, user_id) values ('f1000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000001');",
        )
        .unwrap();
    s.source.client().batch_execute("update auth.users set raw_user_meta_data = '{\"name\": \"Margaret Thistlewood\"}', encrypted_password = 'bcrypt-hash'").unwrap();
    s.sync(&[]).ok();
    let mut target = s.target.client();
    let row = target
        .query_one(
            "select (select count(*) from auth.users), (select count(*) from auth.sessions),
                    (select count(*) from public.users u join auth.users a on a.id = u.auth_id and a.email = u.email),
                    (select string_agg(coalesce(encrypted_password, '') || raw_user_meta_data::text, ',') from auth.users)",
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (2, 0, 2));
    let masked: String = row.get(3);
    assert!(!masked.contains("Thistlewood") && !masked.contains("bcrypt"), "{masked}");
    std::fs::write(&rules, format!("{text}\n{AUTH_USERS_RULES}\n[tables.\"auth.sessions\"]\nmode = \"copy\"\n"))
        .unwrap();
    s.sync(&[]).fails("env/stage-sync.toml is invalid: table auth.sessions is managed by Supabase and is never synced");
}

#[test]
fn a_subset_of_clinics_copies_what_they_reach() {
    let s = setup();
    s.source
        .client()
        .batch_execute(
            "insert into public.clinics (id, name) values ('c0000000-0000-4000-8000-000000000002', 'Other Clinic');
             insert into public.users (id, email, name) values ('b0000000-0000-4000-8000-000000000003', 'other@realclinic.com', 'Other Owner');
             insert into public.user_clinic_roles (user_id, clinic_id, role) values ('b0000000-0000-4000-8000-000000000003', 'c0000000-0000-4000-8000-000000000002', 'owner');",
        )
        .unwrap();
    s.sync(&["--clinics", "c0000000-0000-4000-8000-000000000002"]).ok();
    let row = s
        .target
        .client()
        .query_one(
            "select (select count(*) from public.clinics), (select count(*) from public.users), (select count(*) from public.user_clinic_roles),
                    (select count(*) from public.daily_dentist_production), (select count(*) from public.providers)",
            &[],
        )
        .unwrap();
    let counts: Vec<i64> = (0..5).map(|i| row.get(i)).collect();
    assert_eq!(counts, [1, 1, 1, 0, 0]);
    s.sync(&["--clinics", "1"]).ok();
    let row = s
        .target
        .client()
        .query_one("select (select count(*) from public.clinics), (select count(*) from public.daily_dentist_production), (select count(*) from public.users)", &[])
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (1, 500, 1));
    s.sync(&["--clinics", "c0000000-0000-4000-8000-00000000dead"])
        .fails("--clinics: no clinic c0000000-0000-4000-8000-00000000dead in the source");
}

#[test]
fn skip_empties_and_schema_only_keeps_the_targets_rows() {
    let s = setup_shapes();
    s.target.client().batch_execute("insert into public.audit_log values (now(), 'staging only')").unwrap();
    let rules = s.project.root.join("env/stage-sync.toml");
    let text = std::fs::read_to_string(&rules).unwrap();
    // A mode other than copy ignores the table's column rules.
    let modes = text
        .replace(
            "[tables.\"public.staff\".columns]",
            "[tables.\"public.staff\"]\nmode = \"skip\"\n\n[tables.\"public.staff\".columns]",
        )
        .replace(
            "[tables.\"public.audit_log\".columns]",
            "[tables.\"public.audit_log\"]\nmode = \"schema_only\"\n\n[tables.\"public.audit_log\".columns]",
        );
    std::fs::write(&rules, &modes).unwrap();
    s.sync(&[]).ok();
    let row = s
        .target
        .client()
        .query_one(
            "select (select count(*) from public.staff), (select count(*) from public.audit_log),
                    (select count(*) from public.audit_log where message = 'staging only'), (select count(*) from public.clinics)",
            &[],
        )
        .unwrap();
    let counts: Vec<i64> = (0..4).map(|i| row.get(i)).collect();
    assert_eq!(counts, [0, 1, 1, 1], "staff skipped, audit_log the target's own, clinics copied");
    // A table kept as the target has it cannot point at rows the copy replaces.
    let before = s.target.checksum_of("public");
    let broken = text.replace(
        "[tables.\"public.metric_definitions\".columns]",
        "[tables.\"public.metric_definitions\"]\nmode = \"schema_only\"\n\n[tables.\"public.metric_definitions\".columns]",
    );
    std::fs::write(&rules, broken).unwrap();
    s.sync(&[]).fails("cannot empty the target's tables");
    assert_eq!(s.target.checksum_of("public"), before);
}

#[test]
fn init_rules_writes_a_starting_file_and_keeps_an_existing_one() {
    let s = setup();
    let rules = s.project.root.join("env/stage-sync.toml");
    std::fs::remove_file(&rules).unwrap();
    s.project.xtask(&["stage-sync", "--from", "production", "init-rules"]).ok();
    let text = std::fs::read_to_string(&rules).unwrap();
    assert!(text.contains("[tables.\"public.providers\".columns]") && text.contains("email = \"email\""), "{text}");
    assert!(text.contains("access_token = \"null\""), "{text}");
    s.project.xtask(&["stage-sync", "--from", "production", "init-rules"]).fails("env/stage-sync.toml exists");
}

//! Tests for `cargo xtask migrate lint`: every rule fires on a fixture made for it, a clean
//! migration passes, acknowledgements silence exactly the rule they name, the repository's
//! migrations pass with their baseline, and `migrate up` on production refuses what lint
//! finds.

use crate::harness::{Project, TestCluster, migrated};

/// A clean table in `public`: row-level security and a policy in the same file.
const CLEAN: &str = "create table public.notes (\n  id uuid primary key default gen_random_uuid(),\n  body text not null\n);\nalter table public.notes enable row level security;\ncreate policy notes_read on public.notes for select to authenticated using (true);\n";

/// Lints `sql` as `9001_fixture.up.sql` (with a down file) and returns the rules reported.
fn rules_of(sql: &str) -> Vec<String> {
    let mut project = Project::new();
    project.migration("9001_fixture.up.sql", sql).migration("9001_fixture.down.sql", "select 1;\n");
    let out = project.xtask(&["migrate", "lint", "migrations/9001_fixture.up.sql"]).run();
    reported(&out.stdout, out.code)
}

fn reported(stdout: &str, code: Option<i32>) -> Vec<String> {
    let rules: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with("migrations/"))
        .map(|l| l.split(':').nth(2).unwrap_or_default().trim().to_string())
        .collect();
    assert_eq!(code, Some(if rules.is_empty() { 0 } else { 1 }), "exit code and findings disagree:\n{stdout}");
    rules
}

fn check(sql: &str, expected: &[&str]) {
    let mut rules = rules_of(sql);
    rules.sort();
    rules.dedup();
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(rules, expected, "for:\n{sql}");
}

#[test]
fn a_clean_migration_passes() {
    check(CLEAN, &[]);
}

#[test]
fn each_project_rule_fires_on_its_fixture() {
    check("create table public.notes (id uuid primary key, body text);\n", &["rls-required"]);
    check(
        "create table public.notes (id uuid primary key);\nalter table public.notes enable row level security;\n",
        &["rls-required"],
    );
    // Not in an API schema: no policy needed.
    check("create table app_private.cache (id uuid primary key);\n", &[]);
    check("begin;\nselect 1;\ncommit;\n", &["transaction-control"]);
    check("create index concurrently notes_body_idx on public.clinics (name);\n", &["concurrently-in-transaction"]);
    check("drop table public.goals;\n", &["destructive"]);
    check("alter table public.clinics drop column timezone;\n", &["destructive"]);
    // Narrowing needs an acknowledgement; Squawk adds its locking rule for any type change.
    check(
        "alter table public.clinics alter column name type varchar(20);\n",
        &["changing-column-type", "destructive", "prefer-text-field"],
    );
    check("alter table public.clinics alter column name type text;\n", &["changing-column-type"]);
}

#[test]
fn squawk_locking_rules_fire() {
    check("create index clinics_name_idx on public.clinics (name);\n", &["require-concurrent-index-creation"]);
    check("alter table public.clinics add column region text not null;\n", &["adding-required-field"]);
    check(
        "alter table public.locations add constraint locations_clinic_fkey foreign key (clinic_id) references public.clinics (id);\n",
        &["adding-foreign-key-constraint", "constraint-missing-not-valid"],
    );
    check("alter table public.clinics rename column name to title;\n", &["renaming-column"]);
}

#[test]
fn a_missing_down_file_and_a_syntax_error_are_findings() {
    let mut project = Project::new();
    project.migration("9001_fixture.up.sql", CLEAN);
    let out = project.xtask(&["migrate", "lint"]).fails("1 unacknowledged finding(s) in migrations");
    assert!(
        out.stdout.contains("migrations/9001_fixture.up.sql:1: missing-down: 9001_fixture.down.sql is missing"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("  hint: write the down migration"), "{}", out.stdout);
    assert_eq!(rules_of("create tabel x ();\n"), ["syntax"]);
}

#[test]
fn acknowledgements_silence_exactly_their_rule() {
    let narrowing = "alter table public.clinics alter column name type varchar(20);\n";
    check(
        &format!("-- migrate:ack destructive: names are at most 20 characters (checked by a query)\n{narrowing}"),
        &["changing-column-type", "prefer-text-field"],
    );
    check(
        &format!(
            "-- migrate:ack destructive: names are short\n-- migrate:ack changing-column-type: the table has 5 rows\n-- migrate:ack prefer-text-field: the API limits it\n{narrowing}"
        ),
        &[],
    );
    // Only the statement below the comment: the second drop still fires.
    check(
        "-- migrate:ack destructive: never read since 2024\nalter table public.clinics drop column timezone;\nalter table public.locations drop column phone;\n",
        &["destructive"],
    );
    // No reason: nothing is silenced, and the comment itself is a finding.
    check("-- migrate:ack destructive\ndrop table public.goals;\n", &["ack-needs-reason", "destructive"]);
    check("-- migrate:ack destructive: nothing to destroy\nselect 1;\n", &["unused-ack"]);
    check("-- migrate:ack no-such-rule: because\nselect 1;\n", &["unknown-ack"]);
    // Rehearsal thresholds are acknowledged in the same comments and are not lint's.
    check("-- migrate:ack table-rewrite: a small table\nselect 1;\n", &[]);
}

#[test]
fn the_repository_passes_with_its_baseline_and_an_edited_applied_file_does_not() {
    let mut project = Project::new();
    project.with_migrations();
    let out = project.xtask(&["migrate", "lint", "--all"]).ok();
    assert!(out.stderr.contains("acknowledged"), "{}", out.stderr);
    // By default only files the baseline does not hold are linted: none here.
    let out = project.xtask(&["migrate", "lint"]).ok();
    assert!(out.stderr.contains("linted 0 file(s)"), "{}", out.stderr);
    let path = project.root.join("migrations/0007_dashboard_query_indexes.up.sql");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n-- edited\n")).unwrap();
    let out = project.xtask(&["migrate", "lint"]).fails("4 unacknowledged finding(s)");
    assert!(
        out.stdout.contains("0007_dashboard_query_indexes.up.sql:3: require-concurrent-index-creation"),
        "{}",
        out.stdout
    );
}

#[test]
fn bad_arguments_are_one_error() {
    let project = Project::new();
    project.xtask(&["migrate", "lint", "migrations/nope.up.sql"]).fails("migrations/nope.up.sql: no such file");
    std::fs::write(project.root.join("notes.txt"), "x").unwrap();
    project.xtask(&["migrate", "lint", "notes.txt"]).fails("notes.txt is not an .sql file");
    std::fs::write(project.root.join("migrations/lint-baseline.toml"), "file = 3").unwrap();
    project.xtask(&["migrate", "lint", "--all"]).fails("migrations/lint-baseline.toml is invalid");
}

#[test]
fn production_refuses_pending_files_with_unacknowledged_findings() {
    let (cluster, mut project): (TestCluster, Project) = migrated();
    let production = cluster.production_url();
    cluster.stamp("production");
    project.env_file(".env.production", &format!("DATABASE_URL={production}\n"));
    project
        .migration("9001_notes.up.sql", "create table public.notes (id uuid primary key);\n")
        .migration("9001_notes.down.sql", "drop table public.notes;\n");
    let before = cluster.checksum();
    let out = project
        .xtask(&["migrate", "up", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"])
        .fails("1 unacknowledged lint finding(s) in the pending migrations, the first migrations/9001_notes.up.sql:1: rls-required");
    assert!(out.stderr.contains("hint: `cargo xtask migrate lint`"), "{}", out.stderr);
    assert_eq!(cluster.checksum(), before, "production was written");
    // Fixed, it applies.
    project.migration("9001_notes.up.sql", CLEAN);
    project.xtask(&["migrate", "up", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"]).ok();
}

#[test]
fn every_way_of_exposing_a_table_is_a_finding() {
    let rls = "alter table public.x enable row level security;\ncreate policy x_read on public.x for select to authenticated using (true);\n";
    // Squawk's own rule also fires on SET SCHEMA (which breaks its clients).
    for (create, also) in [
        ("create table public.x as select 1 as a;\n", None),
        ("select 1 as a into public.x;\n", None),
        ("create table app_private.x (a int);\nalter table app_private.x set schema public;\n", Some("ban-set-schema")),
        ("do $$\nbegin\n  create table public.x (a int);\nend $$;\n", None),
        (
            "create function app_private.f() returns void language plpgsql as $f$\nbegin\n  execute 'create table public.x (a int)';\nend $f$;\n",
            None,
        ),
    ] {
        let expected: Vec<&str> = ["rls-required"].into_iter().chain(also).collect();
        check(create, &expected);
        check(&format!("{create}{rls}"), &expected[1..]);
    }
    check("do $$ begin execute format('create table %I.x (a int)', 'public'); end $$;\n", &["unanalysable-ddl"]);
    check("create view public.v as select * from public.clinics;\n", &["view-bypasses-rls"]);
    check("create view public.v with (security_invoker = true) as select * from public.clinics;\n", &[]);
}

#[test]
fn one_ack_cannot_cover_two_statements_and_production_is_not_written() {
    let (cluster, mut project): (TestCluster, Project) = migrated();
    let production = cluster.production_url();
    cluster.stamp("production");
    project.env_file(".env.production", &format!("DATABASE_URL={production}\n"));
    let walkaround = "-- migrate:ack rls-required: a scratch table, dropped below\ncreate table public.a as select 1 as a; select 1 as b into public.b;\ndrop table public.a; -- migrate:ack destructive: scratch\n";
    project.migration("9001_walkaround.up.sql", walkaround).migration("9001_walkaround.down.sql", "select 1;\n");
    let out =
        project.xtask(&["migrate", "lint", "migrations/9001_walkaround.up.sql"]).fails("1 unacknowledged finding(s)");
    assert!(
        out.stdout.contains("9001_walkaround.up.sql:2: rls-required: table public.b (created by SELECT INTO)"),
        "{}",
        out.stdout
    );
    let before = cluster.checksum();
    project
        .xtask(&["migrate", "up", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"])
        .fails("1 unacknowledged lint finding(s) in the pending migrations, the first migrations/9001_walkaround.up.sql:2: rls-required");
    assert_eq!(cluster.checksum(), before, "production was written");
    let tables = cluster.strings(
        "select relname::text from pg_catalog.pg_class where relname in ('a', 'b') and relnamespace = 'public'::regnamespace",
    );
    assert!(tables.is_empty(), "tables created on production: {tables:?}");
}

#[test]
fn ways_around_rls_without_a_plain_new_table_are_refused_and_production_is_not_written() {
    let (cluster, mut project): (TestCluster, Project) = migrated();
    let production = cluster.production_url();
    cluster.stamp("production");
    project.env_file(".env.production", &format!("DATABASE_URL={production}\n"));
    let policy = "create policy x_read on public.x for select to authenticated using (true);\n";
    let attacks = [
        // FORCE applies RLS to the owner; it does not enable it.
        (format!("create table public.x (a int);\nalter table public.x force row level security;\n{policy}"), "rls-required"),
        // `search_path` sends the unqualified ENABLE and policy to app_private.x.
        (
            "create table public.x (a int);\ncreate table app_private.x (a int);\nset local search_path = app_private;\nalter table x enable row level security;\ncreate policy x_read on x using (true);\n".to_string(),
            "rls-required",
        ),
        // `"$user"` comes first on the search path: `x` is postgres.x once that schema exists.
        (
            "create table public.x (a int);\ncreate schema postgres;\ncreate table postgres.x (a int);\nalter table x enable row level security;\ncreate policy x_read on x using (true);\n".to_string(),
            "rls-required",
        ),
        // ALTER TABLE sets a view's options too.
        (
            "create view public.x with (security_invoker = true) as select * from public.clinics;\nalter table public.x set (security_invoker = false);\n".to_string(),
            "view-bypasses-rls",
        ),
        // The owner reads without RLS.
        (
            format!("create table public.x (a int);\nalter table public.x enable row level security;\n{policy}alter table public.x owner to authenticated;\n"),
            "rls-bypass",
        ),
    ];
    let exposed = || {
        cluster.strings(
            "select format('%s %s %s', relname, relrowsecurity, pg_catalog.pg_get_userbyid(relowner)) from pg_catalog.pg_class where relname = 'x' or relowner = 'authenticated'::regrole",
        )
    };
    let (before, rows) = (exposed(), cluster.checksum());
    assert!(before.is_empty(), "{before:?}");
    for (sql, rule) in attacks {
        project.migration("9001_x.up.sql", &sql).migration("9001_x.down.sql", "select 1;\n");
        let out =
            project.xtask(&["migrate", "up", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"]).fails("");
        let refused = "unacknowledged lint finding(s) in the pending migrations, the first migrations/9001_x.up.sql:";
        assert!(out.stderr.contains(refused) && out.stderr.contains(&format!(": {rule}: ")), "{sql}\n{}", out.stderr);
        assert_eq!(exposed(), before, "production changed after:\n{sql}");
        assert_eq!(cluster.checksum(), rows, "production was written after:\n{sql}");
    }
}

//! Tests for `cargo xtask env`: selection, detection end to end, checks, masking.

use crate::harness::{Project, TestCluster, closed_port};

const PROD_POOLER: &str =
    "postgresql://postgres.yovbdmjwrrgardkgrenc:Prod-Secret-Pw-91@aws-0-us-east-2.pooler.supabase.com:5432/postgres";

#[test]
fn a_stray_exported_database_url_does_not_redirect_local() {
    let mut project = Project::new();
    project.secret("Prod-Secret-Pw-91");
    let out = project.xtask(&["env", "--env", "local"]).env("DATABASE_URL", PROD_POOLER).ok();
    assert!(out.stdout.contains("environment     local"), "{}", out.stdout);
    assert!(out.stdout.contains("address       localhost:54322"), "{}", out.stdout);
    assert!(
        out.stderr.contains("warning: DATABASE_URL exported in the shell differs from env/.env.local.example"),
        "{}",
        out.stderr
    );
}

#[test]
fn env_shows_the_stamp_and_server_of_a_reachable_database() {
    let cluster = TestCluster::start();
    let project = Project::new();
    let out = project.xtask(&["env", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    assert!(out.stdout.contains("stamp           test"), "{}", out.stdout);
    assert!(out.stdout.contains("server          PostgreSQL "), "{}", out.stdout);
    assert!(out.stdout.contains("password      ****"), "{}", out.stdout);
}

#[test]
fn a_production_url_in_the_staging_file_is_refused() {
    let mut project = Project::new();
    project.secret("Prod-Secret-Pw-91").env_file(".env.staging", &format!("DATABASE_URL=\"{PROD_POOLER}\"\n"));
    project
        .xtask(&["env", "--env", "staging"])
        .fails("--env staging selects staging, but the URLs point at production");
}

#[test]
fn app_env_contradicting_the_flag_is_refused() {
    let project = Project::new();
    project
        .xtask(&["env", "--env", "local"])
        .env("APP_ENV", "production")
        .fails("--env local contradicts APP_ENV=production");
    project.xtask(&["env"]).env("APP_ENV", "prod").fails("APP_ENV is invalid: unknown environment `prod`");
}

#[test]
fn unknown_environments_are_usage_errors() {
    let project = Project::new();
    let out = project.xtask(&["env", "--env", "prod"]).run();
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(out.stderr.contains("unknown environment `prod`"), "{}", out.stderr);
}

#[test]
fn malformed_files_give_one_line_without_their_content() {
    let mut project = Project::new();
    project.secret("Leaky-Secret-Value-42");
    project.env_file(
        ".env.local",
        "DATABASE_URL=postgresql://postgres:postgres@localhost:54322/postgres\nnot a pair Leaky-Secret-Value-42\n",
    );
    project.xtask(&["env", "--env", "local"]).fails("env/.env.local: line 2 is malformed");
    project.env_file(".env.local", "DATABASE_URL=postgresql://u:Leaky-Secret-Value-42@host:notaport/db\n");
    project.xtask(&["env", "--env", "local"]).fails("DATABASE_URL does not parse");
    project.edit_settings("port = 54322", "port = \"many\"");
    project.xtask(&["env"]).fails("env/environments.toml is invalid: line ");
}

#[test]
fn disagreeing_urls_are_refused() {
    let mut project = Project::new();
    project.env_file(".env.local", "DATABASE_URL=postgresql://postgres:postgres@localhost:54322/postgres\nNEXT_PUBLIC_SUPABASE_URL=https://yovbdmjwrrgardkgrenc.supabase.co\n");
    project.xtask(&["env", "--env", "local"]).fails("DATABASE_URL and NEXT_PUBLIC_SUPABASE_URL disagree");
}

#[test]
fn check_passes_on_a_good_test_configuration_and_masks_secrets() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project
        .secret("Service-Role-Key-Abc-123")
        .env_file(".env.test.local", "SUPABASE_SERVICE_ROLE_KEY=Service-Role-Key-Abc-123\n");
    let out = project.xtask(&["env", "check", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    assert!(out.stdout.contains("ok    stamp is test"), "{}", out.stdout);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
}

#[test]
fn check_reports_each_problem_and_fails() {
    let cluster = TestCluster::start();
    cluster.stamp("staging");
    let project = Project::new();
    let out = project
        .xtask(&["env", "check", "--env", "test"])
        .env("DATABASE_URL", &cluster.url())
        .fails("1 problem in the configuration");
    assert!(out.stdout.contains("FAIL  the database is stamped staging, not test"), "{}", out.stdout);

    let unreachable = format!("postgresql://postgres:Unreach-Pw-55@127.0.0.1:{}/postgres", closed_port());
    let mut project = Project::new();
    project.secret("Unreach-Pw-55");
    let out = project
        .xtask(&["env", "check", "--env", "test", "--timeout", "2"])
        .env("DATABASE_URL", &unreachable)
        .fails("1 problem in the configuration");
    assert!(out.stdout.contains("FAIL  cannot connect to 127.0.0.1:"), "{}", out.stdout);
}

#[test]
fn matrix_never_allows_development_writes_on_production() {
    let project = Project::new();
    let out = project.xtask(&["env", "matrix"]).ok();
    let line =
        |op: &str| out.stdout.lines().find(|l| l.starts_with(op)).unwrap_or_else(|| panic!("no {op} row")).to_string();
    assert!(line("RLS testing").contains("NEVER"));
    assert!(line("Customer demos").split_whitespace().nth(2) == Some("read-only"), "{}", line("Customer demos"));
    assert!(line("Stage-sync target").contains("NEVER"));
    assert!(line("Adopt (baseline)").split_whitespace().nth(2) == Some("confirm"), "{}", line("Adopt (baseline)"));
    // A header, then one row per operation.
    assert_eq!(out.stdout.lines().count(), 1 + app::matrix::Operation::ALL.len(), "{}", out.stdout);
}

#[test]
fn a_wrong_password_is_one_line_without_the_password() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project.secret("Wrong-Password-Guess-77");
    let url = cluster.url().replacen(crate::harness::test_password(), "Wrong-Password-Guess-77", 1);
    let out = project
        .xtask(&["migrate", "status", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails("cannot connect to 127.0.0.1:");
    assert!(out.stderr.contains("password authentication failed"), "{}", out.stderr);
    assert!(out.stderr.contains("hint: check the password"), "{}", out.stderr);
}

#[test]
fn an_unreachable_host_is_one_line_with_a_hint() {
    let mut project = Project::new();
    project.secret("Unreach-Pw-66");
    let url = format!("postgresql://postgres:Unreach-Pw-66@127.0.0.1:{}/postgres", closed_port());
    let out = project
        .xtask(&["migrate", "up", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails("cannot connect to 127.0.0.1:");
    assert!(out.stderr.contains("hint: is the server running?"), "{}", out.stderr);
}

/// A production on plain PostgreSQL (a remote host, no Supabase ref, no API URL) needs no
/// Supabase keys; a Supabase one does (issue 20, failure 7).
#[test]
fn check_asks_for_supabase_keys_only_for_a_supabase_project() {
    let mut project = Project::new();
    project.secret("Plain-Prod-Pw-31").env_file(
        ".env.production",
        "DATABASE_URL=postgresql://app:Plain-Prod-Pw-31@db.clinic-hosting.example:5432/app\n",
    );
    let out = project
        .xtask(&["env", "check", "--env", "production", "--timeout", "1"])
        .env("XTASK_RESOLVE", "db.clinic-hosting.example=192.0.2.1")
        .run();
    assert!(out.stdout.contains("ok    required keys present (not a Supabase project"), "{}", out.stdout);
    assert!(!out.stdout.contains("missing keys"), "{}", out.stdout);

    let mut project = Project::new();
    project.secret("Prod-Secret-Pw-91").env_file(".env.production", &format!("DATABASE_URL=\"{PROD_POOLER}\"\n"));
    let out = project
        .xtask(&["env", "check", "--env", "production", "--timeout", "1"])
        .env("XTASK_RESOLVE", "aws-0-us-east-2.pooler.supabase.com=192.0.2.1")
        .run();
    assert!(
        out.stdout.contains(
            "FAIL  missing keys: NEXT_PUBLIC_SUPABASE_URL, NEXT_PUBLIC_SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY (a Supabase project"
        ),
        "{}",
        out.stdout
    );
}

/// An unstamped production is adopted with `migrate baseline`; the check never tells anyone
/// to stamp it with `migrate up` (the README forbids it).
#[test]
fn check_on_an_unstamped_production_points_at_baseline() {
    let cluster = TestCluster::start();
    cluster.unstamp();
    let mut project = Project::new();
    project.env_file(".env.production", &format!("DATABASE_URL={}\n", cluster.production_url()));
    let out = project.xtask(&["env", "check", "--env", "production"]).fails("2 problems in the configuration");
    assert!(
        out.stdout.contains("FAIL  the database has no environment stamp: production is stamped only by adopting it: `cargo xtask migrate baseline --env production`"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("migrate up"), "{}", out.stdout);
}

/// `--env` means the environment a command acts on, or is a usage error (issue 21, class 8):
/// `stage-sync --env local --yes` once replaced staging, its `--to` default; `ci --env
/// production` was accepted. The staging database is checked before and after.
#[test]
fn env_where_it_selects_nothing_is_a_usage_error() {
    let staging = TestCluster::start_migrated();
    staging.stamp("staging");
    staging.client().batch_execute("insert into public.clinics (name) values ('Staging Clinic')").unwrap();
    let before = staging.checksum();
    let mut project = Project::new();
    project.with_migrations();
    let staging_url = staging.url().replacen("//postgres:", "//postgres.STAGING_REF:", 1);
    staging
        .client()
        .batch_execute(&format!(
            "create role \"postgres.STAGING_REF\" login superuser password '{}'",
            crate::harness::test_password()
        ))
        .unwrap();
    project.env_file(".env.staging", &format!("DATABASE_URL={staging_url}\n"));
    for (args, says) in [
        (&["stage-sync", "--env", "local", "--yes"][..], "stage-sync takes its target from --to only"),
        (&["stage-sync", "--env", "local", "--to", "staging", "--yes"], "stage-sync's target is --to staging"),
        (&["ci", "--env", "production"], "--env production means nothing here: `ci`"),
        (&["migrate", "diff", "--env", "test", "--from", "staging", "--to", "test"], "--env test means nothing here"),
        (&["env", "matrix", "--env", "production"], "--env production means nothing here"),
        (&["migrate", "rehearse", "--data", "minimal", "--env", "production"], "only --data copy reads an environment"),
    ] {
        let out = project.xtask(args).run();
        assert_eq!(out.code, Some(2), "`{}` is not a usage error:\n{out:#?}", args.join(" "));
        assert!(out.stderr.contains(says), "{}", out.stderr);
    }
    assert_eq!(staging.checksum(), before, "staging was changed");
    // Naming the target twice, the same way, is no misuse.
    let out = project.xtask(&["stage-sync", "--env", "test", "--to", "test", "--dry-run"]).run();
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(!out.stderr.contains("means nothing"), "{}", out.stderr);
}

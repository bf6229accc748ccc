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

//! Tests behind a real PgBouncer: read-only commands leave a shared server session exactly
//! as they found it; commands that need a session refuse a transaction pooler, found by how
//! it behaves (not by port 6543 or a URL parameter); session mode works as a direct server.

use crate::harness::{Pgbouncer, Project, TestCluster, migrated};

/// What another client of the pooler sees: the settings a read-only command could have
/// left behind (each as a fresh direct session has it), and whether it can write.
fn assert_clean_for_other_clients(bouncer: &Pgbouncer, after: &str) {
    let mut client = bouncer.client();
    let mut fresh = bouncer.backend.client();
    for setting in [
        "default_transaction_read_only",
        "transaction_read_only",
        "session_replication_role",
        "statement_timeout",
        "lock_timeout",
        "row_security",
        "search_path",
    ] {
        let show = format!("show {setting}");
        let expected: String = fresh.query_one(&show, &[]).unwrap().get(0);
        let value: String = client.query_one(&show, &[]).unwrap().get(0);
        assert_eq!(value, expected, "after {after}, the pooler's server session has {setting} = {value}");
    }
    let read_only: String = client.query_one("show default_transaction_read_only", &[]).unwrap().get(0);
    assert_eq!(read_only, "off", "after {after}");
    let role: String = client.query_one("select current_user::text", &[]).unwrap().get(0);
    assert_eq!(role, "postgres", "after {after}");
    client.batch_execute("create table public.app_write_check (id int); drop table public.app_write_check;").unwrap();
}

#[test]
fn read_only_commands_through_a_transaction_pooler_leave_nothing_behind() {
    let (cluster, mut project) = migrated();
    let bouncer = Pgbouncer::start(&cluster, "transaction", 1);
    let url = bouncer.url("postgres");
    project.env_file(".env.test", &format!("DATABASE_URL={url}\n"));
    let before = cluster.checksum();
    let out = project.xtask(&["env", "--env", "test"]).ok();
    assert!(out.stdout.contains("shared between clients (a transaction pooler)"), "{}", out.stdout);
    assert_clean_for_other_clients(&bouncer, "env");
    let out = project.xtask(&["env", "check", "--env", "test"]).run();
    assert!(out.stdout.contains("shares server sessions between clients"), "{}", out.stdout);
    assert_clean_for_other_clients(&bouncer, "env check");
    let out = project.xtask(&["migrate", "status", "--env", "test"]).ok();
    assert!(out.stdout.contains("applied"), "{}", out.stdout);
    assert_clean_for_other_clients(&bouncer, "migrate status");
    // Comparing schemas runs pg_dump, which sets session state: refused, not run.
    project
        .xtask(&["migrate", "diff", "--from", "test", "--to", "test"])
        .fails("127.0.0.1:")
        .stderr
        .contains("transaction pooler")
        .then_some(())
        .expect("diff names the pooler");
    assert_clean_for_other_clients(&bouncer, "migrate diff");
    project.xtask(&["migrate", "up", "--dry-run", "--env", "test"]).ok();
    assert_clean_for_other_clients(&bouncer, "migrate up --dry-run");

    // A stage-sync dry run with the pooler as the source.
    let target = TestCluster::start();
    let prod_url = bouncer.url("postgres.yovbdmjwrrgardkgrenc");
    cluster.production_url();
    project
        .env_file(".env.production", &format!("DATABASE_URL={prod_url}\nSTAGE_SYNC_KEY=Pooler-Test-Key-0123456789\n"));
    project.secret("Pooler-Test-Key-0123456789");
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/stage-sync.toml");
    std::fs::copy(rules, project.root.join("env/stage-sync.toml")).unwrap();
    let out = project
        .xtask(&["stage-sync", "--from", "production", "--to", "test", "--dry-run"])
        .env("DATABASE_URL", &target.url())
        .run()
        .failed_with("127.0.0.1:");
    assert!(out.stderr.contains("Stage-sync source is refused"), "{}", out.stderr);
    assert_clean_for_other_clients(&bouncer, "stage-sync --dry-run");
    assert_eq!(cluster.checksum(), before);
}

#[test]
fn session_bound_commands_refuse_a_transaction_pooler_found_by_behaviour() {
    let (cluster, mut project) = migrated();
    let bouncer = Pgbouncer::start(&cluster, "transaction", 1);
    let url = bouncer.url("postgres");
    assert!(!url.contains(":6543") && !url.contains("pgbouncer"), "the URL must not hint at a pooler");
    let before = cluster.checksum();
    let source = TestCluster::start();
    project.env_file(
        ".env.production",
        &format!("DATABASE_URL={}\nSTAGE_SYNC_KEY=Pooler-Test-Key-0123456789\n", source.production_url()),
    );
    project.secret("Pooler-Test-Key-0123456789");
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/stage-sync.toml");
    std::fs::copy(rules, project.root.join("env/stage-sync.toml")).unwrap();
    let commands: &[&[&str]] = &[
        &["db", "reset", "--env", "test"],
        &["migrate", "up", "--env", "test"],
        &["migrate", "down", "--env", "test"],
        &["migrate", "resolve", "1", "--applied", "--env", "test"],
        &["rls", "--env", "test"],
        &["seed", "--profile", "minimal", "--env", "test", "--replace"],
        &["backup", "--env", "test"],
        &["stage-sync", "--from", "production", "--to", "test", "--yes"],
    ];
    for command in commands {
        let out = project.xtask(command).env("DATABASE_URL", &url).run().failed_with("127.0.0.1:");
        let error = out.stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
        assert!(
            error.contains("hands one server session to several clients (a transaction pooler)"),
            "{command:?}: {error}"
        );
        assert!(out.stderr.contains("hint: use the direct host"), "{command:?}: {}", out.stderr);
        assert_clean_for_other_clients(&bouncer, &command.join(" "));
    }
    assert_eq!(cluster.checksum(), before, "the database behind the pooler changed");
}

#[test]
fn session_mode_works_as_a_direct_connection() {
    let cluster = TestCluster::start();
    let bouncer = Pgbouncer::start(&cluster, "session", 4);
    let mut project = Project::new();
    project.with_migrations();
    project.env_file(".env.test", &format!("DATABASE_URL={}\n", bouncer.url("postgres")));
    let out = project.xtask(&["env", "--env", "test"]).ok();
    assert!(!out.stdout.contains("shared between clients"), "{}", out.stdout);
    project.xtask(&["migrate", "up", "--env", "test"]).ok();
    project.xtask(&["seed", "--profile", "minimal", "--env", "test"]).ok();
    project.xtask(&["rls", "--env", "test"]).ok();
    project.xtask(&["backup", "--env", "test"]).ok();
    project.xtask(&["db", "reset", "--env", "test", "--no-seed"]).ok();
    let clinics: i64 = cluster.client().query_one("select count(*) from public.clinics", &[]).unwrap().get(0);
    assert_eq!(clinics, 0, "the reset emptied the seeded clinics");
}

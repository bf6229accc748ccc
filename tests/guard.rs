//! Tests for the guard: writes refused where the matrix or the stamp says no, with the
//! protected database unchanged.

use crate::harness::{Project, TestCluster, WRITING_COMMANDS};

#[test]
fn a_database_stamped_production_refuses_writes() {
    let cluster = TestCluster::start();
    cluster.client().batch_execute("create table public.patients (id int primary key, name text); insert into patients values (1, 'Real Person');").unwrap();
    cluster.stamp("production");
    let before = cluster.checksum();
    let project = Project::new();
    project
        .xtask(&["db", "reset", "--env", "test"])
        .env("DATABASE_URL", &cluster.url())
        .fails("the database at 127.0.0.1:");
    assert_eq!(cluster.checksum(), before);
}

#[test]
fn a_database_stamped_for_another_environment_is_not_reset() {
    let cluster = TestCluster::start();
    cluster.stamp("local");
    let before = cluster.checksum();
    let project = Project::new();
    let out = project
        .xtask(&["db", "reset", "--env", "test"])
        .env("DATABASE_URL", &cluster.url())
        .fails("the database at 127.0.0.1:");
    assert!(out.stderr.contains("is stamped local, not test"), "{}", out.stderr);
    assert_eq!(cluster.checksum(), before);
}

#[test]
fn reset_is_refused_on_staging_and_production_by_the_matrix() {
    let mut project = Project::new();
    project.remote("staging");
    project
        .xtask(&["db", "reset", "--env", "staging"])
        .fails("Create / reset database on staging is refused: the access matrix says NEVER");
    project.remote("production");
    project.xtask(&["db", "reset", "--env", "production"]).fails("Create / reset database on production is refused");
}

#[test]
fn reset_re_creates_a_test_database() {
    let cluster = TestCluster::start();
    cluster.client().batch_execute("create table public.scratch (id int)").unwrap();
    let project = Project::new();
    project.xtask(&["db", "reset", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    let mut client = cluster.client();
    let scratch: bool = client.query_one("select to_regclass('public.scratch') is not null", &[]).unwrap().get(0);
    assert!(!scratch, "the old table survived the reset");
    let stamp: String = client.query_one("select environment from app_meta.environment_stamp", &[]).unwrap().get(0);
    assert_eq!(stamp, "test");
}

/// The guard carries the settings' policy: where `allow_test_data = false`, every write
/// that plants test data (seed, the RLS suite, the access matrix's probe rows) is refused
/// by the guard, each with its own message, before any connection (the URL points at a
/// host that would not answer).
#[test]
fn test_data_is_refused_by_the_guard_where_the_settings_allow_none() {
    let mut project = Project::new();
    project.remote("staging");
    project.edit_settings(
        "[environments.staging]\nallow_test_data = true",
        "[environments.staging]\nallow_test_data = false",
    );
    for (args, says) in [
        (&["seed", "--env", "staging"][..], "seeding staging is refused: its settings do not allow test data"),
        (
            &["rls", "--env", "staging"],
            "the RLS suite plants test rows (rolled back), but staging has allow_test_data = false",
        ),
        (
            &["rls", "matrix", "--env", "staging"],
            "the access matrix plants probe rows (rolled back), but staging has allow_test_data = false",
        ),
    ] {
        let started = std::time::Instant::now();
        project.xtask(args).fails(says);
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "`{}` tried to connect", args.join(" "));
    }
}

/// `require_backup` is the migrate target's: with it set for test, `migrate up` takes a
/// verified backup before the first migration and records it in every ledger row; a run
/// with nothing to apply takes none.
#[test]
fn migrate_takes_the_backup_the_settings_require() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project.with_migrations();
    project.edit_settings(
        "[environments.test]\nallow_test_data = true\nrequire_backup = false",
        "[environments.test]\nallow_test_data = true\nrequire_backup = true",
    );
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    let rows = cluster
        .client()
        .query("select distinct backup_path from app_meta.schema_migrations where outcome = 'applied'", &[])
        .unwrap();
    assert_eq!(rows.len(), 1, "one backup for the whole run");
    let path: Option<String> = rows[0].get(0);
    let path = path.expect("the ledger names the backup");
    assert!(path.contains("/backups/test-") && std::fs::metadata(&path).unwrap().len() > 0, "{path}");
    let backups = || std::fs::read_dir(project.root.join("backups")).unwrap().count();
    let taken = backups();
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    assert_eq!(backups(), taken, "a run with nothing to apply took a backup");
}

/// A misconfiguration: how the scratch project is set up, and the refusal it must give.
struct Misconfig {
    name: &'static str,
    env: &'static str,
    files: Vec<(&'static str, String)>,
    vars: Vec<(&'static str, String)>,
    refusal: &'static str,
}

#[test]
fn guard_matrix_every_writing_command_against_every_misconfiguration() {
    // The protected database: production data, stamped production, reachable both as
    // production (its user names the production project) and under a plain local URL.
    let protected = TestCluster::start();
    let mut project = Project::new();
    project.with_migrations();
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/stage-sync.toml");
    std::fs::copy(rules, project.root.join("env/stage-sync.toml")).unwrap();
    let prod_url = protected.production_url();
    protected.stamp("production");
    project
        .env_file(".env.production", &format!("DATABASE_URL={prod_url}\nSTAGE_SYNC_KEY=Guard-Matrix-Key-0123456789\n"));
    project.xtask(&["migrate", "up", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"]).ok();
    protected.client().batch_execute("insert into public.clinics (name) values ('Real Clinic')").unwrap();
    let before = protected.checksum();

    let remote_prod =
        "postgresql://postgres.yovbdmjwrrgardkgrenc:Remote-Prod-Pw-1@aws-0-us-east-2.pooler.supabase.com:5432/postgres";
    let remote_staging =
        "postgresql://postgres.STAGING_REF:Remote-Stg-Pw-1@aws-0-us-east-2.pooler.supabase.com:5432/postgres";
    let unknown = "postgresql://postgres:Remote-Unknown-Pw-1@db.someoneelse.supabase.co:5432/postgres";
    project
        .secret("Remote-Prod-Pw-1")
        .secret("Remote-Stg-Pw-1")
        .secret("Remote-Unknown-Pw-1")
        .secret("Guard-Matrix-Key-0123456789");
    let misconfigs = [
        Misconfig {
            name: "a production URL in the staging file",
            env: "staging",
            files: vec![(".env.staging", format!("DATABASE_URL={remote_prod}\n"))],
            vars: vec![],
            refusal: "--env staging selects staging, but the URLs point at production",
        },
        Misconfig {
            name: "database and API URLs disagree",
            env: "staging",
            files: vec![(
                ".env.staging",
                format!(
                    "DATABASE_URL={remote_staging}\nNEXT_PUBLIC_SUPABASE_URL=https://yovbdmjwrrgardkgrenc.supabase.co\n"
                ),
            )],
            vars: vec![],
            refusal: "DATABASE_URL and NEXT_PUBLIC_SUPABASE_URL disagree",
        },
        Misconfig {
            name: "an unknown remote host named staging",
            env: "staging",
            files: vec![(".env.staging", format!("DATABASE_URL={unknown}\n"))],
            vars: vec![],
            refusal: "--env staging selects staging, but the URLs point at production",
        },
        Misconfig {
            name: "a database stamped production behind a test URL",
            env: "test",
            files: vec![],
            vars: vec![("DATABASE_URL", protected.url())],
            refusal: "the database at 127.0.0.1:",
        },
        Misconfig {
            name: "APP_ENV contradicting --env",
            env: "test",
            files: vec![],
            vars: vec![("APP_ENV", "production".to_string()), ("DATABASE_URL", protected.url())],
            refusal: "--env test contradicts APP_ENV=production",
        },
    ];
    let mut cases = 0;
    for misconfig in &misconfigs {
        for (name, _) in [(".env.staging", ()), (".env.test", ())] {
            let _ = std::fs::remove_file(project.root.join("env").join(name));
        }
        for (name, text) in &misconfig.files {
            project.env_file(name, text);
        }
        for command in WRITING_COMMANDS {
            let args: Vec<String> = command.iter().map(|a| a.replace("{env}", misconfig.env)).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut run = project.xtask(&args);
            for (key, value) in &misconfig.vars {
                run = run.env(key, value);
            }
            let out = run.run();
            let error = out.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_default();
            assert!(
                out.code == Some(1) && error.contains(misconfig.refusal),
                "{} / {args:?}: expected a refusal with `{}`:\n{out:#?}",
                misconfig.name,
                misconfig.refusal
            );
            assert_eq!(out.stderr.lines().filter(|l| l.starts_with("error: ")).count(), 1, "{out:#?}");
            cases += 1;
        }
    }
    // Production itself, configured right: the matrix refuses development work, and migrate
    // refuses without the typed confirmation.
    for command in WRITING_COMMANDS {
        let args: Vec<String> = command.iter().map(|a| a.replace("{env}", "production")).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = project.xtask(&args).run();
        let error = out.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_default().to_string();
        let refused = error.contains("on production is refused: the access matrix says NEVER")
            || error.contains("needs a typed confirmation")
            || error.contains("source and target are both production");
        assert!(out.code == Some(1) && refused, "production / {args:?}:\n{out:#?}");
        cases += 1;
    }
    assert_eq!(protected.checksum(), before, "the protected database changed");
    eprintln!("guard matrix: {cases} cases, all refused, the protected database unchanged");
    assert_eq!(cases, (misconfigs.len() + 1) * WRITING_COMMANDS.len());
}

//! Tests for the guard under attack: every writing command, aimed at a protected database
//! (stamped production; or unstamped but holding data) through every way an address can
//! lie: several hosts, a name with several addresses, loopback tunnels and sockets, odd URL
//! forms, libpq's variables. Each is refused with one error line, and a checksum of the
//! protected database is unchanged.

use crate::harness::{Project, TestCluster, WRITING_COMMANDS, test_password};

/// One way of aiming a command at the protected database.
struct Attack {
    name: String,
    url: String,
    vars: Vec<(&'static str, String)>,
    refusal: &'static str,
}

/// A protected database: data that must never change.
fn protected(stamp: Option<&str>) -> TestCluster {
    let cluster = TestCluster::start();
    match stamp {
        Some(env) => cluster.stamp(env),
        None => cluster.unstamp(),
    }
    cluster
        .client()
        .batch_execute(
            "create table public.patients (id int primary key, name text);
             insert into public.patients values (1, 'Real Person'), (2, 'Another Person');",
        )
        .unwrap();
    cluster
}

/// A project with the repository's migrations and rules, and a reachable production-like
/// source for stage-sync (its own cluster), so that every command gets as far as its target.
fn attacking_project(source: &TestCluster) -> Project {
    let mut project = Project::new();
    project.with_migrations();
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/stage-sync.toml");
    std::fs::copy(rules, project.root.join("env/stage-sync.toml")).unwrap();
    project.env_file(
        ".env.production",
        &format!("DATABASE_URL={}\nSTAGE_SYNC_KEY=Attack-Suite-Key-0123456789\n", source.production_url()),
    );
    project.secret("Attack-Suite-Key-0123456789");
    project
}

/// Runs every writing command under every attack; each must be refused with one error
/// line naming the reason. Returns the number of cases.
fn run_attacks(project: &Project, attacks: &[Attack]) -> usize {
    let mut cases = 0;
    for attack in attacks {
        for command in WRITING_COMMANDS {
            let args: Vec<String> = command.iter().map(|a| a.replace("{env}", "test")).collect();
            let command: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut run = project.xtask(&command).env("DATABASE_URL", &attack.url);
            for (key, value) in &attack.vars {
                run = run.env(key, value);
            }
            let out = run.run();
            let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
            assert!(
                out.code == Some(1) && errors.len() == 1 && errors[0].contains(attack.refusal),
                "{} / {command:?}: expected one refusal with `{}`:\n{out:#?}",
                attack.name,
                attack.refusal
            );
            cases += 1;
        }
    }
    cases
}

fn url_at(host: &str, port: u16, query: &str) -> String {
    format!("postgresql://postgres:{}@{host}:{port}/postgres{query}", test_password())
}

#[test]
fn attacks_through_lying_addresses_are_refused_and_change_nothing() {
    let source = TestCluster::start();
    let project = attacking_project(&source);
    // A legitimate test database, and two protected ones.
    let decoy = TestCluster::start();
    let production = protected(Some("production"));
    let foreign = protected(None);
    // The production-stamped twin: on ::1, on the decoy's port, so that one name can reach
    // either server.
    let mut twin = protected(Some("production"));
    twin.restart_on("::1", decoy.port());
    let before = [production.checksum(), foreign.checksum(), twin.checksum()];
    let decoy_before = decoy.checksum();

    let (d, p, f) = (decoy.port(), production.port(), foreign.port());
    let several_hosts = "DATABASE_URL names 2 hosts";
    let mut attacks = vec![
        Attack {
            name: "several hosts, decoy first".into(),
            url: url_at("127.0.0.1", d, "").replace(&format!(":{d}/"), &format!(":{d},127.0.0.1:{p}/")),
            vars: vec![],
            refusal: several_hosts,
        },
        Attack {
            name: "several hosts, protected first".into(),
            url: url_at("127.0.0.1", p, "").replace(&format!(":{p}/"), &format!(":{p},127.0.0.1:{d}/")),
            vars: vec![],
            refusal: several_hosts,
        },
        Attack {
            name: "load_balance_hosts".into(),
            url: url_at("127.0.0.1", d, "?load_balance_hosts=random"),
            vars: vec![],
            refusal: "DATABASE_URL sets load_balance_hosts",
        },
        Attack {
            name: "target_session_attrs".into(),
            url: url_at("127.0.0.1", d, "?target_session_attrs=read-write"),
            vars: vec![],
            refusal: "DATABASE_URL sets target_session_attrs",
        },
        Attack {
            name: "hostaddr that is not the host's".into(),
            url: url_at("decoy.test", p, "?hostaddr=127.0.0.1"),
            vars: vec![("XTASK_RESOLVE", "decoy.test=127.0.0.2".into())],
            refusal: "DATABASE_URL's hostaddr 127.0.0.1 is not an address of its host decoy.test",
        },
        Attack {
            name: "a loopback tunnel to a database this project does not own".into(),
            url: url_at("127.0.0.1", f, ""),
            vars: vec![],
            refusal: "has no environment stamp but holds tables",
        },
        Attack {
            name: "a spelled-out name for a foreign database on loopback".into(),
            url: url_at("localhost", f, ""),
            vars: vec![],
            refusal: "has no environment stamp but holds tables",
        },
        Attack {
            name: "a unix socket to a database this project does not own".into(),
            url: format!(
                "postgresql://postgres:{}@{}:{f}/postgres",
                test_password(),
                foreign.socket_dir().display().to_string().replace('/', "%2F")
            ),
            vars: vec![],
            refusal: "has no environment stamp but holds tables",
        },
        Attack {
            name: "a production-stamped database behind a test URL".into(),
            url: url_at("127.0.0.1", p, ""),
            vars: vec![],
            refusal: "is stamped production",
        },
    ];
    for order in ["::1,127.0.0.1", "127.0.0.1,::1"] {
        attacks.push(Attack {
            name: format!("a name resolving to {order}, two servers on one port"),
            url: url_at("twin.test", d, ""),
            vars: vec![("XTASK_RESOLVE", format!("twin.test={order}"))],
            refusal: "twin.test resolves to several addresses where different servers answer",
        });
    }
    // libpq's variables, all pointing at the production-stamped database, beside a URL that
    // does too: nothing may take them for a way around the stamp.
    attacks.push(Attack {
        name: "libpq variables beside a production URL".into(),
        url: url_at("127.0.0.1", p, ""),
        vars: vec![
            ("PGHOST", "127.0.0.1".into()),
            ("PGHOSTADDR", "127.0.0.1".into()),
            ("PGPORT", d.to_string()),
            ("PGOPTIONS", "-c default_transaction_read_only=off".into()),
            ("PGSERVICE", "decoy".into()),
        ],
        refusal: "is stamped production",
    });

    let cases = run_attacks(&project, &attacks);
    assert_eq!(cases, attacks.len() * WRITING_COMMANDS.len());
    assert_eq!([production.checksum(), foreign.checksum(), twin.checksum()], before, "a protected database changed");
    assert_eq!(decoy.checksum(), decoy_before, "a refused command wrote to the decoy");
    eprintln!(
        "attack suite: {cases} cases ({} attacks x {} writing commands), all refused, the protected databases unchanged",
        attacks.len(),
        WRITING_COMMANDS.len()
    );
}

#[test]
fn client_programs_ignore_libpq_variables_and_dump_the_checked_server() {
    // The production migrate takes a backup first: with every libpq variable pointing at
    // another server, the dump must still be of the server the guard checked.
    let elsewhere = protected(Some("test"));
    elsewhere.client().batch_execute("create table public.only_elsewhere (id int)").unwrap();
    let production = TestCluster::start();
    production.client().batch_execute("create table public.only_in_production (id int)").unwrap();
    production.stamp("production");
    let mut project = Project::new();
    project.env_file(".env.production", &format!("DATABASE_URL={}\n", production.production_url()));
    let before = elsewhere.checksum();
    let service_dir = project.root.join("pgservice");
    std::fs::create_dir_all(&service_dir).unwrap();
    std::fs::write(
        service_dir.join("pg_service.conf"),
        format!("[elsewhere]\nhost=127.0.0.1\nport={}\nuser=postgres\ndbname=postgres\n", elsewhere.port()),
    )
    .unwrap();
    let out = project
        .xtask(&["backup", "--env", "production"])
        .env("PGHOST", "127.0.0.1")
        .env("PGHOSTADDR", "127.0.0.1")
        .env("PGPORT", &elsewhere.port().to_string())
        .env("PGDATABASE", "postgres")
        .env("PGUSER", "postgres")
        .env("PGPASSWORD", test_password())
        .env("PGSERVICE", "elsewhere")
        .env("PGSYSCONFDIR", &service_dir.display().to_string())
        .env("PGOPTIONS", "-c search_path=nowhere")
        .ok();
    let path = std::path::PathBuf::from(out.stdout.trim());
    let listing = std::process::Command::new(crate::harness::bins().dir.join("pg_restore"))
        .arg("--list")
        .arg(&path)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("only_in_production"), "the dump is not of production:\n{listing}");
    assert!(!listing.contains("only_elsewhere"), "the dump is of the other server:\n{listing}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "backups are private");
    let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "the backups folder is private");
    assert_eq!(elsewhere.checksum(), before);
}

#[test]
fn a_listener_that_never_answers_ends_within_the_timeout() {
    // Accepts connections and never says a word, like a stuck tunnel.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let project = Project::new();
    let url = url_at("127.0.0.1", port, "");
    for command in [&["migrate", "status", "--env", "test"][..], &["db", "reset", "--env", "test"]] {
        let started = std::time::Instant::now();
        let out = project
            .xtask(command)
            .env("DATABASE_URL", &url)
            .env("XTASK_CONNECT_TIMEOUT", "2")
            .run()
            .failed_with(&format!("no answer from 127.0.0.1:{port} within 2 s"));
        assert!(out.stderr.contains("XTASK_CONNECT_TIMEOUT"), "the error names the setting:\n{}", out.stderr);
        // Not a speed check: a hang would never end; anything short of a minute is an end.
        assert!(started.elapsed().as_secs() < 60, "{command:?} hung");
    }
    let out = project.xtask(&["env", "--env", "test"]).env("DATABASE_URL", &url).ok();
    assert!(out.stdout.contains("unreachable: no answer from"), "{}", out.stdout);
}

#[test]
fn urls_with_ambiguous_passwords_are_refused_and_masked() {
    let mut project = Project::new();
    project.secret("p@ss-Word-77").secret("ss-Word-77").secret("Api-Pass-99");
    for url in [
        "postgresql://postgres:p@ss-Word-77@127.0.0.1:5999/postgres",
        "postgresql://postgres:pa/ss-Word-77@127.0.0.1:5999/postgres",
        "postgresql://postgres:pa:ss-Word-77@127.0.0.1:5999/postgres",
    ] {
        project
            .xtask(&["migrate", "status", "--env", "test"])
            .env("DATABASE_URL", url)
            .fails("DATABASE_URL's user or password holds an unencoded");
    }
    let out = project
        .xtask(&["env", "--env", "test"])
        .env("DATABASE_URL", &url_at("127.0.0.1", crate::harness::closed_port(), ""))
        .env("NEXT_PUBLIC_SUPABASE_URL", "http://admin:Api-Pass-99@localhost:54321")
        .ok();
    assert!(out.stdout.contains("supabase url    http://admin:****@localhost:54321/"), "{}", out.stdout);
}

#[test]
fn local_folders_are_deleted_only_when_marked_as_the_projects() {
    let mut project = Project::new();
    for (data_dir, refusal) in [
        (".", "[local] data_dir = \".\" in env/environments.toml is the project root or a folder above it"),
        ("..", "[local] data_dir = \"..\" in env/environments.toml is outside the project"),
        ("", "[local] data_dir = \"\" in env/environments.toml is empty"),
    ] {
        project.edit_settings("data_dir = \".local/db\"", &format!("data_dir = {data_dir:?}"));
        project.xtask(&["db", "destroy", "--yes"]).fails(refusal);
        project.edit_settings(&format!("data_dir = {data_dir:?}"), "data_dir = \".local/db\"");
    }
    // A folder with files in it that `db up` did not create.
    let precious = project.root.join(".local/db");
    std::fs::create_dir_all(precious.join("data")).unwrap();
    std::fs::write(precious.join("data/PG_VERSION"), "15\n").unwrap();
    std::fs::write(precious.join("notes.txt"), "keep me").unwrap();
    project.xtask(&["db", "destroy", "--yes"]).fails(".local/db has no xtask-local-cluster file");
    assert!(precious.join("notes.txt").is_file());
    assert!(project.root.join("env/environments.toml").is_file());
}

#[test]
fn the_smaller_ones() {
    // A malformed stamp table is an error, not a panic.
    let cluster = TestCluster::start();
    cluster.client().batch_execute("alter table app_meta.environment_stamp drop column environment cascade").unwrap();
    let mut project = Project::new();
    project
        .xtask(&["migrate", "status", "--env", "test"])
        .env("DATABASE_URL", &cluster.url())
        .fails("app_meta.environment_stamp is not the table this project writes");

    // Transaction control in a migration is refused before anything runs.
    let fresh = TestCluster::start();
    project
        .migration(
            "9001_sneaky.up.sql",
            "create table public.half (id int);\ncommit;\ncreate table public.other (id int);\n",
        )
        .migration("9001_sneaky.down.sql", "drop table public.half;\n");
    project
        .xtask(&["migrate", "up", "--env", "test"])
        .env("DATABASE_URL", &fresh.url())
        .fails("migrations/9001_sneaky.up.sql:2: COMMIT is transaction control");
    let half: bool = fresh.client().query_one("select to_regclass('public.half') is not null", &[]).unwrap().get(0);
    assert!(!half, "nothing of the file may run");
    for name in ["9001_sneaky.up.sql", "9001_sneaky.down.sql"] {
        std::fs::remove_file(project.root.join("migrations").join(name)).unwrap();
    }

    // `migrate new`: one line, and no wrapping at the top of the range.
    project.xtask(&["migrate", "new", "add\ndrop table clinics; --"]).fails("a migration name is one line");
    project.migration("99999999_last.up.sql", "select 1;\n").migration("99999999_last.down.sql", "select 1;\n");
    project.xtask(&["migrate", "new", "next"]).fails("no version number is left after 99999999");
}

#[test]
fn a_first_migration_that_fails_leaves_no_stamp() {
    let cluster = TestCluster::start();
    cluster.unstamp();
    let mut project = Project::new();
    project
        .migration("9001_broken.up.sql", "create table public.t (id int);\nselect no_such_function();\n")
        .migration("9001_broken.down.sql", "drop table public.t;\n");
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &cluster.url()).fails("migrations/");
    let stamped: Option<String> = cluster
        .client()
        .query_opt("select environment from app_meta.environment_stamp", &[])
        .ok()
        .flatten()
        .map(|r| r.get(0));
    assert_eq!(stamped, None, "a failed first migration left a stamp");
}

#[test]
fn an_unstamped_empty_database_is_stamped_by_its_first_migration_that_succeeds() {
    let cluster = TestCluster::start();
    cluster.unstamp();
    let mut project = Project::new();
    project.migration("9001_first.up.sql", "create table public.t (id int);\n");
    project.migration("9001_first.down.sql", "drop table public.t;\n");
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    let stamp: String =
        cluster.client().query_one("select environment from app_meta.environment_stamp", &[]).unwrap().get(0);
    assert_eq!(stamp, "test");
}

#[test]
fn a_reset_killed_at_any_moment_leaves_a_database_behind() {
    let cluster = TestCluster::start();
    let project = Project::new();
    for delay in crate::harness::random_delays(4, 5, 150) {
        cluster
            .client()
            .batch_execute("create table if not exists public.scratch (id int); insert into public.scratch values (1);")
            .unwrap();
        let running =
            project.xtask(&["db", "reset", "--env", "test", "--no-seed"]).env("DATABASE_URL", &cluster.url()).spawn();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        running.kill();
        // The database is there and usable: either as it was, or reset and stamped.
        let mut client = cluster.client();
        let scratch: bool = client.query_one("select to_regclass('public.scratch') is not null", &[]).unwrap().get(0);
        let stamp: Option<String> =
            client.query_opt("select environment from app_meta.environment_stamp", &[]).unwrap().map(|r| r.get(0));
        eprintln!("reset killed after {delay} ms: {}", if scratch { "as it was" } else { "reset" });
        assert_eq!(stamp.as_deref(), Some("test"), "killed after {delay} ms: the stamp is gone");
    }
}

#[test]
fn a_reset_blocked_by_another_session_gives_up_and_changes_nothing() {
    let cluster = TestCluster::start();
    cluster
        .client()
        .batch_execute("create table public.scratch (id int); insert into public.scratch values (1);")
        .unwrap();
    // An app's open transaction holding a lock on a table the reset must drop.
    let mut app = cluster.client();
    let mut holding = app.transaction().unwrap();
    holding.batch_execute("lock table public.scratch in access share mode").unwrap();
    let project = Project::new();
    let out = project
        .xtask(&["db", "reset", "--env", "test", "--no-seed"])
        .env("DATABASE_URL", &cluster.url())
        .run()
        .failed_with("cannot empty the database");
    assert!(out.stderr.contains("lock timeout"), "{}", out.stderr);
    holding.rollback().unwrap();
    let rows: i64 = cluster.client().query_one("select count(*) from public.scratch", &[]).unwrap().get(0);
    assert_eq!(rows, 1, "a failed reset changed the database");
}

/// A reset from a template needs a second connection, to another database of the same
/// server. A proxy that routes that database name to another server (here PgBouncer,
/// `template1` going elsewhere) is refused before anything is created, renamed or written,
/// on either server.
#[test]
fn a_maintenance_connection_that_reaches_another_server_is_refused() {
    let target = TestCluster::start();
    let other = TestCluster::start();
    let bouncer = crate::harness::Pgbouncer::start_routing(&target, Some(&other), "session", 4);
    let mut project = Project::new();
    project.with_migrations();
    let list = |cluster: &TestCluster| cluster.strings("select datname::text from pg_database order by 1");
    let (before, databases) = (target.checksum(), (list(&target), list(&other)));
    let out = project
        .xtask(&["db", "reset", "--env", "test", "--no-seed"])
        .env("DATABASE_URL", &bouncer.url("postgres"))
        .fails("the server at 127.0.0.1:");
    assert!(
        out.stderr.contains("answering for database template1 is not the one this command checked"),
        "{}",
        out.stderr
    );
    assert_eq!(target.checksum(), before, "the target is unchanged");
    assert_eq!((list(&target), list(&other)), databases, "no database was made on either server");
}

//! Attacks on the clusters and copies the tool makes of content from outside (issue 21,
//! classes 1 to 3): another OS user on this machine, a dump that runs code while it is
//! restored, a rehearsal pointed at a database it must not copy. Each checks the protected
//! state (rows of a production-stamped cluster, files) on its own before and after.

use std::{path::Path, process::Command};

use xtask::pg::is_root;

use crate::harness::{Project, TestCluster, bins, test_password};

/// `psql` run as the OS user `nobody`, with no password file and nothing from libpq's
/// environment: what any other local user can do.
fn psql_as_nobody(conninfo: &str, sql: &str) -> std::process::Output {
    let psql = bins().dir.join("psql");
    Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(psql)
        .args(["-w", "-X", "-A", "-t", "-d", conninfo, "-c", sql])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("PGPASSFILE", "/dev/null")
        .current_dir("/")
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A throwaway cluster (the harness's, as `--from-dump`, `migrate verify` and `rehearse`
/// start theirs: one `Throwaway` path) is private: its folder and socket are its own OS
/// user's, and neither its socket nor its TCP port lets another local user in. The
/// cluster is production-stamped and the attacker tries to delete its rows.
#[test]
fn another_os_user_cannot_reach_a_throwaway_cluster() {
    let victim = victim();
    let before = victim.checksum();
    let dir = victim.socket_dir().parent().unwrap().to_path_buf();
    assert_eq!(mode(&dir), 0o700, "the cluster folder {} is not private", dir.display());
    let socket = victim.socket_dir().join(format!(".s.PGSQL.{}", victim.port()));
    assert_eq!(mode(&socket) & 0o077, 0, "the socket {} is open to other users", socket.display());
    let attack = "delete from public.patients; delete from app_meta.environment_stamp";
    let mut answers = Vec::new();
    if is_root() {
        let listed = Command::new("runuser").args(["-u", "nobody", "--", "ls"]).arg(&dir).output().unwrap();
        assert!(
            !listed.status.success(),
            "nobody listed {}: {}",
            dir.display(),
            String::from_utf8_lossy(&listed.stdout)
        );
        let port = victim.port();
        let socket_dir = victim.socket_dir().display().to_string();
        for conninfo in [
            format!("host={socket_dir} port={port} user=postgres dbname=postgres"),
            format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
            format!("host=127.0.0.1 port={port} user=postgres dbname=postgres password=postgres"),
            format!("host=localhost port={port} user=nobody dbname=postgres"),
        ] {
            let out = psql_as_nobody(&conninfo, attack);
            answers.push(format!("{conninfo}: {}", String::from_utf8_lossy(&out.stderr).trim()));
            assert!(!out.status.success(), "nobody got in through {conninfo}");
        }
    }
    assert_eq!(victim.checksum(), before, "the victim's rows changed:\n{}", answers.join("\n"));
    assert_eq!(victim.strings("select environment from app_meta.environment_stamp"), ["production"]);
}

/// A program run as the server's OS user: it leaves a marker file and tries to empty the
/// victim's table through its unix socket, which a cluster open to its OS user allowed.
fn program(marker: &Path, victim: &TestCluster) -> String {
    let psql = bins().dir.join("psql");
    format!(
        "cat > /dev/null; touch {}; PGPASSWORD={} {} -X -h {} -p {} -U postgres -d postgres -c 'delete from public.patients'",
        marker.display(),
        test_password(),
        psql.display(),
        victim.socket_dir().display(),
        victim.port()
    )
}

/// A production-stamped victim with rows, on the same machine.
fn victim() -> TestCluster {
    let victim = TestCluster::start();
    victim.stamp("production");
    victim
        .client()
        .batch_execute("create table public.patients (id int primary key); insert into public.patients values (1), (2)")
        .unwrap();
    victim
}

/// `pg_dump -Fc` of `schemas` of a cluster.
fn dump_of(maker: &TestCluster, schemas: &[&str], name: &str) -> std::path::PathBuf {
    let file = std::env::temp_dir().join(format!("attack-restore-{name}-{}.dump", std::process::id()));
    let status = Command::new(bins().dir.join("pg_dump"))
        .arg(format!("--dbname=host=127.0.0.1 port={} user=postgres dbname=postgres", maker.port()))
        .arg("--format=custom")
        .args(schemas.iter().map(|s| format!("--schema={s}")))
        .arg(format!("--file={}", file.display()))
        .env("PGPASSWORD", test_password())
        .status()
        .unwrap();
    assert!(status.success());
    file
}

/// Class 1 of issue 21: a dump whose code runs during its restore and tries to run
/// programs as the server's OS user: through a table whose name holds " DEFAULT ACL "
/// (once picked by substring for the superuser's pass), and by moving the search path of
/// the database and of the restoring login in front of `pg_catalog`, where its own
/// `pg_backend_pid()` and friends wait for the tool's next (superuser) session.
#[test]
fn a_dump_runs_nothing_with_privileges_and_reaches_no_other_cluster() {
    let victim = victim();
    let before = victim.checksum();
    let maker = TestCluster::start();
    let (ran, hijacked) = (
        std::env::temp_dir().join(format!("attack-restore-ran-{}", std::process::id())),
        std::env::temp_dir().join(format!("attack-restore-hijacked-{}", std::process::id())),
    );
    let copy = |marker: &Path| format!("copy (select 1) to program {}", sql_literal(&program(marker, &victim)));
    let mut shadows = String::new();
    for (name, returns) in [("pg_backend_pid", "int"), ("current_database", "name"), ("version", "text")] {
        shadows.push_str(&format!(
            "create function evil.{name}() returns {returns} language plpgsql as $f$
               begin begin execute {}; exception when others then null; end; return null; end $f$;",
            sql_literal(&copy(&hijacked))
        ));
    }
    // The table and its row first, with a harmless check: the maker is a superuser.
    maker
        .client()
        .batch_execute(
            "create function public.f(i int) returns int language sql as 'select i';
             create table public.\"x DEFAULT ACL y\" (id int check (public.f(id) > 0));
             insert into public.\"x DEFAULT ACL y\" values (1);",
        )
        .unwrap();
    maker
        .client()
        .batch_execute(&format!(
            "create schema evil; {shadows}
             create or replace function public.f(i int) returns int language plpgsql as $f$
               begin
                 begin execute {run}; exception when others then null; end;
                 begin execute format('alter database %I set search_path = evil, pg_catalog', current_database());
                 exception when others then null; end;
                 begin execute format('alter role %I set search_path = evil, pg_catalog', current_user);
                 exception when others then null; end;
                 return i;
               end $f$;",
            run = sql_literal(&copy(&ran))
        ))
        .unwrap();
    let file = dump_of(&maker, &["public", "evil"], "privileges");

    let target = TestCluster::start();
    let mut project = Project::new();
    project.secret(KEY);
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/stage-sync.toml");
    std::fs::copy(rules, project.root.join("env/stage-sync.toml")).unwrap();
    for args in [vec!["--to", "test", "--dry-run"], vec!["init-rules"]] {
        let mut all = vec!["stage-sync", "--from-dump", file.to_str().unwrap()];
        all.extend(args);
        let out = project.xtask(&all).env("DATABASE_URL", &target.url()).env("STAGE_SYNC_KEY", KEY).run();
        assert!(out.stderr.contains("restoring"), "the dump was not restored:\n{out:#?}");
        assert!(!ran.exists(), "the dump ran a program while it was restored:\n{out:#?}");
        assert!(!hijacked.exists(), "a session of the tool ran the dump's functions:\n{out:#?}");
    }
    let _ = std::fs::remove_file(&file);
    assert_eq!(victim.checksum(), before, "the victim's rows changed");
    assert_eq!(victim.strings("select environment from app_meta.environment_stamp"), ["production"]);
}

const KEY: &str = "Attack-Restore-Key-0123456789abcdef";

fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Sequential scans of `public.patients` so far, once the server's statistics caught up:
/// a copy (`pg_dump`) of the table reads it whole.
fn scans(cluster: &TestCluster) -> i64 {
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut client = cluster.client();
    client
        .query_one(
            "select coalesce(sum(seq_scan), 0)::bigint from pg_stat_user_tables where relid = 'public.patients'::regclass",
            &[],
        )
        .unwrap()
        .get(0)
}

/// Class 3 of issue 21: `migrate rehearse --env test` through a URL that reaches a
/// production-stamped database (a tunnel, a typo), or a database this project never
/// stamped: neither is copied. Independently of the tool's output, the victim's table is
/// never read whole (its scan count) and its rows stay as they were.
#[test]
fn a_rehearsal_copies_only_its_own_environment() {
    let (victim, mut project) = crate::harness::migrated();
    victim
        .client()
        .batch_execute("create table public.patients (id int primary key); insert into public.patients values (1), (2)")
        .unwrap();
    victim.stamp("production");
    project
        .migration("9006_note.up.sql", "alter table public.clinics add column note text;\n")
        .migration("9006_note.down.sql", "alter table public.clinics drop column note;\n");
    let before = victim.checksum();
    for (stamped, refusal) in [(true, "is stamped production, not test"), (false, "has no environment stamp")] {
        if !stamped {
            victim.unstamp();
        }
        let scanned = scans(&victim);
        let out = project.xtask(&["migrate", "rehearse", "--env", "test"]).env("DATABASE_URL", &victim.url()).run();
        assert_eq!(scans(&victim), scanned, "the rehearsal read the victim's rows:\n{out:#?}");
        let out = out.failed_with("the database at");
        assert!(out.stderr.contains(refusal), "{out:#?}");
    }
    // Every table's rows (the stamp's table aside, which the test itself dropped).
    let rows = |sums: String| -> Vec<String> {
        sums.lines().filter(|l| l.contains('=') && !l.starts_with("app_meta.")).map(String::from).collect()
    };
    assert_eq!(rows(victim.checksum()), rows(before), "the victim's rows changed");
}

/// Class 1 through a rehearsal: the environment's own database (stamped test, so it is
/// copied) carries a trigger written by its owner. The copy's content must run with no
/// more rights than its author had: the rehearsal's migration fires the trigger, which
/// tries to run a program as the throwaway server's OS user against a production-stamped
/// cluster on the same machine.
#[test]
fn a_rehearsal_runs_the_copys_code_with_no_privileges() {
    let victim = victim();
    let before = victim.checksum();
    let (source, mut project) = crate::harness::migrated();
    let ran = std::env::temp_dir().join(format!("attack-rehearse-ran-{}", std::process::id()));
    let run = sql_literal(&format!("copy (select 1) to program {}", sql_literal(&program(&ran, &victim))));
    source
        .client()
        .batch_execute(&format!(
            "insert into public.clinics (name) values ('Springfield');
             create function public.audit() returns trigger language plpgsql as $f$
               begin begin execute {run}; exception when others then null; end; return new; end $f$;
             create trigger audit before update on public.clinics for each row execute function public.audit();"
        ))
        .unwrap();
    project
        .migration("9007_touch.up.sql", "update public.clinics set name = name;\n")
        .migration("9007_touch.down.sql", "select 1;\n");
    let out = project.xtask(&["migrate", "rehearse", "--env", "test"]).env("DATABASE_URL", &source.url()).run();
    assert!(out.stderr.contains("copied test"), "the copy was not made:\n{out:#?}");
    assert!(!ran.exists(), "the copy's trigger ran a program as the server's OS user:\n{out:#?}");
    assert_eq!(victim.checksum(), before, "the victim's rows changed");
}

/// Class 2 of issue 21: the shared temp folder's `xtask-throwaway` made beforehand by
/// another OS user (`nobody`), who could then rename the tool's folders inside it and swap
/// in their own, where a copy of the data would land. No throwaway is made there: the
/// folder stays as its owner left it, empty.
#[test]
fn a_throwaway_root_made_by_another_os_user_is_refused() {
    if !is_root() {
        return;
    }
    let tmp = std::env::temp_dir().join(format!("attack-root-{}", std::process::id()));
    let planted = tmp.join("xtask-throwaway");
    std::fs::create_dir_all(&planted).unwrap();
    let chmod =
        |mode: &str, path: &Path| assert!(Command::new("chmod").arg(mode).arg(path).status().unwrap().success());
    chmod("1777", &tmp);
    assert!(Command::new("chown").arg("nobody").arg(&planted).status().unwrap().success());
    chmod("0777", &planted);
    let mut project = Project::new();
    project.with_migrations();
    let out = project.xtask(&["migrate", "verify"]).env("TMPDIR", tmp.to_str().unwrap()).run();
    let left: Vec<_> = std::fs::read_dir(&planted).unwrap().flatten().map(|e| e.file_name()).collect();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(left.is_empty(), "the tool put {left:?} in a folder another OS user controls:\n{out:#?}");
    out.failed_with(&format!("{} is not a folder of this OS user", planted.display()));
}

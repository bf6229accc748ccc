//! Tests of the tool's boundaries, each a reproducible case against real throwaway
//! clusters: data only in Supabase's schemas is data; a dump cannot run programs; `db down`
//! and the throwaway clean-up leave clusters the project did not create alone; reads give
//! up on a held lock; a read-only login can inspect; a dry run names the refusal the real
//! run would give; a source stamped as another environment is refused.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use crate::harness::{Project, TestCluster, bins, test_password};

/// A database this project never stamped whose only data is in schemas Supabase manages
/// (`auth.users`, `storage`): a Supabase project before adoption, reached through a
/// loopback tunnel, looks like this. It holds data, so nothing may reset or stamp it.
#[test]
fn an_unstamped_database_with_only_auth_users_is_not_reset() {
    let foreign = TestCluster::start();
    foreign.unstamp();
    foreign
        .client()
        .batch_execute("insert into auth.users (id, email) values (gen_random_uuid(), 'real.patient@example.com');")
        .unwrap();
    let before = foreign.checksum_of("auth");
    let project = Project::new();
    let out = project.xtask(&["db", "reset", "--env", "test", "--no-seed"]).env("DATABASE_URL", &foreign.url()).run();
    let users: i64 = foreign.client().query_one("select count(*) from auth.users", &[]).unwrap().get(0);
    assert_eq!(users, 1, "the unstamped database's auth.users was wiped:\n{out:#?}");
    assert_eq!(foreign.checksum_of("auth"), before);
    out.failed_with("the database at");
}

/// `stage-sync --from-dump` restores the file as the throwaway cluster's superuser, so SQL
/// in the archive (a CHECK constraint calling a volatile function, fired by the data load)
/// runs `COPY ... TO PROGRAM` as the server's OS user, which reaches every other cluster on
/// this machine through its unix socket. A dump is data: it must not run programs. (The
/// program reads what COPY sends it: one that exits first breaks the pipe, a flaky set-up.)
#[test]
fn a_dump_cannot_run_programs() {
    let maker = TestCluster::start();
    let marker = std::env::temp_dir().join(format!("attack2-dump-ran-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    maker
        .client()
        .batch_execute(&format!(
            "create function public.f(i int) returns int language plpgsql as $$
               begin execute 'copy (select 1) to program ''cat > /dev/null; touch {}'''; return i; end $$;
             create table public.t (id int check (public.f(id) > 0));
             insert into public.t values (1);",
            marker.display()
        ))
        .unwrap();
    std::fs::remove_file(&marker).unwrap();
    let dump = std::env::temp_dir().join(format!("attack2-{}.dump", std::process::id()));
    let status = Command::new(bins().dir.join("pg_dump"))
        .arg(format!("--dbname=host=127.0.0.1 port={} user=postgres dbname=postgres", maker.port()))
        .args(["--format=custom", "--schema=public"])
        .arg(format!("--file={}", dump.display()))
        .env("PGPASSWORD", test_password())
        .status()
        .unwrap();
    assert!(status.success());

    let target = TestCluster::start();
    let mut project = Project::new();
    project.secret("Attack2-Key-0123456789abcdef");
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/stage-sync.toml");
    std::fs::copy(rules, project.root.join("env/stage-sync.toml")).unwrap();
    let out = project
        .xtask(&["stage-sync", "--from-dump", dump.to_str().unwrap(), "--to", "test", "--dry-run"])
        .env("DATABASE_URL", &target.url())
        .env("STAGE_SYNC_KEY", "Attack2-Key-0123456789abcdef")
        .run();
    let ran = marker.exists();
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_file(&dump);
    assert!(out.stderr.contains("restoring"), "the dump was not restored:\n{out:#?}");
    assert!(!ran, "the dump ran a program as the server's OS user:\n{out:#?}");
}

/// `[local] data_dir` naming the folder of a cluster `db up` did not create (no
/// `xtask-local-cluster` file): `db destroy` refuses it; `db down` must too, and not stop a
/// server that is not the local one (this one does not even listen on the local port).
#[test]
fn db_down_leaves_a_cluster_it_did_not_create_running() {
    let foreign = TestCluster::start();
    let dir = foreign.socket_dir().parent().unwrap().to_path_buf();
    let mut project = Project::new();
    project.edit_settings("data_dir = \".local/db\"", &format!("data_dir = {:?}", dir.display().to_string()));
    let out = project.xtask(&["db", "down"]).run();
    let running = postgres::Client::connect(&foreign.url(), postgres::NoTls).is_ok();
    assert!(running, "`db down` stopped a cluster it did not create:\n{out:#?}");
    out.failed_with("");
}

/// A read-only command whose first query waits on a lock (a migration running elsewhere, a
/// psql left in a transaction) must give up with one error line, not wait for ever.
#[test]
fn a_read_command_gives_up_on_a_held_lock() {
    let cluster = TestCluster::start();
    let mut holder = cluster.client();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("lock table app_meta.environment_stamp in access exclusive mode").unwrap();
    let project = Project::new();
    let running = project.xtask(&["migrate", "status"]).env("DATABASE_URL", &cluster.url()).spawn();
    let started = Instant::now();
    let finished = loop {
        if started.elapsed() > Duration::from_secs(40) {
            break false;
        }
        if std::fs::metadata(format!("/proc/{}/stat", running.id())).is_err() || exited(running.id()) {
            break true;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if !finished {
        running.kill();
        tx.rollback().unwrap();
        panic!("`migrate status` still waited on the lock after 40 s");
    }
    tx.rollback().unwrap();
    running.wait().failed_with("");
}

/// Whether a child process has exited (a zombie waiting to be reaped).
fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

/// A folder of a dead process under the shared throwaway root is cleaned up by the next
/// process that starts a throwaway cluster: it stops every `*/data` server in it. A
/// symlink planted there (the root is in `/tmp`, creatable by any user before the first
/// run) must not make it crash-stop a cluster that is not a throwaway of this project.
#[test]
fn stale_throwaway_cleanup_does_not_follow_symlinks() {
    let foreign = TestCluster::start();
    let cluster_dir = foreign.socket_dir().parent().unwrap().to_path_buf();
    // Not a throwaway any more: the marker is what proves one.
    std::fs::remove_file(cluster_dir.join("xtask-throwaway")).unwrap();
    // Above the kernel's largest pid, so no process can ever own it.
    let dead = std::env::temp_dir().join("xtask-throwaway").join("4194399");
    std::fs::create_dir_all(&dead).unwrap();
    std::os::unix::fs::symlink(&cluster_dir, dead.join("cluster0")).unwrap();
    let mut project = Project::new();
    project.with_migrations();
    let out = project.xtask(&["migrate", "verify"]).run();
    let _ = std::fs::remove_dir_all(&dead);
    let running = postgres::Client::connect(&foreign.url(), postgres::NoTls).is_ok();
    assert!(running, "a planted symlink made cleanup stop a foreign cluster:\n{out:#?}");
}

/// The README's production set-up is a read-only login. The stamp's schema is revoked from
/// public, so such a login cannot read the stamp and every read command fails.
#[test]
fn a_read_only_login_can_inspect() {
    let cluster = TestCluster::start();
    cluster
        .client()
        .batch_execute(&format!(
            "create role attack2_reader login password '{}'; grant select on all tables in schema public to attack2_reader;",
            test_password()
        ))
        .unwrap();
    let url = cluster.url().replacen("//postgres:", "//attack2_reader:", 1);
    let project = Project::new();
    project.xtask(&["migrate", "status"]).env("DATABASE_URL", &url).ok();
}

/// A dry run says what the real run would refuse, instead of listing what is pending.
#[test]
fn a_dry_run_names_the_refusal_the_real_run_would_give() {
    let production = TestCluster::start();
    production.stamp("production");
    let mut project = Project::new();
    project.with_migrations();
    project
        .xtask(&["migrate", "up", "--dry-run", "--env", "test"])
        .env("DATABASE_URL", &production.url())
        .fails("the database is stamped production, not test: `migrate up` would be refused");
    let foreign = TestCluster::start();
    foreign.unstamp();
    foreign.client().batch_execute("create table public.theirs (id int)").unwrap();
    project
        .xtask(&["migrate", "up", "--dry-run", "--env", "test"])
        .env("DATABASE_URL", &foreign.url())
        .fails("the database has no environment stamp but holds tables");
}

/// A stage-sync source whose URL reaches another environment's database (here `--from
/// staging` reaching a production-stamped one) is a misconfiguration: refused before a row
/// is read, the target unchanged.
#[test]
fn a_source_stamped_as_another_environment_is_refused() {
    let source = TestCluster::start();
    source.stamp("production");
    let target = TestCluster::start();
    let before = target.checksum();
    let mut project = Project::new();
    project.with_migrations();
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/stage-sync.toml");
    std::fs::copy(rules, project.root.join("env/stage-sync.toml")).unwrap();
    let staging_url = source.url().replacen("//postgres:", "//postgres.STAGING_REF:", 1);
    source
        .client()
        .batch_execute(&format!("create role \"postgres.STAGING_REF\" login superuser password '{}'", test_password()))
        .unwrap();
    project.env_file(
        ".env.staging",
        &format!("DATABASE_URL={staging_url}\nSTAGE_SYNC_KEY=Attack2-Key-0123456789abcdef\n"),
    );
    project.secret("Attack2-Key-0123456789abcdef");
    project
        .xtask(&["stage-sync", "--from", "staging", "--to", "test", "--yes"])
        .env("DATABASE_URL", &target.url())
        .fails("the source database is stamped production, not staging");
    assert_eq!(target.checksum(), before);
}

//! The shared test harness: throwaway clusters (free port, temp folder, fsync off, stamped
//! `test`), scratch project roots, and a runner for the real `xtask` binary that fails the
//! test if any secret the test used shows up in the output.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
};

use xtask::{pg::Binaries, throwaway::Throwaway};

pub use crate::pgbouncer::Pgbouncer;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn bins() -> Binaries {
    Binaries::find().unwrap()
}

/// The password of every throwaway cluster: a secret as far as the output checks go.
pub fn test_password() -> &'static str {
    Throwaway::password()
}

/// A running throwaway cluster, stamped `test`; stopped and deleted on drop, also when the
/// test panics.
pub struct TestCluster {
    throwaway: Throwaway,
    /// Where it listens: `127.0.0.1`, or `[::1]` after [`restart_on`](Self::restart_on).
    host: String,
}

impl TestCluster {
    pub fn start() -> TestCluster {
        TestCluster {
            throwaway: Throwaway::start().unwrap_or_else(|err| panic!("cannot start a test cluster: {err:#}")),
            host: "127.0.0.1".to_string(),
        }
    }

    /// [`start`](Self::start), with the repository's migrations applied: a copy of a
    /// migrated template cluster made once per test process.
    pub fn start_migrated() -> TestCluster {
        TestCluster {
            throwaway: xtask::testing::start_migrated()
                .unwrap_or_else(|err| panic!("cannot start a migrated test cluster: {err:#}")),
            host: "127.0.0.1".to_string(),
        }
    }

    pub fn url(&self) -> String {
        format!("postgresql://postgres:{}@{}:{}/postgres", test_password(), self.host, self.port())
    }

    pub fn port(&self) -> u16 {
        self.throwaway.cluster.port
    }

    /// The folder of its unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.throwaway.cluster.socket_dir()
    }

    /// Restarts the server listening on another loopback address and port: two servers
    /// can share a port on `::1` and `127.0.0.1`.
    pub fn restart_on(&mut self, listen: &str, port: u16) {
        let sh = xshell::Shell::new().unwrap();
        self.throwaway.cluster.stop(&sh, false).unwrap();
        self.throwaway.cluster.port = port;
        self.throwaway.cluster.start_on(&sh, listen).unwrap();
        self.host = if listen.contains(':') { format!("[{listen}]") } else { listen.to_string() };
    }

    /// The first column of every row `sql` returns, as text.
    pub fn strings(&self, sql: &str) -> Vec<String> {
        self.client().query(sql, &[]).unwrap().iter().map(|r| r.get(0)).collect()
    }

    /// Removes the stamp: the database becomes one this project does not own.
    pub fn unstamp(&self) {
        self.client().batch_execute("drop schema app_meta cascade").unwrap();
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).unwrap()
    }

    /// Plants a stamp, as if the database belonged to `env`.
    pub fn stamp(&self, env: &str) {
        self.client().execute("update app_meta.environment_stamp set environment = $1", &[&env]).unwrap();
    }

    /// A login on this cluster whose user name names the production project
    /// (`postgres.<ref>`), so that detection takes the cluster for production, as it would
    /// a tunnel to the real one. Its password is the cluster's.
    pub fn production_url(&self) -> String {
        let role = "postgres.yovbdmjwrrgardkgrenc";
        self.client()
            .batch_execute(&format!(
                "do $$ begin if not exists (select from pg_roles where rolname = '{role}') then
                   create role \"{role}\" login superuser password '{}';
                   -- Supabase's pooler logs `postgres.<ref>` in as `postgres`.
                   alter role \"{role}\" set role postgres; end if; end $$",
                test_password()
            ))
            .unwrap();
        self.url().replacen("//postgres:", &format!("//{role}:"), 1)
    }

    /// A checksum of the rows of one schema's tables.
    pub fn checksum_of(&self, schema: &str) -> String {
        self.checksum().lines().filter(|l| l.starts_with(&format!("{schema}."))).collect::<Vec<_>>().join("\n")
    }

    /// A checksum of every row of every table outside the system schemas, and of the
    /// table list itself: equal before and after means nothing was written.
    pub fn checksum(&self) -> String {
        let mut client = self.client();
        let tables: Vec<String> = client
            .query(
                "select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 where c.relkind in ('r','p') and n.nspname not in ('pg_catalog','information_schema') and n.nspname not like 'pg_toast%'
                 order by 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut parts = vec![tables.join(",")];
        for table in tables {
            let sum: Option<String> = client
                .query_one(&format!("select md5(string_agg(t::text, '|' order by t::text)) from {table} t"), &[])
                .unwrap()
                .get(0);
            parts.push(format!("{table}={}", sum.unwrap_or_default()));
        }
        parts.join("\n")
    }
}

pub(crate) fn scratch_dir(kind: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join("xtask-e2e").join(format!("{}-{kind}{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // No other OS user lists it; the server's OS user may pass through to a local cluster
    // inside (`db up`). Its env files (the clusters' password) sit in a 0700 `env/`.
    std::fs::set_permissions(&dir, <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o711))
        .unwrap();
    dir
}

/// A scratch project root with the repository's `env/` settings and local defaults, where a
/// test writes the env files it needs. Deleted on drop.
pub struct Project {
    pub root: PathBuf,
    secrets: Vec<String>,
}

impl Project {
    pub fn new() -> Project {
        let root = scratch_dir("project");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        std::fs::create_dir_all(root.join("env")).unwrap();
        std::fs::set_permissions(
            root.join("env"),
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700),
        )
        .unwrap();
        for file in [
            "environments.toml",
            "tenancy.toml",
            "load.toml",
            ".env.local.example",
            ".env.staging.example",
            ".env.production.example",
        ] {
            std::fs::copy(repo.join("env").join(file), root.join("env").join(file)).unwrap();
        }
        let _ = std::fs::create_dir_all(root.join("migrations"));
        Project { root, secrets: vec![test_password().to_string()] }
    }

    /// Copies the repository's migrations into the project.
    pub fn with_migrations(&mut self) -> &mut Project {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for entry in std::fs::read_dir(repo.join("migrations")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), self.root.join("migrations").join(entry.file_name())).unwrap();
        }
        self
    }

    /// Writes `migrations/NAME`.
    pub fn migration(&mut self, name: &str, sql: &str) -> &mut Project {
        std::fs::write(self.root.join("migrations").join(name), sql).unwrap();
        self
    }

    /// Writes `env/NAME`; values of secret-looking keys are remembered for the output check.
    pub fn env_file(&mut self, name: &str, text: &str) -> &mut Project {
        std::fs::write(self.root.join("env").join(name), text).unwrap();
        self
    }

    /// Remembers a value that must never appear in any output.
    pub fn secret(&mut self, value: &str) -> &mut Project {
        self.secrets.push(value.to_string());
        self
    }

    /// Writes `env/.env.{env}` pointing at the remote Supabase project registered for `env`
    /// (production or staging), through the session pooler, with a secret password. Nothing
    /// answers there: the tests use it where a command must refuse before connecting.
    pub fn remote(&mut self, env: &str) -> &mut Project {
        let project_ref = if env == "production" { "yovbdmjwrrgardkgrenc" } else { "STAGING_REF" };
        let password = format!("Remote-{env}-Pw-4242");
        self.secret(&password).env_file(
            &format!(".env.{env}"),
            &format!("DATABASE_URL=postgresql://postgres.{project_ref}:{password}@aws-0-us-east-2.pooler.supabase.com:5432/postgres\n"),
        )
    }

    /// Replaces `from` by `to` in `env/environments.toml`.
    pub fn edit_settings(&mut self, from: &str, to: &str) -> &mut Project {
        let path = self.root.join("env/environments.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "settings have no `{from}`");
        std::fs::write(&path, text.replace(from, to)).unwrap();
        self
    }

    /// The real binary, in this project, with no inherited environment selection.
    pub fn xtask(&self, args: &[&str]) -> Run<'_> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.args(args).current_dir(&self.root).env("XTASK_PROJECT_ROOT", &self.root);
        for var in [
            "DATABASE_URL",
            "APP_ENV",
            "NEXT_PUBLIC_SUPABASE_URL",
            "NEXT_PUBLIC_SUPABASE_ANON_KEY",
            "SUPABASE_SERVICE_ROLE_KEY",
            "STAGE_SYNC_KEY",
            "PGSSLROOTCERT",
            "PG_BINDIR",
        ] {
            command.env_remove(var);
        }
        Run { command, project: self }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub struct Run<'a> {
    command: Command,
    project: &'a Project,
}

/// What a run printed, already checked for secrets.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl<'a> Run<'a> {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn run(mut self) -> Output {
        let out = self.command.output().expect("run xtask");
        self.project.check(out)
    }

    /// Starts the command without waiting, for races.
    pub fn spawn(mut self) -> Running<'a> {
        self.command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        Running { child: self.command.spawn().expect("spawn xtask"), project: self.project }
    }

    /// Runs and expects success.
    pub fn ok(self) -> Output {
        let out = self.run();
        assert_eq!(out.code, Some(0), "expected success:\n{out:#?}");
        out
    }

    /// Runs and expects failure with exactly one `error:` line (and an optional hint)
    /// starting with `start`.
    pub fn fails(self, start: &str) -> Output {
        self.run().failed_with(start)
    }
}

pub struct Running<'a> {
    child: std::process::Child,
    project: &'a Project,
}

impl Running<'_> {
    /// The process id, to find what the process left behind.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and wait for the process to be gone; what it had written to stderr.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        self.child.wait_with_output().map(|out| String::from_utf8_lossy(&out.stderr).into_owned()).unwrap_or_default()
    }

    pub fn wait(self) -> Output {
        let out = self.child.wait_with_output().expect("wait for xtask");
        self.project.check(out)
    }
}

impl Project {
    /// Checks a run's output for secrets and panics.
    fn check(&self, out: std::process::Output) -> Output {
        let output = Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        for secret in &self.secrets {
            assert!(
                !output.stdout.contains(secret.as_str()) && !output.stderr.contains(secret.as_str()),
                "a secret leaked into the output:\n{output:#?}"
            );
        }
        assert!(!output.stderr.contains("panicked"), "xtask panicked:\n{}", output.stderr);
        output
    }
}

impl Output {
    /// Expects failure with exactly one `error:` line (and an optional hint) starting with
    /// `start`.
    pub fn failed_with(self, start: &str) -> Output {
        assert_eq!(self.code, Some(1), "expected failure:\n{self:#?}");
        let errors: Vec<&str> = self.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "expected one error line:\n{}", self.stderr);
        assert!(errors[0]["error: ".len()..].starts_with(start), "expected `{start}`:\n{}", self.stderr);
        self
    }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// `n` random delays in `[low, high]` milliseconds, different every run (the kill suites
/// print them, so a failure can be replayed).
pub fn random_delays(n: usize, low: u64, high: u64) -> Vec<u64> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    let mut state = nanos ^ 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            // xorshift: enough randomness for kill moments.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            low + state % (high - low + 1)
        })
        .collect()
}

/// Every writing command, as it names its environment (`{env}`): the guard matrix and the
/// attack suite aim each of them.
pub const WRITING_COMMANDS: &[&[&str]] = &[
    &["db", "reset", "--env", "{env}"],
    &["db", "undo", "--env", "{env}"],
    &["migrate", "up", "--env", "{env}"],
    &["migrate", "down", "--env", "{env}"],
    &["migrate", "resolve", "1", "--applied", "--env", "{env}"],
    &["rls", "--env", "{env}"],
    &["rls", "matrix", "--check", "--env", "{env}"],
    &["seed", "--profile", "minimal", "--env", "{env}"],
    &["stage-sync", "--from", "production", "--to", "{env}", "--yes"],
    &["load", "--env", "{env}", "--transactions", "10", "--yes"],
];

/// A test cluster migrated with the repository's migrations, and a project holding them.
pub fn migrated() -> (TestCluster, Project) {
    let cluster = TestCluster::start_migrated();
    let mut project = Project::new();
    project.with_migrations();
    (cluster, project)
}

/// Every table the migrations create in `public`.
pub const TABLES: [&str; 14] = [
    "clinics",
    "locations",
    "users",
    "user_clinic_roles",
    "providers",
    "provider_locations",
    "data_sources",
    "metric_definitions",
    "daily_hygiene_production",
    "daily_dentist_production",
    "daily_location_financials",
    "goals",
    "dashboards",
    "dashboard_widgets",
];

impl Run<'_> {
    /// Runs with stdout a pipe whose reader is gone, as under `| head` once `head` has read
    /// enough: the reader is closed as soon as the process starts, before it can print.
    pub fn closed_stdout(mut self) -> Output {
        self.command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = self.command.spawn().expect("spawn xtask");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait for xtask");
        self.project.check(out)
    }
}

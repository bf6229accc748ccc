//! The shared test harness: throwaway clusters (free port, temp folder, fsync off, stamped
//! `test`), scratch project roots, and a runner for the real `xtask` binary that fails the
//! test if any secret the test used shows up in the output.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use xshell::{Shell, cmd};
use xtask::pg::{Binaries, Cluster, Durability};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Every test's scratch folders live under this one, in a folder per test process, so a
/// later run can remove what a killed run left behind.
fn scratch_root() -> PathBuf {
    std::env::temp_dir().join("xtask-e2e")
}

fn process_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_stale_runs();
        let dir = scratch_root().join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// Stops the servers and deletes the folders of earlier test processes that are gone.
fn remove_stale_runs() {
    let Ok(entries) = std::fs::read_dir(scratch_root()) else { return };
    let sh = Shell::new().unwrap();
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if Path::new("/proc").join(&pid).exists() {
            continue;
        }
        for cluster in std::fs::read_dir(entry.path()).into_iter().flatten().flatten() {
            let data = cluster.path().join("data");
            if data.join("postmaster.pid").exists() {
                let _ = Cluster::new(cluster.path(), 0, bins().clone()).stop(&sh, true);
            }
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

pub fn bins() -> &'static Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| Binaries::find().expect("PostgreSQL server binaries"))
}

fn fresh_dir(kind: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = process_dir().join(format!("{kind}{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The password of every throwaway cluster: a secret as far as the output checks go.
pub const TEST_PASSWORD: &str = "e2e-Cluster-Pw-7f3a9";

/// A cluster initialized once per test process, bootstrapped and stamped `test`, then
/// stopped cleanly; each [`TestCluster`] starts from a copy of it.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let sh = Shell::new().unwrap();
        let dir = fresh_dir("template");
        let cluster = Cluster::new(&dir, xtask::pg::free_port().unwrap(), bins().clone());
        cluster.init(&sh, TEST_PASSWORD, Durability::Throwaway).unwrap();
        cluster.start(&sh).unwrap();
        let mut client = postgres::Client::connect(&cluster.url(TEST_PASSWORD, "postgres"), postgres::NoTls).unwrap();
        client.batch_execute(xtask::SUPABASE_SQL).unwrap();
        client.batch_execute(app::stamp::DDL).unwrap();
        client
            .batch_execute(
                "insert into app_meta.environment_stamp (environment, stamped_by) values ('test', 'test harness')",
            )
            .unwrap();
        drop(client);
        cluster.stop(&sh, false).unwrap();
        dir
    })
}

/// A running throwaway cluster; stopped and deleted on drop, also when the test panics.
pub struct TestCluster {
    pub cluster: Cluster,
    sh: Shell,
}

impl TestCluster {
    pub fn start() -> TestCluster {
        let sh = Shell::new().unwrap();
        let dir = fresh_dir("cluster");
        let (template_data, data) = (template().join("data"), dir.join("data"));
        cmd!(sh, "cp -a {template_data} {data}").quiet().run().unwrap();
        // A port picked free can be taken before the server binds it: try a few.
        for attempt in 0.. {
            let cluster = Cluster::new(&dir, xtask::pg::free_port().unwrap(), bins().clone());
            match cluster.start(&sh) {
                Ok(()) => return TestCluster { cluster, sh },
                Err(err) if attempt < 3 => eprintln!("retrying cluster start: {err:#}"),
                Err(err) => panic!("cannot start a test cluster: {err:#}"),
            }
        }
        unreachable!()
    }

    pub fn url(&self) -> String {
        self.cluster.url(TEST_PASSWORD, "postgres")
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).unwrap()
    }

    /// Plants a stamp, as if the database belonged to `env`.
    pub fn stamp(&self, env: &str) {
        self.client().execute("update app_meta.environment_stamp set environment = $1", &[&env]).unwrap();
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

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.cluster.stop(&self.sh, true);
        let _ = std::fs::remove_dir_all(&self.cluster.dir);
    }
}

/// A scratch project root with the repository's `env/` settings and local defaults, where a
/// test writes the env files it needs. Deleted on drop.
pub struct Project {
    pub root: PathBuf,
    secrets: Vec<String>,
}

impl Project {
    pub fn new() -> Project {
        let root = fresh_dir("project");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        std::fs::create_dir_all(root.join("env")).unwrap();
        for file in ["environments.toml", ".env.local.example", ".env.staging.example", ".env.production.example"] {
            std::fs::copy(repo.join("env").join(file), root.join("env").join(file)).unwrap();
        }
        let _ = std::fs::create_dir_all(root.join("migrations"));
        Project { root, secrets: vec![TEST_PASSWORD.to_string()] }
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

impl Run<'_> {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn run(mut self) -> Output {
        let out = self.command.output().expect("run xtask");
        let output = Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        for secret in &self.project.secrets {
            assert!(
                !output.stdout.contains(secret.as_str()) && !output.stderr.contains(secret.as_str()),
                "a secret leaked into the output:\n{output:#?}"
            );
        }
        assert!(!output.stderr.contains("panicked"), "xtask panicked:\n{}", output.stderr);
        output
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
        let out = self.run();
        assert_eq!(out.code, Some(1), "expected failure:\n{out:#?}");
        let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "expected one error line:\n{}", out.stderr);
        assert!(errors[0]["error: ".len()..].starts_with(start), "expected `{start}`:\n{}", out.stderr);
        out
    }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

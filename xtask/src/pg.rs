//! PostgreSQL plumbing shared by every command and the test harness: finding the server
//! binaries, and creating, starting and stopping clusters. As root, the server programs run
//! as the `postgres` OS user (they refuse to run as root), with their folders owned by it.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

mod client;

pub use client::client_cmd;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

/// The folder holding `initdb`, `pg_ctl` and `postgres`.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub dir: PathBuf,
    pub version: u32,
}

/// The variable that overrides where the server binaries are.
pub const BINDIR_VAR: &str = "PG_BINDIR";
const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

impl Binaries {
    /// Looks in `$PG_BINDIR`, then `PATH`, then `pg_config --bindir`, then the highest
    /// `/usr/lib/postgresql/*/bin`.
    pub fn find() -> Result<Binaries> {
        if let Some(dir) = std::env::var_os(BINDIR_VAR).filter(|d| !d.is_empty()) {
            let dir = PathBuf::from(dir);
            if !has_server_programs(&dir) {
                bail!(
                    "{BINDIR_VAR}={} holds no initdb, pg_ctl and postgres\nhint: point it at the folder of the PostgreSQL server binaries, or unset it",
                    dir.display()
                );
            }
            return Binaries::at(dir);
        }
        let from_path = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .find(|dir| has_server_programs(dir))
            .map(|dir| {
                std::fs::canonicalize(dir.join("postgres"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or(dir)
            });
        let from_pg_config = || {
            let out = Command::new("pg_config").arg("--bindir").output().ok()?;
            let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
            has_server_programs(&dir).then_some(dir)
        };
        let from_debian = || {
            let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|entry| {
                    let entry = entry.ok()?;
                    let version = entry.file_name().to_str()?.parse().ok()?;
                    let dir = entry.path().join("bin");
                    has_server_programs(&dir).then_some((version, dir))
                })
                .collect();
            versions.sort();
            versions.pop().map(|(_, dir)| dir)
        };
        match from_path.or_else(from_pg_config).or_else(from_debian) {
            Some(dir) => Binaries::at(dir),
            None => bail!(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found\nhint: install PostgreSQL 14 or newer (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@16), or set {BINDIR_VAR}"
            ),
        }
    }

    fn at(dir: PathBuf) -> Result<Binaries> {
        let out = Command::new(dir.join("postgres"))
            .arg("--version")
            .output()
            .with_context(|| format!("cannot run {}/postgres", dir.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .split_whitespace()
            .find_map(|word| word.split('.').next()?.parse::<u32>().ok())
            .with_context(|| format!("cannot read the version of {}/postgres", dir.display()))?;
        if version < 14 {
            bail!(
                "PostgreSQL {version} at {} is too old\nhint: install PostgreSQL 14 or newer, or set {BINDIR_VAR}",
                dir.display()
            );
        }
        Ok(Binaries { dir, version })
    }

    fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn has_server_programs(dir: &Path) -> bool {
    SERVER_PROGRAMS.iter().all(|p| dir.join(p).is_file())
}

/// One PostgreSQL cluster in a folder of its own: `data/`, a socket folder `run/`, the
/// server log `postgres.log`.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    pub bins: Binaries,
}

/// The file that marks a folder as a local cluster that `cargo xtask db up` created.
pub const LOCAL_MARKER: &str = "xtask-local-cluster";

/// How a cluster trades durability for speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A developer's local database: PostgreSQL's defaults.
    Safe,
    /// Throwaway clusters: no fsync, no full-page writes.
    Throwaway,
}

impl Cluster {
    pub fn new(dir: impl Into<PathBuf>, port: u16, bins: Binaries) -> Cluster {
        Cluster { dir: dir.into(), port, bins }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    pub fn exists(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file()
    }

    /// `initdb` with a `postgres` superuser and password; TCP needs the password, the
    /// socket (in the cluster's own folder) trusts its owner.
    pub fn init(&self, sh: &Shell, password: &str, durability: Durability) -> Result<()> {
        // The folder becomes the project's (marked, deletable by `db destroy`): only an
        // absent or empty one is taken.
        if std::fs::read_dir(&self.dir).is_ok_and(|mut entries| entries.next().is_some()) {
            bail!(
                "{} exists and is not empty: a new cluster is created only in a folder of its own\nhint: choose another folder ([local] data_dir in env/environments.toml), or empty this one",
                self.dir.display()
            );
        }
        std::fs::create_dir_all(self.socket_dir()).with_context(|| format!("cannot create {}", self.dir.display()))?;
        let pwfile = self.dir.join(".pwfile");
        std::fs::write(&pwfile, format!("{password}\n"))?;
        hand_to_server_user(sh, &self.dir)?;
        let initdb = self.bins.program("initdb");
        let data = self.data_dir();
        let args = [
            format!("--pgdata={}", data.display()),
            "--username=postgres".to_string(),
            format!("--pwfile={}", pwfile.display()),
            "--auth-local=trust".to_string(),
            "--auth-host=scram-sha-256".to_string(),
            "--encoding=UTF8".to_string(),
            "--locale=C".to_string(),
            "--no-sync".to_string(),
        ];
        let result = server_cmd(sh, initdb, &args).run();
        let _ = std::fs::remove_file(&pwfile);
        result.with_context(|| format!("initdb failed for {}", data.display()))?;
        // The project's mark on what it created: `db destroy` deletes only a marked folder,
        // and a throwaway guard only accepts a server whose data folder is beside one.
        let marker = match durability {
            Durability::Safe => LOCAL_MARKER,
            Durability::Throwaway => app::guard::THROWAWAY_MARKER,
        };
        std::fs::write(self.dir.join(marker), "created by cargo xtask; safe to delete with its folder\n")?;
        let mut conf =
            String::from("\n# Written by cargo xtask.\nlisten_addresses = '127.0.0.1'\nlogging_collector = off\n");
        if durability == Durability::Throwaway {
            // Bulk loads into tables emptied in the same transaction skip the WAL at wal_level
            // minimal; throwaway data needs no replica.
            conf.push_str(
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 40\nshared_buffers = 256MB\nwal_level = minimal\nmax_wal_senders = 0\nmaintenance_work_mem = 256MB\n",
            );
        }
        // An installed pg_cron only works preloaded (see db/extensions.rs).
        conf.push_str(&crate::db::extensions::server_conf(&self.bins));
        let conf_path = data.join("postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path)?;
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing)?;
        Ok(())
    }

    /// Starts the server and waits until it accepts connections. A port that something else
    /// holds is one clear error.
    pub fn start(&self, sh: &Shell) -> Result<()> {
        self.start_on(sh, "127.0.0.1")
    }

    /// [`start`](Self::start), listening on another loopback address (tests).
    pub fn start_on(&self, sh: &Shell, listen: &str) -> Result<()> {
        let ip: std::net::IpAddr = listen.parse().context("a listen address is an IP address")?;
        if let Err(err) = TcpListener::bind((ip, self.port)) {
            bail!(
                "port {} on {listen} is taken by another program ({err})\nhint: stop that program, or choose another port (env/environments.toml [local] port)",
                self.port
            );
        }
        std::fs::create_dir_all(self.socket_dir())?;
        // The server writes its log and socket here; the data folder is its own already.
        if is_root() {
            let (dir, run) = (&self.dir, self.socket_dir());
            cmd!(sh, "chown postgres: {dir} {run}").quiet().run()?;
        }
        let pg_ctl = self.bins.program("pg_ctl");
        let (data, log, run) = (self.data_dir(), self.log_file(), self.socket_dir());
        let args = [
            format!("--pgdata={}", data.display()),
            format!("--log={}", log.display()),
            "--wait".to_string(),
            "--timeout=60".to_string(),
            format!("--options=-p {} -k '{}' -h '{listen}'", self.port, run.display()),
            "start".to_string(),
        ];
        let started = server_cmd(sh, pg_ctl, &args).run();
        if started.is_err() {
            bail!(
                "the server in {} did not start: {}\nhint: see {}",
                data.display(),
                self.last_log_error(),
                log.display()
            );
        }
        Ok(())
    }

    /// Stops the server; `immediate` skips the shutdown checkpoint (throwaway clusters).
    pub fn stop(&self, sh: &Shell, immediate: bool) -> Result<()> {
        let pg_ctl = self.bins.program("pg_ctl");
        let data = self.data_dir();
        let mode = if immediate { "immediate" } else { "fast" };
        let args = [
            format!("--pgdata={}", data.display()),
            format!("--mode={mode}"),
            "--wait".to_string(),
            "--timeout=60".to_string(),
            "stop".to_string(),
        ];
        server_cmd(sh, pg_ctl, &args).run().with_context(|| format!("pg_ctl stop failed for {}", data.display()))
    }

    /// The port a running server listens on, from its `postmaster.pid`; `None` when no
    /// server runs on this data.
    pub fn running_port(&self, sh: &Shell) -> Option<u16> {
        let pg_ctl = self.bins.program("pg_ctl");
        let data = self.data_dir();
        server_cmd(sh, pg_ctl, &[format!("--pgdata={}", data.display()), "status".to_string()]).run().ok()?;
        let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    /// The connection URL for the `postgres` superuser over TCP.
    pub fn url(&self, password: &str, dbname: &str) -> String {
        format!("postgresql://postgres:{password}@127.0.0.1:{}/{dbname}", self.port)
    }

    fn last_log_error(&self) -> String {
        let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        log.lines()
            .rev()
            .find(|line| line.contains("FATAL") || line.contains("ERROR"))
            .or_else(|| log.lines().last())
            .unwrap_or("no server log")
            .trim()
            .to_string()
    }
}

/// A free TCP port on 127.0.0.1 (the OS picks; a start that loses a race retries).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

pub fn is_root() -> bool {
    // `id -u` is everywhere the server binaries are; no unsafe libc call needed. Asked once:
    // every server command wants to know.
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n")))
}

/// A server program, run as the `postgres` OS user when this process is root.
fn server_cmd<'a>(sh: &'a Shell, program: PathBuf, args: &[String]) -> xshell::Cmd<'a> {
    let cmd = if is_root() {
        cmd!(sh, "runuser -u postgres -- {program} {args...}")
    } else {
        cmd!(sh, "{program} {args...}")
    };
    cmd.quiet().ignore_stdout().ignore_stderr()
}

/// Gives a folder (recursively) to the `postgres` OS user when running as root.
pub fn hand_to_server_user(sh: &Shell, dir: &Path) -> Result<()> {
    if is_root() {
        cmd!(sh, "chown -R postgres: {dir}")
            .quiet()
            .run()
            .with_context(|| format!("cannot hand {} to the postgres user", dir.display()))?;
    }
    Ok(())
}

/// A throwaway cluster for tests, `migrate verify` and benchmarks: a copy of a template that
/// is initialized, bootstrapped (Supabase's roles and schema) and stamped `test` once per
/// process, so each one starts in a fraction of a second. Stopped and deleted on drop,
/// also when a test panics; folders of killed processes are removed by the next process.
pub struct Throwaway {
    pub cluster: Cluster,
    sh: Shell,
}

impl Throwaway {
    pub fn start() -> Result<Throwaway> {
        Throwaway::start_from(throwaway_template()?)
    }

    /// A throwaway cluster whose database the project's migrations have also been applied
    /// to, copied from a migrated template made once per process: tests that need the
    /// schema stop re-running every migration.
    pub fn start_migrated() -> Result<Throwaway> {
        Throwaway::start_from(migrated_template()?)
    }

    fn start_from(template: &Path) -> Result<Throwaway> {
        let sh = Shell::new()?;
        let dir = throwaway_dir("cluster")?;
        let (template_data, data) = (template.join("data"), dir.join("data"));
        cmd!(sh, "cp -a {template_data} {data}").quiet().run().context("cannot copy the template cluster")?;
        std::fs::write(dir.join(app::guard::THROWAWAY_MARKER), "created by cargo xtask\n")?;
        // A port found free can be taken before the server binds it: try a few.
        let mut attempt = 0;
        loop {
            let cluster = Cluster::new(&dir, free_port()?, Binaries::find()?);
            match cluster.start(&sh) {
                Ok(()) => return Ok(Throwaway { cluster, sh }),
                Err(_) if attempt < 3 => attempt += 1,
                Err(err) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(err);
                }
            }
        }
    }

    /// The password of every throwaway cluster of this process.
    pub fn password() -> &'static str {
        static PASSWORD: OnceLock<String> = OnceLock::new();
        PASSWORD.get_or_init(|| {
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            format!("throwaway-{:x}-{nanos:x}", std::process::id())
        })
    }

    pub fn url(&self, dbname: &str) -> String {
        self.cluster.url(Throwaway::password(), dbname)
    }

    /// The guard for this cluster's `postgres` database, as the `test` environment.
    pub fn guard(&self) -> Result<app::Guard> {
        throwaway_guard(&self.url("postgres"))
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = self.cluster.stop(&self.sh, true);
        let _ = std::fs::remove_dir_all(&self.cluster.dir);
    }
}

/// The guard for a throwaway cluster's database at `url`, as the `test` environment: app
/// checks on connecting that the server is one of the clusters this project started.
pub(crate) fn throwaway_guard(url: &str) -> Result<app::Guard> {
    app::Guard::throwaway(url, app::Settings::load(&crate::context::project_root())?)
}

fn throwaway_root() -> PathBuf {
    std::env::temp_dir().join("xtask-throwaway")
}

fn throwaway_dir(kind: &str) -> Result<PathBuf> {
    static PROCESS_DIR: OnceLock<PathBuf> = OnceLock::new();
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let process_dir = PROCESS_DIR.get_or_init(|| {
        remove_stale_throwaways();
        throwaway_root().join(std::process::id().to_string())
    });
    let dir = process_dir.join(format!("{kind}{}", COUNTER.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Stops the servers and deletes the folders of earlier processes that are gone.
fn remove_stale_throwaways() {
    let Ok(entries) = std::fs::read_dir(throwaway_root()) else { return };
    let (Ok(sh), Ok(bins)) = (Shell::new(), Binaries::find()) else { return };
    // The root is in the shared temp folder: anyone could plant a link there. Only real
    // folders are followed, and only servers beside the throwaway marker are stopped.
    let real_dir = |path: &Path| std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if Path::new("/proc").join(&pid).exists() || !real_dir(&entry.path()) {
            continue;
        }
        for cluster in std::fs::read_dir(entry.path()).into_iter().flatten().flatten() {
            let ours = real_dir(&cluster.path()) && cluster.path().join(app::guard::THROWAWAY_MARKER).is_file();
            if ours && cluster.path().join("data/postmaster.pid").exists() {
                let _ = Cluster::new(cluster.path(), 0, bins.clone()).stop(&sh, true);
            }
        }
        // Removes links themselves, never what they point at.
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

fn throwaway_template() -> Result<&'static Path> {
    static TEMPLATE: Mutex<Option<&'static Path>> = Mutex::new(None);
    let mut template = TEMPLATE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = *template {
        return Ok(dir);
    }
    let sh = Shell::new()?;
    let dir = throwaway_dir("template")?;
    let cluster = Cluster::new(&dir, free_port()?, Binaries::find()?);
    cluster.init(&sh, Throwaway::password(), Durability::Throwaway)?;
    cluster.start(&sh)?;
    let bootstrapped = crate::db::bootstrap_throwaway(&cluster.url(Throwaway::password(), "postgres"));
    cluster.stop(&sh, false)?;
    bootstrapped.context("cannot bootstrap the template cluster")?;
    let dir: &'static Path = Box::leak(dir.into_boxed_path());
    *template = Some(dir);
    Ok(dir)
}

/// The throwaway template with the project's migrations applied, made once per process
/// from a throwaway cluster that is then stopped and kept (its folder goes with the
/// process's other throwaway folders).
fn migrated_template() -> Result<&'static Path> {
    static TEMPLATE: Mutex<Option<&'static Path>> = Mutex::new(None);
    let mut template = TEMPLATE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = *template {
        return Ok(dir);
    }
    let throwaway = Throwaway::start()?;
    let migrated = throwaway.guard().and_then(|guard| crate::migrate::up_all(&guard));
    throwaway.cluster.stop(&throwaway.sh, false)?;
    migrated.context("cannot migrate the migrated template cluster")?;
    let dir: &'static Path = Box::leak(throwaway.cluster.dir.clone().into_boxed_path());
    // Kept: its Drop would delete the folder.
    std::mem::forget(throwaway);
    *template = Some(dir);
    Ok(dir)
}

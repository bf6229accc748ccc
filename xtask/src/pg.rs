//! PostgreSQL plumbing shared by every command and the test harness, the ground floor: it
//! imports no command and no room above it. Finding the server binaries, and creating,
//! starting and stopping clusters; `pg/client.rs` runs client programs. As root, the server
//! programs run as the `postgres` OS user (they refuse to run as root), with their folders
//! owned by it.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
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

    /// A folder `pg_config` (beside the server binaries, as Debian and Homebrew install it)
    /// reports.
    pub(crate) fn pg_config(&self, what: &str) -> Option<PathBuf> {
        let out = Command::new(self.dir.join("pg_config")).arg(what).output().ok()?;
        let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        Path::new(&dir).is_dir().then_some(dir)
    }

    /// Lines for `postgresql.conf`: when `pg_cron` is installed, it must be preloaded and
    /// told its database, or `create extension pg_cron` fails.
    pub(crate) fn server_conf(&self) -> String {
        let installed = self.pg_config("--pkglibdir").is_some_and(|dir| dir.join("pg_cron.so").is_file());
        if installed {
            "shared_preload_libraries = 'pg_cron'\ncron.database_name = 'postgres'\n".to_string()
        } else {
            String::new()
        }
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

    /// `initdb` with a `postgres` superuser and password, which TCP and the socket both
    /// ask for (scram-sha-256, never `trust`). The folder is private (0700) and the socket
    /// in it too: no other OS user lists, reads or connects to what it holds.
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
        make_private(&self.dir)?;
        let pwfile = self.dir.join(".pwfile");
        std::fs::write(&pwfile, format!("{password}\n"))?;
        hand_to_server_user(sh, &self.dir)?;
        let initdb = self.bins.program("initdb");
        let data = self.data_dir();
        let args = [
            format!("--pgdata={}", data.display()),
            "--username=postgres".to_string(),
            format!("--pwfile={}", pwfile.display()),
            "--auth-local=scram-sha-256".to_string(),
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
        // An installed pg_cron only works preloaded.
        conf.push_str(&self.bins.server_conf());
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
        // Private, also for clusters made before this rule: only the server's OS user (and
        // root) may list the folder or reach the socket in it.
        make_private(&self.dir)?;
        make_private(&self.socket_dir())?;
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
            format!("--options=-p {} -k '{}' -h '{listen}' -c unix_socket_permissions=0700", self.port, run.display()),
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

/// Makes a folder readable, writable and searchable by its owner alone.
pub(crate) fn make_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", dir.display()))
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

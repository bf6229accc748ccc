//! A parsed `DATABASE_URL`: where it points (every host, resolved: see [`address`]), what
//! Supabase project it names, and a display form with the password masked.
//!
//! Parsing is in `database_url/parse.rs`, the one-endpoint driver config and libpq
//! conninfo in `database_url/conninfo.rs`.

use std::{fmt, net::IpAddr, path::PathBuf, time::Duration};

use anyhow::{Result, bail};
use postgres::config::{Config, Host as PgHost, LoadBalanceHosts, TargetSessionAttrs};

use crate::address::{self, Endpoint};

mod conninfo;
mod parse;
#[cfg(test)]
mod tests;

/// Overrides the start-up timeout (connect, TLS, login, first query), in seconds, where the
/// URL has no `connect_timeout`.
pub(crate) const TIMEOUT_VAR: &str = "XTASK_CONNECT_TIMEOUT";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection string, parsed by the `postgres` crate (URL or `key=value` form).
#[derive(Clone)]
pub struct DatabaseUrl {
    config: Config,
    /// CA file from the `sslrootcert` parameter, which the `postgres` crate doesn't know.
    pub ssl_root_cert: Option<PathBuf>,
    /// `pgbouncer=true`, Prisma's marker for a transaction-mode pooler.
    pgbouncer_flag: bool,
}

/// Where the server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    Tcp(String),
    Socket(PathBuf),
}

/// Supabase's pooler (Supavisor) has two modes with different guarantees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooler {
    /// Port 5432 on the pooler host: one server session per client session.
    Session,
    /// Port 6543: server sessions are shared between transactions, so prepared statements,
    /// session settings, advisory locks and COPY outside a transaction break.
    Transaction,
}

/// libpq's default when no host is given.
const DEFAULT_SOCKET: &str = "/var/run/postgresql";

/// One host entry of a connection string.
struct Target {
    host: Option<PgHost>,
    hostaddr: Option<IpAddr>,
    port: u16,
}

/// Parameters that Prisma or libpq accept but the `postgres` crate would reject.
const FOREIGN_PARAMS: &[&str] = &[
    "pgbouncer",
    "connection_limit",
    "pool_timeout",
    "schema",
    "statement_cache_size",
    "socket_timeout",
    "sslaccept",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslidentity",
];

impl DatabaseUrl {
    pub(crate) fn host(&self) -> Host {
        match self.config.get_hosts().first() {
            Some(PgHost::Tcp(host)) => Host::Tcp(host.clone()),
            Some(PgHost::Unix(path)) => Host::Socket(path.clone()),
            None => Host::Socket(PathBuf::from(DEFAULT_SOCKET)),
        }
    }

    pub fn port(&self) -> u16 {
        self.config.get_ports().first().copied().unwrap_or(5432)
    }

    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("postgres")
    }

    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or_else(|| self.user())
    }

    pub fn password(&self) -> Option<String> {
        self.config.get_password().map(|p| String::from_utf8_lossy(p).into_owned())
    }

    /// Every address the driver may connect to is on this machine (loopback or a unix
    /// socket), judged by what names resolve to. A name that does not resolve is not.
    pub fn is_on_this_machine(&self) -> bool {
        let targets = self.targets();
        targets.iter().all(|t| match (&t.hostaddr, &t.host) {
            (Some(ip), _) => ip.is_loopback(),
            (None, Some(PgHost::Tcp(name))) => is_loopback(name, t.port),
            (None, _) => true,
        })
    }

    /// Every place the driver may connect to, in its order: each host of the string, with
    /// its `hostaddr` if it has one, else each address its name resolves to.
    pub(crate) fn endpoints(&self) -> Vec<Endpoint> {
        let mut out = Vec::new();
        for t in self.targets() {
            match (t.hostaddr, &t.host) {
                (Some(addr), host) => {
                    let name = match host {
                        Some(PgHost::Tcp(name)) => name.clone(),
                        _ => addr.to_string(),
                    };
                    out.push(Endpoint::Tcp { name, addr, port: t.port });
                }
                (None, Some(PgHost::Tcp(name))) => {
                    for addr in address::resolve(name, t.port) {
                        out.push(Endpoint::Tcp { name: name.clone(), addr, port: t.port });
                    }
                }
                (None, Some(PgHost::Unix(dir))) => out.push(Endpoint::Socket { dir: dir.clone(), port: t.port }),
                (None, None) => out.push(Endpoint::Socket { dir: PathBuf::from(DEFAULT_SOCKET), port: t.port }),
            }
        }
        out
    }

    /// Why a command that writes must not use this string, if it must not: it names
    /// several servers, lets the driver choose among them, or gives an address that is not
    /// one of its host's.
    pub(crate) fn write_problem(&self) -> Option<String> {
        let targets = self.targets();
        if targets.len() > 1 {
            return Some(format!(
                "DATABASE_URL names {} hosts ({}): a command that writes needs exactly one server",
                targets.len(),
                self.address()
            ));
        }
        if self.config.get_load_balance_hosts() != LoadBalanceHosts::Disable {
            return Some("DATABASE_URL sets load_balance_hosts: a command that writes needs exactly one server".into());
        }
        if self.config.get_target_session_attrs() != TargetSessionAttrs::Any {
            return Some(
                "DATABASE_URL sets target_session_attrs: a command that writes needs exactly one server".into(),
            );
        }
        let t = targets.first()?;
        if let (Some(ip), Some(PgHost::Tcp(name))) = (t.hostaddr, &t.host) {
            if !address::resolve(name, t.port).contains(&ip) {
                return Some(format!(
                    "DATABASE_URL's hostaddr {ip} is not an address of its host {name}: the name and the server would disagree"
                ));
            }
        }
        None
    }

    /// How long connecting may take as a whole (connect, TLS, login, the first query):
    /// the URL's `connect_timeout`, else `XTASK_CONNECT_TIMEOUT`, else 10 s.
    pub(crate) fn startup_timeout(&self) -> Duration {
        if let Some(timeout) = self.config.get_connect_timeout().filter(|t| !t.is_zero()) {
            return *timeout;
        }
        std::env::var(TIMEOUT_VAR)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|secs| *secs > 0.0 && *secs < 86_400.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The setting that controls [`startup_timeout`](Self::startup_timeout), for messages.
    pub(crate) fn timeout_setting(&self) -> String {
        let secs = self.startup_timeout().as_secs_f64();
        if self.config.get_connect_timeout().is_some_and(|t| !t.is_zero()) {
            format!("connect_timeout={secs} in DATABASE_URL")
        } else {
            format!("{secs} s, set by {TIMEOUT_VAR} or connect_timeout= in DATABASE_URL")
        }
    }

    /// Each host entry as the driver pairs them: host `i` with hostaddr `i` and port `i`
    /// (or the one port).
    fn targets(&self) -> Vec<Target> {
        let (hosts, addrs, ports) = (self.config.get_hosts(), self.config.get_hostaddrs(), self.config.get_ports());
        let count = hosts.len().max(addrs.len()).max(1);
        (0..count)
            .map(|i| Target {
                host: hosts.get(i).cloned(),
                hostaddr: addrs.get(i).copied(),
                port: ports.get(i).or_else(|| ports.first()).copied().unwrap_or(5432),
            })
            .collect()
    }

    /// The Supabase project ref: from a pooler user name (`postgres.<ref>`) or a direct host
    /// (`db.<ref>.supabase.co`, any of several). Two different refs are an error.
    pub fn project_ref(&self) -> Result<Option<String>> {
        let from_user = self.user().split_once('.').map(|(_, r)| r.to_ascii_lowercase());
        let from_hosts = self.targets().into_iter().filter_map(|t| match t.host {
            Some(PgHost::Tcp(host)) => supabase_host_ref(&host),
            _ => None,
        });
        let mut found: Option<(String, String)> = from_user.map(|r| (format!("user `postgres.{r}`"), r));
        for host_ref in from_hosts {
            match &found {
                Some((what, r)) if *r != host_ref => {
                    bail!("DATABASE_URL names two projects: {what} but host of `{host_ref}`")
                }
                Some(_) => {}
                None => found = Some((format!("host of `{host_ref}`"), host_ref)),
            }
        }
        Ok(found.map(|(_, r)| r))
    }

    /// What the URL itself says of a pooler: Prisma's `pgbouncer=true` or Supabase's port
    /// 6543 mean transaction mode, a `*.pooler.supabase.com` host session mode. A fast first
    /// answer only: connections find transaction pooling by how the server behaves.
    pub fn pooler(&self) -> Option<Pooler> {
        if self.pgbouncer_flag {
            return Some(Pooler::Transaction);
        }
        let Host::Tcp(host) = self.host() else { return None };
        if self.is_on_this_machine() {
            return None;
        }
        if self.port() == 6543 {
            return Some(Pooler::Transaction);
        }
        host.to_ascii_lowercase().ends_with(".pooler.supabase.com").then_some(Pooler::Session)
    }

    /// The same URL naming another database of the same server: for the maintenance
    /// connection a template clone needs, which the guard checks is the same server.
    pub(crate) fn with_dbname(&self, dbname: &str) -> DatabaseUrl {
        let mut url = self.clone();
        url.config.dbname(dbname);
        url
    }

    /// The same URL with another start-up timeout.
    pub(crate) fn with_connect_timeout(&self, timeout: Duration) -> DatabaseUrl {
        let mut url = self.clone();
        url.config.connect_timeout(timeout);
        url
    }

    /// `host:port` for each host (several are joined with commas), or the socket folder.
    pub fn address(&self) -> String {
        let shown: Vec<String> = self
            .targets()
            .iter()
            .map(|t| match &t.host {
                Some(PgHost::Tcp(host)) if host.contains(':') => format!("[{host}]:{}", t.port),
                Some(PgHost::Tcp(host)) => format!("{host}:{}", t.port),
                Some(PgHost::Unix(dir)) => format!("socket {}:{}", dir.display(), t.port),
                None => match t.hostaddr {
                    Some(IpAddr::V6(ip)) => format!("[{ip}]:{}", t.port),
                    Some(ip) => format!("{ip}:{}", t.port),
                    None => format!("socket {DEFAULT_SOCKET}:{}", t.port),
                },
            })
            .collect();
        shown.join(",")
    }
}

/// The masked form: user, host, port and database; never the password.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.password().is_some() { ":****" } else { "" };
        match self.host() {
            Host::Socket(dir) => write!(
                f,
                "postgresql://{}{password}@/{}?host={}&port={}",
                self.user(),
                self.dbname(),
                dir.display(),
                self.port()
            ),
            Host::Tcp(_) => write!(f, "postgresql://{}{password}@{}/{}", self.user(), self.address(), self.dbname()),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Whether a host name (or IP literal) is this machine: it resolves, and only to loopback.
pub(crate) fn is_loopback(host: &str, port: u16) -> bool {
    let ips = address::resolve(host, port);
    !ips.is_empty() && ips.iter().all(IpAddr::is_loopback)
}

/// `<ref>.supabase.co` or `db.<ref>.supabase.co` gives `<ref>`.
pub(crate) fn supabase_host_ref(host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let rest = host.strip_suffix(".supabase.co")?;
    let rest = rest.strip_prefix("db.").unwrap_or(rest);
    (!rest.is_empty() && !rest.contains('.')).then(|| rest.to_string())
}

//! A parsed `DATABASE_URL`: where it points (every host, resolved: see [`address`]), what
//! Supabase project it names, and a display form with the password masked.

use std::{fmt, net::IpAddr, path::PathBuf, str::FromStr, time::Duration};

use anyhow::{Result, bail};
use postgres::config::{Config, Host as PgHost, LoadBalanceHosts, TargetSessionAttrs};

use crate::{
    address::{self, Endpoint},
    secrets,
};

/// Overrides the start-up timeout (connect, TLS, login, first query), in seconds, where the
/// URL has no `connect_timeout`.
pub const TIMEOUT_VAR: &str = "XTASK_CONNECT_TIMEOUT";
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
pub enum Host {
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
    pub fn host(&self) -> Host {
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
    pub fn endpoints(&self) -> Vec<Endpoint> {
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
    pub fn write_problem(&self) -> Option<String> {
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
    pub fn startup_timeout(&self) -> Duration {
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
    pub fn timeout_setting(&self) -> String {
        let secs = self.startup_timeout().as_secs_f64();
        if self.config.get_connect_timeout().is_some_and(|t| !t.is_zero()) {
            format!("connect_timeout={secs} in DATABASE_URL")
        } else {
            format!("{secs} s, set by {TIMEOUT_VAR} or connect_timeout= in DATABASE_URL")
        }
    }

    /// The driver's config for exactly one endpoint: one host (its name, for TLS), one
    /// address, one port; nothing left for the driver to choose.
    pub(crate) fn config_for(&self, endpoint: &Endpoint) -> Config {
        let mut config = Config::new();
        if let Some(user) = self.config.get_user() {
            config.user(user);
        }
        if let Some(password) = self.config.get_password() {
            config.password(password);
        }
        config.dbname(self.dbname());
        if let Some(options) = self.config.get_options() {
            config.options(options);
        }
        config.application_name(self.config.get_application_name().unwrap_or("xtask"));
        config.ssl_mode(self.config.get_ssl_mode());
        match endpoint {
            Endpoint::Tcp { name, addr, port } => {
                config.host(name.trim_start_matches('[').trim_end_matches(']')).hostaddr(*addr).port(*port);
            }
            Endpoint::Socket { dir, port } => {
                config.host_path(dir).port(*port);
            }
        }
        config.connect_timeout(self.startup_timeout());
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        config
    }

    /// A libpq connection string for external programs (`pg_dump`, `pg_restore`) that
    /// reaches exactly `endpoint`, as our own connections do. It holds no password: pass that
    /// through `PGPASSWORD`, never argv.
    pub fn conninfo_for(&self, endpoint: &Endpoint) -> String {
        let mut parts = Vec::new();
        match endpoint {
            Endpoint::Tcp { name, addr, port } => {
                parts.push(format!("host={}", quote(name.trim_start_matches('[').trim_end_matches(']'))));
                parts.push(format!("hostaddr={}", quote(&addr.to_string())));
                parts.push(format!("port={port}"));
            }
            Endpoint::Socket { dir, port } => {
                parts.push(format!("host={}", quote(&dir.to_string_lossy())));
                parts.push(format!("port={port}"));
            }
        }
        parts.push(format!("user={}", quote(self.user())));
        parts.push(format!("dbname={}", quote(self.dbname())));
        if let Some(options) = self.config.get_options() {
            parts.push(format!("options={}", quote(options)));
        }
        if endpoint.is_on_this_machine() {
            parts.push("sslmode=disable".to_string());
        } else {
            parts.push("sslmode=verify-full".to_string());
            if let Some(ca) = &self.ssl_root_cert {
                parts.push(format!("sslrootcert={}", quote(&ca.to_string_lossy())));
            }
        }
        parts.push(format!("connect_timeout={}", self.startup_timeout().as_secs().max(2)));
        parts.join(" ")
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
    pub fn with_connect_timeout(&self, timeout: Duration) -> DatabaseUrl {
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

impl FromStr for DatabaseUrl {
    type Err = anyhow::Error;

    /// Parses a URL; the error never repeats the input, which may hold a password.
    fn from_str(raw: &str) -> Result<DatabaseUrl> {
        let raw = raw.trim();
        if raw.is_empty() {
            bail!("DATABASE_URL is empty");
        }
        if let Some(password) = url_password(raw) {
            secrets::register(&password);
        }
        let is_url = raw.starts_with("postgres://") || raw.starts_with("postgresql://");
        if !is_url && !raw.contains('=') {
            bail!(
                "DATABASE_URL is not a PostgreSQL URL\nhint: it looks like postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
            );
        }
        if is_url && ambiguous_user_part(raw) {
            bail!(
                "DATABASE_URL's user or password holds an unencoded `@`, `:`, `/`, `?` or `#`, so parsers disagree on where the host starts\nhint: percent-encode them in the password (`@` is %40, `:` is %3A, `/` is %2F, `?` is %3F, `#` is %23)"
            );
        }
        let (cleaned, foreign) = split_foreign_params(raw);
        let config = Config::from_str(&cleaned).map_err(|err| {
            anyhow::anyhow!(
                "DATABASE_URL does not parse: {}\nhint: it looks like postgresql://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters in the password)",
                secrets::redact(&err.to_string())
            )
        })?;
        if let Some(password) = config.get_password() {
            secrets::register(&String::from_utf8_lossy(password));
        }
        let param = |name: &str| foreign.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Ok(DatabaseUrl {
            config,
            ssl_root_cert: param("sslrootcert").map(PathBuf::from),
            pgbouncer_flag: param("pgbouncer").is_some_and(|v| v == "true"),
        })
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
pub fn is_loopback(host: &str, port: u16) -> bool {
    let ips = address::resolve(host, port);
    !ips.is_empty() && ips.iter().all(IpAddr::is_loopback)
}

/// A URL whose user part could be read two ways: more than one `@` before the path, or a
/// `/`, `?`, `#` or second `:` before the `@`. The driver takes the first `@`; browsers
/// and Node take the last; libpq stops at `/`.
fn ambiguous_user_part(raw: &str) -> bool {
    let Some((_, rest)) = raw.split_once("://") else { return false };
    let Some(at) = rest.find('@') else { return false };
    let (user_part, after) = (&rest[..at], &rest[at + 1..]);
    let authority_rest = after.split(['/', '?']).next().unwrap_or("");
    user_part.contains(['/', '?', '#']) || user_part.matches(':').count() > 1 || authority_rest.contains('@')
}

/// A value in a libpq `key=value` string.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `<ref>.supabase.co` or `db.<ref>.supabase.co` gives `<ref>`.
pub fn supabase_host_ref(host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let rest = host.strip_suffix(".supabase.co")?;
    let rest = rest.strip_prefix("db.").unwrap_or(rest);
    (!rest.is_empty() && !rest.contains('.')).then(|| rest.to_string())
}

/// The password of a URL-form connection string, decoded, so it can be masked even when the
/// rest of the string fails to parse.
fn url_password(raw: &str) -> Option<String> {
    let rest = raw.split_once("://")?.1;
    let userinfo = rest.split(['/', '?']).next()?.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    let decoded = percent_decode(password);
    (!decoded.is_empty()).then_some(decoded)
}

fn split_foreign_params(raw: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = raw.split_once('?') else { return (raw.to_string(), Vec::new()) };
    if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
        return (raw.to_string(), Vec::new());
    }
    let mut kept = Vec::new();
    let mut foreign = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // The driver knows no verify-full: remote connections always verify the certificate
        // and the host name anyway.
        let verifying = key == "sslmode" && matches!(value, "verify-full" | "verify-ca");
        if FOREIGN_PARAMS.contains(&key) || verifying {
            foreign.push((key.to_string(), percent_decode(value)));
        } else {
            kept.push(pair);
        }
    }
    let cleaned = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    (cleaned, foreign)
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> DatabaseUrl {
        s.parse().unwrap()
    }

    #[test]
    fn pooler_urls_name_their_project() {
        let url = parse(
            "postgresql://postgres.abcdefgh:s3cr%40t@aws-0-us-east-2.pooler.supabase.com:6543/postgres?pgbouncer=true&connection_limit=1",
        );
        assert_eq!(url.project_ref().unwrap().as_deref(), Some("abcdefgh"));
        assert_eq!(url.pooler(), Some(Pooler::Transaction));
        assert_eq!(url.password().as_deref(), Some("s3cr@t"));
        assert!(!url.to_string().contains("s3cr"), "{url}");
        let session = parse("postgresql://postgres.abcdefgh:pw@aws-0-us-east-2.pooler.supabase.com:5432/postgres");
        assert_eq!(session.pooler(), Some(Pooler::Session));
    }

    #[test]
    fn direct_hosts_and_sockets() {
        let url = parse("postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres?sslrootcert=/tmp/ca.crt");
        assert_eq!(url.project_ref().unwrap().as_deref(), Some("abcdefgh"));
        assert_eq!(url.ssl_root_cert, Some(PathBuf::from("/tmp/ca.crt")));
        assert_eq!(url.pooler(), None);
        assert!(!url.is_on_this_machine());
        let socket = parse("postgresql://postgres@%2Fvar%2Frun%2Fpostgresql:5433/app");
        assert_eq!(socket.host(), Host::Socket("/var/run/postgresql".into()));
        assert!(socket.is_on_this_machine());
        assert!(parse("host=/tmp port=5555 user=postgres").is_on_this_machine());
        assert!(parse("postgresql://postgres@[::1]:5432/x").is_on_this_machine());
        assert!(parse("postgresql://postgres@127.0.0.2:5432/x").is_on_this_machine());
    }

    #[test]
    fn errors_never_repeat_the_password() {
        let err = "postgresql://u:hunter2-secret@host:notaport/db".parse::<DatabaseUrl>().unwrap_err();
        let text = format!("{err:#}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.starts_with("DATABASE_URL does not parse"), "{text}");
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
        assert!("".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn verify_full_is_accepted_as_what_remote_connections_do_anyway() {
        for mode in ["verify-full", "verify-ca"] {
            let url = parse(&format!("postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres?sslmode={mode}"));
            assert_eq!(url.project_ref().unwrap().as_deref(), Some("abcdefgh"));
            let remote = Endpoint::Tcp {
                name: "db.abcdefgh.supabase.co".into(),
                addr: "203.0.113.7".parse().unwrap(),
                port: 5432,
            };
            assert!(url.conninfo_for(&remote).contains("sslmode=verify-full"), "{mode}");
        }
    }

    #[test]
    fn two_refs_disagree() {
        let url = parse("postgresql://postgres.aaaa:pw@db.bbbb.supabase.co:5432/postgres");
        assert!(url.project_ref().is_err());
    }
}

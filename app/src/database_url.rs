//! A parsed `DATABASE_URL`: where it points, what Supabase project it names, and a
//! display form with the password masked.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use anyhow::{Result, bail};
use postgres::config::{Config, Host as PgHost};

use crate::secrets;

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
            // libpq's default when no host is given is the local socket.
            None => Host::Socket(PathBuf::from("/var/run/postgresql")),
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

    /// Loopback or a unix socket: a server on this machine.
    pub fn is_on_this_machine(&self) -> bool {
        match self.host() {
            Host::Socket(_) => true,
            Host::Tcp(host) => is_loopback(&host),
        }
    }

    /// The Supabase project ref: from a pooler user name (`postgres.<ref>`) or a direct host
    /// (`db.<ref>.supabase.co`). Both present and different is an error.
    pub fn project_ref(&self) -> Result<Option<String>> {
        let from_user = self.user().split_once('.').map(|(_, r)| r.to_ascii_lowercase());
        let from_host = match self.host() {
            Host::Tcp(host) => supabase_host_ref(&host),
            Host::Socket(_) => None,
        };
        match (from_user, from_host) {
            (Some(user_ref), Some(host_ref)) if user_ref != host_ref => {
                bail!("DATABASE_URL names two projects: user `postgres.{user_ref}` but host of `{host_ref}`")
            }
            (user_ref, host_ref) => Ok(user_ref.or(host_ref)),
        }
    }

    pub fn pooler(&self) -> Option<Pooler> {
        let Host::Tcp(host) = self.host() else { return None };
        if is_loopback(&host) {
            return None;
        }
        if self.pgbouncer_flag || self.port() == 6543 {
            return Some(Pooler::Transaction);
        }
        host.to_ascii_lowercase().ends_with(".pooler.supabase.com").then_some(Pooler::Session)
    }

    /// The config for connecting, with a default connect timeout.
    pub fn config(&self) -> Config {
        let mut config = self.config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config
    }

    /// The same URL with another connect timeout.
    pub fn with_connect_timeout(&self, timeout: Duration) -> DatabaseUrl {
        let mut url = self.clone();
        url.config.connect_timeout(timeout);
        url
    }

    /// The same server, another database.
    pub fn with_dbname(&self, dbname: &str) -> DatabaseUrl {
        let mut url = self.clone();
        url.config.dbname(dbname);
        url
    }

    /// `host:port`, or the socket folder and port.
    pub fn address(&self) -> String {
        match self.host() {
            Host::Tcp(host) if host.contains(':') => format!("[{host}]:{}", self.port()),
            Host::Tcp(host) => format!("{host}:{}", self.port()),
            Host::Socket(dir) => format!("socket {}:{}", dir.display(), self.port()),
        }
    }

    /// A libpq URL for external tools (`pg_dump`, `psql`): carries the password, so pass it
    /// through the environment (`PGPASSWORD`) rather than argv; this form leaves it out.
    pub fn libpq_url_without_password(&self) -> String {
        let host = match self.host() {
            Host::Tcp(host) if host.contains(':') => format!("[{host}]"),
            Host::Tcp(host) => host,
            Host::Socket(_) => String::new(),
        };
        let mut url = format!("postgresql://{}@{host}:{}/{}", encode(self.user()), self.port(), encode(self.dbname()));
        if let Host::Socket(dir) = self.host() {
            url.push_str(&format!("?host={}", encode(&dir.to_string_lossy())));
        } else if !self.is_on_this_machine() {
            url.push_str("?sslmode=verify-full");
            if let Some(ca) = &self.ssl_root_cert {
                url.push_str(&format!("&sslrootcert={}", encode(&ca.to_string_lossy())));
            }
        }
        url
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

pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
        if FOREIGN_PARAMS.contains(&key) {
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

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
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
    fn two_refs_disagree() {
        let url = parse("postgresql://postgres.aaaa:pw@db.bbbb.supabase.co:5432/postgres");
        assert!(url.project_ref().is_err());
    }
}

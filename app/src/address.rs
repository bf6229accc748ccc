//! Where a connection really goes: every host of a connection string, resolved to the
//! addresses the driver would use, and the one address a command pins once it has checked
//! what answers there.
//!
//! Names are judged by what they resolve to, never by how they are spelled: `localhost` is
//! this machine only because it resolves to loopback. Resolution happens once per name and
//! port in a process, so a classification and the connections after it see the same
//! addresses. Tests substitute the resolver with [`RESOLVE_VAR`]; that is safe because the
//! tool connects to exactly the addresses it classified, whatever resolved them.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, ToSocketAddrs},
    path::PathBuf,
    sync::Mutex,
};

/// `name=ip,ip;name2=ip`: replaces the system resolver for these names (tests).
pub(crate) const RESOLVE_VAR: &str = "XTASK_RESOLVE";

/// One place a connection can be made: a TCP address (with the name it was reached by, for
/// TLS), or a unix socket folder.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Tcp { name: String, addr: IpAddr, port: u16 },
    Socket { dir: PathBuf, port: u16 },
}

impl Endpoint {
    /// Loopback or a unix socket.
    pub fn is_on_this_machine(&self) -> bool {
        match self {
            Endpoint::Tcp { addr, .. } => addr.is_loopback(),
            Endpoint::Socket { .. } => true,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Endpoint::Tcp { port, .. } | Endpoint::Socket { port, .. } => *port,
        }
    }
}

/// `name (ip):port`, `ip:port` or `socket DIR:port`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { name, addr, port } => {
                let shown = match addr {
                    IpAddr::V6(v6) => format!("[{v6}]"),
                    IpAddr::V4(v4) => v4.to_string(),
                };
                let bare = name.trim_start_matches('[').trim_end_matches(']');
                if bare == addr.to_string() {
                    write!(f, "{shown}:{port}")
                } else {
                    write!(f, "{name} ({shown}):{port}")
                }
            }
            Endpoint::Socket { dir, port } => write!(f, "socket {}:{port}", dir.display()),
        }
    }
}

/// The addresses a name resolves to, in the resolver's order; empty when it does not
/// resolve. An IP literal is itself.
pub fn resolve(name: &str, port: u16) -> Vec<IpAddr> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return vec![ip];
    }
    // By name alone: what a name resolves to does not depend on the port.
    type Cache = HashMap<String, Vec<IpAddr>>;
    static CACHE: Mutex<Option<Cache>> = Mutex::new(None);
    let key = bare.to_ascii_lowercase();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(found) = cache.get(&key) {
        return found.clone();
    }
    let found = match substitute(&key) {
        Some(found) => found,
        None => system_resolve(bare, port),
    };
    cache.insert(key, found.clone());
    found
}

fn system_resolve(name: &str, port: u16) -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = Vec::new();
    for addr in (name, port).to_socket_addrs().into_iter().flatten() {
        if !found.contains(&addr.ip()) {
            found.push(addr.ip());
        }
    }
    found
}

/// The test resolver's answer for `name`, if [`RESOLVE_VAR`] names it.
fn substitute(name: &str) -> Option<Vec<IpAddr>> {
    let table = std::env::var(RESOLVE_VAR).ok()?;
    parse_table(&table).into_iter().find(|(n, _)| n == name).map(|(_, ips)| ips)
}

fn parse_table(table: &str) -> Vec<(String, Vec<IpAddr>)> {
    table
        .split(';')
        .filter_map(|entry| {
            let (name, ips) = entry.split_once('=')?;
            let ips = ips.split(',').filter_map(|ip| ip.trim().parse().ok()).collect();
            Some((name.trim().to_ascii_lowercase(), ips))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_resolve_to_themselves_and_tables_parse() {
        assert_eq!(resolve("127.0.0.1", 5432), vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(resolve("[::1]", 5432), vec!["::1".parse::<IpAddr>().unwrap()]);
        let table = parse_table("two.test=127.0.0.1,10.0.0.9; one.test=::1");
        assert_eq!(table.len(), 2);
        assert_eq!(table[0].1.len(), 2);
        assert!(!table[0].1.iter().all(IpAddr::is_loopback));
    }

    #[test]
    fn endpoints_show_name_and_address() {
        let ep = Endpoint::Tcp { name: "db.example".into(), addr: "10.1.2.3".parse().unwrap(), port: 5432 };
        assert_eq!(ep.to_string(), "db.example (10.1.2.3):5432");
        let ep = Endpoint::Tcp { name: "::1".into(), addr: "::1".parse().unwrap(), port: 5 };
        assert_eq!(ep.to_string(), "[::1]:5");
        assert!(ep.is_on_this_machine());
    }
}

//! Opening connections: to exactly one endpoint at a time, within one start-up deadline,
//! TLS with certificate verification off this machine, and the server's own account of
//! who it is ([`Identity`]) read on every connection before anything else runs.
//!
//! Only the [`guard`](crate::guard) opens connections, so every connection to a database
//! has been through the access matrix. Everything here runs as simple queries: through a
//! transaction pooler, a prepared statement and its execution may reach two different
//! server sessions.

use std::{
    path::PathBuf,
    sync::{Arc, mpsc},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use postgres::{Client, NoTls, SimpleQueryMessage, config::SslMode};

use crate::{DatabaseUrl, address::Endpoint, secrets};

/// What a server says of itself. Two connections with equal identities reached the same
/// database of the same running server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `pg_control_system()`'s system identifier, where the login may read it.
    pub system: Option<String>,
    pub database_oid: String,
    pub database: String,
    /// `pg_postmaster_start_time()`, to the microsecond.
    pub started: String,
}

/// A fresh connection and what it reached.
pub(crate) struct Opened {
    pub client: Client,
    pub endpoint: Endpoint,
    pub identity: Identity,
    /// The server process serving this session, as the server reports it.
    pub backend_pid: String,
}

/// Connects to the first endpoint of `url` that answers, in the driver's order.
pub(crate) fn open_first(url: &DatabaseUrl) -> Result<Opened> {
    let endpoints = url.endpoints();
    if endpoints.is_empty() {
        bail!(
            "DATABASE_URL's host {} does not resolve to any address\nhint: check the host name, and that this machine can reach the network",
            url.address()
        );
    }
    let mut last = None;
    for endpoint in endpoints {
        match open_at(url, &endpoint, url.startup_timeout()) {
            Ok(opened) => return Ok(opened),
            Err(err) => last = Some(err),
        }
    }
    Err(last.expect("at least one endpoint was tried"))
}

/// Connects to exactly `endpoint`, giving up after `timeout` for the whole start-up:
/// connect, TLS, login and the identity query.
pub(crate) fn open_at(url: &DatabaseUrl, endpoint: &Endpoint, timeout: Duration) -> Result<Opened> {
    let mut config = url.config_for(endpoint);
    let tls = if endpoint.is_on_this_machine() {
        None
    } else {
        if config.get_ssl_mode() == SslMode::Disable {
            bail!(
                "sslmode=disable for remote host {endpoint}\nhint: remote databases are reached over TLS only; remove sslmode"
            );
        }
        config.ssl_mode(SslMode::Require);
        Some(tls(url)?)
    };
    let (send, receive) = mpsc::channel();
    // The driver's own timeout covers only the TCP connect: a listener that accepts and
    // never answers (a stuck tunnel) would hang it. The thread is left behind on timeout;
    // the command ends with the error.
    std::thread::spawn(move || {
        let result = match tls {
            None => config.connect(NoTls),
            Some(tls) => config.connect(tls),
        }
        .and_then(|mut client| {
            let (identity, pid) = read_identity(&mut client)?;
            Ok((client, identity, pid))
        });
        let _ = send.send(result);
    });
    match receive.recv_timeout(timeout) {
        Ok(Ok((client, identity, backend_pid))) => {
            Ok(Opened { client, endpoint: endpoint.clone(), identity, backend_pid })
        }
        Ok(Err(err)) => Err(explain(url, endpoint, &err)),
        Err(_) => bail!(
            "no answer from {endpoint} within {:.0} s (connect, TLS, login and the first query)\nhint: is a tunnel or proxy stuck, or the server overloaded? the limit is {}",
            timeout.as_secs_f64(),
            url.timeout_setting()
        ),
    }
}

/// Whether the server session behind `first` is shared with other clients between
/// transactions, as a transaction pooler (PgBouncer, Supavisor, RDS Proxy) does: a second
/// client given the same server process, or the first client moved to another one.
pub(crate) fn shares_sessions(url: &DatabaseUrl, first: &mut Opened) -> Result<bool> {
    let probe_timeout = url.startup_timeout().min(Duration::from_secs(3));
    // A second client that cannot get in (a full session pool, max_connections) cannot be
    // sharing the first one's server session.
    if let Ok(second) = open_at(url, &first.endpoint, probe_timeout) {
        let shared = second.backend_pid == first.backend_pid;
        drop(second);
        if shared {
            return Ok(true);
        }
    }
    for _ in 0..2 {
        if backend_pid(&mut first.client)? != first.backend_pid {
            return Ok(true);
        }
    }
    Ok(false)
}

fn read_identity(client: &mut Client) -> Result<(Identity, String), postgres::Error> {
    let rows = client.simple_query(
        // Schema-qualified: a search path that a database's or a login's settings moved in
        // front of `pg_catalog` must not choose these functions.
        "select case when pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'execute')
                     then (select system_identifier::text from pg_catalog.pg_control_system()) end,
                (select oid::text from pg_catalog.pg_database where datname = pg_catalog.current_database()),
                pg_catalog.current_database()::text, pg_catalog.pg_postmaster_start_time()::text,
                pg_catalog.pg_backend_pid()::text",
    )?;
    let row = rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    });
    let get = |i: usize| row.and_then(|r| r.get(i)).map(str::to_string);
    let identity = Identity {
        system: get(0),
        database_oid: get(1).unwrap_or_default(),
        database: get(2).unwrap_or_default(),
        started: get(3).unwrap_or_default(),
    };
    Ok((identity, get(4).unwrap_or_default()))
}

fn backend_pid(client: &mut Client) -> Result<String> {
    let rows = client
        .simple_query("select pg_catalog.pg_backend_pid()::text")
        .context("cannot ask the server its process id")?;
    Ok(rows
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default())
}

/// One line, with a hint, for the usual ways a connection fails.
fn explain(url: &DatabaseUrl, endpoint: &Endpoint, err: &postgres::Error) -> anyhow::Error {
    let detail = secrets::redact(&error_chain(err));
    let lower = detail.to_ascii_lowercase();
    let hint = if lower.contains("password authentication failed") {
        "check the password in the environment's secrets overlay (env/.env.NAME.local)"
    } else if lower.contains("does not exist") {
        "check the database and user names in DATABASE_URL"
    } else if lower.contains("certificate") || lower.contains("tls") {
        "set PGSSLROOTCERT (or sslrootcert=) to the project's CA file, from the Supabase dashboard's database settings"
    } else if endpoint.is_on_this_machine() {
        "is the server running? `cargo xtask db up` starts the local one; `cargo xtask db status` shows it"
    } else {
        "is the host reachable from here, and the project not paused?"
    };
    anyhow::anyhow!("cannot connect to {endpoint} as {}: {detail}\nhint: {hint}", url.user())
}

/// An error and its causes on one line: `postgres::Error`'s own text is only "db error".
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}

fn tls(url: &DatabaseUrl) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A broken system certificate is skipped, as every TLS client does.
        let _ = roots.add(cert);
    }
    let ca_file = url
        .ssl_root_cert
        .clone()
        .or_else(|| std::env::var_os("PGSSLROOTCERT").map(PathBuf::from))
        .filter(|path| !path.as_os_str().is_empty() && path.as_os_str() != "system");
    if let Some(path) = ca_file {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let certs = CertificateDer::pem_file_iter(&path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|err| anyhow::anyhow!("cannot read CA file {}: {err}", path.display()))?;
        if certs.is_empty() {
            bail!("CA file {} holds no PEM certificate", path.display());
        }
        for cert in certs {
            roots.add(cert).with_context(|| format!("CA file {} holds an invalid certificate", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup failed")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

//! Opening connections: TLS with certificate verification for remote hosts, plain for this
//! machine; the transaction-mode pooler refused; errors in one line with a hint.
//!
//! Only the [`guard`](crate::guard) opens connections, so every connection to a database
//! has been through the access matrix.

use std::{path::PathBuf, sync::Arc};

use anyhow::{Context, Result, bail};
use postgres::{Client, NoTls, config::SslMode};

use crate::{DatabaseUrl, database_url::Pooler, secrets};

pub(crate) fn open(url: &DatabaseUrl) -> Result<Client> {
    if url.pooler() == Some(Pooler::Transaction) {
        bail!(
            "{} is Supabase's transaction-mode pooler, which breaks prepared statements, advisory locks and COPY\nhint: use the session pooler (port 5432 on the same host) or the direct host db.<ref>.supabase.co:5432",
            url.address()
        );
    }
    let mut config = url.config();
    let client = if url.is_on_this_machine() {
        config.connect(NoTls)
    } else {
        if config.get_ssl_mode() == SslMode::Disable {
            bail!(
                "sslmode=disable for remote host {}\nhint: remote databases are reached over TLS only; remove sslmode",
                url.address()
            );
        }
        config.ssl_mode(SslMode::Require);
        config.connect(tls(url)?)
    };
    client.map_err(|err| explain(url, &err))
}

/// One line, with a hint, for the usual ways a connection fails.
fn explain(url: &DatabaseUrl, err: &postgres::Error) -> anyhow::Error {
    let detail = secrets::redact(&error_chain(err));
    let lower = detail.to_ascii_lowercase();
    let hint = if lower.contains("password authentication failed") {
        "check the password in the environment's secrets overlay (env/.env.NAME.local)"
    } else if lower.contains("does not exist") {
        "check the database and user names in DATABASE_URL"
    } else if lower.contains("certificate") || lower.contains("tls") {
        "set PGSSLROOTCERT (or sslrootcert=) to the project's CA file, from the Supabase dashboard's database settings"
    } else if url.is_on_this_machine() {
        "is the server running? `cargo xtask db up` starts the local one; `cargo xtask db status` shows it"
    } else {
        "is the host reachable from here, and the project not paused?"
    };
    anyhow::anyhow!("cannot connect to {} as {}: {detail}\nhint: {hint}", url.address(), url.user())
}

pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
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

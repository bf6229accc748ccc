//! Parsing a connection string (URL or `key=value` form): the parameters Prisma and libpq
//! accept that the `postgres` crate does not, the ambiguous user parts it refuses, and the
//! password registered as a secret before anything can print it.

use std::{path::PathBuf, str::FromStr};

use anyhow::{Result, bail};
use postgres::config::Config;

use super::{DatabaseUrl, FOREIGN_PARAMS};
use crate::secrets;

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

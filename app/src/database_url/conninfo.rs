//! The driver's config and the libpq conninfo for exactly one endpoint: one host (its
//! name, for TLS), one address, one port; nothing left for the driver to choose.

use std::time::Duration;

use postgres::config::Config;

use super::DatabaseUrl;
use crate::address::Endpoint;

impl DatabaseUrl {
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
    pub(crate) fn conninfo_for(&self, endpoint: &Endpoint) -> String {
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
}

/// A value in a libpq `key=value` string.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

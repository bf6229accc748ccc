//! Client programs (`pg_dump`, `pg_restore`, `psql`) aimed at exactly the server a guard
//! checked, with nothing from libpq's environment.

use std::path::PathBuf;

use anyhow::{Result, bail};
use xshell::{Shell, cmd};

use super::Binaries;

/// A PostgreSQL client program (`pg_dump`, `pg_restore`, `psql`) pointed at exactly the
/// server the guard checked: libpq's environment (every `PG*` variable: `PGHOST`,
/// `PGHOSTADDR`, `PGSERVICE`, `PGOPTIONS`, ...) is cleared, the pinned address is passed
/// explicitly, and the password goes through `PGPASSWORD`, never the command line. Remote
/// hosts need `verify-full` TLS with a CA file, as our own connections do.
pub fn client_cmd<'a>(sh: &'a Shell, tool: &str, args: &app::guard::ClientArgs) -> Result<xshell::Cmd<'a>> {
    let program =
        Binaries::find().map(|b| b.dir.join(tool)).ok().filter(|p| p.is_file()).unwrap_or_else(|| PathBuf::from(tool));
    let remote = args.conninfo.contains("sslmode=verify-full");
    let ca_file = std::env::var_os("PGSSLROOTCERT").filter(|v| !v.is_empty());
    if remote && !args.conninfo.contains("sslrootcert=") && ca_file.is_none() {
        bail!(
            "{tool} verifies the server's certificate and needs the project's CA file\nhint: set PGSSLROOTCERT (or sslrootcert= in DATABASE_URL) to the CA certificate from the Supabase dashboard"
        );
    }
    let dbname = format!("--dbname={}", args.conninfo);
    let mut cmd = cmd!(sh, "{program} {dbname}").quiet();
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd = cmd.env_remove(key);
        }
    }
    // Nothing from the user's files either: no service file, no password file.
    cmd = cmd.env("PGSYSCONFDIR", "/nonexistent").env("PGSERVICEFILE", "/nonexistent").env("PGPASSFILE", "/dev/null");
    if let (true, Some(ca_file)) = (remote && !args.conninfo.contains("sslrootcert="), ca_file) {
        cmd = cmd.env("PGSSLROOTCERT", ca_file);
    }
    if let Some(password) = &args.password {
        cmd = cmd.env("PGPASSWORD", password);
    }
    Ok(cmd)
}

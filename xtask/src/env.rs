//! `cargo xtask env`: which environment, why, and whether its configuration holds.

use std::{process::Command, time::Duration};

use anyhow::{Result, bail};
use app::{
    Environment, Guard,
    database_url::Pooler,
    guard::op,
    matrix::{self, Operation},
    secrets,
};

use crate::{
    context::{self, data, status},
    flags::{self, EnvCommand, Global},
    ui::{Align, Table},
};

impl flags::Env {
    pub(crate) fn run(self, global: &Global) -> Result<()> {
        match self.command.unwrap_or(EnvCommand::Show) {
            EnvCommand::Show => show(&context::guard(global)?),
            EnvCommand::Check { timeout } => check(global, Duration::from_secs(timeout)),
            EnvCommand::Matrix => {
                print_matrix()?;
                Ok(())
            }
        }
    }
}

fn show(guard: &Guard) -> Result<()> {
    let resolved = guard.resolved();
    let files: Vec<String> = resolved.files.iter().map(|f| f.display().to_string()).collect();
    data(format!("environment     {}", resolved.environment))?;
    data(format!("decided by      {}", resolved.rule))?;
    data(format!(
        "files loaded    {}",
        if files.is_empty() { "none (process environment)".to_string() } else { files.join(", ") }
    ))?;
    match &resolved.database {
        Some(url) => {
            data(format!("database        {url}"))?;
            data(format!("  address       {}", url.address()))?;
            data(format!("  database      {}", url.dbname()))?;
            data(format!("  user          {}", url.user()))?;
            data(format!("  password      {}", if url.password().is_some() { secrets::MASK } else { "(none)" }))?;
            data(format!("  pooler        {}", pooler_label(url.pooler())))?;
            data(format!(
                "  tls           {}",
                if url.is_on_this_machine() { "no (this machine)" } else { "required, certificate verified" }
            ))?;
        }
        None => data("database        (DATABASE_URL not set)")?,
    }
    data(format!("project ref     {}", resolved.project_ref.as_deref().unwrap_or("-")))?;
    data(format!(
        "supabase url    {}",
        resolved.var("NEXT_PUBLIC_SUPABASE_URL").map(secrets::mask_url).unwrap_or_else(|| "(not set)".to_string())
    ))?;
    for (label, key) in [
        ("anon key", "NEXT_PUBLIC_SUPABASE_ANON_KEY"),
        ("service key", "SUPABASE_SERVICE_ROLE_KEY"),
        ("stage-sync key", "STAGE_SYNC_KEY"),
    ] {
        let shown = if resolved.var(key).is_some() { secrets::MASK } else { "(not set)" };
        data(format!("{label:<15} {shown}"))?;
    }
    let s = guard.settings();
    data(format!(
        "settings        allow_test_data={} require_backup={} require_confirmation={}",
        s.allow_test_data, s.require_backup, s.require_confirmation
    ))?;
    match probe(guard, Duration::from_secs(3)) {
        Ok(found) => {
            data(format!(
                "stamp           {}",
                found.stamp.map(|e| e.to_string()).unwrap_or_else(|| "(unstamped)".to_string())
            ))?;
            data(format!("server          {}", found.version))?;
            data(format!("  reached at    {}", found.endpoint))?;
            if found.shared {
                data(
                    "  sessions      shared between clients (a transaction pooler): only read-only inspection runs here",
                )?;
            }
        }
        Err(err) => data(format!("server          unreachable: {}", first_line(&format!("{err:#}"))))?,
    }
    Ok(())
}

/// What the server says, through read-only transactions.
struct Probe {
    stamp: Option<Environment>,
    version: String,
    /// Where the guard pinned the server, and whether its sessions are shared.
    endpoint: String,
    shared: bool,
}

fn probe(guard: &Guard, timeout: Duration) -> Result<Probe> {
    let target = guard.read::<op::Inspect>()?;
    let mut conn = target.connect_with_timeout(timeout)?;
    let version: String = conn.transaction()?.query_one("select current_setting('server_version')", &[])?.get(0);
    let endpoint = target.endpoint().map(|e| e.to_string()).unwrap_or_default();
    Ok(Probe {
        stamp: conn.stamp,
        version: format!("PostgreSQL {version}"),
        endpoint,
        shared: target.shares_sessions() == Some(true),
    })
}

fn check(global: &Global, timeout: Duration) -> Result<()> {
    let mut problems = Vec::new();
    let mut report = |ok: bool, line: String| {
        data(format!("{}  {line}", if ok { "ok  " } else { "FAIL" }))?;
        if !ok {
            problems.push(line);
        }
        anyhow::Ok(())
    };
    let guard = match context::guard(global) {
        Ok(guard) => guard,
        Err(err) => {
            report(false, first_line(&format!("{err:#}")))?;
            bail!("1 problem in the configuration");
        }
    };
    let resolved = guard.resolved();
    let env = resolved.environment;
    report(true, format!("environment {env}: URLs parse and agree"))?;

    let supabase = is_supabase_project(resolved);
    let required: &[&str] = if supabase {
        &["DATABASE_URL", "NEXT_PUBLIC_SUPABASE_URL", "NEXT_PUBLIC_SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY"]
    } else {
        &["DATABASE_URL"]
    };
    let missing: Vec<&str> = required.iter().copied().filter(|k| resolved.var(k).is_none()).collect();
    let kind = if supabase {
        "a Supabase project: its API URL and keys are needed"
    } else {
        "not a Supabase project (no project ref in the URLs, no NEXT_PUBLIC_SUPABASE_URL): no Supabase keys needed"
    };
    report(
        missing.is_empty(),
        if missing.is_empty() {
            format!("required keys present ({kind})")
        } else {
            format!("missing keys: {} ({kind})", missing.join(", "))
        },
    )?;

    for problem in secret_files_problems() {
        report(false, problem)?;
    }

    match probe(&guard, timeout) {
        Ok(found) => {
            report(true, format!("database reachable ({})", found.version))?;
            if found.shared {
                report(
                    false,
                    format!(
                        "{} shares server sessions between clients (a transaction pooler): migrations, syncs and backups need the direct host or the pooler's session mode (port 5432)",
                        found.endpoint
                    ),
                )?;
            }
            match found.stamp {
                Some(stamp) if stamp == env => report(true, format!("stamp is {stamp}"))?,
                Some(stamp) => report(false, format!("the database is stamped {stamp}, not {env}"))?,
                None => report(false, format!("the database has no environment stamp: {}", app::stamp::hint(env)))?,
            }
        }
        Err(err) => report(false, first_line(&format!("{err:#}")))?,
    }
    match problems.len() {
        0 => {
            status("configuration ok");
            Ok(())
        }
        1 => bail!("1 problem in the configuration"),
        n => bail!("{n} problems in the configuration"),
    }
}

/// Whether the environment is a Supabase project, whose app needs the API URL and keys: its
/// URLs name a Supabase project ref (`db.<ref>.supabase.co`, the pooler's `postgres.<ref>`,
/// `https://<ref>.supabase.co`), or its env files set `NEXT_PUBLIC_SUPABASE_URL` (the local
/// Supabase stack's included). A production or staging on plain PostgreSQL is neither.
fn is_supabase_project(resolved: &app::Resolved) -> bool {
    resolved.project_ref.is_some() || resolved.var("NEXT_PUBLIC_SUPABASE_URL").is_some()
}

/// Secret env files that git would commit: not ignored, or already tracked.
fn secret_files_problems() -> Vec<String> {
    let root = context::project_root();
    let Ok(entries) = std::fs::read_dir(root.join("env")) else { return Vec::new() };
    let mut problems = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let secret = name.starts_with(".env.") && !name.ends_with(".example");
        if !secret {
            continue;
        }
        let path = format!("env/{name}");
        let git = |args: &[&str]| Command::new("git").current_dir(&root).args(args).output();
        let Ok(ignored) = git(&["check-ignore", "-q", &path]) else { continue };
        if ignored.status.code() == Some(128) {
            continue; // not a git checkout
        }
        if !ignored.status.success() {
            problems.push(format!("{path} holds secrets but is not git-ignored (add it to .gitignore)"));
        }
        if git(&["ls-files", "--error-unmatch", &path]).is_ok_and(|out| out.status.success()) {
            problems.push(format!("{path} holds secrets but is tracked by git (git rm --cached {path})"));
        }
    }
    problems.sort();
    problems
}

fn print_matrix() -> Result<()> {
    let envs = Environment::ALL;
    let columns: Vec<(&str, Align)> =
        std::iter::once("operation").chain(envs.iter().map(|env| env.name())).map(|name| (name, Align::Left)).collect();
    let mut table = Table::new(&columns);
    for op in Operation::ALL {
        table.row(std::iter::once(op.label()).chain(envs.iter().map(|&env| matrix::access(op, env).label())));
    }
    table.print_data()
}

fn pooler_label(pooler: Option<Pooler>) -> &'static str {
    match pooler {
        None => "none",
        Some(Pooler::Session) => "session mode (port 5432)",
        Some(Pooler::Transaction) => "transaction mode (port 6543): refused for our commands",
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

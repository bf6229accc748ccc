//! Fail-safe environment detection from `DATABASE_URL` and `NEXT_PUBLIC_SUPABASE_URL`.
//!
//! Unlike a substring test, this classifies the parsed host, port, user and project ref of
//! each URL, requires the two to agree, and counts anything remote that is not registered
//! as staging as production: a misconfiguration can only make a command more careful.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::{
    DatabaseUrl, Environment, Settings,
    database_url::{is_loopback, supabase_host_ref},
};

/// What detection found, and the rule that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Detection {
    pub(crate) environment: Environment,
    pub(crate) rule: String,
    pub(crate) project_ref: Option<String>,
}

/// Detects the environment from the variables; `Ok(None)` when neither URL is set.
pub(crate) fn detect(vars: &BTreeMap<String, String>, settings: &Settings) -> Result<Option<Detection>> {
    let db = non_empty(vars, "DATABASE_URL");
    let api = non_empty(vars, "NEXT_PUBLIC_SUPABASE_URL");
    let from_db = db.map(|raw| classify_database(&raw.parse::<DatabaseUrl>()?, settings)).transpose()?;
    let from_api = api.map(|raw| classify_api(raw, settings)).transpose()?;
    match (from_db, from_api) {
        (None, None) => Ok(None),
        (Some(d), None) | (None, Some(d)) => Ok(Some(d)),
        (Some(db), Some(api)) => {
            let same_machine = db.environment.is_on_this_machine() && api.environment.is_on_this_machine();
            let same_project = db.environment == api.environment && db.project_ref == api.project_ref;
            if !same_machine && !same_project {
                bail!(
                    "DATABASE_URL and NEXT_PUBLIC_SUPABASE_URL disagree: the database is {} ({}), the API is {} ({})\nhint: both must point at the same Supabase project",
                    describe(&db),
                    db.rule,
                    describe(&api),
                    api.rule
                );
            }
            // The database decides between local and test: it is what commands touch.
            Ok(Some(db))
        }
    }
}

fn describe(d: &Detection) -> String {
    match &d.project_ref {
        Some(r) => format!("{} project `{r}`", d.environment),
        None => d.environment.to_string(),
    }
}

fn non_empty<'a>(vars: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    vars.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn classify_database(url: &DatabaseUrl, settings: &Settings) -> Result<Detection> {
    let project_ref = url.project_ref()?;
    // A user name that names a registered project decides, wherever the host is: a tunnel
    // or proxy on loopback to production is still production.
    if let Some(project) = project_ref.as_deref().and_then(|r| settings.project(r)) {
        return Ok(Detection {
            environment: project.environment,
            rule: format!(
                "DATABASE_URL's user names project `{}`, registered as {}",
                project.project_ref, project.environment
            ),
            project_ref,
        });
    }
    if url.is_on_this_machine() {
        let local_port = settings.local.port;
        let (environment, rule) = if url.port() == local_port {
            (Environment::Local, format!("DATABASE_URL is on this machine, port {local_port} (the local cluster)"))
        } else {
            (
                Environment::Test,
                format!("DATABASE_URL is on this machine, port {} (not the local cluster's {local_port})", url.port()),
            )
        };
        return Ok(Detection { environment, rule, project_ref: None });
    }
    Ok(classify_remote(project_ref, &url.address(), "DATABASE_URL", settings))
}

fn classify_api(raw: &str, settings: &Settings) -> Result<Detection> {
    let parsed = url::Url::parse(raw).map_err(|err| {
        anyhow::anyhow!(
            "NEXT_PUBLIC_SUPABASE_URL does not parse: {err}\nhint: it looks like https://PROJECT_REF.supabase.co"
        )
    })?;
    let Some(host) = parsed.host_str() else {
        bail!("NEXT_PUBLIC_SUPABASE_URL has no host\nhint: it looks like https://PROJECT_REF.supabase.co");
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    if is_loopback(host, port) {
        return Ok(Detection {
            environment: Environment::Local,
            rule: "NEXT_PUBLIC_SUPABASE_URL is on this machine".to_string(),
            project_ref: None,
        });
    }
    Ok(classify_remote(supabase_host_ref(host), host, "NEXT_PUBLIC_SUPABASE_URL", settings))
}

fn classify_remote(project_ref: Option<String>, address: &str, var: &str, settings: &Settings) -> Detection {
    let registered = project_ref.as_deref().and_then(|r| settings.project(r));
    let (environment, rule) = match (&project_ref, registered) {
        (Some(r), Some(project)) => {
            (project.environment, format!("{var} names project `{r}`, registered as {}", project.environment))
        }
        (Some(r), None) => (
            Environment::Production,
            format!("{var} names project `{r}`, which is not registered: unknown remote projects count as production"),
        ),
        (None, _) => (
            Environment::Production,
            format!("{var} points at remote host {address}: unknown remote hosts count as production"),
        ),
    };
    Detection { environment, rule, project_ref }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Environment::*;

    const PROD: &str = "yovbdmjwrrgardkgrenc";

    fn settings() -> Settings {
        let text = include_str!("../../env/environments.toml").replace("STAGING_REF", "stagingref123");
        Settings::parse(&text).unwrap()
    }

    /// One row of the detection table: the variables, then the environment or the start of
    /// the error.
    fn check(db: Option<&str>, api: Option<&str>, expected: std::result::Result<Option<Environment>, &str>) {
        let mut vars = BTreeMap::new();
        if let Some(db) = db {
            vars.insert("DATABASE_URL".to_string(), db.to_string());
        }
        if let Some(api) = api {
            vars.insert("NEXT_PUBLIC_SUPABASE_URL".to_string(), api.to_string());
        }
        let got = detect(&vars, &settings());
        match (got, expected) {
            (Ok(d), Ok(env)) => assert_eq!(d.map(|d| d.environment), env, "{db:?} {api:?}"),
            (Err(err), Err(start)) => {
                let text = format!("{err:#}");
                assert!(text.starts_with(start), "{db:?} {api:?}: {text}");
                assert!(!text.contains("pw123"), "{text}");
            }
            (got, expected) => panic!("{db:?} {api:?}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn detection_table() {
        let prod_pooler = format!(
            "postgresql://postgres.{PROD}:pw123@aws-0-us-east-2.pooler.supabase.com:6543/postgres?pgbouncer=true"
        );
        let prod_direct = format!("postgresql://postgres:pw123@db.{PROD}.supabase.co:5432/postgres");
        let prod_api = format!("https://{PROD}.supabase.co");
        let staging_pooler =
            "postgresql://postgres.stagingref123:pw123@aws-0-us-east-2.pooler.supabase.com:5432/postgres";
        let staging_direct = "postgresql://postgres:pw123@db.stagingref123.supabase.co:5432/postgres";
        let staging_api = "https://stagingref123.supabase.co";
        let local = "postgresql://postgres:postgres@localhost:54322/postgres";

        check(Some(&prod_pooler), Some(&prod_api), Ok(Some(Production)));
        check(Some(&prod_direct), Some(&prod_api), Ok(Some(Production)));
        check(Some(&prod_direct), None, Ok(Some(Production)));
        check(None, Some(&prod_api), Ok(Some(Production)));
        check(Some(staging_pooler), Some(staging_api), Ok(Some(Staging)));
        check(Some(staging_direct), Some(staging_api), Ok(Some(Staging)));
        check(Some(staging_direct), None, Ok(Some(Staging)));
        check(None, Some(staging_api), Ok(Some(Staging)));
        check(Some(local), Some("http://localhost:54321"), Ok(Some(Local)));
        check(Some("postgresql://postgres:pw123@127.0.0.1:54322/postgres"), None, Ok(Some(Local)));
        check(Some("postgresql://postgres@127.0.0.1:40001/postgres"), None, Ok(Some(Test)));
        check(Some("postgresql://postgres@%2Ftmp%2Fpg:40001/postgres"), None, Ok(Some(Test)));
        check(Some("host=/var/run/postgresql port=54322 user=postgres"), None, Ok(Some(Local)));
        check(Some("postgresql://postgres@[::1]:54322/postgres"), Some("http://127.0.0.1:54321"), Ok(Some(Local)));
        // The design's substring test would call these staging or local; they are not.
        check(Some("postgresql://postgres:pw123@staging.example.com:5432/postgres"), None, Ok(Some(Production)));
        check(None, Some("https://my-staging-app.supabase.co"), Ok(Some(Production)));
        check(Some("postgresql://postgres:pw123@db.unknownref.supabase.co:5432/postgres"), None, Ok(Some(Production)));
        check(Some("postgresql://postgres:pw123@localhost.evil.com:54322/postgres"), None, Ok(Some(Production)));
        check(Some(&format!("postgresql://postgres.{PROD}:pw123@127.0.0.1:6000/postgres")), None, Ok(Some(Production)));
        check(Some("postgresql://postgres.stagingref123:pw123@localhost:54322/postgres"), None, Ok(Some(Staging)));
        // Every host counts: one remote host among loopback ones makes the URL remote.
        check(Some("postgresql://postgres:pw123@127.0.0.1:5000,10.0.0.8:5432/postgres"), None, Ok(Some(Production)));
        check(Some("postgresql://postgres:pw123@127.0.0.1:5000,[::1]:5001/postgres"), None, Ok(Some(Test)));
        // What the driver connects to is the hostaddr, whatever the host is called.
        check(
            Some("postgresql://postgres:pw123@localhost:5000/postgres?hostaddr=10.0.0.8"),
            None,
            Ok(Some(Production)),
        );
        check(
            Some("postgresql://postgres:pw123@db.example.com:5000/postgres?hostaddr=127.0.0.1"),
            None,
            Ok(Some(Test)),
        );
        check(None, None, Ok(None));
        check(Some("  "), Some(""), Ok(None));
        // Disagreements and malformed values are errors.
        check(Some(local), Some(&prod_api), Err("DATABASE_URL and NEXT_PUBLIC_SUPABASE_URL disagree"));
        check(Some(staging_pooler), Some(&prod_api), Err("DATABASE_URL and NEXT_PUBLIC_SUPABASE_URL disagree"));
        check(
            Some(&prod_direct),
            Some("http://localhost:54321"),
            Err("DATABASE_URL and NEXT_PUBLIC_SUPABASE_URL disagree"),
        );
        check(
            Some("postgresql://postgres.stagingref123:pw123@db.yovbdmjwrrgardkgrenc.supabase.co:5432/postgres"),
            None,
            Err("DATABASE_URL names two projects"),
        );
        check(Some("postgresql://postgres:pw123@host:port/db"), None, Err("DATABASE_URL does not parse"));
        check(Some("not a url"), None, Err("DATABASE_URL is not a PostgreSQL URL"));
        check(None, Some("not a url"), Err("NEXT_PUBLIC_SUPABASE_URL does not parse"));
    }
}

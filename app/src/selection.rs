//! Choosing the environment: `--env NAME`, else `APP_ENV`, else detection, else local; then
//! loading its env files and checking that the URLs really point where the name says.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

use crate::{DatabaseUrl, Environment, Settings, detect, secrets};

/// The outcome: which environment, why, and the variables in force. Only this crate makes
/// one: a guard's authority comes from it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Resolved {
    pub environment: Environment,
    /// The rule that decided, for `cargo xtask env`.
    pub rule: String,
    /// Env files loaded, in order, relative to the project root.
    pub files: Vec<PathBuf>,
    /// Things the user should know: exported variables that were overridden, say.
    pub warnings: Vec<String>,
    pub vars: BTreeMap<String, String>,
    pub database: Option<DatabaseUrl>,
    pub project_ref: Option<String>,
}

impl Resolved {
    /// The database URL, or an error saying where to set it.
    pub fn database(&self) -> Result<&DatabaseUrl> {
        self.database.as_ref().with_context(|| {
            format!(
                "DATABASE_URL is not set for {}\nhint: set it in env/.env.{} (see env/.env.{}.example)",
                self.environment, self.environment, self.environment
            )
        })
    }

    /// A throwaway `test` database that a command made itself (a cluster of its own on this
    /// machine): no env files, no detection. Anything not on this machine is refused.
    pub(crate) fn throwaway(database: DatabaseUrl) -> Result<Resolved> {
        if !database.is_on_this_machine() {
            bail!("a throwaway database must be on this machine, not {}", database.address());
        }
        Ok(Resolved {
            environment: Environment::Test,
            rule: "a throwaway cluster made by this command".to_string(),
            files: Vec::new(),
            warnings: Vec::new(),
            vars: BTreeMap::new(),
            database: Some(database),
            project_ref: None,
        })
    }

    /// A production dump restored into a cluster of its own by this command, read as the
    /// production source of a stage-sync: environment production (read-only everywhere),
    /// with the variables the sync needs (`STAGE_SYNC_KEY`). Anything not on this machine
    /// is refused: a remote database is never taken for a restored dump.
    pub(crate) fn restored_dump(database: DatabaseUrl, vars: BTreeMap<String, String>) -> Result<Resolved> {
        if !database.is_on_this_machine() {
            bail!("a restored dump must be on this machine, not {}", database.address());
        }
        for (key, value) in &vars {
            if secrets::is_secret_name(key) {
                secrets::register(value);
            }
        }
        Ok(Resolved {
            environment: Environment::Production,
            rule: "a production dump restored into a throwaway cluster by this command".to_string(),
            files: Vec::new(),
            warnings: Vec::new(),
            vars,
            database: Some(database),
            project_ref: None,
        })
    }

    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str).filter(|v| !v.trim().is_empty())
    }
}

/// Resolves the environment. `flag` is `--env`; `process` the process environment.
pub fn resolve(
    root: &Path,
    settings: &Settings,
    flag: Option<Environment>,
    process: &BTreeMap<String, String>,
) -> Result<Resolved> {
    let app_env = match process.get("APP_ENV").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        Some(raw) => Some(raw.parse::<Environment>().context("APP_ENV is invalid")?),
        None => None,
    };
    let (named, rule) = match (flag, app_env) {
        (Some(flag), Some(app_env)) if flag != app_env => {
            bail!("--env {flag} contradicts APP_ENV={app_env}\nhint: unset APP_ENV, or drop --env")
        }
        (Some(flag), _) => (Some(flag), format!("--env {flag}")),
        (None, Some(app_env)) => (Some(app_env), format!("APP_ENV={app_env}")),
        (None, None) => match detect::detect(process, settings)? {
            Some(_) => (None, String::new()),
            // Nothing says where to go: the local environment is the one that cannot hurt.
            None => (Some(Environment::Local), "no --env, APP_ENV or DATABASE_URL: local by default".to_string()),
        },
    };

    let mut vars = process.clone();
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    if let Some(env) = named {
        for file in env_files(root, env)? {
            let loaded = read_env_file(&root.join(&file))?;
            for (key, value) in loaded {
                if let Some(exported) = process.get(&key).filter(|exported| **exported != value) {
                    let _ = exported;
                    warnings.push(format!(
                        "{key} exported in the shell differs from {}; using the file's value",
                        file.display()
                    ));
                }
                vars.insert(key, value);
            }
            files.push(file);
        }
    }
    for (key, value) in &vars {
        if secrets::is_secret_name(key) {
            secrets::register(value);
        }
    }
    if let Some(api) = vars.get("NEXT_PUBLIC_SUPABASE_URL") {
        secrets::register_url_password(api);
    }

    let detection = detect::detect(&vars, settings)?;
    let (environment, rule, project_ref) = match (named, detection) {
        (Some(env), Some(found)) => {
            let agrees =
                found.environment == env || (env.is_on_this_machine() && found.environment.is_on_this_machine());
            if !agrees {
                bail!(
                    "{rule} selects {env}, but the URLs point at {}: {}\nhint: fix env/.env.{env}, or choose the environment the URLs are for",
                    found.environment,
                    found.rule
                );
            }
            (env, format!("{rule}; {}", found.rule), found.project_ref)
        }
        (Some(env), None) => {
            (env, format!("{rule}; no DATABASE_URL or NEXT_PUBLIC_SUPABASE_URL to check it against"), None)
        }
        (None, Some(found)) => (found.environment, format!("detected: {}", found.rule), found.project_ref),
        (None, None) => unreachable!("with nothing to detect, local is named above"),
    };

    let database = match vars.get("DATABASE_URL").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        Some(raw) => Some(raw.parse::<DatabaseUrl>()?),
        None => None,
    };
    Ok(Resolved { environment, rule, files, warnings, vars, database, project_ref })
}

/// The files an environment loads, relative to the root: `env/.env.NAME` (local falls back
/// to its committed example), then the git-ignored secrets overlay `env/.env.NAME.local`.
/// Staging and production without a file use the process environment (CI's secret store);
/// the URLs are still checked against the name.
pub(crate) fn env_files(root: &Path, env: Environment) -> Result<Vec<PathBuf>> {
    let main = PathBuf::from(format!("env/.env.{env}"));
    let example = PathBuf::from(format!("env/.env.{env}.example"));
    let overlay = PathBuf::from(format!("env/.env.{env}.local"));
    let mut files = Vec::new();
    if root.join(&main).is_file() {
        files.push(main);
    } else if env == Environment::Local && root.join(&example).is_file() {
        files.push(example);
    }
    if root.join(&overlay).is_file() {
        files.push(overlay);
    }
    Ok(files)
}

/// Reads a dotenv file. Errors name the file and line but never quote it: the line may
/// hold a secret.
pub(crate) fn read_env_file(path: &Path) -> Result<Vec<(String, String)>> {
    let shown = path.file_name().map(|n| format!("env/{}", n.to_string_lossy())).unwrap_or_default();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {shown}"))?;
    let mut out = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok(pair) => out.push(pair),
            Err(dotenvy::Error::LineParse(line, _)) => {
                let number = text.lines().position(|l| l.trim() == line.trim() || l.contains(line.trim()));
                let at = number.map(|n| format!(" line {}", n + 1)).unwrap_or_default();
                bail!("{shown}:{at} is malformed\nhint: each line is KEY=value, KEY=\"value\" or a # comment");
            }
            Err(err) => {
                bail!("{shown} is malformed: {}\nhint: each line is KEY=value", secrets::redact(&err.to_string()))
            }
        }
    }
    Ok(out)
}

/// The process environment as a map (lossy for non-UTF-8 values, which no URL uses).
pub(crate) fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: PathBuf,
    }

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let dir = std::env::temp_dir().join(format!("app-selection-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("env")).unwrap();
            std::fs::write(
                dir.join("env/.env.local.example"),
                "DATABASE_URL=postgresql://postgres:postgres@localhost:54322/postgres\n",
            )
            .unwrap();
            Fixture { dir }
        }
        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.dir.join("env").join(name), text).unwrap();
        }
        fn resolve(&self, flag: Option<Environment>, process: &[(&str, &str)]) -> Result<Resolved> {
            let settings = Settings::parse(include_str!("../../env/environments.toml")).unwrap();
            let process = process.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            resolve(&self.dir, &settings, flag, &process)
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_stray_exported_url_does_not_redirect() {
        let fx = Fixture::new("stray");
        let stray = "postgresql://postgres:pw@db.yovbdmjwrrgardkgrenc.supabase.co:5432/postgres";
        let resolved = fx.resolve(Some(Environment::Local), &[("DATABASE_URL", stray)]).unwrap();
        assert_eq!(resolved.environment, Environment::Local);
        assert_eq!(resolved.database().unwrap().port(), 54322);
        assert_eq!(resolved.warnings.len(), 1, "{:?}", resolved.warnings);
        assert!(!resolved.warnings[0].contains("pw"), "{:?}", resolved.warnings);
    }

    #[test]
    fn order_of_choice() {
        let fx = Fixture::new("order");
        let test_url = "postgresql://postgres@127.0.0.1:40000/postgres";
        assert_eq!(fx.resolve(None, &[]).unwrap().environment, Environment::Local);
        assert_eq!(fx.resolve(None, &[("DATABASE_URL", test_url)]).unwrap().environment, Environment::Test);
        let resolved = fx.resolve(None, &[("APP_ENV", "test"), ("DATABASE_URL", test_url)]).unwrap();
        assert_eq!(resolved.environment, Environment::Test);
        assert!(resolved.rule.starts_with("APP_ENV=test"), "{}", resolved.rule);
        let err = fx.resolve(Some(Environment::Local), &[("APP_ENV", "production")]).unwrap_err();
        assert!(err.to_string().starts_with("--env local contradicts APP_ENV=production"), "{err}");
        let err = fx.resolve(None, &[("APP_ENV", "prod")]).unwrap_err();
        assert!(format!("{err:#}").starts_with("APP_ENV is invalid: unknown environment"), "{err:#}");
    }

    #[test]
    fn a_production_url_in_the_staging_file_is_refused() {
        let fx = Fixture::new("contradiction");
        fx.write(".env.staging", "DATABASE_URL=\"postgresql://postgres.yovbdmjwrrgardkgrenc:topsecret@aws-0-us-east-2.pooler.supabase.com:5432/postgres\"\n");
        let err = format!("{:#}", fx.resolve(Some(Environment::Staging), &[]).unwrap_err());
        assert!(err.starts_with("--env staging selects staging, but the URLs point at production"), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
    }

    #[test]
    fn overlays_and_malformed_files() {
        let fx = Fixture::new("overlay");
        fx.write(".env.test", "DATABASE_URL=postgresql://postgres@127.0.0.1:40000/postgres\n");
        fx.write(".env.test.local", "SUPABASE_SERVICE_ROLE_KEY=overlay-key-123\n");
        let resolved = fx.resolve(Some(Environment::Test), &[]).unwrap();
        assert_eq!(resolved.files, [PathBuf::from("env/.env.test"), PathBuf::from("env/.env.test.local")]);
        assert_eq!(resolved.var("SUPABASE_SERVICE_ROLE_KEY"), Some("overlay-key-123"));
        fx.write(".env.test.local", "GOOD=1\nthis line is broken secret-value-xyz\n");
        let err = format!("{:#}", fx.resolve(Some(Environment::Test), &[]).unwrap_err());
        assert!(err.starts_with("env/.env.test.local: line 2 is malformed"), "{err}");
        assert!(!err.contains("secret-value-xyz"), "{err}");
    }
}

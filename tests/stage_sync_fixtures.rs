//! What the `stage_sync*` suites share: the key, the planted personal data and the source
//! rows holding it, a production-stamped source with a test target (`setup`, and
//! `production_with` for a test-only migration of another shape), the project's production
//! env files, the repository's rules, and the per-table digests and COPY formats that the
//! two-format suites compare.

use crate::harness::{Project, TestCluster};

pub(crate) const KEY: &str = "Stage-Sync-Key-For-Tests-0123456789";
pub(crate) const OTHER_KEY: &str = "Another-Stage-Sync-Key-9876543210";

/// Personal data planted in the source; none of it may reach the target.
pub(crate) const PLANTED: &[&str] = &[
    "Margaret",
    "Thistlewood",
    "margaret.thistlewood@realclinic.com",
    "Bartholomew",
    "Quillfeather",
    "bart.q@realclinic.com",
    "742 Evergreen Terrace",
    "Shelbyville",
    "(217) 555-0187",
    "62704",
    "Sunnyvale Family Dental",
    "patient complained about the bill",
    "ya29.real-access-token",
];

pub(crate) const SOURCE_DATA: &str = r#"
insert into auth.users (id, email) values
  ('a0000000-0000-4000-8000-000000000001', 'margaret.thistlewood@realclinic.com'),
  ('a0000000-0000-4000-8000-000000000002', 'bart.q@realclinic.com');
insert into public.clinics (id, name) values ('c0000000-0000-4000-8000-000000000001', 'Sunnyvale Family Dental');
insert into public.locations (id, clinic_id, name, address_line1, city, state, postal_code, phone)
  values ('10000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', 'Sunnyvale Family Dental',
          '742 Evergreen Terrace', 'Shelbyville', 'IL', '62704', '(217) 555-0187');
insert into public.users (id, auth_id, email, name) values
  ('b0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'margaret.thistlewood@realclinic.com', 'Margaret Thistlewood'),
  ('b0000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000002', 'bart.q@realclinic.com', 'Bartholomew Quillfeather');
insert into public.user_clinic_roles (user_id, clinic_id, role) values
  ('b0000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', 'owner');
insert into public.providers (id, clinic_id, first_name, last_name, email, provider_type) values
  ('d0000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', 'Margaret', 'Thistlewood', 'margaret.thistlewood@realclinic.com', 'dentist'),
  ('d0000000-0000-4000-8000-000000000002', 'c0000000-0000-4000-8000-000000000001', 'Bartholomew', 'Quillfeather', 'bart.q@realclinic.com', 'hygienist');
insert into public.data_sources (clinic_id, name, source_type, spreadsheet_id, access_token, refresh_token)
  values ('c0000000-0000-4000-8000-000000000001', 'Main sheet', 'google_sheets', '1AbCdEf', 'ya29.real-access-token', 'real-refresh');
insert into public.daily_dentist_production (clinic_id, location_id, provider_id, date, production, notes)
  select 'c0000000-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000001',
         date '2026-01-01' + i, 1000 + i, case when i = 3 then 'patient complained about the bill' end
  from generate_series(0, 499) i;
"#;

/// A production-like source and a test target, both migrated; the source holds the
/// planted data.
pub(crate) struct Setup {
    pub source: TestCluster,
    pub target: TestCluster,
    pub project: Project,
}

pub(crate) fn setup() -> Setup {
    let source = TestCluster::start();
    let target = TestCluster::start();
    let mut project = Project::new();
    project.with_migrations().secret(KEY).secret(OTHER_KEY);
    std::fs::write(project.root.join("env/stage-sync.toml"), repo_rules()).unwrap();
    production_source(&mut project, &source);
    project.xtask(&["migrate", "up", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"]).ok();
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &target.url()).ok();
    source.client().batch_execute(SOURCE_DATA).unwrap();
    Setup { source, target, project }
}

impl Setup {
    pub fn sync(&self, extra: &[&str]) -> crate::harness::Run<'_> {
        let mut args = vec!["stage-sync", "--from", "production", "--to", "test", "--yes"];
        args.extend_from_slice(extra);
        self.project.xtask(&args).env("DATABASE_URL", &self.target.url())
    }

    /// Replaces `from` with `to` in the project's rules file; `from` must be there.
    pub fn set_rule(&self, from: &str, to: &str) {
        let path = self.project.root.join("env/stage-sync.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from}");
        std::fs::write(path, text.replace(from, to)).unwrap();
    }

    /// Asserts that no planted value is in the target's public schema: as a whole value of
    /// any column (or JSON string), or inside one. Short digit strings (a ZIP code) are only
    /// looked for whole: inside timestamps and ids they turn up by chance.
    pub fn assert_no_planted(&self) {
        let mut client = self.target.client();
        let tables: Vec<String> = client
            .query("select format('%I.%I', schemaname, tablename) from pg_tables where schemaname = 'public'", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for table in tables {
            let sql = format!(
                "select v.value #>> '{{}}' from {table} x, jsonb_each(to_jsonb(x)) v where v.value is not null
                 union all
                 select j.value from {table} x, jsonb_each(to_jsonb(x)) v, jsonb_each_text(case when jsonb_typeof(v.value) = 'object' then v.value end) j"
            );
            for row in client.query(&sql, &[]).unwrap() {
                let Some(value) = row.get::<_, Option<String>>(0) else { continue };
                for planted in PLANTED {
                    let short_number = planted.chars().all(|c| c.is_ascii_digit());
                    let found = if short_number { value == *planted } else { value.contains(planted) };
                    assert!(!found, "planted `{planted}` reached {table}");
                }
            }
        }
    }
}

pub(crate) const AUTH_USERS_RULES: &str = r#"
[tables."auth.users".columns]
instance_id = "keep"
id = "keep"
aud = "keep"
role = "keep"
email = "email"
encrypted_password = "null"
email_confirmed_at = { rule = "keep", reviewed = true } # a timestamp
invited_at = "keep"
confirmation_token = "null"
confirmation_sent_at = "keep"
recovery_token = "null"
recovery_sent_at = "keep"
last_sign_in_at = "keep"
raw_app_meta_data = "keep"
raw_user_meta_data = { rule = "jsonb", keys = { email = "email", name = "full_name", full_name = "full_name" } }
is_super_admin = "keep"
phone = "phone"
phone_confirmed_at = { rule = "keep", reviewed = true } # a timestamp
banned_until = "keep"
deleted_at = "keep"
is_anonymous = "keep"
created_at = "keep"
updated_at = "keep"
email_change_token_new = "null"
email_change = "null"
email_change_sent_at = { rule = "keep", reviewed = true } # a timestamp
phone_change = "null"
phone_change_token = "null"
phone_change_sent_at = { rule = "keep", reviewed = true } # a timestamp
email_change_token_current = "null"
email_change_confirm_status = { rule = "keep", reviewed = true } # a number
reauthentication_token = "null"
reauthentication_sent_at = "keep"
is_sso_user = "keep"
"#;

/// A production-stamped source and a test target, both migrated with the repository's
/// migrations plus one test-only migration (`label`), the rules extended for it, and
/// `data` loaded into the source.
pub(crate) fn production_with(
    label: &str,
    up: &str,
    down: &str,
    rules: &str,
    data: &[&str],
) -> (TestCluster, TestCluster, Project) {
    let (source, target) = (TestCluster::start(), TestCluster::start());
    let mut project = Project::new();
    project.with_migrations().secret(KEY);
    // Numbered far from the real sequence, so the next real migration never clashes.
    project.migration(&format!("{label}.up.sql"), up).migration(&format!("{label}.down.sql"), down);
    // What production already holds, not a migration under review: the lint baseline
    // accepts it, so `migrate up --env production` does too.
    project.xtask(&["migrate", "lint", "--update-baseline", &format!("migrations/{label}.up.sql")]).ok();
    std::fs::write(project.root.join("env/stage-sync.toml"), format!("{}\n{rules}", repo_rules())).unwrap();
    production_source(&mut project, &source);
    project.xtask(&["migrate", "up", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"]).ok();
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &target.url()).ok();
    for batch in data {
        source.client().batch_execute(batch).unwrap();
    }
    (source, target, project)
}

/// The repository's `env/stage-sync.toml`.
pub(crate) fn repo_rules() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/stage-sync.toml")).unwrap()
}

/// A project (no migrations) whose production is `source`: see [`production_source`].
pub(crate) fn production_project(source: &TestCluster) -> Project {
    let mut project = Project::new();
    project.secret(KEY);
    production_source(&mut project, source);
    project
}

/// Makes `source` the project's production: its env files (URL and `STAGE_SYNC_KEY`) and
/// its `production` stamp.
pub(crate) fn production_source(project: &mut Project, source: &TestCluster) {
    project.env_file(".env.production", &format!("DATABASE_URL={}\n", source.production_url()));
    project.env_file(".env.production.local", &format!("STAGE_SYNC_KEY={KEY}\n"));
    source.stamp("production");
}

/// Each of `tables` (in `public`) as `name: N rows, digest` of its rows in a fixed order.
pub(crate) fn digests(cluster: &TestCluster, tables: &[&str]) -> Vec<String> {
    tables
        .iter()
        .map(|t| {
            cluster.strings(&format!(
                "select format('%s: %s rows, %s', '{t}', count(*), md5(coalesce(string_agg(x::text, '|' order by x::text), '')))
                 from public.{t} x"
            ))[0]
                .clone()
        })
        .collect()
}

/// Each of `tables` (in `public`) with its `copy_format` in the `--json` summary.
pub(crate) fn formats(stdout: &str, tables: &[&str]) -> Vec<(String, String)> {
    let summary: serde_json::Value = serde_json::from_str(stdout).expect("one JSON summary");
    tables
        .iter()
        .map(|t| {
            let table = summary["tables"].as_array().unwrap().iter().find(|v| v["table"] == format!("public.{t}"));
            let format = table.unwrap_or_else(|| panic!("{t} was not copied"))["copy_format"].as_str().unwrap();
            (t.to_string(), format.to_string())
        })
        .collect()
}

/// Waits (up to 2 minutes) until a sync run with `XTASK_TEST_PAUSE_BEFORE_SWAP=pause` has
/// written that file: it holds its shadow, loaded and verified, just before the swap.
pub(crate) fn wait_for_pause(pause: &std::path::Path) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !pause.exists() {
        assert!(std::time::Instant::now() < until, "the sync never reached its swap");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

//! Stage-sync into a Supabase-shaped target: GoTrue's `auth` (its partial unique indexes on
//! tokens, the tables that reference `auth.users`), storage rows owned by users, `''` in
//! every rule and both COPY formats, and JSON keys under an allowlist.

use crate::{
    harness::TestCluster,
    stage_sync_fixtures::{AUTH_USERS_RULES, PLANTED, Setup, production_with, setup},
};

/// What GoTrue's migrations add to a project beyond the bootstrap's `auth`, written here in
/// their shape: partial unique indexes on the token columns (`''` is outside them), and the
/// per-user tables of PKCE, SSO, WebAuthn and OAuth; and storage's `owner` keys.
const GOTRUE: &str = r#"
create unique index confirmation_token_idx on auth.users (confirmation_token) where confirmation_token !~ '^[0-9 ]*$';
create unique index recovery_token_idx on auth.users (recovery_token) where recovery_token !~ '^[0-9 ]*$';
create unique index email_change_token_new_idx on auth.users (email_change_token_new) where email_change_token_new !~ '^[0-9 ]*$';
create unique index reauthentication_token_idx on auth.users (reauthentication_token) where reauthentication_token !~ '^[0-9 ]*$';
create table auth.flow_state (
  id uuid primary key, user_id uuid, auth_code text not null, code_challenge text not null,
  provider_type text not null, authentication_method text not null, created_at timestamptz, updated_at timestamptz);
create table auth.sso_providers (id uuid primary key, resource_id text, created_at timestamptz, updated_at timestamptz);
create table auth.saml_relay_states (
  id uuid primary key, sso_provider_id uuid not null references auth.sso_providers (id) on delete cascade,
  request_id text not null, for_email text, flow_state_id uuid references auth.flow_state (id) on delete cascade);
create table auth.webauthn_credentials (
  id uuid primary key, user_id uuid not null references auth.users (id) on delete cascade,
  credential_id bytea not null, public_key bytea not null, created_at timestamptz not null default now());
create table auth.oauth_clients (id uuid primary key, client_id text not null unique, client_name text);
create table auth.oauth_authorizations (
  id uuid primary key, client_id uuid not null references auth.oauth_clients (id) on delete cascade,
  user_id uuid references auth.users (id) on delete cascade, authorization_code text);
create table auth.oauth_consents (
  id uuid primary key, user_id uuid not null references auth.users (id) on delete cascade,
  client_id uuid not null references auth.oauth_clients (id) on delete cascade, scopes text not null);
alter table storage.buckets add constraint buckets_owner_fkey foreign key (owner) references auth.users (id);
alter table storage.objects add constraint objects_owner_fkey foreign key (owner) references auth.users (id);
"#;

/// Production's users as GoTrue keeps them: `''` in the tokens nobody asked for, one
/// recovery pending, a bcrypt hash, and their identities and sessions (never copied).
const PRODUCTION_AUTH: &str = r#"
update auth.users set confirmation_token = '', recovery_token = '', email_change_token_new = '', email_change = '',
  phone_change = '', phone_change_token = '', email_change_token_current = '', reauthentication_token = '',
  email_confirmed_at = now(), encrypted_password = '$2a$10$productionHashOfMargaretsRealPasswordXXXXXXXXXXXXXXXX';
update auth.users set recovery_token = 'live-recovery-token-0123456789abcdef' where id = 'a0000000-0000-4000-8000-000000000002';
insert into auth.identities (provider_id, user_id, identity_data, provider)
  select id::text, id, jsonb_build_object('sub', id::text, 'email', email), 'email' from auth.users;
insert into auth.sessions (id, user_id) values ('e1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001');
"#;

/// Staging's own state before the sync: a tester with every per-user row GoTrue keeps, the
/// platform's configuration, and storage rows owned by the tester and by a user an earlier
/// sync copied.
const STAGING_AUTH: &str = r#"
insert into auth.users (id, email, encrypted_password) values ('f0000000-0000-4000-8000-000000000001', 'staging.tester@example.org', 'tester-hash'),
  ('a0000000-0000-4000-8000-000000000001', 'earlier.sync@example.com', null);
insert into auth.identities (provider_id, user_id, identity_data, provider)
  values ('f0000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000001', '{"sub": "f0000000-0000-4000-8000-000000000001"}', 'email');
insert into auth.sessions (id, user_id) values ('f1000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000001');
insert into auth.refresh_tokens (token, user_id, session_id) values ('rt-1', 'f0000000-0000-4000-8000-000000000001', 'f1000000-0000-4000-8000-000000000001');
insert into auth.mfa_factors (id, user_id, factor_type, status) values ('f2000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000001', 'totp', 'verified');
insert into auth.mfa_challenges (id, factor_id, ip_address) values ('f3000000-0000-4000-8000-000000000001', 'f2000000-0000-4000-8000-000000000001', '127.0.0.1');
insert into auth.mfa_amr_claims (session_id, authentication_method, id) values ('f1000000-0000-4000-8000-000000000001', 'password', 'f4000000-0000-4000-8000-000000000001');
insert into auth.one_time_tokens (id, user_id, token_type, token_hash, relates_to) values ('f5000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000001', 'recovery_token', 'abc', 'x');
insert into auth.flow_state (id, user_id, auth_code, code_challenge, provider_type, authentication_method)
  values ('f6000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000001', 'code', 'challenge', 'email', 'magiclink');
insert into auth.sso_providers (id, resource_id) values ('f7000000-0000-4000-8000-000000000001', 'okta');
insert into auth.saml_relay_states (id, sso_provider_id, request_id, flow_state_id)
  values ('f8000000-0000-4000-8000-000000000001', 'f7000000-0000-4000-8000-000000000001', 'req', 'f6000000-0000-4000-8000-000000000001');
insert into auth.webauthn_credentials (id, user_id, credential_id, public_key) values ('f9000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000001', '\x01', '\x02');
insert into auth.oauth_clients (id, client_id) values ('fa000000-0000-4000-8000-000000000001', 'reporting-app');
insert into auth.oauth_authorizations (id, client_id, user_id) values ('fb000000-0000-4000-8000-000000000001', 'fa000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000001');
insert into auth.oauth_consents (id, user_id, client_id, scopes) values ('fc000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000001', 'fa000000-0000-4000-8000-000000000001', 'read');
insert into storage.buckets (id, name, owner) values ('avatars', 'avatars', 'f0000000-0000-4000-8000-000000000001');
insert into storage.objects (bucket_id, name, owner) values
  ('avatars', 'tester/a.png', 'f0000000-0000-4000-8000-000000000001'),
  ('avatars', 'margaret/b.png', 'a0000000-0000-4000-8000-000000000001');
"#;

const LOGIN_PASSWORD: &str = "Staging-Only-Login-Pw-2718";

fn counts(cluster: &TestCluster, tables: &[&str]) -> Vec<i64> {
    let mut client = cluster.client();
    tables.iter().map(|t| client.query_one(&format!("select count(*) from {t}"), &[]).unwrap().get(0)).collect()
}

/// The rules of the repository with `auth.users` copied and the app's link to it kept.
fn with_auth_users(s: &Setup) {
    let rules = s.project.root.join("env/stage-sync.toml");
    let text = std::fs::read_to_string(&rules).unwrap().replace("auth_id = \"null\"", "auth_id = \"keep\"");
    std::fs::write(&rules, format!("{text}\n{AUTH_USERS_RULES}")).unwrap();
}

#[test]
fn a_sync_into_a_supabase_project_empties_gotrue_gives_identities_and_keeps_storage_consistent() {
    let mut s = setup();
    s.project.secret(LOGIN_PASSWORD);
    with_auth_users(&s);
    for cluster in [&s.source, &s.target] {
        cluster.client().batch_execute(GOTRUE).unwrap();
    }
    s.source.client().batch_execute(PRODUCTION_AUTH).unwrap();
    s.target.client().batch_execute(STAGING_AUTH).unwrap();
    let per_user = [
        "auth.sessions",
        "auth.refresh_tokens",
        "auth.mfa_factors",
        "auth.mfa_challenges",
        "auth.mfa_amr_claims",
        "auth.one_time_tokens",
        "auth.flow_state",
        "auth.saml_relay_states",
        "auth.webauthn_credentials",
        "auth.oauth_authorizations",
        "auth.oauth_consents",
    ];
    assert!(counts(&s.target, &per_user).iter().all(|n| *n == 1), "the fixture fills every table");
    let dry = s.sync(&["--dry-run"]).ok();
    assert!(dry.stdout.contains("each user with an email gets one email identity"), "{}", dry.stdout);
    let out = s.sync(&[]).env("STAGE_SYNC_LOGIN_PASSWORD", LOGIN_PASSWORD).ok();
    assert!(out.stderr.contains("auth: 2 copied user(s) with an email identity"), "{}", out.stderr);

    assert_eq!(counts(&s.target, &per_user), vec![0; per_user.len()], "per-user rows are emptied");
    assert_eq!(counts(&s.target, &["auth.users", "auth.sso_providers", "auth.oauth_clients"]), [2, 1, 1]);
    let mut target = s.target.client();
    // One email identity per copied user, in GoTrue's shape, with the masked email.
    let identities: i64 = target
        .query_one(
            "select count(*) from auth.identities i join auth.users u on u.id = i.user_id
             where i.provider = 'email' and i.provider_id = u.id::text and i.identity_data ->> 'sub' = u.id::text
               and i.identity_data ->> 'email' = u.email and i.email = lower(u.email)
               and (i.identity_data -> 'email_verified')::boolean and u.email like '%@example.com'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(identities, 2);
    // Nothing pending: every token '' (so GoTrue's partial unique indexes hold), and the
    // staging password signs in every copied user; no production hash is left.
    let row = target
        .query_one(
            "select count(*) filter (where recovery_token = '' and confirmation_token = '' and email_change = ''
                                        and email_change_token_new = '' and reauthentication_token = ''),
                    count(*) filter (where encrypted_password = extensions.crypt($1, encrypted_password)),
                    string_agg(encrypted_password, ',')
             from auth.users",
            &[&LOGIN_PASSWORD],
        )
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (2, 2));
    assert!(!row.get::<_, String>(2).contains("productionHash"));
    // Storage keeps its rows: the tester's references (gone) are NULL, the copied user's stay.
    let owners: Vec<String> = target
        .query(
            "select name || '=' || coalesce(owner::text, 'null') from storage.objects
             union all select 'bucket=' || coalesce(owner::text, 'null') from storage.buckets order by 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(owners, ["bucket=null", "margaret/b.png=a0000000-0000-4000-8000-000000000001", "tester/a.png=null"]);
    let keys: i64 = target
        .query_one(
            "select count(*) from pg_constraint where conname in ('objects_owner_fkey', 'buckets_owner_fkey') and convalidated",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(keys, 2, "storage's keys are back, validated");
    let auth_text: String =
        target.query_one("select string_agg(to_jsonb(u)::text, ' ') from auth.users u", &[]).unwrap().get(0);
    for planted in PLANTED {
        assert!(!auth_text.contains(planted), "planted `{planted}` reached auth.users");
    }
    s.assert_no_planted();
    // Rules that keep the hash, and no staging password: no password is left at all.
    let rules = s.project.root.join("env/stage-sync.toml");
    let text = std::fs::read_to_string(&rules).unwrap();
    let kept =
        text.replace("encrypted_password = \"null\"", "encrypted_password = { rule = \"keep\", reviewed = true }");
    assert_ne!(kept, text);
    std::fs::write(&rules, kept).unwrap();
    let out = s.sync(&[]).ok();
    assert!(out.stderr.contains("no STAGE_SYNC_LOGIN_PASSWORD"), "{}", out.stderr);
    let hashes: i64 = target.query_one("select count(encrypted_password) from auth.users", &[]).unwrap().get(0);
    assert_eq!(hashes, 0, "no production hash stays");
}

#[test]
fn an_unsynced_table_that_cannot_lose_its_user_stops_the_sync_unchanged() {
    let s = setup();
    with_auth_users(&s);
    s.target
        .client()
        .batch_execute(
            "insert into auth.users (id, email) values ('f0000000-0000-4000-8000-000000000001', 'staging.tester@example.org');
             create schema crm;
             create table crm.notes (id int primary key, user_id uuid not null references auth.users (id));
             insert into crm.notes values (1, 'f0000000-0000-4000-8000-000000000001');",
        )
        .unwrap();
    let before = s.target.checksum_of("auth");
    s.sync(&[]).fails("crm.notes references auth.users (foreign key notes_user_id_fkey, NOT NULL) but is not synced");
    assert_eq!(s.target.checksum_of("auth"), before);
    assert_eq!(counts(&s.target, &["crm.notes"]), [1]);
}

const BLANKS_UP: &str = r#"-- '' in every rule kind, under partial unique indexes as GoTrue's; JSON keys.
create table public.blanks (
  id int primary key,
  r_null text, r_redact text, r_email text, r_first text, r_last text, r_full text, r_phone text,
  r_street text, r_city text, r_zip text, r_company text, r_text text, r_uuid text, j jsonb, arr text[]
);
create unique index blanks_uuid_key on public.blanks (r_uuid) where r_uuid !~ '^[0-9 ]*$';
create unique index blanks_phone_key on public.blanks (r_phone) where r_phone <> '';
create table public.prefs (id int primary key, settings jsonb not null);
"#;

const BLANKS_DOWN: &str = "drop table public.blanks, public.prefs;\n";

const BLANKS_RULES: &str = r#"
[tables."public.blanks".columns]
id = "keep"
r_null = "null"
r_redact = "redact"
r_email = "email"
r_first = "first_name"
r_last = "last_name"
r_full = "full_name"
r_phone = "phone"
r_street = "street_address"
r_city = "city"
r_zip = "zip"
r_company = "company"
r_text = "text"
r_uuid = "uuid"
j = { rule = "jsonb", allow = ["theme"], others = "text" }
arr = "email"

[tables."public.prefs".columns]
id = "keep"
settings = { rule = "jsonb", allow = ["theme"], others = "text" }
"#;

/// The text columns of `public.blanks`.
const TEXT_COLUMNS: &str =
    "r_null, r_redact, r_email, r_first, r_last, r_full, r_phone, r_street, r_city, r_zip, r_company, r_text, r_uuid";

fn blanks_data() -> String {
    let n = TEXT_COLUMNS.split(", ").count();
    let empties = vec!["''"; n].join(", ");
    let nulls = vec!["null"; n].join(", ");
    let real = (0..n).map(|i| format!("'Margaret Thistlewood {i}'")).collect::<Vec<_>>().join(", ");
    format!(
        "insert into public.blanks (id, {TEXT_COLUMNS}, j, arr) values
           (1, {empties}, '[\"\", {{\"theme\": \"\"}}]', '{{\"\",\"\"}}'),
           (2, {empties}, '\"\"', '{{\"\"}}'),
           (3, {empties}, '{{\"theme\": \"\"}}', '{{}}'),
           (4, {nulls}, null, null),
           (5, {nulls}, null, '{{NULL,\"\"}}'),
           (6, {real}, '{{\"note\": \"Margaret\"}}', '{{margaret.thistlewood@realclinic.com,\"\"}}');"
    )
}

#[test]
fn empty_strings_stay_empty_under_every_rule_in_both_copy_formats() {
    let data = blanks_data();
    let (source, target, project) = production_with("9301_blanks", BLANKS_UP, BLANKS_DOWN, BLANKS_RULES, &[&data]);
    let expected = source.strings(&format!(
        "select concat_ws('|', id, {TEXT_COLUMNS}, j::text, arr::text) from public.blanks where id <= 5 order by id"
    ));
    for format in ["binary", "text"] {
        let mut run = project
            .xtask(&["stage-sync", "--from", "production", "--to", "test", "--yes", "--json"])
            .env("DATABASE_URL", &target.url());
        if format == "text" {
            run = run.env("XTASK_STAGE_SYNC_FORMAT", "text");
        }
        let out = run.ok();
        let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let blanks = summary["tables"].as_array().unwrap().iter().find(|t| t["table"] == "public.blanks").unwrap();
        assert_eq!(blanks["copy_format"], format, "{summary}");
        let copied = target.strings(&format!(
            "select concat_ws('|', id, {TEXT_COLUMNS}, j::text, arr::text) from public.blanks where id <= 5 order by id"
        ));
        assert_eq!(copied, expected, "'' and NULL pass every rule unchanged ({format})");
        // The row with values is masked in every column: none is '' or the original.
        let masked: Vec<String> = target.strings(&format!(
            "select coalesce(v, 'NULL') from public.blanks, unnest(array[{TEXT_COLUMNS}]) v where id = 6"
        ));
        assert_eq!(masked[0], "NULL", "the null rule");
        assert!(masked[1..].iter().all(|v| !v.is_empty() && !v.contains("Thistlewood")), "{masked:?}");
        let arr = target.strings("select arr::text from public.blanks where id = 6");
        assert!(arr[0].ends_with(",\"\"}") && !arr[0].contains("realclinic"), "{arr:?}");
    }
}

/// An attack: a personal value as an object key, under an allowlist that does not name it.
#[test]
fn jsonb_keys_outside_the_allowlist_never_reach_the_target() {
    let data = "insert into public.prefs values
        (1, '{\"theme\": \"dark\", \"contacts\": {\"carol@real.example\": \"friend\"}}'),
        (2, '{\"carol@real.example\": 7, \"theme\": \"light\"}');";
    let (source, target, project) = production_with("9301_blanks", BLANKS_UP, BLANKS_DOWN, BLANKS_RULES, &[data]);
    let before = source.strings("select settings::text from public.prefs order by id");
    project
        .xtask(&["stage-sync", "--from", "production", "--to", "test", "--yes"])
        .env("DATABASE_URL", &target.url())
        .ok();
    // Read back independently: every key and string at any depth.
    let found = target.strings(
        "with recursive walk(v) as (
           select settings from public.prefs
           union all
           select c.value from walk, lateral (
             select e.value from jsonb_each(case when jsonb_typeof(walk.v) = 'object' then walk.v end) e
             union all
             select a.value from jsonb_array_elements(case when jsonb_typeof(walk.v) = 'array' then walk.v end) a) c)
         select k from walk, jsonb_object_keys(case when jsonb_typeof(v) = 'object' then v end) k
         union all select v #>> '{}' from walk where jsonb_typeof(v) = 'string'",
    );
    for original in ["carol@real.example", "contacts", "friend"] {
        assert!(!found.iter().any(|v| v.contains(original)), "`{original}` reached the target: {found:?}");
    }
    assert!(found.contains(&"theme".to_string()) && found.contains(&"dark".to_string()), "{found:?}");
    // Equal keys stay equal: carol's key is one pseudonym in both documents.
    let carol: Vec<String> = target.strings(
        "select k from public.prefs p, jsonb_object_keys(p.settings) top,
           jsonb_object_keys(case when p.id = 1 then p.settings -> top else jsonb_build_object(top, 1) end) k
         where top <> 'theme' order by p.id",
    );
    assert_eq!(carol.len(), 2, "{carol:?}");
    assert_eq!(carol[0], carol[1]);
    assert_eq!(
        source.strings("select settings::text from public.prefs order by id"),
        before,
        "the source is only read"
    );
}

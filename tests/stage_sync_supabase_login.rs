//! Stage-sync into a Supabase project as its `postgres` login: no superuser, not a member
//! of `supabase_auth_admin` (which owns GoTrue's tables), with the grants Supabase gives it
//! on `auth` and storage, allowed to set `session_replication_role`, and owning the app's
//! schemas. The app hangs a signup trigger on `auth.users`, a policy on `storage.objects`
//! and a table in `supabase_realtime`. Such a login syncs GoTrue's tables in place and the
//! app's through the shadow (the mixed path): readers of the app wait only for the swap, a
//! kill or a broken key between the two leaves staging as it was.

use crate::{
    harness::{Run, TestCluster, test_password},
    stage_sync_fixtures::{AUTH_USERS_RULES, Setup, setup, wait_for_pause},
};

const LOGIN_PASSWORD: &str = "Staging-Only-Login-Pw-3141";

/// Supabase's `postgres`, as `syncer`: the app's schemas and tables its own, GoTrue's not.
const SUPABASE_LOGIN: &str = r#"
create role syncer login createrole createdb bypassrls;
grant set on parameter session_replication_role to syncer;
grant create on database postgres to syncer;
grant anon, authenticated, service_role to syncer;
grant usage on schema auth, storage, extensions to syncer;
grant all on all tables in schema auth, storage to syncer;
-- As on hosted Supabase, its postgres owns the realtime publication.
alter publication supabase_realtime owner to syncer;
do $$
declare r record;
begin
  for r in select n.nspname from pg_namespace n where n.nspname in ('public', 'app_meta', 'app_private') loop
    execute format('alter schema %I owner to syncer', r.nspname);
  end loop;
  for r in select c.oid::regclass as name, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname in ('public', 'app_meta', 'app_private') and c.relkind in ('r', 'p', 'v', 'm', 'S')
             and not exists (select from pg_depend d where d.objid = c.oid and d.deptype in ('a', 'i')
                             and d.classid = 'pg_class'::regclass and c.relkind = 'S') loop
    execute format('alter table %s owner to syncer', r.name);
  end loop;
  execute (select string_agg(format('alter table auth.%I owner to supabase_auth_admin', tablename), '; ')
           from pg_tables where schemaname = 'auth');
end
$$;
"#;

/// The app's hooks on Supabase's tables: a signup trigger on `auth.users` (into a table of
/// its own), a policy on `storage.objects`, a synced table in `supabase_realtime`.
pub(crate) const APP_HOOKS: &str = r#"
create schema hooks;
create table hooks.signups (id uuid primary key);
create function hooks.on_signup() returns trigger language plpgsql security definer set search_path = '' as $$
begin insert into hooks.signups (id) values (new.id); return new; end $$;
create trigger on_auth_user_created after insert on auth.users for each row execute function hooks.on_signup();
create policy avatar_owner on storage.objects for select to authenticated using (owner = (select auth.uid()));
alter publication supabase_realtime add table public.clinics;
"#;

/// The source's two users (see `SOURCE_DATA`) with production password hashes.
const PRODUCTION_USERS: &str = "update auth.users set encrypted_password = 'productionHash' || right(id::text, 1)";

/// What the app hangs on Supabase's platform: its policy on `storage.objects`, its table in
/// the realtime publication, its signup trigger on `auth.users`.
const HOOKS_IN_PLACE: &str = "select 'policy ' || polname from pg_policy where polrelid = 'storage.objects'::regclass
     union all select 'published ' || tablename from pg_publication_tables where pubname = 'supabase_realtime'
     union all select 'trigger ' || tgname from pg_trigger where tgrelid = 'auth.users'::regclass and tgname = 'on_auth_user_created'
     order by 1";

fn login_url(target: &TestCluster) -> String {
    let url = target.url();
    let prefix = format!("postgresql://postgres:{}@", test_password());
    assert!(url.starts_with(&prefix), "the harness's URL shape changed");
    url.replacen("postgresql://postgres:", "postgresql://syncer:", 1)
}

/// The staging rows before the sync: a login of staging's own, the app's user linked to it,
/// a clinic.
const TARGET_OLD: &str = "
insert into auth.users (id, email) values ('a0000000-0000-4000-8000-0000000000f1', 'old@staging.test');
insert into public.clinics (id, name) values ('c0000000-0000-4000-8000-0000000000ff', 'Old Clinic');
insert into public.users (id, auth_id, email, name)
  values ('b0000000-0000-4000-8000-0000000000ff', 'a0000000-0000-4000-8000-0000000000f1', 'old@staging.test', 'Old User');
";

/// A key from `storage.objects.owner` to `auth.users` (older projects have it), and two
/// objects: one owned by staging's own login, one by nobody.
const STORAGE_OWNER_KEY: &str = "
alter table storage.objects add constraint objects_owner_fkey foreign key (owner) references auth.users (id);
insert into storage.buckets (id, name) values ('avatars', 'avatars');
insert into storage.objects (bucket_id, name, owner)
  values ('avatars', 'old/a.png', 'a0000000-0000-4000-8000-0000000000f1'), ('avatars', 'none/b.png', null);
";

/// What the sync prints when it replaces GoTrue's tables in place and the app's through
/// the shadow.
const MIXED: &str =
    "replaced in place (owned by supabase_auth_admin, which the sync's login syncer cannot act as): auth.users";

/// A Supabase-shaped target with staging's own rows (`TARGET_OLD`) and the app's hooks,
/// synced as `syncer` with `auth.users` copied and `public.users.auth_id` kept; the source's
/// users have production password hashes.
fn supabase_login_setup() -> Setup {
    let mut s = setup();
    s.project.secret(LOGIN_PASSWORD);
    let rules = s.project.root.join("env/stage-sync.toml");
    let text = std::fs::read_to_string(&rules).unwrap().replace("auth_id = \"null\"", "auth_id = \"keep\"");
    std::fs::write(&rules, format!("{text}\n{AUTH_USERS_RULES}")).unwrap();
    s.source.client().batch_execute(PRODUCTION_USERS).unwrap();
    let mut target = s.target.client();
    target.batch_execute(TARGET_OLD).unwrap();
    target.batch_execute(SUPABASE_LOGIN).unwrap();
    target.batch_execute(APP_HOOKS).unwrap();
    target.batch_execute(&format!("alter role syncer password '{}'", test_password())).unwrap();
    s
}

fn sync_as_syncer(s: &Setup) -> Run<'_> {
    s.sync(&[]).env("DATABASE_URL", &login_url(&s.target))
}

/// Every table's rows (`Project::checksum`) but the tool's own log (`app_meta`), with
/// `auth.identities` by what the sync makes the same each run (its `id` and times are new).
fn digest(s: &Setup) -> String {
    let all = s.target.checksum();
    let lines = all
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || !(l.starts_with("app_meta.") || l.starts_with("auth.identities=")))
        .map(|(_, l)| l);
    let identities = s.target.strings(
        "select coalesce(md5(string_agg(concat_ws(' ', user_id, provider, provider_id, identity_data), '|' order by user_id)), '')
         from auth.identities",
    );
    format!("{}\nauth.identities={}", lines.collect::<Vec<_>>().join("\n"), identities[0])
}

/// As Supabase's `postgres` (not a member of supabase_auth_admin), GoTrue's tables are
/// replaced in place and the app's through the shadow: paused before the swap, a reader
/// with a 200 ms lock timeout reads the app's tables and `auth.users` and sees the old rows;
/// after it, users sign in with the staging password, the app's links point at the new
/// logins, and its trigger, policy and publication stay.
#[test]
fn a_sync_as_supabases_postgres_login_replaces_gotrue_in_place_and_the_app_through_the_shadow() {
    let s = supabase_login_setup();
    // As on older projects, storage's objects keep a key to their owner, a login.
    s.target.client().batch_execute(STORAGE_OWNER_KEY).unwrap();
    let pause = s.project.root.join("pause-before-swap");
    let running = sync_as_syncer(&s)
        .env("STAGE_SYNC_LOGIN_PASSWORD", LOGIN_PASSWORD)
        .env("XTASK_TEST_PAUSE_BEFORE_SWAP", pause.to_str().unwrap())
        .spawn();
    wait_for_pause(&pause);
    let mut reader = s.target.client();
    reader.batch_execute("set lock_timeout = '200ms'").unwrap();
    for (sql, old) in [
        ("select string_agg(name, ',') from public.clinics", "Old Clinic"),
        ("select string_agg(name, ',') from public.users", "Old User"),
        ("select string_agg(email, ',') from auth.users", "old@staging.test"),
        ("select string_agg(name, ',') from storage.objects where owner is not null", "old/a.png"),
    ] {
        let rows = reader.query_one(sql, &[]).unwrap_or_else(|e| panic!("a reader was blocked: {sql}: {e}"));
        assert_eq!(rows.get::<_, Option<String>>(0).as_deref(), Some(old), "{sql} mid-sync");
    }
    std::fs::remove_file(&pause).unwrap();
    let out = running.wait();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains(MIXED) && out.stderr.contains("swapped"), "{}", out.stderr);
    assert!(!out.stderr.contains("runs in place"), "{}", out.stderr);
    assert!(out.stderr.contains("auth: 2 copied user(s) with an email identity"), "{}", out.stderr);
    let mut target = s.target.client();
    let row = target
        .query_one(
            "select count(*) filter (where encrypted_password = extensions.crypt($1, encrypted_password)),
                    count(*) filter (where encrypted_password like 'productionHash%'),
                    (select relowner::regrole::text from pg_class where oid = 'auth.users'::regclass)
             from auth.users",
            &[&LOGIN_PASSWORD],
        )
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (2, 0), "copied users sign in, no production hash");
    assert_eq!(row.get::<_, String>(2), "supabase_auth_admin", "GoTrue keeps its table");
    let counts = s.target.strings(
        "select concat_ws(' ', (select count(*) from auth.users), (select count(*) from auth.identities),
                (select count(*) from public.clinics), (select count(*) from public.users),
                (select count(*) from public.users u join auth.users a on a.id = u.auth_id),
                (select convalidated from pg_constraint where conname = 'users_auth_id_fkey'),
                (select count(*) from pg_namespace where nspname like 'xtask_shadow%'))",
    );
    assert_eq!(counts, ["2 2 1 2 2 t 0"], "users, identities, clinics, app users, linked, key valid, shadows");
    // The object of the login the sync removed stays, its owner NULL; the key holds.
    let objects = s.target.strings(
        "select concat_ws(' ', count(*), count(owner),
                (select convalidated from pg_constraint where conname = 'objects_owner_fkey'))
         from storage.objects",
    );
    assert_eq!(objects, ["2 0 t"], "objects, objects with an owner, key valid");
    let hooks = s.target.strings(HOOKS_IN_PLACE);
    assert_eq!(hooks, ["policy avatar_owner", "published clinics", "trigger on_auth_user_created"]);
    // A signup after the sync fires the app's trigger.
    target.batch_execute("truncate hooks.signups").unwrap();
    target
        .batch_execute(
            "insert into auth.users (id, email) values ('a0000000-0000-4000-8000-000000000009', 'new@example.org')",
        )
        .unwrap();
    assert_eq!(s.target.strings("select count(*)::text from hooks.signups"), ["1"]);
}

/// SIGKILL at random moments of the mixed sync: every table (GoTrue's and the app's) is as
/// it was or synced, never between; the next run works and leaves no shadow.
#[test]
fn a_kill_during_the_mixed_sync_leaves_staging_as_it_was_and_the_next_run_works() {
    let s = supabase_login_setup();
    let started = std::time::Instant::now();
    let out = sync_as_syncer(&s).ok();
    let full = started.elapsed().as_millis() as u64;
    assert!(out.stderr.contains(MIXED) && out.stderr.contains("swapped"), "{}", out.stderr);
    let complete = digest(&s);
    crate::helpers::kill_suite(
        &format!("the mixed stage-sync ({full} ms a run)"),
        &crate::harness::random_delays(8, full / 4, full + full / 10),
        &complete,
        || {
            s.target
                .client()
                .batch_execute(
                    "update public.clinics set name = 'touched'; update auth.users set raw_app_meta_data = '{\"touched\": true}'",
                )
                .unwrap();
            digest(&s)
        },
        || sync_as_syncer(&s).spawn(),
        || digest(&s),
    );
    sync_as_syncer(&s).ok();
    assert_eq!(digest(&s), complete);
    assert_eq!(s.target.strings("select count(*)::text from pg_namespace where nspname like 'xtask_shadow%'"), ["0"]);
}

/// An app row whose login the sync does not copy (gone from the source's `auth.users`):
/// its key to the new `auth.users` does not hold, so the mixed sync fails, saying which
/// key, and staging is unchanged.
#[test]
fn a_key_from_the_app_to_a_login_the_sync_does_not_copy_fails_the_mixed_sync_and_changes_nothing() {
    let s = supabase_login_setup();
    s.source
        .client()
        .batch_execute(
            "set session_replication_role = replica;
             insert into public.users (id, auth_id, email, name) values
               ('b0000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000003', 'gone@realclinic.com', 'Gone')",
        )
        .unwrap();
    let before = digest(&s);
    let out = sync_as_syncer(&s).fails("");
    assert!(out.stderr.contains(MIXED), "the sync did not take the mixed path:\n{}", out.stderr);
    let error = out.stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        error.contains("verification failed, nothing was changed")
            && error.contains("users_auth_id_fkey")
            && error.contains("auth.users")
            && !error.contains("xtask_shadow"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.trim_end().lines().last().unwrap().starts_with("hint: "), "{}", out.stderr);
    assert_eq!(digest(&s), before, "staging is unchanged");
    assert_eq!(s.target.strings("select count(*)::text from pg_namespace where nspname like 'xtask_shadow%'"), ["0"]);
}

/// As a login that may act as GoTrue's role (a superuser, as on a local cluster), the same
/// project syncs through the shadow: paused before the swap, a reader with a 200 ms lock
/// timeout reads `auth.users` and the app's tables; after it, GoTrue keeps its table and
/// the app its trigger, policy and publication.
#[test]
fn a_supabase_project_synced_by_a_superuser_goes_through_the_shadow_and_keeps_the_app_hooks() {
    let mut s = setup();
    s.project.secret(LOGIN_PASSWORD);
    let rules = s.project.root.join("env/stage-sync.toml");
    let text = std::fs::read_to_string(&rules).unwrap().replace("auth_id = \"null\"", "auth_id = \"keep\"");
    std::fs::write(&rules, format!("{text}\n{AUTH_USERS_RULES}")).unwrap();
    let mut target = s.target.client();
    target.batch_execute(APP_HOOKS).unwrap();
    let pause = s.project.root.join("pause-before-swap");
    let running = s
        .sync(&[])
        .env("STAGE_SYNC_LOGIN_PASSWORD", LOGIN_PASSWORD)
        .env("XTASK_TEST_PAUSE_BEFORE_SWAP", pause.to_str().unwrap())
        .spawn();
    wait_for_pause(&pause);
    let mut reader = s.target.client();
    reader.batch_execute("set lock_timeout = '200ms'").unwrap();
    for sql in ["auth.users", "auth.identities", "public.clinics", "public.users", "storage.objects"] {
        reader.query_one(&format!("select count(*) from {sql}"), &[]).unwrap_or_else(|e| panic!("{sql} blocked: {e}"));
    }
    std::fs::remove_file(&pause).unwrap();
    let out = running.wait();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains("runs in place") && out.stderr.contains("swapped"), "{}", out.stderr);
    let row = target
        .query_one(
            "select count(*) filter (where encrypted_password = extensions.crypt($1, encrypted_password)),
                    (select relowner::regrole::text from pg_class where oid = 'auth.users'::regclass)
             from auth.users",
            &[&LOGIN_PASSWORD],
        )
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, String>(1)), (2, "supabase_auth_admin".to_string()));
    let hooks = s.target.strings(HOOKS_IN_PLACE);
    assert_eq!(hooks, ["policy avatar_owner", "published clinics", "trigger on_auth_user_created"]);
    target
        .batch_execute(
            "insert into auth.users (id, email) values ('a0000000-0000-4000-8000-000000000009', 'new@example.org')",
        )
        .unwrap();
    assert_eq!(s.target.strings("select count(*)::text from hooks.signups where id::text like '%9'"), ["1"]);
}

/// A table of GoTrue's keyed to an app table: the swap would have to move that key, on a
/// table the login does not own, so the whole sync runs in place as before, says why, and
/// succeeds.
#[test]
fn a_gotrue_table_keyed_to_an_app_table_makes_the_whole_sync_run_in_place_and_say_why() {
    let s = supabase_login_setup();
    s.target
        .client()
        .batch_execute(
            "create table auth.clinic_logins (user_id uuid references auth.users (id), clinic_id uuid references public.clinics (id));
             alter table auth.clinic_logins owner to supabase_auth_admin;
             grant all on auth.clinic_logins to syncer;",
        )
        .unwrap();
    let out = sync_as_syncer(&s).ok();
    assert!(
        out.stderr.contains("runs in place")
            && out.stderr.contains("auth.clinic_logins, replaced in place (owned by supabase_auth_admin")
            && out.stderr.contains("foreign key clinic_logins_clinic_id_fkey"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("swapped"), "{}", out.stderr);
    let counts = s.target.strings(
        "select concat_ws(' ', (select count(*) from auth.users), (select count(*) from public.clinics),
                (select count(*) from public.users u join auth.users a on a.id = u.auth_id))",
    );
    assert_eq!(counts, ["2 1 2"], "users, clinics, linked app users");
}

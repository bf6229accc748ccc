//! Tests for `cargo xtask rls matrix`: the committed snapshot matches the migrations; a
//! policy for `anon`, a dropped policy or a column granted to `anon` fails `--check` naming
//! exactly the changed cells; a Supabase-style app in a schema of its own is probed with no
//! hand-written rows.

use std::path::Path;

use crate::harness::{Output, Project, Run, TestCluster, migrated};

/// `cargo xtask rls matrix ARGS --env test` against the cluster.
fn matrix<'a>(project: &'a Project, cluster: &TestCluster, args: &[&str]) -> Run<'a> {
    let mut all = vec!["rls", "matrix", "--env", "test"];
    all.extend(args);
    project.xtask(&all).env("DATABASE_URL", &cluster.url())
}

/// The project with the repository's committed snapshot.
fn with_snapshot(project: &Project) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::copy(repo.join("env/rls-matrix.txt"), project.root.join("env/rls-matrix.txt")).unwrap();
}

/// Applies a test-only migration (numbered from 9001) to the cluster.
fn migrate(project: &mut Project, cluster: &TestCluster, up: &str) {
    project.migration("9001_matrix_change.up.sql", up).migration("9001_matrix_change.down.sql", "select 1;\n");
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
}

/// The changed cells `--check` printed, without counterexamples.
fn changes(out: &Output) -> Vec<String> {
    out.stdout
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The cells of `object`'s line for `persona` in the printed matrix.
fn cells(out: &Output, object: &str, persona: &str) -> Vec<String> {
    let line = out.stdout.lines().find(|l| {
        let mut words = l.split_whitespace();
        words.next() == Some(object) && words.next() == Some(persona)
    });
    let line = line.unwrap_or_else(|| panic!("no line for {object} {persona}:\n{}", out.stdout));
    line.split_whitespace().skip(2).map(str::to_string).collect()
}

#[test]
fn check_passes_on_the_migrations_and_writes_nothing() {
    let (cluster, project) = migrated();
    with_snapshot(&project);
    let before = cluster.checksum();
    let out = matrix(&project, &cluster, &["--check"]).ok();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("access matrix matches env/rls-matrix.txt: 15 tables, 9 personas"), "{}", out.stderr);
    assert_eq!(cluster.checksum(), before);

    let out = matrix(&project, &cluster, &[]).ok();
    let expect = |object: &str, persona: &str, cells_: &[&str]| {
        assert_eq!(cells(&out, object, persona), cells_, "{object} {persona}:\n{}", out.stdout);
    };
    expect("public.goals", "owner", &["select=own", "insert=own", "update=own", "delete=own"]);
    expect("public.goals", "viewer", &["select=own", "insert=none", "update=none", "delete=none"]);
    expect("public.goals", "suspended", &["select=none", "insert=none", "update=none", "delete=none"]);
    expect("public.goals", "anon", &["select=err:42501", "insert=err:42501", "update=err:42501", "delete=err:42501"]);
    expect("public.goals", "service_role", &["select=all", "insert=all", "update=all", "delete=all"]);
    expect(
        "app_private.is_clinic_member(uuid)",
        "anon",
        &["execute=definer", "reaches=public.user_clinic_roles,public.users"],
    );
    assert!(out.stderr.contains("probed 15 tables x 4 operations x 9 personas"), "{}", out.stderr);
    assert_eq!(cluster.checksum(), before);
}

#[test]
fn a_policy_for_anon_on_a_tenant_table_fails_the_check() {
    let (cluster, mut project) = migrated();
    with_snapshot(&project);
    migrate(
        &mut project,
        &cluster,
        "grant select on public.goals to anon;\ncreate policy goals_anon_read on public.goals to anon using (true);\n",
    );
    let before = cluster.checksum();
    let out = matrix(&project, &cluster, &["--check"]).fails("the access matrix breaks 1 rule");
    assert_eq!(changes(&out), ["public.goals anon select: err:42501 -> all"], "{}", out.stdout);
    assert!(
        out.stdout.contains("counterexample: tenant B's row id=")
            && out.stdout.contains("let through by policy goals_anon_read"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("rule: public.goals: anon can select tenant rows without being a member (all)"),
        "{}",
        out.stderr
    );
    assert_eq!(cluster.checksum(), before);
}

#[test]
fn a_dropped_policy_fails_the_check() {
    let (cluster, mut project) = migrated();
    with_snapshot(&project);
    migrate(&mut project, &cluster, "drop policy goals_delete on public.goals;\n");
    let out =
        matrix(&project, &cluster, &["--check"]).fails("the access matrix differs from env/rls-matrix.txt in 2 cells");
    assert_eq!(
        changes(&out),
        ["public.goals owner delete: own -> none", "public.goals admin delete: own -> none"],
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("hint: review each change"), "{}", out.stderr);
}

#[test]
fn a_column_granted_to_anon_fails_the_check() {
    let (cluster, mut project) = migrated();
    with_snapshot(&project);
    migrate(&mut project, &cluster, "grant select (name) on public.clinics to anon;\n");
    let out =
        matrix(&project, &cluster, &["--check"]).fails("the access matrix differs from env/rls-matrix.txt in 1 cell");
    assert_eq!(changes(&out), ["public.clinics.name anon select: - -> granted"], "{}", out.stdout);
}

#[test]
fn refused_on_production() {
    let mut project = Project::new();
    project.remote("production");
    project.xtask(&["rls", "matrix", "--check", "--env", "production"]).fails("RLS testing on production is refused");
}

/// A Supabase-style app of our own: a team task tracker in schema `tracker`, profiles keyed
/// to `auth.users`, memberships with an enum role, checks, identities, a policy that calls
/// `auth.uid()` per row and one that looks memberships up by an unindexed column, and a
/// trigger that makes a profile for each new auth user (the probe adopts those rows).
const TRACKER: &str = "
create schema tracker;
grant usage on schema tracker to anon, authenticated, service_role;
create type tracker.team_role as enum ('owner', 'member', 'guest');
create table tracker.teams (
  id bigint generated always as identity primary key,
  slug text not null unique check (slug ~ '^[a-z0-9-]+$'),
  created_at timestamptz not null default now());
create table tracker.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  display_name text not null check (char_length(display_name) between 1 and 80));
create table tracker.team_members (
  team_id bigint not null references tracker.teams (id) on delete cascade,
  profile_id uuid not null references tracker.profiles (id) on delete cascade,
  role tracker.team_role not null,
  primary key (team_id, profile_id));
create table tracker.projects (
  id uuid primary key default gen_random_uuid(),
  team_id bigint not null references tracker.teams (id) on delete cascade,
  name text not null,
  status text not null check (status in ('active', 'archived')),
  budget numeric(10, 2) not null check (budget >= 0));
create table tracker.tasks (
  id bigint generated by default as identity primary key,
  project_id uuid not null references tracker.projects (id) on delete cascade,
  title text not null,
  due date not null,
  priority int not null check (priority between 1 and 5),
  assignee uuid references tracker.profiles (id),
  labels text[] not null default '{}');
create function tracker.is_member(team bigint) returns boolean language sql stable security definer
  set search_path = '' as
  $$ select exists (select 1 from tracker.team_members m where m.team_id = team and m.profile_id = (select auth.uid())) $$;
alter table tracker.teams enable row level security;
alter table tracker.profiles enable row level security;
alter table tracker.team_members enable row level security;
alter table tracker.projects enable row level security;
alter table tracker.tasks enable row level security;
create policy teams_read on tracker.teams for select to authenticated using (tracker.is_member(id));
create policy profiles_self on tracker.profiles for all to authenticated using (id = auth.uid());
create policy members_read on tracker.team_members for select to authenticated using (tracker.is_member(team_id));
create policy projects_read on tracker.projects for select to authenticated using (tracker.is_member(team_id));
create policy projects_write on tracker.projects for all to authenticated
  using (exists (select 1 from tracker.team_members m
                 where m.team_id = projects.team_id and m.profile_id = (select auth.uid()) and m.role = 'owner'));
create policy tasks_all on tracker.tasks for all to authenticated
  using (exists (select 1 from tracker.projects p where p.id = tasks.project_id));
grant select, insert, update, delete on all tables in schema tracker to authenticated, service_role;
grant select on tracker.teams to anon;
create function tracker.on_signup() returns trigger language plpgsql security definer set search_path = '' as
  $$ begin insert into tracker.profiles (id, display_name) values (new.id, 'new user'); return new; end $$;
create trigger on_signup after insert on auth.users for each row execute function tracker.on_signup();
";

#[test]
fn an_app_in_its_own_schema_needs_no_fixture_rows() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project
        .migration("0001_tracker.up.sql", TRACKER)
        .migration("0001_tracker.down.sql", "drop schema tracker cascade;\n");
    project.env_file("tenancy.toml", "root = \"tracker.teams\"\nkey = \"id\"\n");
    matrix(&project, &cluster, &[]).fails("the tenant table tracker.teams of env/tenancy.toml does not exist");
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    let before = cluster.checksum();

    let out = matrix(&project, &cluster, &[]).ok();
    let expect = |object: &str, persona: &str, cells_: &[&str]| {
        assert_eq!(cells(&out, object, persona), cells_, "{object} {persona}:\n{}\n{}", out.stdout, out.stderr);
    };
    expect("tracker.projects", "owner", &["select=own", "insert=own", "update=own", "delete=own"]);
    expect("tracker.projects", "guest", &["select=own", "insert=none", "update=none", "delete=none"]);
    expect("tracker.tasks", "member", &["select=own", "insert=own", "update=own", "delete=own"]);
    expect("tracker.tasks", "authenticated", &["select=none", "insert=none", "update=none", "delete=none"]);
    expect("tracker.teams", "anon", &["select=none", "insert=err:42501", "update=err:42501", "delete=err:42501"]);
    expect("tracker.teams", "service_role", &["select=all", "insert=all", "update=all", "delete=all"]);
    expect("tracker.is_member(bigint)", "authenticated", &["execute=definer", "reaches=tracker.team_members"]);
    // Executable by anyone unless revoked, as every function is by default.
    expect("tracker.on_signup()", "anon", &["execute=definer", "reaches=tracker.profiles"]);
    assert!(out.stderr.contains("probed 6 tables x 4 operations x 6 personas"), "{}", out.stderr);
    assert!(
        out.stderr.contains("cost: tracker.profiles: policy profiles_self calls auth.uid() once per row"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("cost: tracker.projects: policy projects_write looks up tracker.team_members.profile_id"),
        "{}",
        out.stderr
    );

    matrix(&project, &cluster, &["--update"]).ok();
    let snapshot = std::fs::read_to_string(project.root.join("env/rls-matrix.txt")).unwrap();
    assert!(snapshot.lines().any(|l| l.starts_with("tracker.tasks") && l.contains(" guest ")), "{snapshot}");
    matrix(&project, &cluster, &["--check"]).ok();
    assert_eq!(cluster.checksum(), before);
}

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

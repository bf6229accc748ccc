//! Tests for the `cargo xtask load` command: a short run on a seeded cluster executes every
//! query without errors and leaves the data as it was; the access matrix's row (never
//! production, limited local, confirmed staging); what RLS denies is reported as errors or
//! empty results; a malformed workload file is one error line.

use serde_json::Value;

use crate::harness::{Project, TestCluster, closed_port, migrated};

/// A migrated test cluster with the minimal seed, and a project holding the workload.
fn seeded() -> (TestCluster, Project) {
    let (cluster, mut project) = migrated();
    project.xtask(&["seed", "--profile", "minimal", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    let workload = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/load.toml");
    project.env_file("load.toml", &std::fs::read_to_string(workload).unwrap());
    (cluster, project)
}

fn report(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|err| panic!("not JSON ({err}):\n{stdout}"))
}

#[test]
fn a_short_run_executes_every_query_and_leaves_the_data_unchanged() {
    let (cluster, project) = seeded();
    let before = cluster.checksum();
    // Two cycles of the weighted schedule (205 transactions each), so every query runs.
    let out = project
        .xtask(&["load", "--env", "test", "--clients", "2", "--transactions", "410", "--json"])
        .env("DATABASE_URL", &cluster.url())
        .ok();
    let report = report(&out.stdout);
    let queries = report["queries"].as_array().unwrap();
    let workload = std::fs::read_to_string(project.root.join("env/load.toml")).unwrap();
    let named = workload.lines().filter(|l| l.trim() == "[[query]]").count();
    let distinct: std::collections::BTreeSet<&str> = queries.iter().map(|q| q["name"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), named, "every query of env/load.toml is in the report:\n{}", out.stdout);
    for query in queries {
        assert!(query["succeeded"].as_u64().unwrap() > 0, "{query} never ran");
        assert_eq!(query["errors"], 0, "{query}");
    }
    assert_eq!(report["overall"]["transactions"], 410);
    assert_eq!(report["overall"]["errors"], 0);
    assert!(!report["rls"].as_array().unwrap().is_empty(), "no RLS comparison:\n{}", out.stdout);
    assert!(out.stderr.contains("every transaction rolled back"), "{}", out.stderr);
    assert_eq!(cluster.checksum(), before, "the load test changed the data");
}

#[test]
fn refused_on_production_with_the_data_unchanged() {
    let (cluster, mut project) = seeded();
    let prod_url = cluster.production_url();
    cluster.stamp("production");
    let before = cluster.checksum();
    project.env_file(".env.production", &format!("DATABASE_URL={prod_url}\n"));
    project
        .xtask(&["load", "--env", "production", "--transactions", "10", "--yes"])
        .fails("Load testing on production is refused: the access matrix says NEVER");
    // The same database behind a test URL: its stamp refuses.
    let out = project
        .xtask(&["load", "--env", "test", "--transactions", "10"])
        .env("DATABASE_URL", &cluster.url())
        .fails("the database at 127.0.0.1:");
    assert!(out.stderr.contains("is stamped production"), "{}", out.stderr);
    assert_eq!(cluster.checksum(), before);
}

#[test]
fn local_is_limited_and_the_flags_cannot_exceed_the_caps() {
    let (cluster, mut project) = seeded();
    cluster.stamp("local");
    let port = cluster.url().rsplit(':').next().unwrap().split('/').next().unwrap().to_string();
    project.edit_settings("port = 54322", &format!("port = {port}"));
    project.env_file(".env.local", &format!("DATABASE_URL={}\n", cluster.url()));
    let out = project.xtask(&["load", "--env", "local", "--clients", "16", "--transactions", "40", "--json"]).ok();
    assert!(out.stderr.contains("load testing is limited on local: at most 4 clients and 30 s"), "{}", out.stderr);
    assert!(out.stderr.contains("warning: --clients 16: using 4 exceeds the limit on local"), "{}", out.stderr);
    let report = report(&out.stdout);
    assert_eq!(report["clients"], 4);
    assert_eq!(report["limits"]["clients"], 4);
    assert_eq!(report["limits"]["seconds"], 30);
}

#[test]
fn staging_needs_a_confirmation_naming_the_project_without_a_terminal() {
    let mut project = Project::new();
    project.remote("staging");
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/load.toml");
    project.env_file("load.toml", &std::fs::read_to_string(rules).unwrap());
    let out = project
        .xtask(&["load", "--env", "staging", "--transactions", "10"])
        .fails("load testing staging project STAGING_REF \"dental-dashboard-staging");
    assert!(out.stderr.contains("(aws-0-us-east-2.pooler.supabase.com:5432) needs a confirmation"), "{}", out.stderr);
    assert!(out.stderr.contains("hint: others may be using staging; pass --yes"), "{}", out.stderr);
}

#[test]
fn what_rls_denies_is_reported_as_errors_and_empty_results() {
    let (cluster, mut project) = seeded();
    let before = cluster.checksum();
    project.env_file(
        "denied.toml",
        r#"
[[query]]
name = "another_clinics_financials"
weight = 1
roles = ["authenticated", "service_role"]
sql = "select * from public.daily_location_financials where clinic_id = :other_clinic and date between :from and :to"

[[query]]
name = "viewer_upserts_financials"
weight = 1
roles = ["authenticated"]
members = ["viewer"]
sql = """
insert into public.daily_location_financials (clinic_id, location_id, date, net_production)
values (:clinic, :location, :day, :amount)
on conflict (location_id, date) do update set net_production = excluded.net_production
"""
"#,
    );
    let out = project
        .xtask(&["load", "--env", "test", "--transactions", "30", "--workload", "env/denied.toml", "--json"])
        .env("DATABASE_URL", &cluster.url())
        .fails("10 transaction(s) failed");
    let report = report(&out.stdout);
    let line = |name: &str, role: &str| {
        report["queries"].as_array().unwrap().iter().find(|q| q["name"] == name && q["role"] == role).unwrap().clone()
    };
    let denied_read = line("another_clinics_financials", "authenticated");
    assert_eq!(denied_read["empty"], denied_read["transactions"], "{denied_read}");
    assert_eq!(line("another_clinics_financials", "service_role")["empty"], 0, "service_role sees the rows");
    assert!(out.stderr.contains("another_clinics_financials as authenticated returned no rows in every transaction"));
    let denied_write = line("viewer_upserts_financials", "authenticated");
    assert_eq!(denied_write["succeeded"], 0, "{denied_write}");
    let kind = &denied_write["errors_by_kind"]["42501"];
    assert_eq!(kind["count"], 10, "{denied_write}");
    assert!(kind["message"].as_str().unwrap().contains("row-level security"), "{kind}");
    assert_eq!(cluster.checksum(), before);
}

#[test]
fn a_malformed_workload_file_is_one_error_line_naming_the_line() {
    let mut project = Project::new();
    let url = format!("postgresql://postgres:unused@127.0.0.1:{}/postgres", closed_port());
    let cases = [
        (
            "[[query]]\nname = \"a\"\nweight = 0\nroles = [\"authenticated\"]\nsql = \"select 1\"\n",
            "line 3: weight must be",
        ),
        ("[[query]]\nname = \"a\"\nweight = 1\nroles = [\"authenticated\"\nsql = \"select 1\"\n", "line 5: "),
        (
            "[[query]]\nname = \"a\"\nweight = 1\nroles = [\"authenticated\"]\nsql = \"\"\"\nselect 1\nwhere x = :nope\n\"\"\"\n",
            "line 7: unknown parameter `:nope`",
        ),
        (
            "[[query]]\nname = \"a\"\nweight = 1\nroles = [\"anon\"]\nsql = \"select 1\"\n",
            "line 4: unknown role `anon`",
        ),
    ];
    for (text, problem) in cases {
        project.env_file("bad.toml", text);
        project
            .xtask(&["load", "--env", "test", "--workload", "env/bad.toml"])
            .env("DATABASE_URL", &url)
            .fails(&format!("env/bad.toml {problem}"));
    }
}

/// A workload of one query, `sql`, as service_role (which bypasses row-level security).
fn one_query(sql: &str) -> String {
    format!("[[query]]\nname = \"attack\"\nweight = 1\nroles = [\"service_role\"]\nsql = \"\"\"\n{sql}\n\"\"\"\n")
}

#[test]
fn calls_a_rollback_cannot_undo_are_refused_before_anything_runs() {
    let (cluster, mut project) = seeded();
    cluster
        .client()
        .batch_execute(
            "create sequence public.attack_seq; select setval('public.attack_seq', 1000);
             grant all on sequence public.attack_seq to authenticated, service_role;",
        )
        .unwrap();
    let sequence = || cluster.strings("select format('%s %s', last_value, is_called) from public.attack_seq");
    let marker = std::env::temp_dir().join(format!("load-copy-program-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let cases = [
        ("select setval('public.attack_seq', 1)", "line 6: `setval` moves a sequence"),
        (
            "with a as (\n  select nextval('public.attack_seq') as n\n)\nselect * from a",
            "line 7: `nextval` moves a sequence",
        ),
        ("select \"pg_catalog\".\"setval\"('public.attack_seq', 1)", "line 6: `setval` moves a sequence"),
        (
            "select * from public.clinics\nwhere id = :clinic and pg_catalog.SETVAL('public.attack_seq', 1) > 0",
            "line 7: `setval`",
        ),
        ("select pg_advisory_lock(42)", "line 6: `pg_advisory_lock` takes an advisory lock"),
        // Functions that run a query given as text: the check cannot see inside the string.
        (
            "select * from ts_stat($$select to_tsvector(setval('public.attack_seq', 1)::text)$$)",
            "line 6: `ts_stat` runs SQL text",
        ),
        (
            &format!("copy (select 1) to program 'touch {}'", marker.display()),
            "line 6: `COPY` is not run by the load test",
        ),
    ];
    let (before, rows) = (sequence(), cluster.checksum());
    assert_eq!(before, ["1000 t"]);
    for (sql, problem) in cases {
        project.env_file("attack.toml", &one_query(sql));
        let out = project
            .xtask(&["load", "--env", "test", "--transactions", "20", "--workload", "env/attack.toml"])
            .env("DATABASE_URL", &cluster.url())
            .fails(&format!("env/attack.toml {problem}"));
        assert!(!out.stderr.contains("every transaction rolled back"), "it ran:\n{}", out.stderr);
        assert_eq!(sequence(), before, "the sequence moved after:\n{sql}");
    }
    assert!(!marker.exists(), "COPY ... TO PROGRAM ran");
    // A function that moves the sequence under an innocent name: VOLATILE, so refused.
    cluster
        .client()
        .batch_execute(
            "create function public.attack_total(n int) returns int language sql as $$ select setval('public.attack_seq', 1)::int + n $$;
             grant execute on function public.attack_total(int) to service_role;",
        )
        .unwrap();
    project.env_file("attack.toml", &one_query("select public.attack_total(1)"));
    project
        .xtask(&["load", "--env", "test", "--transactions", "20", "--workload", "env/attack.toml"])
        .env("DATABASE_URL", &cluster.url())
        .fails("env/attack.toml: query attack calls `attack_total`, which the target declares VOLATILE");
    assert_eq!(sequence(), before, "the sequence moved through a function");
    assert_eq!(cluster.checksum(), rows);
    let locks = cluster.strings("select objid::text from pg_catalog.pg_locks where locktype = 'advisory'");
    assert!(locks.is_empty(), "advisory locks held: {locks:?}");
    // What the database itself does outside the transaction is not hidden: an identity
    // default moves its sequence, and the run says so instead of "as it was".
    cluster
        .client()
        .batch_execute(
            "create table public.attack_log (id bigint generated always as identity primary key, note text);
             grant all on public.attack_log to service_role;",
        )
        .unwrap();
    project.env_file("attack.toml", &one_query("insert into public.attack_log (note) values ('x')"));
    project
        .xtask(&["load", "--env", "test", "--transactions", "5", "--workload", "env/attack.toml"])
        .env("DATABASE_URL", &cluster.url())
        .fails("the run moved 1 sequence(s), which a rollback does not undo: public.attack_log_id_seq (unused -> 5)");
    assert!(cluster.strings("select note from public.attack_log").is_empty(), "the inserted rows stayed");
}

//! Tests for `cargo xtask db`: the local cluster's whole life, in a scratch project on a
//! free port.

use std::net::TcpListener;

use crate::harness::{Project, closed_port};

fn local_project() -> (Project, u16) {
    let mut project = Project::new();
    let port = closed_port();
    project.edit_settings("port = 54322", &format!("port = {port}"));
    project.env_file(".env.local", &format!("DATABASE_URL=postgresql://postgres:postgres@127.0.0.1:{port}/postgres\nNEXT_PUBLIC_SUPABASE_URL=http://127.0.0.1:54321\n"));
    (project, port)
}

/// Stops the project's cluster even when the test fails halfway.
struct Cleanup<'a>(&'a Project);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.xtask(&["db", "destroy", "--yes"]).run();
    }
}

#[test]
fn up_status_reset_down_destroy() {
    let (project, port) = local_project();
    let _cleanup = Cleanup(&project);
    let url = format!("postgresql://postgres:postgres@127.0.0.1:{port}/postgres");

    let out = project.xtask(&["db", "status"]).ok();
    assert!(out.stdout.contains("not created"), "{}", out.stdout);

    let out = project.xtask(&["db", "up"]).ok();
    assert!(out.stderr.contains("local database created and started"), "{}", out.stderr);
    let out = project.xtask(&["db", "up"]).ok();
    assert!(out.stderr.contains("already running"), "{}", out.stderr);

    let out = project.xtask(&["db", "status"]).ok();
    assert!(out.stdout.contains(&format!("running on 127.0.0.1:{port}")), "{}", out.stdout);
    assert!(out.stdout.contains("stamp           local"), "{}", out.stdout);

    // Supabase's auth functions read the claims as Supabase sets them.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut tx = client.transaction().unwrap();
    tx.batch_execute("set local role authenticated").unwrap();
    tx.execute(
        "select set_config('request.jwt.claims', $1, true)",
        &[&r#"{"sub":"8a4f2f4e-5b1a-4a57-9d3c-1f0e8a7b6c5d","role":"authenticated","email":"a@b.test"}"#],
    )
    .unwrap();
    let row = tx
        .query_one("select auth.uid()::text, auth.role(), auth.email(), auth.jwt() ->> 'sub', current_user::text", &[])
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "8a4f2f4e-5b1a-4a57-9d3c-1f0e8a7b6c5d");
    assert_eq!(row.get::<_, String>(1), "authenticated");
    assert_eq!(row.get::<_, String>(2), "a@b.test");
    assert_eq!(row.get::<_, String>(4), "authenticated");
    drop(tx);
    let roles: Vec<(String, bool, bool, bool)> = client
        .query("select rolname::text, rolcanlogin, rolinherit, rolbypassrls from pg_roles where rolname in ('anon','authenticated','service_role','authenticator') order by 1", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        roles,
        [
            ("anon".to_string(), false, false, false),
            ("authenticated".to_string(), false, false, false),
            ("authenticator".to_string(), true, false, false),
            ("service_role".to_string(), false, false, true),
        ]
    );

    client.batch_execute("create table public.scratch (id int)").unwrap();
    drop(client);
    project.xtask(&["db", "reset"]).ok();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let scratch: bool = client.query_one("select to_regclass('public.scratch') is not null", &[]).unwrap().get(0);
    assert!(!scratch, "reset kept the old table");
    drop(client);
    // The database the reset replaced is the restore point: `db status` shows it, `db undo`
    // swaps it back.
    let out = project.xtask(&["db", "status"]).ok();
    let line = out.stdout.lines().find(|l| l.starts_with("restore point")).unwrap_or_default().to_string();
    assert!(line.contains("before the db reset of") && line.contains("B"), "{}", out.stdout);
    project.xtask(&["db", "undo"]).ok();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let scratch: bool = client.query_one("select to_regclass('public.scratch') is not null", &[]).unwrap().get(0);
    assert!(scratch, "undo gives the old table back");
    drop(client);

    let out = project.xtask(&["db", "down"]).ok();
    assert!(out.stderr.contains("local database stopped"), "{}", out.stderr);
    let out = project.xtask(&["db", "status"]).ok();
    assert!(out.stdout.contains("stopped"), "{}", out.stdout);
    project.xtask(&["db", "destroy"]).fails("`db destroy` deletes the local database's data");
    project.xtask(&["db", "destroy", "--yes"]).ok();
    assert!(!project.root.join(".local/db").exists());
}

#[test]
fn a_taken_port_is_one_clear_error() {
    let (project, port) = local_project();
    let _cleanup = Cleanup(&project);
    let _holder = TcpListener::bind(("127.0.0.1", port)).unwrap();
    project.xtask(&["db", "up"]).fails(&format!("port {port} on 127.0.0.1 is taken by another program"));
}

/// `db up`, `status`, `down` and `destroy` manage the local cluster only: `--env` naming
/// another environment is a usage error (exit 2), one `error:` line and a hint, before
/// anything is created, started or deleted.
#[test]
fn db_commands_manage_the_local_cluster_only() {
    let (project, _) = local_project();
    for (command, env) in
        [("up", "staging"), ("up", "test"), ("status", "test"), ("down", "production"), ("destroy", "test")]
    {
        let mut args = vec!["db", command, "--env", env];
        if command == "destroy" {
            args.push("--yes");
        }
        let out = project.xtask(&args).run();
        assert_eq!(out.code, Some(2), "`{}` is not a usage error:\n{out:#?}", args.join(" "));
        let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(
            errors,
            [format!("error: `db {command}` manages the local cluster only, not {env}")],
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("\nhint: drop --env"), "{}", out.stderr);
    }
    assert!(!project.root.join(".local/db").exists(), "a refused command created the cluster");
    // `--env local` is what they act on anyway.
    let out = project.xtask(&["db", "status", "--env", "local"]).ok();
    assert!(out.stdout.contains("not created"), "{}", out.stdout);
}

#[test]
fn missing_server_binaries_are_one_clear_error() {
    let (project, _) = local_project();
    project
        .xtask(&["db", "up"])
        .env("PG_BINDIR", "/nonexistent")
        .fails("PG_BINDIR=/nonexistent holds no initdb, pg_ctl and postgres");
}

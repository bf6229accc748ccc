//! Tests of `DATABASE_URL` parsing: projects, poolers, sockets, masked errors.

use std::path::PathBuf;

use super::*;
use crate::address::Endpoint;

fn parse(s: &str) -> DatabaseUrl {
    s.parse().unwrap()
}

#[test]
fn pooler_urls_name_their_project() {
    let url = parse(
        "postgresql://postgres.abcdefgh:s3cr%40t@aws-0-us-east-2.pooler.supabase.com:6543/postgres?pgbouncer=true&connection_limit=1",
    );
    assert_eq!(url.project_ref().unwrap().as_deref(), Some("abcdefgh"));
    assert_eq!(url.pooler(), Some(Pooler::Transaction));
    assert_eq!(url.password().as_deref(), Some("s3cr@t"));
    assert!(!url.to_string().contains("s3cr"), "{url}");
    let session = parse("postgresql://postgres.abcdefgh:pw@aws-0-us-east-2.pooler.supabase.com:5432/postgres");
    assert_eq!(session.pooler(), Some(Pooler::Session));
}

#[test]
fn direct_hosts_and_sockets() {
    let url = parse("postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres?sslrootcert=/tmp/ca.crt");
    assert_eq!(url.project_ref().unwrap().as_deref(), Some("abcdefgh"));
    assert_eq!(url.ssl_root_cert, Some(PathBuf::from("/tmp/ca.crt")));
    assert_eq!(url.pooler(), None);
    assert!(!url.is_on_this_machine());
    let socket = parse("postgresql://postgres@%2Fvar%2Frun%2Fpostgresql:5433/app");
    assert_eq!(socket.host(), Host::Socket("/var/run/postgresql".into()));
    assert!(socket.is_on_this_machine());
    assert!(parse("host=/tmp port=5555 user=postgres").is_on_this_machine());
    assert!(parse("postgresql://postgres@[::1]:5432/x").is_on_this_machine());
    assert!(parse("postgresql://postgres@127.0.0.2:5432/x").is_on_this_machine());
}

#[test]
fn errors_never_repeat_the_password() {
    let err = "postgresql://u:hunter2-secret@host:notaport/db".parse::<DatabaseUrl>().unwrap_err();
    let text = format!("{err:#}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.starts_with("DATABASE_URL does not parse"), "{text}");
    assert!("mysql://x".parse::<DatabaseUrl>().is_err());
    assert!("".parse::<DatabaseUrl>().is_err());
}

#[test]
fn verify_full_is_accepted_as_what_remote_connections_do_anyway() {
    for mode in ["verify-full", "verify-ca"] {
        let url = parse(&format!("postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres?sslmode={mode}"));
        assert_eq!(url.project_ref().unwrap().as_deref(), Some("abcdefgh"));
        let remote =
            Endpoint::Tcp { name: "db.abcdefgh.supabase.co".into(), addr: "203.0.113.7".parse().unwrap(), port: 5432 };
        assert!(url.conninfo_for(&remote).contains("sslmode=verify-full"), "{mode}");
    }
}

#[test]
fn two_refs_disagree() {
    let url = parse("postgresql://postgres.aaaa:pw@db.bbbb.supabase.co:5432/postgres");
    assert!(url.project_ref().is_err());
}

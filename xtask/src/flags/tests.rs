//! Tests of the command line: where `--env` is a usage error, and `--clinics` values.

use clap::Parser;

use super::{Clinics, Xtask};

#[test]
fn env_is_a_usage_error_where_it_selects_nothing() {
    let misuse = |args: &[&str]| {
        Xtask::try_parse_from(std::iter::once("xtask").chain(args.iter().copied())).unwrap().env_misuse()
    };
    for refused in [
        &["ci", "--env", "production"][..],
        &["stage-sync", "--env", "local"],
        &["stage-sync", "--env", "local", "--to", "staging"],
        &["bench", "seed", "--env", "test"],
        &["migrate", "lint", "--env", "staging"],
        &["env", "matrix", "--env", "local"],
        &["migrate", "rehearse", "--data", "large", "--env", "production"],
        &["db", "up", "--env", "test"],
        &["db", "status", "--env", "staging"],
        &["db", "down", "--env", "production"],
        &["db", "destroy", "--yes", "--env", "test"],
    ] {
        assert!(misuse(refused).is_some(), "{refused:?} was accepted");
    }
    for accepted in [
        &["ci"][..],
        &["stage-sync", "--env", "local", "--to", "local"],
        &["stage-sync", "--to", "local"],
        &["migrate", "up", "--env", "staging"],
        &["env", "check", "--env", "production"],
        &["seed", "--env", "test"],
        &["migrate", "rehearse", "--env", "staging"],
        &["migrate", "rehearse", "--data", "copy", "--env", "staging"],
        &["db", "up", "--env", "local"],
        &["db", "status"],
        &["db", "reset", "--env", "test"],
        &["db", "undo", "--env", "test"],
    ] {
        assert!(misuse(accepted).is_none(), "{accepted:?} was refused");
    }
}

#[test]
fn clinics_are_a_count_or_ids() {
    assert_eq!("3".parse(), Ok(Clinics::First(3)));
    assert_eq!(" a, b ,".parse(), Ok(Clinics::Ids(vec!["a".into(), "b".into()])));
    assert!("0".parse::<Clinics>().unwrap_err().contains("not a positive number"));
    assert!("-2".parse::<Clinics>().is_err());
    assert!(" , ".parse::<Clinics>().unwrap_err().contains("no clinic ids"));
}

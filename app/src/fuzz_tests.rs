//! Property tests: the parsers of everything a user writes (env files, settings, URLs,
//! detection) never panic, and their errors are one line (plus a hint) that never repeats a
//! secret from the input.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::{
    DatabaseUrl, Settings,
    address::{self, Endpoint},
    detect, selection,
};

const SECRET: &str = "Fuzz-Secret-Value-31337";

/// The error's shape: one line, optionally a `hint:` line, no secret.
fn check_error(err: &anyhow::Error) {
    let text = format!("{err:#}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty() && lines.len() <= 2, "not one line: {text:?}");
    if lines.len() == 2 {
        assert!(lines[1].starts_with("hint: "), "second line is not a hint: {text:?}");
    }
    assert!(!text.contains(SECRET), "the secret leaked: {text:?}");
}

fn settings() -> Settings {
    Settings::parse(include_str!("../../env/environments.toml")).unwrap()
}

/// Strings that look like the things users write, broken in every way.
fn url_like() -> impl Strategy<Value = String> {
    let parts = prop::collection::vec(
        prop_oneof![
            Just("postgresql://".to_string()),
            Just("postgres.".to_string()),
            Just(format!(":{SECRET}@")),
            Just("@".to_string()),
            Just(":".to_string()),
            Just("/".to_string()),
            Just("?".to_string()),
            Just("&".to_string()),
            Just("=".to_string()),
            Just("%".to_string()),
            Just("[::1]".to_string()),
            Just("localhost".to_string()),
            Just("supabase.co".to_string()),
            Just("pooler.supabase.com".to_string()),
            Just("6543".to_string()),
            Just("pgbouncer=true".to_string()),
            Just("sslmode=".to_string()),
            "[a-z0-9.]{0,8}",
            any::<String>(),
        ],
        0..12,
    );
    parts.prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn database_urls_never_panic_or_leak(raw in url_like()) {
        crate::secrets::register(SECRET);
        if let Err(err) = raw.parse::<DatabaseUrl>() {
            check_error(&err);
        }
    }

    #[test]
    fn detection_never_panics(db in proptest::option::of(url_like()), api in proptest::option::of(url_like())) {
        crate::secrets::register(SECRET);
        let mut vars = BTreeMap::new();
        if let Some(db) = db { vars.insert("DATABASE_URL".to_string(), db); }
        if let Some(api) = api { vars.insert("NEXT_PUBLIC_SUPABASE_URL".to_string(), api); }
        if let Err(err) = detect::detect(&vars, &settings()) {
            check_error(&err);
        }
    }

    #[test]
    fn settings_never_panic(text in any::<String>(), cut in 0usize..2000) {
        if let Err(err) = Settings::parse(&text) { check_error(&err); }
        let committed = include_str!("../../env/environments.toml");
        let mut cut = cut.min(committed.len());
        while !committed.is_char_boundary(cut) { cut -= 1; }
        if let Err(err) = Settings::parse(&format!("{}{text}", &committed[..cut])) { check_error(&err); }
    }

    #[test]
    fn env_files_never_panic_or_leak(lines in prop::collection::vec(
        prop_oneof![
            Just(format!("DATABASE_URL=postgresql://u:{SECRET}@h/db")),
            Just(format!("KEY=\"{SECRET}")),
            Just(format!("{SECRET} no equals sign")),
            Just("export A=1".to_string()),
            Just("# comment".to_string()),
            Just("A='unterminated".to_string()),
            Just("=value".to_string()),
            any::<String>(),
        ],
        0..8,
    )) {
        let dir = std::env::temp_dir().join(format!("app-fuzz-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env.test");
        std::fs::write(&path, lines.join("\n")).unwrap();
        if let Err(err) = selection::read_env_file(&path) {
            check_error(&err);
        }
    }
}

/// Connection strings with one to three hosts, each a loopback or remote literal, a name
/// that resolves (`localhost`) or one that doesn't, with or without `hostaddr`s and ports.
fn multi_host_url() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just("127.0.0.1"),
        Just("127.0.0.2"),
        Just("[::1]"),
        Just("10.1.2.3"),
        Just("203.0.113.7"),
        Just("localhost"),
        Just("nowhere.invalid"),
        Just("db.abcdefgh.supabase.co"),
    ];
    let addr = prop_oneof![Just(None), Just(Some("127.0.0.1")), Just(Some("10.9.9.9")), Just(Some("::1"))];
    (prop::collection::vec((host, prop::option::of(1000u16..9999)), 1..=3), prop::collection::vec(addr, 0..=3))
        .prop_map(|(hosts, addrs)| {
            let hosts: Vec<String> = hosts
                .iter()
                .map(|(h, p)| match p {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                })
                .collect();
            let mut url = format!("postgresql://postgres:pw@{}/postgres", hosts.join(","));
            // libpq pairs hostaddr i with host i: only as many as there are hosts.
            let addrs: Vec<&str> = addrs.into_iter().take(hosts.len()).flatten().collect();
            if addrs.len() == hosts.len() {
                url.push_str(&format!("?hostaddr={}", addrs.join(",")));
            }
            url
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// For any URL the driver accepts, the addresses the tool classifies cover every
    /// address the driver may connect to, and the config the tool connects with names
    /// exactly one of them.
    #[test]
    fn classification_covers_every_address_the_driver_may_use(raw in multi_host_url()) {
        let Ok(url) = raw.parse::<DatabaseUrl>() else { return Ok(()) };
        let Ok(driver) = raw.parse::<postgres::Config>() else { return Ok(()) };
        let endpoints = url.endpoints();
        let hosts = driver.get_hosts();
        let addrs = driver.get_hostaddrs();
        for i in 0..hosts.len().max(addrs.len()) {
            let covered = match (addrs.get(i), hosts.get(i)) {
                (Some(ip), _) => endpoints.iter().any(|e| matches!(e, Endpoint::Tcp { addr, .. } if addr == ip)),
                (None, Some(postgres::config::Host::Tcp(name))) => {
                    address::resolve(name, 5432).iter().all(|ip| endpoints.iter().any(|e| matches!(e, Endpoint::Tcp { addr, .. } if addr == ip)))
                }
                (None, _) => true,
            };
            prop_assert!(covered, "host {i} of {raw} is not covered by {endpoints:?}");
        }
        if url.is_on_this_machine() {
            prop_assert!(endpoints.iter().all(Endpoint::is_on_this_machine), "{raw}: called this machine, but {endpoints:?}");
        }
        for endpoint in &endpoints {
            let config = url.config_for(endpoint);
            prop_assert_eq!(config.get_hosts().len(), 1);
            if let Endpoint::Tcp { addr, port, .. } = endpoint {
                prop_assert_eq!(config.get_hostaddrs(), &[*addr][..]);
                prop_assert_eq!(config.get_ports(), &[*port][..]);
            }
        }
        if hosts.len().max(addrs.len()) > 1 {
            prop_assert!(url.write_problem().is_some(), "{raw}: several hosts allowed for writes");
        }
    }
}

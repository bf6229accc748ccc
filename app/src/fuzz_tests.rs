//! Property tests: the parsers of everything a user writes (env files, settings, URLs,
//! detection) never panic, and their errors are one line (plus a hint) that never repeats a
//! secret from the input.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::{DatabaseUrl, Settings, detect, selection};

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

//! Tests for `cargo xtask stage-sync` on the benchmark's generated schema
//! (`xtask::generated`, a Prisma-style application: text keys, foreign keys without
//! indexes, an enum, jsonb): a new user's path, `init-rules` then the decisions the
//! benchmark makes, syncs it with every check passing and the personal columns masked.

use crate::{harness::TestCluster, stage_sync_fixtures::production_project};

/// Small: correctness only (the benchmark times a million rows).
const ROWS: u64 = 3_000;

/// The personal columns of the generated schema, which must all come out different.
const MASKED: &[(&str, &str)] = &[
    ("User", "email"),
    ("User", "name"),
    ("User", "phone"),
    ("Patient", "firstName"),
    ("Patient", "lastName"),
    ("Patient", "email"),
    ("Patient", "phone"),
    ("Invite", "email"),
    ("Session", "sessionToken"),
];

#[test]
fn the_generated_schema_syncs_with_the_rules_init_rules_wrote() {
    let (source, target) = (TestCluster::start(), TestCluster::start());
    for statement in xtask::generated::populated(ROWS) {
        source.client().batch_execute(&statement).unwrap();
    }
    target.client().batch_execute(&xtask::generated::schema()).unwrap();
    let project = production_project(&source);

    project.xtask(&["stage-sync", "init-rules"]).ok();
    let rules_path = project.root.join("env/stage-sync.toml");
    let written = std::fs::read_to_string(&rules_path).unwrap();
    // A unique secret gets a pseudonym, not `redact` (which the rules check refuses there).
    assert!(written.contains("sessionToken = \"uuid\" # unique"), "{written}");
    // A timestamp named after an email says when, not who: nothing is left to decide.
    assert!(written.contains("emailVerified = \"keep\"\n"), "{written}");
    assert!(!written.contains("reviewed = false"), "{written}");
    std::fs::write(&rules_path, xtask::generated::decide(&written).unwrap()).unwrap();
    let out = project
        .xtask(&["stage-sync", "--from", "production", "--to", "test", "--yes"])
        .env("DATABASE_URL", &target.url())
        .ok();
    assert!(out.stderr.contains("verified"), "{}", out.stderr);

    // Every table arrived whole, keys kept: the same ids, and the kept columns equal.
    let rows = |cluster: &TestCluster, sql: &str| cluster.strings(sql);
    let tables = rows(&source, "select relname::text from pg_stat_user_tables where schemaname = 'public' order by 1");
    assert_eq!(tables.len(), 23, "{tables:?}");
    for table in &tables {
        let count = format!("select count(*)::text from \"{table}\"");
        assert_eq!(rows(&source, &count), rows(&target, &count), "{table}: row count");
    }
    let kept = r#"select md5(string_agg(concat_ws('|', id, "patientId", "number", "total", "paid"), ',' order by id)) from "Invoice""#;
    assert_eq!(rows(&source, kept), rows(&target, kept), "kept columns are copied as they are");
    for (table, column) in MASKED {
        let values =
            format!(r#"select concat(id, '=', "{column}") from "{table}" where "{column}" is not null order by id"#);
        let (before, after) = (rows(&source, &values), rows(&target, &values));
        assert_eq!(before.len(), after.len(), "{table}.{column}: the same rows have a value");
        assert!(!before.is_empty(), "{table}.{column}: the source has values");
        let same = before.iter().zip(&after).filter(|(b, a)| b == a).count();
        assert_eq!(same, 0, "{table}.{column}: {same} values reached the target unmasked");
    }
}

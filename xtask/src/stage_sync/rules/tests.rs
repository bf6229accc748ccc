//! Unit tests of the rules file: parsing, strictness, suggestions in errors.

use super::*;
use crate::stage_sync::{
    catalog::Table,
    sample::{PersonalValues, Verdict},
};

/// The file parsed and checked against `tables`, as a sync does; `personal` judges kept
/// columns' values.
pub(crate) fn check(
    shown: &str,
    text: &str,
    tables: &[Table],
    personal: &mut dyn FnMut(&Table, &Column) -> Result<bool>,
) -> Result<Rules> {
    let file = RulesFile::parse(text, shown)?;
    let personal: &mut dyn PersonalValues = &mut Verdict(personal);
    crate::stage_sync::check::check(&file, tables, personal)
}

fn column(name: &str, category: Category, base: &str, not_null: bool) -> Column {
    Column {
        name: name.into(),
        type_name: base.into(),
        not_null,
        generated: false,
        category,
        base_type: base.into(),
        wire: None,
    }
}

fn table() -> Table {
    Table {
        schema: "public".into(),
        name: "people".into(),
        partitioned: false,
        columns: vec![
            column("id", Category::User, "uuid", true),
            column("email", Category::String, "text", true),
            column("nickname", Category::String, "text", false),
            column("born", Category::DateTime, "date", false),
            column("meta", Category::User, "jsonb", false),
        ],
        primary_key: vec!["id".into()],
        uniques: vec![vec!["id".into()]],
        loosely_unique: vec![],
        foreign_keys: vec![],
        sequences: vec![],
        estimate: 0,
    }
}

fn run(text: &str) -> Result<Rules> {
    check("rules.toml", text, &[table()], &mut |_, c| Ok(c.name == "nickname"))
}

#[test]
fn the_file_is_read_once_into_schemas_extra_tables_and_a_checksum() {
    let text = r#"
        schemas = ["public", "billing"]
        [tables."auth.users".columns]
        email = "email"
        [tables."public.people"]
        mode = "skip"
    "#;
    let file = RulesFile::parse(text, "env/rules.toml").unwrap();
    assert_eq!(file.schemas, ["public", "billing"]);
    assert_eq!(file.extra_tables(), ["auth.users"]);
    assert_eq!(file.checksum, crate::migrate::checksum_text(text));
    assert_eq!(file.tables["public.people"].mode, Mode::Skip);
    assert_eq!(RulesFile::parse("", "env/rules.toml").unwrap().schemas, ["public"]);
    let err = RulesFile::parse("schemas = 1", "env/rules.toml").unwrap_err();
    assert!(format!("{err:#}").starts_with("env/rules.toml is invalid: line 1: "), "{err:#}");
}

#[test]
fn complete_rules_pass() {
    let rules = run(r#"
        [tables."public.people".columns]
        id = "uuid"
        email = "email"
        nickname = { rule = "keep", reviewed = true }
        born = { rule = "date_shift", days = 30 }
        meta = { rule = "jsonb", keys = { email = "email", phone = "null" } }
    "#)
    .unwrap();
    let columns = &rules.tables["public.people"].columns;
    assert_eq!(columns[0], ("id".to_string(), Rule::Pseudonym(Kind::Uuid)));
    assert_eq!(columns[3].1, Rule::DateShift(30));
}

#[test]
fn arrays_take_a_kind_per_element_and_json_an_allowlist() {
    let mut table = table();
    table.name = "things".into();
    table.columns = vec![
        column("tags", Category::Array, "_text", false),
        column("scores", Category::Array, "_int4", false),
        column("meta", Category::User, "jsonb", false),
        column("code", Category::String, "text", true),
    ];
    table.uniques = vec![];
    table.loosely_unique = vec!["code".into()];
    let check_one = |text: &str| check("rules.toml", text, &[table.clone()], &mut |_, _| Ok(false));
    let rules = check_one(
        r#"[tables."public.things".columns]
        tags = "email"
        scores = "keep"
        meta = { rule = "jsonb", allow = ["status"], others = "text", keys = { email = "email" } }
        code = "text"
        "#,
    )
    .unwrap();
    let columns = &rules.tables["public.things"].columns;
    assert_eq!(columns[0].1, Rule::Elements(Kind::Email));
    let Rule::Json(spec) = &columns[2].1 else { panic!("{columns:?}") };
    assert_eq!(spec.rule_for(Some("status")), None);
    assert_eq!(spec.rule_for(Some("email")), Some(&JsonRule::Pseudonym(Kind::Email)));
    assert_eq!(spec.rule_for(Some("anything")), Some(&JsonRule::Pseudonym(Kind::Text)));
    assert_eq!(spec.rule_for(None), Some(&JsonRule::Pseudonym(Kind::Text)));
    let err = check_one(
        r#"[tables."public.things".columns]
        tags = "keep"
        scores = "phone"
        meta = { rule = "jsonb", others = "text" }
        code = "redact"
        "#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("scores: pseudonym `phone` on an array needs an array of text"), "{err}");
    assert!(err.contains("meta: `others` goes with `allow`"), "{err}");
    assert!(err.contains("code is in a unique key or index, so `redact`"), "{err}");
}

#[test]
fn uncovered_columns_list_and_suggest() {
    let err = run("[tables.\"public.people\".columns]\nid = \"keep\"\n").unwrap_err().to_string();
    assert!(
        err.starts_with("4 column(s) have no rule in rules.toml: public.people.email, public.people.nickname"),
        "{err}"
    );
    assert!(err.contains("email = \"email\""), "{err}");
}

#[test]
fn personal_keeps_stale_rules_and_bad_kinds_are_refused() {
    let base = "id = \"keep\"\nborn = \"keep\"\nmeta = \"keep\"\n";
    let err = run(&format!("[tables.\"public.people\".columns]\n{base}email = \"keep\"\nnickname = \"first_name\"\n"))
        .unwrap_err();
    assert!(err.to_string().contains("public.people.email is kept, but its name looks personal"), "{err}");
    let err = run(&format!("[tables.\"public.people\".columns]\n{base}email = \"email\"\nnickname = \"keep\"\n"))
        .unwrap_err();
    assert!(err.to_string().contains("public.people.nickname is kept, but its values look personal"), "{err}");
    let err = run(&format!(
        "[tables.\"public.people\".columns]\n{base}email = \"null\"\nnickname = \"bogus\"\nghost = \"keep\"\n"
    ))
    .unwrap_err();
    let err = err.to_string();
    assert!(
        err.contains("email: is NOT NULL")
            && err.contains("unknown rule `bogus`")
            && err.contains("ghost has a rule but no such column"),
        "{err}"
    );
    let err = run("[tables.\"public.nobody\"]\nmode = \"skip\"\n").unwrap_err().to_string();
    assert!(err.contains("public.nobody has rules but does not exist"), "{err}");
    let err = run("schemas = [\"auth\"]").unwrap_err();
    assert!(format!("{err:#}").contains("schema `auth` is managed by Supabase"), "{err:#}");
    let err = run("[tables.\"public.people\"\nmode = 1").unwrap_err();
    assert!(format!("{err:#}").starts_with("rules.toml is invalid: line "), "{err:#}");
}

#[test]
fn shifts_and_jitter_refuse_types_without_a_date_or_a_number() {
    let mut table = table();
    table.columns = vec![
        column("id", Category::User, "uuid", true),
        column("opens", Category::DateTime, "time", false),
        column("closes", Category::DateTime, "timetz", false),
        column("fee", Category::Numeric, "money", false),
        column("doc", Category::Numeric, "oid", false),
    ];
    let shift = "{ rule = \"date_shift\", days = 3 }";
    let jitter = "{ rule = \"numeric_jitter\", percent = 5 }";
    let text = format!(
        "[tables.\"public.people\".columns]\nid = \"keep\"\nopens = {shift}\ncloses = {shift}\nfee = {jitter}\ndoc = {jitter}\n"
    );
    let err = check("rules.toml", &text, &[table], &mut |_, _| Ok(false)).unwrap_err().to_string();
    for expected in [
        "opens: `date_shift` needs a date or timestamp column, not time",
        "closes: `date_shift` needs a date or timestamp column, not timetz",
        "fee: `numeric_jitter` needs a numeric column, not money",
        "doc: `numeric_jitter` needs a numeric column, not oid",
    ] {
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

#[test]
fn bytea_takes_no_bytes_or_keyed_bytes_under_not_null() {
    let mut table = table();
    table.columns = vec![
        column("id", Category::User, "uuid", true),
        column("avatar", Category::User, "bytea", true),
        column("key", Category::User, "bytea", true),
        column("note", Category::String, "text", false),
    ];
    table.uniques = vec![vec!["id".into()], vec!["key".into()]];
    let check_one = |body: &str| {
        let text = format!("[tables.\"public.people\".columns]\nid = \"keep\"\n{body}");
        check("rules.toml", &text, &[table.clone()], &mut |_, _| Ok(false))
    };
    let rules = check_one("avatar = \"redact\"\nkey = \"bytes\"\nnote = \"null\"\n").unwrap();
    let columns = &rules.tables["public.people"].columns;
    assert_eq!(columns[1].1, Rule::Bytes(ByteRule::Empty));
    assert_eq!(columns[2].1, Rule::Bytes(ByteRule::Keyed));
    assert!(columns[1].1.is_masking() && columns[2].1.is_masking());
    let err = check_one("avatar = { rule = \"redact\", value = \"x\" }\nkey = \"redact\"\nnote = \"bytes\"\n")
        .unwrap_err()
        .to_string();
    for expected in [
        "avatar: `redact` on bytea takes no `value`",
        "key is in a unique key or index, so `redact` would give every row one value; use a pseudonym kind (on bytea: `bytes`)",
        "note: `bytes` needs a bytea column, not text",
    ] {
        assert!(err.contains(expected), "{expected}: {err}");
    }
    // Missing rules: the snippet gives a unique bytea keyed bytes, which the check accepts.
    let err = check_one("note = \"null\"\n").unwrap_err().to_string();
    assert!(err.contains("avatar = \"redact\"\nkey = \"bytes\"\n"), "{err}");
    // Both COPY forms: the same bytes, of the same length, keyed; empty stays empty.
    let masker = super::super::mask::Masker::new("a-key-of-enough-length");
    let value = b"\x89PNG\r\n secret picture";
    let keyed = super::super::mask::mask_bytea(ByteRule::Keyed, value, &masker);
    assert_eq!(keyed.len(), value.len());
    assert_ne!(&keyed[..], &value[..]);
    assert_eq!(keyed, masker.bytes(value));
    assert_ne!(keyed, super::super::mask::Masker::new("another-key-of-length").bytes(value));
    assert!(super::super::mask::mask_bytea(ByteRule::Keyed, b"", &masker).is_empty());
    assert!(super::super::mask::mask_bytea(ByteRule::Empty, value, &masker).is_empty());
    let text = super::super::binary::bytea_text(value);
    assert!(text.starts_with("\\x89504e47"), "{text}");
    assert_eq!(super::super::binary::bytea_from_text(&text).unwrap(), value);
    assert!(
        super::super::binary::bytea_from_text("\\x0").is_err() && super::super::binary::bytea_from_text("abc").is_err()
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

    /// Any text, or the committed rules cut anywhere and followed by anything: an error
    /// of one line (the uncovered-columns snippet aside), never a panic.
    #[test]
    fn rules_never_panic(text in proptest::prelude::any::<String>(), cut in 0usize..4000) {
        for candidate in [text.clone(), {
            let committed = include_str!("../../../../env/stage-sync.toml");
            let mut cut = cut.min(committed.len());
            while !committed.is_char_boundary(cut) { cut -= 1; }
            format!("{}{text}", &committed[..cut])
        }] {
            if let Err(err) = run(&candidate) {
                let text = format!("{err:#}");
                let first = text.lines().next().unwrap_or_default();
                proptest::prop_assert!(!first.is_empty());
                proptest::prop_assert!(text.lines().count() == 1 || text.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")), "{}", text);
            }
        }
    }
}

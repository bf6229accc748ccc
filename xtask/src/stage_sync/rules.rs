//! The rules file: for every column of every synced table, what happens to it. Strict: a
//! column without a rule, a rule for something that doesn't exist, or a personal-looking
//! column kept without review stops the sync before anything is read.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::{
    catalog::{Category, Column, Table},
    suggest::{is_key_like, looks_personal, suggest},
};

/// What the rules file holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "default_schemas")]
    schemas: Vec<String>,
    #[serde(default)]
    tables: BTreeMap<String, TableFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    columns: BTreeMap<String, RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RuleFile {
    Name(String),
    Full(FullRule),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FullRule {
    rule: String,
    value: Option<String>,
    days: Option<u32>,
    percent: Option<f64>,
    keys: Option<BTreeMap<String, String>>,
    /// jsonb: the keys whose string values are kept; every other string value is masked.
    allow: Option<Vec<String>>,
    /// jsonb with `allow`: how the other string values are masked (default `redact`).
    others: Option<String>,
    #[serde(default)]
    reviewed: bool,
}

/// What happens to a table.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Copied, column by column through the rules.
    #[default]
    Copy,
    /// Emptied in the target; nothing copied.
    Skip,
    /// Left as the target has it: only the schema is shared.
    SchemaOnly,
}

/// What happens to a column.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    Keep,
    Null,
    Redact(String),
    Pseudonym(Kind),
    DateShift(u32),
    NumericJitter(f64),
    /// Keys inside a json/jsonb value, at any depth, and what happens to their values.
    Json(JsonSpec),
    /// A pseudonym kind applied to each element of a text array.
    Elements(Kind),
}

/// What happens inside a JSON value.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonSpec {
    /// Listed keys, at any depth, and their rules.
    pub keys: BTreeMap<String, JsonRule>,
    /// With an allowlist: the rule for every string value under a key neither listed nor
    /// allowed (and for strings not under any key).
    pub others: Option<JsonRule>,
    /// Keys whose string values are kept.
    pub allow: std::collections::BTreeSet<String>,
}

impl JsonSpec {
    /// The rule for a string value under `key` (`None`: not under a key, an array's
    /// top-level item), or `None` when it is kept.
    pub fn rule_for(&self, key: Option<&str>) -> Option<&JsonRule> {
        if let Some(rule) = key.and_then(|k| self.keys.get(k)) {
            return Some(rule);
        }
        if key.is_some_and(|k| self.allow.contains(k)) {
            return None;
        }
        self.others.as_ref()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum JsonRule {
    Null,
    Redact,
    Pseudonym(Kind),
}

/// The pseudonym kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Email,
    FirstName,
    LastName,
    FullName,
    Phone,
    StreetAddress,
    City,
    Zip,
    Company,
    Text,
    Uuid,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Email,
        Kind::FirstName,
        Kind::LastName,
        Kind::FullName,
        Kind::Phone,
        Kind::StreetAddress,
        Kind::City,
        Kind::Zip,
        Kind::Company,
        Kind::Text,
        Kind::Uuid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::FirstName => "first_name",
            Kind::LastName => "last_name",
            Kind::FullName => "full_name",
            Kind::Phone => "phone",
            Kind::StreetAddress => "street_address",
            Kind::City => "city",
            Kind::Zip => "zip",
            Kind::Company => "company",
            Kind::Text => "text",
            Kind::Uuid => "uuid",
        }
    }

    fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl Rule {
    /// Rules that replace values by others derived from them: their output must never equal
    /// a source value (the leak check). Perturbations (dates, numbers) are exempt: a shifted
    /// date may well equal another row's date.
    pub fn is_masking(&self) -> bool {
        matches!(self, Rule::Redact(_) | Rule::Pseudonym(_) | Rule::Json(_) | Rule::Elements(_))
    }

    pub fn label(&self) -> String {
        match self {
            Rule::Keep => "keep".into(),
            Rule::Null => "null".into(),
            Rule::Redact(_) => "redact".into(),
            Rule::Pseudonym(kind) => kind.name().into(),
            Rule::DateShift(days) => format!("date_shift ±{days}d"),
            Rule::NumericJitter(percent) => format!("numeric_jitter ±{percent}%"),
            Rule::Json(spec) if spec.others.is_some() => {
                format!("jsonb all but {}", spec.allow.iter().cloned().collect::<Vec<_>>().join(","))
            }
            Rule::Json(spec) => format!("jsonb keys {}", spec.keys.keys().cloned().collect::<Vec<_>>().join(",")),
            Rule::Elements(kind) => format!("{}[]", kind.name()),
        }
    }
}

/// The checked rules for one synced table.
#[derive(Clone, Debug)]
pub struct TableRules {
    pub mode: Mode,
    /// One rule per copied column, in the table's column order.
    pub columns: Vec<(String, Rule)>,
}

/// The checked rules: the schemas, and for each of their tables, its rules.
#[derive(Debug)]
pub struct Rules {
    pub schemas: Vec<String>,
    pub tables: BTreeMap<String, TableRules>,
    /// sha256 of the file, recorded with each sync.
    pub checksum: String,
}

fn default_schemas() -> Vec<String> {
    vec!["public".to_string()]
}

/// Schemas the sync never reads or writes, whatever the file says.
const MANAGED_SCHEMAS: &[&str] = app::stamp::SUPABASE_SCHEMAS;

/// The one table of a managed schema that may be synced, when the rules name it (masked).
pub const AUTH_USERS: &str = "auth.users";

/// Parses the file; errors are one line with the line number.
pub fn parse(text: &str) -> Result<(Vec<String>, RawRules)> {
    let file: File = toml::from_str(text).map_err(|err| {
        let line = err.span().map(|span| text[..span.start.min(text.len())].lines().count().max(1)).unwrap_or(1);
        anyhow::anyhow!("line {line}: {}", err.message().replace('\n', " "))
    })?;
    if let Some(schema) = file.schemas.iter().find(|s| MANAGED_SCHEMAS.contains(&s.as_str())) {
        bail!("schema `{schema}` is managed by Supabase (or by this tool) and is never synced");
    }
    for name in file.tables.keys() {
        let schema = name.split('.').next().unwrap_or_default();
        if MANAGED_SCHEMAS.contains(&schema) && name != AUTH_USERS {
            bail!(
                "table {name} is managed by Supabase and is never synced (of its schemas, only {AUTH_USERS} may be, masked)"
            );
        }
    }
    Ok((file.schemas.clone(), RawRules { tables: file.tables }))
}

/// The tables outside the synced schemas that the file names: `auth.users`, or nothing.
pub fn extra_tables(text: &str) -> Result<Vec<String>> {
    let (_, raw) = parse(text)?;
    Ok(raw.tables.keys().filter(|name| name.as_str() == AUTH_USERS).cloned().collect())
}

/// The file's tables, not yet checked against a schema.
#[derive(Debug)]
pub struct RawRules {
    tables: BTreeMap<String, TableFile>,
}

/// Loads and checks the rules against the source's tables. `personal_values` says whether
/// a column's sampled values look personal (emails, phone numbers).
pub fn check(
    path_shown: &str,
    text: &str,
    tables: &[Table],
    personal_values: &mut dyn FnMut(&Table, &Column) -> Result<bool>,
) -> Result<Rules> {
    let (schemas, raw) = parse(text).with_context(|| format!("{path_shown} is invalid"))?;
    let mut uncovered: BTreeMap<String, Vec<&Column>> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut checked = BTreeMap::new();
    for name in raw.tables.keys() {
        if !tables.iter().any(|t| &t.key() == name) {
            problems.push(format!("table {name} has rules but does not exist in the source"));
        }
    }
    for table in tables {
        let file = raw.tables.get(&table.key());
        let mode = file.map_or(Mode::Copy, |f| f.mode);
        let mut columns = Vec::new();
        for (name, _) in file.map(|f| &f.columns).into_iter().flatten() {
            match table.columns.iter().find(|c| &c.name == name) {
                None => problems.push(format!("{}.{name} has a rule but no such column", table.key())),
                Some(c) if c.generated => problems
                    .push(format!("{}.{name} is generated (recomputed by the target): remove its rule", table.key())),
                Some(_) => {}
            }
        }
        if mode == Mode::Copy {
            for column in table.copied_columns() {
                let Some(raw_rule) = file.and_then(|f| f.columns.get(&column.name)) else {
                    uncovered.entry(table.key()).or_default().push(column);
                    continue;
                };
                let where_ = format!("{}.{}", table.key(), column.name);
                match resolve(raw_rule, column) {
                    Err(err) => problems.push(format!("{where_}: {err}")),
                    Ok((Rule::Keep, reviewed)) if !reviewed => {
                        if looks_personal(&column.name) && !is_key_like(column) {
                            problems.push(format!("{where_} is kept, but its name looks personal (mark the rule reviewed = true if it is not)"));
                        } else if super::init::sampled(column) && personal_values(table, column)? {
                            problems.push(format!("{where_} is kept, but its values look personal (mark the rule reviewed = true if they are not)"));
                        }
                        columns.push((column.name.clone(), Rule::Keep));
                    }
                    Ok((Rule::Redact(_), _)) if table.is_unique(&column.name) => problems.push(format!(
                        "{where_} is in a unique key or index, so `redact` would give every row one value; use a pseudonym kind"
                    )),
                    Ok((rule, _)) => columns.push((column.name.clone(), rule)),
                }
            }
        }
        checked.insert(table.key(), TableRules { mode, columns });
    }
    // A foreign key follows the rule of the key it references, or joins would break.
    for table in tables {
        for fk in &table.foreign_keys {
            for (column, target_column) in fk.columns.iter().zip(&fk.target_columns) {
                let rule_of = |t: &str, c: &str| {
                    checked
                        .get(t)
                        .filter(|r| r.mode == Mode::Copy)
                        .and_then(|r| r.columns.iter().find(|(n, _)| n == c))
                        .map(|(_, r)| r)
                };
                if let (Some(mine), Some(theirs)) = (rule_of(&table.key(), column), rule_of(&fk.target, target_column))
                {
                    if mine != theirs {
                        problems.push(format!(
                            "{}.{column} references {}.{target_column}, so it needs the same rule ({}, not {})",
                            table.key(),
                            fk.target,
                            theirs.label(),
                            mine.label()
                        ));
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!("{path_shown} has {} problem(s): {}", problems.len(), problems.join("; "));
    }
    if !uncovered.is_empty() {
        let count: usize = uncovered.values().map(Vec::len).sum();
        let list: Vec<String> =
            uncovered.iter().flat_map(|(t, cols)| cols.iter().map(move |c| format!("{t}.{}", c.name))).collect();
        let mut snippet = String::new();
        for (table, columns) in &uncovered {
            snippet.push_str(&format!("\n[tables.\"{table}\".columns]\n"));
            for column in columns {
                snippet.push_str(&format!("{} = {}\n", super::suggest::toml_key(&column.name), suggest(column)));
            }
        }
        bail!(
            "{count} column(s) have no rule in {path_shown}: {}\nhint: review and paste into {path_shown}:{snippet}",
            list.join(", ")
        );
    }
    let checksum = crate::migrate::checksum_text(text);
    Ok(Rules { schemas, tables: checked, checksum })
}

/// Only the schemas, for reading the catalog before the rules are checked.
pub fn schemas(text: &str) -> Result<Vec<String>> {
    parse(text).map(|(schemas, _)| schemas)
}

fn resolve(raw: &RuleFile, column: &Column) -> Result<(Rule, bool)> {
    let (name, full) = match raw {
        RuleFile::Name(name) => (name.as_str(), None),
        RuleFile::Full(full) => (full.rule.as_str(), Some(full)),
    };
    let reviewed = full.is_some_and(|f| f.reviewed);
    let text_like = column.category == Category::String;
    let rule = match name {
        "keep" => Rule::Keep,
        "null" if column.not_null => bail!("is NOT NULL, so `null` cannot apply; use redact or a pseudonym"),
        "null" => Rule::Null,
        "redact" if !text_like => bail!("`redact` needs a text column, not {}", column.type_name),
        "redact" => Rule::Redact(full.and_then(|f| f.value.clone()).unwrap_or_else(|| "[redacted]".to_string())),
        "date_shift" => {
            if column.category != Category::DateTime {
                bail!("`date_shift` needs a date or timestamp column, not {}", column.type_name);
            }
            Rule::DateShift(full.and_then(|f| f.days).context("`date_shift` needs days = N")?)
        }
        "numeric_jitter" => {
            if column.category != Category::Numeric {
                bail!("`numeric_jitter` needs a numeric column, not {}", column.type_name);
            }
            let percent = full.and_then(|f| f.percent).context("`numeric_jitter` needs percent = P")?;
            if !(0.0..=100.0).contains(&percent) {
                bail!("percent must be between 0 and 100");
            }
            Rule::NumericJitter(percent)
        }
        "jsonb" | "json" => {
            if !matches!(column.base_type.as_str(), "json" | "jsonb") {
                bail!("`jsonb` needs a json or jsonb column, not {}", column.type_name);
            }
            let keys = full.and_then(|f| f.keys.clone()).unwrap_or_default();
            let allow = full.and_then(|f| f.allow.clone());
            if allow.is_none() && full.is_some_and(|f| f.others.is_some()) {
                bail!("`others` goes with `allow`: the keys whose values are kept");
            }
            if keys.is_empty() && allow.is_none() {
                bail!("`jsonb` needs keys = {{ key = \"kind\" }} or allow = [\"key\", ...]");
            }
            let json_rule = |key: &str, kind: &str| -> Result<JsonRule> {
                Ok(match kind {
                    "null" => JsonRule::Null,
                    "redact" => JsonRule::Redact,
                    other => JsonRule::Pseudonym(
                        Kind::parse(other).with_context(|| format!("unknown kind `{other}` for key `{key}`"))?,
                    ),
                })
            };
            let mut parsed = BTreeMap::new();
            for (key, kind) in &keys {
                parsed.insert(key.clone(), json_rule(key, kind)?);
            }
            let others = match (&allow, full.and_then(|f| f.others.as_deref())) {
                (None, _) => None,
                (Some(_), kind) => Some(json_rule("others", kind.unwrap_or("redact"))?),
            };
            Rule::Json(JsonSpec { keys: parsed, others, allow: allow.unwrap_or_default().into_iter().collect() })
        }
        other => {
            let kind = Kind::parse(other).with_context(|| {
                format!("unknown rule `{other}`; use keep, null, redact, date_shift, numeric_jitter, jsonb or a pseudonym kind ({})", kinds())
            })?;
            if column.category == Category::Array {
                if !matches!(column.base_type.as_str(), "_text" | "_varchar" | "_bpchar" | "_citext") {
                    bail!("pseudonym `{}` on an array needs an array of text, not {}", kind.name(), column.type_name);
                }
                return Ok((Rule::Elements(kind), reviewed));
            }
            let fits = if kind == Kind::Uuid { column.base_type == "uuid" || text_like } else { text_like };
            if !fits {
                bail!("pseudonym `{}` needs a text column, not {}", kind.name(), column.type_name);
            }
            Rule::Pseudonym(kind)
        }
    };
    Ok((rule, reviewed))
}

fn kinds() -> String {
    Kind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, category: Category, base: &str, not_null: bool) -> Column {
        Column {
            name: name.into(),
            type_name: base.into(),
            not_null,
            generated: false,
            category,
            base_type: base.into(),
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
        let err =
            run(&format!("[tables.\"public.people\".columns]\n{base}email = \"keep\"\nnickname = \"first_name\"\n"))
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// Any text, or the committed rules cut anywhere and followed by anything: an error
        /// of one line (the uncovered-columns snippet aside), never a panic.
        #[test]
        fn rules_never_panic(text in proptest::prelude::any::<String>(), cut in 0usize..4000) {
            for candidate in [text.clone(), {
                let committed = include_str!("../../../env/stage-sync.toml");
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
}

//! The rules file: for every column of every synced table, what happens to it. Strict: a
//! column without a rule, a rule for something that doesn't exist, or a personal-looking
//! column kept without review stops the sync before anything is read.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::{
    catalog::{Category, Column, Table},
    suggest::{name_looks_personal, suggest},
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
pub(super) enum Mode {
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
pub(super) enum Rule {
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
    /// bytea, NOT NULL too: every value replaced; an empty one stays empty.
    Bytes(ByteRule),
}

/// What replaces a bytea value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ByteRule {
    /// No bytes (`redact` on bytea).
    Empty,
    /// Keyed bytes of the same length (`bytes`): equal values stay equal, distinct ones apart.
    Keyed,
}

/// What happens inside a JSON value.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct JsonSpec {
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
    pub(super) fn rule_for(&self, key: Option<&str>) -> Option<&JsonRule> {
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
pub(super) enum JsonRule {
    Null,
    Redact,
    Pseudonym(Kind),
}

/// The pseudonym kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Kind {
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
    pub(super) const ALL: [Kind; 11] = [
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

    pub(super) fn name(self) -> &'static str {
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
    pub(super) fn is_masking(&self) -> bool {
        matches!(self, Rule::Redact(_) | Rule::Pseudonym(_) | Rule::Json(_) | Rule::Elements(_) | Rule::Bytes(_))
    }

    pub(super) fn label(&self) -> String {
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
            Rule::Bytes(ByteRule::Empty) => "redact (no bytes)".into(),
            Rule::Bytes(ByteRule::Keyed) => "bytes".into(),
        }
    }
}

/// The checked rules for one synced table.
#[derive(Clone, Debug)]
pub(super) struct TableRules {
    pub mode: Mode,
    /// One rule per copied column, in the table's column order.
    pub columns: Vec<(String, Rule)>,
}

/// The checked rules: the schemas, and for each of their tables, its rules.
#[derive(Debug)]
pub(super) struct Rules {
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
pub(super) const AUTH_USERS: &str = "auth.users";

/// Parses the file; errors are one line with the line number.
pub(super) fn parse(text: &str) -> Result<(Vec<String>, RawRules)> {
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
pub(super) fn extra_tables(text: &str) -> Result<Vec<String>> {
    let (_, raw) = parse(text)?;
    Ok(raw.tables.keys().filter(|name| name.as_str() == AUTH_USERS).cloned().collect())
}

/// The file's tables, not yet checked against a schema.
#[derive(Debug)]
pub(super) struct RawRules {
    tables: BTreeMap<String, TableFile>,
}

/// Loads and checks the rules against the source's tables. `personal_values` says whether
/// a column's sampled values look personal (emails, phone numbers).
pub(super) fn check(
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
                        if name_looks_personal(column) {
                            problems.push(format!("{where_} is kept, but its name looks personal (mark the rule reviewed = true if it is not)"));
                        } else if super::init::sampled(column) && personal_values(table, column)? {
                            problems.push(format!("{where_} is kept, but its values look personal (mark the rule reviewed = true if they are not)"));
                        }
                        columns.push((column.name.clone(), Rule::Keep));
                    }
                    Ok((Rule::Redact(_) | Rule::Bytes(ByteRule::Empty), _)) if table.is_unique(&column.name) => problems.push(format!(
                        "{where_} is in a unique key or index, so `redact` would give every row one value; use a pseudonym kind (on bytea: `bytes`)"
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
            let unique = |c: &Column| tables.iter().any(|t| &t.key() == table && t.is_unique(&c.name));
            for column in columns {
                let rule =
                    if unique(column) { super::suggest::for_unique(column, suggest(column)) } else { suggest(column) };
                snippet.push_str(&format!("{} = {rule}\n", super::suggest::toml_key(&column.name)));
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
pub(super) fn schemas(text: &str) -> Result<Vec<String>> {
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
        "redact" | "bytes" if column.base_type == "bytea" => {
            if full.is_some_and(|f| f.value.is_some()) {
                bail!("`{name}` on bytea takes no `value`");
            }
            Rule::Bytes(if name == "redact" { ByteRule::Empty } else { ByteRule::Keyed })
        }
        "bytes" => bail!("`bytes` needs a bytea column, not {}", column.type_name),
        "redact" if !text_like => bail!("`redact` needs a text column, not {}", column.type_name),
        "redact" => Rule::Redact(full.and_then(|f| f.value.clone()).unwrap_or_else(|| "[redacted]".to_string())),
        "date_shift" => {
            // time and timetz are date/time types too, but hold no date: nothing to shift.
            if column.category != Category::DateTime || matches!(column.base_type.as_str(), "time" | "timetz") {
                bail!("`date_shift` needs a date or timestamp column, not {}", column.type_name);
            }
            Rule::DateShift(full.and_then(|f| f.days).context("`date_shift` needs days = N")?)
        }
        "numeric_jitter" => {
            // money prints with a currency sign, oids and reg* name objects: no number to move.
            let not_a_number =
                matches!(column.base_type.as_str(), "money" | "oid") || column.base_type.starts_with("reg");
            if column.category != Category::Numeric || not_a_number {
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
                format!("unknown rule `{other}`; use keep, null, redact, bytes, date_shift, numeric_jitter, jsonb or a pseudonym kind ({})", kinds())
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
mod tests;

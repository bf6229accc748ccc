//! The rules file: for every column of every synced table, what happens to it. Read once
//! per run into [`RulesFile`], the model the plan (its schemas and extra tables), the check
//! (`check.rs`: every column covered, every rule fitting its column) and the pipe (the
//! checked [`Rules`]) use. Suggestions (`suggest.rs`, `init.rs`) build on it, never the
//! reverse.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::catalog::{Category, Column};

/// What the rules file holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "default_schemas")]
    schemas: Vec<String>,
    #[serde(default)]
    tables: BTreeMap<String, TableFile>,
}

/// A table's section of the file, not yet checked against the table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TableFile {
    #[serde(default)]
    pub mode: Mode,
    /// Each named column's rule, as written.
    #[serde(default)]
    pub columns: BTreeMap<String, RuleFile>,
}

/// A column's rule as written: a name, or a table with the rule's settings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RuleFile {
    Name(String),
    Full(FullRule),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FullRule {
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

/// The rules file, parsed once per run.
#[derive(Debug)]
pub(super) struct RulesFile {
    /// The file as the command line named it: every message about it says so.
    pub shown: String,
    /// The synced schemas.
    pub schemas: Vec<String>,
    /// Each named table's section, by `schema.table`.
    pub tables: BTreeMap<String, TableFile>,
    /// sha256 of the file, recorded with each sync.
    pub checksum: String,
}

impl RulesFile {
    /// Parses the file; errors are `{shown} is invalid: line N: ...`.
    pub(super) fn parse(text: &str, shown: &str) -> Result<RulesFile> {
        let file = parse(text).with_context(|| format!("{shown} is invalid"))?;
        Ok(RulesFile {
            shown: shown.to_string(),
            schemas: file.schemas,
            tables: file.tables,
            checksum: crate::migrate::checksum_text(text),
        })
    }

    /// The tables outside the synced schemas that the file names: `auth.users`, or nothing.
    pub(super) fn extra_tables(&self) -> Vec<String> {
        self.tables.keys().filter(|name| name.as_str() == AUTH_USERS).cloned().collect()
    }
}

/// The file's own checks: one line, with the line number for TOML errors.
fn parse(text: &str) -> Result<File> {
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
    Ok(file)
}

impl RuleFile {
    /// The rule for `column`, checked against its type, and whether a person marked it
    /// reviewed.
    pub(super) fn resolve(&self, column: &Column) -> Result<(Rule, bool)> {
        let (name, full) = match self {
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
            "date_shift" => date_shift(full, column)?,
            "numeric_jitter" => numeric_jitter(full, column)?,
            "jsonb" | "json" => json(full, column)?,
            other => pseudonym(other, column)?,
        };
        Ok((rule, reviewed))
    }
}

fn date_shift(full: Option<&FullRule>, column: &Column) -> Result<Rule> {
    // time and timetz are date/time types too, but hold no date: nothing to shift.
    if column.category != Category::DateTime || matches!(column.base_type.as_str(), "time" | "timetz") {
        bail!("`date_shift` needs a date or timestamp column, not {}", column.type_name);
    }
    Ok(Rule::DateShift(full.and_then(|f| f.days).context("`date_shift` needs days = N")?))
}

fn numeric_jitter(full: Option<&FullRule>, column: &Column) -> Result<Rule> {
    // money prints with a currency sign, oids and reg* name objects: no number to move.
    let not_a_number = matches!(column.base_type.as_str(), "money" | "oid") || column.base_type.starts_with("reg");
    if column.category != Category::Numeric || not_a_number {
        bail!("`numeric_jitter` needs a numeric column, not {}", column.type_name);
    }
    let percent = full.and_then(|f| f.percent).context("`numeric_jitter` needs percent = P")?;
    if !(0.0..=100.0).contains(&percent) {
        bail!("percent must be between 0 and 100");
    }
    Ok(Rule::NumericJitter(percent))
}

fn json(full: Option<&FullRule>, column: &Column) -> Result<Rule> {
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
    let mut parsed = BTreeMap::new();
    for (key, kind) in &keys {
        parsed.insert(key.clone(), json_rule(key, kind)?);
    }
    let others = match (&allow, full.and_then(|f| f.others.as_deref())) {
        (None, _) => None,
        (Some(_), kind) => Some(json_rule("others", kind.unwrap_or("redact"))?),
    };
    Ok(Rule::Json(JsonSpec { keys: parsed, others, allow: allow.unwrap_or_default().into_iter().collect() }))
}

fn json_rule(key: &str, kind: &str) -> Result<JsonRule> {
    Ok(match kind {
        "null" => JsonRule::Null,
        "redact" => JsonRule::Redact,
        other => {
            JsonRule::Pseudonym(Kind::parse(other).with_context(|| format!("unknown kind `{other}` for key `{key}`"))?)
        }
    })
}

/// A pseudonym kind's rule: on text (a uuid column takes `uuid`), or on each element of a
/// text array.
fn pseudonym(name: &str, column: &Column) -> Result<Rule> {
    let kind = Kind::parse(name).with_context(|| {
        format!("unknown rule `{name}`; use keep, null, redact, bytes, date_shift, numeric_jitter, jsonb or a pseudonym kind ({})", kinds())
    })?;
    if column.category == Category::Array {
        if !matches!(column.base_type.as_str(), "_text" | "_varchar" | "_bpchar" | "_citext") {
            bail!("pseudonym `{}` on an array needs an array of text, not {}", kind.name(), column.type_name);
        }
        return Ok(Rule::Elements(kind));
    }
    let text_like = column.category == Category::String;
    let fits = if kind == Kind::Uuid { column.base_type == "uuid" || text_like } else { text_like };
    if !fits {
        bail!("pseudonym `{}` needs a text column, not {}", kind.name(), column.type_name);
    }
    Ok(Rule::Pseudonym(kind))
}

fn kinds() -> String {
    Kind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
pub(super) mod tests;

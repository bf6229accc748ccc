//! The workload file (`env/load.toml`): the dashboard's queries, each with its SQL, its weight
//! in the mix, the roles it runs as, whose claims it carries, and the date ranges it asks
//! for. Parameters are written `:name` and drawn from the target's own data for every
//! transaction (see `params.rs`); here they become positional parameters, bound as text and
//! cast to their type, so a workload never depends on client-side type inference.
//!
//! Every problem is one line naming the file's line: a workload is edited by hand, and a
//! load test that silently skips a query measures the wrong thing.

use std::{ops::Range, path::Path};

use anyhow::{Context, Result};
use serde::Deserialize;
use toml::Spanned;

/// A parsed, checked workload.
#[derive(Debug)]
pub(super) struct Workload {
    pub queries: Vec<Query>,
}

/// One query of the mix.
#[derive(Debug)]
pub(super) struct Query {
    pub name: String,
    pub weight: u32,
    pub roles: Vec<Role>,
    /// The clinic roles whose members' claims it carries; empty: any member.
    pub members: Vec<String>,
    /// Lengths of the `:from`..`:to` range, in days; one is drawn per transaction.
    pub days: Vec<u32>,
    /// The SQL with `$1::type`-style positional parameters.
    pub sql: String,
    /// What each positional parameter is, in order.
    pub params: Vec<Param>,
}

/// The database roles the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Role {
    /// A signed-in member: row-level security applies.
    Authenticated,
    /// The server-side key: bypasses row-level security.
    ServiceRole,
}

impl Role {
    pub(super) fn name(self) -> &'static str {
        match self {
            Role::Authenticated => "authenticated",
            Role::ServiceRole => "service_role",
        }
    }
}

/// A value drawn per transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Param {
    /// The member's clinic.
    Clinic,
    /// A clinic the member does not belong to (to show what RLS denies).
    OtherClinic,
    /// The member's `public.users.id`.
    User,
    /// A provider of the clinic.
    Provider,
    /// A location of the clinic.
    Location,
    /// First day of the range (`to - days + 1`).
    From,
    /// Last day of the range, within the clinic's data.
    To,
    /// One day within the clinic's data.
    Day,
    /// An amount of money, as a data sync would write.
    Amount,
}

const PARAMS: [(&str, Param, &str); 9] = [
    ("clinic", Param::Clinic, "uuid"),
    ("other_clinic", Param::OtherClinic, "uuid"),
    ("user", Param::User, "uuid"),
    ("provider", Param::Provider, "uuid"),
    ("location", Param::Location, "uuid"),
    ("from", Param::From, "date"),
    ("to", Param::To, "date"),
    ("day", Param::Day, "date"),
    ("amount", Param::Amount, "numeric"),
];

const CLINIC_ROLES: [&str; 5] = ["owner", "admin", "provider", "staff", "viewer"];
const DEFAULT_DAYS: [u32; 3] = [7, 30, 365];

/// Statements that would end the measured transaction early: the runner owns it. Everything
/// else a rollback might not undo is refused by `effects.rs`, on the parsed statement.
const FORBIDDEN_STARTS: [&str; 9] =
    ["begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release", "prepare"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    query: Vec<Spanned<RawQuery>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    name: Spanned<String>,
    /// For readers of the file; accepted so that unknown fields can stay errors.
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    weight: Spanned<i64>,
    roles: Spanned<Vec<String>>,
    members: Option<Spanned<Vec<String>>>,
    days: Option<Spanned<Vec<i64>>>,
    sql: Spanned<String>,
}

/// Reads and checks a workload file; `shown` is how errors name it.
pub(super) fn load(path: &Path, shown: &str) -> Result<Workload> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the workload file {shown}\nhint: the default is env/load.toml"))?;
    parse(&text).map_err(|(span, problem)| anyhow::anyhow!("{shown} line {}: {problem}", line_of(&text, span.start)))
}

/// A problem and where it is.
pub(super) type Problem = (Range<usize>, String);

pub(super) fn parse(text: &str) -> Result<Workload, Problem> {
    let file: File = toml::from_str(text).map_err(|err| {
        let message = err.message().lines().next().unwrap_or("not valid TOML").to_string();
        (err.span().unwrap_or(0..0), message)
    })?;
    if file.query.is_empty() {
        return Err((0..0, "no [[query]] entries: a workload needs at least one query".to_string()));
    }
    let mut queries: Vec<Query> = Vec::new();
    for raw in file.query {
        let query = check(text, raw.into_inner())?;
        queries.push(query);
    }
    Ok(Workload { queries })
}

fn check(text: &str, raw: RawQuery) -> Result<Query, Problem> {
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err((raw.name.span(), "name must be letters, digits and underscores".to_string()));
    }
    let weight = *raw.weight.get_ref();
    if !(1..=1000).contains(&weight) {
        return Err((raw.weight.span(), format!("weight must be between 1 and 1000, not {weight}")));
    }
    let mut roles = Vec::new();
    for role in raw.roles.get_ref() {
        let role = match role.as_str() {
            "authenticated" => Role::Authenticated,
            "service_role" => Role::ServiceRole,
            other => {
                return Err((raw.roles.span(), format!("unknown role `{other}` (authenticated or service_role)")));
            }
        };
        if roles.contains(&role) {
            return Err((raw.roles.span(), format!("role `{}` is listed twice", role.name())));
        }
        roles.push(role);
    }
    if roles.is_empty() {
        return Err((raw.roles.span(), "roles is empty: name authenticated, service_role or both".to_string()));
    }
    let members = match raw.members {
        None => Vec::new(),
        Some(members) => {
            if let Some(bad) = members.get_ref().iter().find(|m| !CLINIC_ROLES.contains(&m.as_str())) {
                return Err((
                    members.span(),
                    format!("unknown member role `{bad}` (one of {})", CLINIC_ROLES.join(", ")),
                ));
            }
            members.into_inner()
        }
    };
    let days = match raw.days {
        None => DEFAULT_DAYS.to_vec(),
        Some(days) => {
            if days.get_ref().is_empty() || days.get_ref().iter().any(|d| !(1..=3650).contains(d)) {
                return Err((days.span(), "days must list ranges of 1 to 3650 days".to_string()));
            }
            days.get_ref().iter().map(|&d| d as u32).collect()
        }
    };
    let (sql, params) = positional(text, &raw.sql)?;
    super::effects::check(&sql).map_err(|(offset, problem)| {
        // `positional` keeps the lines, so the offset's line is the same in the source.
        let line = sql[..offset.min(sql.len())].matches('\n').count();
        let source = raw.sql.get_ref();
        let start = source.match_indices('\n').nth(line.wrapping_sub(1)).map_or(0, |(i, _)| i + 1);
        let start = if line == 0 { 0 } else { start };
        (sql_offset(text, raw.sql.span(), source, start), problem)
    })?;
    Ok(Query { name, weight: weight as u32, roles, members, days, sql, params })
}

/// Replaces `:name` parameters by `$N::type`, skipping string literals, quoted identifiers,
/// comments and `::` casts; refuses statements that would take over the transaction.
fn positional(text: &str, sql: &Spanned<String>) -> Result<(String, Vec<Param>), Problem> {
    let source = sql.get_ref();
    let at = |offset: usize| sql_offset(text, sql.span(), source, offset);
    let first_word: String = strip_comments(source)
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    if first_word.is_empty() {
        return Err((sql.span(), "sql is empty".to_string()));
    }
    if FORBIDDEN_STARTS.contains(&first_word.as_str()) {
        return Err((
            sql.span(),
            format!("sql starts with `{first_word}`: the load test runs each query in its own transaction and role"),
        ));
    }
    let bytes = source.as_bytes();
    let (mut out, mut params, mut i) = (String::with_capacity(source.len()), Vec::<Param>::new(), 0);
    while i < bytes.len() {
        let c = bytes[i];
        let skip_to = match c {
            b'\'' | b'"' => source[i + 1..].find(c as char).map(|end| i + end + 2).unwrap_or(bytes.len()),
            b'-' if bytes.get(i + 1) == Some(&b'-') => source[i..].find('\n').map(|end| i + end).unwrap_or(bytes.len()),
            b':' if bytes.get(i + 1) == Some(&b':') => i + 2,
            b':' => {
                let name: String =
                    source[i + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                let Some((_, param, ty)) = PARAMS.iter().find(|(n, _, _)| *n == name) else {
                    let known: Vec<&str> = PARAMS.iter().map(|(n, _, _)| *n).collect();
                    return Err((at(i), format!("unknown parameter `:{name}` (known: {})", known.join(", "))));
                };
                let index = match params.iter().position(|p| p == param) {
                    Some(index) => index,
                    None => {
                        params.push(*param);
                        params.len() - 1
                    }
                };
                out.push_str(&format!("(${}::{ty})", index + 1));
                i += 1 + name.len();
                continue;
            }
            b';' if !source[i + 1..].trim().is_empty() => {
                return Err((at(i), "one statement per query: remove the `;` and what follows".to_string()));
            }
            b';' => {
                i += 1;
                continue;
            }
            _ => i + 1,
        };
        out.push_str(&source[i..skip_to]);
        i = skip_to;
    }
    Ok((out, params))
}

fn strip_comments(sql: &str) -> String {
    sql.lines().map(|l| l.split("--").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// Where `offset` (into the SQL value) lies in the file: the value's span starts at its
/// opening quotes, and a multi-line string drops the newline right after them.
fn sql_offset(text: &str, span: Range<usize>, source: &str, offset: usize) -> Range<usize> {
    let lines_before = source[..offset].matches('\n').count();
    let opening = &text[span.start..span.end.min(span.start + 4)];
    let dropped_newline = usize::from(opening.starts_with("\"\"\"\n") || opening.starts_with("'''\n"));
    let mut position = span.start;
    for _ in 0..lines_before + dropped_newline {
        position += text[position..].find('\n').map(|n| n + 1).unwrap_or(0);
    }
    position..position
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> String {
        let (span, message) = parse(text).unwrap_err();
        format!("line {}: {message}", line_of(text, span.start))
    }

    const GOOD: &str = "[[query]]\nname = \"a\"\nweight = 2\nroles = [\"authenticated\"]\nsql = \"\"\"\nselect 1::int from t\nwhere c = :clinic and d between :from and :to and e = ':x' -- :y\n\"\"\"\n";

    #[test]
    fn parameters_become_positional_and_typed() {
        let workload = parse(GOOD).unwrap();
        let query = &workload.queries[0];
        assert_eq!(query.params, vec![Param::Clinic, Param::From, Param::To]);
        assert!(query.sql.contains("c = ($1::uuid) and d between ($2::date) and ($3::date) and e = ':x' -- :y"));
        assert!(query.sql.contains("1::int"));
        assert_eq!(query.days, DEFAULT_DAYS.to_vec());
    }

    #[test]
    fn problems_name_their_line() {
        assert_eq!(
            problem(&GOOD.replace(":from", ":fro")).split(" (").next().unwrap(),
            "line 7: unknown parameter `:fro`"
        );
        assert!(problem(&GOOD.replace("weight = 2", "weight = 0")).starts_with("line 3: weight must be"));
        assert!(problem(&GOOD.replace("authenticated", "anon")).starts_with("line 4: unknown role `anon`"));
        assert!(problem(&GOOD.replace("weight = 2", "weight = ")).starts_with("line 3: "));
        assert!(problem(&GOOD.replace("name = \"a\"", "nmae = \"a\"")).starts_with("line 2: unknown field `nmae`"));
        assert!(problem(&GOOD.replace("select 1", "commit; select 1")).starts_with("line 5: sql starts with `commit`"));
        assert!(problem(&GOOD.replace("from t", "from t; delete from t")).starts_with("line 6: one statement"));
        assert!(problem("").starts_with("line 1: no [[query]] entries"));
        // Refusals of the parsed statement name the workload line of what they refuse.
        assert!(
            problem(&GOOD.replace("where c", "where pg_catalog.setval('s', 1) = 1 and c"))
                .starts_with("line 7: `setval`")
        );
        assert!(problem(&GOOD.replace("select 1::int from t", "copy t to program 'x'")).starts_with("line 6: `COPY`"));
        assert!(
            problem(&GOOD.replace("select 1::int from t", "select 1::int from t, nextval('s')"))
                .starts_with("line 6: `nextval`")
        );
    }
}

//! The extensions migrations need: found in their `create extension` statements, checked
//! against what this server can install before anything is changed, with the package that
//! provides each missing one. The scripts come in as plain [`Source`]s: this room knows
//! nothing of how `migrate` reads its files. (The server settings an installed `pg_cron`
//! needs are `pg::Binaries::server_conf`'s.)

use std::collections::BTreeSet;

use anyhow::{Result, bail};

use crate::pg::Binaries;

/// One migration file's text, by the path shown in messages.
pub(crate) struct Source<'a> {
    pub file: String,
    pub sql: &'a str,
}

/// [`check`] against what the connected server can install, before `migrate` changes
/// anything.
pub(crate) fn check_on_server(client: &mut impl postgres::GenericClient, sources: &[Source]) -> Result<()> {
    let available = available_on_server(client)?;
    let version: String = client.query_one("show server_version_num", &[])?.get(0);
    let major = version.parse::<u32>().map_or(0, |v| v / 10_000);
    check(sources, &available, major)
}

/// Stops (one error naming each missing extension and its package) unless every extension
/// the migrations create is in `available`. Nothing has been changed when it stops.
pub(crate) fn check(sources: &[Source], available: &BTreeSet<String>, server_version: u32) -> Result<()> {
    let mut missing: Vec<(String, &str)> = Vec::new();
    for source in sources {
        for name in required(source.sql) {
            if !available.contains(&name) && !missing.iter().any(|(n, _)| *n == name) {
                missing.push((name, &source.file));
            }
        }
    }
    let lines: Vec<String> = missing
        .iter()
        .map(|(name, file)| format!("{name} (needed by {file}) {}", provider(name, server_version)))
        .collect();
    match lines.as_slice() {
        [] => Ok(()),
        [one] => bail!(
            "extension {one}\nhint: install it, or remove the statement if the project does not need it; nothing was changed"
        ),
        many => bail!(
            "{} extensions the migrations need are missing on this PostgreSQL {server_version} server:\n  {}\nhint: install them, or remove the statements the project does not need; nothing was changed",
            many.len(),
            many.join("\n  ")
        ),
    }
}

/// The extensions a script creates: the names in its `create extension` statements,
/// outside comments, strings and function bodies (a guarded `create extension` inside a
/// `do $$ ... $$` block is the script's own business).
pub(crate) fn required(sql: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (_, statement) in statements(sql) {
        if let Some(Mention { name, creates: true }) = mention(&statement) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// With `[migrations] skip_platform_extensions = true`: the script with its top-level
/// `create extension` and `comment on extension` statements for platform-only extensions
/// blanked out (line numbers kept, so error positions still point at the file), and a
/// warning for each; `None` when it has none.
pub(crate) fn skip_platform_only(file: &str, sql: &str) -> Option<String> {
    let mut out = sql.to_string();
    let mut skipped = false;
    for (range, statement) in statements(sql) {
        let Some(Mention { name, .. }) = mention(&statement).filter(|m| PLATFORM_ONLY.contains(&m.name.as_str()))
        else {
            continue;
        };
        crate::context::warn(format!(
            "{file}: skipping the statement on extension {name}, which only Supabase's platform provides ([migrations] skip_platform_extensions)"
        ));
        let blank: String = sql[range.clone()].chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect();
        out.replace_range(range, &blank);
        skipped = true;
    }
    skipped.then_some(out)
}

/// An extension a statement names: `create extension [if not exists] NAME` (creates) or
/// `comment on extension NAME`.
struct Mention {
    name: String,
    creates: bool,
}

fn mention(statement: &str) -> Option<Mention> {
    let words: Vec<&str> = statement.split_whitespace().collect();
    let is = |at: usize, word: &str| words.get(at).is_some_and(|w| w.eq_ignore_ascii_case(word));
    let (creates, mut at) = if is(0, "create") && is(1, "extension") {
        (true, 2)
    } else if is(0, "comment") && is(1, "on") && is(2, "extension") {
        (false, 3)
    } else {
        return None;
    };
    if creates && is(at, "if") && is(at + 1, "not") && is(at + 2, "exists") {
        at += 3;
    }
    let word = words.get(at)?;
    let name = match word.strip_prefix('"') {
        Some(quoted) => quoted.trim_end_matches('"').to_string(),
        None => word.to_lowercase(),
    };
    (!name.is_empty()).then_some(Mention { name, creates })
}

/// The top-level statements of a script: each one's byte range (its `;` excluded) and its
/// code with comments, strings and dollar-quoted bodies blanked.
fn statements(sql: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let code = code_only(sql);
    let mut out = Vec::new();
    let mut start = 0;
    for (at, c) in code.char_indices().chain([(code.len(), ';')]) {
        if c == ';' {
            if !code[start..at].trim().is_empty() {
                out.push((start..at, code[start..at].to_string()));
            }
            start = at + 1;
        }
    }
    out
}

/// The script with comments, string literals and dollar-quoted bodies replaced by spaces
/// (newlines kept), byte for byte, so positions in it are positions in the script.
fn code_only(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        let skip = |end: &str, from: usize| rest[from..].find(end).map_or(rest.len(), |at| from + at + end.len());
        let len = if rest.starts_with("--") {
            skip("\n", 2)
        } else if rest.starts_with("/*") {
            skip("*/", 2)
        } else if c == '\'' {
            skip("'", 1)
        } else if let Some(tag) = dollar_tag(rest) {
            skip(tag, tag.len())
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        out.extend(rest[..len].bytes().map(|b| if b == b'\n' { '\n' } else { ' ' }));
        rest = &rest[len..];
    }
    out
}

/// `$tag$` or `$$` at the start of `text`.
fn dollar_tag(text: &str) -> Option<&str> {
    let body = text.strip_prefix('$')?;
    let end = body.find('$')?;
    body[..end].chars().all(|c| c.is_alphanumeric() || c == '_').then(|| &text[..end + 2])
}

/// Extensions only Supabase's platform provides: no package manager ships them.
const PLATFORM_ONLY: [&str; 10] = [
    "pg_graphql",
    "pg_net",
    "pgsodium",
    "supabase_vault",
    "pg_jsonschema",
    "wrappers",
    "index_advisor",
    "pg_tle",
    "pgjwt",
    "supautils",
];

/// Extension, Debian/Ubuntu package suffix (`postgresql-NN-...`), Homebrew formula.
const PACKAGES: [(&str, &str, Option<&str>); 16] = [
    ("vector", "pgvector", Some("pgvector")),
    ("postgis", "postgis-3", Some("postgis")),
    ("postgis_topology", "postgis-3", Some("postgis")),
    ("postgis_raster", "postgis-3", Some("postgis")),
    ("postgis_tiger_geocoder", "postgis-3", Some("postgis")),
    ("address_standardizer", "postgis-3", Some("postgis")),
    ("pg_cron", "cron", Some("pg_cron")),
    ("pgrouting", "pgrouting", Some("pgrouting")),
    ("http", "http", None),
    ("pgtap", "pgtap", None),
    ("plpgsql_check", "plpgsql-check", None),
    ("pg_repack", "repack", None),
    ("hypopg", "hypopg", None),
    ("pg_partman", "partman", None),
    ("rum", "rum", None),
    ("pgaudit", "pgaudit", None),
];

/// Where to get an extension, as the rest of its error line.
pub(crate) fn provider(name: &str, version: u32) -> String {
    if PLATFORM_ONLY.contains(&name) {
        return "exists only on Supabase's platform: no package manager ships it (set `skip_platform_extensions = true` under [migrations] in env/environments.toml to skip such statements with a warning, or guard the statement with `if exists (select from pg_available_extensions where name = ...)` in a do block)".to_string();
    }
    match PACKAGES.iter().find(|(ext, ..)| *ext == name) {
        Some((_, debian, brew)) => {
            let brew = brew.map_or("Homebrew: no formula, build it from source".to_string(), |f| {
                format!("Homebrew: brew install {f}")
            });
            format!(
                "is not installed on this PostgreSQL {version} server; Debian/Ubuntu: apt-get install postgresql-{version}-{debian} (from apt.postgresql.org where the distribution lacks it); {brew}"
            )
        }
        None => format!(
            "is not installed on this PostgreSQL {version} server and no package is known for it here; install it for PostgreSQL {version} from its project"
        ),
    }
}

/// The extensions a server can install, read from its `pg_available_extensions`.
pub(crate) fn available_on_server(client: &mut impl postgres::GenericClient) -> Result<BTreeSet<String>> {
    let rows = client.query("select name::text from pg_available_extensions", &[])?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The extensions the binaries' installation provides (the `.control` files in its share
/// folder), without a running server; `None` when the folder cannot be found.
pub(crate) fn available_on_disk(bins: &Binaries) -> Option<BTreeSet<String>> {
    let dir = bins.pg_config("--sharedir")?.join("extension");
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".control").map(str::to_string))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_extension_statements_are_found_outside_bodies_and_comments() {
        let sql = r#"
            create extension if not exists "uuid-ossp" with schema extensions;
            CREATE EXTENSION vector;
            -- create extension commented_out;
            /* create extension in_block; */
            create extension if not exists pg_cron
              with schema pg_catalog;
            select 'create extension in_string';
            do $$ begin if exists (select 1) then create extension pg_net; end if; end $$;
            do $body$ begin execute 'create extension x'; end $body$;
            create extension vector;
        "#;
        assert_eq!(required(sql), ["uuid-ossp", "vector", "pg_cron"]);
        assert!(required("create table extension_log (id int);").is_empty());
        assert_eq!(required("select 'é'; create extension citext"), ["citext"]);
    }

    #[test]
    fn platform_only_statements_are_blanked_keeping_lines() {
        let sql = "create schema if not exists pgsodium;\nCREATE EXTENSION IF NOT EXISTS \"pgsodium\"\n  WITH SCHEMA \"pgsodium\";\ncomment on extension pg_graphql is 'GraphQL; support';\ncreate extension if not exists citext;\nselect 'create extension pg_net';\n";
        let out = skip_platform_only("f.sql", sql).unwrap();
        assert_eq!(out.lines().count(), sql.lines().count());
        assert!(
            out.contains("create schema if not exists pgsodium;")
                && out.contains("create extension if not exists citext;")
        );
        assert!(!out.contains("pgsodium\"") && !out.contains("pg_graphql"), "{out}");
        assert!(out.contains("select 'create extension pg_net';"), "{out}");
        assert_eq!(skip_platform_only("f.sql", "create extension citext;"), None);
    }

    #[test]
    fn missing_extensions_name_their_package() {
        let available: BTreeSet<String> = ["plpgsql", "uuid-ossp"].map(String::from).into();
        let ok = [Source { file: "a.sql".into(), sql: "create extension \"uuid-ossp\";" }];
        assert!(check(&ok, &available, 15).is_ok());
        let one = [Source { file: "b.sql".into(), sql: "create extension if not exists vector;" }];
        let err = format!("{:#}", check(&one, &available, 15).unwrap_err());
        assert!(err.starts_with("extension vector (needed by b.sql) is not installed"), "{err}");
        assert!(err.contains("postgresql-15-pgvector") && err.contains("brew install pgvector"), "{err}");
        let two = [Source { file: "c.sql".into(), sql: "create extension pg_net; create extension postgis;" }];
        let err = format!("{:#}", check(&two, &available, 16).unwrap_err());
        assert!(err.contains("pg_net (needed by c.sql) exists only on Supabase's platform"), "{err}");
        assert!(err.contains("postgresql-16-postgis-3"), "{err}");
    }
}

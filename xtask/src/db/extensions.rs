//! The extensions migrations need: found in their `create extension` statements, checked
//! against what this server can install before anything is changed, with the package that
//! provides each missing one; and the server settings an installed `pg_cron` needs.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Result, bail};

use crate::{migrate::Migration, pg::Binaries};

/// One migration file's text, by the path shown in messages.
pub struct Source<'a> {
    pub file: String,
    pub sql: &'a str,
}

/// [`check`] against what the connected server can install, before `migrate` changes
/// anything.
pub fn check_on_server(client: &mut postgres::Client, migrations: &[Migration]) -> Result<()> {
    let available = available_on_server(client)?;
    let version: String = client.query_one("show server_version_num", &[])?.get(0);
    let major = version.parse::<u32>().map_or(0, |v| v / 10_000);
    check(&sources(migrations), &available, major)
}

/// The up scripts of the migrations, as [`check`] takes them.
pub fn sources(migrations: &[Migration]) -> Vec<Source<'_>> {
    migrations.iter().map(|m| Source { file: m.up.file.clone(), sql: &m.up.sql }).collect()
}

/// Stops (one error naming each missing extension and its package) unless every extension
/// the migrations create is in `available`. Nothing has been changed when it stops.
pub fn check(sources: &[Source], available: &BTreeSet<String>, server_version: u32) -> Result<()> {
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
pub fn required(sql: &str) -> Vec<String> {
    let code = code_only(sql);
    let words: Vec<&str> = code.split(|c: char| c.is_whitespace() || c == ';').filter(|w| !w.is_empty()).collect();
    let mut names = Vec::new();
    for (i, pair) in words.windows(2).enumerate() {
        if !(pair[0].eq_ignore_ascii_case("create") && pair[1].eq_ignore_ascii_case("extension")) {
            continue;
        }
        let mut at = i + 2;
        let if_not_exists = words.get(at..at + 3).is_some_and(|w| {
            w[0].eq_ignore_ascii_case("if") && w[1].eq_ignore_ascii_case("not") && w[2].eq_ignore_ascii_case("exists")
        });
        if if_not_exists {
            at += 3;
        }
        if let Some(word) = words.get(at) {
            let name = match word.strip_prefix('"') {
                Some(quoted) => quoted.trim_end_matches('"').to_string(),
                None => word.to_lowercase(),
            };
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// The script with comments, string literals and dollar-quoted bodies blanked out.
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
        out.push(' ');
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
pub fn provider(name: &str, version: u32) -> String {
    if PLATFORM_ONLY.contains(&name) {
        return "exists only on Supabase's platform: no package manager ships it (guard the statement with `if exists (select from pg_available_extensions where name = ...)` in a do block to skip it locally)".to_string();
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
pub fn available_on_server(client: &mut postgres::Client) -> Result<BTreeSet<String>> {
    let rows = client.query("select name::text from pg_available_extensions", &[])?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The extensions the binaries' installation provides (the `.control` files in its share
/// folder), without a running server; `None` when the folder cannot be found.
pub fn available_on_disk(bins: &Binaries) -> Option<BTreeSet<String>> {
    let dir = pg_config(bins, "--sharedir")?.join("extension");
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".control").map(str::to_string))
            .collect(),
    )
}

/// Lines for `postgresql.conf`: when `pg_cron` is installed, it must be preloaded and told
/// its database, or `create extension pg_cron` fails.
pub fn server_conf(bins: &Binaries) -> String {
    let installed = pg_config(bins, "--pkglibdir").is_some_and(|dir| dir.join("pg_cron.so").is_file());
    if installed {
        "shared_preload_libraries = 'pg_cron'\ncron.database_name = 'postgres'\n".to_string()
    } else {
        String::new()
    }
}

/// A folder `pg_config` (beside the server binaries, as Debian and Homebrew install it)
/// reports.
fn pg_config(bins: &Binaries, what: &str) -> Option<PathBuf> {
    let out = Command::new(bins.dir.join("pg_config")).arg(what).output().ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    Path::new(&dir).is_dir().then_some(dir)
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

//! The migration files: `migrations/NNNN_name.up.sql` and `NNNN_name.down.sql` pairs, the
//! Supabase CLI's forward-only `supabase/migrations/<timestamp>_name.sql`, or Prisma's
//! `prisma/migrations/<timestamp>_name/migration.sql`.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::supabase::extensions;

/// The header that runs a file outside a transaction (for `CREATE INDEX CONCURRENTLY`).
pub(super) const NO_TRANSACTION: &str = "-- migrate:no-transaction";

#[derive(Clone, Debug)]
pub(crate) struct Migration {
    pub version: u64,
    pub name: String,
    pub up: Script,
    /// `None` in the Supabase layout, which has no down files.
    pub down: Option<Script>,
    /// sha256 of the up file, line endings normalized, in hex.
    pub checksum: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Script {
    /// The path from the project root, as messages show it.
    pub file: String,
    pub sql: String,
    pub no_transaction: bool,
}

impl Migration {
    pub(crate) fn label(&self) -> String {
        format!("{:04}_{}", self.version, self.name)
    }
}

/// The up scripts of the migrations, as the extension check takes them.
pub(crate) fn extension_sources(migrations: &[Migration]) -> Vec<extensions::Source<'_>> {
    migrations.iter().map(|m| extensions::Source { file: m.up.file.clone(), sql: &m.up.sql }).collect()
}

/// Reads and checks every migration pair in the folder (`shown` from the project root),
/// in version order.
pub(super) fn load(dir: &Path, shown: &str) -> Result<Vec<Migration>> {
    let mut halves: BTreeMap<u64, (String, Option<Script>, Option<Script>)> = BTreeMap::new();
    for file in sql_files(dir)? {
        let Some((version, name, up)) = parse_file_name(&file) else {
            bail!(
                "{shown}/{file}: not a migration file name\nhint: name it NNNN_name.up.sql or NNNN_name.down.sql (`cargo xtask migrate new NAME` writes a pair)"
            );
        };
        let script = Script::read(dir, shown, &file)?;
        let slot = halves.entry(version).or_insert_with(|| (name.clone(), None, None));
        if slot.0 != name {
            bail!("{shown}: version {version:04} is used twice ({}, {name})\nhint: renumber one of them", slot.0);
        }
        let half = if up { &mut slot.1 } else { &mut slot.2 };
        *half = Some(script);
    }
    halves
        .into_iter()
        .map(|(version, (name, up, down))| {
            let label = format!("{version:04}_{name}");
            let up = up.with_context(|| format!("{shown}/{label}.up.sql is missing (its down file exists)"))?;
            let down = down.with_context(|| {
                format!("{shown}/{label}.down.sql is missing\nhint: every migration needs its down migration")
            })?;
            let checksum = checksum(&up.sql);
            Ok(Migration { version, name, up, down: Some(down), checksum })
        })
        .collect()
}

/// Reads the Supabase CLI's folder: `<timestamp>_name.sql` files, forward only, in version
/// order. Other `.sql` names are an error (the CLI would skip them silently).
pub(super) fn load_supabase(dir: &Path, shown: &str) -> Result<Vec<Migration>> {
    let mut migrations: BTreeMap<u64, Migration> = BTreeMap::new();
    for file in sql_files(dir)? {
        let Some((version, name)) = parse_supabase_name(&file) else {
            bail!(
                "{shown}/{file}: not a Supabase migration file name\nhint: name it <timestamp>_name.sql, e.g. 20240101120000_create_profiles.sql (`cargo xtask migrate new NAME` writes one)"
            );
        };
        let up = Script::read(dir, shown, &file)?;
        let checksum = checksum(&up.sql);
        if let Some(other) = migrations.insert(version, Migration { version, name, up, down: None, checksum }) {
            bail!("{shown}: version {version} is used twice ({}, {file})\nhint: rename one of them", other.up.file);
        }
    }
    Ok(migrations.into_values().collect())
}

/// Reads Prisma's folder: one `<timestamp>_name/migration.sql` per subfolder, forward only,
/// in version order; the checksum is Prisma's, sha256 of the file's bytes as they are.
/// Other subfolders are an error; `migration_lock.toml` and other files are Prisma's own.
pub(super) fn load_prisma(dir: &Path, shown: &str) -> Result<Vec<Migration>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {shown}")),
    };
    let mut migrations: BTreeMap<u64, Migration> = BTreeMap::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let folder = entry.file_name().to_string_lossy().into_owned();
        let Some((version, name)) = parse_supabase_name(&format!("{folder}.sql")) else {
            bail!(
                "{shown}/{folder}: not a Prisma migration folder name\nhint: name it <timestamp>_name, e.g. 20240101120000_init, holding migration.sql (`cargo xtask migrate new NAME` writes one)"
            );
        };
        let up = Script::read(&dir.join(&folder), &format!("{shown}/{folder}"), "migration.sql")?;
        let checksum = sha256_hex(up.sql.as_bytes());
        if let Some(other) = migrations.insert(version, Migration { version, name, up, down: None, checksum }) {
            bail!("{shown}: version {version} is used twice ({}, {folder})\nhint: rename one of them", other.up.file);
        }
    }
    Ok(migrations.into_values().collect())
}

/// The `.sql` file names in `dir`; none when it does not exist.
fn sql_files(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let file = entry?.file_name().to_string_lossy().into_owned();
        if file.ends_with(".sql") {
            names.push(file);
        }
    }
    Ok(names)
}

/// `20240101120000_create_profiles.sql` gives `(20240101120000, "create_profiles")`.
fn parse_supabase_name(file: &str) -> Option<(u64, String)> {
    let (digits, name) = file.strip_suffix(".sql")?.split_once('_')?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((digits.parse().ok()?, name.to_string()))
}

impl Script {
    fn read(dir: &Path, shown: &str, file: &str) -> Result<Script> {
        let path = format!("{shown}/{file}");
        let sql = std::fs::read_to_string(dir.join(file)).with_context(|| format!("cannot read {path}"))?;
        Script::new(path, sql)
    }

    fn new(file: String, sql: String) -> Result<Script> {
        let no_transaction = sql.lines().next().is_some_and(|line| line.trim() == NO_TRANSACTION);
        if let Some((line, keyword)) = transaction_control(&sql) {
            bail!(
                "{file}:{line}: {keyword} is transaction control, which a migration must not hold: the tool runs each file in its own transaction with its ledger row\nhint: remove it; for a statement that can't run in a transaction, put it alone in a file whose first line is `{NO_TRANSACTION}`"
            );
        }
        if no_transaction {
            let count = count_statements(&sql);
            if count != 1 {
                bail!(
                    "{file}: a {NO_TRANSACTION} file must hold exactly one statement, not {count}\nhint: split it into several migrations"
                );
            }
        }
        Ok(Script { file, sql, no_transaction })
    }
}

/// sha256 of the text with CRLF line endings made LF, so a checkout on Windows matches.
pub(crate) fn checksum(sql: &str) -> String {
    sha256_hex(sql.replace("\r\n", "\n").as_bytes())
}

/// sha256 in lowercase hex.
pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `0007_add_goals.up.sql` gives `(7, "add_goals", true)`.
fn parse_file_name(file: &str) -> Option<(u64, String, bool)> {
    let (stem, up) = if let Some(stem) = file.strip_suffix(".up.sql") {
        (stem, true)
    } else {
        (file.strip_suffix(".down.sql")?, false)
    };
    let (digits, name) = stem.split_once('_')?;
    let valid_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if digits.len() < 4 || digits.len() > 8 || !digits.chars().all(|c| c.is_ascii_digit()) || !valid_name {
        return None;
    }
    Some((digits.parse().ok()?, name.to_string(), up))
}

/// Counts the SQL statements in a script: semicolons outside strings, quoted identifiers,
/// dollar quotes, comments and `BEGIN ATOMIC ... END` bodies, plus a last statement
/// without one.
pub(super) fn count_statements(sql: &str) -> usize {
    statements(sql).len()
}

/// The first transaction-control statement of a script (`BEGIN`, `COMMIT`, `ROLLBACK`,
/// `END`, `ABORT`, `START TRANSACTION`, `SAVEPOINT`, `RELEASE`, `PREPARE TRANSACTION`),
/// with its line: a migration runs in the tool's transaction, and one of these would end
/// it, half-applied, behind the tool's back.
pub(super) fn transaction_control(sql: &str) -> Option<(usize, String)> {
    statements(sql).into_iter().find_map(|statement| {
        let first = statement.words.first()?.as_str();
        let second = statement.words.get(1).map(String::as_str);
        let control = matches!(first, "begin" | "commit" | "rollback" | "end" | "abort" | "savepoint" | "release")
            || (matches!(first, "start" | "prepare") && second == Some("transaction"));
        control.then(|| (statement.line, first.to_ascii_uppercase()))
    })
}

/// One statement: the line it starts on, and its first words, lowercased.
#[derive(Debug)]
struct Statement {
    line: usize,
    words: Vec<String>,
}

/// Splits a script into statements, skipping what can hold a semicolon without ending one.
fn statements(sql: &str) -> Vec<Statement> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut current: Option<Statement> = None;
    // `BEGIN ATOMIC` bodies (SQL-standard function bodies) hold semicolons; `CASE` ends
    // with `END` too, so both are counted.
    let (mut atomic, mut cases) = (0usize, 0usize);
    let mut last_word = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &sql[i..];
        let line = sql[..i].matches('\n').count() + 1;
        let skip_to = |end: &str, from: usize| rest[from..].find(end).map_or(rest.len(), |at| from + at + end.len());
        let mut start = || current.get_or_insert_with(|| Statement { line, words: Vec::new() }).words.len();
        let step = match bytes[i] {
            b'-' if rest.starts_with("--") => skip_to("\n", 2),
            b'/' if rest.starts_with("/*") => skip_to("*/", 2),
            b'\'' => {
                start();
                skip_to("'", 1)
            }
            b'"' => {
                start();
                skip_to("\"", 1)
            }
            b'$' => match dollar_tag(rest) {
                Some(tag) => {
                    start();
                    skip_to(tag, tag.len())
                }
                None => 1,
            },
            b';' if atomic == 0 => {
                out.extend(current.take());
                1
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let len =
                    rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$')).unwrap_or(rest.len());
                let word = rest[..len].to_ascii_lowercase();
                let statement = current.get_or_insert_with(|| Statement { line, words: Vec::new() });
                if statement.words.len() < 4 {
                    statement.words.push(word.clone());
                }
                match word.as_str() {
                    "atomic" if last_word == "begin" => atomic += 1,
                    "case" => cases += 1,
                    "end" if cases > 0 => cases -= 1,
                    "end" if atomic > 0 => atomic -= 1,
                    _ => {}
                }
                last_word = word;
                len
            }
            c => {
                if !c.is_ascii_whitespace() && c != b';' {
                    start();
                }
                1
            }
        };
        i += step.max(1);
    }
    out.extend(current);
    out
}

/// `$tag$` or `$$` at the start of `text`.
fn dollar_tag(text: &str) -> Option<&str> {
    let end = text[1..].find('$')? + 1;
    let tag = &text[1..end];
    tag.chars().all(|c| c.is_alphanumeric() || c == '_').then(|| &text[..=end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_counted_outside_quotes_and_comments() {
        assert_eq!(count_statements("create index concurrently i on t (a);"), 1);
        assert_eq!(count_statements("-- a; comment\ncreate index concurrently i on t (a)"), 1);
        assert_eq!(count_statements("select 'a;b'; select \"x;y\" from t;"), 2);
        assert_eq!(
            count_statements("create function f() returns int as $body$ select 1; $body$ language sql; select $$;$$;"),
            2
        );
        assert_eq!(count_statements("/* ; */ select 1; ; "), 1);
        assert_eq!(count_statements("   "), 0);
        let atomic = "create function f() returns int language sql begin atomic select case when true then 1 end; select 2; end; select 3;";
        assert_eq!(count_statements(atomic), 2);
    }

    #[test]
    fn transaction_control_is_found_outside_bodies() {
        assert_eq!(transaction_control("create table t (a int);\ncommit;"), Some((2, "COMMIT".to_string())));
        assert_eq!(transaction_control("BEGIN; create table t ();"), Some((1, "BEGIN".to_string())));
        assert_eq!(transaction_control("start transaction;"), Some((1, "START".to_string())));
        assert_eq!(transaction_control("select 1;\n  End ;"), Some((2, "END".to_string())));
        let bodies = "do $$ begin perform 1; end $$;
            create function f() returns int language plpgsql as $f$ begin return 1; end $f$;
            create function g() returns int language sql begin atomic select 1; end;
            -- commit;
            /* rollback; */ select 'commit;';
            create table begin_end (commit int);";
        assert_eq!(transaction_control(bodies), None);
    }

    #[test]
    fn file_names() {
        assert_eq!(parse_file_name("0007_add_goals.up.sql"), Some((7, "add_goals".to_string(), true)));
        assert_eq!(parse_file_name("0010_x.down.sql"), Some((10, "x".to_string(), false)));
        assert_eq!(parse_file_name("7_add.up.sql"), None);
        assert_eq!(parse_file_name("0007_Add.up.sql"), None);
        assert_eq!(parse_file_name("0007.up.sql"), None);
    }

    #[test]
    fn supabase_file_names() {
        assert_eq!(
            parse_supabase_name("20240101120000_create_profiles.sql"),
            Some((20240101120000, "create_profiles".into()))
        );
        assert_eq!(parse_supabase_name("20240101120000_Add-Storage.sql"), Some((20240101120000, "Add-Storage".into())));
        assert_eq!(parse_supabase_name("create_profiles.sql"), None);
        assert_eq!(parse_supabase_name("20240101120000_.sql"), None);
        assert_eq!(parse_supabase_name("2024x_init.sql"), None);
    }

    #[test]
    fn checksums_ignore_line_endings() {
        assert_eq!(checksum("a\r\nb\n"), checksum("a\nb\n"));
        assert_ne!(checksum("a\nb\n"), checksum("a\nc\n"));
    }

    #[test]
    fn the_project_migrations_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let migrations = load(&dir, "migrations").unwrap();
        assert_eq!(migrations[0].up.file, "migrations/0001_core_tenancy.up.sql");
        assert!(migrations.len() >= 8);
        assert!(migrations.windows(2).all(|w| w[0].version < w[1].version));
        assert!(migrations.iter().any(|m| m.up.no_transaction));
    }
}

//! A schema as `migrate baseline` compares it: `pg_dump --schema-only` cut into its entries
//! (one per object, keyed by pg_dump's own `Name; Type; Schema` header), each told apart as
//! the application's or the platform's (Supabase's schemas, extensions and event triggers).
//! What the migrations own is what they add to a bootstrapped scratch cluster; the live
//! database is compared on that, not as one whole text.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use app::guard::ClientArgs;
use xshell::Shell;

use crate::pg;

/// One object of a dump.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub kind: String,
    /// `-` for objects outside a schema (schemas, extensions, event triggers, publications).
    pub schema: String,
    pub name: String,
    /// The statements as pg_dump wrote them, without the header and trailing blank lines.
    pub raw: String,
    /// [`Entry::raw`] without blank lines and comment lines: what is compared.
    pub text: String,
}

impl Entry {
    fn key(&self) -> (&str, &str, &str) {
        (&self.kind, &self.schema, &self.name)
    }

    /// How messages name it: `TABLE public."User"`-like, from pg_dump's header.
    pub(crate) fn label(&self) -> String {
        let within = |name: &str| match self.schema.as_str() {
            "-" => name.to_string(),
            schema => format!("{schema}.{name}"),
        };
        match (self.kind.as_str(), self.name.split_once(' ')) {
            ("ACL", Some((kind, name))) => return format!("the grants on {} {}", kind.to_lowercase(), within(name)),
            ("DEFAULT ACL", _) => return format!("the {} in schema {}", self.name.to_lowercase(), self.schema),
            _ => {}
        }
        match self.schema.as_str() {
            "-" => format!("{} {}", self.kind.to_lowercase(), self.name),
            schema => format!("{} {schema}.{}", self.kind.to_lowercase(), self.name),
        }
    }
}

/// A whole dump: the session settings pg_dump starts with, and its entries in its order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    pub preamble: Vec<String>,
    pub entries: Vec<Entry>,
}

/// The kinds pg_dump restores after the data (its post-data section).
const POST_DATA: &[&str] = &[
    "CONSTRAINT",
    "FK CONSTRAINT",
    "CHECK CONSTRAINT",
    "INDEX",
    "INDEX ATTACH",
    "TRIGGER",
    "RULE",
    "POLICY",
    "ROW SECURITY",
    "PUBLICATION TABLE",
    "PUBLICATION TABLES IN SCHEMA",
    "EVENT TRIGGER",
    "MATERIALIZED VIEW DATA",
    "STATISTICS",
];

impl Entry {
    pub(crate) fn is_post_data(&self) -> bool {
        POST_DATA.contains(&self.kind.as_str())
    }
}

/// `pg_dump --schema-only --no-owner` of the whole database but the project's own
/// bookkeeping (`app_meta`), cut into entries, privileges included (`ACL` entries).
pub(crate) fn take(sh: &Shell, args: &ClientArgs, shown: &str) -> Result<Snapshot> {
    let raw = pg::client_cmd(sh, "pg_dump", args)?
        .args(["--schema-only", "--no-owner", "--exclude-schema=app_meta"])
        .ignore_stderr()
        .read()
        .with_context(|| format!("cannot read the schema of {shown} (pg_dump --schema-only)"))?;
    Ok(parse(&raw))
}

/// The rows of one table as `INSERT` statements (`pg_dump --data-only --column-inserts`),
/// entries and all: what `--with-data` puts in a baseline.
pub(crate) fn table_data(sh: &Shell, args: &ClientArgs, shown: &str, table: &str) -> Result<Vec<Entry>> {
    let raw = pg::client_cmd(sh, "pg_dump", args)?
        .args(["--data-only", "--column-inserts", "--no-owner", "--no-privileges"])
        .arg(format!("--table={table}"))
        .ignore_stderr()
        .read()
        .with_context(|| format!("cannot read the rows of {table} in {shown} (pg_dump --data-only)"))?;
    Ok(parse(&raw).entries)
}

/// Cuts a plain-format dump at its `-- Name: ...; Type: ...; Schema: ...` headers.
pub(crate) fn parse(dump: &str) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let mut current: Option<(Entry, Vec<&str>)> = None;
    for line in dump.lines() {
        if let Some((kind, schema, name)) = header(line) {
            snapshot.entries.extend(current.take().map(finish));
            let entry = Entry { kind, schema, name, raw: String::new(), text: String::new() };
            current = Some((entry, Vec::new()));
            continue;
        }
        match &mut current {
            Some((_, lines)) => lines.push(line),
            None if line.starts_with("SET ") || line.starts_with("SELECT pg_catalog.set_config") => {
                snapshot.preamble.push(line.trim_end().to_string())
            }
            None => {}
        }
    }
    snapshot.entries.extend(current.take().map(finish));
    snapshot
}

/// `-- Name: users on_signup; Type: TRIGGER; Schema: auth; Owner: -` (and `-- Data for
/// Name: ...`) gives `("TRIGGER", "auth", "users on_signup")`.
fn header(line: &str) -> Option<(String, String, String)> {
    let rest = line.strip_prefix("-- Name: ").or_else(|| line.strip_prefix("-- Data for Name: "))?;
    let (name, rest) = rest.split_once("; Type: ")?;
    let (kind, rest) = rest.split_once("; Schema: ")?;
    let schema = rest.split_once("; ").map_or(rest, |(s, _)| s);
    Some((kind.to_string(), schema.to_string(), name.to_string()))
}

fn finish((mut entry, mut lines): (Entry, Vec<&str>)) -> Entry {
    // The header's closing `--`, the blank lines around, and the settings pg_dump puts
    // between entries (`SET default_tablespace = ''`), which the preamble's defaults cover.
    let setting = |l: &str| l.starts_with("SET default_tablespace") || l.starts_with("SET default_table_access_method");
    lines.retain(|l| !setting(l));
    while lines.first().is_some_and(|l| l.trim().is_empty() || *l == "--") {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.trim().is_empty() || *l == "--" || l.starts_with("\\unrestrict")) {
        lines.pop();
    }
    entry.raw = lines.iter().map(|l| format!("{l}\n")).collect();
    entry.text = lines
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| !(l.is_empty() || l.starts_with("--")))
        .map(|l| format!("{l}\n"))
        .collect();
    entry
}

/// What belongs to the platform the database runs on: Supabase's schemas, extensions and
/// event triggers when it is a Supabase database, nothing on plain PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Platform {
    Supabase,
    Plain,
}

/// Schemas Supabase's platform owns, by name or prefix.
fn platform_schema(schema: &str) -> bool {
    const EXACT: &[&str] =
        &["auth", "storage", "realtime", "_realtime", "vault", "extensions", "net", "cron", "pgbouncer", "_analytics"];
    EXACT.contains(&schema)
        || ["graphql", "supabase_", "pgsodium", "pgtle", "_supavisor"].iter().any(|p| schema.starts_with(p))
}

impl Platform {
    /// A Supabase database has Supabase's administrator role and GoTrue's `auth.users`.
    pub(crate) fn detect(client: &mut impl postgres::GenericClient) -> Result<Platform> {
        let supabase: bool = client
            .query_one(
                "select exists (select from pg_roles where rolname = 'supabase_admin')
                    and to_regclass('auth.users') is not null",
                &[],
            )
            .context("cannot tell which platform the database runs on")?
            .get(0);
        Ok(if supabase { Platform::Supabase } else { Platform::Plain })
    }

    pub(crate) fn owns_schema(self, schema: &str) -> bool {
        self == Platform::Supabase && platform_schema(schema)
    }

    /// Whether an entry is the application's. On platform tables, the application's are
    /// its triggers calling its own functions, its policies and its publication members;
    /// the platform's event triggers call functions in the platform's schemas.
    pub(crate) fn is_app(self, entry: &Entry) -> bool {
        let name = object_name(entry);
        // Other tools' ledgers are theirs, on any platform.
        let ledger = entry.schema == "supabase_migrations"
            || (entry.kind == "SCHEMA" && name == "supabase_migrations")
            || name == "_prisma_migrations"
            || name.starts_with("_prisma_migrations ");
        // The platform's own ledger in `public` (the image's `schema_migrations`).
        let platform_table = self == Platform::Supabase
            && entry.schema == "public"
            && app::stamp::SUPABASE_PUBLIC_TABLES.iter().any(|t| name == *t || name.starts_with(&format!("{t} ")));
        if ledger || platform_table {
            return false;
        }
        let supabase_public = |schema: &str| self == Platform::Supabase && schema == "public";
        match entry.kind.as_str() {
            // Privileges on schemas are their schema's; `public`'s on Supabase, default
            // privileges outside a schema and those on languages are the platform's.
            "ACL" | "DEFAULT ACL" if entry.schema == "-" => {
                entry.name.strip_prefix("SCHEMA ").is_some_and(|s| !self.owns_schema(s) && !supabase_public(s))
            }
            "DEFAULT ACL" => !self.owns_schema(&entry.schema) && !supabase_public(&entry.schema),
            "EXTENSION" => false,
            "COMMENT" if entry.name.starts_with("EXTENSION ") => false,
            "SCHEMA" => !self.owns_schema(&entry.name),
            "COMMENT" if entry.schema == "-" => {
                entry.name.strip_prefix("SCHEMA ").is_none_or(|schema| !self.owns_schema(schema))
            }
            "EVENT TRIGGER" => called_schema(&entry.text).is_none_or(|schema| !self.owns_schema(&schema)),
            "TRIGGER" => {
                !self.owns_schema(&entry.schema)
                    || called_schema(&entry.text).is_none_or(|schema| !self.owns_schema(&schema))
            }
            "POLICY" | "PUBLICATION TABLE" => true,
            "PUBLICATION" => !(self == Platform::Supabase && entry.name.starts_with("supabase_realtime")),
            _ => !self.owns_schema(&entry.schema),
        }
    }
}

/// The object an entry is about: for privileges, the name without its kind (`TABLE t` and
/// `COLUMN t.c` give `t`).
fn object_name(entry: &Entry) -> &str {
    if !matches!(entry.kind.as_str(), "ACL" | "DEFAULT ACL") {
        return &entry.name;
    }
    match entry.name.split_once(' ') {
        Some(("COLUMN", column)) => column.rsplit_once('.').map_or(column, |(table, _)| table),
        Some((_, name)) => name,
        None => &entry.name,
    }
}

/// The schema of the function a trigger executes (`EXECUTE FUNCTION schema.name()`).
fn called_schema(text: &str) -> Option<String> {
    let at = text.find("EXECUTE FUNCTION ").or_else(|| text.find("EXECUTE PROCEDURE "))?;
    let called = text[at..].split_once(' ')?.1.split_once(' ')?.1;
    let (schema, _) = called.split_once('.')?;
    Some(schema.trim_matches('"').to_string())
}

/// The extensions of a snapshot: name to schema.
pub(crate) fn extensions(snapshot: &Snapshot) -> BTreeMap<String, String> {
    snapshot
        .entries
        .iter()
        .filter(|e| e.kind == "EXTENSION")
        .map(|e| (e.name.trim_matches('"').to_string(), extensions_schema(e)))
        .collect()
}

/// The schema of an extension's entry, from `CREATE EXTENSION ... WITH SCHEMA name;`.
pub(crate) fn extensions_schema(entry: &Entry) -> String {
    let schema = entry.text.split(" WITH SCHEMA ").nth(1).unwrap_or("").split([' ', ';']).next().unwrap_or("");
    schema.trim_matches('"').to_string()
}

/// The application's entries of a snapshot, by key.
pub(crate) fn app_entries(snapshot: &Snapshot, platform: Platform) -> BTreeMap<(&str, &str, &str), &Entry> {
    snapshot.entries.iter().filter(|e| platform.is_app(e)).map(|e| (e.key(), e)).collect()
}

/// The entries `after` has that `before` lacks or holds otherwise: what was done between.
pub(crate) fn added<'a>(before: &Snapshot, after: &'a Snapshot) -> Vec<&'a Entry> {
    let had: BTreeSet<(&str, &str, &str, &str)> =
        before.entries.iter().map(|e| (e.kind.as_str(), e.schema.as_str(), e.name.as_str(), e.text.as_str())).collect();
    after.entries.iter().filter(|e| !had.contains(&(e.kind.as_str(), &e.schema, &e.name, &e.text))).collect()
}

/// The first way the live database differs from what the migrations make, or `None`:
/// every application object the migrations add to the bootstrapped scratch cluster
/// (`before` to `after`) is live with the same definition, every application object live
/// is on the scratch cluster, and extensions are present (in the schema the migrations
/// chose, where they chose one), whatever their text.
pub(crate) fn difference(before: &Snapshot, after: &Snapshot, live: &Snapshot, platform: Platform) -> Option<String> {
    let live_app = app_entries(live, platform);
    for made in added(before, after).into_iter().filter(|e| platform.is_app(e)) {
        match live_app.get(&made.key()) {
            None => return Some(format!("the migrations make {}, which the live database lacks", made.label())),
            Some(found) if found.text != made.text => return Some(differing(made, found)),
            Some(_) => {}
        }
    }
    let scratch: BTreeMap<_, _> = after.entries.iter().map(|e| (e.key(), e)).collect();
    for (key, found) in &live_app {
        match scratch.get(key) {
            None => return Some(format!("the live database has {}, which no migration makes", found.label())),
            Some(made) if made.text != found.text => return Some(differing(made, found)),
            Some(_) => {}
        }
    }
    let (had, made, found) = (extensions(before), extensions(after), extensions(live));
    for (name, schema) in &made {
        if had.get(name) == Some(schema) {
            continue;
        }
        match found.get(name) {
            Some(at) if at == schema => {}
            Some(at) => {
                return Some(format!(
                    "the migrations create extension {name} in schema {schema}, the live database has it in {at}"
                ));
            }
            None => return Some(format!("the migrations create extension {name}, which the live database lacks")),
        }
    }
    let unmade = found.iter().find(|(name, schema)| !platform.owns_schema(schema) && !made.contains_key(*name));
    unmade.map(|(name, schema)| {
        format!("the live database has extension {name} (in schema {schema}), which no migration creates")
    })
}

fn differing(made: &Entry, found: &Entry) -> String {
    let detail = super::schema::first_difference(&made.text, &found.text).unwrap_or_default();
    let verb = if made.kind.ends_with("ACL") { "differ" } else { "differs" };
    format!("{} {verb}: {detail}", made.label())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "--\n-- PostgreSQL database dump\n--\n\\restrict abc\nSET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n\n--\n-- Name: users on_signup; Type: TRIGGER; Schema: auth; Owner: -\n--\n\nCREATE TRIGGER on_signup AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION app.on_signup();\n\n\n--\n-- Name: pgcrypto; Type: EXTENSION; Schema: -; Owner: -\n--\n\nCREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;\n\nSET default_tablespace = '';\n\n--\n-- Name: users; Type: TABLE; Schema: auth; Owner: -\n--\n\nCREATE TABLE auth.users (\n    id uuid\n);\n\n--\n-- Name: ev; Type: EVENT TRIGGER; Schema: -; Owner: -\n--\n\nCREATE EVENT TRIGGER ev ON ddl_command_end\n   EXECUTE FUNCTION extensions.ev();\n\n\\unrestrict abc\n";

    #[test]
    fn dumps_are_cut_at_their_headers() {
        let snapshot = parse(DUMP);
        assert_eq!(snapshot.preamble.len(), 3);
        let kinds: Vec<&str> = snapshot.entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["TRIGGER", "EXTENSION", "TABLE", "EVENT TRIGGER"]);
        assert_eq!(snapshot.entries[0].name, "users on_signup");
        assert_eq!(snapshot.entries[1].raw, "CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;\n");
        assert_eq!(snapshot.entries[2].text, "CREATE TABLE auth.users (\n    id uuid\n);\n");
        assert!(snapshot.entries[3].raw.ends_with("extensions.ev();\n"));
        assert_eq!(extensions(&snapshot).get("pgcrypto").map(String::as_str), Some("public"));
    }

    #[test]
    fn the_platform_is_supabase_s_only_on_supabase() {
        let snapshot = parse(DUMP);
        let app: Vec<bool> = snapshot.entries.iter().map(|e| Platform::Supabase.is_app(e)).collect();
        // The app's trigger on a platform table is the app's; the platform's table and
        // its event trigger (calling a platform function) are not.
        assert_eq!(app, [true, false, false, false]);
        let plain: Vec<bool> = snapshot.entries.iter().map(|e| Platform::Plain.is_app(e)).collect();
        assert_eq!(plain, [true, false, true, true]);
    }

    #[test]
    fn differences_name_the_object() {
        let before = parse("");
        let after = parse(DUMP);
        let live = parse(&DUMP.replace("    id uuid\n", "    id text\n"));
        assert_eq!(difference(&before, &after, &after, Platform::Plain), None);
        let found = difference(&before, &after, &live, Platform::Plain).unwrap();
        assert!(found.starts_with("table auth.users differs: in `CREATE TABLE auth.users (`"), "{found}");
        // On Supabase the platform's table is not compared.
        assert_eq!(difference(&before, &after, &live, Platform::Supabase), None);
        let moved = parse(&DUMP.replace("SCHEMA public;", "SCHEMA extensions;"));
        let found = difference(&before, &after, &moved, Platform::Plain).unwrap();
        assert_eq!(
            found,
            "the migrations create extension pgcrypto in schema public, the live database has it in extensions"
        );
    }
}

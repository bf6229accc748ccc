//! The first migration `migrate baseline` writes into an empty folder: the live database's
//! application objects (not its platform's, not what the scratch cluster's bootstrap
//! already has) as pg_dump wrote them, under pg_dump's own session settings made local to
//! the migration's transaction (function bodies unchecked, the empty search path its
//! qualified names assume), with the rows of the tables named by `--with-data`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{
    grants,
    layout::{self, Layout},
    load_files,
    snapshot::{Entry, Platform, Snapshot},
};
use crate::{context, sql};

const HEADER: &str = "-- The live schema when this project adopted the database (`cargo xtask migrate baseline`).\n-- Its application objects only, with their grants to the roles every database has: no\n-- owners, nothing of the platform, rows only of the tables\n-- named with --with-data. Review it, commit it; new changes go in new migrations.\n";

/// The up and down SQL of the first migration.
pub(super) struct First {
    pub up: String,
    /// The application's objects on the platform's tables need a down of their own.
    pub down: String,
    pub objects: usize,
}

/// The first migration from the live snapshot: what is the application's and not already
/// on a freshly bootstrapped scratch cluster (`bootstrap`), in pg_dump's order, the rows
/// of `data` before the constraints, indexes and triggers as pg_dump restores them.
pub(super) fn compose(live: &Snapshot, bootstrap: &Snapshot, platform: Platform, data: &[Entry]) -> First {
    let mut up = format!("{HEADER}\n");
    for line in &live.preamble {
        up.push_str(&local(line));
        up.push('\n');
    }
    let had: std::collections::BTreeSet<(&str, &str, &str, &str)> = bootstrap
        .entries
        .iter()
        .map(|e| (e.kind.as_str(), e.schema.as_str(), e.name.as_str(), e.text.as_str()))
        .collect();
    let extensions = live
        .entries
        .iter()
        .filter(|e| e.kind == "EXTENSION" && !platform.owns_schema(super::snapshot::extensions_schema(e).as_str()));
    let objects: Vec<&Entry> = extensions
        .chain(live.entries.iter().filter(|e| {
            platform.is_app(e) && !had.contains(&(e.kind.as_str(), e.schema.as_str(), e.name.as_str(), e.text.as_str()))
        }))
        .collect();
    let mut rows_written = data.is_empty();
    let mut revoked = false;
    for entry in &objects {
        if !rows_written && (entry.is_post_data() || grants::is_acl(entry)) {
            data.iter().for_each(|d| push(&mut up, d));
            rows_written = true;
        }
        if !revoked && grants::is_acl(entry) {
            up.push_str(&grants::revokes(&objects, platform));
            revoked = true;
        }
        push(&mut up, entry);
    }
    if !rows_written {
        data.iter().for_each(|d| push(&mut up, d));
    }
    if !revoked {
        up.push_str(&grants::revokes(&objects, platform));
    }
    let down = down_sql(&up, &objects, platform);
    First { up, down, objects: objects.len() }
}

fn push(out: &mut String, entry: &Entry) {
    out.push_str(&format!("\n-- Name: {}; Type: {}; Schema: {}\n{}", entry.name, entry.kind, entry.schema, entry.raw));
}

/// pg_dump's session settings for this transaction only, so the migrations applied after
/// it in the same session keep theirs.
fn local(line: &str) -> String {
    match line.strip_prefix("SET ") {
        Some(rest) => format!("SET LOCAL {rest}"),
        None => line.replace(", false);", ", true);"),
    }
}

/// `drop ... cascade` for what the baseline creates: its schemas, the objects it puts in
/// `public`, and its triggers and policies on the platform's tables.
fn down_sql(up: &str, objects: &[&Entry], platform: Platform) -> String {
    let mut down = String::from("-- Reverts the baseline: drops everything the application's schemas hold.\n");
    for entry in objects {
        let on_platform = platform.owns_schema(&entry.schema);
        let Some((table, name)) = entry.name.split_once(' ') else { continue };
        let word = match entry.kind.as_str() {
            "TRIGGER" if on_platform => "trigger",
            "POLICY" if on_platform => "policy",
            _ => continue,
        };
        down.push_str(&format!(
            "drop {word} if exists {} on {};\n",
            sql::ident(name),
            sql::qualified(&entry.schema, table)
        ));
    }
    for entry in objects.iter().filter(|e| e.kind == "PUBLICATION TABLE") {
        if let Some((publication, table)) = entry.name.split_once(' ') {
            down.push_str(&format!(
                "alter publication {} drop table {};\n",
                sql::ident(publication),
                sql::qualified(&entry.schema, table)
            ));
        }
    }
    for name in created_schemas(up) {
        down.push_str(&format!("drop schema if exists {name} cascade;\n"));
    }
    down.push_str(&drop_public_objects(up));
    down
}

/// The files written for an empty folder.
pub(super) struct Written {
    pub up: PathBuf,
    pub down: Option<PathBuf>,
}

impl Written {
    /// Removes what was written; says which files, for the message that follows.
    pub(super) fn remove(&self) -> String {
        let mut shown = vec![shown(&self.up)];
        let _ = std::fs::remove_file(&self.up);
        if let Some(down) = &self.down {
            let _ = std::fs::remove_file(down);
            shown.push(self::shown(down));
        }
        if let Some(dir) = self.up.parent().filter(|d| d.join("migration.sql") == self.up) {
            let _ = std::fs::remove_dir(dir);
        }
        shown.join(" and ")
    }
}

fn shown(path: &Path) -> String {
    path.strip_prefix(context::project_root()).unwrap_or(path).display().to_string()
}

/// Writes the first migration in the folder's layout: `0001_baseline.{up,down}.sql`, the
/// Supabase CLI's `<timestamp>_baseline.sql`, or Prisma's `<timestamp>_baseline/migration.sql`;
/// removed again if the folder then does not load.
pub(super) fn write(first: &First) -> Result<Written> {
    let folder = layout::folder()?;
    let dir = &folder.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", folder.shown))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let written = match folder.layout {
        Layout::Supabase => Written { up: dir.join(layout::supabase_file_name("baseline", now)), down: None },
        Layout::Prisma => {
            let name = layout::supabase_file_name("baseline", now);
            let sub = dir.join(name.trim_end_matches(".sql"));
            std::fs::create_dir_all(&sub).with_context(|| format!("cannot create {}", shown(&sub)))?;
            Written { up: sub.join("migration.sql"), down: None }
        }
        Layout::Pairs => {
            Written { up: dir.join("0001_baseline.up.sql"), down: Some(dir.join("0001_baseline.down.sql")) }
        }
    };
    let result = (|| {
        std::fs::write(&written.up, &first.up).with_context(|| format!("cannot write {}", shown(&written.up)))?;
        if let Some(down) = &written.down {
            std::fs::write(down, &first.down).with_context(|| format!("cannot write {}", shown(down)))?;
        }
        load_files().context("the written baseline does not load")
    })();
    if let Err(err) = result {
        let removed = written.remove();
        return Err(err.context(format!("{removed} removed again")));
    }
    crate::context::data(shown(&written.up))?;
    if let Some(down) = &written.down {
        crate::context::data(shown(down))?;
    }
    Ok(written)
}

/// The schemas a dump creates (`CREATE SCHEMA name;`).
fn created_schemas(dump: &str) -> Vec<String> {
    dump.lines().filter_map(|l| l.strip_prefix("CREATE SCHEMA ")?.strip_suffix(';').map(str::to_string)).collect()
}

/// `drop ... cascade` for what the dump creates in `public`, newest kinds first.
fn drop_public_objects(dump: &str) -> String {
    let mut out = String::new();
    for (prefix, kind) in [
        ("CREATE TABLE public.", "table"),
        ("CREATE VIEW public.", "view"),
        ("CREATE MATERIALIZED VIEW public.", "materialized view"),
        ("CREATE SEQUENCE public.", "sequence"),
        ("CREATE TYPE public.", "type"),
        ("CREATE DOMAIN public.", "domain"),
    ] {
        for line in dump.lines().filter(|l| l.starts_with(prefix)) {
            let name: String = line[prefix.len()..]
                .chars()
                .scan(false, |quoted, c| {
                    if c == '"' {
                        *quoted = !*quoted;
                    }
                    (*quoted || !(c == ' ' || c == '(' || c == ';')).then_some(c)
                })
                .collect();
            out.push_str(&format!("drop {kind} if exists public.{name} cascade;\n"));
        }
    }
    for line in dump.lines().filter(|l| l.starts_with("CREATE FUNCTION public.")) {
        if let Some(signature) = line.strip_prefix("CREATE FUNCTION ").and_then(|l| l.split(" RETURNS ").next()) {
            out.push_str(&format!("drop function if exists {signature} cascade;\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::snapshot::parse;

    #[test]
    fn the_settings_are_pg_dump_s_for_this_transaction() {
        assert_eq!(local("SET check_function_bodies = false;"), "SET LOCAL check_function_bodies = false;");
        assert_eq!(
            local("SELECT pg_catalog.set_config('search_path', '', false);"),
            "SELECT pg_catalog.set_config('search_path', '', true);"
        );
    }

    #[test]
    fn the_first_migration_holds_the_app_s_objects_and_rows_before_its_constraints() {
        let live = parse(
            "SET check_function_bodies = false;\n--\n-- Name: app; Type: SCHEMA; Schema: -; Owner: -\n--\n\nCREATE SCHEMA app;\n\n--\n-- Name: users; Type: TABLE; Schema: auth; Owner: -\n--\n\nCREATE TABLE auth.users (id uuid);\n\n--\n-- Name: t; Type: TABLE; Schema: app; Owner: -\n--\n\nCREATE TABLE app.t (id int);\n\n--\n-- Name: t t_pkey; Type: CONSTRAINT; Schema: app; Owner: -\n--\n\nALTER TABLE ONLY app.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n\n--\n-- Name: users on_signup; Type: TRIGGER; Schema: auth; Owner: -\n--\n\nCREATE TRIGGER on_signup AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION app.f();\n",
        );
        let rows = parse(
            "--\n-- Data for Name: t; Type: TABLE DATA; Schema: app; Owner: -\n--\n\nINSERT INTO app.t (id) VALUES (1);\n",
        );
        let first = compose(&live, &Snapshot::default(), Platform::Supabase, &rows.entries);
        let at = |s: &str| first.up.find(s).unwrap_or_else(|| panic!("{s} missing:\n{}", first.up));
        assert!(at("SET LOCAL check_function_bodies = false;") < at("CREATE SCHEMA app;"));
        assert!(!first.up.contains("CREATE TABLE auth.users"), "{}", first.up);
        assert!(at("CREATE TABLE app.t") < at("INSERT INTO app.t") && at("INSERT INTO app.t") < at("t_pkey"));
        assert!(first.up.contains("CREATE TRIGGER on_signup"));
        assert!(first.down.contains(r#"drop trigger if exists "on_signup" on "auth"."users";"#), "{}", first.down);
        assert!(first.down.contains("drop schema if exists app cascade;"));
        assert_eq!(first.objects, 4);
    }
}

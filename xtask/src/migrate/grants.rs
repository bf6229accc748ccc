//! The application's privileges in `migrate baseline`: pg_dump's `ACL` and `DEFAULT ACL`
//! entries of the application's objects, kept for the grantees every database a baseline
//! is applied to has (`PUBLIC`, `postgres` and the roles the bootstrap creates, Supabase's
//! API roles among them) and compared on those grantees only. Grants to other roles are
//! left out, with one warning. Because pg_dump writes grants relative to "no grants" while
//! a bootstrapped database hands new `public` objects to the API roles by default, the
//! written baseline first takes from the API roles what it then grants back.

use std::collections::BTreeSet;

use super::snapshot::{Entry, Platform, Snapshot};
use crate::sql;

/// Supabase's API roles: what the bootstrap's default privileges hand new objects to.
const API_ROLES: &[&str] = &["anon", "authenticated", "service_role"];

/// The grantees a baseline keeps: `PUBLIC`, `postgres` (which the bootstrap grants to) and
/// every role the bootstrap creates, read from the bootstrap itself.
pub(super) fn kept_grantees() -> BTreeSet<String> {
    let mut kept: BTreeSet<String> = ["PUBLIC", "postgres"].iter().map(|s| s.to_string()).collect();
    for line in crate::supabase::SUPABASE_SQL.lines() {
        if let Some((name, _)) = line.trim().strip_prefix("['").and_then(|rest| rest.split_once('\'')) {
            kept.insert(name.to_string());
        }
    }
    kept
}

/// Whether an entry holds privileges.
pub(super) fn is_acl(entry: &Entry) -> bool {
    matches!(entry.kind.as_str(), "ACL" | "DEFAULT ACL")
}

/// The roles one pg_dump privilege statement names: its grantee and, for default
/// privileges, the role they are for (`ALTER DEFAULT PRIVILEGES FOR ROLE r ...`).
fn roles(statement: &str) -> Vec<String> {
    let line = statement.trim_end().trim_end_matches(';');
    let line = line.strip_suffix(" WITH GRANT OPTION").unwrap_or(line);
    let line = line.split(" GRANTED BY ").next().unwrap_or(line);
    let revoke = line.starts_with("REVOKE ") || (line.starts_with("ALTER DEFAULT") && line.contains(" REVOKE "));
    let (word, mut roles) = (if revoke { " FROM " } else { " TO " }, Vec::new());
    if let Some(at) = line.rfind(word) {
        roles.push(unquote(&line[at + word.len()..]));
    }
    if let Some(rest) = line.strip_prefix("ALTER DEFAULT PRIVILEGES FOR ROLE ") {
        roles.push(unquote(rest.split(" IN SCHEMA ").next().unwrap_or(rest).split(" GRANT ").next().unwrap_or("")));
    }
    roles
}

fn unquote(name: &str) -> String {
    let name = name.trim();
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => name.to_string(),
    }
}

fn is_statement(line: &str) -> bool {
    ["GRANT ", "REVOKE ", "ALTER DEFAULT PRIVILEGES "].iter().any(|p| line.starts_with(p))
}

/// Grants left out of a snapshot: the statements, in the snapshot's order.
#[derive(Debug, Default)]
pub(super) struct LeftOut {
    pub statements: Vec<String>,
    pub roles: BTreeSet<String>,
}

impl LeftOut {
    /// One line for the warning, or `None` when nothing was left out.
    pub(super) fn warning(&self) -> Option<String> {
        let first = self.statements.first()?;
        let roles: Vec<&str> = self.roles.iter().map(String::as_str).collect();
        Some(format!(
            "{} grant(s) of the application's objects to roles a new database lacks ({}) are left out of the baseline; the first: `{first}`",
            self.statements.len(),
            roles.join(", ")
        ))
    }
}

/// Keeps, in the application's privilege entries, the statements naming only `kept`
/// roles (the compared text sorted, as pg_dump's order of grantees follows history);
/// entries left without any go, and so do those on objects the dump does not create
/// (an extension's functions, whose privileges are the extension's). Returns what was
/// left out.
pub(super) fn restrict(snapshot: &mut Snapshot, platform: Platform, kept: &BTreeSet<String>) -> LeftOut {
    let mut left_out = LeftOut::default();
    let dumped: BTreeSet<(String, String)> =
        snapshot.entries.iter().filter(|e| !is_acl(e)).map(|e| (e.schema.clone(), e.name.clone())).collect();
    snapshot.entries.retain_mut(|entry| {
        if !is_acl(entry) || !platform.is_app(entry) {
            return true;
        }
        if let Some((kind, name)) = entry.name.split_once(' ').filter(|(kind, _)| *kind != "SCHEMA") {
            let object = if kind == "COLUMN" { name.rsplit_once('.').map_or(name, |(table, _)| table) } else { name };
            if entry.kind == "ACL" && !dumped.contains(&(entry.schema.clone(), object.to_string())) {
                return false;
            }
        }
        let mut raw = String::new();
        let mut text: Vec<&str> = Vec::new();
        for line in entry.raw.lines() {
            if is_statement(line) {
                let named = roles(line);
                let outside: Vec<&String> = named.iter().filter(|r| !kept.contains(*r)).collect();
                if !outside.is_empty() {
                    left_out.roles.extend(outside.into_iter().cloned());
                    left_out.statements.push(line.to_string());
                    continue;
                }
                text.push(line.trim_end());
            }
            raw.push_str(line);
            raw.push('\n');
        }
        if text.is_empty() {
            return false;
        }
        text.sort_unstable();
        entry.text = text.iter().map(|l| format!("{l}\n")).collect();
        entry.raw = raw;
        true
    });
    left_out
}

/// `REVOKE ALL ... FROM anon, authenticated, service_role;` for each relation, function
/// and schema of the application's that the baseline creates, so that what it then grants
/// (pg_dump's ACL entries) is all the API roles get, whatever the target's default
/// privileges hand new objects.
pub(super) fn revokes(objects: &[&Entry], platform: Platform) -> String {
    let mut out = String::new();
    for entry in objects {
        let on = match entry.kind.as_str() {
            "TABLE" | "VIEW" | "MATERIALIZED VIEW" | "SEQUENCE" | "FOREIGN TABLE" => {
                format!("TABLE {}", sql::qualified(&entry.schema, &entry.name))
            }
            "FUNCTION" | "PROCEDURE" => {
                let Some((name, args)) = entry.name.split_once('(') else { continue };
                format!("{} {}.{}({args}", entry.kind, sql::ident(&entry.schema), sql::ident(name))
            }
            "SCHEMA" if !(entry.name == "public" || platform.owns_schema(&entry.name)) => {
                format!("SCHEMA {}", sql::ident(&entry.name))
            }
            _ => continue,
        };
        out.push_str(&format!("REVOKE ALL ON {on} FROM {};\n", API_ROLES.join(", ")));
    }
    if out.is_empty() {
        return out;
    }
    format!(
        "\n-- The API roles get on these objects only what the grants below give, whatever the\n-- target's default privileges hand new objects.\n{out}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::snapshot::parse;

    #[test]
    fn statements_name_their_roles() {
        assert_eq!(roles("GRANT SELECT ON TABLE app.t TO authenticated;"), ["authenticated"]);
        assert_eq!(roles("REVOKE ALL ON FUNCTION app.f() FROM PUBLIC;"), ["PUBLIC"]);
        assert_eq!(roles("GRANT ALL ON TABLE app.t TO \"Odd \"\"one\" WITH GRANT OPTION;"), ["Odd \"one"]);
        assert_eq!(
            roles("ALTER DEFAULT PRIVILEGES FOR ROLE owner IN SCHEMA app GRANT SELECT ON TABLES TO anon;"),
            ["anon", "owner"]
        );
        assert!(kept_grantees().contains("anon") && kept_grantees().contains("supabase_admin"));
    }

    #[test]
    fn grants_to_other_roles_are_left_out_and_empty_entries_go() {
        const ACLS: &str = "--\n-- Name: TABLE t; Type: ACL; Schema: app; Owner: -\n--\n\nGRANT SELECT ON TABLE app.t TO reporting;\nGRANT SELECT ON TABLE app.t TO authenticated;\nGRANT ALL ON TABLE app.t TO anon;\n\n--\n-- Name: TABLE u; Type: ACL; Schema: app; Owner: -\n--\n\nGRANT SELECT ON TABLE app.u TO reporting;\n";
        const TABLES: &str = "--\n-- Name: t; Type: TABLE; Schema: app; Owner: -\n--\n\nCREATE TABLE app.t (id int);\n\n--\n-- Name: u; Type: TABLE; Schema: app; Owner: -\n--\n\nCREATE TABLE app.u (id int);\n\n";
        // Privileges on objects the dump does not make (an extension's) are not the app's.
        let mut snapshot = parse(ACLS);
        assert!(restrict(&mut snapshot, Platform::Supabase, &kept_grantees()).warning().is_none());
        assert!(snapshot.entries.is_empty());
        let mut snapshot = parse(&format!("{TABLES}{ACLS}"));
        let left = restrict(&mut snapshot, Platform::Supabase, &kept_grantees());
        snapshot.entries.retain(is_acl);
        assert_eq!(snapshot.entries.len(), 1);
        assert_eq!(
            snapshot.entries[0].text,
            "GRANT ALL ON TABLE app.t TO anon;\nGRANT SELECT ON TABLE app.t TO authenticated;\n"
        );
        assert!(!snapshot.entries[0].raw.contains("reporting"));
        let warning = left.warning().unwrap();
        assert!(warning.starts_with("2 grant(s)") && warning.contains("(reporting)"), "{warning}");
    }
}

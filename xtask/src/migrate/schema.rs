//! Schema snapshots (`pg_dump --schema-only`, normalized) and their comparison, for
//! `migrate verify`, `migrate diff` and stage-sync's precondition.

use anyhow::{Context, Result};
use app::guard::ClientArgs;
use xshell::Shell;

use crate::pg;

/// The schema of the application, without the project's own bookkeeping (`app_meta`), the
/// dump's comments and session settings, so two equal schemas give equal text.
/// `args` come from the guard's target, so the dump is of the server it checked.
pub(crate) fn dump(sh: &Shell, args: &ClientArgs, shown: &str) -> Result<String> {
    dump_with(sh, args, shown, &["--schema-only".to_string(), "--no-owner".to_string()])
}

/// [`dump`] with other `pg_dump` options; `app_meta` is always left out.
pub(crate) fn dump_with(sh: &Shell, args: &ClientArgs, shown: &str, options: &[String]) -> Result<String> {
    let raw = pg::client_cmd(sh, "pg_dump", args)?
        .args(options)
        .arg("--exclude-schema=app_meta")
        .ignore_stderr()
        .read()
        .with_context(|| format!("cannot read the schema of {shown} (pg_dump --schema-only)"))?;
    Ok(normalize(&raw))
}

/// [`dump`] of only the named schemas: what stage-sync copies must have one shape on both
/// sides, whatever else (extensions, other tools' schemas) each database holds.
pub(crate) fn dump_schemas(sh: &Shell, args: &ClientArgs, shown: &str, schemas: &[String]) -> Result<String> {
    // Quoted, so the names are taken as written (case kept, no wildcards).
    let mut options = vec!["--schema-only".to_string(), "--no-owner".to_string()];
    options.extend(schemas.iter().map(|s| format!("--schema={}", crate::sql::ident(s))));
    dump_with(sh, args, shown, &options)
}

fn normalize(dump: &str) -> String {
    dump.lines()
        .filter(|line| {
            let line = line.trim_end();
            !(line.is_empty()
                || line.starts_with("--")
                || line.starts_with("\\restrict")
                || line.starts_with("\\unrestrict")
                || line.starts_with("SET ")
                || line.starts_with("SELECT pg_catalog.set_config"))
        })
        .map(|line| format!("{}\n", line.trim_end()))
        .collect()
}

/// The first line where two schemas differ, with the statement it belongs to.
pub(crate) fn first_difference(expected: &str, actual: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let at = e.iter().zip(&a).position(|(x, y)| x != y).unwrap_or(e.len().min(a.len()));
    let show = |lines: &[&str]| lines.get(at).map_or("(end of schema)".to_string(), |l| format!("`{}`", l.trim()));
    // Inside a multi-line statement (an indented line), name the statement too.
    let inside = e.get(at).is_some_and(|l| l.starts_with(' ') || l.starts_with(')'));
    let statement = e[..at].iter().rev().find(|l| !l.starts_with(' ') && !l.starts_with(')'));
    match statement.filter(|_| inside) {
        Some(statement) => Some(format!("in `{}`: expected {}, found {}", statement.trim(), show(&e), show(&a))),
        None => Some(format!("expected {}, found {}", show(&e), show(&a))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_statement() {
        let a = "CREATE TABLE public.t (\n    a integer,\n    b text\n);\n";
        let b = "CREATE TABLE public.t (\n    a integer,\n    b integer\n);\n";
        let diff = first_difference(a, b).unwrap();
        assert_eq!(diff, "in `CREATE TABLE public.t (`: expected `b text`, found `b integer`");
        assert_eq!(first_difference(a, a), None);
        assert_eq!(first_difference(a, "").unwrap(), "expected `CREATE TABLE public.t (`, found (end of schema)");
    }

    #[test]
    fn normalizing_drops_comments_and_settings() {
        let dump = "--\n-- PostgreSQL database dump\n\\restrict abc\nSET x = 1;\n\nCREATE TABLE t ();  \n";
        assert_eq!(normalize(dump), "CREATE TABLE t ();\n");
    }
}

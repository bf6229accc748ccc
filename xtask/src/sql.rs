//! SQL identifiers and literals, quoted in one place. Names come from catalogs, rules files
//! and the command line, so none is trusted to be plain: every identifier is double-quoted
//! (a `"` doubled), every literal single-quoted (a `'` doubled). Literals rely on
//! `standard_conforming_strings`, on by default since PostgreSQL 9.1 and on in Supabase, so
//! a backslash is an ordinary character. Values go as bind parameters wherever the statement
//! allows them; these are for the places it doesn't (DDL, `COPY (...)`, `batch_execute`).
//! And the way back: [`server_message`], what the server said, for reports that list errors.

/// `name` as a quoted identifier: `"a""b"`.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.name`, both quoted.
pub(crate) fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// Quoted identifiers, comma-separated: a column list.
pub(crate) fn idents<S: AsRef<str>>(names: &[S]) -> String {
    names.iter().map(|name| ident(name.as_ref())).collect::<Vec<_>>().join(", ")
}

/// `alias.name` for each name, comma-separated: a column list over a table alias.
pub(crate) fn columns_of<S: AsRef<str>>(alias: &str, names: &[S]) -> String {
    names.iter().map(|name| format!("{alias}.{}", ident(name.as_ref()))).collect::<Vec<_>>().join(", ")
}

/// `value` as a string literal: `'it''s'`.
pub(crate) fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Literals, comma-separated: the inside of an `in (...)` list.
pub(crate) fn literals<S: AsRef<str>>(values: &[S]) -> String {
    values.iter().map(|value| literal(value.as_ref())).collect::<Vec<_>>().join(", ")
}

/// The server's own message with its detail, never the client's bare "db error"; an error
/// that is not the server's (a lost connection) keeps its cause chain.
pub(crate) fn server_message(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => app::connect::error_chain(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_survive_their_own_quotes() {
        assert_eq!(ident("User"), "\"User\"");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(qualified("public", "a b"), "\"public\".\"a b\"");
        assert_eq!(idents(&["a", "B"]), "\"a\", \"B\"");
        assert_eq!(columns_of("t", &["id"]), "t.\"id\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\b"), "'a\\b'");
        assert_eq!(literals(&["1", "o'k"]), "'1', 'o''k'");
    }

    #[test]
    fn every_quoted_name_unquotes_to_itself() {
        for name in ["", "\"", "\"\"", "a\"\"b", "ü"] {
            let quoted = ident(name);
            let inner = &quoted[1..quoted.len() - 1];
            assert_eq!(inner.replace("\"\"", "\""), name);
        }
    }
}

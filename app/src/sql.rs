//! SQL identifiers and literals, quoted in one place, for the statements that cannot take
//! bind parameters (`CREATE DATABASE`, `ALTER DATABASE`, `COMMENT ON DATABASE`). Every
//! identifier is double-quoted (a `"` doubled), every literal single-quoted (a `'`
//! doubled); literals rely on `standard_conforming_strings`, on since PostgreSQL 9.1.
//! `xtask`'s `sql.rs` is the same rule for the commands.

/// `name` as a quoted identifier: `"a""b"`.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` as a string literal: `'it''s'`.
pub(crate) fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_are_doubled() {
        assert_eq!(super::ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(super::literal("it's"), "'it''s'");
    }
}

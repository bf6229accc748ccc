//! SQL identifiers and literals are quoted in one place: `xtask/src/sql.rs` (and `app`'s own
//! quoting module, `app/src/sql.rs`). Elsewhere, in code that ships, this finds the ways of
//! quoting by hand: doubling a quote (`replace('"', "\"\"")`, `replace('\'', "''")`), and a
//! `format!` string of SQL that wraps a placeholder in quotes (`"\"{name}\""`, `"'{}'"`).

use super::{Rule, check_known, scan, sources};

/// The quoting modules.
const QUOTERS: &[&str] = &["xtask/src/sql.rs", "app/src/sql.rs"];

/// Hand quoting allowed for now, as `path: the line's text`: none.
const KNOWN_HAND_QUOTING: &[&str] = &[];

/// A quote doubled by hand: what `sql::ident` and `sql::literal` do.
const DOUBLINGS: &[&str] =
    &[r#"replace('"', "\"\"")"#, r#"replace("\"", "\"\"")"#, r#"replace('\'', "''")"#, r#"replace("'", "''")"#];

/// Words that make a `format!` string SQL.
const SQL_WORDS: &[&str] = &[
    "select", "insert", "update", "delete", "create", "alter", "drop", "grant", "revoke", "comment", "truncate",
    "copy", "values", "where", "table", "schema", "role", "database",
];

#[test]
fn no_hand_quoting() {
    let found = sources()
        .into_iter()
        .filter(|source| source.ships() && !QUOTERS.contains(&source.path.as_str()))
        .flat_map(|source| {
            let raw: Vec<&str> = source.text.lines().collect();
            let doubled = raw
                .iter()
                .enumerate()
                .filter(|(_, line)| !line.trim_start().starts_with("//") && DOUBLINGS.iter().any(|d| line.contains(d)))
                .map(|(i, _)| i)
                .collect::<Vec<_>>();
            let wrapped =
                scan::format_strings(&source.text).into_iter().filter(|(_, s)| quotes_a_placeholder(s)).map(|(i, _)| i);
            doubled
                .into_iter()
                .chain(wrapped)
                .filter(|&i| !source.tested[i])
                .map(|i| {
                    let line = raw[i].trim();
                    (format!("{}: {line}", source.path), format!("{}:{}: {line}", source.path, i + 1))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    check_known(
        Rule {
            what: "these lines quote SQL by hand",
            fix: "use `sql::ident`, `sql::qualified`, `sql::literal` (or their lists) from xtask/src/sql.rs, or `app`'s own quoting module in `app`; or a bind parameter where the statement takes one",
            list: "KNOWN_HAND_QUOTING in xtask/src/tidy/quoting.rs",
        },
        found,
        KNOWN_HAND_QUOTING,
    );
}

/// Whether the SQL `format!` string `s` wraps a placeholder in quotes: `"{x}"` or `'{}'`.
fn quotes_a_placeholder(s: &str) -> bool {
    // The words outside placeholders: `{table}` names a value, it says nothing of the string.
    let (mut words, mut inside) = (String::new(), false);
    for c in s.to_lowercase().chars() {
        match c {
            '{' => inside = true,
            '}' => inside = false,
            _ if !inside => words.push(c),
            _ => {}
        }
    }
    let is_sql = words.split(|c: char| !c.is_alphanumeric() && c != '_').any(|word| SQL_WORDS.contains(&word));
    is_sql
        && ["\\\"{", "'{"].iter().any(|open| {
            s.match_indices(open).any(|(at, _)| {
                let inner = &s[at + open.len()..];
                let name_len =
                    inner.find(|c: char| !(c.is_alphanumeric() || "_.:?".contains(c))).unwrap_or(inner.len());
                let close = if open.starts_with('\'') { "}'" } else { "}\\\"" };
                inner[name_len..].starts_with(close)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::quotes_a_placeholder;

    #[test]
    fn quoted_placeholders_in_sql_are_found() {
        assert!(quotes_a_placeholder(r#"insert into \"{table}\" values (1)"#));
        assert!(quotes_a_placeholder("comment on database {} is '{}'"));
        assert!(!quotes_a_placeholder("comment on database {} is {}"));
        assert!(!quotes_a_placeholder("select '{{}}'::text[]"));
        assert!(!quotes_a_placeholder(r#"[tables.\"{table}\".columns]"#));
    }
}

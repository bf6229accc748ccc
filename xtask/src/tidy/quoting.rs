//! SQL identifiers and literals are quoted in one place: `xtask/src/sql.rs` (and `app`'s own
//! quoting module, `app/src/sql.rs`). Elsewhere, in code that ships, this finds the ways of
//! quoting by hand: doubling a quote (`replace('"', "\"\"")`, `replace('\'', "''")`), and a
//! `format!` string of SQL that wraps a placeholder in quotes (`"\"{name}\""`, `"'{}'"`).

use super::{Rule, check_known, scan, sources};

/// The quoting modules.
const QUOTERS: &[&str] = &["xtask/src/sql.rs", "app/src/sql.rs"];

/// Hand quoting today, as `path: the line's text`: `app`'s (until its quoting module, issue
/// 22, is merged) and the benchmarks' (until they move to a room of their own); then the
/// lead empties this list and it stays empty.
const KNOWN_HAND_QUOTING: &[&str] = &[
    r#"app/src/template.rs: format!("\"{}\"", name.replace('"', "\"\""))"#,
    r#"app/src/template.rs: format!("'{}'", text.replace('\'', "''"))"#,
    r#"app/src/template.rs: run(client, &format!("comment on database {fresh} is '{SCRATCH_MARK}'"), "cannot mark the clone")?;"#,
    r#"app/src/template.rs: None => format!("alter database {target} rename to {old}; comment on database {old} is '{SCRATCH_MARK}';"),"#,
    r#"app/src/restore_point.rs: "alter database {restore} rename to {old}; comment on database {old} is '{SCRATCH_MARK}';\n""#,
    r#"app/src/restore_point.rs: run(client, &format!("comment on database {fresh} is '{SCRATCH_MARK}'"), "cannot mark the copy")?;"#,
    r#"app/src/guard/databases.rs: let sql = format!("comment on database {} is '{}'", template::ident(&names.fresh), template::SCRATCH_MARK);"#,
    r#"xtask/src/seed/bench.rs: "insert into public.daily_dentist_production (id, clinic_id, location_id, provider_id, date, production, verified_production, hours_worked, patients_seen, new_patients, data_source_id, notes, created_at, updated_at)"#,
    r#"xtask/src/seed/bench.rs: "insert into public.daily_hygiene_production (id, clinic_id, location_id, provider_id, date, production, verified_production, hours_worked, patients_seen, data_source_id, notes, created_at, updated_at)"#,
    r#"xtask/src/seed/bench.rs: "insert into public.daily_location_financials (id, clinic_id, location_id, date, production, adjustments, write_offs, net_production, patient_income, insurance_income, collections, data_source_id, notes, created_at, updated_at)"#,
    r#"xtask/src/stage_sync/bench/generated/rows.rs: format!("INSERT INTO \"{table}\" ({columns}) SELECT {values} FROM generate_series(1, {count}) i")"#,
    r#"xtask/src/stage_sync/bench/generated.rs: "ALTER TABLE \"{table}\" ADD CONSTRAINT \"{table}_{column}_fkey\" FOREIGN KEY (\"{column}\") \"#,
];

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

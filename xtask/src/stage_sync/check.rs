//! The rules check: the parsed rules file against the source's tables, strict. A column
//! without a rule, a rule for something that doesn't exist or that doesn't fit its column,
//! a foreign key masked unlike its key, or a personal-looking column kept without review
//! stops the sync before a row is copied. Missing rules come with suggested ones
//! (`suggest.rs`) to paste.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::{
    catalog::{Column, Table},
    rules::{ByteRule, Mode, Rule, Rules, RulesFile, TableRules},
    sample::{PersonalValues, sampled},
    suggest::{self, name_looks_personal},
};

/// Checks the rules against the source's tables. `personal` says whether a kept column's
/// sampled values look personal (emails, phone numbers).
pub(super) fn check(file: &RulesFile, tables: &[Table], personal: &mut dyn PersonalValues) -> Result<Rules> {
    let mut found = Found::default();
    for name in file.tables.keys() {
        if !tables.iter().any(|t| &t.key() == name) {
            found.problems.push(format!("table {name} has rules but does not exist in the source"));
        }
    }
    let mut checked = BTreeMap::new();
    for table in tables {
        checked.insert(table.key(), check_table(file, table, personal, &mut found)?);
    }
    found.problems.extend(foreign_key_problems(tables, &checked));
    let shown = &file.shown;
    if !found.problems.is_empty() {
        bail!("{shown} has {} problem(s): {}", found.problems.len(), found.problems.join("; "));
    }
    if !found.uncovered.is_empty() {
        bail!(uncovered_message(shown, tables, &found.uncovered));
    }
    Ok(Rules { schemas: file.schemas.clone(), tables: checked, checksum: file.checksum.clone() })
}

/// What the check found wrong so far.
#[derive(Default)]
struct Found<'t> {
    problems: Vec<String>,
    /// Copied columns without a rule, by table.
    uncovered: BTreeMap<String, Vec<&'t Column>>,
}

/// One table's rules: every named column exists and is not generated; in copy mode, every
/// copied column has a rule that fits it.
fn check_table<'t>(
    file: &RulesFile,
    table: &'t Table,
    personal: &mut dyn PersonalValues,
    found: &mut Found<'t>,
) -> Result<TableRules> {
    let section = file.tables.get(&table.key());
    let mode = section.map_or(Mode::Copy, |f| f.mode);
    for (name, _) in section.map(|f| &f.columns).into_iter().flatten() {
        match table.columns.iter().find(|c| &c.name == name) {
            None => found.problems.push(format!("{}.{name} has a rule but no such column", table.key())),
            Some(c) if c.generated => found
                .problems
                .push(format!("{}.{name} is generated (recomputed by the target): remove its rule", table.key())),
            Some(_) => {}
        }
    }
    let mut columns = Vec::new();
    if mode == Mode::Copy {
        for column in table.copied_columns() {
            let Some(raw) = section.and_then(|f| f.columns.get(&column.name)) else {
                found.uncovered.entry(table.key()).or_default().push(column);
                continue;
            };
            let where_ = format!("{}.{}", table.key(), column.name);
            match raw.resolve(column) {
                Err(err) => found.problems.push(format!("{where_}: {err}")),
                Ok((Rule::Keep, reviewed)) if !reviewed => {
                    if let Some(problem) = kept_unreviewed(&where_, table, column, personal)? {
                        found.problems.push(problem);
                    }
                    columns.push((column.name.clone(), Rule::Keep));
                }
                Ok((Rule::Redact(_) | Rule::Bytes(ByteRule::Empty), _)) if table.is_unique(&column.name) => {
                    found.problems.push(format!(
                        "{where_} is in a unique key or index, so `redact` would give every row one value; use a pseudonym kind (on bytea: `bytes`)"
                    ))
                }
                Ok((rule, _)) => columns.push((column.name.clone(), rule)),
            }
        }
    }
    Ok(TableRules { mode, columns })
}

/// A column kept without review: a problem if its name, or else its sampled values, look
/// personal.
fn kept_unreviewed(
    where_: &str,
    table: &Table,
    column: &Column,
    personal: &mut dyn PersonalValues,
) -> Result<Option<String>> {
    Ok(if name_looks_personal(column) {
        Some(format!("{where_} is kept, but its name looks personal (mark the rule reviewed = true if it is not)"))
    } else if sampled(column) && personal.look_personal(table, column)? {
        Some(format!("{where_} is kept, but its values look personal (mark the rule reviewed = true if they are not)"))
    } else {
        None
    })
}

/// A foreign key follows the rule of the key it references, or joins would break.
fn foreign_key_problems(tables: &[Table], checked: &BTreeMap<String, TableRules>) -> Vec<String> {
    let rule_of = |t: &str, c: &str| {
        checked
            .get(t)
            .filter(|r| r.mode == Mode::Copy)
            .and_then(|r| r.columns.iter().find(|(n, _)| n == c))
            .map(|(_, r)| r)
    };
    let mut problems = Vec::new();
    for table in tables {
        for fk in &table.foreign_keys {
            for (column, target_column) in fk.columns.iter().zip(&fk.target_columns) {
                if let (Some(mine), Some(theirs)) = (rule_of(&table.key(), column), rule_of(&fk.target, target_column))
                {
                    if mine != theirs {
                        problems.push(format!(
                            "{}.{column} references {}.{target_column}, so it needs the same rule ({}, not {})",
                            table.key(),
                            fk.target,
                            theirs.label(),
                            mine.label()
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// The columns without a rule, and a snippet of suggested rules to review and paste.
fn uncovered_message(shown: &str, tables: &[Table], uncovered: &BTreeMap<String, Vec<&Column>>) -> String {
    let count: usize = uncovered.values().map(Vec::len).sum();
    let list: Vec<String> =
        uncovered.iter().flat_map(|(t, cols)| cols.iter().map(move |c| format!("{t}.{}", c.name))).collect();
    let mut snippet = String::new();
    for (table, columns) in uncovered {
        snippet.push_str(&format!("\n[tables.\"{table}\".columns]\n"));
        let unique = |c: &Column| tables.iter().any(|t| &t.key() == table && t.is_unique(&c.name));
        for column in columns {
            let rule = if unique(column) {
                suggest::for_unique(column, suggest::suggest(column))
            } else {
                suggest::suggest(column)
            };
            snippet.push_str(&format!("{} = {rule}\n", suggest::toml_key(&column.name)));
        }
    }
    format!(
        "{count} column(s) have no rule in {shown}: {}\nhint: review and paste into {shown}:{snippet}",
        list.join(", ")
    )
}

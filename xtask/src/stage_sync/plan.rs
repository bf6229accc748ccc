//! `stage-sync --dry-run`: the plan, printed as data: tables in load order and what
//! happens to each, rule coverage, the collision risk of pseudonyms in unique keys and
//! indexes, and a sample of masked output (originals are never shown).

use anyhow::Result;
use app::guard::{ReadTarget, WriteTarget, op};

use super::{
    catalog::Table,
    mask::Masker,
    rules::{self, Mode, Rules},
};
use crate::{
    context::{data, status},
    sql,
    ui::{self, Align},
};

/// Prints the plan; writes nothing.
pub fn print(
    tx: &mut postgres::Transaction,
    tables: &[Table],
    order: &[usize],
    rules: &Rules,
    masker: &Masker,
    source: &ReadTarget<op::StageSyncSource>,
    target: &WriteTarget<op::StageSyncTarget>,
) -> Result<()> {
    data(format!(
        "plan: {} ({}) -> {} ({})",
        source.environment(),
        source.url().address(),
        target.environment(),
        target.url().address()
    ))?;
    data("load order:")?;
    let mut load_order = ui::Table::new(&[
        ("#", Align::Right),
        ("table", Align::Left),
        ("rows (est.)", Align::Right),
        ("what", Align::Left),
    ]);
    for (n, &i) in order.iter().enumerate() {
        let table = &tables[i];
        let table_rules = &rules.tables[&table.key()];
        let masked = table_rules.columns.iter().filter(|(_, r)| *r != rules::Rule::Keep).count();
        let mode = match table_rules.mode {
            Mode::Copy => format!("copy, {masked} of {} columns masked", table_rules.columns.len()),
            Mode::Skip => "skip: emptied in the target".to_string(),
            Mode::SchemaOnly => "schema only: the target's rows stay".to_string(),
        };
        load_order.row([format!("{}.", n + 1), table.key(), format!("~{}", table.estimate), mode]);
    }
    load_order.lines().iter().try_for_each(|line| data(format!("  {line}")))?;
    let all: Vec<&rules::Rule> = rules.tables.values().flat_map(|t| t.columns.iter().map(|(_, r)| r)).collect();
    let mut kinds: Vec<String> = all.iter().map(|r| r.label()).collect();
    kinds.sort();
    kinds.dedup();
    data(format!(
        "rule coverage: every column of {} table(s) has a rule ({} columns); rules used: {}",
        tables.len(),
        all.len(),
        kinds.join(", ")
    ))?;
    data("unique columns with pseudonyms (collision risk):")?;
    for table in tables {
        for (column, rule) in &rules.tables[&table.key()].columns {
            if table.is_unique(column) && matches!(rule, rules::Rule::Json(_) | rules::Rule::Elements(_)) {
                data(format!(
                    "  {}.{column}: {} inside a unique index's expression; uniqueness is checked after loading",
                    table.key(),
                    rule.label()
                ))?;
            }
            if let rules::Rule::Pseudonym(kind) = rule {
                if table.is_unique(column) {
                    let bits = if matches!(kind, rules::Kind::Uuid) { 122 } else { 45 };
                    let n = table.estimate.max(1) as f64;
                    let risk = n * n / 2f64.powi(bits + 1);
                    data(format!(
                        "  {}.{column}: {} with a {bits}-bit hash tag; collision chance at ~{} rows: {risk:.1e} (checked after loading)",
                        table.key(),
                        kind.name(),
                        table.estimate
                    ))?;
                }
            }
        }
    }
    data("sample of masked output (originals are never shown):")?;
    for table in tables {
        for (column, rule) in &rules.tables[&table.key()].columns {
            let rules::Rule::Pseudonym(kind) = rule else { continue };
            let sql = format!(
                "select {col}::text from {} where {col} is not null limit 3",
                table.qualified(),
                col = sql::ident(column)
            );
            let samples: Vec<String> = tx
                .query(&sql, &[])?
                .iter()
                .map(|r| masker.pseudonym(*kind, &r.get::<_, String>(0), table.distinct_pseudonyms(column)))
                .collect();
            data(format!("  {}.{column} ({}): {}", table.key(), kind.name(), samples.join(" | ")))?;
        }
    }
    status("dry run: nothing was written");
    Ok(())
}

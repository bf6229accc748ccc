//! The sync's plan: what it will do, decided from the source's catalog, the rules and the
//! subset before anything is written, and without a write connection. `--dry-run` prints
//! it as data: tables in load order and what happens to each, rule coverage, the collision
//! risk of pseudonyms in unique keys and indexes, and a sample of masked output (originals
//! are never shown).

use std::collections::BTreeMap;

use anyhow::Result;
use app::guard::{ReadTarget, WriteTarget, op};

use super::{
    catalog::{self, Table},
    mask::Masker,
    pipe,
    rules::{self, Kind, Mode, Rule, Rules},
};
use crate::{
    context::{data, status},
    sql,
    ui::{self, Align},
};

/// Everything a sync will do to the target, in order.
#[derive(Debug)]
pub(super) struct Plan {
    pub tables: Vec<Table>,
    /// Indexes into `tables`, referenced tables first.
    pub order: Vec<usize>,
    pub rules: Rules,
    /// `--clinics`: a `WHERE` expression per table (over alias `t`); a table without one
    /// copies no row. `None` copies every row.
    pub filters: Option<BTreeMap<String, String>>,
    /// `auth.users` is synced (its section is in the rules): its dependents in `auth`
    /// (sessions, refresh tokens, identities, MFA, one-time tokens, ...) are emptied, never
    /// copied, and each copied user gets an email identity (`execute::stage_logins`).
    pub copies_auth_users: bool,
}

impl Plan {
    /// A plan from what was read; pure, so every decision in it can be tested alone.
    pub(super) fn new(
        tables: Vec<Table>,
        rules: Rules,
        filters: Option<BTreeMap<String, String>>,
        extra: &[String],
    ) -> Plan {
        let order = catalog::load_order(&tables);
        let copies_auth_users = extra.iter().any(|t| t == rules::AUTH_USERS);
        Plan { tables, order, rules, filters, copies_auth_users }
    }

    /// The tables the target empties first, qualified: every synced table but the
    /// `schema_only` ones, whose rows stay.
    pub(super) fn emptied(&self) -> Vec<String> {
        self.tables.iter().filter(|t| self.mode(t) != Mode::SchemaOnly).map(Table::qualified).collect()
    }

    /// The tables whose rows are copied, qualified.
    pub(super) fn loaded(&self) -> Vec<String> {
        self.tables.iter().filter(|t| self.mode(t) == Mode::Copy).map(Table::qualified).collect()
    }

    /// One copy job per copied table, in load order.
    pub(super) fn jobs(&self) -> Vec<pipe::Job<'_>> {
        self.order
            .iter()
            .map(|&i| &self.tables[i])
            .filter(|t| self.mode(t) == Mode::Copy)
            .map(|table| pipe::Job {
                table,
                rules: &self.rules.tables[&table.key()],
                filter: self.filters.as_ref().map(|f| f.get(&table.key()).map_or("false", String::as_str)),
                into: None,
                freeze: true,
            })
            .collect()
    }

    fn mode(&self, table: &Table) -> Mode {
        self.rules.tables[&table.key()].mode
    }
}

/// Prints the plan; writes nothing.
pub(super) fn print(
    tx: &mut postgres::Transaction,
    plan: &Plan,
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
    load_order(plan).lines().iter().try_for_each(|line| data(format!("  {line}")))?;
    let all: Vec<&Rule> = plan.rules.tables.values().flat_map(|t| t.columns.iter().map(|(_, r)| r)).collect();
    let mut kinds: Vec<String> = all.iter().map(|r| r.label()).collect();
    kinds.sort();
    kinds.dedup();
    data(format!(
        "rule coverage: every column of {} table(s) has a rule ({} columns); rules used: {}",
        plan.tables.len(),
        all.len(),
        kinds.join(", ")
    ))?;
    data("unique columns with pseudonyms (collision risk):")?;
    collision_risks(plan).into_iter().try_for_each(|line| data(format!("  {line}")))?;
    if plan.copies_auth_users {
        data(
            "auth.users: copied masked; in the target GoTrue's per-user tables (identities, sessions, refresh tokens, MFA, one-time tokens, ...) are emptied, each user with an email gets one email identity, no token stays pending, no production password hash stays",
        )?;
    }
    data("sample of masked output (originals are never shown):")?;
    masked_sample(tx, plan, masker)?;
    status("dry run: nothing was written");
    Ok(())
}

/// The tables in load order, and what happens to each.
fn load_order(plan: &Plan) -> ui::Table {
    let mut table = ui::Table::new(&[
        ("#", Align::Right),
        ("table", Align::Left),
        ("rows (est.)", Align::Right),
        ("what", Align::Left),
    ]);
    for (n, &i) in plan.order.iter().enumerate() {
        let synced = &plan.tables[i];
        let table_rules = &plan.rules.tables[&synced.key()];
        let masked = table_rules.columns.iter().filter(|(_, r)| *r != Rule::Keep).count();
        let mode = match table_rules.mode {
            Mode::Copy => format!("copy, {masked} of {} columns masked", table_rules.columns.len()),
            Mode::Skip => "skip: emptied in the target".to_string(),
            Mode::SchemaOnly => "schema only: the target's rows stay".to_string(),
        };
        table.row([format!("{}.", n + 1), synced.key(), format!("~{}", synced.estimate), mode]);
    }
    table
}

/// Unique columns whose values are masked: the chance two pseudonyms collide, or that a
/// unique index over masked json or arrays fails (both checked after loading).
fn collision_risks(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    for table in &plan.tables {
        for (column, rule) in &plan.rules.tables[&table.key()].columns {
            if table.is_unique(column) && matches!(rule, Rule::Json(_) | Rule::Elements(_)) {
                lines.push(format!(
                    "{}.{column}: {} inside a unique index's expression; uniqueness is checked after loading",
                    table.key(),
                    rule.label()
                ));
            }
            if let Rule::Pseudonym(kind) = rule {
                if table.is_unique(column) {
                    let bits = if matches!(kind, Kind::Uuid) { 122 } else { 45 };
                    let n = table.estimate.max(1) as f64;
                    let risk = n * n / 2f64.powi(bits + 1);
                    lines.push(format!(
                        "{}.{column}: {} with a {bits}-bit hash tag; collision chance at ~{} rows: {risk:.1e} (checked after loading)",
                        table.key(),
                        kind.name(),
                        table.estimate
                    ));
                }
            }
        }
    }
    lines
}

/// Three masked values of each pseudonymized column, read from the snapshot.
fn masked_sample(tx: &mut postgres::Transaction, plan: &Plan, masker: &Masker) -> Result<()> {
    for table in &plan.tables {
        for (column, rule) in &plan.rules.tables[&table.key()].columns {
            let Rule::Pseudonym(kind) = rule else { continue };
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage_sync::catalog::{Category, Column, ForeignKey};

    fn table(name: &str, references: Option<&str>) -> Table {
        let column = |name: &str| Column {
            name: name.into(),
            type_name: "int8".into(),
            not_null: true,
            generated: false,
            category: Category::Numeric,
            base_type: "int8".into(),
            wire: None,
        };
        let mut columns = vec![column("id")];
        let foreign_keys = references
            .map(|target| {
                columns.push(column("parent_id"));
                vec![ForeignKey {
                    name: format!("{name}_parent_fk"),
                    columns: vec!["parent_id".into()],
                    target: format!("public.{target}"),
                    target_qualified: format!("public.{target}"),
                    target_columns: vec!["id".into()],
                }]
            })
            .unwrap_or_default();
        Table {
            schema: "public".into(),
            name: name.into(),
            partitioned: false,
            columns,
            primary_key: vec!["id".into()],
            uniques: vec![vec!["id".into()]],
            loosely_unique: vec![],
            foreign_keys,
            sequences: vec![],
            estimate: 10,
        }
    }

    fn plan(filters: Option<BTreeMap<String, String>>) -> Plan {
        // Listed children first: the plan must put what they reference before them.
        let tables =
            vec![table("visits", Some("clinics")), table("audit", None), table("clinics", None), table("notes", None)];
        let text = r#"
            [tables."public.clinics".columns]
            id = "keep"
            [tables."public.visits".columns]
            id = "keep"
            parent_id = "keep"
            [tables."public.audit"]
            mode = "skip"
            [tables."public.audit".columns]
            id = "keep"
            [tables."public.notes"]
            mode = "schema_only"
            [tables."public.notes".columns]
            id = "keep"
        "#;
        let rules = rules::tests::check("rules.toml", text, &tables, &mut |_, _| Ok(false)).unwrap();
        Plan::new(tables, rules, filters, &[])
    }

    #[test]
    fn referenced_tables_load_first_and_modes_decide_what_is_emptied_and_copied() {
        let plan = plan(None);
        let jobs: Vec<String> = plan.jobs().iter().map(|j| j.table.key()).collect();
        assert_eq!(jobs, ["public.clinics", "public.visits"]);
        assert!(plan.jobs().iter().all(|j| j.filter.is_none()));
        let mut emptied = plan.emptied();
        emptied.sort();
        assert_eq!(
            emptied,
            [r#""public"."audit""#, r#""public"."clinics""#, r#""public"."visits""#],
            "schema_only keeps its rows"
        );
        let mut loaded = plan.loaded();
        loaded.sort();
        assert_eq!(loaded, [r#""public"."clinics""#, r#""public"."visits""#], "skip is emptied, not copied");
        assert!(!plan.copies_auth_users);
    }

    #[test]
    fn a_subset_copies_no_row_of_a_table_it_has_no_filter_for() {
        let filters = BTreeMap::from([("public.clinics".to_string(), "t.id in (1)".to_string())]);
        let plan = plan(Some(filters));
        let jobs = plan.jobs();
        assert_eq!(jobs[0].filter, Some("t.id in (1)"));
        assert_eq!(jobs[1].filter, Some("false"));
    }
}

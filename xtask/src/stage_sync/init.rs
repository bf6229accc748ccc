//! `cargo xtask stage-sync init-rules`: a starting rules file from the source's schema and a
//! sample of its values. Names suggest rules (`suggest.rs`); sampled text, json and array
//! values catch what names miss (tokens, sheet ids, links, emails inside jsonb). The output
//! is a starting point a person reviews before committing, never a verdict.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use app::{Guard, guard::op};
use postgres::GenericClient;

use super::{
    catalog::{self, Category, Column, Table},
    rules::AUTH_USERS,
    sample::{is_json, sample, sampled},
    suggest::{self, looks_personal, name_looks_personal, toml_key, value_looks_identifying},
};
use crate::context::status;

/// Writes the file; refuses to overwrite one without `force`.
pub(super) fn init_rules(source: &Guard, path: &std::path::Path, shown: &str, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{shown} exists\nhint: pass --force to overwrite it");
    }
    // Reading the schema and a sample is inspection: a read-only session, any environment
    // with the same schema will do.
    let mut conn = source.read::<op::Inspect>()?.connect()?;
    let mut tx = conn.transaction()?;
    let client = &mut tx;
    let schemas = app_schemas(client)?;
    let auth_users: bool = client
        .query_one("select to_regclass('auth.users') is not null", &[])
        .context("cannot read the catalog")?
        .get(0);
    let extra = if auth_users { vec![AUTH_USERS.to_string()] } else { vec![] };
    let tables = catalog::load(client, &schemas, &extra)?;
    let mut suggested: BTreeMap<(String, String), (String, Option<&str>)> = BTreeMap::new();
    for table in &tables {
        for column in table.copied_columns() {
            let entry = suggest_column(client, table, column)?;
            suggested.insert((table.key(), column.name.clone()), entry);
        }
    }
    // A foreign key takes the rule of the key it points at, or the copy's joins break.
    for table in &tables {
        for fk in &table.foreign_keys {
            for (column, target) in fk.columns.iter().zip(&fk.target_columns) {
                if let Some((rule, _)) = suggested.get(&(fk.target.clone(), target.clone())).cloned() {
                    let why = (rule != "\"keep\"").then_some("follows the key it references");
                    suggested.insert((table.key(), column.clone()), (rule, why));
                }
            }
        }
    }
    let list = schemas.iter().map(|s| format!("\"{}\"", s.replace('"', "\\\""))).collect::<Vec<_>>().join(", ");
    let mut text = format!("{HEADER}\nschemas = [{list}]\n");
    for table in &tables {
        text.push_str(&format!("\n[tables.\"{}\".columns]\n", table.key()));
        for column in table.copied_columns() {
            let (rule, why) = &suggested[&(table.key(), column.name.clone())];
            text.push_str(&rule_line(column, rule, *why));
        }
    }
    let partial = path.with_extension("toml.partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)?;
    status(format!(
        "wrote {shown} with rules for {} table(s) in {}: a starting point; review every line before committing",
        tables.len(),
        schemas.join(", ")
    ));
    Ok(())
}

/// One column's line: a kept column whose name looks personal is left for a person to decide.
fn rule_line(column: &Column, rule: &str, why: Option<&str>) -> String {
    let key = toml_key(&column.name);
    if rule == "\"keep\"" && name_looks_personal(column) {
        format!("{key} = {{ rule = \"keep\", reviewed = false }} # personal-looking name: decide\n")
    } else if let Some(why) = why {
        format!("{key} = {rule} # {why}\n")
    } else {
        format!("{key} = {rule}\n")
    }
}

/// The schemas the app owns: those holding tables, without the system's, Supabase's and
/// this tool's (`app_meta`), and without those an extension made.
fn app_schemas(client: &mut impl GenericClient) -> Result<Vec<String>> {
    let managed: Vec<String> = app::stamp::SUPABASE_SCHEMAS.iter().map(|s| s.to_string()).collect();
    let rows = client
        .query(
            "select n.nspname::text from pg_namespace n
             where n.nspname <> 'information_schema' and n.nspname not like 'pg\\_%' and n.nspname <> all($1)
               and not exists (select from pg_depend d where d.classid = 'pg_namespace'::regclass
                                 and d.objid = n.oid and d.deptype = 'e')
               and exists (select from pg_class c where c.relnamespace = n.oid and c.relkind in ('r', 'p'))
             order by n.nspname <> 'public', 1",
            &[&managed],
        )
        .context("cannot list the database's schemas")?;
    let schemas: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(if schemas.is_empty() { vec!["public".to_string()] } else { schemas })
}

const HEADER: &str = "# stage-sync rules: what happens to every column of every synced table.
# Written by `cargo xtask stage-sync init-rules` from the schema and a sample of values: a
# starting point. Review every line before committing; the sample sees only some rows.
# Rules: keep, null, redact, a pseudonym kind (email, first_name, last_name, full_name, phone,
# street_address, city, zip, company, text, uuid; on a text array: each element),
# { rule = \"date_shift\", days = N }, { rule = \"numeric_jitter\", percent = P },
# { rule = \"jsonb\", keys = { key = \"kind\" } }, { rule = \"jsonb\", allow = [\"key\"], others = \"kind\" };
# on bytea: redact (no bytes) or bytes (keyed bytes of the same length).
# Per table: mode = \"copy\" (default), \"skip\" (emptied in the target) or \"schema_only\".
# schemas: the schemas synced (Supabase's never; auth.users only through its own section).
";

/// Tables whose `name` names a thing, not a person: the table's last word.
const THING_TABLES: &[&str] = &[
    "job",
    "task",
    "tag",
    "category",
    "folder",
    "group",
    "claim",
    "plan",
    "product",
    "role",
    "permission",
    "feature",
    "flag",
    "event",
    "webhook",
    "integration",
    "token",
    "key",
    "passkey",
    "transport",
    "template",
    "workflow",
    "setting",
    "settings",
    "type",
    "status",
    "channel",
    "bucket",
    "queue",
    "version",
    "item",
    "field",
    "project",
    "document",
    "link",
    "step",
    "preset",
    "page",
    "form",
    "report",
    "dashboard",
];

/// The rule for one column and, when the sample decided it, why.
fn suggest_column(
    client: &mut impl GenericClient,
    table: &Table,
    column: &Column,
) -> Result<(String, Option<&'static str>)> {
    // Other tools' ledgers (Prisma's) stay as they are: its migrate status must agree.
    if table.name == "_prisma_migrations" {
        return Ok(("{ rule = \"keep\", reviewed = true }".into(), Some("Prisma's ledger: kept as it is")));
    }
    let thing = suggest::words(&table.name)
        .last()
        .is_some_and(|w| THING_TABLES.iter().any(|t| w == t || w.strip_suffix('s') == Some(t)));
    if thing && column.name.eq_ignore_ascii_case("name") {
        return Ok(("{ rule = \"keep\", reviewed = true }".into(), Some("the name of a thing, not a person")));
    }
    let mut by_name = suggest::suggest(column);
    // GoTrue reads its text columns into strings: NULL there breaks every login; emptied
    // (`''` stays `''`) or replaced, they keep working.
    if table.key() == AUTH_USERS && by_name == "\"null\"" && column.category == Category::String {
        by_name = "\"redact\"".into();
    }
    // A secret in a unique index (a session token): `redact` would give every row one value
    // and the rules check refuses it; a pseudonym keeps distinct values distinct.
    if by_name == "\"redact\"" && table.is_unique(&column.name) {
        return Ok((suggest::for_unique(column, by_name), Some("unique: redact would make every value one")));
    }
    // Keys are structure (a text id of Prisma looks like a token): judged by name only.
    let key = table.primary_key.contains(&column.name)
        || table.foreign_keys.iter().any(|fk| fk.columns.contains(&column.name));
    // A json config or secret (`smtpConfig`): its secret keys masked, its settings kept.
    let secret_json = is_json(column) && by_name != "\"keep\"";
    if (by_name != "\"keep\"" && !secret_json) || key || !sampled(column) {
        return Ok((by_name, None));
    }
    let values = sample(client, table, column)?;
    if is_json(column) {
        let (rule, why) = json_rule(&values);
        return Ok(if secret_json && rule == "\"keep\"" { (by_name, None) } else { (rule, why) });
    }
    let strings: Vec<String> = values.into_iter().map(|(_, v)| v).collect();
    Ok(match suggest::suggest_from_values(column, &strings) {
        Some(rule) => (rule, Some("sampled values look identifying")),
        None => (by_name, None),
    })
}

/// For json: keep the keys whose names and sampled values look harmless, mask every other
/// string. Harmless values repeat (settings, states: `"theme": "dark"`); values that are
/// mostly seen once are about someone until shown otherwise. With no rows to sample, every string is masked
/// until someone lists keys.
fn json_rule(values: &[(String, String)]) -> (String, Option<&'static str>) {
    // Per key: any risky value, and its values with how often each was seen.
    let mut keys: BTreeMap<&str, (bool, BTreeMap<&str, usize>)> = BTreeMap::new();
    for (key, value) in values {
        let risky = key.is_empty()
            || looks_personal(key)
            || value_looks_identifying(value)
            || value.len() > 40
            || suggest::suggest(&Column {
                name: key.clone(),
                type_name: "text".into(),
                not_null: true,
                generated: false,
                category: Category::String,
                base_type: "text".into(),
                wire: None,
            }) != "\"keep\"";
        let entry = keys.entry(key.as_str()).or_default();
        entry.0 |= risky;
        *entry.1.entry(value.as_str()).or_default() += 1;
    }
    let harmless = |(risky, seen): &(bool, BTreeMap<&str, usize>)| {
        let total: usize = seen.values().sum();
        !risky && total >= 2 && seen.len() * 2 <= total
    };
    if !values.is_empty() && keys.values().all(harmless) {
        return ("\"keep\"".into(), None);
    }
    let allow = keys
        .iter()
        .filter(|(_, key)| harmless(key))
        .map(|(k, _)| format!("\"{}\"", k.replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(", ");
    let why = if values.is_empty() {
        "no rows sampled: every string is masked; allow the keys to keep"
    } else {
        "sampled values look identifying: every string but the allowed keys' is masked"
    };
    (format!("{{ rule = \"jsonb\", allow = [{allow}], others = \"text\" }}"), Some(why))
}

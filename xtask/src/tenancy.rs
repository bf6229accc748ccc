//! One description of tenancy, shared by `stage-sync --clinics` and the RLS suite so the two
//! agree: which table holds the tenants and its key (`env/tenancy.toml`; this repository's
//! is `public.clinics(id)`), and which tables belong to a tenant, found over the foreign-key
//! graph: a table belongs to one when a chain of foreign keys leads from it to the root.

use std::{
    collections::{BTreeMap, VecDeque},
    path::Path,
};

use anyhow::{Context, Result, bail};
use postgres::GenericClient;
use serde::Deserialize;

use crate::sql;

/// The configuration file, relative to the project root.
pub(crate) const FILE: &str = "env/tenancy.toml";

/// The tenant table (`schema.name`) and the key column that names a tenant.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tenancy {
    pub root: String,
    pub key: String,
}

impl Tenancy {
    pub(crate) fn load(project_root: &Path) -> Result<Tenancy> {
        let text = std::fs::read_to_string(project_root.join(FILE)).with_context(|| {
            format!("cannot read {FILE}\nhint: it names the tenant table and key, e.g. root = \"public.clinics\", key = \"id\"")
        })?;
        let tenancy: Tenancy = toml::from_str(&text)
            .map_err(|err| anyhow::anyhow!("{FILE} is invalid: {}", err.message().replace('\n', " ")))?;
        if tenancy.root.split('.').count() != 2 || tenancy.key.is_empty() {
            bail!("{FILE} is invalid: root must be `schema.table` and key a column");
        }
        Ok(tenancy)
    }

    /// The root table, quoted (`load` made sure it is `schema.table`).
    pub(crate) fn root_qualified(&self) -> String {
        match self.root.split_once('.') {
            Some((schema, name)) => sql::qualified(schema, name),
            None => sql::ident(&self.root),
        }
    }
}

/// A foreign key, as ownership sees it: from a table's columns to another's.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Edge {
    /// `schema.name` of the referencing table.
    pub from: String,
    pub columns: Vec<String>,
    /// `schema.name` of the referenced table, and its quoted form.
    pub to: String,
    pub to_qualified: String,
    pub to_columns: Vec<String>,
}

/// Every table that belongs to a tenant, with its shortest chain of foreign keys up to the
/// root (the root itself: an empty chain). Self-references never make a table belong.
pub(crate) fn ownership(root: &str, edges: &[Edge]) -> BTreeMap<String, Vec<Edge>> {
    let mut owned: BTreeMap<String, Vec<Edge>> = BTreeMap::from([(root.to_string(), Vec::new())]);
    let mut queue = VecDeque::from([root.to_string()]);
    while let Some(parent) = queue.pop_front() {
        for edge in edges.iter().filter(|e| e.to == parent && e.from != e.to) {
            if owned.contains_key(&edge.from) {
                continue;
            }
            let mut chain = vec![edge.clone()];
            chain.extend(owned[&parent].iter().cloned());
            owned.insert(edge.from.clone(), chain);
            queue.push_back(edge.from.clone());
        }
    }
    owned
}

/// SQL over `alias`: the row belongs to the tenant whose key is the SQL `literal`. A key
/// column pointing straight at the root is compared directly; longer chains join up.
pub(crate) fn belongs(chain: &[Edge], key: &str, alias: &str, literal: &str) -> String {
    match chain.split_first() {
        None => format!("{alias}.{} = {literal}", sql::ident(key)),
        Some((edge, [])) if edge.to_columns == [key] => format!("{alias}.{} = {literal}", sql::ident(&edge.columns[0])),
        Some((edge, rest)) => {
            let next = format!("{alias}_");
            let joins: Vec<String> = edge
                .columns
                .iter()
                .zip(&edge.to_columns)
                .map(|(mine, theirs)| format!("{next}.{} = {alias}.{}", sql::ident(theirs), sql::ident(mine)))
                .collect();
            format!(
                "exists (select 1 from {} {next} where {} and {})",
                edge.to_qualified,
                joins.join(" and "),
                belongs(rest, key, &next, literal)
            )
        }
    }
}

/// The foreign keys of the tables in `schemas`, read from the catalog.
pub(crate) fn edges(client: &mut impl GenericClient, schemas: &[String]) -> Result<Vec<Edge>> {
    let rows = client.query(
        "select format('%s.%s', n.nspname, c.relname),
                array(select a.attname::text from unnest(con.conkey) with ordinality k(n, i)
                      join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.i),
                format('%s.%s', fn.nspname, fc.relname), format('%I.%I', fn.nspname, fc.relname),
                array(select a.attname::text from unnest(con.confkey) with ordinality k(n, i)
                      join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n order by k.i)
         from pg_constraint con
         join pg_class c on c.oid = con.conrelid join pg_namespace n on n.oid = c.relnamespace
         join pg_class fc on fc.oid = con.confrelid join pg_namespace fn on fn.oid = fc.relnamespace
         where con.contype = 'f' and n.nspname = any($1) and not c.relispartition
         order by 1, con.conname",
        &[&schemas],
    )?;
    Ok(rows
        .iter()
        .map(|r| Edge { from: r.get(0), columns: r.get(1), to: r.get(2), to_qualified: r.get(3), to_columns: r.get(4) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: &str, column: &str, to: &str, to_column: &str) -> Edge {
        Edge {
            from: from.into(),
            columns: vec![column.into()],
            to: to.into(),
            to_qualified: format!("q.{to}"),
            to_columns: vec![to_column.into()],
        }
    }

    #[test]
    fn tables_belong_through_the_shortest_chain() {
        let edges = [
            edge("public.locations", "clinic_id", "public.clinics", "id"),
            edge("public.rooms", "location_id", "public.locations", "id"),
            edge("public.rooms", "parent_id", "public.rooms", "id"),
            edge("public.staff", "clinic_id", "public.clinics", "id"),
            edge("public.staff", "room_id", "public.rooms", "id"),
            edge("public.users", "id", "public.users", "id"),
        ];
        let owned = ownership("public.clinics", &edges);
        assert_eq!(
            owned.keys().collect::<Vec<_>>(),
            ["public.clinics", "public.locations", "public.rooms", "public.staff"]
        );
        assert_eq!(owned["public.staff"].len(), 1, "the direct key wins");
        assert_eq!(belongs(&owned["public.clinics"], "id", "t", "'c1'"), "t.\"id\" = 'c1'");
        assert_eq!(belongs(&owned["public.staff"], "id", "t", "'c1'"), "t.\"clinic_id\" = 'c1'");
        assert_eq!(
            belongs(&owned["public.rooms"], "id", "t", "'c1'"),
            "exists (select 1 from q.public.locations t_ where t_.\"id\" = t.\"location_id\" and t_.\"clinic_id\" = 'c1')"
        );
    }
}

//! The views and materialized views that name a replaced table, directly or through each
//! other: a view binds to the table it was made on, not to its name, so the swap drops
//! them (deepest first) and makes them again over the new tables (shallowest first) from
//! `pg_get_viewdef`, read with `search_path` empty (every name qualified), with their
//! column names, options (`security_invoker`, `check_option`, ...), owner, grants and
//! column grants, comments, and for a materialized view its indexes and the new data. A view with
//! triggers, rules or column defaults of its own is not carried: the sync runs in place.

use anyhow::{Context, Result};
use postgres::Transaction;

use super::carry::{self, Grant};
use crate::sql;

/// One view or materialized view, as the swap makes it again.
pub(super) struct View {
    pub oid: u32,
    /// `schema.name`, quoted as needed.
    pub name: String,
    materialized: bool,
    columns: Vec<String>,
    options: Vec<String>,
    definition: String,
    owner: String,
    grants: Option<Vec<Grant>>,
    /// `comment on ...` statements, and the materialized view's indexes.
    extra: Vec<String>,
}

/// The views over `tables` (oids), shallowest first; `Ok(Err(why))` for one the swap
/// cannot make again.
pub(super) fn read(tx: &mut Transaction, tables: &[u32]) -> Result<Result<Vec<View>, String>> {
    let rows = tx.query(
        "with recursive deps(oid, depth) as (
           select distinct r.ev_class, 1 from pg_depend d join pg_rewrite r on r.oid = d.objid
           where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
             and d.refobjid = any($1) and r.ev_class <> d.refobjid
           union
           select r.ev_class, deps.depth + 1 from deps
           join pg_depend d on d.refobjid = deps.oid and d.refclassid = 'pg_class'::regclass
             and d.classid = 'pg_rewrite'::regclass
           join pg_rewrite r on r.oid = d.objid where r.ev_class <> deps.oid and deps.depth < 100)
         select c.oid, format('%I.%I', n.nspname, c.relname), c.relkind = 'm', max(deps.depth),
                exists (select from pg_trigger t where t.tgrelid = c.oid)
                  or exists (select from pg_rewrite r where r.ev_class = c.oid and r.rulename <> '_RETURN')
                  or exists (select from pg_attrdef a where a.adrelid = c.oid)
         from deps join pg_class c on c.oid = deps.oid join pg_namespace n on n.oid = c.relnamespace
         group by c.oid, n.nspname, c.relname, c.relkind order by 4, 2",
        &[&tables],
    )?;
    let mut views = Vec::new();
    for row in &rows {
        let (oid, name, materialized): (u32, String, bool) = (row.get(0), row.get(1), row.get(2));
        if row.get::<_, bool>(4) {
            return Ok(Err(format!("the view {name} has triggers, rules or column defaults of its own")));
        }
        views.push(view(tx, oid, name, materialized)?);
    }
    Ok(Ok(views))
}

fn view(tx: &mut Transaction, oid: u32, name: String, materialized: bool) -> Result<View> {
    let row = tx.query_one(
        "select array(select quote_ident(a.attname) from pg_attribute a where a.attrelid = c.oid and a.attnum > 0
                      and not a.attisdropped order by a.attnum),
                coalesce(c.reloptions::text[], '{}'), pg_get_viewdef(c.oid), r.rolname::text
         from pg_class c join pg_roles r on r.oid = c.relowner where c.oid = $1",
        &[&oid],
    )?;
    let kind = if materialized { "materialized view" } else { "view" };
    let mut extra: Vec<String> = tx
        .query(
            "select concat('comment on ', $2::text, ' ', $3::text, ' is ', quote_literal(d.description))
             from pg_description d where d.classoid = 'pg_class'::regclass and d.objoid = $1 and d.objsubid = 0
             union all
             select concat('comment on column ', $3::text, '.', quote_ident(a.attname), ' is ', quote_literal(d.description))
             from pg_description d join pg_attribute a on a.attrelid = d.objoid and a.attnum = d.objsubid
             where d.classoid = 'pg_class'::regclass and d.objoid = $1 and d.objsubid > 0",
            &[&oid, &kind, &name],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    extra.extend(
        tx.query(
            "select pg_get_indexdef(i.indexrelid) || coalesce('; comment on index ' || i.indexrelid::regclass::text
                    || ' is ' || quote_literal(obj_description(i.indexrelid, 'pg_class')), '')
             from pg_index i where i.indrelid = $1 order by i.indexrelid",
            &[&oid],
        )?
        .iter()
        .map(|r| r.get::<_, String>(0)),
    );
    let definition: String = row.get(2);
    Ok(View {
        oid,
        name,
        materialized,
        columns: row.get(0),
        options: row.get(1),
        definition: definition.trim().trim_end_matches(';').to_string(),
        owner: row.get(3),
        grants: carry::grants_of(tx, oid)?,
        extra,
    })
}

impl View {
    fn kind(&self) -> &'static str {
        if self.materialized { "materialized view" } else { "view" }
    }

    pub(super) fn drop(&self, tx: &mut Transaction) -> Result<()> {
        tx.batch_execute(&format!("drop {} {}", self.kind(), self.name))
            .with_context(|| format!("cannot drop the {} {} to make it again", self.kind(), self.name))
    }

    /// Makes it again over the new tables, as it was.
    pub(super) fn create(&self, tx: &mut Transaction) -> Result<()> {
        let options = if self.options.is_empty() {
            String::new()
        } else {
            let options: Vec<String> = self
                .options
                .iter()
                .map(|o| {
                    let (key, value) = o.split_once('=').unwrap_or((o, ""));
                    format!("{} = {}", sql::ident(key), sql::literal(value))
                })
                .collect();
            format!(" with ({})", options.join(", "))
        };
        // A materialized view is made empty and filled by `refresh` once it has its owner:
        // its query then runs as that owner (as the in-place sync's refresh runs it), never
        // with the sync login's rights.
        let data = if self.materialized { " with no data" } else { "" };
        let mut statements = vec![
            format!(
                "create {} {} ({}){options} as {}{data}",
                self.kind(),
                self.name,
                self.columns.join(", "),
                self.definition
            ),
            format!("alter {} {} owner to {}", self.kind(), self.name, sql::ident(&self.owner)),
        ];
        statements.extend(self.extra.iter().cloned());
        if self.materialized {
            statements.push(format!("refresh materialized view {}", self.name));
        }
        for statement in statements {
            tx.batch_execute(&statement).with_context(|| format!("cannot make {} again: {statement}", self.name))?;
        }
        let oid: u32 = tx.query_one("select $1::text::regclass::oid", &[&self.name])?.get(0);
        carry::set_grants(tx, oid, &self.name, &self.grants)
    }
}

//! What the source's catalog says about the synced tables: columns, keys, constraints,
//! unique indexes, the sequences that feed columns, materialized views, and an order to
//! load them in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use postgres::GenericClient;

use super::binary::Wire;
use crate::sql;

/// `crate::sql::ident` under its old name, for `pipe.rs` (its owner moves it over).
pub(super) use crate::sql::ident as quote;

#[derive(Clone, Debug)]
pub(super) struct Table {
    pub schema: String,
    pub name: String,
    pub partitioned: bool,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    /// Primary key, unique constraints and plain unique indexes that are not constraints
    /// (what Prisma's `@unique` makes), each a list of columns.
    pub uniques: Vec<Vec<String>>,
    /// Columns of unique indexes that are partial or have expressions (`lower(email)`):
    /// treated as unique on their own, conservatively.
    pub loosely_unique: Vec<String>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Sequences that feed a column, found through every dependency: a default that calls
    /// `nextval`, an identity, `OWNED BY`. (column, quoted sequence name).
    pub sequences: Vec<(String, String)>,
    /// The planner's row estimate, for progress and the plan.
    pub estimate: i64,
}

#[derive(Clone, Debug)]
pub(super) struct Column {
    pub name: String,
    pub type_name: String,
    pub not_null: bool,
    pub generated: bool,
    pub category: Category,
    /// The type's name under every domain (`jsonb` for a domain over a domain over jsonb).
    pub base_type: String,
    /// Its binary COPY form, if it is the same in every database (see [`Wire`]).
    pub wire: Option<Wire>,
}

/// A column's type category (`pg_type.typcategory`), as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Category {
    /// `S`: text, varchar, char.
    String,
    /// `N`: integers, numeric, floats.
    Numeric,
    /// `D`: date, timestamp, timestamptz.
    DateTime,
    /// `B`: boolean.
    Boolean,
    /// `A`: arrays.
    Array,
    /// `U`: user-defined and the rest PostgreSQL files there (json, jsonb, uuid, bytea).
    User,
    /// Anything else (enums, ranges, geometry, network, ...).
    Other,
}

impl Category {
    fn from_typcategory(code: &str) -> Category {
        match code {
            "S" => Category::String,
            "N" => Category::Numeric,
            "D" => Category::DateTime,
            "B" => Category::Boolean,
            "A" => Category::Array,
            "U" => Category::User,
            _ => Category::Other,
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    /// `schema.name` of the referenced table, and its quoted form.
    pub target: String,
    pub target_qualified: String,
    pub target_columns: Vec<String>,
}

impl Table {
    pub(super) fn qualified(&self) -> String {
        sql::qualified(&self.schema, &self.name)
    }

    /// `schema.name`, as the rules file names it.
    pub(super) fn key(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The columns COPY moves: generated columns are recomputed by the target.
    pub(super) fn copied_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.generated)
    }

    /// Whether the column is in a unique key or index, alone or with others (two persons'
    /// pseudonyms colliding in one clinic break `unique (clinic_id, name)` as surely as
    /// `unique (name)`), or in a partial or expression one.
    pub(super) fn is_unique(&self, column: &str) -> bool {
        self.uniques.iter().any(|u| u.iter().any(|c| c == column)) || self.loosely_unique.iter().any(|c| c == column)
    }

    /// Whether pseudonyms of this column take the long, collision-safe form: unique
    /// columns, and foreign keys, which must get the form of the unique key they point at.
    pub(super) fn distinct_pseudonyms(&self, column: &str) -> bool {
        self.is_unique(column) || self.foreign_keys.iter().any(|fk| fk.columns.iter().any(|c| c == column))
    }
}

/// Materialized views of the given schemas, quoted, each after the views it reads from:
/// refreshed after the load, before verification, so the target's match its new data.
pub(super) fn materialized_views(client: &mut impl GenericClient, schemas: &[String]) -> Result<Vec<String>> {
    let rows = client.query(
        "select format('%I.%I', n.nspname, c.relname),
                array(select distinct format('%I.%I', dn.nspname, dc.relname) from pg_rewrite r
                      join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid
                      join pg_class dc on dc.oid = d.refobjid and dc.relkind = 'm' and dc.oid <> c.oid
                      join pg_namespace dn on dn.oid = dc.relnamespace
                      where r.ev_class = c.oid)
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where c.relkind = 'm' and n.nspname = any($1) order by 1",
        &[&schemas],
    )?;
    let mut pending: Vec<(String, Vec<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut order: Vec<String> = Vec::new();
    while !pending.is_empty() {
        let before = pending.len();
        let (ready, rest): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(_, reads)| reads.iter().all(|r| order.contains(r) || !schemas_hold(r, schemas)));
        order.extend(ready.into_iter().map(|(name, _)| name));
        pending = rest;
        if pending.len() == before {
            // A cycle cannot exist between views; anything left is refreshed as found.
            order.extend(pending.drain(..).map(|(name, _)| name));
        }
    }
    Ok(order)
}

/// Whether a quoted `schema.name` lies in one of the schemas (views elsewhere are not ours
/// to refresh, so they don't hold back the order).
fn schemas_hold(qualified: &str, schemas: &[String]) -> bool {
    schemas
        .iter()
        .any(|s| qualified.starts_with(&format!("{}.", sql::ident(s))) || qualified.starts_with(&format!("{s}.")))
}

/// Every table (plain or partitioned parent, not the partitions) in the given schemas,
/// plus the named extra tables (`auth.users`); on Supabase without the platform's own
/// tables in `public` (its ledger), which are neither the rules' business nor synced.
pub(super) fn load(client: &mut impl GenericClient, schemas: &[String], extra: &[String]) -> Result<Vec<Table>> {
    use crate::migrate::snapshot::Platform;
    let platform: Vec<String> = match Platform::detect(client)? {
        Platform::Supabase => app::stamp::SUPABASE_PUBLIC_TABLES.iter().map(|t| format!("public.{t}")).collect(),
        Platform::Plain => Vec::new(),
    };
    let rows = client.query(
        "select c.oid, n.nspname::text, c.relname::text, c.relkind = 'p', greatest(c.reltuples, 0)::bigint
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where (n.nspname = any($1) or format('%s.%s', n.nspname, c.relname) = any($2))
           and format('%s.%s', n.nspname, c.relname) <> all($3)
           and c.relkind in ('r', 'p') and not c.relispartition
         order by 2, 3",
        &[&schemas, &extra, &platform],
    )?;
    // Each part of the catalog in one query for all tables (a round trip each, not four
    // per table), grouped by table.
    let oids: Vec<u32> = rows.iter().map(|r| r.get(0)).collect();
    let mut columns = by_table(client.query(COLUMNS, &[&oids])?);
    let mut constraints = by_table(client.query(CONSTRAINTS, &[&oids])?);
    let mut indexes = by_table(client.query(UNIQUE_INDEXES, &[&oids])?);
    let mut sequences = by_table(client.query(SEQUENCES, &[&oids])?);
    let mut tables = Vec::new();
    for row in rows {
        let oid: u32 = row.get(0);
        let mut table = Table {
            schema: row.get(1),
            name: row.get(2),
            partitioned: row.get(3),
            columns: columns.remove(&oid).unwrap_or_default().iter().map(column).collect(),
            primary_key: Vec::new(),
            uniques: Vec::new(),
            loosely_unique: Vec::new(),
            foreign_keys: Vec::new(),
            sequences: Vec::new(),
            estimate: row.get(4),
        };
        add_unique_indexes(&mut table, indexes.remove(&oid).unwrap_or_default());
        table.sequences = sequences.remove(&oid).unwrap_or_default().iter().map(|r| (r.get(1), r.get(2))).collect();
        add_constraints(&mut table, constraints.remove(&oid).unwrap_or_default());
        tables.push(table);
    }
    Ok(tables)
}

/// A column from its row of [`COLUMNS`].
fn column(r: &postgres::Row) -> Column {
    Column {
        name: r.get(1),
        type_name: r.get(2),
        not_null: r.get(3),
        generated: r.get(4),
        category: Category::from_typcategory(r.get(5)),
        base_type: r.get(6),
        wire: r.get::<_, bool>(9).then(|| Wire::from_type(r.get(7), r.get(8))),
    }
}

/// The table's unique indexes that no constraint owns ([`UNIQUE_INDEXES`]): plain ones, and
/// loose ones (partial or on expressions), whose columns count as unique on their own.
fn add_unique_indexes(table: &mut Table, indexes: Vec<postgres::Row>) {
    for index in indexes {
        let (loose, columns, definition): (bool, Vec<String>, String) = (index.get(1), index.get(2), index.get(3));
        if loose {
            let mentioned = table.columns.iter().filter(|c| mentions(&definition, &c.name)).map(|c| c.name.clone());
            table.loosely_unique.extend(columns.into_iter().chain(mentioned));
        } else {
            table.uniques.push(columns);
        }
    }
}

/// The table's primary key, unique constraints and foreign keys ([`CONSTRAINTS`]).
fn add_constraints(table: &mut Table, constraints: Vec<postgres::Row>) {
    for con in constraints {
        let columns: Vec<String> = con.get(3);
        match con.get::<_, String>(2).as_str() {
            "p" => {
                table.primary_key = columns.clone();
                table.uniques.push(columns);
            }
            "u" => table.uniques.push(columns),
            _ => table.foreign_keys.push(ForeignKey {
                name: con.get(1),
                columns,
                target: con.get::<_, Option<String>>(4).unwrap_or_default(),
                target_qualified: con.get::<_, Option<String>>(6).unwrap_or_default(),
                target_columns: con.get(5),
            }),
        }
    }
}

/// Rows of a catalog query whose first column is a table's oid, by table, in order.
fn by_table(rows: Vec<postgres::Row>) -> HashMap<u32, Vec<postgres::Row>> {
    let mut out: HashMap<u32, Vec<postgres::Row>> = HashMap::new();
    for row in rows {
        out.entry(row.get(0)).or_default().push(row);
    }
    out
}

/// Each column: name, type, NOT NULL, generated, type category, the type under every
/// domain (a domain may be over another), and whether its binary form is portable.
const COLUMNS: &str = "
select a.attrelid, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated <> '',
       t.typcategory::text, r.typname::text, r.oid, r.typtype = 'e',
       r.typsend::oid <> 0 and r.typreceive::oid <> 0
         and (r.typtype = 'e' or (r.oid < 16384 and coalesce(e.typname, r.typname) !~ '^reg'))
from pg_attribute a join pg_type t on t.oid = a.atttypid
cross join lateral (
  with recursive under(oid, depth) as (
    select t.oid, 0
    union all
    select d.typbasetype, u.depth + 1 from under u join pg_type d on d.oid = u.oid and d.typtype = 'd')
  select oid from under order by depth desc limit 1) base
join pg_type r on r.oid = base.oid
left join pg_type e on e.oid = r.typelem and r.typelem <> 0
where a.attrelid = any($1) and a.attnum > 0 and not a.attisdropped order by a.attrelid, a.attnum";

/// Primary keys, unique constraints and foreign keys, with their columns in key order.
const CONSTRAINTS: &str = "
select con.conrelid, con.conname::text, con.contype::text,
       array(select a.attname::text from unnest(con.conkey) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.i),
       case when con.contype = 'f' then format('%s.%s', fn.nspname, fc.relname) end,
       array(select a.attname::text from unnest(con.confkey) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n order by k.i),
       case when con.contype = 'f' then format('%I.%I', fn.nspname, fc.relname) end
from pg_constraint con
left join pg_class fc on fc.oid = con.confrelid left join pg_namespace fn on fn.oid = fc.relnamespace
where con.conrelid = any($1) and con.contype in ('p', 'u', 'f') order by con.conrelid, 2";

/// Unique indexes that no constraint owns (what Prisma's `@unique` makes): partial or with
/// expressions (a key of 0 in `indkey`), their columns, their definition.
const UNIQUE_INDEXES: &str = "
select i.indrelid, i.indpred is not null or 0 = any(i.indkey::int2[]),
       array(select a.attname::text from unnest(i.indkey::int2[]) k(n)
             join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n),
       pg_get_indexdef(i.indexrelid)
from pg_index i
where i.indrelid = any($1) and i.indisunique
  and not exists (select from pg_constraint c where c.conindid = i.indexrelid and c.conrelid = i.indrelid)
order by i.indrelid, i.indexrelid";

/// The sequences of a table's columns: a default that calls `nextval` depends on the
/// sequence; an identity or `OWNED BY` sequence depends on the column.
const SEQUENCES: &str = "
select distinct a.attrelid, a.attname::text, format('%I.%I', sn.nspname, s.relname)
from pg_attribute a
join pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
join pg_depend d on d.classid = 'pg_attrdef'::regclass and d.objid = ad.oid and d.refclassid = 'pg_class'::regclass
join pg_class s on s.oid = d.refobjid and s.relkind = 'S'
join pg_namespace sn on sn.oid = s.relnamespace
where a.attrelid = any($1) and not a.attisdropped
union
select a.attrelid, a.attname::text, format('%I.%I', sn.nspname, s.relname)
from pg_attribute a
join pg_depend d on d.refclassid = 'pg_class'::regclass and d.refobjid = a.attrelid and d.refobjsubid = a.attnum
  and d.classid = 'pg_class'::regclass and d.deptype in ('a', 'i')
join pg_class s on s.oid = d.objid and s.relkind = 'S'
join pg_namespace sn on sn.oid = s.relnamespace
where a.attrelid = any($1) and not a.attisdropped
order by 1, 2, 3";

/// Parents before children, so a load with foreign-key checks on would succeed; edges of
/// cycles and self-references are ignored (the load runs with triggers off and verifies
/// every foreign key afterwards).
pub(super) fn load_order(tables: &[Table]) -> Vec<usize> {
    let index: BTreeMap<String, usize> = tables.iter().enumerate().map(|(i, t)| (t.key(), i)).collect();
    let mut order = Vec::new();
    let mut state = vec![0u8; tables.len()]; // 0 new, 1 visiting, 2 done
    fn visit(i: usize, tables: &[Table], index: &BTreeMap<String, usize>, state: &mut [u8], order: &mut Vec<usize>) {
        if state[i] != 0 {
            return;
        }
        state[i] = 1;
        let parents: BTreeSet<usize> =
            tables[i].foreign_keys.iter().filter_map(|fk| index.get(&fk.target).copied()).collect();
        for parent in parents {
            if state[parent] == 0 {
                visit(parent, tables, index, state, order);
            }
        }
        state[i] = 2;
        order.push(i);
    }
    for i in 0..tables.len() {
        visit(i, tables, &index, &mut state, &mut order);
    }
    order
}

/// Whether an index definition names a column (bare or quoted), as a whole word.
fn mentions(definition: &str, column: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let bare = column.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let needle = if bare { column.to_string() } else { sql::ident(column) };
    definition.match_indices(&needle).any(|(at, _)| {
        let before = definition[..at].chars().next_back();
        let after = definition[at + needle.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word) || !bare
    })
}

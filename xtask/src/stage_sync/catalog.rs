//! What the source's catalog says about the synced tables: columns, keys, constraints,
//! and an order to load them in.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use postgres::GenericClient;

#[derive(Clone, Debug)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub partitioned: bool,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    /// Primary key and unique constraints, each a list of columns.
    pub uniques: Vec<Vec<String>>,
    pub foreign_keys: Vec<ForeignKey>,
    /// The planner's row estimate, for progress and the plan.
    pub estimate: i64,
}

#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub type_name: String,
    pub not_null: bool,
    pub generated: bool,
    /// `S`: string types; `N`: numeric; `D`: date/time; `U`: user (json, uuid); `A`: array.
    pub category: char,
    pub base_type: String,
}

#[derive(Clone, Debug)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    /// `schema.name` of the referenced table, and its quoted form.
    pub target: String,
    pub target_qualified: String,
    pub target_columns: Vec<String>,
}

impl Table {
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.name))
    }

    /// `schema.name`, as the rules file names it.
    pub fn key(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The columns COPY moves: generated columns are recomputed by the target.
    pub fn copied_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.generated)
    }

    pub fn is_unique_alone(&self, column: &str) -> bool {
        self.uniques.iter().any(|u| u.len() == 1 && u[0] == column)
    }
}

/// Every table (plain or partitioned parent, not the partitions) in the given schemas,
/// plus the named extra tables (`auth.users`).
pub fn load(client: &mut impl GenericClient, schemas: &[String], extra: &[String]) -> Result<Vec<Table>> {
    let rows = client.query(
        "select c.oid, n.nspname::text, c.relname::text, c.relkind = 'p', greatest(c.reltuples, 0)::bigint
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where (n.nspname = any($1) or format('%s.%s', n.nspname, c.relname) = any($2))
           and c.relkind in ('r', 'p') and not c.relispartition
         order by 2, 3",
        &[&schemas, &extra],
    )?;
    let mut tables = Vec::new();
    for row in rows {
        let oid: u32 = row.get(0);
        let columns = client
            .query(
                "select a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated <> '',
                        t.typcategory::text, coalesce(bt.typname, t.typname)::text
                 from pg_attribute a join pg_type t on t.oid = a.atttypid
                 left join pg_type bt on bt.oid = t.typbasetype and t.typtype = 'd'
                 where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped order by a.attnum",
                &[&oid],
            )?
            .iter()
            .map(|r| Column {
                name: r.get(0),
                type_name: r.get(1),
                not_null: r.get(2),
                generated: r.get(3),
                category: r.get::<_, String>(4).chars().next().unwrap_or('X'),
                base_type: r.get(5),
            })
            .collect();
        let constraints = client.query(
            "select con.conname::text, con.contype::text,
                    array(select a.attname::text from unnest(con.conkey) with ordinality k(n, i)
                          join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.i),
                    case when con.contype = 'f' then format('%s.%s', fn.nspname, fc.relname) end,
                    array(select a.attname::text from unnest(con.confkey) with ordinality k(n, i)
                          join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n order by k.i),
                    case when con.contype = 'f' then format('%I.%I', fn.nspname, fc.relname) end
             from pg_constraint con
             left join pg_class fc on fc.oid = con.confrelid left join pg_namespace fn on fn.oid = fc.relnamespace
             where con.conrelid = $1 and con.contype in ('p', 'u', 'f') order by 1",
            &[&oid],
        )?;
        let mut table = Table {
            schema: row.get(1),
            name: row.get(2),
            partitioned: row.get(3),
            columns,
            primary_key: Vec::new(),
            uniques: Vec::new(),
            foreign_keys: Vec::new(),
            estimate: row.get(4),
        };
        for con in constraints {
            let columns: Vec<String> = con.get(2);
            match con.get::<_, String>(1).as_str() {
                "p" => {
                    table.primary_key = columns.clone();
                    table.uniques.push(columns);
                }
                "u" => table.uniques.push(columns),
                _ => table.foreign_keys.push(ForeignKey {
                    name: con.get(0),
                    columns,
                    target: con.get::<_, Option<String>>(3).unwrap_or_default(),
                    target_qualified: con.get::<_, Option<String>>(5).unwrap_or_default(),
                    target_columns: con.get(4),
                }),
            }
        }
        tables.push(table);
    }
    Ok(tables)
}

/// Parents before children, so a load with foreign-key checks on would succeed; edges of
/// cycles and self-references are ignored (the load runs with triggers off and verifies
/// every foreign key afterwards).
pub fn load_order(tables: &[Table]) -> Vec<usize> {
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

pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Tables of `schema` that reference `table`, directly or through each other: emptied with
/// it (auth.users takes its sessions and refresh tokens along; they are never copied).
pub fn dependents(client: &mut impl GenericClient, table: &str, schema: &str) -> Result<Vec<String>> {
    let rows = client.query(
        "with recursive deps(oid) as (
            select con.conrelid from pg_constraint con where con.contype = 'f' and con.confrelid = $1::text::regclass
            union
            select con.conrelid from pg_constraint con join deps d on con.confrelid = d.oid where con.contype = 'f')
         select distinct format('%I.%I', n.nspname, c.relname) from deps d join pg_class c on c.oid = d.oid
         join pg_namespace n on n.oid = c.relnamespace where n.nspname = $2 and c.oid <> $1::text::regclass",
        &[&table, &schema],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

//! `--clinics`: copy only some clinics and everything they reach through foreign keys. Each
//! table gets a filter built from the key graph: rows that belong to a chosen clinic (a path
//! of keys down to the tenant table of `env/tenancy.toml`, as `crate::tenancy` decides for
//! the RLS suite too), and rows that such rows reference (so every key holds). Tables
//! nothing reaches are copied empty.

use std::{
    collections::{BTreeMap, BTreeSet},
    rc::Rc,
};

use super::catalog::Table;
use crate::{
    sql,
    tenancy::{self, Edge, Tenancy},
};

/// A `WHERE` expression (over alias `t`) per table key; a table without one copies no rows.
pub(super) fn filters(tables: &[Table], clinic_ids: &[String], tenancy: &Tenancy) -> BTreeMap<String, String> {
    let by_key: BTreeMap<String, &Table> = tables.iter().map(|t| (t.key(), t)).collect();
    // Tables with a path of foreign keys down to the root: their rows belong to clinics.
    let owned: BTreeSet<String> = tenancy::ownership(&tenancy.root, &edges(tables)).into_keys().collect();
    let ids = sql::literals(clinic_ids);
    let mut builder =
        Builder { by_key, owned, memo: BTreeMap::new(), visiting: BTreeSet::new(), ids, aliases: 0, tenancy };
    tables.iter().filter_map(|t| builder.filter(&t.key()).map(|f| (t.key(), f.render("t")))).collect()
}

/// A table's filter, rendered over whatever alias the query gives that table: a tenant's
/// own rows, or any of several memberships in other tables' filtered rows.
enum Filter {
    Tenant { key: String, ids: String },
    Any(Vec<Membership>),
}

/// `(mine...) in (select theirs... from other alias where <inner over alias>)`.
struct Membership {
    mine: Vec<String>,
    theirs: Vec<String>,
    other: String,
    alias: String,
    inner: Rc<Filter>,
}

impl Filter {
    fn render(&self, at: &str) -> String {
        match self {
            Filter::Tenant { key, ids } => format!("{at}.{}::text in ({ids})", sql::ident(key)),
            Filter::Any(terms) => {
                let terms: Vec<String> = terms
                    .iter()
                    .map(|m| {
                        format!(
                            "({}) in (select {} from {} {} where {})",
                            sql::columns_of(at, &m.mine),
                            sql::columns_of(&m.alias, &m.theirs),
                            m.other,
                            m.alias,
                            m.inner.render(&m.alias)
                        )
                    })
                    .collect();
                format!("({})", terms.join(" or "))
            }
        }
    }
}

struct Builder<'a> {
    by_key: BTreeMap<String, &'a Table>,
    owned: BTreeSet<String>,
    memo: BTreeMap<String, Option<Rc<Filter>>>,
    visiting: BTreeSet<String>,
    ids: String,
    aliases: usize,
    tenancy: &'a Tenancy,
}

/// The catalog's foreign keys, as the ownership function takes them.
fn edges(tables: &[Table]) -> Vec<Edge> {
    tables
        .iter()
        .flat_map(|t| {
            t.foreign_keys.iter().map(|fk| Edge {
                from: t.key(),
                columns: fk.columns.clone(),
                to: fk.target.clone(),
                to_qualified: fk.target_qualified.clone(),
                to_columns: fk.target_columns.clone(),
            })
        })
        .collect()
}

impl Builder<'_> {
    fn filter(&mut self, key: &str) -> Option<Rc<Filter>> {
        if let Some(done) = self.memo.get(key) {
            return done.clone();
        }
        if key == self.tenancy.root {
            return Some(Rc::new(Filter::Tenant { key: self.tenancy.key.clone(), ids: self.ids.clone() }));
        }
        if !self.visiting.insert(key.to_string()) {
            return None; // a cycle: the other terms decide
        }
        let table = self.by_key[key];
        let mut terms = Vec::new();
        // Down: rows whose keys point at included rows of a clinic-owned parent.
        if self.owned.contains(key) {
            let parents: Vec<_> =
                table.foreign_keys.iter().filter(|fk| fk.target != key && self.owned.contains(&fk.target)).collect();
            for fk in parents {
                if let Some(parent) = self.filter(&fk.target) {
                    let alias = self.alias();
                    terms.push(membership(&fk.columns, &fk.target_columns, &fk.target_qualified, parent, alias));
                }
            }
        }
        // Up: rows that included rows reference, so their foreign keys hold.
        let children: Vec<(&Table, usize)> = self
            .by_key
            .values()
            .flat_map(|c| {
                c.foreign_keys
                    .iter()
                    .enumerate()
                    .filter(|(_, fk)| fk.target == key && c.key() != key)
                    .map(move |(i, _)| (*c, i))
            })
            .collect();
        for (child, i) in children {
            let fk = &child.foreign_keys[i];
            if let Some(child_filter) = self.filter(&child.key()) {
                let alias = self.alias();
                terms.push(membership(&fk.target_columns, &fk.columns, &child.qualified(), child_filter, alias));
            }
        }
        self.visiting.remove(key);
        let result = (!terms.is_empty()).then(|| Rc::new(Filter::Any(terms)));
        self.memo.insert(key.to_string(), result.clone());
        result
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("s{}", self.aliases)
    }
}

fn membership(mine: &[String], theirs: &[String], other: &str, inner: Rc<Filter>, alias: String) -> Membership {
    Membership { mine: mine.to_vec(), theirs: theirs.to_vec(), other: other.to_string(), alias, inner }
}

//! `--clinics`: copy only some clinics and everything they reach through foreign keys. Each
//! table gets a filter built from the key graph: rows that belong to a chosen clinic (a path
//! of keys down to `public.clinics`), and rows that such rows reference (so every key holds).
//! Tables nothing reaches are copied empty.

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::{Table, quote};

/// The tenant table the subset starts from.
pub const ROOT: &str = "public.clinics";

/// Stands for the filtered table's alias until the filter is placed.
const ALIAS: &str = "\u{1}";

/// A `WHERE` expression (over alias `t`) per table key; a table without one copies no rows.
pub fn filters(tables: &[Table], clinic_ids: &[String]) -> BTreeMap<String, String> {
    let by_key: BTreeMap<String, &Table> = tables.iter().map(|t| (t.key(), t)).collect();
    // Tables with a path of foreign keys down to the root: their rows belong to clinics.
    let mut owned: BTreeSet<String> = BTreeSet::from([ROOT.to_string()]);
    loop {
        let before = owned.len();
        for table in tables {
            if table.foreign_keys.iter().any(|fk| fk.target != table.key() && owned.contains(&fk.target)) {
                owned.insert(table.key());
            }
        }
        if owned.len() == before {
            break;
        }
    }
    let ids = clinic_ids.iter().map(|id| format!("'{}'", id.replace('\'', "''"))).collect::<Vec<_>>().join(", ");
    let mut builder = Builder { by_key, owned, memo: BTreeMap::new(), visiting: BTreeSet::new(), ids, aliases: 0 };
    tables.iter().filter_map(|t| builder.filter(&t.key()).map(|f| (t.key(), f.replace(ALIAS, "t")))).collect()
}

struct Builder<'a> {
    by_key: BTreeMap<String, &'a Table>,
    owned: BTreeSet<String>,
    memo: BTreeMap<String, Option<String>>,
    visiting: BTreeSet<String>,
    ids: String,
    aliases: usize,
}

impl Builder<'_> {
    fn filter(&mut self, key: &str) -> Option<String> {
        if let Some(done) = self.memo.get(key) {
            return done.clone();
        }
        if key == ROOT {
            return Some(format!("{ALIAS}.id::text in ({})", self.ids));
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
                    terms.push(membership(&fk.columns, &fk.target_columns, &fk.target_qualified, &parent, &alias));
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
                terms.push(membership(&fk.target_columns, &fk.columns, &child.qualified(), &child_filter, &alias));
            }
        }
        self.visiting.remove(key);
        let result = (!terms.is_empty()).then(|| format!("({})", terms.join(" or ")));
        self.memo.insert(key.to_string(), result.clone());
        result
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("s{}", self.aliases)
    }
}

/// `(<alias>.a, <alias>.b) in (select sN.x, sN.y from other sN where <filter over sN>)`.
fn membership(mine: &[String], theirs: &[String], other: &str, other_filter: &str, alias: &str) -> String {
    let left = mine.iter().map(|c| format!("{ALIAS}.{}", quote(c))).collect::<Vec<_>>().join(", ");
    let right = theirs.iter().map(|c| format!("{alias}.{}", quote(c))).collect::<Vec<_>>().join(", ");
    format!("({left}) in (select {right} from {other} {alias} where {})", other_filter.replace(ALIAS, alias))
}

//! The mixed path: a sync whose login cannot act as the owner of some replaced tables (on
//! hosted Supabase, `postgres` and GoTrue's `auth.*`, owned by `supabase_auth_admin`)
//! replaces those in place and all the others through the shadow, in its one transaction:
//! the shadows are loaded and verified first (the live tables untouched), then the in-place
//! tables are emptied and loaded, then the shadows' keys to them are added (which checks
//! them against their new rows; adding a key keeps its parent's writers out until the
//! commit, so not earlier), then the swap, then the commit.
//!
//! The in-place tables are emptied by `DELETE` with triggers off (`session_replication_role
//! = replica`), not `TRUNCATE`: a `TRUNCATE` of `auth.users` must take every table that
//! references it along (the live `public.users`, which readers use until the swap) or drop
//! their keys, and either locks those tables until the commit. In that role a `DELETE` fires
//! no key's trigger and locks no other table: readers of the in-place tables keep their old
//! rows until the commit, only their writers wait (from the load on). They keep their
//! indexes through the load, as only their owner may drop them.
//!
//! With them go the tables of `auth` that reference them (GoTrue's per-user tables, see
//! [`supabase`]), so that GoTrue's tables are replaced together.

use anyhow::{Context, Result};

use super::{OutsideKey, supabase};

/// The replaced tables that go in place, and why; empty when none.
#[derive(Default)]
pub(super) struct InPlace {
    /// Qualified, as the replaced tables were named, in their order.
    pub tables: Vec<String>,
    /// `schema.name` of each, for the status line.
    shown: Vec<String>,
    /// Why: the owners the login cannot act as.
    pub reason: String,
    /// The foreign keys of tables outside the sync to them (`storage.objects.owner`).
    outside: Vec<OutsideKey>,
}

impl InPlace {
    pub(super) fn has(&self, table: &str) -> bool {
        self.tables.iter().any(|t| t == table)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The one status line of the mixed path.
    pub(super) fn line(&self, shadowed: usize) -> String {
        format!(
            "stage-sync: replaced in place ({}): {}; the other {shadowed} table(s) through the shadow, so their readers wait only for the swap, and readers of these keep the old rows until the commit",
            self.reason,
            self.shown.join(", ")
        )
    }
}

/// Splits `replaced` (qualified names): the tables whose owner the login cannot act as and
/// the tables of `auth` that reference them, directly or through each other, go in place.
/// The foreign keys of tables outside the sync (`synced`) to them are read here, before
/// anything is written (one over a NOT NULL column stops the sync, as in place).
pub(super) fn split(tx: &mut postgres::Transaction, replaced: &[String], synced: &[String]) -> Result<InPlace> {
    let rows = tx
        .query(
            "with recursive r as (select u.name, u.i, u.name::regclass::oid as oid
                                  from unnest($1::text[]) with ordinality u(name, i)),
             foreign_owner as (select r.oid from r join pg_class c on c.oid = r.oid
                               where not pg_has_role(c.relowner, 'USAGE')),
             along(oid) as (
                select oid from foreign_owner
                union
                select k.conrelid from pg_constraint k join along a on k.confrelid = a.oid
                join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
                where k.contype = 'f' and n.nspname = 'auth' and k.conrelid in (select oid from r))
             select r.name, format('%s.%s', n.nspname, c.relname),
                    case when r.oid in (select oid from foreign_owner) then c.relowner::regrole::text end,
                    current_user::text
             from r join pg_class c on c.oid = r.oid join pg_namespace n on n.oid = c.relnamespace
             where r.oid in (select oid from along) order by r.i",
            &[&replaced],
        )
        .context("cannot read the owners of the replaced tables")?;
    if rows.is_empty() {
        return Ok(InPlace::default());
    }
    let mut owners: Vec<String> = rows.iter().filter_map(|r| r.get::<_, Option<String>>(2)).collect();
    owners.sort();
    owners.dedup();
    let login: String = rows[0].get(3);
    let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let outside = supabase::outside_keys(tx, &tables, synced)?;
    Ok(InPlace {
        shown: rows.iter().map(|r| r.get(1)).collect(),
        reason: format!("owned by {}, which the sync's login {login} cannot act as", owners.join(", ")),
        tables,
        outside,
    })
}

/// The in-place tables emptied by `DELETE` (see the module's comment): with triggers off,
/// no key's trigger fires and no other table is locked.
pub(super) fn empty(tx: &mut postgres::Transaction, in_place: &InPlace) -> Result<()> {
    for table in &in_place.tables {
        tx.batch_execute(&format!("delete from {table}"))
            .with_context(|| format!("cannot empty {table}; the target is unchanged"))?;
    }
    Ok(())
}

/// After the in-place load: in tables outside the sync, references to rows that are gone
/// become NULL (their keys stayed, and now hold again).
pub(super) fn clear_outside(tx: &mut postgres::Transaction, in_place: &InPlace) -> Result<()> {
    for key in &in_place.outside {
        key.null_dangling(tx)?;
    }
    Ok(())
}

/// A foreign key from an in-place table to one going through the shadow (`shadowed`): the
/// swap would have to drop and add it back, on a table whose owner the login cannot act
/// as. Then the whole sync runs in place, as before; this says why.
pub(super) fn key_into_shadow(
    tx: &mut postgres::Transaction,
    in_place: &InPlace,
    shadowed: &[String],
) -> Result<Option<String>> {
    let row = tx
        .query_opt(
            "select format('%s, replaced in place (%s), references %s (foreign key %s), which the swap would replace',
                           k.conrelid::regclass, $3::text, k.confrelid::regclass, k.conname)
             from pg_constraint k
             where k.contype = 'f' and k.conrelid = any(select t::regclass from unnest($1::text[]) t)
               and k.confrelid = any(select t::regclass from unnest($2::text[]) t)
             order by 1 limit 1",
            &[&in_place.tables, &shadowed, &in_place.reason],
        )
        .context("cannot read the keys of the tables replaced in place")?;
    Ok(row.map(|r| r.get(0)))
}

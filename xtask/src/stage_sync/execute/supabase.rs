//! A sync into a Supabase project: the tables outside the sync that reference the tables
//! it replaces, and what `auth` looks like after it.
//!
//! GoTrue's per-user tables (`identities`, `sessions`, `refresh_tokens`, `mfa_*`,
//! `one_time_tokens`, `oauth_*`, `webauthn_*`, `flow_state`, `saml_relay_states`, whatever
//! in `auth` references them) are emptied in the one `TRUNCATE`. Rows of other tables
//! the sync does not own (`storage.objects.owner`, `storage.buckets.owner`) stay: their
//! foreign key is dropped for the load, references to rows the sync removed become NULL,
//! and the key is added back, which checks every row. Then every copied user with an email
//! gets one `email` identity, as GoTrue writes it, so GoTrue accepts the user; with
//! `STAGE_SYNC_LOGIN_PASSWORD` set, every such user signs in with that staging-only password.

use anyhow::{Context, Result, bail};

use super::OutsideKey;

use crate::{
    context::{status, warn},
    sql,
};

/// GoTrue's per-user table with no foreign key to `auth.users`, emptied with it (its
/// dependents, `saml_relay_states`, follow by their keys).
const FLOW_STATE: &str = "auth.flow_state";

/// The tables of `auth` that reference `emptied` (qualified names), directly or through
/// each other, and `auth.flow_state` when `auth.users` is emptied: emptied with them.
pub(super) fn auth_dependents(
    tx: &mut postgres::Transaction,
    emptied: &[String],
    auth_users: bool,
) -> Result<Vec<String>> {
    let mut roots = emptied.to_vec();
    if auth_users {
        let flow_state: bool = tx.query_one("select to_regclass($1) is not null", &[&FLOW_STATE])?.get(0);
        roots.extend(flow_state.then(|| FLOW_STATE.to_string()));
    }
    let rows = tx.query(
        "with recursive roots as (select name::regclass as oid from unnest($1::text[]) as name),
         deps(oid) as (
            select oid from roots
            union
            select con.conrelid from pg_constraint con join deps d on con.confrelid = d.oid
            join pg_class c on c.oid = con.conrelid join pg_namespace n on n.oid = c.relnamespace
            where con.contype = 'f' and n.nspname = 'auth')
         select format('%I.%I', n.nspname, c.relname) from deps d join pg_class c on c.oid = d.oid
         join pg_namespace n on n.oid = c.relnamespace
         where d.oid not in (select oid from roots) or c.oid = to_regclass($2)
         order by 1",
        &[&roots, &FLOW_STATE],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Drops every foreign key from a table outside the sync (`synced`, qualified) to one in
/// `emptied` ([`outside_keys`]).
pub(super) fn detach(tx: &mut postgres::Transaction, emptied: &[String], synced: &[String]) -> Result<Vec<OutsideKey>> {
    let keys = outside_keys(tx, emptied, synced)?;
    for key in &keys {
        tx.batch_execute(&format!("alter table {} drop constraint {}", key.child, sql::ident(&key.name))).map_err(
            |err| {
                anyhow::anyhow!(
                    "cannot drop the foreign key {} of {} for the load, nothing was changed: {}\nhint: the sync's login must own {} (on Supabase, storage's tables belong to supabase_storage_admin: drop the key `{}` once, as current projects have no such key)",
                    key.name,
                    key.child,
                    app::connect::error_chain(&err),
                    key.child,
                    key.name
                )
            },
        )?;
    }
    Ok(keys)
}

/// Every foreign key from a table outside the sync (`synced`, qualified) to one in
/// `emptied`. A key whose columns cannot be NULL stops the sync before anything is written:
/// its rows would lose what they point at. (A synced `schema_only` table pointing at replaced
/// rows still makes the `TRUNCATE` refuse, as before.)
pub(super) fn outside_keys(
    tx: &mut postgres::Transaction,
    emptied: &[String],
    synced: &[String],
) -> Result<Vec<OutsideKey>> {
    let rows = tx.query(
        "with emptied as (select name::regclass as oid from unnest($1::text[]) as name),
         synced as (select name::regclass as oid from unnest($2::text[]) as name)
         select con.conrelid::regclass::text, con.conname::text, pg_get_constraintdef(con.oid),
                array(select a.attname::text from unnest(con.conkey) with ordinality k(n, i)
                      join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.i),
                con.confrelid::regclass::text,
                array(select a.attname::text from unnest(con.confkey) with ordinality k(n, i)
                      join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n order by k.i),
                exists (select from unnest(con.conkey) k(n) join pg_attribute a
                        on a.attrelid = con.conrelid and a.attnum = k.n where a.attnotnull)
         from pg_constraint con
         where con.contype = 'f' and con.conparentid = 0 and con.confrelid in (select oid from emptied)
           and con.conrelid not in (select oid from emptied) and con.conrelid not in (select oid from synced)
         order by 1, 2",
        &[&emptied, &synced],
    )?;
    let mut keys = Vec::new();
    for row in &rows {
        let key = OutsideKey::from_row(row);
        if row.get::<_, bool>(6) {
            bail!(
                "{} references {} (foreign key {}, NOT NULL) but is not synced: the sync would leave its rows pointing at nothing; nothing was changed\nhint: add its schema to `schemas` in the rules file, or let the column be NULL",
                key.child,
                key.parent,
                key.name
            );
        }
        keys.push(key);
    }
    Ok(keys)
}

/// After the load (the parents' keys rebuilt): references to rows that are gone become
/// NULL in tables outside the sync, then every key is added back, which checks every row.
pub(super) fn reattach(tx: &mut postgres::Transaction, detached: Vec<OutsideKey>) -> Result<()> {
    for key in detached {
        key.null_dangling(tx)?;
        tx.batch_execute(&format!(
            "alter table {} add constraint {} {}",
            key.child,
            sql::ident(&key.name),
            key.definition
        ))
        .with_context(|| {
            format!("verification failed, nothing was changed: {}'s rows break foreign key {}", key.child, key.name)
        })?;
    }
    Ok(())
}

/// GoTrue's token columns: `''` after a sync, which GoTrue reads as "nothing pending" (it
/// scans them as strings, so NULL would break the user's login).
const TOKENS: &[&str] = &[
    "confirmation_token",
    "recovery_token",
    "email_change_token_new",
    "email_change_token_current",
    "email_change",
    "phone_change",
    "phone_change_token",
    "reauthentication_token",
];

/// `auth` after `auth.users` was copied masked: no token pending, one `email` identity per
/// user with an email (provider_id the user's id, identity_data with `sub`, `email`,
/// `email_verified`), no production password hash, and with `password` (the staging-only
/// one) that password's bcrypt hash for each of them. Without it no password works.
pub(super) fn stage_logins(tx: &mut postgres::Transaction, password: Option<&str>) -> Result<()> {
    stage_logins_in(tx, password, "auth.users", "auth.identities")
}

/// [`stage_logins`] on the tables `users` and `identities` (qualified): a shadow copy.
pub(super) fn stage_logins_in(
    tx: &mut postgres::Transaction,
    password: Option<&str>,
    users: &str,
    identities: &str,
) -> Result<()> {
    let columns: Vec<String> = tx
        .query(
            "select a.attname::text from pg_attribute a where a.attrelid = $1::text::regclass
             and a.attnum > 0 and not a.attisdropped",
            &[&users],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let has = |name: &str| columns.iter().any(|c| c == name);
    let tokens: Vec<String> =
        TOKENS.iter().filter(|c| has(c)).map(|c| format!("{c} = ''", c = sql::ident(c))).collect();
    if !tokens.is_empty() {
        tx.batch_execute(&format!("update {users} set {}", tokens.join(", ")))
            .context("cannot clear the copied users' pending tokens")?;
    }
    let mut login = "u.email is not null and u.email <> ''".to_string();
    for flag in ["is_sso_user", "is_anonymous"].into_iter().filter(|c| has(c)) {
        login.push_str(&format!(" and not u.{flag}"));
    }
    give_identities(tx, users, identities, &login)?;
    // Whatever the rules say, no production password hash stays: the staging one or none.
    tx.batch_execute(&format!("update {users} set encrypted_password = null where encrypted_password is not null"))
        .context("cannot clear the copied users' passwords")?;
    let Some(password) = password else {
        status("auth: no STAGE_SYNC_LOGIN_PASSWORD, so no password signs in a copied user");
        return Ok(());
    };
    set_password(tx, users, &login, password)
}

/// One email identity for each copied user who signs in with an email (`login`).
fn give_identities(tx: &mut postgres::Transaction, users: &str, identities: &str, login: &str) -> Result<()> {
    let shape: Option<bool> = tx
        .query_opt(
            "select exists (select from pg_attribute where attrelid = c.oid and attname = 'provider_id' and not attisdropped)
             from (select to_regclass($1) as oid) c where c.oid is not null",
            &[&identities],
        )?
        .map(|r| r.get(0));
    match shape {
        None => {
            warn("auth.identities does not exist: the copied users have no identity, and GoTrue will not sign them in")
        }
        Some(modern) => {
            // GoTrue before 2023 keyed identities by `id` (the provider's id), later by `provider_id`.
            let id_column = if modern { "provider_id" } else { "id" };
            let inserted = tx
                .execute(
                    &format!(
                        "insert into {identities} ({id_column}, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
                         select u.id::text, u.id,
                                jsonb_build_object('sub', u.id::text, 'email', u.email,
                                                   'email_verified', u.email_confirmed_at is not null, 'phone_verified', false),
                                'email', u.last_sign_in_at, coalesce(u.created_at, now()), coalesce(u.updated_at, now())
                         from {users} u where {login}"
                    ),
                    &[],
                )
                .context("cannot give the copied users their email identities")?;
            status(format!("auth: {inserted} copied user(s) with an email identity"));
        }
    }
    Ok(())
}

/// The staging password's bcrypt hash (through the target's pgcrypto) for each copied user
/// who signs in with an email (`login`).
fn set_password(tx: &mut postgres::Transaction, users: &str, login: &str, password: &str) -> Result<()> {
    let schema: Option<String> = tx
        .query_opt(
            "select n.nspname::text from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pgcrypto'",
            &[],
        )?
        .map(|r| r.get(0));
    let schema = schema.context(
        "cannot set the staging password: the target has no pgcrypto (its bcrypt)\nhint: `create extension pgcrypto with schema extensions` on the target, or unset STAGE_SYNC_LOGIN_PASSWORD",
    )?;
    let schema = sql::ident(&schema);
    let set = tx
        .execute(
            &format!(
                "update {users} u set encrypted_password = h.hash
                 from (select {schema}.crypt($1::text, {schema}.gen_salt('bf', 10)) as hash) h where {login}"
            ),
            &[&password],
        )
        .context("cannot set the staging password")?;
    status(format!("auth: {set} copied user(s) sign in with the staging password (STAGE_SYNC_LOGIN_PASSWORD)"));
    Ok(())
}

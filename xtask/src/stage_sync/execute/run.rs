//! The executor as a whole, inside the sync's one target transaction: into a shadow copy
//! of the replaced tables, verified there and swapped in at the end ([`super::shadow`],
//! [`super::swap`]), so readers keep the old rows until the commit and wait at most for the
//! swap; the tables whose owner the login cannot act as (GoTrue's on hosted Supabase) in
//! place after the shadows are verified and before the swap ([`super::mixed`]); or, when
//! the shadow cannot carry something, all in place as before (the tables emptied by
//! `TRUNCATE`, which readers wait for until the commit), with one warning saying why.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::{
    Dest, Finished, Loaded, finish_and_verify, load,
    mixed::{self, InPlace},
    same_major_version,
    shadow::{self, Prepared},
    supabase,
    swap::{self, Shadow},
};
use crate::{
    context::{status, warn},
    sql,
    stage_sync::{mask::Masker, plan::Plan, verify},
};

/// What the executor did; `swapped` when it went through the shadow.
pub(crate) struct Executed {
    pub loaded: Loaded,
    pub finished: Finished,
    pub swapped: Option<swap::Swapped>,
}

/// Set to `1`: the whole sync in place, as before the shadow (faster where nobody reads
/// the target meanwhile; `bench stage-sync` measures both).
pub(crate) const IN_PLACE_VAR: &str = "XTASK_STAGE_SYNC_IN_PLACE";

/// Test-only: a file the sync creates just before the swap, then waits until the test
/// removes it (at most a minute), so a test can read the target mid-sync.
const PAUSE_VAR: &str = "XTASK_TEST_PAUSE_BEFORE_SWAP";

/// What every step of one sync reads: the plan, the masking, the COPY format, and
/// `STAGE_SYNC_LOGIN_PASSWORD`.
struct Sync<'a> {
    plan: &'a Plan,
    masker: &'a Masker,
    binary: bool,
    password: Option<&'a str>,
}

/// Loads, verifies and (through the shadow) swaps; the caller commits. `password`:
/// `STAGE_SYNC_LOGIN_PASSWORD`.
pub(crate) fn execute(
    snapshot: &mut postgres::Transaction,
    tx: &mut postgres::Transaction,
    plan: &Plan,
    masker: &Masker,
    password: Option<&str>,
) -> Result<Executed> {
    let sync = Sync { plan, masker, binary: same_major_version(snapshot, tx)?, password };
    tx.batch_execute("set local session_replication_role = replica").map_err(|err| {
        anyhow::anyhow!(
            "cannot turn triggers off for the load (session_replication_role): {}\nhint: the target's user needs to be allowed to set session_replication_role, as Supabase's postgres is",
            app::connect::error_chain(&err)
        )
    })?;
    let mut replaced = plan.emptied();
    replaced.extend(supabase::auth_dependents(tx, &replaced, plan.copies_auth_users)?);
    let emptied = plan.emptied();
    let synced: Vec<String> = plan.tables.iter().map(|t| t.qualified()).collect();
    let kept: Vec<String> = synced.iter().filter(|q| !emptied.contains(q)).cloned().collect();
    let in_place = mixed::split(tx, &replaced, &synced)?;
    let shadowed: Vec<String> = replaced.iter().filter(|t| !in_place.has(t)).cloned().collect();
    let prepared = if std::env::var_os(IN_PLACE_VAR).is_some_and(|v| v == "1") {
        Prepared::InPlace(format!("{IN_PLACE_VAR}=1"))
    } else if shadowed.is_empty() && !in_place.is_empty() {
        Prepared::InPlace(in_place.reason.clone())
    } else if let Some(reason) = mixed::key_into_shadow(tx, &in_place, &shadowed)? {
        Prepared::InPlace(reason)
    } else {
        shadow::prepare(tx, &shadowed, &kept, &in_place.tables)?
    };
    match prepared {
        Prepared::Ready(shadow) => {
            if !in_place.is_empty() {
                status(in_place.line(shadow.pairs.len()));
            }
            through_shadow(snapshot, tx, &sync, &shadow, &in_place)
        }
        Prepared::InPlace(reason) => {
            if !replaced.is_empty() {
                warn(format!("stage-sync runs in place, so the target's readers wait until it commits: {reason}"));
            }
            let deferred = super::empty_target(tx, plan, &replaced)?;
            let mut loaded = Loaded::default();
            load(
                snapshot,
                tx,
                plan,
                (masker, sync.binary),
                &|t| Some(Dest { into: t.to_string(), freeze: true }),
                &mut loaded,
            )?;
            super::stage_logins(tx, plan, password)?;
            let finished = finish_and_verify(tx, plan, &loaded, deferred)?;
            Ok(Executed { loaded, finished, swapped: None })
        }
    }
}

/// The shadow path: indexes and keys of the shadows off for the load and rebuilt after it
/// (as in place), then the in-place tables if any ([`load_in_place`]), every check, then the
/// swap with the sequences advanced.
fn through_shadow(
    snapshot: &mut postgres::Transaction,
    tx: &mut postgres::Transaction,
    sync: &Sync,
    shadow: &Shadow,
    in_place: &InPlace,
) -> Result<Executed> {
    let plan = sync.plan;
    let copied: Vec<String> = plan.loaded().iter().filter(|t| !in_place.has(t)).map(|t| shadow.target_of(t)).collect();
    let copied: Vec<&str> = copied.iter().map(String::as_str).collect();
    // As in place: small tables keep their keys and the foreign keys to them (see `bulk`).
    let small: Vec<String> = plan
        .tables
        .iter()
        .filter(|t| t.estimate <= super::SMALL_TABLE_ROWS)
        .map(|t| shadow.target_of(&t.qualified()))
        .collect();
    let small: Vec<&str> = small.iter().map(String::as_str).collect();
    let deferred = crate::bulk::Deferred::drop_keeping(tx, &copied, crate::bulk::Scope::All, &small)?;
    let mut loaded = Loaded::default();
    let route = |t: &str| (!in_place.has(t)).then(|| Dest { into: shadow.target_of(t), freeze: true });
    load(snapshot, tx, plan, (sync.masker, sync.binary), &route, &mut loaded)?;
    let users = sql::qualified("auth", "users");
    if plan.copies_auth_users && !in_place.has(&users) {
        let identities = shadow.target_of(&sql::qualified("auth", "identities"));
        supabase::stage_logins_in(tx, sync.password, &shadow.target_of(&users), &identities)?;
    }
    let started = Instant::now();
    let not_held = "verification failed, nothing was changed: a key or index does not hold on the copy";
    deferred
        .restore(tx)
        .map_err(|err| anyhow::anyhow!("{}", shadow.live_names(&format!("{err:#}"))))
        .context(not_held)?;
    if !in_place.is_empty() {
        load_in_place(snapshot, tx, sync, in_place, &mut loaded)?;
        add_later_keys(tx, shadow)?;
    }
    let rebuilt = started.elapsed();
    let into = |key: &str, qualified: &str| shadow.target_of_key(key).unwrap_or_else(|| qualified.to_string());
    let problems = verify::verify_in(tx, &plan.tables, &plan.rules, &loaded.counts, &loaded.leaks, &into)?;
    if !problems.is_empty() {
        bail!("verification failed, nothing was changed: {}", problems.join("; "));
    }
    let verified = started.elapsed() - rebuilt;
    super::pause_for_tests(PAUSE_VAR);
    let swapped = swap::swap(tx, shadow, &mut |tx| {
        verify::advance_sequences(tx, &plan.tables, &plan.rules)?;
        let problems = verify::check_sequences(tx, &plan.tables, &plan.rules)?;
        if !problems.is_empty() {
            bail!("verification failed, nothing was changed: {}", problems.join("; "));
        }
        Ok(())
    })?;
    status(format!(
        "swapped {} table(s) in {} ms ({} attempt(s)); readers saw the old rows until then",
        shadow.pairs.len(),
        swapped.took.as_millis(),
        swapped.attempts
    ));
    Ok(Executed { loaded, finished: Finished { rebuilt, verified }, swapped: Some(swapped) })
}

/// The in-place part of the mixed path, once the shadows are loaded and verified: the
/// in-place tables emptied and loaded (with their indexes), GoTrue's shape of `auth` when
/// `auth.users` is among them, the references of other schemas to removed rows cleared.
fn load_in_place(
    snapshot: &mut postgres::Transaction,
    tx: &mut postgres::Transaction,
    sync: &Sync,
    in_place: &InPlace,
    loaded: &mut Loaded,
) -> Result<()> {
    mixed::empty(tx, in_place)?;
    // Emptied by DELETE, so not frozen: the old rows stay visible to readers until the commit.
    let route = |t: &str| in_place.has(t).then(|| Dest { into: t.to_string(), freeze: false });
    load(snapshot, tx, sync.plan, (sync.masker, sync.binary), &route, loaded)?;
    if sync.plan.copies_auth_users && in_place.has(&sql::qualified("auth", "users")) {
        supabase::stage_logins(tx, sync.password)?;
    }
    mixed::clear_outside(tx, in_place)
}

/// The shadows' foreign keys to the tables just replaced in place, added now, which checks
/// every row against their new rows (see [`super::carry::LaterKeys`]).
fn add_later_keys(tx: &mut postgres::Transaction, shadow: &Shadow) -> Result<()> {
    for key in &shadow.later.keys {
        for statement in &key.statements {
            tx.batch_execute(statement).map_err(|err| {
                anyhow::anyhow!(
                    "verification failed, nothing was changed: rows of {} break its foreign key {} to {}, replaced in place: {}\nhint: copy the rows the key points at too, or null its column in the rules file (e.g. `auth_id = \"null\"`)",
                    key.table,
                    key.name,
                    key.parent,
                    shadow.live_names(&sql::server_message(&err))
                )
            })?;
        }
    }
    Ok(())
}

/// After the caller's commit: the foreign keys of other tables validated, the new tables
/// analyzed (see [`swap::after_commit`]).
pub(crate) fn after_commit(client: &mut postgres::Client, executed: &Executed) {
    match &executed.swapped {
        Some(swapped) => swap::after_commit(client, swapped),
        // Keys an earlier, killed sync added back and did not validate.
        None => super::unvalidated::validate(client, &[]),
    }
}

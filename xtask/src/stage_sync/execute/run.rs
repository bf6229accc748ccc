//! The executor as a whole, inside the sync's one target transaction: into a shadow copy
//! of the replaced tables, verified there and swapped in at the end ([`super::shadow`],
//! [`super::swap`]), so readers keep the old rows until the commit and wait at most for the
//! swap; or, when the shadow cannot carry something, in place as before (the tables emptied
//! by `TRUNCATE`, which readers wait for until the commit), with one warning saying why.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::{
    Finished, Loaded, finish_and_verify, load, same_major_version,
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

/// Test-only: a file the sync creates just before the swap, then waits until the test
/// removes it (at most a minute), so a test can read the target mid-sync.
const PAUSE_VAR: &str = "XTASK_TEST_PAUSE_BEFORE_SWAP";

/// Loads, verifies and (through the shadow) swaps; the caller commits. `password`:
/// `STAGE_SYNC_LOGIN_PASSWORD`.
pub(crate) fn execute(
    snapshot: &mut postgres::Transaction,
    tx: &mut postgres::Transaction,
    plan: &Plan,
    masker: &Masker,
    password: Option<&str>,
) -> Result<Executed> {
    let binary = same_major_version(snapshot, tx)?;
    tx.batch_execute("set local session_replication_role = replica").map_err(|err| {
        anyhow::anyhow!(
            "cannot turn triggers off for the load (session_replication_role): {}\nhint: the target's user needs to be allowed to set session_replication_role, as Supabase's postgres is",
            app::connect::error_chain(&err)
        )
    })?;
    shadow::clear_leftovers(tx)?;
    let mut replaced = plan.emptied();
    replaced.extend(supabase::auth_dependents(tx, &replaced, plan.copies_auth_users)?);
    let emptied = plan.emptied();
    let kept: Vec<String> = plan.tables.iter().map(|t| t.qualified()).filter(|q| !emptied.contains(q)).collect();
    match shadow::prepare(tx, &replaced, &kept)? {
        Prepared::Ready(shadow) => through_shadow(snapshot, tx, plan, masker, binary, (password, shadow)),
        Prepared::InPlace(reason) => {
            if !replaced.is_empty() {
                warn(format!("stage-sync runs in place, so the target's readers wait until it commits: {reason}"));
            }
            let deferred = super::empty_target(tx, plan)?;
            let loaded = load(snapshot, tx, plan, masker, binary, None)?;
            super::stage_logins(tx, plan, password)?;
            let finished = finish_and_verify(tx, plan, &loaded, deferred)?;
            Ok(Executed { loaded, finished, swapped: None })
        }
    }
}

/// The shadow path: indexes and keys of the shadows off for the load and rebuilt after it
/// (as in place), every check on the shadows, then the swap with the sequences advanced.
fn through_shadow(
    snapshot: &mut postgres::Transaction,
    tx: &mut postgres::Transaction,
    plan: &Plan,
    masker: &Masker,
    binary: bool,
    (password, shadow): (Option<&str>, Shadow),
) -> Result<Executed> {
    let copied: Vec<String> = plan.loaded().iter().map(|t| shadow.target_of(t)).collect();
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
    let loaded = load(snapshot, tx, plan, masker, binary, Some(&shadow))?;
    if plan.copies_auth_users {
        let users = shadow.target_of(&sql::qualified("auth", "users"));
        let identities = shadow.target_of(&sql::qualified("auth", "identities"));
        supabase::stage_logins_in(tx, password, &users, &identities)?;
    }
    let started = Instant::now();
    deferred
        .restore(tx)
        .map_err(|err| anyhow::anyhow!("{}", shadow.live_names(&format!("{err:#}"))))
        .context("verification failed, nothing was changed: a key or index does not hold on the copy")?;
    let rebuilt = started.elapsed();
    let into = |key: &str, qualified: &str| shadow.target_of_key(key).unwrap_or_else(|| qualified.to_string());
    let problems = verify::verify_in(tx, &plan.tables, &plan.rules, &loaded.counts, &loaded.leaks, &into)?;
    if !problems.is_empty() {
        bail!("verification failed, nothing was changed: {}", problems.join("; "));
    }
    let verified = started.elapsed() - rebuilt;
    super::unvalidated::pause_for_tests(PAUSE_VAR);
    let swapped = swap::swap(tx, &shadow, &mut |tx| {
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

/// After the caller's commit: the foreign keys of other tables validated, the new tables
/// analyzed (see [`swap::after_commit`]).
pub(crate) fn after_commit(client: &mut postgres::Client, executed: &Executed) {
    match &executed.swapped {
        Some(swapped) => swap::after_commit(client, swapped),
        // Keys an earlier, killed sync added back and did not validate.
        None => super::unvalidated::validate(client, &[]),
    }
}

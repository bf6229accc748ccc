//! `cargo xtask stage-sync`: production (or staging) into staging (or local, test),
//! anonymized by a strict rules file, consistent (one repeatable-read snapshot), atomic (one
//! target transaction), verified before it commits.

mod batches;
mod binary;
mod catalog;
mod check;
mod dump;
mod execute;
mod init;
mod mask;
mod pipe;
mod plan;
mod progress;
mod report;
mod rules;
mod sample;
mod subset;
mod suggest;
mod verify;

use std::time::Instant;

use anyhow::{Context, Result, bail};
use app::{
    Guard,
    guard::{ReadTarget, WriteTarget, op},
};
use xshell::Shell;

use crate::{
    context::{self, data, status},
    flags::{self, Global, StageSyncCommand},
    migrate, sql, ui,
};
use mask::Masker;
use plan::Plan;
use rules::RulesFile;

impl flags::StageSync {
    pub(crate) fn run(self, _global: &Global) -> Result<()> {
        let root = context::project_root();
        let rules_shown = self.rules.display().to_string();
        let rules_path = root.join(&self.rules);
        // A dump as given on the command line: relative to where the command runs.
        let dump = self.from_dump.as_ref().map(|file| {
            let path = if file.exists() { file.clone() } else { root.join(file) };
            (path, file.display().to_string())
        });
        if let Some(StageSyncCommand::InitRules { force }) = self.command {
            if let Some((path, shown)) = &dump {
                // The rules can be written from a dump too: no production login needed.
                let restored = dump::Restored::restore(&Shell::new()?, path, shown)?;
                return init::init_rules(&restored.source_guard(None)?, &rules_path, &rules_shown, force);
            }
            let source = context::guard_for(Some(self.from))?;
            return init::init_rules(&source, &rules_path, &rules_shown, force);
        }
        let options = Options {
            dry_run: self.dry_run,
            yes: self.yes,
            json: self.json,
            migrate_target: self.migrate_target,
            clinics: self.clinics.clone(),
            restore_point: !self.no_restore_point,
            dump: dump.as_ref().map(|(_, shown)| shown.clone()),
        };
        if let Some((path, shown)) = &dump {
            return from_dump(path, shown, self.target(), &rules_path, &rules_shown, &options);
        }
        if self.from == self.target() {
            bail!("source and target are both {}\nhint: --from production|staging --to staging|local|test", self.from);
        }
        let sh = Shell::new()?;
        let source = context::guard_for(Some(self.from))?;
        let target = context::guard_for(Some(self.target()))?;
        let rules_text = read_rules(&rules_path, &rules_shown)?;
        sync(&sh, &source, &target, &rules_text, &rules_shown, &options)
    }
}

/// `--from-dump`: the dump restored into a throwaway cluster is the production source; the
/// cluster is removed when this returns, whatever happened.
fn from_dump(
    file: &std::path::Path,
    shown: &str,
    to: app::Environment,
    rules_path: &std::path::Path,
    rules_shown: &str,
    options: &Options,
) -> Result<()> {
    let sh = Shell::new()?;
    let target = context::guard_for(Some(to))?;
    // The matrix and the rules first: nothing is restored for a sync that cannot run.
    target.write::<op::StageSyncTarget>()?;
    let rules_text = read_rules(rules_path, rules_shown)?;
    // The key: from the process environment (CI's secret store), else the target's env
    // files; there is no production configuration to take it from.
    let key = std::env::var("STAGE_SYNC_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .or_else(|| target.resolved().var("STAGE_SYNC_KEY").map(str::to_string));
    if key.is_none() {
        bail!(
            "STAGE_SYNC_KEY is not set: pseudonyms need a secret key\nhint: export it, or put it in the target's secrets overlay (env/.env.{to}.local)"
        );
    }
    let restored = dump::Restored::restore(&sh, file, shown)?;
    let source = restored.source_guard(key)?;
    status(format!("environment: production (the dump {shown}, restored; read-only)"));
    sync(&sh, &source, &target, &rules_text, rules_shown, options)
}

fn read_rules(path: &std::path::Path, shown: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|err| {
        anyhow::anyhow!(
            "cannot read the rules file {shown}: {err}\nhint: `cargo xtask stage-sync init-rules` writes a starting one"
        )
    })
}

/// How a sync runs.
pub(crate) struct Options {
    pub dry_run: bool,
    pub yes: bool,
    pub json: bool,
    pub migrate_target: bool,
    /// `--clinics`: ids, or a count.
    pub clinics: Option<flags::Clinics>,
    /// Where the matrix allows an undo (local, test): keep the database as it was as its
    /// restore point first (not `--no-restore-point`).
    pub restore_point: bool,
    /// `--from-dump`: the dump as given, for the messages.
    pub dump: Option<String>,
}

/// The whole sync, from two guards: also what the benchmark runs.
pub(crate) fn sync(
    sh: &Shell,
    source_guard: &Guard,
    target_guard: &Guard,
    rules_text: &str,
    rules_shown: &str,
    options: &Options,
) -> Result<()> {
    let started = Instant::now();
    // The matrix first: nothing is read or written unless both ends are allowed.
    let target = target_guard.write::<op::StageSyncTarget>()?;
    let source = source_guard.read::<op::StageSyncSource>()?;
    let masker = masker(source_guard)?;
    let mut src = source.connect()?;
    let mut dst = target.connect()?;
    refuse_same_database(&source, &target)?;
    // The source's URL reaching another environment's database is a misconfiguration, even
    // though nothing is written there: refuse before reading a row.
    if let Some(stamp) = src.stamp.filter(|s| *s != source.environment()) {
        let env = source.environment();
        let hint = match &options.dump {
            Some(dump) => {
                format!("the dump {dump} was taken from the {stamp} database; take one of {env} (`pg_dump -Fc`)")
            }
            None => format!("the {env} URL reaches the {stamp} database; check env/.env.{env}"),
        };
        bail!(
            "the source database is stamped {stamp}, not {env}: stage-sync refused, nothing was read or written\nhint: {hint}"
        );
    }
    // The rules file, read once: its schemas, extra tables and rules make the plan.
    let file = RulesFile::parse(rules_text, rules_shown)?;
    let run = Run { sh, source_guard, target_guard, source, target, options, started };
    // One snapshot for every table, read-only.
    let mut snapshot = src.snapshot()?;
    let plan = run.plan(&mut snapshot, &file)?;
    if options.dry_run {
        return plan::print(&mut snapshot, &plan, &masker, &run.source, &run.target);
    }
    confirm(&run.target, options.yes)?;
    // Local and test keep the database as it was, so that `db undo` gives it back. The sync
    // itself rewrites the database in its one transaction (through its shadow copy), so the
    // copy is made first, with the sync's own connection closed (a copy needs the database
    // alone); the snapshot of the source stays open meanwhile.
    if options.restore_point && target_guard.write::<op::Undo>().is_ok() {
        drop(dst);
        crate::restore_point::keep_restore_point(target_guard, "stage-sync")?;
        dst = run.target.connect()?;
    }
    run.execute(snapshot, dst.client(), &plan, &masker)
}

/// The pseudonym key, from the source's configuration.
fn masker(source_guard: &Guard) -> Result<Masker> {
    let key = source_guard
        .resolved()
        .var("STAGE_SYNC_KEY")
        .context("STAGE_SYNC_KEY is not set: pseudonyms need a secret key\nhint: put it in the source's secrets overlay (env/.env.production.local) or CI's secret store")?;
    if key.len() < mask::MIN_KEY_LEN {
        bail!(
            "STAGE_SYNC_KEY is too short ({} characters)\nhint: use at least {} random characters",
            key.len(),
            mask::MIN_KEY_LEN
        );
    }
    Ok(Masker::new(key))
}

/// One sync's two ends, as the matrix allowed them, and how it runs.
struct Run<'a> {
    sh: &'a Shell,
    source_guard: &'a Guard,
    target_guard: &'a Guard,
    source: ReadTarget<op::StageSyncSource>,
    target: WriteTarget<op::StageSyncTarget>,
    options: &'a Options,
    started: Instant,
}

impl Run<'_> {
    /// The plan, once the synced schemas are known to match (or the target is migrated to
    /// match, with `--migrate-target`). Their normalized text is compared, not the ledgers:
    /// two databases adopted from one schema compare equal even without this repository's
    /// history. The plan is read from the snapshot while the two schemas are dumped and
    /// compared beside it; a difference is reported first.
    fn plan(&self, snapshot: &mut postgres::Transaction, file: &RulesFile) -> Result<Plan> {
        let (schemas, source, target) = (&file.schemas, &self.source, &self.target);
        let (drift, plan) = std::thread::scope(|scope| {
            let drift = scope.spawn(|| schema_difference(&Shell::new()?, source, target, schemas));
            let plan = read_plan(snapshot, file, self.options);
            (drift.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the schema comparison panicked"))), plan)
        });
        let mut drift = drift?;
        if drift.is_some() && self.options.migrate_target && !self.options.dry_run {
            status("the schemas differ: applying the target's pending migrations");
            migrate::up_all(self.target_guard)?;
            drift = schema_difference(self.sh, &self.source, &self.target, schemas)?;
        }
        if let Some(difference) = drift {
            return Err(self.schemas_differ(schemas, &difference));
        }
        plan
    }

    /// The error for schemas that differ; the ledgers often say why (a migration applied
    /// on one side only).
    fn schemas_differ(&self, schemas: &[String], difference: &str) -> anyhow::Error {
        let ledgers: Vec<String> = migrate::diff(self.sh, self.source_guard, self.target_guard)
            .unwrap_or_default()
            .into_iter()
            .filter(|line| !line.starts_with("schemas differ"))
            .collect();
        let why = if ledgers.is_empty() { String::new() } else { format!(" ({})", ledgers.join("; ")) };
        anyhow::anyhow!(
            "the schemas of {} and {} differ ({}): {difference}{why}\nhint: `cargo xtask migrate up --env {}`, or pass --migrate-target",
            self.source.environment(),
            self.target.environment(),
            schemas.join(", "),
            self.target.environment()
        )
    }

    /// The executor: one target transaction, committed only after verification; then the
    /// summary (and with `--json` the report).
    fn execute(
        &self,
        mut snapshot: postgres::Transaction,
        target: &mut postgres::Client,
        plan: &Plan,
        masker: &Masker,
    ) -> Result<()> {
        let mut tx = target.transaction()?;
        let password = self.target_guard.resolved().var("STAGE_SYNC_LOGIN_PASSWORD");
        let executed = execute::execute(&mut snapshot, &mut tx, plan, masker, password)?;
        snapshot.commit()?;
        let (loaded, finished) = (&executed.loaded, &executed.finished);
        let elapsed = self.started.elapsed();
        let schema_version = report::record(&mut tx, self.source_guard, &plan.rules, &loaded.counts, elapsed)?;
        tx.commit().context("cannot commit the sync; the target is unchanged")?;
        execute::after_commit(target, &executed);

        let total: u64 = loaded.counts.iter().map(|(_, n)| n).sum();
        report::summary(&loaded.timings, finished, total, self.started.elapsed());
        if self.options.json {
            let figures = report::Figures { timings: &loaded.timings, total, took: self.started.elapsed() };
            data(report::json_summary(self.source_guard, self.target_guard, &plan.rules, &figures, schema_version))?;
        }
        Ok(())
    }
}

/// The plan, from the source's snapshot: its catalog, the checked rules, the subset.
fn read_plan(snapshot: &mut postgres::Transaction, file: &RulesFile, options: &Options) -> Result<Plan> {
    let extra = file.extra_tables();
    let tables = catalog::load(snapshot, &file.schemas, &extra)?;
    let rules = check::check(file, &tables, snapshot)?;
    let filters = match &options.clinics {
        Some(spec) => {
            let tenancy = crate::tenancy::Tenancy::load(&context::project_root())?;
            Some(subset::filters(&tables, &choose_clinics(snapshot, spec, &tenancy)?, &tenancy))
        }
        None => None,
    };
    Ok(Plan::new(tables, rules, filters, &extra))
}

/// The first difference between the source's and the target's synced schemas, if any.
fn schema_difference(
    sh: &Shell,
    source: &ReadTarget<op::StageSyncSource>,
    target: &WriteTarget<op::StageSyncTarget>,
    schemas: &[String],
) -> Result<Option<String>> {
    // The two dumps at once: each is mostly pg_dump waiting on its own server.
    let (source_args, target_args) = (source.client_args()?, target.client_args()?);
    let (source_address, target_address) = (source.url().address(), target.url().address());
    let (expected, actual) = std::thread::scope(|scope| {
        let other =
            scope.spawn(|| migrate::schema::dump_schemas(&Shell::new()?, &target_args, &target_address, schemas));
        let expected = migrate::schema::dump_schemas(sh, &source_args, &source_address, schemas);
        (expected, other.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the target's schema dump panicked"))))
    });
    Ok(migrate::schema::first_difference(&expected?, &actual?))
}

/// Refuses when the two ends are one database: by address, and by what the servers said
/// of themselves when the guard pinned them (system identifier, start time, database),
/// which sees through aliases.
fn refuse_same_database(
    source: &ReadTarget<op::StageSyncSource>,
    target: &WriteTarget<op::StageSyncTarget>,
) -> Result<()> {
    let (a, b) = (source.url(), target.url());
    if a.address() == b.address() && a.dbname() == b.dbname() {
        bail!("the source and the target are the same database ({})", a.address());
    }
    if source.identity().is_some() && source.identity() == target.identity() {
        bail!(
            "the source and the target are the same database, reached by two URLs ({} and {})",
            a.address(),
            b.address()
        );
    }
    Ok(())
}

/// The clinics of `--clinics`: listed keys (each must exist) or the first N by key, from
/// the tenant table of `env/tenancy.toml`.
fn choose_clinics(
    tx: &mut postgres::Transaction,
    spec: &flags::Clinics,
    tenancy: &crate::tenancy::Tenancy,
) -> Result<Vec<String>> {
    let (root, key) = (tenancy.root_qualified(), sql::ident(&tenancy.key));
    let wanted = match spec {
        flags::Clinics::First(count) => {
            let rows = tx.query(&format!("select {key}::text from {root} order by {key} limit $1"), &[count])?;
            return Ok(rows.iter().map(|r| r.get(0)).collect());
        }
        flags::Clinics::Ids(ids) => ids,
    };
    let found: Vec<String> = tx
        .query(&format!("select {key}::text from {root} where {key}::text = any($1)"), &[&wanted])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<&String> = wanted.iter().filter(|w| !found.contains(w)).collect();
    if !missing.is_empty() {
        bail!(
            "--clinics: no clinic {} in the source\nhint: give clinic ids from {}.{}, or a number",
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            tenancy.root,
            tenancy.key
        );
    }
    Ok(found)
}

fn confirm(target: &WriteTarget<op::StageSyncTarget>, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let env = target.environment();
    ui::printer().confirm(
        &format!("Replace all data in {env} ({}) with an anonymized copy?", target.url().address()),
        &format!("stage-sync replaces all data in {env}, and stdin is not a terminal\nhint: pass --yes to confirm"),
        "not synced",
    )
}

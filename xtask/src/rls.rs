//! `cargo xtask rls`: the row-level security suite. In one transaction that is always rolled
//! back, it plants two clinics, A and B, with rows in every tenant table, then checks every
//! table in `public` as each role the API uses: a member sees exactly its clinic's rows and
//! cannot write the other clinic's, a suspended member sees nothing, `anon` sees nothing,
//! `service_role` sees everything. Tables come from the catalog, so a new table is checked
//! (and fails until it has RLS and fixture rows) without anyone remembering to add it here.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use app::{Guard, guard::op};
use postgres::{Transaction, error::SqlState};

use crate::{
    context::{self, status},
    flags::{self, Global},
    sql,
    tenancy::{self, Tenancy},
    ui::{self, Align},
};

/// Tables in `public` that hold no clinic's data: they may go without RLS, and skip the
/// tenant checks. Empty; adding one needs a reason, as all of `public` is exposed by the API.
const SHARED_TABLES: &[&str] = &[];

/// Rows for clinics A and B in every tenant table; its header explains the fixed uuids.
const FIXTURES: &str = include_str!("rls/fixtures.sql");

const CLINIC_A: &str = "e2e0f15c-0002-4000-8000-00000000000a";
const CLINIC_B: &str = "e2e0f15c-0002-4000-8000-00000000000b";

/// A signed-in user of the fixtures, and the clinic where its role is active (if any).
struct Member {
    label: &'static str,
    auth_id: &'static str,
    clinic: Option<&'static str>,
}

const OWNER_A: Member =
    Member { label: "user A", auth_id: "e2e0f15c-0001-4000-8000-00000000000a", clinic: Some(CLINIC_A) };
const OWNER_B: Member =
    Member { label: "user B", auth_id: "e2e0f15c-0001-4000-8000-00000000000b", clinic: Some(CLINIC_B) };
const SUSPENDED: Member =
    Member { label: "A's suspended member", auth_id: "e2e0f15c-0001-4000-8000-00000000000c", clinic: None };

/// The report's columns, in the order `check` records them.
const CHECKS: [&str; 8] = ["rls", "rows", "A-only", "B-only", "inactive", "no-cross-write", "anon", "service"];

mod catalog;
mod inventory;
pub(crate) mod matrix;
mod personas;
mod probe;
mod probe_rows;
mod snapshot;

impl flags::Rls {
    pub(crate) fn run(self, global: &Global) -> Result<()> {
        let guard = context::guard(global)?;
        match self.command {
            None => suite(&guard),
            Some(flags::RlsCommand::Matrix(m)) => {
                let mode = match (m.check, m.update) {
                    (true, _) => matrix::Mode::Check,
                    (_, true) => matrix::Mode::Update,
                    _ => matrix::Mode::Print,
                };
                matrix::run(&guard, mode)
            }
        }
    }
}

/// Runs the suite on the guard's environment; also `cargo xtask ci`'s section.
pub(crate) fn suite(guard: &Guard) -> Result<()> {
    let target = guard.write::<op::RlsTesting>()?;
    let mut conn = target.connect()?;
    status(format!("RLS suite on {}: in one transaction, rolled back at the end", target.environment()));
    // Never committed: an early return drops `tx`, which rolls it back, too.
    let mut tx = conn.client().transaction()?;
    tx.batch_execute(FIXTURES).context("loading the RLS fixtures (xtask/src/rls/fixtures.sql)")?;
    let tenancy = Tenancy::load(&context::project_root())?;
    let mut rows = Vec::new();
    for table in tables(&mut tx, &tenancy)? {
        rows.push(check(&mut tx, &table).with_context(|| format!("checking table {}", table.name))?);
    }
    tx.rollback()?;
    report(&rows)
}

/// A table in `public`, and how to tell which clinic a row belongs to.
struct Table {
    name: String,
    quoted: String,
    rls: bool,
    key: Key,
    /// A column for the no-op update (`updated_at` where there is one).
    touch: String,
}

enum Key {
    /// The row's clinic is reached through this chain of foreign keys (`crate::tenancy`;
    /// empty for the tenant table itself), up to the tenant table's key.
    Chain(Vec<tenancy::Edge>, String),
    /// `users` has no clinic: a user belongs to the clinics it holds a role in.
    Users,
    /// Nothing says whose the rows are, so the suite cannot check them.
    Unknown,
}

impl Table {
    /// SQL (on alias `t`, run as the owner) for the rows of `clinic`.
    fn owned_by(&self, clinic: &str) -> Option<String> {
        match &self.key {
            Key::Chain(chain, key) => Some(tenancy::belongs(chain, key, "t", &sql::literal(clinic))),
            Key::Users => Some(format!(
                "exists (select 1 from public.user_clinic_roles r where r.user_id = t.id and r.clinic_id = {})",
                sql::literal(clinic)
            )),
            Key::Unknown => None,
        }
    }

    /// SQL (on alias `t`, run as the owner) for the rows `member` should see. For `users`,
    /// that is its own row and everyone holding a role in a clinic where it is active.
    fn visible_to(&self, member: &Member) -> String {
        match (&self.key, member.clinic) {
            (Key::Chain(..), Some(clinic)) => self.owned_by(clinic).unwrap_or_default(),
            (Key::Users, _) => format!(
                "t.auth_id = {auth} or exists (select 1 from public.user_clinic_roles mine
                   join public.users me on me.id = mine.user_id
                   join public.user_clinic_roles theirs on theirs.clinic_id = mine.clinic_id
                 where me.auth_id = {auth} and mine.is_active and theirs.user_id = t.id)",
                auth = sql::literal(member.auth_id)
            ),
            (Key::Chain(..), None) | (Key::Unknown, _) => "false".to_string(),
        }
    }
}

fn tables(tx: &mut Transaction, tenancy: &Tenancy) -> Result<Vec<Table>> {
    // Which tables belong to a clinic: the same answer `stage-sync --clinics` gets.
    let owners = tenancy::ownership(&tenancy.root, &tenancy::edges(tx, &["public".to_string()])?);
    let rows = tx.query(
        "select c.relname::text, c.relrowsecurity,
                coalesce((select a.attname::text from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                          order by a.attname <> 'updated_at', a.attnum limit 1), '')
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('r', 'p')
         order by 1",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|row| {
            let name: String = row.get(0);
            let key = match (owners.get(&format!("public.{name}")), name.as_str()) {
                (Some(chain), _) => Key::Chain(chain.clone(), tenancy.key.clone()),
                (None, "users") => Key::Users,
                (None, _) => Key::Unknown,
            };
            Table { quoted: sql::qualified("public", &name), rls: row.get(1), key, touch: row.get(2), name }
        })
        .collect())
}

/// One table's line of the report: a cell per check (`None`: not run) and what failed.
struct Row {
    table: String,
    cells: Vec<Option<bool>>,
    problems: Vec<String>,
}

impl Row {
    fn record(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        self.cells.push(Some(ok));
        if !ok {
            self.problems.push(problem());
        }
    }
}

fn check(tx: &mut Transaction, table: &Table) -> Result<Row> {
    let mut row = Row { table: table.name.clone(), cells: Vec::new(), problems: Vec::new() };
    let t = &table.quoted;
    let shared = SHARED_TABLES.contains(&table.name.as_str());
    row.record(table.rls || shared, || "row-level security is not enabled".to_string());
    let (Some(owned_a), Some(owned_b)) = (table.owned_by(CLINIC_A), table.owned_by(CLINIC_B)) else {
        if !shared {
            row.record(false, || {
                format!(
                    "no foreign key leads to {} to tell A's rows from B's (shared? see SHARED_TABLES)",
                    tenancy_file()
                )
            });
        }
        return Ok(row);
    };
    // Without rows of both clinics every other check would pass without testing anything.
    let (count_a, count_b) = (count(tx, t, &owned_a)?, count(tx, t, &owned_b)?);
    row.record(count_a > 0 && count_b > 0, || {
        format!(
            "the fixtures leave {} for clinic A and {count_b} for B: add some to xtask/src/rls/fixtures.sql",
            plural(count_a as usize, "row")
        )
    });
    if count_a == 0 || count_b == 0 {
        return Ok(row);
    }

    for member in [&OWNER_A, &OWNER_B, &SUSPENDED] {
        let expected = locators(tx, t, &table.visible_to(member))?;
        let seen = as_role(tx, Role::Member(member), |tx| locators(tx, t, "true"))?;
        // Refused outright counts as seeing nothing, which is right only where nothing is expected.
        let ok = match &seen {
            Ok(seen) => *seen == expected,
            Err(err) => denied(err) && expected.is_empty(),
        };
        row.record(ok, || match &seen {
            Ok(seen) => format!(
                "{} sees {} ({} not meant for it), expected {}",
                member.label,
                plural(seen.len(), "row"),
                seen.difference(&expected).count(),
                expected.len()
            ),
            Err(err) => format!("{} gets {}, expected {}", member.label, describe(err), plural(expected.len(), "row")),
        });
    }

    cross_write(tx, table, &owned_b, &mut row)?;

    let anon = as_role(tx, Role::Anon, |tx| count(tx, t, "true"))?;
    row.record(matches!(anon, Ok(0)) || anon.as_ref().is_err_and(denied), || match &anon {
        Ok(n) => format!("anon sees {}", plural(*n as usize, "row")),
        Err(err) => format!("anon gets {}", describe(err)),
    });

    let all = count(tx, t, "true")?;
    let service = as_role(tx, Role::Service, |tx| count(tx, t, "true"))?;
    row.record(service.as_ref().is_ok_and(|n| *n == all), || match &service {
        Ok(n) => format!("service_role sees {n} of {}", plural(all as usize, "row")),
        Err(err) => format!("service_role gets {}", describe(err)),
    });
    Ok(row)
}

/// User A tries to update, delete and forge clinic B's rows. Inside a savepoint that is
/// rolled back, so that a policy letting a write through cannot change what later tables see.
fn cross_write(tx: &mut Transaction, table: &Table, owned_b: &str, row: &mut Row) -> Result<()> {
    let t = &table.quoted;
    let mut sp = tx.transaction()?;
    let before = count(&mut sp, t, owned_b)?;
    // B's rows by physical address, not by predicate: user A's view of other tables (the
    // roles behind `users`) must not decide which rows the statements aim at.
    let targets: Vec<String> = locators(&mut sp, t, owned_b)?.into_iter().collect();
    let forged: String = sp
        .query_one(
            &format!(
                "select (case when j ? 'id' then jsonb_set(j, '{{id}}', to_jsonb(gen_random_uuid())) else j end)::text
                 from (select to_jsonb(t) j from {t} t where {owned_b} limit 1) s"
            ),
            &[],
        )?
        .get(0);
    let at = "t.tableoid::text || ':' || t.ctid::text = any($1)";
    let touch = sql::ident(&table.touch);
    // Undone at once: an updated row moves to a new address, where the delete would miss it.
    let mut undo = sp.transaction()?;
    let update = as_role(&mut undo, Role::Member(&OWNER_A), |tx| {
        tx.execute(&format!("update {t} t set {touch} = {touch} where {at}"), &[&targets])
    })?;
    undo.rollback()?;
    let delete = as_role(&mut sp, Role::Member(&OWNER_A), |tx| {
        tx.execute(&format!("delete from {t} t where {at}"), &[&targets])
    })?;
    let insert = as_role(&mut sp, Role::Member(&OWNER_A), |tx| {
        tx.execute(
            &format!("insert into {t} select * from jsonb_populate_record(null::{t}, $1::text::jsonb)"),
            &[&forged],
        )
    })?;
    let after = count(&mut sp, t, owned_b)?;
    sp.rollback()?;

    let mut problems = Vec::new();
    for (verb, done, result) in [("update", "updated", &update), ("delete", "deleted", &delete)] {
        match result {
            Ok(0) => {}
            Ok(n) => problems.push(format!("user A {done} {} of clinic B", plural(*n as usize, "row"))),
            Err(err) if denied(err) => {}
            Err(err) => problems
                .push(format!("user A's {verb} of clinic B's rows was not refused but failed: {}", describe(err))),
        }
    }
    match &insert {
        Err(err) if denied(err) => {}
        Ok(_) => problems.push("user A inserted a row for clinic B".to_string()),
        // RLS checks a new row before constraints do: this error means RLS let it through.
        Err(err) => problems.push(format!("user A's insert for clinic B passed RLS, then failed: {}", describe(err))),
    }
    if after != before {
        problems.push(format!("clinic B's row count went from {before} to {after}"));
    }
    row.record(problems.is_empty(), || problems.join("; "));
    Ok(())
}

#[derive(Clone, Copy)]
enum Role<'a> {
    Member(&'a Member),
    Anon,
    Service,
}

/// Runs `f` as `role`, with the JWT claims Supabase would set, inside a savepoint: a
/// statement's error (the expected refusal, say) rolls back the savepoint, role included,
/// and leaves the transaction usable. Ok: back to the owner, keeping what `f` did.
fn as_role<T>(
    tx: &mut Transaction,
    role: Role,
    f: impl FnOnce(&mut Transaction) -> Result<T, postgres::Error>,
) -> Result<Result<T, postgres::Error>> {
    let (name, claims) = match role {
        Role::Member(member) => ("authenticated", format!(r#"{{"sub":"{}","role":"authenticated"}}"#, member.auth_id)),
        Role::Anon => ("anon", r#"{"role":"anon"}"#.to_string()),
        Role::Service => ("service_role", r#"{"role":"service_role"}"#.to_string()),
    };
    let mut sp = tx.transaction()?;
    sp.batch_execute(&format!("set local role {name}"))?;
    sp.execute("select set_config('request.jwt.claims', $1, true)", &[&claims])?;
    let result = f(&mut sp);
    match &result {
        Ok(_) => {
            sp.batch_execute("set local role none; select set_config('request.jwt.claims', '', true)")?;
            sp.commit()?;
        }
        // Not an answer from the server (a lost connection): the suite cannot go on.
        Err(err) if err.as_db_error().is_none() => {
            bail!("the RLS suite lost its connection: {}", app::connect::error_chain(err))
        }
        Err(_) => sp.rollback()?,
    }
    Ok(result)
}

/// Refused, by a policy or by missing privileges: both are SQLSTATE 42501.
fn denied(err: &postgres::Error) -> bool {
    err.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE)
}

fn count(tx: &mut Transaction, table: &str, filter: &str) -> Result<i64, postgres::Error> {
    Ok(tx.query_one(&format!("select count(*) from {table} t where {filter}"), &[])?.get(0))
}

/// The physical addresses (partition and ctid) of the rows matching `filter`: they identify
/// rows of any table, with or without a primary key, and stay put within the transaction.
fn locators(tx: &mut Transaction, table: &str, filter: &str) -> Result<BTreeSet<String>, postgres::Error> {
    let sql = format!("select t.tableoid::text || ':' || t.ctid::text from {table} t where {filter}");
    Ok(tx.query(&sql, &[])?.iter().map(|row| row.get(0)).collect())
}

fn report(rows: &[Row]) -> Result<()> {
    let columns: Vec<(&str, Align)> = std::iter::once("table").chain(CHECKS).map(|name| (name, Align::Left)).collect();
    let mut table = ui::Table::new(&columns);
    for row in rows {
        let cells = (0..CHECKS.len()).map(|i| match row.cells.get(i) {
            Some(Some(true)) => "ok",
            Some(Some(false)) => "FAIL",
            _ => "-",
        });
        table.row(std::iter::once(row.table.as_str()).chain(cells));
    }
    table.print_data()?;
    let failed: usize = rows.iter().map(|row| row.cells.iter().filter(|cell| **cell == Some(false)).count()).sum();
    let tables = rows.iter().filter(|row| !row.problems.is_empty()).count();
    for row in rows {
        for problem in &row.problems {
            status(format!("{}: {problem}", row.table));
        }
    }
    if failed > 0 {
        let skipped = rows.iter().any(|row| row.cells.len() < CHECKS.len());
        let hint = if skipped {
            "\nhint: `-` marks checks not run: the table is shared, or lacks rows of both clinics"
        } else {
            ""
        };
        bail!("RLS suite failed: {} in {}{hint}", plural(failed, "check"), plural(tables, "table"));
    }
    status(format!("RLS suite passed: {} tables, all checks ok; everything was rolled back", rows.len()));
    Ok(())
}

/// A server error as its message and SQLSTATE (`postgres::Error` alone says "db error").
fn describe(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => app::connect::error_chain(err),
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn tenancy_file() -> String {
    format!("the tenant table of {}", tenancy::FILE)
}

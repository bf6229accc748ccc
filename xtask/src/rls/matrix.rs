//! `cargo xtask rls matrix`: the access matrix of the data itself. In one transaction that
//! is always rolled back it plants two tenants' rows in every table (`probe_rows.rs`) and
//! the personas (`personas.rs`), probes every exposed table as every persona for select,
//! insert, update and delete (`probe.rs`), reads column privileges, definer functions and
//! views (`inventory.rs`), and applies the rules no snapshot can waive. `--check` compares
//! with the committed snapshot (`snapshot.rs`), `--update` rewrites it.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use app::{Guard, guard::op};
use postgres::Transaction;

use super::{
    catalog::{self, Table},
    inventory,
    personas::{self, Kind, Persona},
    probe,
    probe_rows::Planted,
    snapshot::{self, Change, Line},
};
use crate::{
    context::{self, data, status, warn},
    sql,
    tenancy::{self, Tenancy},
    ui::{Align, Table as UiTable},
};

/// What the command does with the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Print,
    Check,
    Update,
}

/// The probed matrix, and what the transaction still holds to explain it.
pub(crate) struct Matrix {
    pub lines: Vec<Line>,
    pub tables: Vec<Table>,
    pub personas: Vec<Persona>,
    pub planted: Planted,
    /// Broken rules, one sentence each.
    pub violations: Vec<String>,
    /// Each persona's probe time, with its slowest table.
    pub timings: Vec<(String, Duration, String)>,
    pub findings: Vec<String>,
    pub probed_tables: usize,
}

/// The command on the guard's environment (never production: the matrix refuses RLS
/// testing there); also `cargo xtask ci`'s section, with `Mode::Check`.
pub(crate) fn run(guard: &Guard, mode: Mode) -> Result<()> {
    let target = guard.write::<op::RlsMatrix>()?;
    let root = context::project_root();
    let tenancy = Tenancy::load(&root)?;
    let snapshot_path = root.join(snapshot::FILE);
    // Connected first: a refused connection is the one error, whatever the files say.
    let mut conn = target.connect()?;
    let before = match mode {
        Mode::Check => Some(read_snapshot(&snapshot_path)?),
        _ => None,
    };
    status(format!("access matrix of {}: in one transaction, rolled back at the end", target.environment()));
    // Never committed: an early return drops `tx`, which rolls it back, too.
    let mut tx = conn.client().transaction()?;
    let matrix = probe(&mut tx, &tenancy)?;
    let changes = before.as_ref().map(|before| snapshot::diff(before, &matrix.lines)).unwrap_or_default();
    let mut explained = Vec::new();
    for change in &changes {
        explained.push((change, counterexample(&mut tx, &matrix, change)?));
    }
    tx.rollback()?;

    print(mode, &matrix, &explained)?;
    report_cost(&matrix);
    matrix.violations.iter().for_each(|v| warn(format!("rule: {v}")));
    if !matrix.violations.is_empty() {
        bail!(
            "the access matrix breaks {} (listed above), whatever the snapshot says\n\
             hint: fix the policies or grants; these rules need no review to be wrong",
            plural(matrix.violations.len(), "rule")
        );
    }
    conclude(mode, &matrix, changes.len(), &snapshot_path)
}

/// The committed snapshot, which `--check` compares with.
fn read_snapshot(path: &std::path::Path) -> Result<Vec<Line>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("cannot read {}\nhint: write it with `cargo xtask rls matrix --update`", snapshot::FILE)
    })?;
    snapshot::parse(&text)
}

/// On stdout: the matrix (print), or each changed cell with its counterexample (check).
fn print(mode: Mode, matrix: &Matrix, explained: &[(&Change, Option<String>)]) -> Result<()> {
    match mode {
        Mode::Print => {
            snapshot::render(&matrix.lines).lines().filter(|l| !l.starts_with('#')).try_for_each(data)?;
        }
        Mode::Check => {
            for (change, why) in explained {
                data(format!(
                    "{}  {}  {}: {} -> {}",
                    change.object, change.persona, change.operation, change.before, change.after
                ))?;
                if let Some(why) = why {
                    data(format!("    counterexample: {why}"))?;
                }
            }
        }
        Mode::Update => {}
    }
    Ok(())
}

/// The end of a run whose rules hold: a check fails on changed cells, an update writes the
/// snapshot (whole or not at all).
fn conclude(mode: Mode, matrix: &Matrix, changes: usize, snapshot_path: &std::path::Path) -> Result<()> {
    match mode {
        Mode::Check if changes > 0 => bail!(
            "the access matrix differs from {} in {} (listed above)\n\
             hint: review each change; if intended, run `cargo xtask rls matrix --update` and commit the file",
            snapshot::FILE,
            plural(changes, "cell")
        ),
        Mode::Check => status(format!(
            "access matrix matches {}: {} tables, {} personas",
            snapshot::FILE,
            matrix.probed_tables,
            matrix.personas.len()
        )),
        Mode::Update => {
            let partial = snapshot_path.with_extension("txt.partial");
            std::fs::write(&partial, snapshot::render(&matrix.lines))
                .and_then(|()| std::fs::rename(&partial, snapshot_path))
                .with_context(|| format!("cannot write {}", snapshot::FILE))?;
            status(format!("wrote {}: {} lines", snapshot::FILE, matrix.lines.len()));
        }
        Mode::Print => {}
    }
    Ok(())
}

/// Plants, probes and reads everything, inside `tx` (which the caller rolls back).
pub(crate) fn probe(tx: &mut Transaction, tenancy: &Tenancy) -> Result<Matrix> {
    let root_schema = tenancy.root.split('.').next().unwrap_or("public").to_string();
    let mut exposed = vec!["public".to_string()];
    if !exposed.contains(&root_schema) {
        exposed.push(root_schema);
    }
    require_api_roles(tx)?;
    let tables = catalog::tables(tx, &exposed)?;
    if !tables.iter().any(|t| t.name == tenancy.root) {
        bail!("the tenant table {} of {} does not exist", tenancy.root, tenancy::FILE);
    }
    let mut planted = Planted::default();
    for table in &tables {
        for tag in ["a", "b"] {
            planted.plant(tx, table, (tag, tag), &Default::default())?;
        }
    }
    let personas = personas::plant(tx, &tables, &tenancy.root, &mut planted)?;
    let views = catalog::views(tx, &exposed)?;
    let mut names: Vec<String> = tables.iter().filter(|t| t.exposed).map(|t| t.name.clone()).collect();
    names.extend(views.iter().map(|v| v.name.clone()));
    let privileges = inventory::privileges(tx, &names)?;
    let owned = tenancy::ownership(&tenancy.root, &tenancy::edges(tx, &exposed)?);

    let mut probed: Vec<&Table> = tables.iter().filter(|t| t.exposed).collect();
    probed.sort_by(|a, b| a.name.cmp(&b.name));
    let (grid, timings) = probe_grid(tx, &probed, &personas, &planted, &privileges)?;
    let (mut lines, violations) = grid_lines(&probed, &grid, &personas, &owned);
    lines.extend(inventory::columns(tx, &names)?);
    lines.extend(inventory::views(&views, &personas, &privileges));
    lines.extend(inventory::definers(tx, &tables)?);
    let mut findings = inventory::cost(tx, &names)?;
    findings.extend(
        views
            .iter()
            .filter(|v| !v.invoker)
            .map(|v| format!("view: {} bypasses row-level security (no security_invoker)", v.name)),
    );
    let probed_tables = probed.len();
    Ok(Matrix { lines, tables, personas, planted, violations, timings, findings, probed_tables })
}

/// Refuses a database without Supabase's API roles, which the probes run as.
fn require_api_roles(tx: &mut Transaction) -> Result<()> {
    let missing: Vec<String> = tx
        .query(
            "select r from unnest(array['anon', 'authenticated', 'service_role']) r
             where not exists (select 1 from pg_roles where rolname = r)",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the access matrix probes as Supabase's API roles, and this database has no {}\n\
             hint: run it on a Supabase database, or a local one made by `cargo xtask db up`",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Per probed table, per persona, the four operations' tokens.
type Grid = Vec<Vec<Vec<String>>>;

/// Each persona's probe time, with its slowest table.
type Timings = Vec<(String, Duration, String)>;

/// Every probed table as every persona, and each persona's probe time with its slowest
/// table.
fn probe_grid(
    tx: &mut Transaction,
    probed: &[&Table],
    personas: &[Persona],
    planted: &Planted,
    privileges: &inventory::Privileges,
) -> Result<(Grid, Timings)> {
    let mut grid: Grid = vec![Vec::new(); probed.len()];
    let mut timings = Vec::new();
    for persona in personas {
        let started = Instant::now();
        let mut slowest = (Duration::ZERO, String::new());
        probe::enter(tx, persona)?;
        for (i, table) in probed.iter().enumerate() {
            let at = Instant::now();
            let (a, b) = (planted.get(&table.name, "a"), planted.get(&table.name, "b"));
            let (Some(a), Some(b)) = (a, b) else { bail!("no probe rows in {}", table.name) };
            let held = privileges.get(&(persona.role.to_string(), table.name.clone())).copied().unwrap_or_default();
            grid[i].push(probe::table(tx, table, (a, b), held).with_context(|| format!("probing {}", table.name))?);
            if at.elapsed() > slowest.0 {
                slowest = (at.elapsed(), table.name.clone());
            }
        }
        probe::leave(tx)?;
        timings.push((persona.name.clone(), started.elapsed(), slowest.1));
    }
    Ok((grid, timings))
}

/// The grid as snapshot lines, and the broken rules: a probed table without row-level
/// security, and a tenant table a persona reaches where it must not.
fn grid_lines(
    probed: &[&Table],
    grid: &Grid,
    personas: &[Persona],
    owned: &BTreeMap<String, Vec<tenancy::Edge>>,
) -> (Vec<Line>, Vec<String>) {
    let mut lines = Vec::new();
    let mut violations = Vec::new();
    for (table, row) in probed.iter().zip(grid) {
        if !table.rls {
            violations.push(format!("{} is in an exposed schema and has no row-level security", table.name));
        }
        for (persona, tokens) in personas.iter().zip(row) {
            let cells: Vec<(String, String)> =
                probe::OPERATIONS.iter().map(|op| op.to_string()).zip(tokens.iter().cloned()).collect();
            if owned.contains_key(&table.name) {
                violations.extend(rules(&table.name, persona, &cells));
            }
            lines.push(Line { object: table.name.clone(), persona: persona.name.clone(), cells });
        }
    }
    (lines, violations)
}

/// The rules on a tenant table: members reach only their tenant, nobody else reaches any.
fn rules(table: &str, persona: &Persona, cells: &[(String, String)]) -> Vec<String> {
    let forbidden: &[&str] = match persona.kind {
        Kind::Service => &[],
        Kind::Member => &["other", "all"],
        Kind::Anon | Kind::SignedIn | Kind::Suspended => &["own", "other", "all"],
    };
    cells
        .iter()
        .filter(|(_, token)| forbidden.contains(&token.as_str()))
        .map(|(op, token)| {
            let whose = match persona.kind {
                Kind::Member => "another tenant's rows",
                _ => "tenant rows without being a member",
            };
            format!("{table}: {} can {op} {whose} ({token})", persona.name)
        })
        .collect()
}

/// For a cell that now reaches tenant B's rows: B's probe row and the policy that let it
/// through, evaluated on that row with the persona's claims.
fn counterexample(tx: &mut Transaction, matrix: &Matrix, change: &Change) -> Result<Option<String>> {
    if !matches!(change.after.as_str(), "other" | "all") {
        return Ok(None);
    }
    let (Some(table), Some(persona)) = (
        matrix.tables.iter().find(|t| t.name == change.object),
        matrix.personas.iter().find(|p| p.name == change.persona),
    ) else {
        return Ok(None);
    };
    let Some(row) = matrix.planted.get(&table.name, "b") else { return Ok(None) };
    if persona.kind == Kind::Service {
        // service_role bypasses row-level security: it is meant to reach every tenant.
        return Ok(None);
    }
    let key = ["id", table.columns.first().map(|c| c.name.as_str()).unwrap_or("id")]
        .iter()
        .find_map(|k| row.stored.get(*k).map(|v| format!("{k}={v}")))
        .unwrap_or_else(|| row.locator.clone());
    if !table.rls {
        return Ok(Some(format!("tenant B's row {key}: {} has no row-level security", table.name)));
    }
    let (schema, name) = table.name.split_once('.').unwrap_or(("public", &table.name));
    let policies = tx.query(
        "select policyname::text, coalesce(case when $3 = 'INSERT' then with_check end, qual, with_check, 'true')
         from pg_policies where schemaname = $1 and tablename = $2 and permissive = 'PERMISSIVE'
           and cmd in ($3, 'ALL') and roles && array[$4::name, 'public'::name]
         order by 1",
        &[&schema, &name, &change.operation.to_uppercase(), &persona.role],
    )?;
    let (oid, tid) = row.locator.split_once(':').unwrap_or(("0", ""));
    let mut through = Vec::new();
    for policy in &policies {
        let (policy_name, expr): (String, String) = (policy.get(0), policy.get(1));
        let mut sp = tx.transaction()?;
        sp.execute("select set_config('request.jwt.claims', $1, true)", &[&persona.claims])?;
        let sql = format!(
            "select coalesce(({expr})::bool, false) from {} where tableoid = {oid}::oid and ctid = {}::tid",
            table.quoted,
            sql::literal(tid)
        );
        let passed = sp.query_opt(&sql, &[]).ok().flatten().is_some_and(|r| r.get::<_, bool>(0));
        sp.rollback()?;
        if passed {
            through.push(policy_name);
        }
    }
    let why = if through.is_empty() {
        let names: Vec<String> = policies.iter().map(|p| p.get(0)).collect();
        format!("one of the policies {}", names.join(", "))
    } else {
        format!("policy {}", through.join(", "))
    };
    Ok(Some(format!("tenant B's row {key} in {}, let through by {why}", table.name)))
}

/// Each persona's probe time, its slowest table, and the policies' costs.
pub(crate) fn report_cost(matrix: &Matrix) {
    let total: Duration = matrix.timings.iter().map(|t| t.1).sum();
    let mut table = UiTable::new(&[("persona", Align::Left), ("probe", Align::Right), ("slowest table", Align::Left)]);
    for (persona, took, slowest) in &matrix.timings {
        table.row([persona.clone(), format!("{:.0} ms", took.as_secs_f64() * 1e3), slowest.clone()]);
    }
    table.print_status();
    status(format!(
        "probed {} tables x 4 operations x {} personas in {:.2} s",
        matrix.probed_tables,
        matrix.personas.len(),
        total.as_secs_f64()
    ));
    matrix.findings.iter().for_each(warn);
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

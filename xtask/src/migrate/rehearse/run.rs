//! Running one migration file statement by statement on the rehearsal copy, watching what
//! each statement does: its time, the table locks it takes (and how long they are held),
//! the tables it rewrites (their storage file changes), the rows it touches, and the data
//! a down statement destroys.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use anyhow::Result;
use app::guard::{ReadConnection, op};
use postgres::{Client, SimpleQueryMessage};
use serde::Serialize;
use squawk_syntax::ast::{self, AstNode};

use crate::migrate::{
    files::Script,
    lint::{self, script},
};

/// A read-only session on the rehearsal copy that watches the migrating one's locks.
pub(super) type Monitor = ReadConnection<op::Inspect>;

/// What one statement did.
#[derive(Debug, Serialize)]
pub(crate) struct StatementReport {
    pub file: String,
    pub line: usize,
    pub statement: String,
    pub ms: f64,
    pub rows_affected: u64,
    pub locks: Vec<Lock>,
    pub rewrites: Vec<String>,
    /// Values (or rows) a down statement destroys: what, how many.
    pub destroys: Vec<(String, i64)>,
    pub error: Option<String>,
    /// Rules the file acknowledges for this statement.
    #[serde(skip)]
    pub acks: Vec<String>,
}

/// The strongest lock a statement took on one table, and how long it was held.
#[derive(Debug, Serialize, Clone)]
pub(crate) struct Lock {
    pub table: String,
    pub mode: String,
    /// `none`, `writes`, or `reads and writes`: what the lock makes others wait for.
    pub blocks: &'static str,
    pub held_ms: f64,
}

/// Lock modes from weakest to strongest, with what each blocks for ordinary traffic.
const MODES: [(&str, &str); 8] = [
    ("AccessShareLock", "none"),
    ("RowShareLock", "none"),
    ("RowExclusiveLock", "none"),
    ("ShareUpdateExclusiveLock", "schema changes"),
    ("ShareLock", "writes"),
    ("ShareRowExclusiveLock", "writes"),
    ("ExclusiveLock", "writes"),
    ("AccessExclusiveLock", "reads and writes"),
];

fn strength(mode: &str) -> usize {
    MODES.iter().position(|(m, _)| *m == mode).unwrap_or(0)
}

/// Applies one file statement by statement, in one transaction unless the file says
/// otherwise; stops at the first failure (rolled back). `down`: count what drop statements
/// destroy before running them.
pub(super) fn apply(
    client: &mut Client,
    monitor: &mut Option<Monitor>,
    s: &Script,
    down: bool,
) -> Result<Vec<StatementReport>> {
    let parsed = script::parse(&s.sql);
    let in_tx = !s.no_transaction;
    if in_tx {
        client.batch_execute("begin")?;
    }
    let pid: i32 = client.query_one("select pg_backend_pid()", &[])?.get(0);
    let mut file = FileRun {
        client,
        monitor,
        script: s,
        pid,
        in_tx,
        reports: Vec::new(),
        taken: BTreeMap::new(),
        lock_owner: BTreeMap::new(),
    };
    for st in &parsed.statements {
        if !file.statement(st, down)? {
            return Ok(file.reports);
        }
    }
    if in_tx {
        file.commit()?;
    }
    Ok(file.reports)
}

/// One file being applied: the sessions, the reports so far, and the locks its
/// transaction holds.
struct FileRun<'a> {
    client: &'a mut Client,
    monitor: &'a mut Option<Monitor>,
    script: &'a Script,
    /// The migrating session's backend, whose locks are watched.
    pid: i32,
    in_tx: bool,
    reports: Vec<StatementReport>,
    /// Per table, the strongest lock the transaction took and when.
    taken: BTreeMap<String, (String, Instant)>,
    /// Per table, the report (by index) that holds its lock.
    lock_owner: BTreeMap<String, usize>,
}

impl FileRun<'_> {
    /// Runs one statement and keeps its report; `false` when it failed (and the file's
    /// transaction was rolled back).
    fn statement(&mut self, st: &script::Statement, down: bool) -> Result<bool> {
        let s = self.script;
        let destroys = if down { destroyed(self.client, &st.node)? } else { Vec::new() };
        let files_before = relfilenodes(self.client)?;
        let watch = Watch::start(self.monitor, self.pid);
        let started = Instant::now();
        let result = self.client.simple_query(st.text(&s.sql));
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let seen = watch.stop(self.monitor);
        let mut report = StatementReport {
            file: s.file.clone(),
            line: st.line,
            statement: st.summary(&s.sql),
            ms,
            rows_affected: 0,
            locks: Vec::new(),
            rewrites: Vec::new(),
            destroys,
            error: None,
            acks: st.acks.iter().filter(|a| !a.reason.is_empty()).map(|a| a.rule.clone()).collect(),
        };
        match result {
            Ok(messages) => {
                report.rows_affected = messages
                    .iter()
                    .filter_map(|m| if let SimpleQueryMessage::CommandComplete(n) = m { Some(*n) } else { None })
                    .last()
                    .unwrap_or(0);
            }
            Err(err) => {
                report.error = Some(db_message(&err));
                self.reports.push(report);
                if self.in_tx {
                    self.client.batch_execute("rollback")?;
                }
                return Ok(false);
            }
        }
        self.record_locks(&mut report, seen, started)?;
        let files_after = relfilenodes(self.client)?;
        report.rewrites = files_before
            .iter()
            .filter(|(table, node)| files_after.get(*table).is_some_and(|after| after != *node))
            .map(|(table, _)| table.clone())
            .collect();
        self.reports.push(report);
        Ok(true)
    }

    /// The locks held now (inside a transaction, until commit) plus those `seen` while the
    /// statement ran; only what this statement added: earlier statements' locks are theirs.
    fn record_locks(
        &mut self,
        report: &mut StatementReport,
        seen: BTreeMap<String, String>,
        started: Instant,
    ) -> Result<()> {
        let mut locks = seen;
        for (table, mode) in held_locks(self.client, self.pid)? {
            upgrade(&mut locks, table, mode);
        }
        let k = self.reports.len();
        for (table, mode) in locks {
            if self.taken.get(&table).is_some_and(|(m, _)| strength(&mode) <= strength(m)) {
                continue;
            }
            if self.in_tx {
                self.taken.insert(table.clone(), (mode.clone(), started));
                self.lock_owner.insert(table.clone(), k);
            }
            report.locks.push(Lock { blocks: blocks(&mode), table, mode, held_ms: report.ms });
        }
        Ok(())
    }

    /// Commits; a lock taken inside the transaction is held until the commit.
    fn commit(&mut self) -> Result<()> {
        self.client.batch_execute("commit")?;
        let now = Instant::now();
        for (table, (_, since)) in &self.taken {
            if let Some(lock) =
                self.lock_owner.get(table).and_then(|k| self.reports[*k].locks.iter_mut().find(|l| &l.table == table))
            {
                lock.held_ms = now.duration_since(*since).as_secs_f64() * 1000.0;
            }
        }
        Ok(())
    }
}

fn blocks(mode: &str) -> &'static str {
    MODES.iter().find(|(m, _)| *m == mode).map_or("none", |(_, b)| b)
}

fn upgrade(locks: &mut BTreeMap<String, String>, table: String, mode: String) {
    let entry = locks.entry(table).or_insert_with(|| mode.clone());
    if strength(&mode) > strength(entry) {
        *entry = mode;
    }
}

/// The server's message with its severity and detail (`ERROR: ...`), not "db error".
pub(super) fn db_message(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), crate::sql::server_message(err)),
        None => crate::sql::server_message(err),
    }
}

const USER_TABLES: &str = "from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'm') and n.nspname not in ('pg_catalog', 'information_schema', 'app_meta')
      and n.nspname not like 'pg\\_%'";

/// Each user table's storage file: a rewrite gives the table a new one.
fn relfilenodes(client: &mut Client) -> Result<BTreeMap<String, u32>> {
    let rows = client.query(
        &format!("select format('%I.%I', n.nspname, c.relname), pg_relation_filenode(c.oid)::oid {USER_TABLES}"),
        &[],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get::<_, Option<u32>>(1).unwrap_or(0))).collect())
}

/// Exact row counts of every user table.
pub(super) fn row_counts(client: &mut Client) -> Result<BTreeMap<String, i64>> {
    let tables: Vec<String> = client
        .query(&format!("select format('%I.%I', n.nspname, c.relname) {USER_TABLES} and c.relkind = 'r'"), &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut counts = BTreeMap::new();
    for table in tables {
        let n: i64 = client.query_one(&format!("select count(*) from {table}"), &[])?.get(0);
        counts.insert(table, n);
    }
    Ok(counts)
}

/// Relation locks a backend holds on user tables, strongest per table.
fn held_locks(client: &mut impl postgres::GenericClient, pid: i32) -> Result<BTreeMap<String, String>> {
    let rows = client.query(
        "select format('%I.%I', n.nspname, c.relname), l.mode from pg_locks l
         join pg_class c on c.oid = l.relation join pg_namespace n on n.oid = c.relnamespace
         where l.pid = $1 and l.granted and l.locktype = 'relation' and c.relkind in ('r', 'm', 'p')
           and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'",
        &[&pid],
    )?;
    let mut locks = BTreeMap::new();
    for row in rows {
        upgrade(&mut locks, row.get(0), row.get(1));
    }
    Ok(locks)
}

/// Samples the migrating backend's locks from a second session while a statement runs:
/// a statement outside a transaction releases its locks before we could look.
struct Watch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<String, String>>>,
    thread: Option<std::thread::JoinHandle<Monitor>>,
}

impl Watch {
    /// Lends the monitor session to a sampling thread; `stop` gives it back.
    fn start(monitor: &mut Option<Monitor>, pid: i32) -> Watch {
        let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(BTreeMap::new())));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = monitor.take().map(|mut client| {
            std::thread::spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    let locks = client.transaction().ok().and_then(|mut tx| held_locks(&mut tx, pid).ok());
                    if let Some(locks) = locks {
                        let mut seen = seen2.lock().unwrap_or_else(|e| e.into_inner());
                        for (table, mode) in locks {
                            upgrade(&mut seen, table, mode);
                        }
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                client
            })
        });
        Watch { stop, seen, thread }
    }

    fn stop(mut self, monitor: &mut Option<Monitor>) -> BTreeMap<String, String> {
        self.stop.store(true, Ordering::Relaxed);
        *monitor = self.thread.take().and_then(|t| t.join().ok());
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// What a down statement destroys, counted before it runs: rows of dropped tables, non-null
/// values of dropped columns.
fn destroyed(client: &mut Client, node: &ast::Stmt) -> Result<Vec<(String, i64)>> {
    let mut found = Vec::new();
    let exists = |client: &mut Client, table: &str| -> Result<bool> {
        Ok(client.query_one("select to_regclass($1) is not null", &[&table])?.get(0))
    };
    match node {
        ast::Stmt::DropTable(t) => {
            for name in t.table_name_refs() {
                let table = lint::qualified(name.syntax());
                if exists(client, &table)? {
                    let n: i64 = client.query_one(&format!("select count(*) from {table}"), &[])?.get(0);
                    found.push((format!("rows of {table}"), n));
                }
            }
        }
        ast::Stmt::AlterTable(t) => {
            let Some(table) = t.table_relation_name().map(|n| lint::qualified(n.syntax())) else {
                return Ok(found);
            };
            for drop in t.syntax().descendants().filter_map(ast::DropColumn::cast) {
                let Some(column) = drop.column_name_ref().map(|c| c.syntax().text().to_string()) else { continue };
                if exists(client, &table)? {
                    let sql = format!("select count({column}) from {table}");
                    if let Ok(row) = client.query_one(&sql, &[]) {
                        found.push((format!("values of {table}.{column}"), row.get(0)));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(found.into_iter().filter(|(_, n)| *n > 0).collect())
}

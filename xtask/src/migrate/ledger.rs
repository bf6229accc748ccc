//! The ledger (`app_meta.schema_migrations`, and in the Supabase or Prisma layout that
//! tool's too): what it records, how it is read, `migrate status` that shows it, and `migrate
//! resolve` that settles a recorded failure.

use anyhow::{Result, bail};
use app::guard::op;
use postgres::GenericClient;

use super::{confirm, layout, load_files, lock};
use crate::{
    context::{self, status},
    flags::Global,
    ui::{Align, Table},
};

#[derive(Debug)]
pub(super) struct Entry {
    pub version: u64,
    pub name: String,
    /// Empty for migrations only the Supabase CLI's ledger records (it keeps no checksum).
    pub checksum: String,
    pub outcome: Outcome,
    pub applied_at: String,
    pub error: Option<String>,
}

/// What the ledger's `outcome` column records (its check constraint allows these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Applied,
    Failed,
}

impl Outcome {
    fn from_ledger(text: &str) -> Result<Outcome> {
        match text {
            "applied" => Ok(Outcome::Applied),
            "failed" => Ok(Outcome::Failed),
            other => bail!(
                "the ledger records outcome `{other}`, which is neither applied nor failed\nhint: app_meta.schema_migrations was changed by hand; fix that row"
            ),
        }
    }
}

/// Our ledger; in the Supabase layout, with what only the Supabase CLI's ledger records
/// (applied by `supabase db push`) added as applied.
pub(super) fn read_ledger(client: &mut impl GenericClient) -> Result<Vec<Entry>> {
    let mut entries = read_own_ledger(client)?;
    if layout::folder()?.layout == layout::Layout::Supabase {
        for (version, name) in layout::read_cli_ledger(client)? {
            if !entries.iter().any(|e| e.version == version) {
                let applied_at = "(supabase CLI)".to_string();
                let checksum = String::new();
                entries.push(Entry { version, name, checksum, outcome: Outcome::Applied, applied_at, error: None });
            }
        }
        entries.sort_by_key(|e| e.version);
    }
    if layout::folder()?.layout == layout::Layout::Prisma {
        for row in super::prisma::read(client)?.into_iter().filter(|r| !r.rolled_back) {
            let Some(version) = row.version() else { continue };
            if entries.iter().any(|e| e.version == version) {
                continue;
            }
            let (outcome, error) =
                if row.finished { (Outcome::Applied, None) } else { (Outcome::Failed, row.logs.clone()) };
            let name = row.migration_name.split_once('_').map_or("", |(_, n)| n).to_string();
            let applied_at = "(prisma)".to_string();
            entries.push(Entry { version, name, checksum: row.checksum, outcome, applied_at, error });
        }
        entries.sort_by_key(|e| e.version);
    }
    Ok(entries)
}

fn read_own_ledger(client: &mut impl GenericClient) -> Result<Vec<Entry>> {
    let exists: bool = client.query_one("select to_regclass('app_meta.schema_migrations') is not null", &[])?.get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client.query(
        "select version::bigint, name, checksum, outcome, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS'), error
         from app_meta.schema_migrations order by version",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Entry {
                version: r.get::<_, i64>(0) as u64,
                name: r.get(1),
                checksum: r.get(2),
                outcome: Outcome::from_ledger(r.get(3))?,
                applied_at: r.get(4),
                error: r.get(5),
            })
        })
        .collect()
}

pub(super) fn show_status(global: &Global) -> Result<()> {
    let guard = context::guard(global)?;
    let files = load_files()?;
    let ledger = read_ledger(&mut guard.read::<op::Inspect>()?.connect()?.transaction()?)?;
    let mut table = Table::new(&[
        ("version", Align::Left),
        ("name", Align::Left),
        ("state", Align::Left),
        ("applied at", Align::Left),
    ]);
    let mut versions: Vec<u64> = files.iter().map(|m| m.version).chain(ledger.iter().map(|e| e.version)).collect();
    versions.sort();
    versions.dedup();
    let (mut pending, mut problems) = (0, 0);
    for version in versions {
        let file = files.iter().find(|m| m.version == version);
        let entry = ledger.iter().find(|e| e.version == version);
        let name = file.map(|m| m.name.as_str()).or(entry.map(|e| e.name.as_str())).unwrap_or_default();
        let state = match (file, entry) {
            (_, Some(e)) if e.outcome == Outcome::Failed => "failed",
            (None, Some(_)) => "missing",
            (Some(m), Some(e)) if !e.checksum.is_empty() && m.checksum != e.checksum => "modified",
            (Some(_), Some(_)) => "applied",
            (_, None) => "pending",
        };
        pending += usize::from(state == "pending");
        problems += usize::from(!matches!(state, "pending" | "applied"));
        let at = entry.map(|e| e.applied_at.as_str()).unwrap_or("");
        table.row([format!("{version:04}").as_str(), name, state, at]);
    }
    table.print_data()?;
    status(format!("{} on record, {pending} pending", ledger.len()));
    if problems > 0 {
        bail!(
            "{problems} migration(s) modified, missing or failed\nhint: `cargo xtask migrate up` explains what to do"
        );
    }
    Ok(())
}

pub(super) fn resolve(global: &Global, version: u64, applied: bool) -> Result<()> {
    let mut guard = context::guard(global)?;
    if guard.needs_confirmation::<op::Migrate>() {
        confirm(&mut guard, None)?;
    }
    let files = load_files()?;
    let mut conn = guard.write::<op::Migrate>()?.connect()?;
    let client = conn.client();
    lock(client)?;
    let ledger = read_ledger(client)?;
    if !ledger.iter().any(|e| e.version == version && e.outcome == Outcome::Failed) {
        bail!(
            "migration {version:04} has no recorded failure to resolve\nhint: `cargo xtask migrate status` shows the ledger"
        );
    }
    if applied {
        let Some(m) = files.iter().find(|m| m.version == version) else {
            bail!("migration {version:04} has no file to record as applied")
        };
        let mut tx = client.transaction()?;
        tx.execute(
            "update app_meta.schema_migrations set outcome = 'applied', checksum = $2, error = null where version = $1::bigint",
            &[&(version as i64), &m.checksum],
        )?;
        if m.down.is_none() {
            layout::record_in_cli_ledger(&mut tx, m)?;
        }
        tx.commit()?;
        status(format!("migration {version:04} recorded as applied"));
    } else {
        client.execute("delete from app_meta.schema_migrations where version = $1::bigint", &[&(version as i64)])?;
        status(format!("migration {version:04} recorded as rolled back; `migrate up` will apply it again"));
    }
    Ok(())
}

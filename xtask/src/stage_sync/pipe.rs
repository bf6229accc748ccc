//! The COPY pipe: one table streamed from the source's snapshot to the target's transaction,
//! each masked column transformed on the way, by a reader, masking workers and a writer on
//! their own threads. Memory stays flat: a few batches in flight, and the hashes of masked
//! source values for the leak check, spilled to disk past a small buffer (`pipe/leaks.rs`).

mod form;
mod leaks;
mod rows;

use std::io::{BufRead, BufReader, BufWriter, Write};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use postgres::Transaction;

use super::{
    batches,
    binary::{self, Wire},
    catalog::{Table, quote},
    mask::Masker,
    rules::{Rule, TableRules},
};
pub(super) use leaks::{LeakSets, Values};
use rows::Rows;

/// One table to copy: its rules, and for `--clinics` the rows to take.
pub(super) struct Job<'a> {
    pub table: &'a Table,
    pub rules: &'a TableRules,
    /// A `WHERE` expression over alias `t`; `None` copies every row.
    pub filter: Option<&'a str>,
    /// The table written, when it is not the one read (the sync's shadow copy).
    pub into: Option<String>,
    /// The table written was emptied by `TRUNCATE` or made in this transaction, so COPY
    /// may write its rows frozen (not when it was emptied by `DELETE`).
    pub freeze: bool,
}

/// Set to `text` to send every table in COPY's text format (a comparison, or a way around
/// a type the binary check lets through wrongly).
pub(super) const FORMAT_VAR: &str = "XTASK_STAGE_SYNC_FORMAT";

/// What text COPY prints depends on settings a database may override (`alter database ...
/// set datestyle`): the date shifts read ISO dates, and a float must print exactly, or text
/// gives another target than binary. Set once before the first table, on both sides, for
/// their transactions only.
pub(super) fn set_text_format(source: &mut Transaction, target: &mut Transaction) -> Result<()> {
    const SETTINGS: &str = "set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres'; set local extra_float_digits = 1; set local bytea_output = 'hex'";
    source.batch_execute(SETTINGS).context("cannot set the source's COPY settings")?;
    target.batch_execute(SETTINGS).context("cannot set the target's COPY settings")?;
    Ok(())
}

/// How the tables of one sync are copied.
pub(super) struct Settings<'a> {
    pub masker: &'a Masker,
    /// The table's progress bar.
    pub bar: &'a ProgressBar,
    /// Both servers read each other's binary COPY (same major version); a table goes binary
    /// if its types and rules allow it too.
    pub binary: bool,
}

/// Copies one table; returns the rows moved, recording the masked source values in `leaks`.
pub(super) fn copy_table(
    source: &mut Transaction,
    target: &mut Transaction,
    job: Job,
    settings: &Settings,
    leaks: &mut LeakSets,
) -> Result<Copied> {
    let Settings { masker, bar, binary } = *settings;
    let shape = Shape::new(&job);
    let table = job.table;
    let wires = if binary { binary_wires(&job, &shape) } else { None };
    let (format, copy_format) = if wires.is_some() { (" (FORMAT binary)", "binary") } else { ("", "text") };
    let reader = source
        .copy_out(&format!(
            "COPY (SELECT {} FROM {} t WHERE {}) TO STDOUT{format}",
            shape.list,
            table.qualified(),
            job.filter.unwrap_or("true")
        ))
        .with_context(|| format!("cannot read {}", table.key()))?;
    let reader = BufReader::with_capacity(1 << 18, reader);
    // FREEZE: the table was emptied in this transaction, so rows can be written frozen and
    // need no vacuum later. Partitioned tables don't support it.
    let options = match (wires.is_some(), job.freeze && !table.partitioned) {
        (true, false) => " (FORMAT binary)",
        (true, true) => " (FORMAT binary, FREEZE)",
        (false, false) => "",
        (false, true) => " (FREEZE)",
    };
    let writer = target
        .copy_in(&format!(
            "COPY {} ({}) FROM STDIN{options}",
            job.into.clone().unwrap_or_else(|| table.qualified()),
            shape.list
        ))
        .with_context(|| format!("cannot write {}", table.key()))?;
    let mut writer = BufWriter::with_capacity(1 << 18, writer);
    let rows = Rows { job: &job, shape: &shape, masker, wires: wires.as_deref() };
    let rows = stream(reader, &mut writer, &rows, leaks, bar)?;
    let writer =
        writer.into_inner().map_err(|err| anyhow::anyhow!("writing {} failed: {}", table.key(), err.error()))?;
    let written = writer.finish().with_context(|| format!("cannot load {} into the target", table.key()))?;
    if written != rows {
        bail!("{}: read {rows} rows but wrote {written}", table.key());
    }
    Ok(Copied { rows, format: copy_format })
}

/// What one table's copy did.
pub(super) struct Copied {
    pub rows: u64,
    /// `binary` or `text`.
    pub format: &'static str,
}

/// What both formats need of a table: its copied columns, the key that identifies a row
/// for date shifts and jitter, which columns take collision-safe pseudonyms.
struct Shape {
    list: String,
    /// `schema.table.column` of each copied column, as the leak sets name them.
    names: Vec<String>,
    key_fields: Vec<usize>,
    unique: Vec<bool>,
    /// Whether some rule needs the row's key.
    keyed: bool,
}

impl Shape {
    fn new(job: &Job) -> Shape {
        let Job { table, rules, .. } = job;
        let columns: Vec<&str> = rules.columns.iter().map(|(name, _)| name.as_str()).collect();
        Shape {
            list: columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
            names: columns.iter().map(|c| format!("{}.{c}", table.key())).collect(),
            key_fields: table.primary_key.iter().filter_map(|pk| columns.iter().position(|c| c == pk)).collect(),
            unique: columns.iter().map(|c| table.distinct_pseudonyms(c)).collect(),
            keyed: rules.columns.iter().any(|(_, r)| matches!(r, Rule::DateShift(_) | Rule::NumericJitter(_))),
        }
    }
}

/// The binary form of each copied column, when the whole table can go binary: every type
/// portable, every rule applicable to it, and the row key (for shifts and jitter) readable
/// as the text format gives it. Tables without a primary key key their rows by the whole
/// text line, which binary has no form of.
fn binary_wires(job: &Job, shape: &Shape) -> Option<Vec<Wire>> {
    if std::env::var(FORMAT_VAR).is_ok_and(|f| f == "text") {
        return None;
    }
    let wires: Vec<Wire> = job
        .rules
        .columns
        .iter()
        .map(|(name, rule)| {
            let wire = job.table.columns.iter().find(|c| &c.name == name)?.wire?;
            form::supports(wire, rule).then_some(wire)
        })
        .collect::<Option<_>>()?;
    if shape.keyed && (shape.key_fields.is_empty() || !shape.key_fields.iter().all(|&i| wires[i].keys_rows())) {
        return None;
    }
    Some(wires)
}

/// Workers masking batches: masking (HMAC pseudonyms, JSON) is the pipe's own CPU work, and
/// with two workers it keeps up with both servers.
const WORKERS: usize = 2;

/// Streams one table through [`batches`]: the reader frames rows, the workers mask them
/// (each recording the masked source values it saw), and this thread writes them to the
/// target in the order read, so the target's physical order is as with one thread.
fn stream(
    mut reader: impl BufRead + Send,
    writer: &mut impl Write,
    rows: &Rows,
    leaks: &mut LeakSets,
    bar: &ProgressBar,
) -> Result<u64> {
    let binary = rows.wires.is_some();
    if binary {
        binary::read_header(&mut reader)?;
        binary::write_header(writer)?;
    }
    let plain = rows.plain();
    let table = rows.job.table.key();
    let (read, seen) = batches::run(
        reader,
        |reader, batch| rows.read(reader, batch).with_context(|| format!("cannot read {table} from the source")),
        WORKERS,
        LeakSets::default,
        |seen, batch, _| {
            if plain {
                return Ok(batch);
            }
            let mut out = Vec::with_capacity(batch.len() + batch.len() / 4);
            rows.mask(&batch, &mut out, seen).map(|()| out)
        },
        |masked, count| {
            writer.write_all(&masked).with_context(|| format!("cannot load {table} into the target"))?;
            bar.inc(count);
            Ok(())
        },
    )?;
    seen.into_iter().try_for_each(|s| leaks.merge(s))?;
    if binary {
        binary::write_trailer(writer)?;
    }
    Ok(read)
}

//! The COPY pipe: one table streamed from the source's snapshot to the target's transaction,
//! each masked column transformed on the way, by a reader, masking workers and a writer on
//! their own threads. Memory stays flat: a few batches in flight, plus the hashes of masked
//! source values for the leak check.

mod rows;

use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    io::{BufRead, BufReader, BufWriter, Write},
};

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
use rows::Rows;

/// Hashes of the masked values seen in the source, per `table.column` and, inside JSON, per
/// key (`""` for a column's own values and for JSON strings under no key): no target value
/// may hash into them. Nested so that neither recording nor looking up allocates.
#[derive(Default)]
pub struct LeakSets {
    sets: HashMap<String, HashMap<String, HashSet<u64>>>,
    /// For JSON columns, the other side: what the masking wrote under a masked key. The
    /// target stores exactly these strings (json keeps the text, jsonb the strings), so
    /// they are checked here instead of by reading every document back.
    emitted: HashMap<String, HashMap<String, HashSet<u64>>>,
}

impl LeakSets {
    fn insert(&mut self, column: &str, value: &str) {
        add(&mut self.sets, column, "", value);
    }

    /// What the JSON masking reports of one string under a masked key: the source's value
    /// (none for a number or boolean it replaced) and what it wrote.
    fn seen(&mut self, column: &str, key: &str, original: Option<&str>, masked: &str) {
        if let Some(original) = original {
            add(&mut self.sets, column, key, original);
        }
        add(&mut self.emitted, column, key, masked);
    }

    fn merge(&mut self, other: LeakSets) {
        for (mine, theirs) in [(&mut self.sets, other.sets), (&mut self.emitted, other.emitted)] {
            for (column, keys) in theirs {
                let mine = mine.entry(column).or_default();
                for (key, hashes) in keys {
                    mine.entry(key).or_default().extend(hashes);
                }
            }
        }
    }

    /// How many distinct strings the masking wrote into a JSON column that equal a source
    /// value under the same key.
    pub fn emitted_leaks(&self, column: &str) -> usize {
        let Some(keys) = self.emitted.get(column) else { return 0 };
        keys.iter()
            .map(|(key, hashes)| {
                let source = self.sets.get(column).and_then(|k| k.get(key));
                source.map_or(0, |source| hashes.iter().filter(|h| source.contains(h)).count())
            })
            .sum()
    }

    pub fn contains(&self, column: &str, value: &str) -> bool {
        self.sets.get(column).and_then(|keys| keys.get("")).is_some_and(|set| set.contains(&hash(value)))
    }
}

/// Adds `value`'s hash under `column` and `key`, allocating only for a new column or key.
fn add(sets: &mut HashMap<String, HashMap<String, HashSet<u64>>>, column: &str, key: &str, value: &str) {
    let hashed = hash(value);
    if let Some(set) = sets.get_mut(column).and_then(|keys| keys.get_mut(key)) {
        set.insert(hashed);
        return;
    }
    sets.entry(column.to_string()).or_default().entry(key.to_string()).or_default().insert(hashed);
}

fn hash(value: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// One table to copy: its rules, and for `--clinics` the rows to take.
pub struct Job<'a> {
    pub table: &'a Table,
    pub rules: &'a TableRules,
    /// A `WHERE` expression over alias `t`; `None` copies every row.
    pub filter: Option<&'a str>,
}

/// Set to `text` to send every table in COPY's text format (a comparison, or a way around
/// a type the binary check lets through wrongly).
pub const FORMAT_VAR: &str = "XTASK_STAGE_SYNC_FORMAT";

/// What text COPY prints depends on settings a database may override (`alter database ...
/// set datestyle`): the date shifts read ISO dates, and a float must print exactly, or text
/// gives another target than binary. Set once before the first table, on both sides, for
/// their transactions only.
pub fn set_text_format(source: &mut Transaction, target: &mut Transaction) -> Result<()> {
    const SETTINGS: &str = "set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres'; set local extra_float_digits = 1; set local bytea_output = 'hex'";
    source.batch_execute(SETTINGS).context("cannot set the source's COPY settings")?;
    target.batch_execute(SETTINGS).context("cannot set the target's COPY settings")?;
    Ok(())
}

/// Copies one table; returns the rows moved. `binary`: both servers read each other's binary
/// COPY (same major version); the table goes binary if its types and rules allow it too.
pub fn copy_table(
    source: &mut Transaction,
    target: &mut Transaction,
    job: Job,
    masker: &Masker,
    leaks: &mut LeakSets,
    bar: &ProgressBar,
    binary: bool,
) -> Result<Copied> {
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
    let options = match (wires.is_some(), table.partitioned) {
        (true, true) => " (FORMAT binary)",
        (true, false) => " (FORMAT binary, FREEZE)",
        (false, true) => "",
        (false, false) => " (FREEZE)",
    };
    let writer = target
        .copy_in(&format!("COPY {} ({}) FROM STDIN{options}", table.qualified(), shape.list))
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
pub struct Copied {
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
            wire.supports(rule).then_some(wire)
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
    seen.into_iter().for_each(|s| leaks.merge(s));
    if binary {
        binary::write_trailer(writer)?;
    }
    Ok(read)
}

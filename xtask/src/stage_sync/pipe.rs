//! The COPY pipe: one table streamed from the source's snapshot to the target's transaction,
//! line by line, each masked column transformed on the way. Memory stays flat: a line at a
//! time, plus the hashes of masked source values for the leak check.

use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    io::{BufRead, BufReader, BufWriter, Write},
};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use postgres::Transaction;

use super::{
    binary::{self, Wire},
    catalog::{Table, quote},
    mask::{self, Masker},
    rules::{Rule, TableRules},
};

/// Hashes of the masked values seen in the source, per `table.column` (or
/// `table.column->key` inside JSON): no target value may hash into them.
#[derive(Default)]
pub struct LeakSets {
    pub sets: HashMap<String, HashSet<u64>>,
}

impl LeakSets {
    fn insert(&mut self, column: &str, value: &str) {
        self.sets.entry(column.to_string()).or_default().insert(hash(value));
    }

    pub fn contains(&self, column: &str, value: &str) -> bool {
        self.sets.get(column).is_some_and(|set| set.contains(&hash(value)))
    }
}

pub fn hash(value: &str) -> u64 {
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
    const SETTINGS: &str =
        "set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres'; set local extra_float_digits = 1";
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
    let format = if wires.is_some() { " (FORMAT binary)" } else { "" };
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
    let mut copying = Copying { job: &job, shape: &shape, masker, leaks, bar };
    let rows = match wires {
        Some(wires) => copy_binary(reader, &mut writer, &wires, &mut copying)?,
        None => copy_text(reader, &mut writer, &mut copying)?,
    };
    bar.inc(rows % 8192);
    let writer =
        writer.into_inner().map_err(|err| anyhow::anyhow!("writing {} failed: {}", table.key(), err.error()))?;
    let written = writer.finish().with_context(|| format!("cannot load {} into the target", table.key()))?;
    if written != rows {
        bail!("{}: read {rows} rows but wrote {written}", table.key());
    }
    Ok(Copied { rows, format: if format.is_empty() { "text" } else { "binary" } })
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

/// One table's copy under way.
struct Copying<'a> {
    job: &'a Job<'a>,
    shape: &'a Shape,
    masker: &'a Masker,
    leaks: &'a mut LeakSets,
    bar: &'a ProgressBar,
}

/// The text format: a line per row, tab-separated fields, backslash escapes.
fn copy_text(mut reader: impl BufRead, writer: &mut impl Write, cx: &mut Copying) -> Result<u64> {
    let Copying { job, shape, masker, ref mut leaks, bar } = *cx;
    let (table, rules) = (job.table, job.rules);
    let plain = rules.columns.iter().all(|(_, rule)| *rule == Rule::Keep);
    let (key_fields, unique) = (&shape.key_fields, &shape.unique);
    let width = rules.columns.len();
    let (mut line, mut out, mut rows) = (Vec::new(), Vec::new(), 0u64);
    let mut fields: Vec<(usize, usize)> = Vec::with_capacity(width);
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {} from the source", table.key()))?
            == 0
        {
            break;
        }
        rows += 1;
        if rows % 8192 == 0 {
            bar.inc(8192);
        }
        if plain {
            writer.write_all(&line)?;
            continue;
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        fields.clear();
        let mut start = 0;
        for (i, byte) in content.iter().enumerate() {
            if *byte == b'\t' {
                fields.push((start, i));
                start = i + 1;
            }
        }
        fields.push((start, content.len()));
        if fields.len() != width {
            bail!("{}: a row has {} fields, expected {width}", table.key(), fields.len());
        }
        let row_key: Vec<u8> = if key_fields.is_empty() {
            content.to_vec()
        } else {
            key_fields.iter().flat_map(|&i| content[fields[i].0..fields[i].1].iter().copied().chain([0])).collect()
        };
        out.clear();
        for (i, &(from, to)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            let field = &content[from..to];
            let (name, rule) = &rules.columns[i];
            if field == b"\\N" || *rule == Rule::Keep {
                out.extend_from_slice(field);
                continue;
            }
            let at = || format!("{}.{name}", table.key());
            match rule {
                Rule::Keep => unreachable!(),
                Rule::Null => out.extend_from_slice(b"\\N"),
                Rule::Redact(value) => {
                    leaks.insert(&at(), &mask::unescape(field));
                    mask::escape(value, &mut out);
                }
                Rule::Pseudonym(kind) => {
                    let original = mask::unescape(field);
                    leaks.insert(&at(), &original);
                    mask::escape(&masker.pseudonym(*kind, &original, unique[i]), &mut out);
                }
                Rule::DateShift(days) => {
                    let text = String::from_utf8_lossy(field);
                    let shifted = mask::shift_date(&text, masker.day_shift(&row_key, *days))
                        .with_context(|| format!("{}: cannot read the date `{text}`", at()))?;
                    out.extend_from_slice(shifted.as_bytes());
                }
                Rule::NumericJitter(percent) => {
                    let text = String::from_utf8_lossy(field);
                    let moved = mask::jitter_number(&text, masker.jitter(&row_key, name, *percent))
                        .with_context(|| format!("{}: cannot read the number `{text}`", at()))?;
                    out.extend_from_slice(moved.as_bytes());
                }
                Rule::Json(spec) => {
                    let original = mask::unescape(field);
                    let column = at();
                    let masked = masker
                        .json(&original, spec, unique[i], &mut |key, value, _| {
                            leaks.insert(&format!("{column}->{key}"), value)
                        })
                        .with_context(|| format!("{column}: a value is not valid JSON"))?;
                    mask::escape(&masked, &mut out);
                }
                Rule::Elements(kind) => {
                    let original = mask::unescape(field);
                    let column = at();
                    let masked = masker
                        .elements(*kind, &original, &mut |element| leaks.insert(&column, element))
                        .with_context(|| format!("{column}: a value is not an array literal"))?;
                    mask::escape(&masked, &mut out);
                }
            }
        }
        out.push(b'\n');
        writer.write_all(&out)?;
    }
    Ok(rows)
}

/// The binary format: each row its field count, each field its length and bytes. Masked
/// values go through their text form (see [`binary`]), so the results equal the text
/// format's.
fn copy_binary(mut reader: impl BufRead, writer: &mut impl Write, wires: &[Wire], cx: &mut Copying) -> Result<u64> {
    let Copying { job, shape, masker, ref mut leaks, bar } = *cx;
    let (table, rules) = (job.table, job.rules);
    let read_error = || format!("cannot read {} from the source", table.key());
    binary::read_header(&mut reader).with_context(read_error)?;
    binary::write_header(writer)?;
    let (mut row, mut out, mut key, mut rows) = (binary::Row::default(), Vec::new(), Vec::new(), 0u64);
    while row.read(&mut reader).with_context(read_error)? {
        rows += 1;
        if rows % 8192 == 0 {
            bar.inc(8192);
        }
        if row.fields.len() != wires.len() {
            bail!("{}: a row has {} fields, expected {}", table.key(), row.fields.len(), wires.len());
        }
        key.clear();
        if shape.keyed {
            for &i in &shape.key_fields {
                let text = wires[i].to_text(row.field(i).unwrap_or_default())?;
                // As the text format's row key: the field as COPY writes it, escapes included.
                binary::copy_escape(&text, &mut key);
                key.push(0);
            }
        }
        out.clear();
        out.extend_from_slice(&(wires.len() as i16).to_be_bytes());
        for (i, ((name, rule), &wire)) in rules.columns.iter().zip(wires).enumerate() {
            let field = match row.field(i) {
                Some(field) if *rule != Rule::Keep && *rule != Rule::Null => field,
                Some(field) if *rule == Rule::Keep => {
                    out.extend_from_slice(&(field.len() as i32).to_be_bytes());
                    out.extend_from_slice(field);
                    continue;
                }
                _ => {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                    continue;
                }
            };
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            let column = format!("{}.{name}", table.key());
            let masked: Result<()> = (|| match rule {
                Rule::Keep | Rule::Null => unreachable!("handled above"),
                Rule::Redact(value) => {
                    leaks.insert(&column, &wire.to_text(field)?);
                    wire.encode_text(value, &mut out)
                }
                Rule::Pseudonym(kind) => {
                    let original = wire.to_text(field)?;
                    leaks.insert(&column, &original);
                    wire.encode_text(&masker.pseudonym(*kind, &original, shape.unique[i]), &mut out)
                }
                Rule::DateShift(days) => wire.shift_days(field, masker.day_shift(&key, *days), &mut out),
                Rule::NumericJitter(_) if wire == Wire::Numeric && binary::numeric_is_special(field) => {
                    out.extend_from_slice(field);
                    Ok(())
                }
                Rule::NumericJitter(percent) => {
                    let text = wire.to_text(field)?;
                    let moved = mask::jitter_number(&text, masker.jitter(&key, name, *percent))
                        .with_context(|| format!("cannot read the number `{text}`"))?;
                    wire.encode_text(&moved, &mut out)
                }
                Rule::Json(spec) => {
                    let original = wire.to_text(field)?;
                    let masked = masker
                        .json(&original, spec, shape.unique[i], &mut |key, value, _| {
                            leaks.insert(&format!("{column}->{key}"), value)
                        })
                        .context("a value is not valid JSON")?;
                    wire.encode_text(&masked, &mut out)
                }
                Rule::Elements(kind) => binary::map_text_array(field, &mut out, &mut |element| {
                    leaks.insert(&column, element);
                    masker.pseudonym(*kind, element, false)
                }),
            })();
            masked.with_context(|| format!("{column}: cannot mask a value"))?;
            let len = (out.len() - at - 4) as i32;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        writer.write_all(&out)?;
    }
    binary::write_trailer(writer)?;
    Ok(rows)
}

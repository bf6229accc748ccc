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

/// Copies one table; returns the rows moved.
pub fn copy_table(
    source: &mut Transaction,
    target: &mut Transaction,
    job: Job,
    masker: &Masker,
    leaks: &mut LeakSets,
    bar: &ProgressBar,
) -> Result<u64> {
    let Job { table, rules, filter } = job;
    let columns: Vec<&str> = rules.columns.iter().map(|(name, _)| name.as_str()).collect();
    let list = columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let qualified = table.qualified();
    let plain = rules.columns.iter().all(|(_, rule)| *rule == Rule::Keep);
    let key_fields: Vec<usize> =
        table.primary_key.iter().filter_map(|pk| columns.iter().position(|c| c == pk)).collect();
    let unique: Vec<bool> = columns.iter().map(|c| table.distinct_pseudonyms(c)).collect();

    let reader = source
        .copy_out(&format!("COPY (SELECT {list} FROM {qualified} t WHERE {}) TO STDOUT", filter.unwrap_or("true")))
        .with_context(|| format!("cannot read {}", table.key()))?;
    let mut reader = BufReader::with_capacity(1 << 18, reader);
    // FREEZE: the table was emptied in this transaction, so rows can be written frozen and
    // need no vacuum later. Partitioned tables don't support it.
    let freeze = if table.partitioned { "" } else { " (FREEZE)" };
    let writer = target
        .copy_in(&format!("COPY {qualified} ({list}) FROM STDIN{freeze}"))
        .with_context(|| format!("cannot write {}", table.key()))?;
    let mut writer = BufWriter::with_capacity(1 << 18, writer);

    let (mut line, mut out, mut rows) = (Vec::new(), Vec::new(), 0u64);
    let mut fields: Vec<(usize, usize)> = Vec::with_capacity(columns.len());
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
        if fields.len() != columns.len() {
            bail!("{}: a row has {} fields, expected {}", table.key(), fields.len(), columns.len());
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
    bar.inc(rows % 8192);
    let writer =
        writer.into_inner().map_err(|err| anyhow::anyhow!("writing {} failed: {}", table.key(), err.error()))?;
    let written = writer.finish().with_context(|| format!("cannot load {} into the target", table.key()))?;
    if written != rows {
        bail!("{}: read {rows} rows but wrote {written}", table.key());
    }
    Ok(rows)
}

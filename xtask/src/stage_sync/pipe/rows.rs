//! One table's rows as the pipe moves them: how the reader frames a row of either COPY
//! format, and how a worker masks a batch of them. Read-only but for the leak hashes each
//! worker collects, so several workers mask batches of one table at once.

use std::io::BufRead;

use anyhow::{Context, Result, bail};

use super::{
    Job, LeakSets, Shape,
    form::{BinaryForm, Form, TextForm},
};
use crate::stage_sync::{
    binary::{self, Wire},
    mask::{self, Masker},
    rules::Rule,
};

/// What masking one table's rows needs.
pub(super) struct Rows<'a> {
    pub job: &'a Job<'a>,
    pub shape: &'a Shape,
    pub masker: &'a Masker,
    /// The binary form of each column; `None`: the text format.
    pub wires: Option<&'a [Wire]>,
}

impl Rows<'_> {
    /// Whether no column is transformed: batches pass through as they are.
    pub(super) fn plain(&self) -> bool {
        self.job.rules.columns.iter().all(|(_, rule)| *rule == Rule::Keep)
    }

    /// Appends the next row, as the source sent it, to `batch`; `false` at the end.
    pub(super) fn read(&self, reader: &mut impl BufRead, batch: &mut Vec<u8>) -> Result<bool> {
        if self.wires.is_none() {
            return Ok(reader.read_until(b'\n', batch)? > 0);
        }
        let mut word = [0u8; 4];
        reader.read_exact(&mut word[..2])?;
        let count = i16::from_be_bytes([word[0], word[1]]);
        if count == -1 {
            return Ok(false);
        }
        batch.extend_from_slice(&word[..2]);
        for _ in 0..count {
            reader.read_exact(&mut word)?;
            batch.extend_from_slice(&word);
            let len = i32::from_be_bytes(word);
            if len > 0 {
                let start = batch.len();
                batch.resize(start + len as usize, 0);
                reader.read_exact(&mut batch[start..])?;
            }
        }
        Ok(true)
    }

    /// Masks every row of `batch` (whole rows, as [`read`](Self::read) framed them) into `out`,
    /// recording the masked source values in `leaks`.
    pub(super) fn mask(&self, batch: &[u8], out: &mut Vec<u8>, leaks: &mut LeakSets) -> Result<()> {
        match self.wires {
            None => {
                let mut fields = Vec::new();
                for line in batch.split_inclusive(|b| *b == b'\n') {
                    self.mask_text(line, out, leaks, &mut fields)?;
                    out.push(b'\n');
                }
            }
            Some(wires) => {
                let (mut rest, mut row, mut key) = (batch, binary::Row::default(), Vec::new());
                while !rest.is_empty() {
                    row.read(&mut rest)?;
                    self.mask_binary(&row, wires, out, leaks, &mut key)?;
                }
            }
        }
        Ok(())
    }

    /// One text line: tab-separated fields, backslash escapes.
    fn mask_text(
        &self,
        line: &[u8],
        out: &mut Vec<u8>,
        leaks: &mut LeakSets,
        fields: &mut Vec<(usize, usize)>,
    ) -> Result<()> {
        let Rows { job, shape, .. } = *self;
        let (table, rules) = (job.table, job.rules);
        let width = rules.columns.len();
        let content = line.strip_suffix(b"\n").unwrap_or(line);
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
        // The row's key for date shifts and jitter: its key fields as COPY wrote them, or
        // without a key the whole line.
        let row_key: Vec<u8> = if !shape.keyed {
            Vec::new()
        } else if shape.key_fields.is_empty() {
            content.to_vec()
        } else {
            let field = |i: usize| &content[fields[i].0..fields[i].1];
            shape.key_fields.iter().flat_map(|&i| field(i).iter().copied().chain([0])).collect()
        };
        for (i, &(from, to)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            let field = &content[from..to];
            let rule = &rules.columns[i].1;
            // NULL and '' pass through every rule: neither identifies anyone, and GoTrue
            // keeps '' in its token columns, under partial unique indexes.
            if field == b"\\N" || field.is_empty() || *rule == Rule::Keep {
                out.extend_from_slice(field);
            } else if *rule == Rule::Null {
                out.extend_from_slice(b"\\N");
            } else {
                self.apply(&TextForm, Value { column: i, field, row_key: &row_key }, out, leaks)
                    .with_context(|| shape.names[i].clone())?;
            }
        }
        Ok(())
    }

    /// One binary row: the field count, each field its length and bytes. Masked values go
    /// through their text form (see [`binary`]), so the results equal the text format's.
    fn mask_binary(
        &self,
        row: &binary::Row,
        wires: &[Wire],
        out: &mut Vec<u8>,
        leaks: &mut LeakSets,
        key: &mut Vec<u8>,
    ) -> Result<()> {
        let Rows { job, shape, .. } = *self;
        let (table, rules) = (job.table, job.rules);
        if row.fields.len() != wires.len() {
            bail!("{}: a row has {} fields, expected {}", table.key(), row.fields.len(), wires.len());
        }
        key.clear();
        if shape.keyed {
            for &i in &shape.key_fields {
                let text = wires[i].to_text(row.field(i).unwrap_or_default())?;
                // As the text format's row key: the field as COPY writes it, escapes included.
                binary::copy_escape(&text, key);
                key.push(0);
            }
        }
        out.extend_from_slice(&(wires.len() as i16).to_be_bytes());
        for (i, ((_, rule), &wire)) in rules.columns.iter().zip(wires).enumerate() {
            let field = match row.field(i) {
                Some(field) if !field.is_empty() && *rule != Rule::Keep && *rule != Rule::Null => field,
                // As in the text format: '' (a zero-length text value) passes every rule.
                Some(field) if field.is_empty() || *rule == Rule::Keep => {
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
            self.apply(&BinaryForm(wire), Value { column: i, field, row_key: key }, out, leaks)
                .with_context(|| format!("{}: cannot mask a value", shape.names[i]))?;
            let len = (out.len() - at - 4) as i32;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }

    /// The one rule dispatch of both formats: column `i`'s `value.field` (neither NULL nor
    /// empty, its rule neither keep nor null) masked into `out`, its source value recorded in
    /// `leaks`. `row_key` keys date shifts and jitter.
    fn apply(&self, form: &impl Form, value: Value, out: &mut Vec<u8>, leaks: &mut LeakSets) -> Result<()> {
        let Value { column: i, field, row_key } = value;
        let (name, rule) = &self.job.rules.columns[i];
        let (masker, column, unique) = (self.masker, &self.shape.names[i], self.shape.unique[i]);
        match rule {
            Rule::Keep | Rule::Null => unreachable!("passed before the dispatch"),
            Rule::Redact(value) => {
                leaks.insert(column, &form.text(field)?);
                form.put(value, out)
            }
            Rule::Pseudonym(kind) => {
                let original = form.text(field)?;
                leaks.insert(column, &original);
                form.put(&masker.pseudonym(*kind, &original, unique), out)
            }
            Rule::DateShift(days) => form.shift_date(field, masker.day_shift(row_key, *days), out),
            Rule::NumericJitter(percent) => {
                let Some(text) = form.number(field)? else {
                    out.extend_from_slice(field);
                    return Ok(());
                };
                let moved = mask::jitter_number(&text, masker.jitter(row_key, name, *percent))
                    .with_context(|| format!("cannot read the number `{text}`"))?;
                form.put(&moved, out)
            }
            Rule::Json(spec) => {
                let original = form.text(field)?;
                let masked = masker
                    .json(&original, spec, unique, &mut |key, value, masked| leaks.seen(column, key, value, masked))
                    .context("a value is not valid JSON")?;
                form.put(&masked, out)
            }
            Rule::Elements(kind) => {
                form.elements(field, *kind, masker, &mut |element| leaks.insert(column, element), out)
            }
            Rule::Bytes(bytes) => {
                let (value, text) = form.bytea(field)?;
                if !value.is_empty() {
                    leaks.insert(column, &text);
                }
                form.put_bytes(&mask::mask_bytea(*bytes, &value, masker), out);
                Ok(())
            }
        }
    }
}

/// One value of a row as the rule dispatch takes it: its column's index, its bytes in the
/// format's form, and the row's key (which keys date shifts and jitter).
struct Value<'a> {
    column: usize,
    field: &'a [u8],
    row_key: &'a [u8],
}

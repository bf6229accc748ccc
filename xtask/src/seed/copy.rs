//! Writing one table through `COPY ... FROM STDIN (FORMAT binary)`: rows are encoded
//! straight into one reused buffer (no allocation per row or field), which goes to the
//! server a megabyte at a time, so memory stays flat however many rows there are.
//!
//! Binary, not text: the server then skips parsing dates, timestamps and numerics, which
//! more than halves its work per row (measured: 403k production rows into an unindexed
//! table took 1.06 s as text, 0.45 s as binary). The price is that each field's encoding
//! must match its column's type; a mismatch fails the COPY, it never stores wrong data.

use std::{io::Write, time::Instant};

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use postgres::{CopyInWriter, Transaction};

use super::{calendar::Date, random::Uuid};

/// How much encoded data is sent at once.
const CHUNK: usize = 1 << 20;
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// PostgreSQL's epoch, 2000-01-01, in days and seconds since 1970-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_SECONDS: i64 = 946_684_800;

/// One table being loaded. A row is its fields in column order, then [`end`](Self::end).
pub(super) struct TableWriter<'a> {
    writer: CopyInWriter<'a>,
    buf: Vec<u8>,
    columns: i16,
    fields: i16,
    rows: u64,
    unreported: u64,
    bar: ProgressBar,
    started: Instant,
}

/// What loading one table did.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub table: &'static str,
    pub rows: u64,
    pub seconds: f64,
}

impl<'a> TableWriter<'a> {
    /// Starts the COPY. `freeze`: the table was emptied in this transaction, so its rows
    /// can be written frozen (no vacuum or hint-bit writes later).
    pub(super) fn start(
        tx: &'a mut Transaction<'_>,
        table: &'static str,
        columns: &str,
        freeze: bool,
        bar: ProgressBar,
    ) -> Result<TableWriter<'a>> {
        let options = if freeze { "FORMAT binary, FREEZE" } else { "FORMAT binary" };
        let writer = tx
            .copy_in(&format!("COPY {table} ({columns}) FROM STDIN ({options})"))
            .with_context(|| format!("cannot load {table}"))?;
        bar.set_prefix(table);
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        buf.extend_from_slice(HEADER);
        let columns = columns.split(',').count() as i16;
        Ok(TableWriter { writer, buf, columns, fields: 0, rows: 0, unreported: 0, bar, started: Instant::now() })
    }

    pub(super) fn uuid(&mut self, id: &Uuid) -> &mut Self {
        self.field(&id.0)
    }

    pub(super) fn opt_uuid(&mut self, id: Option<&Uuid>) -> &mut Self {
        match id {
            Some(id) => self.uuid(id),
            None => self.null(),
        }
    }

    /// `text`, `varchar` or an enum label.
    pub(super) fn text(&mut self, value: &str) -> &mut Self {
        self.field(value.as_bytes())
    }

    pub(super) fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    /// `jsonb`: a version byte, then the JSON text.
    pub(super) fn jsonb(&mut self, json: &str) -> &mut Self {
        self.begin_field((json.len() + 1) as i32);
        self.buf.push(1);
        self.buf.extend_from_slice(json.as_bytes());
        self
    }

    /// `integer`.
    pub(super) fn int(&mut self, value: i64) -> &mut Self {
        self.field(&(value as i32).to_be_bytes())
    }

    /// A `numeric(_, 2)` from a whole number of hundredths.
    pub(super) fn cents(&mut self, cents: i64) -> &mut Self {
        let (body, len) = numeric(cents);
        self.field(&body[..len])
    }

    pub(super) fn opt_cents(&mut self, cents: Option<i64>) -> &mut Self {
        match cents {
            Some(cents) => self.cents(cents),
            None => self.null(),
        }
    }

    pub(super) fn boolean(&mut self, value: bool) -> &mut Self {
        self.field(&[u8::from(value)])
    }

    pub(super) fn date(&mut self, date: Date) -> &mut Self {
        self.field(&(date.0 - PG_EPOCH_DAYS).to_be_bytes())
    }

    /// A `timestamptz` from seconds since the Unix epoch.
    pub(super) fn timestamp(&mut self, seconds: i64) -> &mut Self {
        self.field(&((seconds - PG_EPOCH_SECONDS) * 1_000_000).to_be_bytes())
    }

    pub(super) fn null(&mut self) -> &mut Self {
        self.begin_field(-1);
        self
    }

    /// Ends the row; sends the buffer when it is full.
    pub(super) fn end(&mut self) -> Result<()> {
        debug_assert_eq!(self.fields, self.columns, "a row of {} has the wrong number of fields", self.bar.prefix());
        self.fields = 0;
        self.rows += 1;
        self.unreported += 1;
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(())
    }

    /// Sends the rest and the trailer and completes the COPY.
    pub(super) fn finish(mut self, table: &'static str) -> Result<Loaded> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.send()?;
        let written = self.writer.finish().with_context(|| format!("cannot load {table}"))?;
        debug_assert_eq!(written, self.rows);
        self.bar.finish();
        Ok(Loaded { table, rows: self.rows, seconds: self.started.elapsed().as_secs_f64() })
    }

    fn send(&mut self) -> Result<()> {
        self.writer.write_all(&self.buf).context("the server stopped accepting rows")?;
        self.buf.clear();
        self.bar.inc(self.unreported);
        self.unreported = 0;
        Ok(())
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.begin_field(bytes.len() as i32);
        self.buf.extend_from_slice(bytes);
        self
    }

    /// A row starts with its field count; a field with its length (-1: NULL).
    fn begin_field(&mut self, len: i32) {
        if self.fields == 0 {
            self.buf.extend_from_slice(&self.columns.to_be_bytes());
        }
        self.fields += 1;
        self.buf.extend_from_slice(&len.to_be_bytes());
    }
}

/// The binary form of a `numeric` with two decimals, from hundredths: digit count, weight
/// (of the first base-10000 group), sign, display scale, then the groups, most significant
/// first, the two decimals forming one group; no leading or trailing zero groups.
fn numeric(cents: i64) -> ([u8; 20], usize) {
    let abs = cents.unsigned_abs();
    let (mut whole, fraction) = (abs / 100, (abs % 100) as u16 * 100);
    let mut groups = [0u16; 6];
    let mut n = 0;
    while whole > 0 {
        groups[n] = (whole % 10_000) as u16;
        whole /= 10_000;
        n += 1;
    }
    groups[..n].reverse();
    let weight = n as i16 - 1;
    if fraction != 0 {
        groups[n] = fraction;
        n += 1;
    }
    while n > 0 && groups[n - 1] == 0 {
        n -= 1;
    }
    let sign: u16 = if cents < 0 { 0x4000 } else { 0 };
    let mut body = [0u8; 20];
    let header = [n as u16, if n == 0 { 0 } else { weight as u16 }, sign, 2];
    for (i, part) in header.iter().chain(&groups[..n]).enumerate() {
        body[2 * i..2 * i + 2].copy_from_slice(&part.to_be_bytes());
    }
    (body, 8 + 2 * n)
}

#[cfg(test)]
mod tests {
    use super::numeric;

    fn groups(cents: i64) -> Vec<i16> {
        let (body, len) = numeric(cents);
        body[..len].chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn numerics_encode_as_postgres_sends_them() {
        assert_eq!(groups(0), [0, 0, 0, 2]);
        assert_eq!(groups(123_456), [2, 0, 0, 2, 1234, 5600]);
        assert_eq!(groups(1_000_000), [1, 1, 0, 2, 1]);
        assert_eq!(groups(1_000_050), [3, 1, 0, 2, 1, 0, 5000]);
        assert_eq!(groups(-5), [1, -1, 0x4000, 2, 500]);
        assert_eq!(groups(9_999_999_999_999), [4, 2, 0, 2, 999, 9999, 9999, 9900]);
        assert_eq!(groups(i64::MAX).len(), 10);
    }
}

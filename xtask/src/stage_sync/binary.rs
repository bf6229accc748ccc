//! COPY's binary format for the pipe: framing, and each portable type's value to and from
//! the text a masking rule reads (the rules themselves are the pipe's, `pipe/rows.rs`).
//!
//! Why: the target's backend is the pipe's bottleneck, and most of its work on text COPY is
//! parsing dates, timestamps, numerics and uuids. Measured on the `large` seed's biggest
//! table (458k rows, uuids, dates, numerics, timestamps) into an emptied table: 1.21 s from
//! text, 0.42 s from binary; the source writes it in half the time too.
//!
//! Binary values carry no type names, only bytes the receiving type must understand, so a
//! table goes binary only when both servers are the same major version and every column's
//! type is portable between two databases ([`Wire`]): built-in types (without the `reg*`
//! types, whose binary form is an oid of this database), enums (sent as their label) and
//! domains over those. Arrays of user types carry their element's oid and stay text, as do
//! extension types. A masking rule runs on the value's text, converted exactly as the
//! server would print it, so a table gives the same pseudonyms, shifts and jitter in either
//! format; rules on types converted here neither way keep their table in text.

use std::io::{BufRead, Read, Write};

use anyhow::{Context, Result, bail};

/// What the pipe knows of a portable column's binary form. `None` in
/// [`Column::wire`](super::catalog::Column::wire): not portable, the table goes as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wire {
    /// text, varchar, char, enum labels: the UTF-8 bytes. Not `name`: its input cuts a
    /// value to 63 bytes where its binary input refuses it, so a masked one goes as text.
    Text,
    Json,
    /// A version byte (1), then the JSON text.
    Jsonb,
    Uuid,
    /// Days since 2000-01-01, `i32`.
    Date,
    /// timestamp and timestamptz: microseconds since 2000-01-01 (UTC), `i64`.
    Timestamp,
    Int2,
    Int4,
    Int8,
    Numeric,
    /// A one-or-more-dimensional array of text-like elements.
    TextArray,
    /// bytea: the bytes themselves.
    Bytea,
    /// Any other portable type: copied as it is, no rule converts it.
    Other,
}

impl Wire {
    /// From the column's type after domains (its oid, and whether it is an enum).
    pub(super) fn from_type(oid: u32, is_enum: bool) -> Wire {
        match oid {
            _ if is_enum => Wire::Text,
            25 | 1043 | 1042 => Wire::Text,
            114 => Wire::Json,
            3802 => Wire::Jsonb,
            2950 => Wire::Uuid,
            1082 => Wire::Date,
            1114 | 1184 => Wire::Timestamp,
            21 => Wire::Int2,
            23 => Wire::Int4,
            20 => Wire::Int8,
            1700 => Wire::Numeric,
            1009 | 1015 | 1014 => Wire::TextArray,
            17 => Wire::Bytea,
            _ => Wire::Other,
        }
    }

    /// Whether a key column of this form can give the row's key as the text format does.
    pub(super) fn keys_rows(self) -> bool {
        matches!(self, Wire::Text | Wire::Uuid | Wire::Int2 | Wire::Int4 | Wire::Int8)
    }

    /// The value as the server prints it in COPY's text format, unescaped.
    pub(super) fn to_text(self, bytes: &[u8]) -> Result<String> {
        let int = |n: usize| -> Result<i64> {
            let b: &[u8] = bytes.get(..n).filter(|_| bytes.len() == n).context("an integer of the wrong size")?;
            Ok(match n {
                2 => i64::from(i16::from_be_bytes([b[0], b[1]])),
                4 => i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                _ => i64::from_be_bytes(b.try_into().expect("8 bytes")),
            })
        };
        Ok(match self {
            Wire::Text | Wire::Json => utf8(bytes)?.to_string(),
            Wire::Jsonb => match bytes.split_first() {
                Some((1, json)) => utf8(json)?.to_string(),
                _ => bail!("a jsonb value of an unknown version"),
            },
            Wire::Uuid => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                if hex.len() != 32 {
                    bail!("a uuid of {} bytes", bytes.len());
                }
                format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
            }
            Wire::Int2 => int(2)?.to_string(),
            Wire::Int4 => int(4)?.to_string(),
            Wire::Int8 => int(8)?.to_string(),
            Wire::Numeric => numeric_to_text(bytes)?,
            Wire::Bytea => bytea_text(bytes),
            Wire::Date | Wire::Timestamp | Wire::TextArray | Wire::Other => bail!("no text form for {self:?}"),
        })
    }

    /// Appends the binary form of `text` (a masked value) to `out`.
    pub(super) fn encode_text(self, text: &str, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Wire::Text | Wire::Json => out.extend_from_slice(text.as_bytes()),
            Wire::Jsonb => {
                out.push(1);
                out.extend_from_slice(text.as_bytes());
            }
            Wire::Uuid => {
                let hex: String = text.chars().filter(|c| *c != '-').collect();
                if hex.len() != 32 {
                    bail!("`{text}` is not a uuid");
                }
                for i in 0..16 {
                    out.push(
                        u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                            .with_context(|| format!("`{text}` is not a uuid"))?,
                    );
                }
            }
            Wire::Int2 | Wire::Int4 | Wire::Int8 => {
                let value: i64 = text.parse().with_context(|| format!("`{text}` is not an integer"))?;
                let range = || format!("{value} is out of range for the column");
                match self {
                    Wire::Int2 => out.extend_from_slice(&i16::try_from(value).with_context(range)?.to_be_bytes()),
                    Wire::Int4 => out.extend_from_slice(&i32::try_from(value).with_context(range)?.to_be_bytes()),
                    _ => out.extend_from_slice(&value.to_be_bytes()),
                }
            }
            Wire::Numeric => text_to_numeric(text, out)?,
            Wire::Date | Wire::Timestamp | Wire::TextArray | Wire::Bytea | Wire::Other => {
                bail!("no text form for {self:?}")
            }
        }
        Ok(())
    }

    /// Shifts a date or timestamp by whole days; infinities stay. The same as shifting the
    /// date in the text form, which keeps the time and the written UTC offset.
    pub(super) fn shift_days(self, bytes: &[u8], days: i64, out: &mut Vec<u8>) -> Result<()> {
        match (self, bytes.len()) {
            (Wire::Date, 4) => {
                let value = i32::from_be_bytes(bytes.try_into().expect("4 bytes"));
                let shifted = match value {
                    i32::MIN | i32::MAX => value,
                    _ => i32::try_from(i64::from(value) + days).context("a shifted date out of range")?,
                };
                out.extend_from_slice(&shifted.to_be_bytes());
            }
            (Wire::Timestamp, 8) => {
                let value = i64::from_be_bytes(bytes.try_into().expect("8 bytes"));
                let shifted = match value {
                    i64::MIN | i64::MAX => value,
                    _ => value.checked_add(days * 86_400_000_000).context("a shifted timestamp out of range")?,
                };
                out.extend_from_slice(&shifted.to_be_bytes());
            }
            _ => bail!("not a date or timestamp"),
        }
        Ok(())
    }
}

/// Appends `text` escaped as COPY's text format writes a field: a backslash before itself,
/// and `\b \f \n \r \t \v` for those control characters.
pub(super) fn copy_escape(text: &str, out: &mut Vec<u8>) {
    for byte in text.bytes() {
        let escaped = match byte {
            b'\\' => b'\\',
            8 => b'b',
            12 => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            11 => b'v',
            other => {
                out.push(other);
                continue;
            }
        };
        out.extend_from_slice(&[b'\\', escaped]);
    }
}

/// Whether a numeric is NaN or an infinity (kept as they are by the jitter).
pub(super) fn numeric_is_special(bytes: &[u8]) -> bool {
    bytes.len() >= 6 && u16::from_be_bytes([bytes[4], bytes[5]]) & 0xC000 == 0xC000
}

/// A numeric's binary form (digit count, weight of the first base-10000 digit, sign,
/// display scale, digits) as `numeric_out` prints it.
fn numeric_to_text(bytes: &[u8]) -> Result<String> {
    let word = |i: usize| -> Result<u16> {
        bytes.get(2 * i..2 * i + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).context("a truncated numeric")
    };
    let (ndigits, weight, sign, dscale) = (word(0)? as usize, word(1)? as i16, word(2)?, word(3)? as usize);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digit = |i: i32| -> Result<u16> { if i < 0 || i as usize >= ndigits { Ok(0) } else { word(4 + i as usize) } };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=i32::from(weight) {
            let d = digit(i)?;
            if i == 0 { out.push_str(&d.to_string()) } else { out.push_str(&format!("{d:04}")) }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut fraction = String::new();
        let mut i = i32::from(weight) + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(i)?));
            i += 1;
        }
        out.push_str(&fraction[..dscale]);
    }
    Ok(out)
}

/// The binary form of a decimal in plain notation (`-12.50`), its scale the digits written.
fn text_to_numeric(text: &str, out: &mut Vec<u8>) -> Result<()> {
    let bad = || format!("`{text}` is not a plain decimal");
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if whole.is_empty() || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        bail!(bad());
    }
    let whole = whole.trim_start_matches('0');
    // Whole digits padded on the left, fraction digits on the right, to groups of four.
    let pad = (4 - whole.len() % 4) % 4;
    let mut digits = "0".repeat(pad) + whole;
    let int_groups = digits.len() / 4;
    digits.push_str(fraction);
    digits.push_str(&"0".repeat((4 - fraction.len() % 4) % 4));
    let mut groups: Vec<u16> =
        digits.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).expect("ascii").parse().expect("digits")).collect();
    let mut weight = int_groups as i32 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let sign: u16 = if negative && !groups.is_empty() { 0x4000 } else { 0 };
    let weight = if groups.is_empty() { 0 } else { i16::try_from(weight).with_context(bad)? as u16 };
    let header = [u16::try_from(groups.len()).with_context(bad)?, weight, sign, fraction.len() as u16];
    for part in header.iter().chain(&groups) {
        out.extend_from_slice(&part.to_be_bytes());
    }
    Ok(())
}

/// Rewrites every non-NULL element of a binary text array through `f`, keeping its shape
/// (dimensions, bounds, element type).
pub(super) fn map_text_array(bytes: &[u8], out: &mut Vec<u8>, f: &mut dyn FnMut(&str) -> String) -> Result<()> {
    let int = |at: usize| -> Result<i32> {
        bytes.get(at..at + 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])).context("a truncated array")
    };
    let ndim = usize::try_from(int(0)?).context("a malformed array")?;
    let header = 12 + 8 * ndim;
    let count: usize = (0..ndim).map(|d| int(12 + 8 * d).map(|n| n.max(0) as usize)).product::<Result<usize>>()?;
    out.extend_from_slice(bytes.get(..header).context("a truncated array")?);
    let mut at = header;
    for _ in 0..if ndim == 0 { 0 } else { count } {
        let len = int(at)?;
        at += 4;
        if len < 0 {
            out.extend_from_slice(&len.to_be_bytes());
            continue;
        }
        let element = bytes.get(at..at + len as usize).context("a truncated array")?;
        at += len as usize;
        let masked = f(utf8(element)?);
        out.extend_from_slice(&(masked.len() as i32).to_be_bytes());
        out.extend_from_slice(masked.as_bytes());
    }
    Ok(())
}

/// bytea as text COPY prints it under `bytea_output = 'hex'`: `\x` and lowercase hex.
pub(super) fn bytea_text(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 + 2 * bytes.len());
    text.push_str("\\x");
    bytes.iter().for_each(|b| text.push_str(&format!("{b:02x}")));
    text
}

/// The bytes of bytea's hex text form.
pub(super) fn bytea_from_text(text: &str) -> Result<Vec<u8>> {
    let hex = text.strip_prefix("\\x").context("a bytea value not in hex form")?;
    if hex.len() % 2 != 0 {
        bail!("a bytea value of odd hex length");
    }
    (0..hex.len() / 2)
        .map(|i| {
            hex.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).context("a bytea value with bad hex")
        })
        .collect()
}

fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).context("a value is not UTF-8")
}

/// The signature, flags and header extension that open every binary COPY stream.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Reads the stream's header; fails on anything but a binary COPY stream.
pub(super) fn read_header(reader: &mut impl Read) -> Result<()> {
    let mut head = [0u8; 19];
    reader.read_exact(&mut head).context("the source sent no COPY header")?;
    if &head[..11] != SIGNATURE {
        bail!("the source's COPY stream is not in binary format");
    }
    let extension = u32::from_be_bytes(head[15..19].try_into().expect("4 bytes"));
    std::io::copy(&mut reader.take(u64::from(extension)), &mut std::io::sink())?;
    Ok(())
}

pub(super) fn write_header(writer: &mut impl Write) -> std::io::Result<()> {
    writer.write_all(SIGNATURE)?;
    writer.write_all(&[0; 8])
}

pub(super) fn write_trailer(writer: &mut impl Write) -> std::io::Result<()> {
    writer.write_all(&(-1i16).to_be_bytes())
}

/// One row read from the stream: its fields' bytes in `data`, `None` for NULL.
#[derive(Default)]
pub(super) struct Row {
    pub data: Vec<u8>,
    pub fields: Vec<Option<(usize, usize)>>,
}

impl Row {
    /// Reads the next row; `false` at the stream's end.
    pub(super) fn read(&mut self, reader: &mut impl BufRead) -> Result<bool> {
        let mut word = [0u8; 4];
        reader.read_exact(&mut word[..2])?;
        let count = i16::from_be_bytes([word[0], word[1]]);
        if count == -1 {
            return Ok(false);
        }
        self.data.clear();
        self.fields.clear();
        for _ in 0..count {
            reader.read_exact(&mut word)?;
            let len = i32::from_be_bytes(word);
            if len < 0 {
                self.fields.push(None);
                continue;
            }
            let start = self.data.len();
            self.data.resize(start + len as usize, 0);
            reader.read_exact(&mut self.data[start..])?;
            self.fields.push(Some((start, start + len as usize)));
        }
        Ok(true)
    }

    pub(super) fn field(&self, i: usize) -> Option<&[u8]> {
        self.fields[i].map(|(from, to)| &self.data[from..to])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        text_to_numeric(text, &mut out).unwrap();
        out
    }

    #[test]
    fn numerics_round_trip_as_numeric_out_prints_them() {
        for text in ["0", "0.00", "12.50", "-12.50", "1234.5678", "10000", "100000000.01", "0.0001", "-0.0500", "7"] {
            assert_eq!(numeric_to_text(&numeric(text)).unwrap(), text, "{text}");
        }
        // What PostgreSQL sends for 1234.56 (numeric_send): 2 digits, weight 0, +, scale 2.
        assert_eq!(numeric("1234.56"), [0, 2, 0, 0, 0, 0, 0, 2, 0x04, 0xd2, 0x15, 0xe0]);
        assert_eq!(numeric("-0.00"), [0, 0, 0, 0, 0, 0, 0, 2], "zero is positive");
        assert!(text_to_numeric("1e5", &mut Vec::new()).is_err());
        assert!(numeric_is_special(&[0, 0, 0, 0, 0xC0, 0, 0, 0]));
    }

    #[test]
    fn uuids_and_integers_convert_both_ways() {
        let mut out = Vec::new();
        Wire::Uuid.encode_text("2c5e6f1a-0000-4000-8000-00000000000f", &mut out).unwrap();
        assert_eq!(Wire::Uuid.to_text(&out).unwrap(), "2c5e6f1a-0000-4000-8000-00000000000f");
        out.clear();
        Wire::Int2.encode_text("-300", &mut out).unwrap();
        assert_eq!(Wire::Int2.to_text(&out).unwrap(), "-300");
        assert!(Wire::Int2.encode_text("40000", &mut Vec::new()).is_err());
    }

    #[test]
    fn dates_shift_by_days_and_infinities_stay() {
        let mut out = Vec::new();
        Wire::Date.shift_days(&9_000i32.to_be_bytes(), -3, &mut out).unwrap();
        assert_eq!(out, 8_997i32.to_be_bytes());
        out.clear();
        Wire::Timestamp.shift_days(&i64::MAX.to_be_bytes(), 5, &mut out).unwrap();
        assert_eq!(out, i64::MAX.to_be_bytes());
    }

    #[test]
    fn arrays_keep_their_shape_and_nulls() {
        // {a,NULL} of text: 1 dimension, has nulls, element type 25, 2 elements from 1.
        let mut array = Vec::new();
        for word in [1i32, 1, 25, 2, 1, 1] {
            array.extend_from_slice(&word.to_be_bytes());
        }
        array.push(b'a');
        array.extend_from_slice(&(-1i32).to_be_bytes());
        let mut out = Vec::new();
        map_text_array(&array, &mut out, &mut |e| format!("<{e}>")).unwrap();
        assert_eq!(&out[..20], &array[..20]);
        assert_eq!(&out[20..27], b"\0\0\0\x03<a>");
        assert_eq!(&out[27..], (-1i32).to_be_bytes());
    }
}

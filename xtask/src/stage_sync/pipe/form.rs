//! A value's form in each COPY format: what the one rule dispatch (`rows.rs`) needs to read
//! a field as text and write its replacement. Text: COPY's escapes; binary: the column's
//! [`Wire`] form, converted exactly as the server prints it, so both give the same values.

use std::borrow::Cow;

use anyhow::{Context, Result};

use crate::stage_sync::{
    binary::{self, Wire},
    mask::{self, Masker},
    rules::{Kind, Rule},
};

/// Reads and writes one non-empty, non-NULL field of a column in one COPY format.
pub(super) trait Form {
    /// The value's text, as the server prints it (unescaped).
    fn text(&self, field: &[u8]) -> Result<String>;

    /// Writes `text` as a value of this form.
    fn put(&self, text: &str, out: &mut Vec<u8>) -> Result<()>;

    /// Writes the date or timestamp shifted by `days`.
    fn shift_date(&self, field: &[u8], days: i64, out: &mut Vec<u8>) -> Result<()>;

    /// The number's text to jitter, or `None` when it passes as it is.
    fn number<'f>(&self, field: &'f [u8]) -> Result<Option<Cow<'f, str>>>;

    /// Writes the text array with each element's pseudonym of `kind`; `seen` gets the
    /// source elements.
    fn elements(
        &self,
        field: &[u8],
        kind: Kind,
        masker: &Masker,
        seen: &mut dyn FnMut(&str),
        out: &mut Vec<u8>,
    ) -> Result<()>;

    /// A bytea value's bytes, and its text form (as the leak sets hold it).
    fn bytea<'f>(&self, field: &'f [u8]) -> Result<(Cow<'f, [u8]>, String)>;

    /// Writes bytes as a bytea value.
    fn put_bytes(&self, bytes: &[u8], out: &mut Vec<u8>);
}

/// Whether `rule` can be applied to a column of this binary form; if not, its table goes
/// as text.
pub(super) fn supports(wire: Wire, rule: &Rule) -> bool {
    use Wire::*;
    match rule {
        Rule::Keep | Rule::Null => true,
        Rule::Redact(_) | Rule::Pseudonym(_) => matches!(wire, Text | Json | Jsonb | Uuid),
        Rule::DateShift(_) => matches!(wire, Date | Timestamp),
        Rule::NumericJitter(_) => matches!(wire, Int2 | Int4 | Int8 | Numeric),
        Rule::Json(_) => matches!(wire, Text | Json | Jsonb),
        Rule::Elements(_) => wire == TextArray,
        Rule::Bytes(_) => wire == Bytea,
    }
}

/// COPY's text format: tab-separated fields with backslash escapes.
pub(super) struct TextForm;

impl Form for TextForm {
    fn text(&self, field: &[u8]) -> Result<String> {
        Ok(mask::unescape(field))
    }

    fn put(&self, text: &str, out: &mut Vec<u8>) -> Result<()> {
        mask::escape(text, out);
        Ok(())
    }

    fn shift_date(&self, field: &[u8], days: i64, out: &mut Vec<u8>) -> Result<()> {
        let text = String::from_utf8_lossy(field);
        let shifted = mask::shift_date(&text, days).with_context(|| format!("cannot read the date `{text}`"))?;
        out.extend_from_slice(shifted.as_bytes());
        Ok(())
    }

    fn number<'f>(&self, field: &'f [u8]) -> Result<Option<Cow<'f, str>>> {
        Ok(Some(String::from_utf8_lossy(field)))
    }

    fn elements(
        &self,
        field: &[u8],
        kind: Kind,
        masker: &Masker,
        seen: &mut dyn FnMut(&str),
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let masked = masker.elements(kind, &mask::unescape(field), seen).context("a value is not an array literal")?;
        mask::escape(&masked, out);
        Ok(())
    }

    fn bytea<'f>(&self, field: &'f [u8]) -> Result<(Cow<'f, [u8]>, String)> {
        let text = mask::unescape(field);
        let bytes = binary::bytea_from_text(&text).context("bytea")?;
        Ok((Cow::Owned(bytes), text))
    }

    fn put_bytes(&self, bytes: &[u8], out: &mut Vec<u8>) {
        mask::escape(&binary::bytea_text(bytes), out);
    }
}

/// COPY's binary format: each field in its type's binary form.
pub(super) struct BinaryForm(pub Wire);

impl Form for BinaryForm {
    fn text(&self, field: &[u8]) -> Result<String> {
        self.0.to_text(field)
    }

    fn put(&self, text: &str, out: &mut Vec<u8>) -> Result<()> {
        self.0.encode_text(text, out)
    }

    fn shift_date(&self, field: &[u8], days: i64, out: &mut Vec<u8>) -> Result<()> {
        self.0.shift_days(field, days, out)
    }

    fn number<'f>(&self, field: &'f [u8]) -> Result<Option<Cow<'f, str>>> {
        // NaN and the infinities pass as they are, as in the text format.
        if self.0 == Wire::Numeric && binary::numeric_is_special(field) {
            return Ok(None);
        }
        Ok(Some(Cow::Owned(self.0.to_text(field)?)))
    }

    fn elements(
        &self,
        field: &[u8],
        kind: Kind,
        masker: &Masker,
        seen: &mut dyn FnMut(&str),
        out: &mut Vec<u8>,
    ) -> Result<()> {
        binary::map_text_array(field, out, &mut |element| masker.element(kind, element, seen))
    }

    fn bytea<'f>(&self, field: &'f [u8]) -> Result<(Cow<'f, [u8]>, String)> {
        Ok((Cow::Borrowed(field), binary::bytea_text(field)))
    }

    fn put_bytes(&self, bytes: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_read_a_value_as_the_same_text() {
        let values = [
            (Wire::Text, "ann\tlee\\"),
            (Wire::Uuid, "0b9f7c1e-5d2a-4c3b-9e8f-1a2b3c4d5e6f"),
            (Wire::Int4, "-42"),
            (Wire::Int8, "9000000000"),
            (Wire::Numeric, "12.50"),
            (Wire::Jsonb, "{\"email\": \"ann@example.com\"}"),
        ];
        for (wire, value) in values {
            let mut text_field = Vec::new();
            TextForm.put(value, &mut text_field).unwrap();
            let mut binary_field = Vec::new();
            BinaryForm(wire).put(value, &mut binary_field).unwrap();
            assert_eq!(TextForm.text(&text_field).unwrap(), value, "{wire:?}");
            assert_eq!(BinaryForm(wire).text(&binary_field).unwrap(), value, "{wire:?}");
            if matches!(wire, Wire::Int4 | Wire::Int8 | Wire::Numeric) {
                let (text, binary) =
                    (TextForm.number(&text_field).unwrap(), BinaryForm(wire).number(&binary_field).unwrap());
                assert_eq!(text, binary, "{wire:?}");
            }
        }
        // bytea: the same bytes and the same text (as the leak sets hold it).
        let (text_bytes, text) = TextForm.bytea(b"\\\\x01ff").unwrap();
        let (binary_bytes, binary_text) = BinaryForm(Wire::Bytea).bytea(&[1, 255]).unwrap();
        assert_eq!((&text_bytes[..], text.as_str()), (&[1u8, 255][..], "\\x01ff"));
        assert_eq!((&binary_bytes[..], binary_text.as_str()), (&[1u8, 255][..], "\\x01ff"));
        // Dates: the same shift, 2000-01-02 being day 1.
        let mut shifted = Vec::new();
        TextForm.shift_date(b"2000-01-02", 3, &mut shifted).unwrap();
        assert_eq!(shifted, b"2000-01-05");
        shifted.clear();
        BinaryForm(Wire::Date).shift_date(&1i32.to_be_bytes(), 3, &mut shifted).unwrap();
        assert_eq!(shifted, 4i32.to_be_bytes());
    }

    #[test]
    fn binary_takes_only_rules_its_forms_convert() {
        let email = Rule::Pseudonym(Kind::Email);
        assert!(supports(Wire::Other, &Rule::Keep) && supports(Wire::Other, &Rule::Null));
        assert!(supports(Wire::Uuid, &email) && !supports(Wire::Date, &email) && !supports(Wire::Other, &email));
        assert!(supports(Wire::Timestamp, &Rule::DateShift(3)) && !supports(Wire::Text, &Rule::DateShift(3)));
        assert!(supports(Wire::Numeric, &Rule::NumericJitter(5.0)) && !supports(Wire::Text, &Rule::NumericJitter(5.0)));
        assert!(
            supports(Wire::TextArray, &Rule::Elements(Kind::Email))
                && !supports(Wire::Text, &Rule::Elements(Kind::Email))
        );
        let bytes = Rule::Bytes(crate::stage_sync::rules::ByteRule::Keyed);
        assert!(supports(Wire::Bytea, &bytes) && !supports(Wire::Text, &bytes));
    }
}

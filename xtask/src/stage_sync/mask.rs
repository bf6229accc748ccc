//! Masking values: pseudonyms from a keyed hash (HMAC-SHA256 under `STAGE_SYNC_KEY`), so
//! the same value gives the same pseudonym in every table and every run, and no pseudonym
//! reveals its input; row-consistent date shifts; numeric jitter; keys inside JSON
//! (`mask/json.rs`). `''` and NULL pass every rule unchanged.

use fake::{
    Fake,
    faker::{
        address::en::{CityName, StreetName},
        company::en::CompanyName,
        lorem::en::Word,
        name::en::{FirstName, LastName},
    },
};
use hmac::{Hmac, Mac};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::Sha256;

use super::rules::{ByteRule, JsonRule, JsonSpec, Kind};
use crate::seed::calendar::Date;

mod json;

/// The smallest key accepted: shorter keys can be guessed.
pub(super) const MIN_KEY_LEN: usize = 16;

pub(super) struct Masker {
    mac: Hmac<Sha256>,
}

impl Masker {
    pub(super) fn new(key: &str) -> Masker {
        Masker { mac: Hmac::new_from_slice(key.as_bytes()).expect("HMAC takes any key length") }
    }

    fn digest(&self, domain: &str, value: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// bytea's `bytes` rule: keyed bytes of `value`'s length, equal for equal values.
    pub(super) fn bytes(&self, value: &[u8]) -> Vec<u8> {
        let mut out = vec![0; value.len()];
        ChaCha8Rng::from_seed(self.digest("bytes", value)).fill_bytes(&mut out);
        out
    }

    /// The pseudonym of `value`. Depends only on the kind and the value, so equal values stay
    /// equal across tables. Every form is one real data never has, so no pseudonym can equal
    /// another person's real value (the leak check relies on it): names, places and companies
    /// carry a short hash tag, phones a non-existent area code, ZIP codes a range the postal
    /// service never assigns. `unique`: the column is under a unique constraint, so kinds
    /// with few possible values get a longer tag that keeps them apart.
    /// `''` stays `''`: it identifies nobody, and one pseudonym shared by every empty
    /// value would break partial unique indexes (GoTrue's tokens) and read as data.
    pub(super) fn pseudonym(&self, kind: Kind, value: &str, unique: bool) -> String {
        if value.is_empty() {
            return String::new();
        }
        let digest = self.digest(kind.name(), value.as_bytes());
        let tag = base32(&digest[..9]);
        let short = &tag[..4];
        let mut rng = ChaCha8Rng::from_seed(digest);
        let plain = match kind {
            // Emails carry 45 bits of the hash: distinct inputs practically never collide,
            // and the uniques check after loading would catch it if they did.
            Kind::Email => {
                let first: String = FirstName().fake_with_rng(&mut rng);
                let last: String = LastName().fake_with_rng(&mut rng);
                return format!("{}.{}.{tag}@example.com", ascii_lower(&first), ascii_lower(&last));
            }
            Kind::Uuid => return uuid_from(&digest),
            Kind::FirstName => format!("{}-{short}", FirstName().fake_with_rng::<String, _>(&mut rng)),
            Kind::LastName => format!("{}-{short}", LastName().fake_with_rng::<String, _>(&mut rng)),
            Kind::FullName => {
                let first: String = FirstName().fake_with_rng(&mut rng);
                let last: String = LastName().fake_with_rng(&mut rng);
                format!("{first} {last}-{short}")
            }
            // Area codes never start with 0: no real number looks like this.
            Kind::Phone => {
                format!("(0{:02}) 555-{:04}", digest[10] % 100, u16::from_le_bytes([digest[11], digest[12]]) % 10_000)
            }
            Kind::StreetAddress => {
                let street: String = StreetName().fake_with_rng(&mut rng);
                format!("{} {street}-{short}", 1 + u32::from(u16::from_le_bytes([digest[12], digest[13]])) % 9899)
            }
            Kind::City => format!("{}-{short}", CityName().fake_with_rng::<String, _>(&mut rng)),
            // 00000-00499 are unassigned ZIP codes.
            Kind::Zip => format!("00{:03}", u16::from_le_bytes([digest[12], digest[13]]) % 500),
            Kind::Company => format!("{}-{short}", CompanyName().fake_with_rng::<String, _>(&mut rng)),
            Kind::Text => similar_text(value.chars().count(), &mut rng),
        };
        if unique { format!("{plain} #{tag}") } else { plain }
    }

    /// A shift in days, the same for every date of one row (identified by `row_key`).
    pub(super) fn day_shift(&self, row_key: &[u8], max_days: u32) -> i64 {
        if max_days == 0 {
            return 0;
        }
        let digest = self.digest("date_shift", row_key);
        let n = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let span = 2 * u64::from(max_days);
        // Never zero: a shift of zero would leave the date as it was.
        let shift = (n % span) as i64 - i64::from(max_days);
        if shift >= 0 { shift + 1 } else { shift }
    }

    /// A factor in [1 - percent/100, 1 + percent/100] for one row and column.
    pub(super) fn jitter(&self, row_key: &[u8], column: &str, percent: f64) -> f64 {
        let mut input = row_key.to_vec();
        input.extend_from_slice(column.as_bytes());
        let digest = self.digest("numeric_jitter", &input);
        let unit = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) as f64 / u64::MAX as f64;
        1.0 + (unit * 2.0 - 1.0) * percent / 100.0
    }

    /// Masks each element of a text array (COPY text form of the array, unescaped).
    pub(super) fn elements(&self, kind: Kind, text: &str, seen: &mut dyn FnMut(&str)) -> Option<String> {
        map_array(text, &mut |element| self.element(kind, element, seen))
    }

    /// One array element's pseudonym; `""` stays `""` and is no source value to look for.
    pub(super) fn element(&self, kind: Kind, element: &str, seen: &mut dyn FnMut(&str)) -> String {
        if element.is_empty() {
            return String::new();
        }
        seen(element);
        self.pseudonym(kind, element, false)
    }
}

/// Rewrites every non-NULL element of a PostgreSQL array literal (`{a,"b c",NULL}`, nested
/// for more dimensions), keeping its shape; `None` when the text is not one.
pub(super) fn map_array(text: &str, f: &mut dyn FnMut(&str) -> String) -> Option<String> {
    let mut out = String::with_capacity(text.len() * 2);
    // Bounds other than 1 come first (`[0:1]={a,b}`), kept as they are.
    let text = match text.strip_prefix('[') {
        Some(_) => {
            let (bounds, rest) = text.split_once('=')?;
            out.push_str(bounds);
            out.push('=');
            rest
        }
        None => text,
    };
    let mut chars = text.chars().peekable();
    if chars.peek() != Some(&'{') {
        return None;
    }
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '{' => {
                depth += 1;
                out.push('{');
            }
            '}' => {
                depth = depth.checked_sub(1)?;
                out.push('}');
            }
            ',' if depth > 0 => out.push(','),
            _ if depth == 0 => return None,
            '"' => {
                let mut element = String::new();
                loop {
                    match chars.next()? {
                        '\\' => element.push(chars.next()?),
                        '"' => break,
                        other => element.push(other),
                    }
                }
                push_quoted(&f(&element), &mut out);
            }
            first => {
                let mut element = String::from(first);
                while let Some(&next) = chars.peek() {
                    if next == ',' || next == '}' {
                        break;
                    }
                    element.push(next);
                    chars.next();
                }
                let element = element.trim();
                if element == "NULL" {
                    out.push_str("NULL");
                } else {
                    push_quoted(&f(element), &mut out);
                }
            }
        }
    }
    (depth == 0).then_some(out)
}

fn push_quoted(value: &str, out: &mut String) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn ascii_lower(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = String::new();
    for &byte in bytes {
        bits = (bits << 8) | u32::from(byte);
        count += 8;
        while count >= 5 {
            count -= 5;
            out.push(ALPHABET[((bits >> count) & 31) as usize] as char);
        }
    }
    out
}

fn uuid_from(digest: &[u8; 32]) -> String {
    let mut b: [u8; 16] = digest[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Lorem words up to about the original length.
fn similar_text(len: usize, rng: &mut ChaCha8Rng) -> String {
    let mut out = String::new();
    while out.len() < len.max(1) {
        let word: &str = Word().fake_with_rng(rng);
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The bytes a bytea rule writes for `bytes`: none, or as many keyed ones; empty stays empty.
pub(super) fn mask_bytea(rule: ByteRule, bytes: &[u8], masker: &Masker) -> Vec<u8> {
    match rule {
        ByteRule::Empty => Vec::new(),
        ByteRule::Keyed => masker.bytes(bytes),
    }
}

/// Shifts a date or timestamp in COPY text form (ISO style) by `days`; infinities stay.
/// Years run past 9999 (`12345-06-07`) and before 1 (`0044-03-15 BC`, the year after
/// `0001-12-31 BC` being 1), as the server prints them and binary COPY shifts them.
pub(super) fn shift_date(text: &str, days: i64) -> Option<String> {
    if text.contains("infinity") || text.len() < 10 {
        return Some(text.to_string());
    }
    let (year, after_year) = text.split_once('-')?;
    let (date, rest) = (after_year.get(..5)?, after_year.get(5..)?);
    let (m, d) = date.split_once('-')?;
    let (bc, rest) = match rest.strip_suffix(" BC") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let year: i32 = year.parse().ok()?;
    // Astronomical years: 1 BC is year 0, 2 BC year -1.
    let year = if bc { 1 - year } else { year };
    let (y, m, d) = Date::from_ymd(year, m.parse().ok()?, d.parse().ok()?).add(i32::try_from(days).ok()?).ymd();
    Some(if y <= 0 { format!("{:04}-{m:02}-{d:02}{rest} BC", 1 - y) } else { format!("{y:04}-{m:02}-{d:02}{rest}") })
}

/// Multiplies a numeric in COPY text form, keeping its number of decimals.
/// NaN and the infinities stay; `None` for a number beyond a float's range, which would
/// come out as `inf`.
pub(super) fn jitter_number(text: &str, factor: f64) -> Option<String> {
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return Some(text.to_string());
    }
    let value: f64 = text.parse().ok()?;
    if !(value * factor).is_finite() {
        return None;
    }
    // A float printed with an exponent (`1.5e-07`) keeps one, or its decimals would round
    // it to zero.
    if text.contains(['e', 'E']) {
        return Some(format!("{:e}", value * factor));
    }
    let decimals = text.split_once('.').map_or(0, |(_, frac)| frac.len());
    Some(format!("{:.*}", decimals, value * factor))
}

/// COPY text format: `\N` is NULL; backslash escapes in values.
pub(super) fn unescape(field: &[u8]) -> String {
    if !field.contains(&b'\\') {
        return String::from_utf8_lossy(field).into_owned();
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 1 < field.len() {
            i += 1;
            out.push(match field[i] {
                b'b' => 8,
                b'f' => 12,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 11,
                other => other,
            });
        } else {
            out.push(field[i]);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn escape(value: &str, out: &mut Vec<u8>) {
    for byte in value.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_keyed_and_stable() {
        let a = Masker::new("key-one-0123456789");
        let b = Masker::new("key-two-0123456789");
        let email = a.pseudonym(Kind::Email, "ann@clinic.com", true);
        assert_eq!(email, a.pseudonym(Kind::Email, "ann@clinic.com", false));
        assert_ne!(email, b.pseudonym(Kind::Email, "ann@clinic.com", true));
        assert!(email.ends_with("@example.com") && !email.contains("ann@"), "{email}");
        let uuid = a.pseudonym(Kind::Uuid, "2c5e6f1a-0000-4000-8000-000000000001", false);
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(a.pseudonym(Kind::City, "Springfield", true).contains(" #"));
    }

    #[test]
    fn shifts_are_row_consistent_and_never_zero() {
        let m = Masker::new("key-one-0123456789");
        for row in 0..200u32 {
            let shift = m.day_shift(&row.to_le_bytes(), 3);
            assert!(shift != 0 && (-3..=3).contains(&shift));
            assert_eq!(shift, m.day_shift(&row.to_le_bytes(), 3));
        }
        assert_eq!(shift_date("2024-02-28", 2).unwrap(), "2024-03-01");
        assert_eq!(shift_date("2024-01-01 10:00:00+00", -1).unwrap(), "2023-12-31 10:00:00+00");
        assert_eq!(shift_date("infinity", 5).unwrap(), "infinity");
        assert_eq!(shift_date("12345-06-07", 30).unwrap(), "12345-07-07");
        assert_eq!(shift_date("200000-01-01 00:00:00.5", -1).unwrap(), "199999-12-31 00:00:00.5");
        assert_eq!(shift_date("0001-12-31 BC", 1).unwrap(), "0001-01-01");
        assert_eq!(shift_date("0001-01-01 00:00:00+00", -1).unwrap(), "0001-12-31 00:00:00+00 BC");
        // 5 BC is a leap year (astronomical -4); 44 BC is not.
        assert_eq!(shift_date("0005-02-28 BC", 1).unwrap(), "0005-02-29 BC");
        assert_eq!(shift_date("0044-02-28 12:00:00 BC", 1).unwrap(), "0044-03-01 12:00:00 BC");
        assert_eq!(jitter_number("100.00", 1.05).unwrap(), "105.00");
        assert_eq!(jitter_number("7", 1.2).unwrap(), "8");
        assert_eq!(jitter_number("NaN", 1.2).unwrap(), "NaN");
        assert_eq!(jitter_number("1.5e-07", 2.0).unwrap(), "3e-7");
        assert_eq!(jitter_number("1e+30", 2.0).unwrap(), "2e30");
        assert!(jitter_number(&format!("1{}", "0".repeat(400)), 1.2).is_none(), "not inf");
    }

    #[test]
    fn copy_escapes_round_trip() {
        let value = "a\tb\\c\nd";
        let mut out = Vec::new();
        escape(value, &mut out);
        assert_eq!(out, b"a\\tb\\\\c\\nd");
        assert_eq!(unescape(&out), value);
    }

    #[test]
    fn json_keys_are_masked_at_any_depth() {
        let m = Masker::new("key-one-0123456789");
        let mut spec = JsonSpec { keys: Default::default(), others: None, allow: Default::default() };
        spec.keys.insert("email".to_string(), JsonRule::Pseudonym(Kind::Email));
        spec.keys.insert("ssn".to_string(), JsonRule::Null);
        let mut seen = Vec::new();
        let out = m
            .json(r#"{"a":[{"email":"x@y.com","ssn":"123"}],"n":1}"#, &spec, false, &mut |k, o, _| {
                seen.push((k.to_string(), o.unwrap_or_default().to_string()))
            })
            .unwrap();
        assert!(!out.contains("x@y.com") && out.contains("\"ssn\":null"), "{out}");
        assert_eq!(seen, [("email".to_string(), "x@y.com".to_string())]);
    }

    #[test]
    fn json_allowlist_masks_every_other_string() {
        let m = Masker::new("key-one-0123456789");
        let spec = JsonSpec {
            keys: Default::default(),
            others: Some(JsonRule::Redact),
            allow: ["status".to_string(), "tags".to_string()].into(),
        };
        let out = m
            .json(
                r#"{"status":"open","owner":{"name":"Ann","status":"x"},"tags":["a","b"],"ids":["s3cret"],"n":7}"#,
                &spec,
                false,
                &mut |_, _, _| {},
            )
            .unwrap();
        // Keys neither allowed nor listed are data too: they become keyed pseudonyms.
        let expected = r#"{"ids":["[redacted]"],"n":7,"owner":{"name":"[redacted]","status":"x"},"status":"open","tags":["a","b"]}"#
            .replace("\"ids\"", &format!("\"{}\"", m.json_key("ids")))
            .replace("\"n\"", &format!("\"{}\"", m.json_key("n")))
            .replace("\"owner\"", &format!("\"{}\"", m.json_key("owner")))
            .replace("\"name\"", &format!("\"{}\"", m.json_key("name")));
        let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
        assert_eq!(parse(&out), parse(&expected), "{out}");
        assert_eq!(m.json(r#""top""#, &spec, false, &mut |_, _, _| {}).unwrap(), r#""[redacted]""#);
    }

    #[test]
    fn arrays_are_masked_element_by_element() {
        let mut n = 0;
        let mut f = |e: &str| {
            n += 1;
            format!("<{e}>")
        };
        assert_eq!(map_array(r#"{a,"b c",NULL,"q\"x"}"#, &mut f).unwrap(), r#"{"<a>","<b c>",NULL,"<q\"x>"}"#);
        assert_eq!(map_array("{{a,b},{c,d}}", &mut f).unwrap(), r#"{{"<a>","<b>"},{"<c>","<d>"}}"#);
        assert_eq!(map_array("{}", &mut f).unwrap(), "{}");
        assert_eq!(map_array("[0:1]={a,b}", &mut f).unwrap(), r#"[0:1]={"<a>","<b>"}"#);
        assert!(map_array("[1:1]", &mut f).is_none());
        assert!(map_array("{a", &mut f).is_none());
        assert_eq!(n, 10);
    }
}

//! What a column's name and sampled values say about it: whether it looks personal, and
//! the rule it most likely needs. `init-rules`, the missing-rule snippet and the rules
//! check use it. Suggestions are a starting point a person reviews, never a verdict.

use super::catalog::{Category, Column};

/// The rule a column most likely needs, by its name and type, as a TOML value.
pub fn suggest(column: &Column) -> String {
    let words = words(&column.name);
    let has = |word: &str| words.iter().any(|w| w == word);
    let quoted = |rule: &str| format!("\"{rule}\"");
    let erase = || quoted(if column.not_null { "redact" } else { "null" });
    // Secrets themselves, not their dates or counts (`token_expires_at` is no secret).
    let secret = ["token", "password", "passwd", "secret", "credential", "credentials"].iter().any(|w| has(w));
    if secret && !matches!(column.category, Category::DateTime | Category::Numeric | Category::Boolean) {
        return if column.category == Category::String || !column.not_null { erase() } else { quoted("keep") };
    }
    // Pictures of people, as links or as bytes (a bytea `picture`).
    if ["photo", "picture", "avatar", "image"].iter().any(|w| has(w))
        && (column.category == Category::String || !column.not_null)
    {
        return erase();
    }
    // A time of day (`birth_time`) has no date to shift: the rules refuse it there.
    let dated = !matches!(column.base_type.as_str(), "time" | "timetz");
    if column.category == Category::DateTime && dated && (has("birth") || has("dob")) {
        return "{ rule = \"date_shift\", days = 30 }".into();
    }
    if column.category == Category::Array && is_text_array(column) {
        return quoted(if has("email") || has("emails") {
            "email"
        } else if looks_personal(&column.name) {
            "text"
        } else {
            "keep"
        });
    }
    if column.category != Category::String {
        return quoted("keep");
    }
    let kind = if has("email") || has("mail") {
        "email"
    } else if has("username") || has("login") || has("handle") || (has("user") && has("name")) {
        "text"
    } else if has("first") && has("name") {
        "first_name"
    } else if has("last") && has("name") {
        "last_name"
    } else if has("phone") || has("mobile") || has("fax") {
        "phone"
    } else if has("street") || has("address") {
        "street_address"
    } else if has("city") {
        "city"
    } else if has("zip") || has("postal") {
        "zip"
    } else if has("name") {
        "full_name"
    } else if has("ip") || has("ssn") {
        return erase();
    } else if names_external_identifier(&words) {
        // Ids of files, sheets and accounts elsewhere lead to the person's data there; a
        // uuid pseudonym keeps equal ids equal and distinct ones distinct.
        "uuid"
    } else if has("note") || has("notes") || has("comment") || has("comments") || has("error") {
        "text"
    } else {
        "keep"
    };
    quoted(kind)
}

/// The rule for a kept text column whose sampled values look identifying.
pub fn suggest_from_values(column: &Column, values: &[String]) -> Option<String> {
    let hit = values.iter().find(|v| value_looks_identifying(v))?;
    let kind = if column.category == Category::Array {
        if value_looks_email(hit) { "email" } else { "text" }
    } else if value_looks_email(hit) {
        "email"
    } else if value_looks_phone(hit) {
        "phone"
    } else {
        "uuid"
    };
    Some(format!("\"{kind}\""))
}

/// Parts of column names that say "a person's data".
const PERSONAL_WORDS: &[&str] = &[
    "email",
    "mail",
    "name",
    "username",
    "phone",
    "mobile",
    "fax",
    "address",
    "street",
    "city",
    "zip",
    "postal",
    "token",
    "password",
    "passwd",
    "secret",
    "credential",
    "ssn",
    "birth",
    "dob",
    "note",
    "notes",
    "ip",
    "comment",
    "comments",
    "photo",
    "picture",
    "avatar",
];

pub fn looks_personal(column: &str) -> bool {
    words(column).iter().any(|w| PERSONAL_WORDS.contains(&w.as_str()))
}

/// A numeric or uuid key (`address_id`, `accountId`): its name alone never makes it
/// personal, whatever words it holds; it points at a row, the row's columns are judged.
pub fn is_key_like(column: &Column) -> bool {
    let numeric_or_uuid = column.category == Category::Numeric || column.base_type == "uuid";
    numeric_or_uuid && words(&column.name).last().is_some_and(|w| w == "id" || w == "key")
}

/// Whether a sampled value looks like an email address or a phone number.
pub fn value_looks_personal(value: &str) -> bool {
    value_looks_email(value) || value_looks_phone(value)
}

/// [`value_looks_personal`], or an identifier of something elsewhere: a long opaque token
/// (API keys, OAuth tokens, Google file and sheet ids) or a link to a resource.
pub fn value_looks_identifying(value: &str) -> bool {
    let value = value.trim();
    let opaque = value.len() >= 16
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~/+=".contains(c))
        && value.chars().any(|c| c.is_ascii_digit())
        && value.chars().any(|c| c.is_ascii_alphabetic())
        && !looks_like_date(value);
    let link = (value.starts_with("https://") || value.starts_with("http://"))
        && value.splitn(4, '/').nth(3).is_some_and(|path| !path.is_empty());
    value_looks_personal(value) || opaque || link
}

fn value_looks_email(value: &str) -> bool {
    value.split_once('@').is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.') && !value.contains(' '))
}

fn value_looks_phone(value: &str) -> bool {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    digits >= 10 && value.chars().all(|c| c.is_ascii_digit() || " +-().x".contains(c))
}

fn looks_like_date(value: &str) -> bool {
    value.len() >= 10 && value.as_bytes()[4] == b'-' && value.as_bytes()[7] == b'-' && value[..4].parse::<u32>().is_ok()
}

/// An id of a resource outside the database: `spreadsheet_id`, `googleAccountId`, `fileKey`.
fn names_external_identifier(words: &[String]) -> bool {
    const RESOURCES: &[&str] = &[
        "spreadsheet",
        "sheet",
        "file",
        "document",
        "doc",
        "drive",
        "folder",
        "account",
        "external",
        "oauth",
        "customer",
    ];
    let id = words.last().is_some_and(|w| matches!(w.as_str(), "id" | "ids" | "key" | "ref" | "url"));
    id && words.iter().any(|w| RESOURCES.contains(&w.as_str()))
}

fn is_text_array(column: &Column) -> bool {
    matches!(column.base_type.as_str(), "_text" | "_varchar" | "_bpchar" | "_citext")
}

/// The words of a column name, lowercase: `snake_case`, `camelCase` and `PascalCase`.
pub fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous: Option<char> = None;
    for c in name.chars() {
        let boundary = !c.is_alphanumeric()
            || (c.is_uppercase() && previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()));
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        }
        previous = Some(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// A column name as a TOML key: bare when it can be, quoted otherwise.
pub fn toml_key(name: &str) -> String {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, category: Category, base: &str) -> Column {
        Column {
            name: name.into(),
            type_name: base.into(),
            not_null: false,
            generated: false,
            category,
            base_type: base.into(),
            wire: None,
        }
    }

    #[test]
    fn names_suggest_rules() {
        let check = |name: &str, category: Category, base: &str, expected: &str| {
            assert_eq!(suggest(&column(name, category, base)), expected, "{name}");
        };
        check("emailAddress", Category::String, "text", "\"email\"");
        check("username", Category::String, "text", "\"text\"");
        check("spreadsheet_id", Category::String, "text", "\"uuid\"");
        check("googleAccountId", Category::String, "varchar", "\"uuid\"");
        check("credentialsJson", Category::String, "text", "\"null\"");
        check("token_expires_at", Category::DateTime, "timestamptz", "\"keep\"");
        check("avatar_url", Category::String, "text", "\"null\"");
        check("photo", Category::String, "text", "\"null\"");
        check("picture", Category::User, "bytea", "\"null\"");
        check("date_of_birth", Category::DateTime, "date", "{ rule = \"date_shift\", days = 30 }");
        check("birth_date", Category::DateTime, "date", "{ rule = \"date_shift\", days = 30 }");
        assert!(!suggest(&column("birth_time", Category::DateTime, "time")).contains("date_shift"));
        check("address_id", Category::Numeric, "int4", "\"keep\"");
        check("emails", Category::Array, "_text", "\"email\"");
        check("tags", Category::Array, "_text", "\"keep\"");
        assert!(
            is_key_like(&column("address_id", Category::Numeric, "int4"))
                && is_key_like(&column("userId", Category::User, "uuid"))
        );
        assert!(
            !is_key_like(&column("phone", Category::Numeric, "int8"))
                && !is_key_like(&column("spreadsheet_id", Category::String, "text"))
        );
        assert_eq!(words("googleAccountID_v2"), ["google", "account", "id", "v2"]);
        assert_eq!(toml_key("emailAddress"), "emailAddress");
        assert_eq!(toml_key("has space"), "\"has space\"");
    }

    #[test]
    fn values_that_identify() {
        assert!(value_looks_personal("ann@clinic.com"));
        assert!(value_looks_personal("(555) 123-4567"));
        assert!(!value_looks_personal("Hygiene production"));
        assert!(!value_looks_personal("2024-01-01"));
        assert!(value_looks_identifying("1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"));
        assert!(value_looks_identifying("ya29.a0AfH6SMBx3kq"));
        assert!(value_looks_identifying("https://lh3.googleusercontent.com/a/photo123"));
        assert!(!value_looks_identifying("https://example.com"));
        assert!(!value_looks_identifying("2024-01-01T10:00:00.000Z"));
        assert!(!value_looks_identifying("D0120 periodic oral evaluation"));
        assert!(!value_looks_identifying("google_sheets"));
    }
}

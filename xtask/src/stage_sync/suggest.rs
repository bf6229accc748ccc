//! What a column's name and sampled values say about it: whether it looks personal, and
//! the rule it most likely needs. `init-rules`, the missing-rule snippet and the rules
//! check use it. Suggestions are a starting point a person reviews, never a verdict.

use super::catalog::{Category, Column};

/// The rule a column most likely needs, by its name and type, as a TOML value.
pub(super) fn suggest(column: &Column) -> String {
    let words = words(&column.name);
    let has = |word: &str| words.iter().any(|w| w == word);
    let quoted = |rule: &str| format!("\"{rule}\"");
    let erase = || quoted(if column.not_null { "redact" } else { "null" });
    // Bytes are content (avatars, documents, keys, certificates): under NOT NULL they are
    // emptied (`redact`), or replaced by keyed bytes where a unique key needs them apart.
    if column.base_type == "bytea" {
        return erase();
    }
    // Network identifiers: an address says where someone was.
    if NETWORK_TYPES.contains(&column.base_type.as_str()) {
        return quoted(if column.not_null { "keep" } else { "null" });
    }
    if names_secret(&words) && !matches!(column.category, Category::DateTime | Category::Numeric | Category::Boolean) {
        return if column.category == Category::String || !column.not_null { erase() } else { quoted("keep") };
    }
    // Pictures of people, as links (an `avatarImageId` is a key to a row, judged there).
    let thing = names_thing(&words);
    let external = names_external_identifier(&words);
    if PICTURES.iter().any(|w| has(w))
        && column.category == Category::String
        && !ends_in_id(&words)
        && !thing
        && !external
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
        } else if looks_personal(&column.name) || (has("list") && (has("allow") || has("deny") || has("block"))) {
            // Allow and block lists hold who may (or may not) see something: emails, domains.
            "text"
        } else {
            "keep"
        });
    }
    if column.category != Category::String {
        return quoted("keep");
    }
    match text_kind(&words) {
        Some("erase") => erase(),
        Some(kind) => quoted(kind),
        None => quoted("keep"),
    }
}

/// `rule` for a column in a unique key or index: `redact` would make every value one, so
/// a pseudonym (`uuid`, or keyed `bytes` on bytea) keeps distinct values distinct.
pub(super) fn for_unique(column: &Column, rule: String) -> String {
    match rule.as_str() {
        "\"redact\"" if column.base_type == "bytea" => "\"bytes\"".into(),
        "\"redact\"" => "\"uuid\"".into(),
        _ => rule,
    }
}

/// The pseudonym kind for a text column by its words (`erase`: no kind fits, the value
/// goes), or `None` to keep it.
fn text_kind(words: &[String]) -> Option<&'static str> {
    let has = |word: &str| words.iter().any(|w| w == word);
    let last = words.last().map_or("", String::as_str);
    if names_thing(words) {
        return None;
    }
    Some(if names_external_identifier(words) {
        // Ids of files, sheets and accounts elsewhere lead to the person's data there; a
        // uuid pseudonym keeps equal ids equal and distinct ones distinct.
        "uuid"
    } else if ends_in_id(words) {
        // A key to another row (`emailId`, `avatarImageId`): that row's columns are judged.
        return None;
    } else if has("ip") || has("ips") || has("ssn") || (has("user") && has("agent")) || has("useragent") {
        "erase"
    } else if has("email") || has("mail") {
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
    } else if FREE_TEXT.iter().any(|w| has(w)) || last == "text" {
        // What people write: about themselves, to others, about others.
        "text"
    } else {
        return None;
    })
}

/// Pictures of people and companies, and content as bytes or files.
const PICTURES: &[&str] = &[
    "photo", "picture", "avatar", "image", "logo", "banner", "favicon", "bytes", "blob", "base64", "file", "filename",
];

/// Words of columns people write into.
const FREE_TEXT: &[&str] = &[
    "note",
    "notes",
    "comment",
    "comments",
    "error",
    "title",
    "subject",
    "message",
    "messages",
    "body",
    "content",
    "description",
    "bio",
    "about",
    "summary",
    "reason",
    "feedback",
    "remarks",
    "details",
    "signature",
    "question",
    "answer",
];

/// Last words that make a name a thing's attribute, not a name (`token_type`, `nameLength`).
const THING_WORDS: &[&str] =
    &["type", "kind", "status", "count", "length", "size", "algorithm", "version", "format", "level"];

/// Things whose `*_name` is no person's (`plan_name`, `fileName` is a file's: judged as one).
const NAMED_THINGS: &[&str] = &[
    "plan",
    "product",
    "job",
    "task",
    "event",
    "step",
    "group",
    "role",
    "tag",
    "category",
    "folder",
    "template",
    "project",
    "table",
    "column",
    "schema",
    "index",
    "field",
    "bucket",
    "queue",
    "feature",
    "package",
    "migration",
];

/// An attribute of a thing (`token_type`, `nameLength`), or a thing's name (`plan_name`).
fn names_thing(words: &[String]) -> bool {
    match words {
        [.., last] if THING_WORDS.contains(&last.as_str()) => true,
        [.., thing, name] => name == "name" && NAMED_THINGS.contains(&thing.as_str()),
        _ => false,
    }
}

/// Types whose values locate a device on a network.
const NETWORK_TYPES: &[&str] = &["inet", "cidr", "macaddr", "macaddr8"];

/// Secrets themselves, not their dates, counts or types (`token_expires_at`, `token_type`):
/// tokens, passwords, keys, signatures, ciphertexts, two-factor codes, configs.
fn names_secret(words: &[String]) -> bool {
    let has = |word: &str| words.iter().any(|w| w == word);
    let last = words.last().map_or("", String::as_str);
    if THING_WORDS.contains(&last) || matches!(last, "at" | "expires" | "expiry" | "enabled" | "id" | "ids") {
        return false;
    }
    let key = last == "key" && !has("public") && !names_external_identifier(words);
    key || SECRET_WORDS.iter().any(|w| has(w)) || (has("backup") && has("codes"))
}

const SECRET_WORDS: &[&str] = &[
    "token",
    "tokens",
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "secrets",
    "credential",
    "credentials",
    "private",
    "ciphertext",
    "encrypted",
    "hash",
    "salt",
    "otp",
    "totp",
    "cert",
    "certificate",
    "config",
    "apikey",
];

fn ends_in_id(words: &[String]) -> bool {
    words.last().is_some_and(|w| w == "id" || w == "ids")
}

/// Whether a column's name (with its type) says "a person's data": text-like columns by
/// their words, other types only when the words fit them (a numeric `phone`, a date of
/// `birth`), never a key (`address_id`) or a flag, count or time (`emailVerified`,
/// `emailQuota`). Network addresses always.
pub(super) fn name_looks_personal(column: &Column) -> bool {
    if NETWORK_TYPES.contains(&column.base_type.as_str()) {
        return true;
    }
    if is_key_like(column) || !looks_personal(&column.name) {
        return false;
    }
    let words = words(&column.name);
    let has = |word: &str| words.iter().any(|w| w == word);
    if names_thing(&words) {
        return false;
    }
    match column.category {
        Category::Boolean => false,
        Category::DateTime => has("birth") || has("dob"),
        Category::Numeric => ["phone", "mobile", "fax", "ssn", "zip", "postal"].iter().any(|w| has(w)),
        Category::String => !ends_in_id(&words) || names_external_identifier(&words),
        _ => true,
    }
}

/// The rule for a kept text column whose sampled values look identifying.
pub(super) fn suggest_from_values(column: &Column, values: &[String]) -> Option<String> {
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
    "logo",
    "recipient",
    "agent",
    "url",
    "domain",
    "domains",
    "identifier",
    "signature",
    "bio",
    "private",
];

pub(super) fn looks_personal(column: &str) -> bool {
    words(column).iter().any(|w| PERSONAL_WORDS.contains(&w.as_str()))
}

/// A numeric or uuid key (`address_id`, `accountId`): its name alone never makes it
/// personal, whatever words it holds; it points at a row, the row's columns are judged.
pub(super) fn is_key_like(column: &Column) -> bool {
    let numeric_or_uuid = column.category == Category::Numeric || column.base_type == "uuid";
    numeric_or_uuid && words(&column.name).last().is_some_and(|w| w == "id" || w == "ids" || w == "key")
}

/// Whether a sampled value looks like an email address or a phone number.
pub(super) fn value_looks_personal(value: &str) -> bool {
    value_looks_email(value) || value_looks_phone(value)
}

/// [`value_looks_personal`], or an identifier of something elsewhere: a long opaque token
/// (API keys, OAuth tokens, Google file and sheet ids) or a link to a resource.
pub(super) fn value_looks_identifying(value: &str) -> bool {
    let value = value.trim();
    let opaque = value.len() >= 16
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~/+=".contains(c))
        && value.chars().any(|c| c.is_ascii_digit())
        && value.chars().any(|c| c.is_ascii_alphabetic())
        && !looks_like_date(value);
    let link = (value.starts_with("https://") || value.starts_with("http://"))
        && value.splitn(4, '/').nth(3).is_some_and(|path| !path.is_empty());
    value_looks_personal(value) || opaque || link || holds_ip_address(value)
}

/// Whether text holds an IP address anywhere (`signin:203.0.113.7`, a rate limit's key).
fn holds_ip_address(value: &str) -> bool {
    let v4 = value.split(|c: char| !c.is_ascii_digit() && c != '.').any(|part| {
        let octets: Vec<&str> = part.split('.').collect();
        octets.len() == 4 && octets.iter().all(|o| !o.is_empty() && o.len() <= 3 && o.parse::<u8>().is_ok())
    });
    let v6 = value.split(|c: char| !c.is_ascii_hexdigit() && c != ':').any(|part| {
        let hex = part.chars().any(|c| c.is_ascii_alphabetic());
        (part.contains("::") && part.len() > 2 && hex) || part.matches(':').count() >= 5
    });
    v4 || v6
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
        "client",
        "credential",
        "stripe",
        "subscription",
        "contact",
    ];
    let id = words.last().is_some_and(|w| matches!(w.as_str(), "id" | "ids" | "key" | "ref" | "url"));
    id && words.iter().any(|w| RESOURCES.contains(&w.as_str()))
}

fn is_text_array(column: &Column) -> bool {
    matches!(column.base_type.as_str(), "_text" | "_varchar" | "_bpchar" | "_citext")
}

/// The words of a column name, lowercase: `snake_case`, `camelCase` and `PascalCase`.
pub(super) fn words(name: &str) -> Vec<String> {
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
pub(super) fn toml_key(name: &str) -> String {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests;

//! The generated schema's rows: one `INSERT ... SELECT ... generate_series` per table, in the
//! server, so that a million rows take seconds to set up. Deterministic: ids are md5-based
//! cuid look-alikes of the row's number, and a foreign key is the id of a parent's number,
//! so the same `rows` give the same data.
//!
//! What each table holds is data ([`FILLS`]): its share of the rows and its `SELECT` list
//! over `generate_series`'s `i`, with a few placeholders for what repeats: `{id}` (this
//! table's id of row `i`), `{id T}` (table `T`'s id of row `i`), `{id T: expr}` (of row
//! `expr`), `{of T}` (a parent in `T`, spread evenly), `{at expr}` (`expr` minutes into
//! 2024), `{first}` and `{last}` (names); `#T` is table `T`'s row count.

use super::{TABLES, foreign_keys};

/// The statements that create and fill the schema with about `rows` rows: tables, one
/// `INSERT ... SELECT ... generate_series` per table, then the foreign keys (one validating
/// join each, instead of a lookup per row) and `ANALYZE`.
pub fn populated(rows: u64) -> Vec<String> {
    let mut sql = vec![TABLES.to_string()];
    sql.extend(FILLS.iter().map(|fill| fill.insert(rows)));
    sql.push(foreign_keys());
    sql.push("ANALYZE".to_string());
    sql
}

/// One table's rows.
struct Fill {
    table: &'static str,
    size: Size,
    columns: &'static [&'static str],
    /// The `SELECT` list, with the placeholders of the module's header.
    values: &'static str,
}

/// How many rows a table gets.
#[derive(Clone, Copy)]
enum Size {
    /// Its share per million of the rows asked for (at least 3): a few big tables, many
    /// small ones, as an application's are.
    PerMillion(u64),
    /// The same whatever the rows asked for.
    Fixed(u64),
}

/// Every table in the order filled: parents before the rows that name them.
const FILLS: &[Fill] = &[
    Fill {
        table: "_prisma_migrations",
        size: Size::Fixed(12),
        columns: &["id", "checksum", "finished_at", "migration_name", "applied_steps_count"],
        values: "substr(md5('migration' || i), 1, 36), md5('checksum' || i), {at i * 1440}, \
            lpad(i::text, 14, '2024010100') || '_step_' || i, 1",
    },
    Fill {
        table: "User",
        size: Size::PerMillion(5_000),
        columns: &["id", "email", "name", "phone", "emailVerified", "image", "createdAt", "updatedAt"],
        values: "{id}, lower({first}) || '.' || lower({last}) || i || '@gmail.com', \
            {first} || ' ' || {last}, '+1 415 555 ' || lpad((i % 10000)::text, 4, \
            '0'), case when i % 3 > 0 then {at i * 7} end, \
            'https://avatars.example.com/u/' || i || '.png', {at i * 5}, {at i * 7}",
    },
    Fill {
        table: "Account",
        size: Size::PerMillion(5_000),
        columns: &[
            "id",
            "userId",
            "type",
            "provider",
            "providerAccountId",
            "refresh_token",
            "access_token",
            "expires_at",
            "token_type",
            "scope",
        ],
        values: "{id}, {of User}, 'oauth', case when i % 2 = 0 then 'google' else 'github' end, \
            (100000000 + i)::text, md5('refresh' || i), \
            'ya29.' || md5('access' || i), 1700000000 + i, 'Bearer', \
            'openid email profile'",
    },
    Fill {
        table: "Session",
        size: Size::PerMillion(5_000),
        columns: &["id", "sessionToken", "userId", "expires"],
        values: "{id}, md5('session' || i), {of User}, {at i * 3}",
    },
    Fill {
        table: "VerificationToken",
        size: Size::PerMillion(500),
        columns: &["identifier", "token", "expires"],
        values: "'user' || i || '@gmail.com', md5('verify' || i), {at i}",
    },
    Fill {
        table: "Organization",
        size: Size::PerMillion(500),
        columns: &["id", "name", "slug", "plan", "updatedAt"],
        values: "{id}, {last} || ' Dental ' || i, 'org-' || i, (array['free','pro','team'])[1 + i % 3], {at i * 60}",
    },
    Fill {
        table: "Membership",
        size: Size::PerMillion(5_000),
        columns: &["id", "userId", "organizationId", "role"],
        values: "{id}, {id User}, {of Organization}, (array['OWNER','ADMIN','MEMBER','MEMBER'])[1 + i % 4]::\"Role\"",
    },
    Fill {
        table: "Patient",
        size: Size::PerMillion(60_000),
        columns: &[
            "id",
            "organizationId",
            "firstName",
            "lastName",
            "email",
            "phone",
            "dateOfBirth",
            "notes",
            "updatedAt",
        ],
        values: "{id}, {of Organization}, {first}, {last}, \
            case when i % 4 > 0 then 'patient' || i || '@outlook.com' end, \
            '(212) 555-' || lpad((i % 10000)::text, 4, '0'), \
            timestamp '1950-01-01' + (i % 20000) * interval '1 day', \
            case when i % 5 = 0 then 'Prefers morning visits; allergic to latex' end, \
            {at i}",
    },
    Fill {
        table: "Appointment",
        size: Size::PerMillion(250_000),
        columns: &[
            "id",
            "organizationId",
            "patientId",
            "providerId",
            "startsAt",
            "endsAt",
            "status",
            "reason",
            "updatedAt",
        ],
        values: "{id}, {of Organization}, {of Patient}, {of User}, {at i * 2}, {at i * 2 + 45}, \
            (array['scheduled','completed','cancelled','no_show'])[1 + i % 4], \
            (array['cleaning','checkup','filling','crown',null])[1 + i % 5], {at i * 2}",
    },
    Fill {
        table: "Invoice",
        size: Size::PerMillion(100_000),
        columns: &["id", "organizationId", "patientId", "number", "total", "paid", "dueAt", "updatedAt"],
        values: "{id}, {of Organization}, {of Patient}, i / #Organization + 1, \
            round((50 + (i % 997) * 1.37)::numeric, 2), i % 3 > 0, {at i * 4 + 43200}, {at i * 4}",
    },
    Fill {
        table: "InvoiceItem",
        size: Size::PerMillion(200_000),
        columns: &["id", "invoiceId", "productId", "description", "quantity", "unitPrice"],
        values: "{id}, {of Invoice}, case when i % 4 > 0 then {of Product} end, \
            (array['Prophylaxis','Bitewing X-ray','Composite filling','Fluoride'])[1 + i % 4], \
            1 + i % 3, round((20 + (i % 311) * 0.9)::numeric, 2)",
    },
    Fill {
        table: "Payment",
        size: Size::PerMillion(50_000),
        columns: &["id", "invoiceId", "amount", "method", "paidAt"],
        values: "{id}, {of Invoice}, round((50 + (i % 997) * 1.37)::numeric, 2), \
            (array['card','cash','insurance'])[1 + i % 3], {at i * 9}",
    },
    Fill {
        table: "Product",
        size: Size::PerMillion(2_000),
        columns: &["id", "organizationId", "title", "sku", "price", "active"],
        values: "{id}, {of Organization}, 'Product ' || i, 'SKU-' || lpad(i::text, 6, '0'), \
            round((5 + (i % 200) * 2.5)::numeric, 2), i % 10 > 0",
    },
    Fill { table: "Tag", size: Size::Fixed(40), columns: &["id", "label"], values: "{id}, 'tag-' || i" },
    Fill {
        table: "PatientTag",
        size: Size::PerMillion(20_000),
        columns: &["id", "patientId", "tagId"],
        values: "{id}, {of Patient}, {id Tag: 1 + (i / #Patient) % #Tag}",
    },
    Fill {
        table: "Note",
        size: Size::PerMillion(15_000),
        columns: &["id", "patientId", "authorId", "body", "updatedAt"],
        values: "{id}, {of Patient}, {of User}, \
            'Discussed treatment plan with ' || {first} || '; follow up in ' || (1 + i % 12) || ' months', \
            {at i * 11}",
    },
    Fill {
        table: "AuditLog",
        size: Size::PerMillion(300_000),
        columns: &["id", "userId", "action", "entity", "metadata", "createdAt"],
        values: "{id}, case when i % 20 > 0 then {of User} end, \
            (array['create','update','delete','login'])[1 + i % 4], \
            (array['Patient','Appointment','Invoice'])[1 + i % 3], \
            jsonb_build_object('ip', \
            '10.' || (i % 250) || '.' || (i % 199) || '.' || (i % 97), \
            'userAgent', 'Mozilla/5.0 (Macintosh)', 'changes', \
            jsonb_build_object('field', 'status', 'count', i % 7)), {at i}",
    },
    Fill {
        table: "Notification",
        size: Size::PerMillion(10_000),
        columns: &["id", "userId", "title", "read"],
        values: "{id}, {of User}, (array['Appointment reminder','Invoice paid','New message'])[1 + i % 3], i % 2 = 0",
    },
    Fill {
        table: "Setting",
        size: Size::PerMillion(500),
        columns: &["id", "organizationId", "key", "value"],
        values: "{id}, {id Organization}, 'preferences', \
            jsonb_build_object('theme', (array['light','dark'])[1 + i % 2], 'locale', 'en-US')",
    },
    Fill {
        table: "ApiKey",
        size: Size::PerMillion(500),
        columns: &["id", "organizationId", "label", "hashedKey", "lastUsedAt"],
        values: "{id}, {id Organization}, 'Default', md5('apikey' || i), {at i * 13}",
    },
    Fill {
        table: "Webhook",
        size: Size::PerMillion(500),
        columns: &["id", "organizationId", "url", "secret", "active"],
        values: "{id}, {id Organization}, 'https://hooks.example.com/org/' || i, 'whsec_' || md5('webhook' || i), \
            i % 4 > 0",
    },
    Fill {
        table: "File",
        size: Size::PerMillion(5_000),
        columns: &["id", "organizationId", "uploadedById", "fileName", "mimeType", "size"],
        values: "{id}, {of Organization}, {of User}, 'xray-' || i || '.png', 'image/png', 10000 + i % 90000",
    },
    Fill {
        table: "Invite",
        size: Size::PerMillion(1_000),
        columns: &["id", "organizationId", "email", "token", "expiresAt"],
        values: "{id}, {of Organization}, 'invitee' || i || '@yahoo.com', md5('invite' || i), {at i * 17}",
    },
];

/// The names `{first}` and `{last}` draw from, by the row's number.
const FIRST: &str = "(array['Ada','Ben','Chloe','Dmitri','Elena','Farid','Grace','Hiro','Ines','Jonas'])[1 + i % 10]";
const LAST: &str = "(array['Okafor','Lindqvist','Moreau','Tanaka','Silva','Novak','Byrne','Khan','Weber','Rossi']) \
    [1 + (i / 10) % 10]";

impl Fill {
    /// The table's `INSERT ... SELECT ... FROM generate_series(1, count) i`.
    fn insert(&self, rows: u64) -> String {
        let columns = crate::sql::idents(self.columns);
        let values = expand(&counts(self.values, rows), self.table, rows);
        format!(
            "INSERT INTO {} ({columns}) SELECT {values} FROM generate_series(1, {}) i",
            crate::sql::ident(self.table),
            self.size.count(rows)
        )
    }
}

impl Size {
    fn count(self, rows: u64) -> u64 {
        match self {
            Size::PerMillion(share) => (rows * share / 1_000_000).max(3),
            Size::Fixed(count) => count,
        }
    }
}

/// Table `table`'s row count for `rows` in all.
fn count_of(table: &str, rows: u64) -> u64 {
    let fill = FILLS.iter().find(|fill| fill.table == table);
    fill.expect("a placeholder names a table of FILLS (the unit test renders them all)").size.count(rows)
}

/// `#T` replaced by table `T`'s row count.
fn counts(values: &str, rows: u64) -> String {
    let mut out = String::with_capacity(values.len());
    let mut rest = values;
    while let Some(at) = rest.find('#') {
        out.push_str(&rest[..at]);
        let name_len = rest[at + 1..].find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len() - at - 1);
        out.push_str(&count_of(&rest[at + 1..at + 1 + name_len], rows).to_string());
        rest = &rest[at + 1 + name_len..];
    }
    out.push_str(rest);
    out
}

/// Every `{...}` placeholder of `values`, a `SELECT` list of table `table`, expanded.
fn expand(values: &str, table: &str, rows: u64) -> String {
    let mut out = String::with_capacity(values.len() * 2);
    let mut rest = values;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("a placeholder is closed (the unit test renders them all)");
        out.push_str(&placeholder(&rest[open + 1..close], table, rows));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// One placeholder's SQL (see the module's header).
fn placeholder(spec: &str, table: &str, rows: u64) -> String {
    let id = |table: &str, i: &str| format!("'c' || substr(md5('{table}' || ({i})), 1, 24)");
    match spec.split_once(' ') {
        None if spec == "id" => id(table, "i"),
        None if spec == "first" => FIRST.to_string(),
        None if spec == "last" => LAST.to_string(),
        Some(("at", minutes)) => format!("timestamp '2024-01-01' + ({minutes}) * interval '1 minute'"),
        // 1-based numbers of the parents a row refers to, spread evenly.
        Some(("of", parent)) => id(parent, &format!("1 + i % {}", count_of(parent, rows))),
        Some(("id", other)) => match other.split_once(": ") {
            Some((other, row)) => id(other, row),
            None => id(other, "i"),
        },
        _ => panic!("unknown placeholder {{{spec}}} in the generated schema's rows"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_filled_once_and_every_placeholder_expands() {
        for fill in FILLS {
            assert!(TABLES.contains(&format!("CREATE TABLE \"{}\" (", fill.table)), "{} is no table", fill.table);
            assert_eq!(FILLS.iter().filter(|f| f.table == fill.table).count(), 1, "{} filled twice", fill.table);
            let insert = fill.insert(1_000);
            assert!(!insert.contains(['{', '}', '#']), "{insert}");
        }
        assert_eq!(TABLES.matches("CREATE TABLE").count(), FILLS.len());
    }
}

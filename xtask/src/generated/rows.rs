//! The generated schema's rows: one `INSERT ... SELECT ... generate_series` per table, in the
//! server, so that a million rows take seconds to set up. Deterministic: ids are md5-based
//! cuid look-alikes of the row's number, and a foreign key is the id of a parent's number,
//! so the same `rows` give the same data.

use super::{TABLES, foreign_keys};

/// The statements that create and fill the schema with about `rows` rows: tables, one
/// `INSERT ... SELECT ... generate_series` per table, then the foreign keys (one validating
/// join each, instead of a lookup per row) and `ANALYZE`.
pub fn populated(rows: u64) -> Vec<String> {
    // Shares per million rows: a few big tables, many small ones, as an application's are.
    let n = |per_million: u64| (rows * per_million / 1_000_000).max(3);
    let (users, orgs, patients, invoices, products) = (n(5_000), n(500), n(60_000), n(100_000), n(2_000));
    let tags = 40;
    let id = |table: &str, i: &str| format!("'c' || substr(md5('{table}' || ({i})), 1, 24)");
    // 1-based numbers of the parents a row refers to, spread evenly.
    let of = |table: &str, count: u64| id(table, &format!("1 + i % {count}"));
    let at = |minutes: &str| format!("timestamp '2024-01-01' + ({minutes}) * interval '1 minute'");
    let first = "(array['Ada','Ben','Chloe','Dmitri','Elena','Farid','Grace','Hiro','Ines','Jonas'])[1 + i % 10]";
    let last = "(array['Okafor','Lindqvist','Moreau','Tanaka','Silva','Novak','Byrne','Khan','Weber','Rossi']) \
        [1 + (i / 10) % 10]";
    let insert = |table: &str, count: u64, columns: &[&str], values: String| {
        let columns = columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
        format!("INSERT INTO \"{table}\" ({columns}) SELECT {values} FROM generate_series(1, {count}) i")
    };
    let mut sql = vec![TABLES.to_string()];
    sql.push(insert(
        "_prisma_migrations",
        12,
        &["id", "checksum", "finished_at", "migration_name", "applied_steps_count"],
        format!(
            "substr(md5('migration' || i), 1, 36), md5('checksum' || i), {}, \
                lpad(i::text, 14, '2024010100') || '_step_' || i, 1",
            at("i * 1440")
        ),
    ));
    sql.push(insert(
        "User",
        users,
        &["id", "email", "name", "phone", "emailVerified", "image", "createdAt", "updatedAt"],
        format!(
            "{}, lower({first}) || '.' || lower({last}) || i || '@gmail.com', \
                {first} || ' ' || {last}, '+1 415 555 ' || lpad((i % 10000)::text, 4, \
                '0'), case when i % 3 > 0 then {} end, \
                'https://avatars.example.com/u/' || i || '.png', {}, {}",
            id("User", "i"),
            at("i * 7"),
            at("i * 5"),
            at("i * 7")
        ),
    ));
    sql.push(insert(
        "Account",
        users,
        &[
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
        format!(
            "{}, {}, 'oauth', case when i % 2 = 0 then 'google' else 'github' end, \
                (100000000 + i)::text, md5('refresh' || i), \
                'ya29.' || md5('access' || i), 1700000000 + i, 'Bearer', \
                'openid email profile'",
            id("Account", "i"),
            of("User", users)
        ),
    ));
    sql.push(insert(
        "Session",
        users,
        &["id", "sessionToken", "userId", "expires"],
        format!("{}, md5('session' || i), {}, {}", id("Session", "i"), of("User", users), at("i * 3")),
    ));
    sql.push(insert(
        "VerificationToken",
        n(500),
        &["identifier", "token", "expires"],
        format!("'user' || i || '@gmail.com', md5('verify' || i), {}", at("i")),
    ));
    sql.push(insert(
        "Organization",
        orgs,
        &["id", "name", "slug", "plan", "updatedAt"],
        format!(
            "{}, {last} || ' Dental ' || i, 'org-' || i, (array['free','pro','team'])[1 + i % 3], {}",
            id("Organization", "i"),
            at("i * 60")
        ),
    ));
    sql.push(insert(
        "Membership",
        users,
        &["id", "userId", "organizationId", "role"],
        format!(
            "{}, {}, {}, (array['OWNER','ADMIN','MEMBER','MEMBER'])[1 + i % 4]::\"Role\"",
            id("Membership", "i"),
            id("User", "i"),
            of("Organization", orgs)
        ),
    ));
    sql.push(insert(
        "Patient",
        patients,
        &["id", "organizationId", "firstName", "lastName", "email", "phone", "dateOfBirth", "notes", "updatedAt"],
        format!(
            "{}, {}, {first}, {last}, \
                case when i % 4 > 0 then 'patient' || i || '@outlook.com' end, \
                '(212) 555-' || lpad((i % 10000)::text, 4, '0'), \
                timestamp '1950-01-01' + (i % 20000) * interval '1 day', \
                case when i % 5 = 0 then 'Prefers morning visits; allergic to latex' end, \
                {}",
            id("Patient", "i"),
            of("Organization", orgs),
            at("i")
        ),
    ));
    sql.push(insert(
        "Appointment",
        n(250_000),
        &["id", "organizationId", "patientId", "providerId", "startsAt", "endsAt", "status", "reason", "updatedAt"],
        format!(
            "{}, {}, {}, {}, {}, {}, \
                (array['scheduled','completed','cancelled','no_show'])[1 + i % 4], \
                (array['cleaning','checkup','filling','crown',null])[1 + i % 5], {}",
            id("Appointment", "i"),
            of("Organization", orgs),
            of("Patient", patients),
            of("User", users),
            at("i * 2"),
            at("i * 2 + 45"),
            at("i * 2")
        ),
    ));
    sql.push(insert(
        "Invoice",
        invoices,
        &["id", "organizationId", "patientId", "number", "total", "paid", "dueAt", "updatedAt"],
        format!(
            "{}, {}, {}, i / {orgs} + 1, round((50 + (i % 997) * 1.37)::numeric, 2), i % 3 > 0, {}, {}",
            id("Invoice", "i"),
            of("Organization", orgs),
            of("Patient", patients),
            at("i * 4 + 43200"),
            at("i * 4")
        ),
    ));
    sql.push(insert(
        "InvoiceItem",
        n(200_000),
        &["id", "invoiceId", "productId", "description", "quantity", "unitPrice"],
        format!(
            "{}, {}, case when i % 4 > 0 then {} end, \
                (array['Prophylaxis','Bitewing X-ray','Composite filling','Fluoride'])[1 + i % 4], \
                1 + i % 3, round((20 + (i % 311) * 0.9)::numeric, 2)",
            id("InvoiceItem", "i"),
            of("Invoice", invoices),
            of("Product", products)
        ),
    ));
    sql.push(insert(
        "Payment",
        n(50_000),
        &["id", "invoiceId", "amount", "method", "paidAt"],
        format!(
            "{}, {}, round((50 + (i % 997) * 1.37)::numeric, 2), (array['card','cash','insurance'])[1 + i % 3], {}",
            id("Payment", "i"),
            of("Invoice", invoices),
            at("i * 9")
        ),
    ));
    sql.push(insert(
        "Product",
        products,
        &["id", "organizationId", "title", "sku", "price", "active"],
        format!(
            "{}, {}, 'Product ' || i, 'SKU-' || lpad(i::text, 6, '0'), \
                round((5 + (i % 200) * 2.5)::numeric, 2), i % 10 > 0",
            id("Product", "i"),
            of("Organization", orgs)
        ),
    ));
    sql.push(insert("Tag", tags, &["id", "label"], format!("{}, 'tag-' || i", id("Tag", "i"))));
    sql.push(insert(
        "PatientTag",
        n(20_000),
        &["id", "patientId", "tagId"],
        format!(
            "{}, {}, {}",
            id("PatientTag", "i"),
            of("Patient", patients),
            id("Tag", &format!("1 + (i / {patients}) % {tags}"))
        ),
    ));
    sql.push(insert(
        "Note",
        n(15_000),
        &["id", "patientId", "authorId", "body", "updatedAt"],
        format!(
            "{}, {}, {}, \
                'Discussed treatment plan with ' || {first} || '; follow up in ' || (1 + i % 12) || ' months', \
                {}",
            id("Note", "i"),
            of("Patient", patients),
            of("User", users),
            at("i * 11")
        ),
    ));
    sql.push(insert(
        "AuditLog",
        n(300_000),
        &["id", "userId", "action", "entity", "metadata", "createdAt"],
        format!(
            "{}, case when i % 20 > 0 then {} end, \
                (array['create','update','delete','login'])[1 + i % 4], \
                (array['Patient','Appointment','Invoice'])[1 + i % 3], \
                jsonb_build_object('ip', \
                '10.' || (i % 250) || '.' || (i % 199) || '.' || (i % 97), \
                'userAgent', 'Mozilla/5.0 (Macintosh)', 'changes', \
                jsonb_build_object('field', 'status', 'count', i % 7)), {}",
            id("AuditLog", "i"),
            of("User", users),
            at("i")
        ),
    ));
    sql.push(insert(
        "Notification",
        n(10_000),
        &["id", "userId", "title", "read"],
        format!(
            "{}, {}, (array['Appointment reminder','Invoice paid','New message'])[1 + i % 3], i % 2 = 0",
            id("Notification", "i"),
            of("User", users)
        ),
    ));
    sql.push(insert(
        "Setting",
        orgs,
        &["id", "organizationId", "key", "value"],
        format!(
            "{}, {}, 'preferences', jsonb_build_object('theme', (array['light','dark'])[1 + i % 2], 'locale', 'en-US')",
            id("Setting", "i"),
            id("Organization", "i")
        ),
    ));
    sql.push(insert(
        "ApiKey",
        orgs,
        &["id", "organizationId", "label", "hashedKey", "lastUsedAt"],
        format!("{}, {}, 'Default', md5('apikey' || i), {}", id("ApiKey", "i"), id("Organization", "i"), at("i * 13")),
    ));
    sql.push(insert(
        "Webhook",
        orgs,
        &["id", "organizationId", "url", "secret", "active"],
        format!(
            "{}, {}, 'https://hooks.example.com/org/' || i, 'whsec_' || md5('webhook' || i), i % 4 > 0",
            id("Webhook", "i"),
            id("Organization", "i")
        ),
    ));
    sql.push(insert(
        "File",
        n(5_000),
        &["id", "organizationId", "uploadedById", "fileName", "mimeType", "size"],
        format!(
            "{}, {}, {}, 'xray-' || i || '.png', 'image/png', 10000 + i % 90000",
            id("File", "i"),
            of("Organization", orgs),
            of("User", users)
        ),
    ));
    sql.push(insert(
        "Invite",
        n(1_000),
        &["id", "organizationId", "email", "token", "expiresAt"],
        format!(
            "{}, {}, 'invitee' || i || '@yahoo.com', md5('invite' || i), {}",
            id("Invite", "i"),
            of("Organization", orgs),
            at("i * 17")
        ),
    ));
    sql.push(foreign_keys());
    sql.push("ANALYZE".to_string());
    sql
}

//! The second schema of `cargo xtask bench stage-sync`: generated, in the shape a Next.js +
//! Prisma application on Supabase has, the opposite of the `large` seed's: 23 tables in
//! `public` (22 of the application and Prisma's `_prisma_migrations`), quoted camelCase
//! columns, `timestamp(3)`, cuid-like text primary keys, foreign keys without indexes (Prisma
//! makes none unless asked), a handful of `@@index`/`@unique` indexes, one enum, jsonb, and
//! personal columns (emails, names, phones) that the rules must mask. The rows are written
//! server-side by `generate_series`, deterministically: the same `rows` give the same data.
//!
//! The end-to-end tests use it too (`xtask::generated`), with a small row count.

/// The tables, their primary keys and indexes, as `prisma migrate` writes them: keys are
/// added after the load ([`FOREIGN_KEYS`]), so the source fills fast.
pub const TABLES: &str = r#"
CREATE TYPE "Role" AS ENUM ('OWNER', 'ADMIN', 'MEMBER');
CREATE TABLE "_prisma_migrations" (
    "id" VARCHAR(36) NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY ("id"));
CREATE TABLE "User" (
    "id" TEXT NOT NULL, "email" TEXT NOT NULL, "name" TEXT, "phone" TEXT, "emailVerified" TIMESTAMP(3),
    "image" TEXT, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Account" (
    "id" TEXT NOT NULL, "userId" TEXT NOT NULL, "type" TEXT NOT NULL, "provider" TEXT NOT NULL,
    "providerAccountId" TEXT NOT NULL, "refresh_token" TEXT, "access_token" TEXT, "expires_at" INTEGER,
    "token_type" TEXT, "scope" TEXT, CONSTRAINT "Account_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Session" (
    "id" TEXT NOT NULL, "sessionToken" TEXT NOT NULL, "userId" TEXT NOT NULL, "expires" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Session_pkey" PRIMARY KEY ("id"));
CREATE TABLE "VerificationToken" (
    "identifier" TEXT NOT NULL, "token" TEXT NOT NULL, "expires" TIMESTAMP(3) NOT NULL);
CREATE TABLE "Organization" (
    "id" TEXT NOT NULL, "name" TEXT NOT NULL, "slug" VARCHAR(64) NOT NULL, "plan" VARCHAR(32) NOT NULL DEFAULT 'free',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Organization_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Membership" (
    "id" TEXT NOT NULL, "userId" TEXT NOT NULL, "organizationId" TEXT NOT NULL, "role" "Role" NOT NULL DEFAULT 'MEMBER',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, CONSTRAINT "Membership_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Patient" (
    "id" TEXT NOT NULL, "organizationId" TEXT NOT NULL, "firstName" TEXT NOT NULL, "lastName" TEXT NOT NULL,
    "email" TEXT, "phone" VARCHAR(32), "dateOfBirth" TIMESTAMP(3), "notes" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Patient_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Appointment" (
    "id" TEXT NOT NULL, "organizationId" TEXT NOT NULL, "patientId" TEXT NOT NULL, "providerId" TEXT NOT NULL,
    "startsAt" TIMESTAMP(3) NOT NULL, "endsAt" TIMESTAMP(3) NOT NULL, "status" VARCHAR(20) NOT NULL,
    "reason" TEXT, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Appointment_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Invoice" (
    "id" TEXT NOT NULL, "organizationId" TEXT NOT NULL, "patientId" TEXT NOT NULL, "number" INTEGER NOT NULL,
    "total" DECIMAL(12,2) NOT NULL, "paid" BOOLEAN NOT NULL DEFAULT false, "dueAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Invoice_pkey" PRIMARY KEY ("id"));
CREATE TABLE "InvoiceItem" (
    "id" TEXT NOT NULL, "invoiceId" TEXT NOT NULL, "productId" TEXT, "description" TEXT NOT NULL,
    "quantity" INTEGER NOT NULL DEFAULT 1, "unitPrice" DECIMAL(10,2) NOT NULL,
    CONSTRAINT "InvoiceItem_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Payment" (
    "id" TEXT NOT NULL, "invoiceId" TEXT NOT NULL, "amount" DECIMAL(12,2) NOT NULL, "method" VARCHAR(20) NOT NULL,
    "paidAt" TIMESTAMP(3) NOT NULL, CONSTRAINT "Payment_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Product" (
    "id" TEXT NOT NULL, "organizationId" TEXT NOT NULL, "title" TEXT NOT NULL, "sku" VARCHAR(64) NOT NULL,
    "price" DECIMAL(10,2) NOT NULL, "active" BOOLEAN NOT NULL DEFAULT true, CONSTRAINT "Product_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Tag" ("id" TEXT NOT NULL, "label" VARCHAR(40) NOT NULL, CONSTRAINT "Tag_pkey" PRIMARY KEY ("id"));
CREATE TABLE "PatientTag" (
    "id" TEXT NOT NULL, "patientId" TEXT NOT NULL, "tagId" TEXT NOT NULL, CONSTRAINT "PatientTag_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Note" (
    "id" TEXT NOT NULL, "patientId" TEXT NOT NULL, "authorId" TEXT NOT NULL, "body" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Note_pkey" PRIMARY KEY ("id"));
CREATE TABLE "AuditLog" (
    "id" TEXT NOT NULL, "userId" TEXT, "action" VARCHAR(64) NOT NULL, "entity" VARCHAR(64) NOT NULL,
    "metadata" JSONB, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "AuditLog_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Notification" (
    "id" TEXT NOT NULL, "userId" TEXT NOT NULL, "title" TEXT NOT NULL, "read" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, CONSTRAINT "Notification_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Setting" (
    "id" TEXT NOT NULL, "organizationId" TEXT NOT NULL, "key" VARCHAR(64) NOT NULL, "value" JSONB NOT NULL,
    CONSTRAINT "Setting_pkey" PRIMARY KEY ("id"));
CREATE TABLE "ApiKey" (
    "id" TEXT NOT NULL, "organizationId" TEXT NOT NULL, "label" TEXT NOT NULL, "hashedKey" TEXT NOT NULL,
    "lastUsedAt" TIMESTAMP(3), CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Webhook" (
    "id" TEXT NOT NULL, "organizationId" TEXT NOT NULL, "url" TEXT NOT NULL, "secret" TEXT NOT NULL,
    "active" BOOLEAN NOT NULL DEFAULT true, CONSTRAINT "Webhook_pkey" PRIMARY KEY ("id"));
CREATE TABLE "File" (
    "id" TEXT NOT NULL, "organizationId" TEXT NOT NULL, "uploadedById" TEXT NOT NULL, "fileName" TEXT NOT NULL,
    "mimeType" VARCHAR(100) NOT NULL, "size" INTEGER NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "File_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Invite" (
    "id" TEXT NOT NULL, "organizationId" TEXT NOT NULL, "email" TEXT NOT NULL, "token" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL, CONSTRAINT "Invite_pkey" PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
CREATE UNIQUE INDEX "Account_provider_providerAccountId_key" ON "Account"("provider", "providerAccountId");
CREATE UNIQUE INDEX "Session_sessionToken_key" ON "Session"("sessionToken");
CREATE UNIQUE INDEX "VerificationToken_token_key" ON "VerificationToken"("token");
CREATE UNIQUE INDEX "Organization_slug_key" ON "Organization"("slug");
CREATE UNIQUE INDEX "Membership_organizationId_userId_key" ON "Membership"("organizationId", "userId");
CREATE INDEX "Patient_organizationId_idx" ON "Patient"("organizationId");
CREATE INDEX "Appointment_organizationId_startsAt_idx" ON "Appointment"("organizationId", "startsAt");
CREATE UNIQUE INDEX "Invoice_organizationId_number_key" ON "Invoice"("organizationId", "number");
CREATE UNIQUE INDEX "Product_sku_key" ON "Product"("sku");
CREATE UNIQUE INDEX "Tag_label_key" ON "Tag"("label");
CREATE INDEX "AuditLog_createdAt_idx" ON "AuditLog"("createdAt");
CREATE UNIQUE INDEX "ApiKey_hashedKey_key" ON "ApiKey"("hashedKey");
CREATE UNIQUE INDEX "Invite_token_key" ON "Invite"("token");
"#;

/// The foreign keys, `ON DELETE`/`ON UPDATE` as Prisma writes them; none has an index.
pub const FOREIGN_KEYS: &str = r#"
ALTER TABLE "Account" ADD CONSTRAINT "Account_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Session" ADD CONSTRAINT "Session_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Membership" ADD CONSTRAINT "Membership_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Membership" ADD CONSTRAINT "Membership_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Patient" ADD CONSTRAINT "Patient_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "Appointment" ADD CONSTRAINT "Appointment_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "Appointment" ADD CONSTRAINT "Appointment_patientId_fkey" FOREIGN KEY ("patientId") REFERENCES "Patient"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "Appointment" ADD CONSTRAINT "Appointment_providerId_fkey" FOREIGN KEY ("providerId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "Invoice" ADD CONSTRAINT "Invoice_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "Invoice" ADD CONSTRAINT "Invoice_patientId_fkey" FOREIGN KEY ("patientId") REFERENCES "Patient"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "InvoiceItem" ADD CONSTRAINT "InvoiceItem_invoiceId_fkey" FOREIGN KEY ("invoiceId") REFERENCES "Invoice"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "InvoiceItem" ADD CONSTRAINT "InvoiceItem_productId_fkey" FOREIGN KEY ("productId") REFERENCES "Product"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "Payment" ADD CONSTRAINT "Payment_invoiceId_fkey" FOREIGN KEY ("invoiceId") REFERENCES "Invoice"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "Product" ADD CONSTRAINT "Product_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "PatientTag" ADD CONSTRAINT "PatientTag_patientId_fkey" FOREIGN KEY ("patientId") REFERENCES "Patient"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "PatientTag" ADD CONSTRAINT "PatientTag_tagId_fkey" FOREIGN KEY ("tagId") REFERENCES "Tag"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Note" ADD CONSTRAINT "Note_patientId_fkey" FOREIGN KEY ("patientId") REFERENCES "Patient"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Note" ADD CONSTRAINT "Note_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "AuditLog" ADD CONSTRAINT "AuditLog_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "Notification" ADD CONSTRAINT "Notification_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Setting" ADD CONSTRAINT "Setting_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "ApiKey" ADD CONSTRAINT "ApiKey_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Webhook" ADD CONSTRAINT "Webhook_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "File" ADD CONSTRAINT "File_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "File" ADD CONSTRAINT "File_uploadedById_fkey" FOREIGN KEY ("uploadedById") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "Invite" ADD CONSTRAINT "Invite_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;
"#;

/// The schema on a database that stays empty (the sync's target): tables, then keys.
pub fn schema() -> String {
    format!("{TABLES}{FOREIGN_KEYS}")
}

/// The rows the benchmark generates by default, across all tables.
pub const DEFAULT_ROWS: u64 = 1_000_000;

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
    let last = "(array['Okafor','Lindqvist','Moreau','Tanaka','Silva','Novak','Byrne','Khan','Weber','Rossi'])[1 + (i / 10) % 10]";
    let insert = |table: &str, count: u64, columns: &str, values: String| {
        format!("INSERT INTO \"{table}\" ({columns}) SELECT {values} FROM generate_series(1, {count}) i")
    };
    let mut sql = vec![TABLES.to_string()];
    sql.push(insert("_prisma_migrations", 12, "id, checksum, finished_at, migration_name, applied_steps_count",
        format!("substr(md5('migration' || i), 1, 36), md5('checksum' || i), {}, lpad(i::text, 14, '2024010100') || '_step_' || i, 1", at("i * 1440"))));
    sql.push(insert("User", users, r#""id", "email", "name", "phone", "emailVerified", "image", "createdAt", "updatedAt""#,
        format!("{}, lower({first}) || '.' || lower({last}) || i || '@gmail.com', {first} || ' ' || {last}, '+1 415 555 ' || lpad((i % 10000)::text, 4, '0'), case when i % 3 > 0 then {} end, 'https://avatars.example.com/u/' || i || '.png', {}, {}",
            id("User", "i"), at("i * 7"), at("i * 5"), at("i * 7"))));
    sql.push(insert("Account", users, r#""id", "userId", "type", "provider", "providerAccountId", "refresh_token", "access_token", "expires_at", "token_type", "scope""#,
        format!("{}, {}, 'oauth', case when i % 2 = 0 then 'google' else 'github' end, (100000000 + i)::text, md5('refresh' || i), 'ya29.' || md5('access' || i), 1700000000 + i, 'Bearer', 'openid email profile'",
            id("Account", "i"), of("User", users))));
    sql.push(insert(
        "Session",
        users,
        r#""id", "sessionToken", "userId", "expires""#,
        format!("{}, md5('session' || i), {}, {}", id("Session", "i"), of("User", users), at("i * 3")),
    ));
    sql.push(insert(
        "VerificationToken",
        n(500),
        r#""identifier", "token", "expires""#,
        format!("'user' || i || '@gmail.com', md5('verify' || i), {}", at("i")),
    ));
    sql.push(insert(
        "Organization",
        orgs,
        r#""id", "name", "slug", "plan", "updatedAt""#,
        format!(
            "{}, {last} || ' Dental ' || i, 'org-' || i, (array['free','pro','team'])[1 + i % 3], {}",
            id("Organization", "i"),
            at("i * 60")
        ),
    ));
    sql.push(insert(
        "Membership",
        users,
        r#""id", "userId", "organizationId", "role""#,
        format!(
            "{}, {}, {}, (array['OWNER','ADMIN','MEMBER','MEMBER'])[1 + i % 4]::\"Role\"",
            id("Membership", "i"),
            id("User", "i"),
            of("Organization", orgs)
        ),
    ));
    sql.push(insert("Patient", patients, r#""id", "organizationId", "firstName", "lastName", "email", "phone", "dateOfBirth", "notes", "updatedAt""#,
        format!("{}, {}, {first}, {last}, case when i % 4 > 0 then 'patient' || i || '@outlook.com' end, '(212) 555-' || lpad((i % 10000)::text, 4, '0'), timestamp '1950-01-01' + (i % 20000) * interval '1 day', case when i % 5 = 0 then 'Prefers morning visits; allergic to latex' end, {}",
            id("Patient", "i"), of("Organization", orgs), at("i"))));
    sql.push(insert("Appointment", n(250_000), r#""id", "organizationId", "patientId", "providerId", "startsAt", "endsAt", "status", "reason", "updatedAt""#,
        format!("{}, {}, {}, {}, {}, {}, (array['scheduled','completed','cancelled','no_show'])[1 + i % 4], (array['cleaning','checkup','filling','crown',null])[1 + i % 5], {}",
            id("Appointment", "i"), of("Organization", orgs), of("Patient", patients), of("User", users), at("i * 2"), at("i * 2 + 45"), at("i * 2"))));
    sql.push(insert(
        "Invoice",
        invoices,
        r#""id", "organizationId", "patientId", "number", "total", "paid", "dueAt", "updatedAt""#,
        format!(
            "{}, {}, {}, i / {orgs} + 1, round((50 + (i % 997) * 1.37)::numeric, 2), i % 3 > 0, {}, {}",
            id("Invoice", "i"),
            of("Organization", orgs),
            of("Patient", patients),
            at("i * 4 + 43200"),
            at("i * 4")
        ),
    ));
    sql.push(insert("InvoiceItem", n(200_000), r#""id", "invoiceId", "productId", "description", "quantity", "unitPrice""#,
        format!("{}, {}, case when i % 4 > 0 then {} end, (array['Prophylaxis','Bitewing X-ray','Composite filling','Fluoride'])[1 + i % 4], 1 + i % 3, round((20 + (i % 311) * 0.9)::numeric, 2)",
            id("InvoiceItem", "i"), of("Invoice", invoices), of("Product", products))));
    sql.push(insert(
        "Payment",
        n(50_000),
        r#""id", "invoiceId", "amount", "method", "paidAt""#,
        format!(
            "{}, {}, round((50 + (i % 997) * 1.37)::numeric, 2), (array['card','cash','insurance'])[1 + i % 3], {}",
            id("Payment", "i"),
            of("Invoice", invoices),
            at("i * 9")
        ),
    ));
    sql.push(insert("Product", products, r#""id", "organizationId", "title", "sku", "price", "active""#,
        format!("{}, {}, 'Product ' || i, 'SKU-' || lpad(i::text, 6, '0'), round((5 + (i % 200) * 2.5)::numeric, 2), i % 10 > 0", id("Product", "i"), of("Organization", orgs))));
    sql.push(insert("Tag", tags, r#""id", "label""#, format!("{}, 'tag-' || i", id("Tag", "i"))));
    sql.push(insert(
        "PatientTag",
        n(20_000),
        r#""id", "patientId", "tagId""#,
        format!(
            "{}, {}, {}",
            id("PatientTag", "i"),
            of("Patient", patients),
            id("Tag", &format!("1 + (i / {patients}) % {tags}"))
        ),
    ));
    sql.push(insert("Note", n(15_000), r#""id", "patientId", "authorId", "body", "updatedAt""#,
        format!("{}, {}, {}, 'Discussed treatment plan with ' || {first} || '; follow up in ' || (1 + i % 12) || ' months', {}",
            id("Note", "i"), of("Patient", patients), of("User", users), at("i * 11"))));
    sql.push(insert("AuditLog", n(300_000), r#""id", "userId", "action", "entity", "metadata", "createdAt""#,
        format!("{}, case when i % 20 > 0 then {} end, (array['create','update','delete','login'])[1 + i % 4], (array['Patient','Appointment','Invoice'])[1 + i % 3], jsonb_build_object('ip', '10.' || (i % 250) || '.' || (i % 199) || '.' || (i % 97), 'userAgent', 'Mozilla/5.0 (Macintosh)', 'changes', jsonb_build_object('field', 'status', 'count', i % 7)), {}",
            id("AuditLog", "i"), of("User", users), at("i"))));
    sql.push(insert(
        "Notification",
        n(10_000),
        r#""id", "userId", "title", "read""#,
        format!(
            "{}, {}, (array['Appointment reminder','Invoice paid','New message'])[1 + i % 3], i % 2 = 0",
            id("Notification", "i"),
            of("User", users)
        ),
    ));
    sql.push(insert(
        "Setting",
        orgs,
        r#""id", "organizationId", "key", "value""#,
        format!(
            "{}, {}, 'preferences', jsonb_build_object('theme', (array['light','dark'])[1 + i % 2], 'locale', 'en-US')",
            id("Setting", "i"),
            id("Organization", "i")
        ),
    ));
    sql.push(insert(
        "ApiKey",
        orgs,
        r#""id", "organizationId", "label", "hashedKey", "lastUsedAt""#,
        format!("{}, {}, 'Default', md5('apikey' || i), {}", id("ApiKey", "i"), id("Organization", "i"), at("i * 13")),
    ));
    sql.push(insert(
        "Webhook",
        orgs,
        r#""id", "organizationId", "url", "secret", "active""#,
        format!(
            "{}, {}, 'https://hooks.example.com/org/' || i, 'whsec_' || md5('webhook' || i), i % 4 > 0",
            id("Webhook", "i"),
            id("Organization", "i")
        ),
    ));
    sql.push(insert(
        "File",
        n(5_000),
        r#""id", "organizationId", "uploadedById", "fileName", "mimeType", "size""#,
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
        r#""id", "organizationId", "email", "token", "expiresAt""#,
        format!(
            "{}, {}, 'invitee' || i || '@yahoo.com', md5('invite' || i), {}",
            id("Invite", "i"),
            of("Organization", orgs),
            at("i * 17")
        ),
    ));
    sql.push(FOREIGN_KEYS.to_string());
    sql.push("ANALYZE".to_string());
    sql
}

/// What a person decides after `stage-sync init-rules` on this schema, as its output asks:
/// a `reviewed = false` line ("personal-looking name: decide") is either marked reviewed (it
/// is not personal) or given a masking rule. Here one column is left so: `emailVerified`, a
/// timestamp, which says when, not who. Every other suggestion is taken as written.
const DECISIONS: &[(&str, &str, &str)] =
    &[("public.User", "emailVerified", "{ rule = \"keep\", reviewed = true } # when, not who: reviewed")];

/// The rules file `init-rules` wrote, with [`DECISIONS`] made. Fails when a decision finds
/// no line to change or a `reviewed = false` is left: `init-rules` or the schema changed,
/// and the decisions need a look.
pub fn decide(rules: &str) -> anyhow::Result<String> {
    let mut table = String::new();
    let mut made = Vec::new();
    let mut out = String::with_capacity(rules.len());
    for line in rules.lines() {
        if let Some(name) = line.strip_prefix("[tables.\"").and_then(|l| l.strip_suffix("\".columns]")) {
            table = name.to_string();
        }
        let decision = DECISIONS.iter().find(|(t, column, _)| *t == table && line.starts_with(&format!("{column} = ")));
        match decision {
            Some((t, column, rule)) => {
                out.push_str(&format!("{column} = {rule}\n"));
                made.push((*t, *column));
            }
            None if line.contains("reviewed = false") => {
                anyhow::bail!("init-rules left a decision this benchmark does not make: {table}: {line}")
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if let Some((t, column, _)) = DECISIONS.iter().find(|(t, c, _)| !made.contains(&(*t, *c))) {
        anyhow::bail!("init-rules wrote no rule for {t}.{column}: the generated schema and its decisions disagree");
    }
    Ok(out)
}

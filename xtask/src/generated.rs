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
/// added after the load (`FOREIGN_KEYS`), so that the source fills fast.
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
    "price" DECIMAL(10,2) NOT NULL, "active" BOOLEAN NOT NULL DEFAULT true,
    CONSTRAINT "Product_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Tag" ("id" TEXT NOT NULL, "label" VARCHAR(40) NOT NULL, CONSTRAINT "Tag_pkey" PRIMARY KEY ("id"));
CREATE TABLE "PatientTag" (
    "id" TEXT NOT NULL, "patientId" TEXT NOT NULL, "tagId" TEXT NOT NULL,
    CONSTRAINT "PatientTag_pkey" PRIMARY KEY ("id"));
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
    "mimeType" VARCHAR(100) NOT NULL, "size" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
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

/// The foreign keys, as Prisma names them (`<Table>_<column>_fkey`, `ON UPDATE CASCADE`):
/// (table, column, referenced table, `ON DELETE`). None has an index.
const FOREIGN_KEYS: &[(&str, &str, &str, &str)] = &[
    ("Account", "userId", "User", "CASCADE"),
    ("Session", "userId", "User", "CASCADE"),
    ("Membership", "userId", "User", "CASCADE"),
    ("Membership", "organizationId", "Organization", "CASCADE"),
    ("Patient", "organizationId", "Organization", "RESTRICT"),
    ("Appointment", "organizationId", "Organization", "RESTRICT"),
    ("Appointment", "patientId", "Patient", "RESTRICT"),
    ("Appointment", "providerId", "User", "RESTRICT"),
    ("Invoice", "organizationId", "Organization", "RESTRICT"),
    ("Invoice", "patientId", "Patient", "RESTRICT"),
    ("InvoiceItem", "invoiceId", "Invoice", "CASCADE"),
    ("InvoiceItem", "productId", "Product", "SET NULL"),
    ("Payment", "invoiceId", "Invoice", "RESTRICT"),
    ("Product", "organizationId", "Organization", "CASCADE"),
    ("PatientTag", "patientId", "Patient", "CASCADE"),
    ("PatientTag", "tagId", "Tag", "CASCADE"),
    ("Note", "patientId", "Patient", "CASCADE"),
    ("Note", "authorId", "User", "RESTRICT"),
    ("AuditLog", "userId", "User", "SET NULL"),
    ("Notification", "userId", "User", "CASCADE"),
    ("Setting", "organizationId", "Organization", "CASCADE"),
    ("ApiKey", "organizationId", "Organization", "CASCADE"),
    ("Webhook", "organizationId", "Organization", "CASCADE"),
    ("File", "organizationId", "Organization", "CASCADE"),
    ("File", "uploadedById", "User", "RESTRICT"),
    ("Invite", "organizationId", "Organization", "CASCADE"),
];

/// `ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY` for every key, as `prisma migrate` writes it.
fn foreign_keys() -> String {
    FOREIGN_KEYS
        .iter()
        .map(|(table, column, target, on_delete)| {
            let (key, constraint) = (crate::sql::ident(column), crate::sql::ident(&format!("{table}_{column}_fkey")));
            format!(
                "ALTER TABLE {} ADD CONSTRAINT {constraint} FOREIGN KEY ({key}) \
                    REFERENCES {}(\"id\") ON DELETE {on_delete} ON UPDATE CASCADE;\n",
                crate::sql::ident(table),
                crate::sql::ident(target)
            )
        })
        .collect()
}

/// The schema on a database that stays empty (the sync's target): tables, then keys.
pub fn schema() -> String {
    format!("{TABLES}{}", foreign_keys())
}

/// The rows the benchmark generates by default, across all tables.
pub const DEFAULT_ROWS: u64 = 1_000_000;

mod rows;
pub use rows::populated;

/// What a person decides after `stage-sync init-rules` on this schema, as its output asks:
/// a `reviewed = false` line ("personal-looking name: decide") is either marked reviewed (it
/// is not personal) or given a masking rule. On this schema it leaves none (names are judged
/// with their types); `emailVerified`, a timestamp that says when, not who, is marked
/// reviewed as a person would. Every other suggestion is taken as written.
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

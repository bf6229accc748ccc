//! Tests for `cargo xtask stage-sync init-rules` on a whole app, in the shapes public apps
//! have (an app in a schema of its own next to `public`, Prisma's ledger, `auth.users`):
//! the misses and false alarms measured on real schemas (README, "init-rules"), each
//! encoded here; and the rules it writes, bytea under NOT NULL included, syncing in both
//! COPY formats to the same target.

use crate::{harness::TestCluster, stage_sync_fixtures::production_project};

/// The app: its own schema and `public`, with the columns init-rules missed or flagged
/// wrongly before. Created on both sides.
const APP: &str = r#"
create schema clinic_app;
create table clinic_app.patients (
  id text primary key,
  full_name text not null,
  bio text,
  "emailVerified" timestamp(3),
  "emailQuota" integer not null default 10,
  "avatarImageId" text,
  "userAgent" text,
  last_ip inet,
  xray bytea not null,
  thumbnail bytea,
  fingerprint bytea not null unique,
  "smtpConfig" jsonb,
  "privateKey" text
);
create table clinic_app.visit_notes (
  id serial primary key,
  patient_id text not null references clinic_app.patients (id),
  title text not null,
  message text,
  "rateLimitKey" text,
  scope text
);
create table public.jobs (id text primary key, name text not null, plan_name text, attempts integer not null default 0);
create table public._prisma_migrations (
  id varchar(36) primary key, checksum varchar(64) not null, finished_at timestamptz,
  migration_name varchar(255) not null, logs text, rolled_back_at timestamptz,
  started_at timestamptz not null default now(), applied_steps_count integer not null default 0);
"#;

/// The source's rows: personal values everywhere a name or a value can tell, one empty bytea.
const DATA: &str = r#"
insert into clinic_app.patients (id, full_name, bio, "emailVerified", "avatarImageId", "userAgent", last_ip, xray,
                                 thumbnail, fingerprint, "smtpConfig", "privateKey")
select 'p' || i, 'Margaret Thistlewood ' || i, 'Allergic to penicillin; lives on Quillfeather Lane', now(),
       'img' || i, 'Mozilla/5.0 Thistlewood-Laptop', ('203.0.113.' || i)::inet,
       case when i = 1 then ''::bytea else convert_to('xray of Thistlewood ' || i, 'UTF8') end,
       convert_to('face ' || i, 'UTF8'), sha256(convert_to('fp' || i, 'UTF8')),
       jsonb_build_object('host', 'smtp.clinic.test', 'port', 587, 'user', 'mailer', 'pass', 'hunter2-Thistlewood'),
       '-----BEGIN PRIVATE KEY----- MIIEvThistlewood' || i
from generate_series(1, 20) i;
insert into clinic_app.visit_notes (patient_id, title, message, "rateLimitKey", scope)
select 'p' || i, 'Root canal for Thistlewood', 'Thistlewood complained about the bill', 'signin:198.51.100.' || i,
       'signin:198.51.100.' || i
from generate_series(1, 20) i;
insert into public.jobs values ('j1', 'nightly export', 'Pro', 2);
insert into public._prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count)
values ('m1', repeat('a', 64), now(), '20240101000000_init', 1);
insert into auth.users (id, email, encrypted_password)
values ('a0000000-0000-4000-8000-000000000001', 'margaret.thistlewood@realclinic.com', '$2a$10$Thistlewood');
"#;

/// The rule init-rules wrote for `column` in `table`'s section.
fn rule(text: &str, table: &str, column: &str) -> String {
    let section = text
        .split(&format!("[tables.\"{table}\".columns]\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no section for {table}: {text}"))
        .split("\n[")
        .next()
        .unwrap();
    let line = section.lines().find(|l| l.starts_with(&format!("{column} = "))).unwrap_or_else(|| panic!("{section}"));
    line[column.len() + 3..].to_string()
}

#[test]
fn init_rules_sees_the_whole_app_and_its_bytea_rules_sync_in_both_formats() {
    let (source, target) = (TestCluster::start(), TestCluster::start());
    source.client().batch_execute(APP).unwrap();
    source.client().batch_execute(DATA).unwrap();
    target.client().batch_execute(APP).unwrap();
    let project = production_project(&source);

    project.xtask(&["stage-sync", "init-rules"]).ok();
    let path = project.root.join("env/stage-sync.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // Every schema the app owns, none of Supabase's; auth.users in a section of its own.
    assert!(text.contains("\nschemas = [\"public\", \"clinic_app\"]\n"), "{text}");
    assert_eq!(rule(&text, "auth.users", "email"), "\"email\"");
    // GoTrue reads NULL text as an error: its secrets are emptied, not nulled.
    assert_eq!(rule(&text, "auth.users", "encrypted_password"), "\"redact\"");
    let patients = |column: &str| rule(&text, "clinic_app.patients", column);
    for (column, expected) in [
        ("full_name", "\"full_name\""),
        ("bio", "\"text\""),
        ("userAgent", "\"null\""),
        ("last_ip", "\"null\""),
        ("xray", "\"redact\""),
        ("thumbnail", "\"null\""),
        ("privateKey", "\"null\""),
        ("emailVerified", "\"keep\""),
        ("emailQuota", "\"keep\""),
        ("avatarImageId", "\"keep\""),
    ] {
        assert_eq!(patients(column), expected, "{column}");
    }
    assert!(patients("fingerprint").starts_with("\"bytes\" # unique"), "{text}");
    // A config's password is masked, its repeated settings kept.
    assert!(patients("smtpConfig").starts_with("{ rule = \"jsonb\", allow = [\"host\", \"user\"]"), "{text}");
    let notes = |column: &str| rule(&text, "clinic_app.visit_notes", column);
    assert_eq!(
        (notes("title"), notes("message"), notes("rateLimitKey")),
        ("\"text\"".into(), "\"text\"".into(), "\"null\"".into())
    );
    // An address inside a text key is caught by its values.
    assert!(notes("scope").starts_with("\"uuid\" # sampled"), "{text}");
    assert!(rule(&text, "public.jobs", "name").contains("reviewed = true"), "{text}");
    assert_eq!(rule(&text, "public.jobs", "plan_name"), "\"keep\"");
    for column in ["id", "checksum", "migration_name", "applied_steps_count"] {
        let kept = rule(&text, "public._prisma_migrations", column);
        assert!(kept.starts_with("{ rule = \"keep\", reviewed = true } # Prisma's ledger"), "{column}: {kept}");
    }
    assert!(!text.contains("reviewed = false"), "nothing left to decide here: {text}");

    // Staging needs no logins here: the auth.users section goes; the rest syncs as written.
    let without_auth = text.split("\n[tables.\"auth.users\".columns]").next().unwrap().to_string()
        + "\n["
        + text.split("\n[tables.\"auth.users\".columns]").nth(1).unwrap().split_once("\n[").unwrap().1;
    std::fs::write(&path, without_auth).unwrap();
    let fingerprints =
        "select string_agg(id || '=' || encode(fingerprint, 'hex'), ',' order by id) from clinic_app.patients";
    let mut by_format = Vec::new();
    for format in ["binary", "text"] {
        let out = project
            .xtask(&["stage-sync", "--from", "production", "--to", "test", "--yes"])
            .env("DATABASE_URL", &target.url())
            .env("XTASK_STAGE_SYNC_FORMAT", format)
            .ok();
        assert!(out.stderr.contains("verified"), "{format}: {}", out.stderr);
        let lengths =
            "select string_agg(id || ':' || octet_length(xray) || ':' || octet_length(fingerprint), ',' order by id)
                       from clinic_app.patients where thumbnail is null";
        let source_fp = source.strings(
            "select string_agg(id || ':0:' || octet_length(fingerprint), ',' order by id) from clinic_app.patients",
        );
        assert_eq!(target.strings(lengths), source_fp, "{format}: xray emptied, fingerprints of the same length");
        let distinct = "select count(distinct fingerprint)::text from clinic_app.patients";
        assert_eq!(target.strings(distinct), ["20"], "{format}");
        let same = "select count(*)::text from clinic_app.patients t where fingerprint = sha256(convert_to('fp' || substr(id, 2), 'UTF8'))";
        assert_eq!(target.strings(same), ["0"], "{format}: no fingerprint reached the target");
        let planted = "select count(*)::text from (select p::text as row from clinic_app.patients p
                       union all select n::text from clinic_app.visit_notes n) r
                       where row ~ 'Thistlewood|penicillin|hunter2|203\\.0\\.113|198\\.51\\.100'";
        assert_eq!(target.strings(planted), ["0"], "{format}: a personal value reached the target");
        let ledger =
            "select concat_ws('|', id, checksum, migration_name, applied_steps_count) from public._prisma_migrations";
        assert_eq!(target.strings(ledger), source.strings(ledger), "{format}: Prisma's ledger as it is");
        by_format.push(target.strings(fingerprints));
    }
    assert_eq!(by_format[0], by_format[1], "both COPY formats give the same keyed bytes");
}

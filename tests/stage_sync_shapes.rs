//! Tests for `cargo xtask stage-sync` on schemas this repository didn't design: a Prisma-style
//! application (quoted mixed-case names, text ids, unique indexes that are not constraints,
//! jsonb, text arrays) with a sequence used only by a default and a materialized view; and
//! the shapes production already holds (enums, key cycles, tables without keys, a large
//! audit log).

use crate::stage_sync_fixtures::{SOURCE_DATA, Setup, production_with};

const PRISMA_UP: &str = r#"-- A Prisma-style schema: what `prisma migrate` writes.
create sequence public.invoice_number_seq;
create table public."User" (
  id text primary key,
  "emailAddress" text not null,
  "displayName" text,
  "invoiceNumber" integer not null default nextval('public.invoice_number_seq'),
  settings jsonb,
  aliases text[],
  "createdAt" timestamp(3) not null default current_timestamp
);
create unique index "User_emailAddress_key" on public."User" ("emailAddress");
create unique index "User_invoiceNumber_key" on public."User" ("invoiceNumber");
create unique index "User_displayName_lower_key" on public."User" (lower("displayName")) where "displayName" is not null;
create unique index "User_handle_key" on public."User" ((settings ->> 'handle'));
create table public."Post" (
  id serial primary key,
  "authorId" text not null references public."User" (id),
  title text not null
);
create materialized view public.post_counts as
  select u.id, count(p.id) as posts from public."User" u left join public."Post" p on p."authorId" = u.id group by u.id
  with no data;
"#;

const PRISMA_DOWN: &str = "drop materialized view public.post_counts;\ndrop table public.\"Post\", public.\"User\";\ndrop sequence public.invoice_number_seq;\n";

const PRISMA_RULES: &str = r#"
[tables."public.User".columns]
id = "keep"
emailAddress = "email"
displayName = "full_name"
invoiceNumber = "keep"
# The keys the app reads by name are listed: under an allowlist every other key is renamed.
settings = { rule = "jsonb", keys = { handle = "text", google = "redact", spreadsheetId = "text" }, allow = ["theme", "locale"], others = "text" }
aliases = "first_name"
createdAt = "keep"

[tables."public.Post".columns]
id = "keep"
authorId = "keep"
title = "text"
"#;

/// Identifying values planted in the source; none may reach the target.
const PLANTED: &[&str] = &[
    "margaret.thistlewood@realclinic.com",
    "Margaret Thistlewood",
    "Marguerithe",
    "Thistlewick",
    "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms",
    "ya29.a0AfH6SMBx",
    "mthistle",
];

const PRISMA_DATA: &str = r#"
insert into public."User" (id, "emailAddress", "displayName", settings, aliases) values
  ('ckv1', 'margaret.thistlewood@realclinic.com', 'Margaret Thistlewood',
   '{"theme": "dark", "locale": "en", "handle": "mthistle", "google": {"spreadsheetId": "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms", "token": "ya29.a0AfH6SMBx"}, "recent": ["Marguerithe"]}',
   '{Marguerithe,NULL,Thistlewick}');
insert into public."User" (id, "emailAddress", "displayName", settings)
  select 'ckv' || i, 'user' || i || '@realclinic.com', 'Person ' || i, jsonb_build_object('handle', 'h' || i, 'theme', 'light', 'locale', 'en')
  from generate_series(2, 3000) i;
insert into public."Post" ("authorId", title) select 'ckv' || (1 + i % 50), 'Post ' || i from generate_series(1, 400) i;
refresh materialized view public.post_counts;
"#;

fn setup() -> Setup {
    let (source, target, project) =
        production_with("9101_prisma", PRISMA_UP, PRISMA_DOWN, PRISMA_RULES, &[PRISMA_DATA]);
    Setup { source, target, project }
}

#[test]
fn a_prisma_schema_is_copied_masked_with_sequences_indexes_and_views() {
    let s = setup();
    s.sync(&[]).ok();
    let mut target = s.target.client();
    let everything: String =
        target.query_one(r#"select string_agg(to_jsonb(u)::text, ' ') from public."User" u"#, &[]).unwrap().get(0);
    for planted in PLANTED {
        assert!(!everything.contains(planted), "planted `{planted}` reached the target");
    }
    let row = target
        .query_one(
            r#"select settings ->> 'theme', settings ->> 'locale', settings #>> '{google,spreadsheetId}',
                      array_length(aliases, 1), aliases[2] is null, aliases[1] like '%-%', "displayName" like '% #%'
               from public."User" where id = 'ckv1'"#,
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, String>(1)), ("dark".into(), "en".into()), "allowed keys kept");
    assert!(row.get::<_, Option<String>>(2).is_some_and(|v| !v.is_empty()), "a masked value is kept as a string");
    assert_eq!(row.get::<_, i32>(3), 3, "the array keeps its length");
    assert!(row.get::<_, bool>(4), "a NULL element stays NULL");
    assert!(row.get::<_, bool>(5), "elements are first-name pseudonyms");
    assert!(row.get::<_, bool>(6), "a column of a unique expression index gets collision-safe pseudonyms");
    // The sequence only a default uses went past the copied numbers: the next insert works.
    let number: i32 = target
        .query_one(r#"insert into public."User" (id, "emailAddress") values ('new', 'n@example.com') returning "invoiceNumber""#, &[])
        .unwrap()
        .get(0);
    assert_eq!(number, 3001);
    let post: i32 = target
        .query_one(r#"insert into public."Post" ("authorId", title) values ('new', 't') returning id"#, &[])
        .unwrap()
        .get(0);
    assert_eq!(post, 401);
    // The materialized view was refreshed from the new data.
    let counted: (i64, i64) = {
        let r = target.query_one("select count(*), sum(posts)::bigint from public.post_counts", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(counted, (3000, 400));
}

#[test]
fn a_unique_index_that_is_not_a_constraint_catches_a_collision() {
    let s = setup();
    let before = s.target.checksum();
    // The dry run names the unique index's columns and their risk.
    let out = s.sync(&["--dry-run"]).ok();
    assert!(out.stdout.contains("public.User.emailAddress: email with a 45-bit hash tag"), "{}", out.stdout);
    assert!(out.stdout.contains("public.User.displayName: full_name"), "{}", out.stdout);
    assert!(
        out.stdout.contains("public.User.settings: jsonb all but locale,theme inside a unique index"),
        "{}",
        out.stdout
    );
    // Every handle redacted to one value: the unique index on (settings ->> 'handle') breaks.
    s.set_rule("handle = \"text\"", "handle = \"redact\"");
    let out = s.sync(&[]).fails("verification failed, nothing was changed: a key or index does not hold");
    assert!(out.stderr.contains("User_handle_key"), "{}", out.stderr);
    assert_eq!(s.target.checksum(), before);
    // A plain unique index is a unique key too: redact is refused before anything is read.
    s.set_rule("emailAddress = \"email\"", "emailAddress = \"redact\"");
    s.sync(&[]).fails("env/stage-sync.toml has 1 problem(s): public.User.emailAddress is in a unique key or index");
    assert_eq!(s.target.checksum(), before);
}

#[test]
fn init_rules_masks_what_identifies_and_leaves_keys_alone() {
    let s = setup();
    s.source
        .client()
        .batch_execute(
            r#"alter table public."User" add column contacts text[], add column "externalRef" text, add column address_id integer,
                 add column "accountId" uuid, add column "avatarUrl" text, add column username text, add column "driveFileId" text,
                 add column status text, add column legacy_id text;
               update public."User" set contacts = array['kin' || id || '@realclinic.com'], "externalRef" = 'cus_' || md5(id),
                 address_id = 7, "accountId" = gen_random_uuid(), status = 'active', legacy_id = 'cus_' || md5(id || 'x');"#,
        )
        .unwrap();
    s.project.xtask(&["stage-sync", "--from", "production", "init-rules", "--force"]).ok();
    let text = std::fs::read_to_string(s.project.root.join("env/stage-sync.toml")).unwrap();
    let section = text.split("[tables.\"public.User\".columns]").nth(1).unwrap().split("\n[").next().unwrap();
    let rule = |column: &str| -> String {
        let line =
            section.lines().find(|l| l.starts_with(&format!("{column} = "))).unwrap_or_else(|| panic!("{section}"));
        line[column.len() + 3..].to_string()
    };
    assert_eq!(rule("emailAddress"), "\"email\"");
    assert_eq!(rule("displayName"), "\"full_name\"");
    assert_eq!(rule("username"), "\"text\"");
    assert_eq!(rule("avatarUrl"), "\"null\"");
    assert_eq!(rule("driveFileId"), "\"uuid\"");
    assert!(
        rule("settings").starts_with("{ rule = \"jsonb\", allow = [\"locale\", \"theme\"], others = \"text\" }"),
        "{section}"
    );
    assert!(rule("contacts").starts_with("\"email\" # sampled"), "{section}");
    assert_eq!(rule("externalRef"), "\"uuid\"");
    assert!(rule("legacy_id").starts_with("\"uuid\" # sampled"), "{section}");
    // Keys and harmless values raise no alarm.
    for column in ["id", "address_id", "accountId", "invoiceNumber", "status", "createdAt"] {
        assert_eq!(rule(column), "\"keep\"", "{column}");
    }
    assert!(text.contains("authorId = \"keep\"\n"), "{text}");
    assert!(text.contains("starting point. Review every line"), "{text}");
}

#[test]
fn the_tenant_table_comes_from_configuration() {
    let s = setup();
    // This schema's tenants are its users: their posts belong to them through "authorId".
    std::fs::write(s.project.root.join("env/tenancy.toml"), "root = \"public.User\"\nkey = \"id\"\n").unwrap();
    s.sync(&["--clinics", "ckv2,ckv3"]).ok();
    let row = s
        .target
        .client()
        .query_one(
            r#"select (select string_agg(id, ',' order by id) from public."User"), (select count(*) from public."Post"),
                      (select count(*) from public.post_counts)"#,
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ckv2,ckv3");
    assert_eq!(row.get::<_, i64>(1), 16, "each of 50 authors has 8 of the 400 posts");
    assert_eq!(row.get::<_, i64>(2), 2);
    s.sync(&["--clinics", "nobody"]).fails("--clinics: no clinic nobody in the source");
    std::fs::write(s.project.root.join("env/tenancy.toml"), "root = \"clinics\"\n").unwrap();
    s.sync(&["--clinics", "1"]).fails("env/tenancy.toml is invalid");
}

const SHAPES_UP: &str = r#"-- Schema shapes stage-sync must handle.
create type public.mood as enum ('calm', 'busy');
create table public.staff (
  id bigint generated always as identity primary key,
  manager_id bigint references public.staff (id),
  full_name text not null,
  email text unique,
  tags text[],
  mood public.mood,
  profile jsonb,
  name_upper text generated always as (upper(full_name)) stored
);
create table public.team_a (id int primary key, b_id int);
create table public.team_b (id int primary key, a_id int references public.team_a (id));
alter table public.team_a add foreign key (b_id) references public.team_b (id);
create table public.audit_log (at timestamptz not null, message text);
create table public.visits (id int, visited_on date not null, patient_email text, primary key (id, visited_on))
  partition by range (visited_on);
create table public.visits_2025 partition of public.visits for values from ('2025-01-01') to ('2026-01-01');
create table public.visits_2026 partition of public.visits for values from ('2026-01-01') to ('2027-01-01');
"#;

const SHAPES_DOWN: &str = "drop table public.visits, public.audit_log, public.team_b, public.team_a, public.staff cascade;\ndrop type public.mood;\n";

const SHAPES_RULES: &str = r#"
[tables."public.staff".columns]
id = "keep"
manager_id = "keep"
full_name = "full_name"
email = "email"
tags = "keep"
mood = "keep"
profile = { rule = "jsonb", keys = { email = "email", name = "full_name", phone = "null" } }

[tables."public.team_a".columns]
id = "keep"
b_id = "keep"

[tables."public.team_b".columns]
id = "keep"
a_id = "keep"

[tables."public.audit_log".columns]
at = { rule = "date_shift", days = 10 }
message = "text"

[tables."public.visits".columns]
id = "keep"
visited_on = "keep"
patient_email = "email"
"#;

const SHAPES_DATA: &str = r#"
insert into public.staff (full_name, email, tags, mood, profile) values
  ('Margaret Thistlewood', 'margaret.thistlewood@realclinic.com', '{front,desk}', 'calm',
   '{"email": "margaret.thistlewood@realclinic.com", "name": "Margaret Thistlewood", "phone": "(217) 555-0187", "nested": {"email": "bart.q@realclinic.com"}, "shift": "early"}');
insert into public.staff (manager_id, full_name, email, mood) values (1, 'Bartholomew Quillfeather', 'bart.q@realclinic.com', 'busy');
insert into public.team_a values (1, null);
insert into public.team_b values (1, 1);
update public.team_a set b_id = 1;
insert into public.visits values (1, '2025-06-01', 'margaret.thistlewood@realclinic.com'), (2, '2026-02-01', 'bart.q@realclinic.com');
insert into public.audit_log select now() - make_interval(days => i % 100), 'Shelbyville visit ' || i from generate_series(1, 200000) i;
"#;

pub(crate) fn setup_shapes() -> Setup {
    // Odd schema shapes standing for what production already holds.
    let (source, target, project) =
        production_with("9001_shapes", SHAPES_UP, SHAPES_DOWN, SHAPES_RULES, &[SOURCE_DATA, SHAPES_DATA]);
    Setup { source, target, project }
}

#[test]
fn schema_shapes() {
    let s = setup_shapes();
    s.sync(&[]).ok();
    s.assert_no_planted();
    let mut target = s.target.client();
    let row = target
        .query_one(
            "select count(*), count(manager_id), bool_and(name_upper = upper(full_name)), string_agg(array_to_string(tags, ','), ''),
                    string_agg(mood::text, ',' order by id), max(profile ->> 'shift'), bool_and(profile -> 'phone' = 'null'::jsonb)
             from public.staff",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
    assert_eq!(row.get::<_, i64>(1), 1, "the self-reference was lost");
    assert!(row.get::<_, bool>(2), "the generated column was not recomputed");
    assert_eq!(row.get::<_, String>(3), "front,desk");
    assert_eq!(row.get::<_, String>(4), "calm,busy");
    assert_eq!(row.get::<_, String>(5), "early");
    // The identity goes on past the copied ids.
    let id: i64 =
        target.query_one("insert into public.staff (full_name) values ('new') returning id", &[]).unwrap().get(0);
    assert_eq!(id, 3);
    let cycle: i64 = target
        .query_one("select count(*) from public.team_a a join public.team_b b on b.a_id = a.id and a.b_id = b.id", &[])
        .unwrap()
        .get(0);
    assert_eq!(cycle, 1);
    let partitions: (i64, i64) = {
        let r = target
            .query_one(
                "select (select count(*) from public.visits_2025), (select count(*) from public.visits_2026)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(partitions, (1, 1));
    let dates = "select count(*), md5(string_agg(at::text, ',' order by at)) from public.audit_log";
    let (source_dates, target_dates) =
        (s.source.client().query_one(dates, &[]).unwrap(), target.query_one(dates, &[]).unwrap());
    assert_eq!(target_dates.get::<_, i64>(0), 200_000);
    assert_ne!(source_dates.get::<_, String>(1), target_dates.get::<_, String>(1), "no date was shifted");
    // One person's email is one pseudonym in a column, in another table and inside JSON.
    let same: bool = target
        .query_one(
            "select (select email from public.staff where id = 1) = (select patient_email from public.visits where id = 1)
                and (select email from public.staff where id = 1) = (select profile ->> 'email' from public.staff where id = 1)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(same);
}

//! Tests for `cargo xtask stage-sync` on schemas this repository didn't design: a Prisma-style
//! application (quoted mixed-case names, text ids, unique indexes that are not constraints,
//! jsonb, text arrays) with a sequence used only by a default and a materialized view.

use crate::{
    harness::{Project, TestCluster},
    stage_sync::KEY,
};

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
settings = { rule = "jsonb", allow = ["theme", "locale"], others = "text" }
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

struct Shapes {
    _source: TestCluster,
    target: TestCluster,
    project: Project,
}

fn setup() -> Shapes {
    let (source, target) = (TestCluster::start(), TestCluster::start());
    let mut project = Project::new();
    project.with_migrations().secret(KEY);
    // Numbered far from the real sequence, so the next real migration never clashes.
    project.migration("9101_prisma.up.sql", PRISMA_UP).migration("9101_prisma.down.sql", PRISMA_DOWN);
    // What production already holds, not a migration under review: the lint baseline
    // accepts it, so `migrate up --env production` does too.
    project.xtask(&["migrate", "lint", "--update-baseline", "migrations/9101_prisma.up.sql"]).ok();
    let rules =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/stage-sync.toml"))
            .unwrap();
    std::fs::write(project.root.join("env/stage-sync.toml"), format!("{rules}\n{PRISMA_RULES}")).unwrap();
    project.env_file(".env.production", &format!("DATABASE_URL={}\n", source.production_url()));
    project.env_file(".env.production.local", &format!("STAGE_SYNC_KEY={KEY}\n"));
    source.stamp("production");
    project.xtask(&["migrate", "up", "--env", "production", "--confirm", "yovbdmjwrrgardkgrenc"]).ok();
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &target.url()).ok();
    source.client().batch_execute(PRISMA_DATA).unwrap();
    Shapes { _source: source, target, project }
}

impl Shapes {
    fn sync(&self, extra: &[&str]) -> crate::harness::Run<'_> {
        let mut args = vec!["stage-sync", "--from", "production", "--to", "test", "--yes"];
        args.extend_from_slice(extra);
        self.project.xtask(&args).env("DATABASE_URL", &self.target.url())
    }

    fn set_rule(&self, from: &str, to: &str) {
        let path = self.project.root.join("env/stage-sync.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from}");
        std::fs::write(path, text.replace(from, to)).unwrap();
    }
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
    s.set_rule("others = \"text\"", "others = \"redact\"");
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
    s._source
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

//! Tests for stage-sync's binary COPY against types and table shapes a real schema has:
//! contrib extension types, enum arrays, domains over domains, composites, every odd
//! built-in, BC and far-future dates, numeric specials, text keys full of escapes,
//! partitions, dropped columns, wide and huge rows. Each table is synced in both formats
//! and the targets must be identical, value for value.

use crate::{
    harness::TestCluster,
    stage_sync_fixtures::{self, production_with},
};

const TYPES_UP: &str = r#"-- Types and shapes of real projects, for the binary COPY.
create schema if not exists extensions;
create extension if not exists citext with schema extensions;
create extension if not exists hstore with schema extensions;
create extension if not exists ltree with schema extensions;
create extension if not exists cube with schema extensions;
create extension if not exists pg_trgm with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
create type public.mood as enum ('low', 'high', 'odd\label');
create domain public.posint as integer check (value > 0);
create domain public.small_posint as public.posint check (value < 100000000);
create domain public.email_t as text check (value like '%@%');
create domain public.mood_d as public.mood;
create type public.dim as (w numeric, label text);
create domain public.name_list as text[] check (cardinality(value) < 10);
create domain public.settings as jsonb check (jsonb_typeof(value) = 'object');
create domain public.ref_id as uuid;
create domain public.visit_day as date check (value > '1900-01-01');
create domain public.fee as numeric(10, 2) check (value >= 0);
create domain public.deep_settings as public.settings check (value ? 'email');

create table public.ty_ext (
  id uuid primary key default extensions.uuid_generate_v4(),
  email extensions.citext, attrs extensions.hstore, path extensions.ltree, box extensions.cube, note text
);
create index ty_ext_note_trgm on public.ty_ext using gin (note extensions.gin_trgm_ops);

create table public.ty_user (
  id integer primary key, moods public.mood[], mood public.mood_d, n public.small_posint, dims public.dim,
  seen date
);

create table public.ty_builtin (
  id bigint generated always as identity primary key,
  price money, span interval, at_time time, at_timetz timetz, doc tsvector,
  ip inet, net cidr, mac macaddr, flags bit(4), bits varbit,
  wide numeric(1000, 990), tiny numeric, amount numeric, score float8,
  born date, at timestamp, at_tz timestamptz,
  positive public.posint, mood public.mood, contact public.email_t, code char(10), label varchar(200), aliases text[],
  during tstzrange, days daterange, spans int4multirange, page xml, spot point, nums numeric[], ok bool,
  grade "char", lsn pg_lsn, route jsonpath, refs uuid[], times timestamptz[],
  twice bigint generated always as (id * 2) stored
);

create table public.ty_float (id integer primary key, score float8, ratio real);

create table public.ty_keys (k text, u uuid, n integer, at date, amount numeric, primary key (u, n, k));

create table public.ty_part (id integer, region text, at timestamptz, amount numeric, primary key (id, region))
  partition by list (region);
create table public.ty_part_eu partition of public.ty_part for values in ('eu');
create table public.ty_part_rest partition of public.ty_part default;
-- Attached later, its columns in another order: rows are converted on the way in.
create table public.ty_part_us (amount numeric, at timestamptz, region text not null, id integer not null);
alter table public.ty_part attach partition public.ty_part_us for values in ('us');

create table public.ty_dropped (id integer primary key, gone text, zeta text, alpha date, tail numeric);
alter table public.ty_dropped drop column gone;

create table public.ty_big (id integer primary key, body text, doc jsonb);
create table public.ty_empty (id uuid primary key, at timestamptz, email text);
create table public.ty_short (id integer primary key, name varchar(5), code char(3));
create table public.ty_names (id integer primary key, tag name);
-- Masking through domains over the types binary COPY converts.
create table public.ty_domains (
  id public.ref_id primary key, names public.name_list, prefs public.settings, visit public.visit_day,
  amount public.fee, deep public.deep_settings, small public.small_posint
);
do $$ begin
  execute 'create table public.ty_wide (id integer primary key, '
    || (select string_agg(format('c%s text', i), ', ') from generate_series(1, 199) i) || ')';
end $$;
"#;

const TYPES_DOWN: &str = "drop table public.ty_ext, public.ty_user, public.ty_builtin, public.ty_float, public.ty_keys,
  public.ty_part, public.ty_dropped, public.ty_big, public.ty_empty, public.ty_short, public.ty_names, public.ty_domains, public.ty_wide;
drop type public.dim;
drop domain public.deep_settings;
drop domain public.name_list, public.settings, public.ref_id, public.visit_day, public.fee;
drop domain public.mood_d, public.email_t, public.small_posint, public.posint;
drop type public.mood;
";

/// Every synced table, and the COPY format its types and rules call for.
const TABLES: [(&str, &str); 13] = [
    ("ty_big", "binary"),
    ("ty_builtin", "binary"),
    ("ty_domains", "binary"),
    ("ty_dropped", "binary"),
    ("ty_empty", "binary"),
    // Contrib types have other oids in every database: text.
    ("ty_ext", "text"),
    // Jitter on floats is only done on their text.
    ("ty_float", "text"),
    ("ty_keys", "binary"),
    // `name` is cut to 63 bytes from text but refused from binary: masked, it goes text.
    ("ty_names", "text"),
    ("ty_part", "binary"),
    ("ty_short", "binary"),
    // Enum arrays carry the enum's oid, composites their fields' oids: text.
    ("ty_user", "text"),
    ("ty_wide", "binary"),
];

/// Rules for the tables, with the wide table's 199 columns added.
fn rules() -> String {
    let keep = r#"{ rule = "keep", reviewed = true }"#;
    let long = "[redacted] ".repeat(7);
    let mut rules = format!(
        r#"
[tables."public.ty_ext".columns]
id = "keep"
email = "email"
attrs = {keep}
path = {keep}
box = {keep}
note = "text"

[tables."public.ty_user".columns]
id = "keep"
moods = {keep}
mood = {keep}
n = {{ rule = "numeric_jitter", percent = 10 }}
dims = {keep}
seen = {{ rule = "date_shift", days = 30 }}

[tables."public.ty_builtin".columns]
id = "keep"
price = {keep}
span = {keep}
at_time = {keep}
at_timetz = {keep}
doc = {keep}
ip = {keep}
net = {keep}
mac = {keep}
flags = {keep}
bits = {keep}
wide = {{ rule = "numeric_jitter", percent = 5 }}
tiny = {{ rule = "numeric_jitter", percent = 5 }}
amount = {{ rule = "numeric_jitter", percent = 25 }}
score = {keep}
born = {{ rule = "date_shift", days = 40 }}
at = {{ rule = "date_shift", days = 40 }}
at_tz = {{ rule = "date_shift", days = 40 }}
positive = {{ rule = "numeric_jitter", percent = 10 }}
mood = {keep}
contact = "email"
code = "zip"
label = "company"
aliases = "first_name"
during = {keep}
days = {keep}
spans = {keep}
page = {keep}
spot = {keep}
nums = {keep}
ok = {keep}
grade = {keep}
lsn = {keep}
route = {keep}
refs = {keep}
times = {keep}

[tables."public.ty_float".columns]
id = "keep"
score = {{ rule = "numeric_jitter", percent = 5 }}
ratio = {{ rule = "numeric_jitter", percent = 5 }}

[tables."public.ty_keys".columns]
k = {keep}
u = "keep"
n = "keep"
at = {{ rule = "date_shift", days = 300 }}
amount = {{ rule = "numeric_jitter", percent = 30 }}

[tables."public.ty_part".columns]
id = "keep"
region = {keep}
at = {{ rule = "date_shift", days = 20 }}
amount = {{ rule = "numeric_jitter", percent = 20 }}

[tables."public.ty_dropped".columns]
zeta = "first_name"
tail = {{ rule = "numeric_jitter", percent = 20 }}
alpha = {{ rule = "date_shift", days = 20 }}
id = "keep"

[tables."public.ty_big".columns]
id = "keep"
body = "text"
doc = {{ rule = "jsonb", keys = {{ email = "email" }} }}

[tables."public.ty_empty".columns]
id = "keep"
at = {{ rule = "date_shift", days = 3 }}
email = "email"

[tables."public.ty_short".columns]
id = "keep"
name = {keep}
code = {keep}

[tables."public.ty_names".columns]
id = "keep"
tag = {{ rule = "redact", value = "{long}" }}

[tables."public.ty_domains".columns]
id = "uuid"
names = "full_name"
prefs = {{ rule = "jsonb", keys = {{ email = "email" }} }}
visit = {{ rule = "date_shift", days = 10 }}
amount = {{ rule = "numeric_jitter", percent = 10 }}
deep = {{ rule = "jsonb", keys = {{ email = "email" }} }}
small = {{ rule = "numeric_jitter", percent = 10 }}

[tables."public.ty_wide".columns]
id = "keep"
"#
    );
    for i in 1..200 {
        rules.push_str(&if i % 20 == 0 { format!("c{i} = \"city\"\n") } else { format!("c{i} = {keep}\n") });
    }
    rules
}

const TYPES_DATA: &str = r#"
insert into public.ty_ext (email, attrs, path, box, note)
select 'Person' || i || '@Clinic.example', hstore('k' || i, 'v"' || i), ('top.c' || i)::extensions.ltree,
       extensions.cube(i, i + 1), 'note number ' || i
from generate_series(1, 200) i;
insert into public.ty_ext (id) values ('00000000-0000-4000-8000-000000000000');

insert into public.ty_user
select i, array['low', 'odd\label', null]::public.mood[], (array['low', 'high'])[1 + i % 2]::public.mood_d,
       10 + i, row(i * 1.5, 'dim ' || i)::public.dim, date '2024-06-01' + i
from generate_series(1, 200) i;
insert into public.ty_user (id) values (0);

insert into public.ty_builtin (price, span, at_time, at_timetz, doc, ip, net, mac, flags, bits, wide, tiny, amount,
  score, born, at, at_tz, positive, mood, contact, code, label, aliases, during, days, spans, page, spot, nums, ok,
  grade, lsn, route, refs, times)
select i * 12.34, make_interval(months => i, days => -i, secs => i * 1.5), time '08:00' + make_interval(mins => i),
       timetz '08:00:00+05:30' + make_interval(mins => i), to_tsvector('simple', 'tooth ' || i || ' crown'),
       ('10.1.' || (i % 250) || '.7/24')::inet, ('10.' || (i % 250) || '.0.0/16')::cidr,
       ('08:00:2b:01:02:' || lpad(to_hex(i % 256), 2, '0'))::macaddr, (i % 16)::bit(4), (i % 1000)::bit(10)::varbit,
       ('1.' || repeat('0123456789', 99))::numeric(1000, 990) * i,
       ('0.' || repeat('0', 40) || i)::numeric,
       case i % 9 when 0 then 'NaN'::numeric when 1 then 'Infinity' when 2 then '-Infinity' when 3 then 0
                  when 4 then -i * 3.125 when 5 then -0.0001 else i * 1000000000000.5 end,
       i * 0.1,
       case i % 6 when 0 then date '0044-03-15 BC' - i when 1 then date '0001-12-31 BC' - i % 20
                  when 2 then date '12345-06-07' + i when 3 then 'infinity' else date '2024-02-28' + i end,
       case i % 4 when 0 then timestamp '0100-02-28 12:00:00 BC' + make_interval(days => i)
                  when 1 then timestamp '200000-01-01 00:00:00.5' + make_interval(days => i)
                  else timestamp '2024-02-27 23:59:59.999999' + make_interval(days => i) end,
       case i % 3 when 0 then timestamptz '0001-01-01 00:00:00+00 BC' + make_interval(days => i)
                  when 1 then timestamptz '2024-03-30 23:30:00+00' + make_interval(days => i)
                  else '-infinity' end,
       i, (array['low', 'high', 'odd\label'])[1 + i % 3]::public.mood, 'p' || i || '@clinic.example',
       'Z' || lpad(i::text, 5, '0'), 'Clinic ' || i,
       case i % 5 when 0 then '[0:1]={Ann,"Bo b"}'::text[] when 1 then null else array['X' || i, null] end,
       tstzrange(timestamptz '2024-03-10 01:30:00+00' + make_interval(hours => i), null), daterange(date '2024-01-01', date '2024-01-01' + i),
       int4multirange(int4range(1, i + 2), int4range(i + 5, i + 9)), xmlelement(name chart, xmlattributes(i as n), 'tooth & co'),
       point(i, -i / 3.0), array[i / 7.0, 'NaN', null], i % 2 = 0, chr(65 + i % 26)::"char", ('0/' || to_hex(i * 4096))::pg_lsn,
       ('$.teeth[' || i || ']')::jsonpath, array[gen_random_uuid(), null], array[now(), 'infinity', timestamptz '0001-01-01 00:00:00+00 BC']
from generate_series(1, 300) i;
insert into public.ty_builtin default values;

insert into public.ty_float select i, i * 1.25e10, i / 3.0 from generate_series(1, 200) i;
insert into public.ty_float values (0, 'NaN', 'Infinity'), (-1, null, null), (-2, 1.5e-7, 2.5e-5);

insert into public.ty_keys
select k, ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, i % 3, date '2024-01-01' + i, i * 2.5
from (values (E'back\\slash'), (E'tab\there'), (E'new\nline'), (E'cr\rret'), ('unicode ü 東京 🦷'), (E'ctl\x01\x08\x0b\x0c'),
             ('\N'), (''), ('plain')) v(k),
     generate_series(1, 40) i;

insert into public.ty_part
select i, (array['eu', 'us', 'apac'])[1 + i % 3], timestamptz '2025-01-01 10:00:00+00' + make_interval(hours => i * 7),
       i * 3.5
from generate_series(1, 600) i;
insert into public.ty_part (id, region) values (0, 'eu');

insert into public.ty_dropped select i, 'Zeta' || i, date '2023-01-01' + i, i * 10 from generate_series(1, 200) i;
insert into public.ty_dropped (id) values (0);
-- Dropped and re-added in the source's history only: its attnums differ from the target's.
alter table public.ty_dropped drop column tail;
alter table public.ty_dropped add column tail numeric;
update public.ty_dropped set tail = id * 7.25 where id > 0;

insert into public.ty_big
select i, repeat('tooth enamel ' || i || E'\t\\ ', 80000),
       jsonb_build_object('email', 'big' || i || '@clinic.example',
                          'items', (select jsonb_agg(jsonb_build_object('n', j, 'note', repeat('x', 20))) from generate_series(1, 20000) j))
from generate_series(1, 3) i;
insert into public.ty_big (id) values (0);

insert into public.ty_names select i, 'tag ' || i from generate_series(1, 20) i;
insert into public.ty_domains
select md5('d' || i)::uuid, array['Ann ' || i, '', 'NULL', null], jsonb_build_object('email', 'd' || i || '@clinic.example'),
       date '2024-05-01' + i, i * 4.25, jsonb_build_object('email', 'deep' || i || '@clinic.example', 'n', i), i + 10
from generate_series(1, 100) i;
insert into public.ty_domains (id) values ('00000000-0000-4000-8000-000000000000');
insert into public.ty_short select i, 'n' || i, 'c' || i from generate_series(1, 50) i;
insert into public.ty_short (id) values (0);

insert into public.ty_wide (id, c1, c20, c100, c199) select i, 'a' || i, 'City ' || i, E'x\ty', 'last' from generate_series(1, 100) i;
insert into public.ty_wide (id) values (0);
"#;

/// Each table's rows in a fixed order, as one digest per table.
fn digests(cluster: &TestCluster) -> Vec<String> {
    stage_sync_fixtures::digests(cluster, &TABLES.map(|(t, _)| t))
}

/// `copy_format` of each table in the `--json` summary.
fn formats(stdout: &str) -> Vec<(String, String)> {
    stage_sync_fixtures::formats(stdout, &TABLES.map(|(t, _)| t))
}

#[test]
fn every_type_and_shape_gives_the_same_target_in_both_formats() {
    let (source, target, project) = production_with("9301_types", TYPES_UP, TYPES_DOWN, &rules(), &[TYPES_DATA]);
    // A production database set up by someone else: dates day first, floats rounded to 15
    // digits, intervals in SQL style, times in New York (with daylight saving and, before
    // 1883, local mean time).
    source
        .client()
        .batch_execute(
            "do $$ begin
               execute format('alter database %I set datestyle = %L', current_database(), 'SQL, DMY');
               execute format('alter database %I set extra_float_digits = 0', current_database());
               execute format('alter database %I set timezone = %L', current_database(), 'America/New_York');
               execute format('alter database %I set intervalstyle = %L', current_database(), 'sql_standard');
             end $$",
        )
        .unwrap();
    // A column added and dropped in the target's history only.
    target
        .client()
        .batch_execute(
            "alter table public.ty_dropped add column scratch int; alter table public.ty_dropped drop column scratch;",
        )
        .unwrap();
    let sync = |format: &str| {
        project
            .xtask(&["stage-sync", "--from", "production", "--to", "test", "--yes", "--json"])
            .env("DATABASE_URL", &target.url())
            .env("XTASK_STAGE_SYNC_FORMAT", format)
    };
    let binary = sync("binary").ok();
    let expected: Vec<(String, String)> = TABLES.iter().map(|(t, f)| (t.to_string(), f.to_string())).collect();
    assert_eq!(formats(&binary.stdout), expected);
    let after_binary = digests(&target);
    let text = sync("text").ok();
    assert!(formats(&text.stdout).iter().all(|(_, f)| f == "text"));
    let after_text = digests(&target);
    for (b, t) in after_binary.iter().zip(&after_text) {
        assert_eq!(b, t, "the two formats gave different targets");
    }

    // The shifts are shifts: every date within its rule's days of the source's, BC and
    // far-future ones too. As day and second numbers, which no date style changes.
    let born: Vec<String> = source.strings(
        "select format('(%s, %s, %s)', id, coalesce((born - date '2000-01-01')::text, 'null'),
                       coalesce(extract(epoch from at)::text, 'null'))
         from public.ty_builtin where born is distinct from 'infinity'",
    );
    let checked = target.strings(&format!(
        "select format('%s of %s', count(*) filter (where not abs(t.born - date '2000-01-01' - s.born) between 1 and 40
                                                       or not abs(extract(epoch from t.at) - s.at) between 86400 and 40 * 86400),
                      count(*))
         from public.ty_builtin t join (values {}) s(id, born, at) using (id)",
        born.join(",")
    ));
    assert_eq!(checked, ["0 of 251"], "dates moved further than their rule says, or not at all");
    // Floats printed with an exponent are moved, not rounded to zero.
    let tiny = target.strings("select format('%s %s', score between 1.4e-7 and 1.6e-7, ratio between 2.3e-5 and 2.7e-5) from public.ty_float where id = -2");
    assert_eq!(tiny, ["t t"]);
}

#[test]
fn values_a_rule_cannot_give_fail_both_formats_alike() {
    let (source, target, project) = production_with("9302_types", TYPES_UP, TYPES_DOWN, &rules(), &[TYPES_DATA]);
    let rules_path = project.root.join("env/stage-sync.toml");
    let sync = |format: &str| {
        project
            .xtask(&["stage-sync", "--from", "production", "--to", "test", "--yes"])
            .env("DATABASE_URL", &target.url())
            .env("XTASK_STAGE_SYNC_FORMAT", format)
    };
    sync("binary").ok();
    let before = digests(&target);
    for (from, to, says) in [
        (
            "[tables.\"public.ty_short\".columns]\nid = \"keep\"\nname = { rule = \"keep\", reviewed = true }",
            "[tables.\"public.ty_short\".columns]\nid = \"keep\"\nname = \"first_name\"",
            "value too long for type character varying(5)",
        ),
        (
            "code = { rule = \"keep\", reviewed = true }\n\n[tables.\"public.ty_names\"",
            "code = \"city\"\n\n[tables.\"public.ty_names\"",
            "value too long for type character(3)",
        ),
    ] {
        let text = std::fs::read_to_string(&rules_path).unwrap();
        assert!(text.contains(from), "{from}");
        std::fs::write(&rules_path, text.replacen(from, to, 1)).unwrap();
        for format in ["binary", "text"] {
            let out = sync(format).fails("cannot load public.ty_short into the target");
            assert!(out.stderr.contains(says), "{format}: {}", out.stderr);
            assert_eq!(digests(&target), before, "{format}: the target changed");
        }
        std::fs::write(&rules_path, text).unwrap();
    }

    // A numeric beyond a float's range: jitter would make it infinite, in either format.
    source
        .client()
        .batch_execute("update public.ty_builtin set amount = ('1' || repeat('0', 400))::numeric where id = 5")
        .unwrap();
    for format in ["binary", "text"] {
        let out = sync(format).fails("public.ty_builtin.amount: ");
        assert!(out.stderr.contains("cannot read the number `1000"), "{format}: {}", out.stderr);
        assert_eq!(digests(&target), before, "{format}: the target changed");
    }
}

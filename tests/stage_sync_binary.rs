//! Tests for stage-sync's two COPY formats: a table whose types and rules the binary form
//! handles goes binary, the rest text, and both give the same target, value for value.

use crate::{
    harness::TestCluster,
    stage_sync_fixtures::{self, production_with, setup},
};

const WIRE_UP: &str = r#"-- Every masking rule on every type the binary COPY converts, and types it only copies.
create type public.tone as enum ('calm', 'busy');
create table public.wire_keyed (
  id uuid primary key,
  email text, nick varchar(80), code char(8), ref uuid,
  born date, seen_at timestamptz, local_at timestamp,
  amount numeric(12,2), ratio numeric, visits integer, big bigint, small smallint,
  prefs json, profile jsonb, aliases text[], grid varchar(40)[],
  tone public.tone, weight float8, host_ip inet, span interval, blob bytea, tags text[]
);
create table public.wire_text_key (key text primary key, happened date not null, amount numeric);
create table public.wire_no_key (at timestamptz, note text);
create table public.wire_float (id int primary key, score float8);
"#;

const WIRE_DOWN: &str = "drop table public.wire_keyed, public.wire_text_key, public.wire_no_key, public.wire_float;\ndrop type public.tone;\n";

const WIRE_RULES: &str = r#"
[tables."public.wire_keyed".columns]
id = "keep"
email = "email"
nick = { rule = "redact", value = "someone\tquiet" }
code = "zip"
ref = "uuid"
born = { rule = "date_shift", days = 40 }
seen_at = { rule = "date_shift", days = 40 }
local_at = { rule = "date_shift", days = 40 }
amount = { rule = "numeric_jitter", percent = 20 }
ratio = { rule = "numeric_jitter", percent = 20 }
visits = { rule = "numeric_jitter", percent = 20 }
big = { rule = "numeric_jitter", percent = 20 }
small = { rule = "numeric_jitter", percent = 20 }
prefs = { rule = "jsonb", keys = { email = "email", phone = "null" } }
profile = { rule = "jsonb", allow = ["theme"], others = "text" }
aliases = "first_name"
grid = "last_name"
tone = "keep"
weight = "keep"
host_ip = { rule = "keep", reviewed = true }
span = "keep"
blob = "keep"
tags = "keep"

[tables."public.wire_text_key".columns]
key = "keep"
happened = { rule = "date_shift", days = 9 }
amount = { rule = "numeric_jitter", percent = 5 }

[tables."public.wire_no_key".columns]
at = { rule = "date_shift", days = 9 }
note = "text"

[tables."public.wire_float".columns]
id = "keep"
score = { rule = "numeric_jitter", percent = 5 }
"#;

const WIRE_DATA: &str = r#"
insert into public.wire_keyed
select ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
       case when i % 7 = 0 then null else 'person' || i || E'@clinic.example\tx' end,
       'Nick "' || i || E'\\\\',
       '6' || lpad(i::text, 4, '0'),
       md5(i::text)::uuid,
       case i % 50 when 0 then 'infinity'::date when 1 then '-infinity'::date else date '2024-02-20' + i end,
       timestamptz '2024-03-09 23:30:00+00' + make_interval(hours => i),
       case when i % 50 = 2 then 'infinity'::timestamp else timestamp '2020-01-01 08:15:00.123456' + make_interval(days => i) end,
       case i % 13 when 0 then -12.5 when 1 then 0 else i * 101.37 end,
       case i % 11 when 0 then 'NaN'::numeric when 1 then 0.000123 else i / 7.0 end,
       i * 3, i::bigint * 1000000007, (i % 300)::smallint,
       json_build_object('email', 'p' || i || '@clinic.example', 'phone', '555-01' || i, 'n', i),
       jsonb_build_object('theme', 'dark', 'name', 'Person ' || i, 'deep', jsonb_build_array('x' || i, 1)),
       array['Ann' || i, null, E'Quote"d\\\\' || i],
       case when i % 3 = 0 then '{{a,b},{c,d}}'::varchar(40)[] else array[]::varchar(40)[] end,
       (array['calm', 'busy'])[1 + i % 2]::public.tone,
       i * 0.1, ('10.0.' || (i % 250) || '.1')::inet, make_interval(mins => i), decode(md5(i::text), 'hex'),
       array['front', E'back\\tdesk']
from generate_series(1, 3000) i;
insert into public.wire_text_key
select E'k\t' || i || E'\\x\b\f', date '2025-01-01' + i % 400, i * 1.5 from generate_series(1, 500) i;
insert into public.wire_no_key select timestamptz '2025-05-05 05:05:05+02' + make_interval(days => i), 'note ' || i
from generate_series(1, 300) i;
insert into public.wire_float select i, i * 1.25 from generate_series(1, 300) i;
"#;

const TABLES: [&str; 4] = ["wire_keyed", "wire_text_key", "wire_no_key", "wire_float"];

/// Each table's rows in a fixed order, as one digest.
fn digests(cluster: &TestCluster) -> Vec<String> {
    stage_sync_fixtures::digests(cluster, &TABLES)
}

/// `copy_format` of each table in the `--json` summary.
fn formats(stdout: &str) -> Vec<String> {
    stage_sync_fixtures::formats(stdout, &TABLES).into_iter().map(|(_, format)| format).collect()
}

#[test]
fn binary_and_text_copies_give_the_same_target() {
    let (source, target, project) = production_with("9201_wire", WIRE_UP, WIRE_DOWN, WIRE_RULES, &[WIRE_DATA]);
    let sync = |format: Option<&str>| {
        let mut run = project
            .xtask(&["stage-sync", "--from", "production", "--to", "test", "--yes", "--json"])
            .env("DATABASE_URL", &target.url());
        if let Some(format) = format {
            run = run.env("XTASK_STAGE_SYNC_FORMAT", format);
        }
        run.ok()
    };
    let binary = sync(None);
    assert_eq!(
        formats(&binary.stdout),
        ["binary", "binary", "text", "text"],
        "keyed tables go binary; rows keyed by their text line, and float jitter, go text"
    );
    let after_binary = digests(&target);
    let text = sync(Some("text"));
    assert_eq!(formats(&text.stdout), ["text"; 4]);
    assert_eq!(digests(&target), after_binary, "the two formats gave different targets");

    // And the masking did happen: nothing masked is as it was in the source.
    let changed = "select count(*) filter (where t.email = s.email), count(*) filter (where t.ref = s.ref),
                          count(*) filter (where t.born = s.born and s.born <> 'infinity' and s.born <> '-infinity'),
                          count(*) filter (where t.amount = s.amount and s.amount <> 0)
                   from public.wire_keyed t join source_rows s using (id)";
    let rows: Vec<String> = source.strings(
        "select format('(%L::uuid, %L, %L::uuid, %L::date, %L::numeric)', id, email, ref, born, amount) from public.wire_keyed",
    );
    let mut client = target.client();
    client
        .batch_execute(&format!(
            "create temp table source_rows (id uuid, email text, ref uuid, born date, amount numeric);
             insert into source_rows values {}",
            rows.join(",")
        ))
        .unwrap();
    let row = client.query_one(changed, &[]).unwrap();
    for i in 0..4 {
        assert_eq!(row.get::<_, i64>(i), 0, "column {i} kept a source value");
    }
    let special: (i64, i64) = {
        let r = client
            .query_one(
                "select count(*) filter (where born in ('infinity', '-infinity')), count(*) filter (where ratio = 'NaN')
                 from public.wire_keyed",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(special, (120, 272), "infinities and NaN stay as they are");
}

#[test]
fn a_masked_value_equal_to_a_source_value_fails_the_sync_in_either_format() {
    let (source, target, project) = production_with("9202_wire", WIRE_UP, WIRE_DOWN, WIRE_RULES, &[WIRE_DATA]);
    // The redaction text is some person's real value in the source: a leak, whichever row.
    source
        .client()
        .batch_execute(
            "update public.wire_keyed set nick = E'someone\\tquiet' where id = '00000000-0000-4000-8000-000000000077'",
        )
        .unwrap();
    // Inside JSON too, where the check looks at what the masking wrote: a number under a
    // redacted key becomes "[redacted]", which one source document holds as a real value.
    let rules = project.root.join("env/stage-sync.toml");
    let text = std::fs::read_to_string(&rules).unwrap();
    assert!(text.contains(r#"phone = "null" }"#));
    std::fs::write(&rules, text.replace(r#"phone = "null" }"#, r#"phone = "redact" }"#)).unwrap();
    source
        .client()
        .batch_execute(
            r#"update public.wire_keyed set prefs = '{"phone": "[redacted]"}' where id = '00000000-0000-4000-8000-000000000078';
               update public.wire_keyed set prefs = '{"phone": 5550100}' where id = '00000000-0000-4000-8000-000000000079';"#,
        )
        .unwrap();
    let before = digests(&target);
    for format in ["binary", "text"] {
        let out = project
            .xtask(&["stage-sync", "--from", "production", "--to", "test", "--yes"])
            .env("DATABASE_URL", &target.url())
            .env("XTASK_STAGE_SYNC_FORMAT", format)
            .fails("verification failed, nothing was changed");
        assert!(
            out.stderr.contains("public.wire_keyed.nick: 3000 value(s) in the target equal a source value (leak)"),
            "{format}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("public.wire_keyed.prefs: 1 value(s) in the target equal a source value (leak)"),
            "{format}: {}",
            out.stderr
        );
        assert_eq!(digests(&target), before, "{format}: the target changed");
    }
}

#[test]
fn a_row_that_breaks_a_kept_foreign_key_fails_the_sync() {
    // Small tables keep their keys through the load, and the rows pointing at them are
    // checked by one query per table: an orphan the source let in (its checks were off) is
    // found there, named, and nothing is changed.
    let s = setup();
    s.source
        .client()
        .batch_execute(
            "set session_replication_role = replica;
             insert into public.daily_dentist_production (clinic_id, location_id, provider_id, date, production)
             values ('c0000000-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000001',
                     'dddddddd-0000-4000-8000-000000000009', '2026-06-30', 1);",
        )
        .unwrap();
    let before = s.target.checksum();
    let out = s.sync(&[]).fails("verification failed, nothing was changed: a key or index does not hold");
    assert!(
        out.stderr.contains(
            "1 row(s) of daily_dentist_production break foreign key daily_dentist_production_provider_fkey to providers"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(s.target.checksum(), before, "the target changed");
}

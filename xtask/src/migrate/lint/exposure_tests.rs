//! The exposure rules, Squawk style: SQL text in, findings out. Each case is a way of
//! putting a table or view where the API reaches it; each must give a finding, and the
//! safe spelling of the same thing must not.

use super::{script, tracking};

/// `rule line` of every exposure finding in `sql`, in order.
fn findings(sql: &str) -> Vec<String> {
    let parsed = script::parse(sql);
    tracking::check(&parsed.statements)
        .into_iter()
        .map(|(k, rule, _, _)| format!("{rule} {}", parsed.statements[k].line))
        .collect()
}

const RLS: &str =
    "\nalter table public.x enable row level security;\ncreate policy p on public.x for select using (true);\n";

#[test]
fn every_way_of_creating_a_public_table_needs_rls() {
    for create in [
        "create table public.x (a int);",
        "create table x (a int);",
        "create unlogged table \"public\".x (a int);",
        "create table public.x as select 1 as a;",
        "create table Public.X as table public.clinics;",
        "select 1 as a into public.x;",
        "select 1 as a into table x;",
        "create table public.x partition of public.y for values in (1);",
        "create table public/* a comment */.x (a int);",
        "create table U&\"\\0070ublic\".x (a int);",
        "create table \"public\" . \"x\" (a int);",
        "explain analyze create table public.x as select 1;",
    ] {
        assert_eq!(findings(create), ["rls-required 1"], "{create}");
        assert_eq!(findings(&format!("{create}{RLS}")), Vec::<String>::new(), "{create} with RLS");
    }
    // Temporary and private tables are not reachable.
    for create in ["create temp table x (a int);", "select 1 into temporary x;", "create table app_private.x (a int);"]
    {
        assert_eq!(findings(create), Vec::<String>::new(), "{create}");
    }
}

#[test]
fn moving_or_renaming_into_place_needs_rls() {
    assert_eq!(findings("alter table app_private.x set schema public;"), ["rls-required 1"]);
    assert_eq!(findings(&format!("alter table app_private.x set schema public;{RLS}")), Vec::<String>::new());
    assert_eq!(
        findings("create table app_private.x (a int);\nalter table app_private.x set schema public;"),
        ["rls-required 2"]
    );
    // Followed through renames: RLS on the final name counts, and is needed.
    let renamed = "create table public.tmp (a int);\nalter table public.tmp rename to x;";
    assert_eq!(findings(renamed), ["rls-required 1"]);
    assert_eq!(findings(&format!("{renamed}{RLS}")), Vec::<String>::new());
    assert_eq!(findings("alter table public.clinics disable row level security;"), ["rls-required 1"]);
    assert_eq!(findings("alter table public.clinics enable row level security;"), Vec::<String>::new());
    assert_eq!(
        findings(
            "alter table app_private.x enable row level security;\nalter table app_private.x set schema public;\ncreate policy p on public.x using (true);"
        ),
        Vec::<String>::new()
    );
    assert_eq!(findings("alter schema staging_area rename to public;"), ["unanalysable-ddl 1"]);
    assert_eq!(findings("create schema public create table x (a int);"), ["rls-required 1"]);
    assert_eq!(findings("import foreign schema remote from server s into public;"), ["unanalysable-ddl 1"]);
    assert_eq!(findings("create schema other create table x (a int);"), Vec::<String>::new());
}

#[test]
fn tables_created_in_bodies_are_seen_and_unreadable_bodies_are_findings() {
    let in_do = "do $$\nbegin\n  create table public.x (a int);\nend $$;";
    assert_eq!(findings(in_do), ["rls-required 1"]);
    assert_eq!(findings(&format!("{in_do}{RLS}")), Vec::<String>::new());
    assert_eq!(
        findings("do $$ begin if true then create table public.x as select 1; end if; end $$;"),
        ["rls-required 1"]
    );
    assert_eq!(findings("do $$ begin execute 'create table public.x (a int)'; end $$;"), ["rls-required 1"]);
    assert_eq!(
        findings("do $$ begin execute format('create table %I.x (a int)', 'public'); end $$;"),
        ["unanalysable-ddl 1"]
    );
    assert_eq!(
        findings("do language plpython3u $$ plpy.execute('create table public.x (a int)') $$;"),
        ["unanalysable-ddl 1"]
    );
    assert_eq!(
        findings(
            "create function f() returns void language plpgsql as $f$ begin create table public.x (a int); end $f$;"
        ),
        ["rls-required 1"]
    );
    assert_eq!(
        findings("create function f() returns void language sql as 'create table public.x (a int)';"),
        ["rls-required 1"]
    );
    assert_eq!(findings("create procedure p() begin atomic select 1 into public.x; end;").len(), 1);
    assert_eq!(findings("select dblink_exec('create table public.x (a int)');"), ["unanalysable-ddl 1"]);
    assert_eq!(
        findings(
            "create function f() returns void language 'PLPGSQL' as $f$ begin create table public.x (a int); end $f$;"
        ),
        ["unanalysable-ddl 1"]
    );
    // A body that only computes gives nothing.
    assert_eq!(
        findings(
            "create function f() returns trigger language plpgsql as $$ begin new.a := now(); return new; end $$;"
        ),
        Vec::<String>::new()
    );
}

#[test]
fn views_in_public_must_run_as_the_caller() {
    assert_eq!(findings("create view public.v as select * from public.clinics;"), ["view-bypasses-rls 1"]);
    assert_eq!(
        findings("create or replace view v with (security_invoker = false) as select 1;"),
        ["view-bypasses-rls 1"]
    );
    assert_eq!(findings("create materialized view public.v as select * from public.clinics;"), ["view-bypasses-rls 1"]);
    assert_eq!(findings("alter view public.v set (security_invoker = off);"), ["view-bypasses-rls 1"]);
    assert_eq!(findings("alter view public.v reset (security_invoker);"), ["view-bypasses-rls 1"]);
    assert_eq!(findings("alter view app_private.v set schema public;"), ["view-bypasses-rls 1"]);
    for safe in [
        "create view public.v with (security_invoker = true) as select * from public.clinics;",
        "create view public.v with (security_invoker) as select 1;",
        "create view public.v with (security_barrier, security_invoker = on) as select 1;",
        "create view app_private.v as select * from public.clinics;",
        "alter view public.v set (security_invoker = true);",
    ] {
        assert_eq!(findings(safe), Vec::<String>::new(), "{safe}");
    }
}

#[test]
fn force_without_enable_leaves_rls_off() {
    let forced = "create table public.x (a int);\nalter table public.x force row level security;\ncreate policy p on public.x using (true);";
    assert_eq!(findings(forced), ["rls-required 1"]);
    assert_eq!(findings(&format!("{forced}\nalter table public.x enable row level security;")), Vec::<String>::new());
    assert_eq!(findings("alter table public.clinics no force row level security;"), Vec::<String>::new());
}

#[test]
fn alter_table_turning_a_views_security_invoker_off_is_a_finding() {
    let view = "create view public.v with (security_invoker = true) as select 1;\n";
    for alter in
        ["alter table public.v set (security_invoker = false);", "alter table public.v reset (security_invoker);"]
    {
        assert_eq!(findings(&format!("{view}{alter}")), ["view-bypasses-rls 2"], "{alter}");
    }
    assert_eq!(findings(&format!("{view}alter table public.v set (security_invoker = on);")), Vec::<String>::new());
}

#[test]
fn settings_that_change_how_later_sql_reads_are_findings() {
    // `search_path` made `t` mean app_private.t: RLS went there, public.t stayed open.
    let moved = "create table public.t (a int);\ncreate table app_private.t (a int);\nset search_path = app_private;\nalter table t enable row level security;\ncreate policy p on t using (true);";
    assert_eq!(findings(moved), ["rls-required 1", "unanalysable-ddl 3"]);
    for set in [
        "set local search_path to app_private, public;",
        "SET standard_conforming_strings = off;",
        "select set_config('search_path', 'app_private', false);",
        "select pg_catalog.set_config($$Standard_Conforming_Strings$$, 'off', false);",
        "select set_config(current_user, 'x', false);",
        "alter role postgres set search_path = x;",
        "alter database postgres set standard_conforming_strings to off;",
        "do $$ begin perform set_config('search_path', 'x', true); end $$;",
    ] {
        assert_eq!(findings(set), ["unanalysable-ddl 1"], "{set}");
    }
    for fine in [
        "select set_config('request.jwt.claims', '{}', true);",
        "create function f() returns int language sql set search_path = '' as $$ select 1 $$;",
        "alter function f() set search_path = '';",
        "set lock_timeout = '1s';",
    ] {
        assert_eq!(findings(fine), Vec::<String>::new(), "{fine}");
    }
}

#[test]
fn handing_the_api_roles_a_way_around_rls_is_a_finding() {
    for sql in [
        "create rule r as on insert to public.t do instead select * from app_private.s;",
        "create rule \"_RETURN\" as on select to t do instead select 1 as a;",
        "alter table public.t owner to authenticated;",
        "alter view public.v owner to \"anon\";",
        "alter role authenticated bypassrls;",
        "create role x superuser;",
        "grant postgres to authenticated;",
        "reassign owned by postgres to anon;",
    ] {
        assert_eq!(findings(sql), ["rls-bypass 1"], "{sql}");
    }
    for fine in [
        "create rule r as on insert to app_private.t do instead nothing;",
        "alter table public.t owner to postgres;",
        "grant select on public.t to authenticated;",
        "grant authenticated to postgres;",
        "grant anon, authenticated, service_role to authenticator;",
        "alter role authenticated nobypassrls;",
    ] {
        assert_eq!(findings(fine), Vec::<String>::new(), "{fine}");
    }
}

#[test]
fn what_a_body_protects_does_not_count_it_may_never_run() {
    let create = "create table public.x (a int);\n";
    for body in [
        "do $$ begin if false then alter table public.x enable row level security; end if; end $$;\ncreate policy p on public.x using (true);",
        "create function f() returns void language sql as $$ alter table public.x enable row level security $$;\ncreate policy p on public.x using (true);",
        "alter table public.x enable row level security;\ndo $$ begin if false then create policy p on public.x using (true); end if; end $$;",
        "do $$ begin if false then alter table public.x set schema app_private; end if; end $$;",
    ] {
        assert_eq!(findings(&format!("{create}{body}")), ["rls-required 1"], "{body}");
    }
    // What a body exposes still counts, wherever it moves a table.
    let moved = "create table app_private.x (a int);\ndo $$ begin execute 'alter table app_private.x set schema public'; end $$;";
    assert_eq!(findings(moved), ["rls-required 2"]);
}

#[test]
fn an_unqualified_enable_protects_only_what_it_surely_reaches() {
    // `"$user"` comes before `public` on the search path: with a schema named as the
    // migrating role, `x` is postgres.x, and public.x stays open.
    let shadowed = "create table public.x (a int);\ncreate schema postgres;\ncreate table postgres.x (a int);\nalter table x enable row level security;\ncreate policy p on x using (true);";
    assert_eq!(findings(shadowed), ["rls-required 1"]);
    let bare_after_schema = "create table x (a int);\ncreate schema postgres;\ncreate table postgres.x (a int);\nalter table x enable row level security;\ncreate policy p on x using (true);";
    assert_eq!(findings(bare_after_schema), ["rls-required 1"]);
    // Spelled the same way throughout, with no schema appearing, it is the same table.
    let bare = "create table x (a int);\nalter table x enable row level security;\ncreate policy p on x using (true);";
    assert_eq!(findings(bare), Vec::<String>::new());
    assert_eq!(findings(&format!("create table x (a int);{RLS}")), Vec::<String>::new());
    // Disabling through any spelling still counts.
    assert_eq!(
        findings(&format!("create table public.x (a int);{RLS}alter table x disable row level security;")),
        ["rls-required 1"]
    );
}

#[test]
fn extensions_in_public_are_read_before_they_pass() {
    // postgis creates public.spatial_ref_sys, pg_stat_statements a view of every query.
    for sql in [
        "create extension if not exists postgis;",
        "create extension pg_stat_statements with schema public;",
        "alter extension postgis set schema public;",
    ] {
        assert_eq!(findings(sql), ["unanalysable-ddl 1"], "{sql}");
    }
    assert_eq!(findings("create extension if not exists pgcrypto with schema extensions;"), Vec::<String>::new());
}

#[test]
fn one_acknowledgement_covers_one_table_even_in_one_statement() {
    let open = |sql: &str| -> Vec<String> {
        super::lint_text("f.up.sql", "f.up.sql", sql, Some(true))
            .into_iter()
            .filter(|f| f.acknowledged.is_none())
            .map(|f| format!("{} {}", f.rule, f.line))
            .collect()
    };
    let two = "do $$ begin create table public.scratch (a int); create table public.b (a int); end $$;\n";
    let ack = "-- migrate:ack rls-required: a scratch table, dropped by the next migration\n";
    assert_eq!(open(&format!("{ack}{two}")), ["rls-required 2"]);
    assert_eq!(open(&format!("{ack}{ack}{two}")), Vec::<String>::new());
}

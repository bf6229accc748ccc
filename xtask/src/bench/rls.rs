//! `cargo xtask bench rls-matrix`: the access matrix on a generated Supabase-style schema
//! (a tenant table, a membership table with four roles and an `active` flag, the rest tenant
//! tables with a policy per operation through a `security definer` membership check), on a
//! throwaway cluster, inside the matrix's own rolled-back transaction. Target: 50 tables x 4
//! operations x 8 personas in under 5 s.

use std::{fmt::Write as _, time::Instant};

use anyhow::Result;
use app::guard::op;

use crate::rls::matrix;
use crate::{context::data, tenancy::Tenancy, throwaway::Throwaway};

pub(crate) const TARGET_SECONDS: f64 = 5.0;

pub(crate) struct Figures {
    pub tables: usize,
    pub personas: usize,
    pub seconds: f64,
}

pub(crate) fn run(tables: usize) -> Result<Figures> {
    let throwaway = Throwaway::start()?;
    let guard = throwaway.guard()?;
    let mut conn = guard.write::<op::RlsTesting>()?.connect()?;
    let mut tx = conn.client().transaction()?;
    // The platform's exposed tables (`storage.objects`) count towards the figure.
    let present: i64 = tx
        .query_one(
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p') and (n.nspname = 'public' or (n.nspname, c.relname) = ('storage', 'objects'))",
            &[],
        )?
        .get(0);
    tx.batch_execute(&schema(tables.saturating_sub(present as usize).max(3)))?;
    let tenancy = Tenancy { root: "bench.tenants".into(), key: "id".into() };
    let started = Instant::now();
    let probed = matrix::probe(&mut tx, &tenancy)?;
    let seconds = started.elapsed().as_secs_f64();
    tx.rollback()?;
    matrix::report_cost(&probed);
    let figures = Figures { tables: probed.probed_tables, personas: probed.personas.len(), seconds };
    data(format!(
        "rls matrix: {} tables x 4 operations x {} personas in {:.2} s (target < {TARGET_SECONDS:.0} s for 50 x 4 x 8): {}",
        figures.tables,
        figures.personas,
        figures.seconds,
        if figures.seconds < TARGET_SECONDS { "met" } else { "NOT met" }
    ))?;
    Ok(figures)
}

/// `tables` tables in schema `bench`: tenants, members, and tenant tables chained by keys.
fn schema(tables: usize) -> String {
    let mut sql = String::from(
        "create schema bench;
         grant usage on schema bench to anon, authenticated, service_role;
         create type bench.member_role as enum ('owner', 'editor', 'viewer', 'guest');
         create table bench.tenants (id uuid primary key default gen_random_uuid(), name text not null);
         create table bench.members (
           id uuid primary key default gen_random_uuid(),
           tenant_id uuid not null references bench.tenants (id),
           user_id uuid not null references auth.users (id),
           role bench.member_role not null,
           active boolean not null default true,
           unique (tenant_id, user_id));
         create index on bench.members (user_id);
         create function bench.is_member(t uuid) returns boolean language sql stable security definer
           set search_path = '' as
           $$ select exists (select 1 from bench.members m where m.tenant_id = t and m.user_id = (select auth.uid()) and m.active) $$;
         alter table bench.tenants enable row level security;
         alter table bench.members enable row level security;
         create policy tenants_select on bench.tenants for select to authenticated using (bench.is_member(id));
         create policy members_select on bench.members for select to authenticated using (bench.is_member(tenant_id));
        ",
    );
    for i in 1..=tables - 2 {
        let parent =
            if i > 1 { format!(", t{:02}_id uuid references bench.t{:02} (id)", i, i - 1) } else { String::new() };
        let _ = write!(
            sql,
            "create table bench.t{i:02} (
               id uuid primary key default gen_random_uuid(),
               tenant_id uuid not null references bench.tenants (id),
               name text not null check (btrim(name) <> ''),
               amount numeric(12, 2) not null,
               day date not null{parent});
             create index on bench.t{i:02} (tenant_id);
             alter table bench.t{i:02} enable row level security;
             create policy s on bench.t{i:02} for select to authenticated using ((select bench.is_member(tenant_id)));
             create policy i on bench.t{i:02} for insert to authenticated with check ((select bench.is_member(tenant_id)));
             create policy u on bench.t{i:02} for update to authenticated using ((select bench.is_member(tenant_id)));
             create policy d on bench.t{i:02} for delete to authenticated using ((select bench.is_member(tenant_id)));
            "
        );
    }
    sql.push_str(
        "grant select, insert, update, delete on all tables in schema bench to authenticated, service_role;
         grant execute on all functions in schema bench to authenticated, service_role;",
    );
    sql
}

//! Tests for the `cargo xtask seed` command.

use std::time::{Duration, Instant};

use crate::harness::{Project, Run, TABLES, TestCluster, migrated};

/// The documented password and its bcrypt hash, as `auth.users` must store it.
const PASSWORD: &str = "seed-password";
const PASSWORD_HASH: &str = "$2a$10$qm2tSGyIacVIpYesiLdCDuonkQxFUXuOTjVfFErnq4hM4VSGrWYhm";
const ROLES: [&str; 5] = ["owner", "admin", "provider", "staff", "viewer"];

/// `cargo xtask seed --env test ARGS` on the cluster.
fn seed<'a>(cluster: &TestCluster, project: &'a Project, args: &[&str]) -> Run<'a> {
    let mut all = vec!["seed", "--env", "test"];
    all.extend_from_slice(args);
    project.xtask(&all).env("DATABASE_URL", &cluster.url())
}

fn text(cluster: &TestCluster, sql: &str) -> String {
    cluster.client().query_one(sql, &[]).unwrap().get::<_, Option<String>>(0).unwrap_or_default()
}

fn count(cluster: &TestCluster, sql: &str) -> i64 {
    cluster.client().query_one(sql, &[]).unwrap().get(0)
}

/// A checksum per table of the rows of the given clinics (comma-separated ids).
fn rows_of_clinics(cluster: &TestCluster, ids: &str) -> Vec<String> {
    [
        "clinics:id",
        "locations",
        "providers",
        "user_clinic_roles",
        "daily_dentist_production",
        "daily_location_financials",
        "goals",
    ]
    .iter()
    .map(|spec| {
        let (table, key) = spec.split_once(':').unwrap_or((spec, "clinic_id"));
        text(
            cluster,
            &format!(
                "select md5(string_agg(t::text, '|' order by t::text)) from public.{table} t
                     where {key}::text = any (string_to_array('{ids}', ','))"
            ),
        )
    })
    .collect()
}

#[test]
fn the_same_seed_gives_the_same_data_and_another_seed_other_data() {
    let (cluster, project) = migrated();
    seed(&cluster, &project, &["--profile", "minimal"]).ok();
    let first = cluster.checksum();
    let quiet = seed(&cluster, &project, &["--profile", "minimal", "--replace", "--quiet"]).ok();
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""), "--quiet printed something");
    assert_eq!(cluster.checksum(), first, "the same seed gave other data");

    // Another clinic leaves the first two exactly as they were, ids and daily rows included.
    let ids = text(&cluster, "select string_agg(id::text, ',') from public.clinics");
    let two = rows_of_clinics(&cluster, &ids);
    seed(&cluster, &project, &["--profile", "minimal", "--clinics", "3", "--replace"]).ok();
    assert_eq!(count(&cluster, "select count(*) from public.clinics"), 3);
    assert_eq!(rows_of_clinics(&cluster, &ids), two, "adding a clinic changed the others");

    seed(&cluster, &project, &["--profile", "minimal", "--seed", "2", "--replace"]).ok();
    let other = cluster.checksum();
    let seeded = |line: &&str| line.starts_with("public.") || line.starts_with("auth.users=");
    for (a, b) in first.lines().filter(seeded).zip(other.lines().filter(seeded)) {
        assert_ne!(a, b, "another seed gave the same rows");
    }
}

/// The catalog's constraints and indexes of `public`: the load drops and re-creates some.
fn schema_objects(cluster: &TestCluster) -> String {
    text(
        cluster,
        "select string_agg(d, E'\n' order by d) from (
           select conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated as d
           from pg_constraint where connamespace = 'public'::regnamespace
           union all
           select pg_get_indexdef(indexrelid) from pg_index where indrelid::regclass::text not like 'pg_%'
             and indexrelid::regclass::text not like 'app_meta.%') s",
    )
}

#[test]
fn keys_identities_and_the_calendar_hold() {
    let (cluster, project) = migrated();
    let schema = schema_objects(&cluster);
    // 400 days: Thanksgiving, Christmas, New Year, Memorial Day, July 4 and Labor Day.
    seed(&cluster, &project, &["--profile", "minimal", "--days", "400"]).ok();
    assert_eq!(schema_objects(&cluster), schema, "the load did not restore the schema exactly");

    // Every foreign key holds (they are also validated constraints, as compared above).
    let mut client = cluster.client();
    let checks: Vec<String> = client
        .query(
            "select format('select count(*) from %s c where %s and not exists (select from %s p where %s)',
                conrelid::regclass,
                (select string_agg(format('c.%I is not null', a.attname), ' and ')
                   from unnest(conkey) k join pg_attribute a on a.attrelid = conrelid and a.attnum = k),
                confrelid::regclass,
                (select string_agg(format('p.%I = c.%I', pa.attname, ca.attname), ' and ')
                   from unnest(conkey, confkey) u(ck, fk)
                   join pg_attribute ca on ca.attrelid = conrelid and ca.attnum = u.ck
                   join pg_attribute pa on pa.attrelid = confrelid and pa.attnum = u.fk))
             from pg_constraint where contype = 'f' and connamespace = 'public'::regnamespace",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(checks.len() >= 25, "{checks:?}");
    for check in &checks {
        assert_eq!(count(&cluster, check), 0, "{check}");
    }
    for table in TABLES {
        assert!(count(&cluster, &format!("select count(*) from public.{table}")) > 0, "{table} is empty");
    }

    // Financials add up, and match the providers' production of the day.
    let broken = count(
        &cluster,
        "select count(*) from public.daily_location_financials f
         where net_production <> production - adjustments - write_offs
            or collections <> patient_income + insurance_income
            or collections not between 0.8 * net_production and 1.05 * net_production
            or production <> (select coalesce(sum(production), 0) from public.daily_dentist_production d
                              where d.location_id = f.location_id and d.date = f.date)
                            + (select coalesce(sum(production), 0) from public.daily_hygiene_production h
                              where h.location_id = f.location_id and h.date = f.date)",
    );
    assert_eq!(broken, 0);
    // Believable ranges: a dentist's day is several hygienists' days, there are more
    // hygienists than dentists, and days with production have a financials row.
    let (dentist, hygiene): (f64, f64) = {
        let row = client
            .query_one(
                "select (select avg(production)::float8 from public.daily_dentist_production),
                        (select avg(production)::float8 from public.daily_hygiene_production)",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!((2500.0..6000.0).contains(&dentist) && (800.0..1800.0).contains(&hygiene), "{dentist} {hygiene}");
    assert!(
        count(
            &cluster,
            "select count(*) filter (where provider_type = 'hygienist') - count(*) filter (where provider_type = 'dentist') from public.providers"
        ) > 0
    );

    // No production on closed days; production on the others.
    for table in ["daily_dentist_production", "daily_hygiene_production", "daily_location_financials"] {
        let closed = count(
            &cluster,
            &format!(
                "select count(*) from public.{table} where extract(dow from date) = 0
                   or to_char(date, 'MM-DD') in ('01-01', '07-04', '12-24', '12-25')
                   or (extract(month from date) = 11 and extract(dow from date) = 4 and extract(day from date) between 22 and 28)
                   or (extract(month from date) = 5 and extract(dow from date) = 1 and extract(day from date) >= 25)
                   or (extract(month from date) = 9 and extract(dow from date) = 1 and extract(day from date) <= 7)"
            ),
        );
        assert_eq!(closed, 0, "{table} has rows on closed days");
        let open_days = count(&cluster, &format!("select count(distinct date) from public.{table}"));
        assert!(open_days > 250, "{table}: only {open_days} days");
    }
    // Weekday pattern: Fridays are shorter than Tuesdays.
    let (tuesday, friday): (f64, f64) = {
        let row = client
            .query_one(
                "select avg(production) filter (where extract(dow from date) = 2)::float8,
                        avg(production) filter (where extract(dow from date) = 5)::float8
                 from public.daily_dentist_production",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(friday < tuesday, "{friday} {tuesday}");

    // Monthly clinic production goals are within 15% of the month's production.
    let far = count(
        &cluster,
        "select count(*) from public.goals g
         join public.metric_definitions m on m.id = g.metric_definition_id and m.key = 'total_production'
         cross join lateral (select sum(production) as actual from public.daily_location_financials f
                             where f.clinic_id = g.clinic_id and f.date between g.start_date and g.end_date) a
         where g.period = 'monthly' and g.location_id is null and g.provider_id is null
           and g.start_date >= date '2026-10-31' - 399
           and g.target not between 0.85 * a.actual and 1.15 * a.actual",
    );
    assert_eq!(far, 0);
    // Tokens are obviously fake.
    assert_eq!(
        count(&cluster, "select count(*) from public.data_sources where access_token not like 'seed-fake-%'"),
        0
    );
}

#[test]
fn documented_logins_see_only_their_clinic() {
    let (cluster, project) = migrated();
    let out = seed(&cluster, &project, &["--profile", "minimal"]).ok();
    assert!(out.stderr.contains("password seed-password"), "{}", out.stderr);
    let mut client = cluster.client();
    for clinic in 1..=2 {
        for role in ROLES {
            let email = format!("{role}@clinic{clinic}.seed.test");
            let row = client
                .query_one(
                    "select a.encrypted_password::text, r.role::text, r.is_active, a.aud::text
                     from auth.users a join public.users u on u.auth_id = a.id
                     join public.user_clinic_roles r on r.user_id = u.id where a.email = $1",
                    &[&email],
                )
                .unwrap_or_else(|err| panic!("{email}: {err}"));
            assert_eq!(row.get::<_, String>(0), PASSWORD_HASH);
            assert_eq!((row.get::<_, String>(1), row.get::<_, bool>(2)), (role.to_string(), true));
            assert_eq!(row.get::<_, String>(3), "authenticated");
        }
    }
    // The hash is the documented password's (where pgcrypto is installed).
    if client.batch_execute("create extension if not exists pgcrypto").is_ok() {
        let ok: bool = client.query_one("select crypt($1, $2) = $2", &[&PASSWORD, &PASSWORD_HASH]).unwrap().get(0);
        assert!(ok, "the stored hash is not the documented password's");
        client.batch_execute("drop extension pgcrypto").unwrap();
    }

    let clinic_of = |email: &str| {
        text(
            &cluster,
            &format!(
                "select r.clinic_id::text from public.user_clinic_roles r join public.users u on u.id = r.user_id where u.email = '{email}'"
            ),
        )
    };
    let clinic1 = clinic_of("owner@clinic1.seed.test");
    assert_ne!(clinic1, clinic_of("owner@clinic2.seed.test"));
    for (role, sees_sources) in [("owner", true), ("viewer", false)] {
        let email = format!("{role}@clinic1.seed.test");
        let auth_id = text(&cluster, &format!("select id::text from auth.users where email = '{email}'"));
        let mut tx = client.transaction().unwrap();
        tx.batch_execute("set local role authenticated").unwrap();
        tx.execute(
            "select set_config('request.jwt.claims', $1, true)",
            &[&format!(r#"{{"sub":"{auth_id}","role":"authenticated","email":"{email}"}}"#)],
        )
        .unwrap();
        for (table, key) in [
            ("clinics", "id"),
            ("locations", "clinic_id"),
            ("providers", "clinic_id"),
            ("user_clinic_roles", "clinic_id"),
            ("metric_definitions", "clinic_id"),
            ("daily_dentist_production", "clinic_id"),
            ("daily_hygiene_production", "clinic_id"),
            ("daily_location_financials", "clinic_id"),
            ("goals", "clinic_id"),
            ("dashboards", "clinic_id"),
        ] {
            let seen: Vec<String> = tx
                .query(&format!("select distinct {key}::text from public.{table}"), &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(seen, std::slice::from_ref(&clinic1), "{email} on {table}");
        }
        let sources: i64 = tx.query_one("select count(*) from public.data_sources", &[]).unwrap().get(0);
        assert_eq!(sources > 0, sees_sources, "{email} on data_sources (they hold tokens)");
        let own: i64 = tx.query_one("select count(distinct user_id) from public.dashboards", &[]).unwrap().get(0);
        assert_eq!(own, 1, "{email} sees other users' dashboards");
        tx.rollback().unwrap();
    }
}

#[test]
fn refused_where_data_exists_on_production_and_on_staging_without_permission() {
    let (cluster, mut project) = migrated();
    seed(&cluster, &project, &["--profile", "minimal"]).ok();
    let before = cluster.checksum();
    seed(&cluster, &project, &["--profile", "minimal", "--seed", "2"]).fails("the test database already holds data (");
    seed(&cluster, &project, &["--clinics", "0"]).fails("--clinics must be between 1 and 100000, not 0");
    seed(&cluster, &project, &["--days", "0"]).fails("--days must be between 1 and 9000, not 0");
    assert_eq!(cluster.checksum(), before);

    // The database's own stamp says production: refused whatever was selected.
    let production = cluster.production_url();
    cluster.stamp("production");
    let before = cluster.checksum();
    let out = seed(&cluster, &project, &["--replace"]).fails("the database at 127.0.0.1:");
    assert!(out.stderr.contains("is stamped production"), "{}", out.stderr);
    project
        .xtask(&["seed", "--env", "production", "--replace"])
        .env("DATABASE_URL", &production)
        .fails("Seed (test data) on production is refused: the access matrix says NEVER");
    assert_eq!(cluster.checksum(), before);

    // Staging without permission for test data: refused before any connection (the URL
    // points at a host that would not answer).
    project.remote("staging");
    project.edit_settings(
        "[environments.staging]\nallow_test_data = true",
        "[environments.staging]\nallow_test_data = false",
    );
    let started = Instant::now();
    project
        .xtask(&["seed", "--env", "staging"])
        .fails("seeding staging is refused: its settings do not allow test data");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_killed_seed_leaves_the_database_as_it_was() {
    let (cluster, project) = migrated();
    seed(&cluster, &project, &["--profile", "minimal"]).ok();
    let before = cluster.checksum();
    // Big enough to be caught loading; killed as soon as it streams the daily tables (after
    // emptying the old ones and loading the small ones, in its transaction).
    let running =
        seed(&cluster, &project, &["--profile", "realistic", "--clinics", "25", "--days", "1500", "--replace"]).spawn();
    let mut client = cluster.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let loading: i64 = client
            .query_one(
                "select count(*) from pg_stat_activity where state = 'active'
                   and (query like 'COPY public.daily%' or query like 'alter table % add constraint%' or query like 'CREATE %INDEX%')",
                &[],
            )
            .unwrap()
            .get(0);
        if loading > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the seed never reached the daily tables");
        std::thread::sleep(Duration::from_millis(2));
    }
    running.kill();
    drop(client);
    assert_eq!(cluster.checksum(), before, "the killed seed left a half-written database");
}

#[test]
fn db_reset_seeds_the_realistic_profile_unless_told_not_to() {
    let cluster = TestCluster::start();
    let mut project = Project::new();
    project.with_migrations();
    project.xtask(&["db", "reset", "--env", "test", "--no-seed"]).env("DATABASE_URL", &cluster.url()).ok();
    assert_eq!(count(&cluster, "select count(*) from public.clinics"), 0);
    let out = project.xtask(&["db", "reset", "--env", "test"]).env("DATABASE_URL", &cluster.url()).ok();
    assert!(out.stderr.contains("profile realistic, 5 clinic(s), 730 day(s)"), "{}", out.stderr);
    assert!(out.stderr.contains("public.daily_location_financials"), "no summary table:\n{}", out.stderr);
    assert_eq!(count(&cluster, "select count(*) from public.clinics"), 5);
    let weekdays = count(
        &cluster,
        "select count(distinct date) from public.daily_location_financials where extract(dow from date) between 1 and 5",
    );
    // 104 weeks of five days, less eight or nine holidays a year.
    assert!((495..510).contains(&weekdays), "{weekdays} working weekdays in two years");
}

#[test]
fn kill_suite_ten_random_moments() {
    let (cluster, project) = migrated();
    let args = ["--profile", "realistic", "--clinics", "8", "--days", "900", "--replace"];
    let started = Instant::now();
    seed(&cluster, &project, &args).ok();
    let full = started.elapsed().as_millis() as u64;
    let after = cluster.checksum();
    crate::helpers::kill_suite(
        &format!("seed ({full} ms a run)"),
        &crate::harness::random_delays(10, full / 5, full + full / 10),
        &after,
        // Mark the database, so "as before" and "complete" can be told apart.
        || {
            cluster.client().batch_execute("update public.clinics set name = name || '.' where id = (select id from public.clinics order by id limit 1)").unwrap();
            cluster.checksum()
        },
        || seed(&cluster, &project, &args).spawn(),
        || cluster.checksum(),
    );
}

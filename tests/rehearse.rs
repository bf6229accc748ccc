//! Tests for `cargo xtask migrate rehearse`: failures only data reveals, locks and rewrites
//! on a table with rows, a concurrent index that is neither, a down that loses data, and the
//! environment's own database left unchanged by a rehearsal on its copy.

use serde_json::Value;

use crate::harness::{Output, Project, migrated};

/// A project with the repository's migrations and one test migration pair.
fn project_with(label: &str, up: &str, down: &str) -> Project {
    let mut project = Project::new();
    project.with_migrations().migration(&format!("{label}.up.sql"), up).migration(&format!("{label}.down.sql"), down);
    project
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|err| panic!("not JSON ({err}):\n{out:#?}"))
}

fn problems(report: &Value) -> Vec<(String, bool)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["rule"].as_str().unwrap().to_string(), p["acknowledged"].as_bool().unwrap()))
        .collect()
}

#[test]
fn a_not_null_column_without_default_fails_on_rows_but_passes_verify() {
    let project = project_with(
        "9001_clinic_region",
        "alter table public.clinics add column region text not null;\n",
        "alter table public.clinics drop column region;\n",
    );
    let out = project
        .xtask(&["migrate", "rehearse", "--data", "minimal", "--from", "9001"])
        .fails("the rehearsal found 1 problem(s), the first migrations/9001_clinic_region.up.sql:1: failed");
    assert!(
        out.stdout.contains("FAILED: ERROR: column \"region\" of relation \"clinics\" contains null values"),
        "{}",
        out.stdout
    );
    // On an empty database the same migration round-trips.
    project.xtask(&["migrate", "verify"]).ok();
}

#[test]
fn a_copy_reveals_planted_duplicates_and_the_environment_stays_unchanged() {
    let (cluster, mut project) = migrated();
    let url = cluster.url();
    project.xtask(&["seed", "--profile", "minimal", "--env", "test"]).env("DATABASE_URL", &url).ok();
    cluster.client().execute("update public.locations set city = 'Springfield'", &[]).unwrap();
    project
        .migration("9002_unique_city.up.sql", "create unique index locations_city_key on public.locations (city);\n")
        .migration("9002_unique_city.down.sql", "drop index public.locations_city_key;\n");
    let before = cluster.checksum();
    let out = project
        .xtask(&["migrate", "rehearse", "--env", "test", "--json"])
        .env("DATABASE_URL", &url)
        .fails("the rehearsal found 1 problem(s), the first migrations/9002_unique_city.up.sql:1: failed");
    let report = json(&out);
    assert_eq!(report["source"], "a copy of test");
    let error = report["ups"][0]["error"].as_str().unwrap();
    assert!(error.contains("could not create unique index \"locations_city_key\""), "{error}");
    assert!(error.contains("is duplicated"), "{error}");

    // A concurrent index on the copy: no rewrite, no lock that blocks writes; it passes.
    project
        .migration(
            "9002_unique_city.up.sql",
            "-- migrate:no-transaction\ncreate index concurrently locations_city_idx on public.locations (city);\n",
        )
        .migration(
            "9002_unique_city.down.sql",
            "-- migrate:no-transaction\ndrop index concurrently public.locations_city_idx;\n",
        );
    let out = project
        .xtask(&["migrate", "rehearse", "--env", "test", "--json", "--max-rows", "0", "--max-lock-ms", "0"])
        .env("DATABASE_URL", &url)
        .ok();
    let report = json(&out);
    let up = &report["ups"][0];
    assert_eq!(up["rewrites"].as_array().unwrap().len(), 0, "{up}");
    assert!(
        up["locks"].as_array().unwrap().iter().all(|l| l["blocks"] == "none" || l["blocks"] == "schema changes"),
        "{up}"
    );
    assert!(report["tables"]["public.locations"].as_i64().unwrap() > 0, "{report}");
    assert_eq!(cluster.checksum(), before, "the rehearsal wrote to the environment's database");
}

#[test]
fn a_type_change_is_reported_as_a_rewrite_with_its_lock_until_acknowledged() {
    let up = "alter table public.daily_hygiene_production alter column patients_seen type bigint;\n";
    let down = "alter table public.daily_hygiene_production alter column patients_seen type integer;\n";
    let args = ["migrate", "rehearse", "--data", "minimal", "--from", "9003", "--json", "--max-rows", "100"];
    let project = project_with("9003_bigger_counts", up, down);
    let out = project.xtask(&args).fails("the rehearsal found 3 problem(s)");
    let report = json(&out);
    let statement = &report["ups"][0];
    assert_eq!(statement["rewrites"][0], "public.daily_hygiene_production", "{statement}");
    let lock = &statement["locks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["table"] == "public.daily_hygiene_production")
        .unwrap();
    assert_eq!(lock["mode"], "AccessExclusiveLock");
    assert_eq!(lock["blocks"], "reads and writes");
    // Up, down, and up again each rewrite it.
    assert_eq!(problems(&report), vec![("table-rewrite".to_string(), false); 3]);

    let ack = "-- migrate:ack table-rewrite: a few hundred rows, rewritten in milliseconds\n";
    let project = project_with("9003_bigger_counts", &format!("{ack}{up}"), &format!("{ack}{down}"));
    let report = json(&project.xtask(&args).ok());
    assert_eq!(problems(&report), vec![("table-rewrite".to_string(), true); 3]);
    // Its exclusive lock, held longer than the limit: a problem of its own until acknowledged.
    let mut strict = args.to_vec();
    strict.extend(["--max-lock-ms", "0"]);
    let out = project
        .xtask(&strict)
        .fails("the rehearsal found 3 problem(s), the first migrations/9003_bigger_counts.up.sql:2: long-lock");
    assert!(out.stderr.contains("AccessExclusiveLock on public.daily_hygiene_production"), "{}", out.stderr);
}

#[test]
fn a_down_that_drops_a_column_with_values_loses_data() {
    let up = "alter table public.clinics add column tier text not null default 'basic';\n";
    let down = "alter table public.clinics drop column tier;\n";
    let args = ["migrate", "rehearse", "--data", "minimal", "--from", "9004", "--json"];
    let out = project_with("9004_clinic_tier", up, down)
        .xtask(&args)
        .fails("the rehearsal found 1 problem(s), the first migrations/9004_clinic_tier.down.sql:1: down-loses-data");
    let report = json(&out);
    assert_eq!(report["downs"][0]["destroys"][0][0], "values of public.clinics.tier");
    assert_eq!(report["downs"][0]["destroys"][0][1], 2);
    let acked = format!("-- migrate:ack down-loses-data: tiers are derived again from billing\n{down}");
    let report = json(&project_with("9004_clinic_tier", up, &acked).xtask(&args).ok());
    assert_eq!(problems(&report), [("down-loses-data".to_string(), true)]);
}

#[test]
fn production_is_never_copied_and_bad_arguments_are_one_error() {
    let mut project = Project::new();
    project.with_migrations().remote("production");
    project
        .xtask(&["migrate", "rehearse", "--env", "production"])
        .fails("rehearsing on a copy of production is refused");
    project.xtask(&["migrate", "rehearse", "--data", "minimal", "--from", "9999"]).fails("there is no migration 9999");
    project.xtask(&["migrate", "rehearse", "--from", "7"]).fails("--from is for seeded data");
    project
        .xtask(&["migrate", "rehearse", "--data", "minimal", "--pending-on", "production"])
        .fails("--pending-on is for a copy");
    project
        .xtask(&["migrate", "rehearse", "--data", "minimal", "--from", "1"])
        .fails("cannot seed the schema of the migrations before 0001");
}

#[test]
fn a_copy_ahead_of_production_rehearses_what_production_lacks() {
    // "Production": the repository's migrations. The copied environment: one more, with data.
    let (production, mut project) = migrated();
    project.env_file(".env.production", &format!("DATABASE_URL={}\n", production.production_url()));
    production.stamp("production");
    let (staging, _) = migrated();
    let url = staging.url();
    project.xtask(&["seed", "--profile", "minimal", "--env", "test"]).env("DATABASE_URL", &url).ok();
    project
        .migration("9005_clinic_notes.up.sql", "alter table public.clinics add column notes text;\n")
        .migration("9005_clinic_notes.down.sql", "alter table public.clinics drop column notes;\n");
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &url).ok();
    let (before_staging, before_production) = (staging.checksum(), production.checksum());
    let out = project
        .xtask(&["migrate", "rehearse", "--env", "test", "--pending-on", "production", "--json"])
        .env("DATABASE_URL", &url)
        .ok();
    let report = json(&out);
    assert_eq!(report["source"], "a copy of test at production's migrations");
    assert_eq!(report["migrations"][0], "9005_clinic_notes");
    assert!(out.stderr.contains("reverted the copy to production's migrations: 1 down(s)"), "{}", out.stderr);
    assert_eq!(staging.checksum(), before_staging, "the copied environment was written");
    assert_eq!(production.checksum(), before_production, "production was written");
}

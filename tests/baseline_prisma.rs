//! Tests for adopting a Prisma-built database on plain PostgreSQL (no Supabase layer, no
//! `extensions` schema, `pgcrypto` in `public`, text ids, enums, `_prisma_migrations`):
//! with Prisma's `prisma/migrations` folder its history is found and recorded, and what
//! this tool applies next lands in Prisma's ledger as Prisma writes it; with an empty
//! folder the live schema becomes a first migration that applies on a new database.

use crate::harness::{Project, TestCluster};

/// Takes this tool's Supabase bootstrap off a test cluster: a plain PostgreSQL database.
const PLAIN: &str = "drop schema auth, storage, realtime, graphql_public, extensions cascade;
    drop publication supabase_realtime;";

/// Prisma's two migrations, as `prisma migrate dev` writes them (unqualified names).
const INIT: (&str, &str) = (
    "20240101000000_init",
    r#"-- CreateExtension
CREATE EXTENSION IF NOT EXISTS "pgcrypto";

-- CreateEnum
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');

-- CreateTable
CREATE TABLE "User" (
    "id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "role" "Role" NOT NULL DEFAULT 'USER',
    "tags" TEXT[],
    "avatar" BYTEA,
    "profile" JSONB NOT NULL DEFAULT '{}',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
"#,
);
const POSTS: (&str, &str) = (
    "20240301000000_posts",
    r#"-- CreateTable
CREATE TABLE "Post" (
    "id" TEXT NOT NULL DEFAULT gen_random_uuid()::text,
    "authorId" TEXT NOT NULL,
    "title" TEXT NOT NULL,

    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);

-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"#,
);

/// Prisma's ledger table, in the shape its migration engine creates on PostgreSQL.
const LEDGER: &str = "create table public._prisma_migrations (
    id varchar(36) primary key not null, checksum varchar(64) not null, finished_at timestamptz,
    migration_name varchar(255) not null, logs text, rolled_back_at timestamptz,
    started_at timestamptz not null default now(), applied_steps_count integer not null default 0)";

/// A plain PostgreSQL database Prisma built: both migrations applied and recorded, with the
/// checksum Prisma records (sha256 of the file's bytes, hex), and a row of data.
fn prisma_production() -> TestCluster {
    let cluster = TestCluster::start();
    cluster.unstamp();
    let mut client = cluster.client();
    client.batch_execute(PLAIN).unwrap();
    client.batch_execute(LEDGER).unwrap();
    for (name, sql) in [INIT, POSTS] {
        client.batch_execute(sql).unwrap();
        client
            .execute(
                "insert into public._prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count)
                 values (gen_random_uuid()::text, encode(sha256(convert_to($1, 'UTF8')), 'hex'), now(), $2, 1)",
                &[&sql, &name],
            )
            .unwrap();
    }
    client.batch_execute("insert into \"User\" (id, email) values ('cl0u1', 'ann.real@example.com')").unwrap();
    cluster
}

fn prisma_project() -> Project {
    let project = Project::new();
    let settings = project.root.join("env/environments.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(&settings, format!("{text}\n[migrations]\ndir = \"prisma/migrations\"\n")).unwrap();
    let dir = project.root.join("prisma/migrations");
    for (name, sql) in [INIT, POSTS] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("migration.sql"), sql).unwrap();
    }
    std::fs::write(dir.join("migration_lock.toml"), "provider = \"postgresql\"\n").unwrap();
    project
}

#[test]
fn a_prisma_built_production_is_adopted_on_its_own_history_and_prisma_s_ledger_is_kept() {
    let production = prisma_production();
    let project = prisma_project();
    let url = production.url();
    let out = project.xtask(&["migrate", "baseline", "--env", "test", "--dry-run"]).env("DATABASE_URL", &url).ok();
    assert!(out.stderr.contains("a plain PostgreSQL database"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Prisma's ledger holds the folder's history: 2 migration(s) applied with the files' checksums"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("proved on a scratch cluster"), "{}", out.stderr);

    // A file that is not what Prisma applied is named, and nothing is adopted.
    let posts = project.root.join("prisma/migrations").join(POSTS.0).join("migration.sql");
    std::fs::write(&posts, format!("{}-- edited after it was applied\n", POSTS.1)).unwrap();
    project
        .xtask(&["migrate", "baseline", "--env", "test", "--confirm", "test"])
        .env("DATABASE_URL", &url)
        .fails("prisma/migrations/20240301000000_posts/migration.sql is not the file Prisma applied");
    std::fs::write(&posts, POSTS.1).unwrap();

    project.xtask(&["migrate", "baseline", "--env", "test", "--confirm", "test"]).env("DATABASE_URL", &url).ok();
    assert_eq!(production.strings("select environment from app_meta.environment_stamp"), ["test"]);
    let folders = std::fs::read_dir(project.root.join("prisma/migrations")).unwrap().count();
    assert_eq!(folders, 3, "a baseline was written although the history was found");
    assert_eq!(production.strings("select count(*)::text from public._prisma_migrations"), ["2"]);
    let out = project.xtask(&["migrate", "status", "--env", "test"]).env("DATABASE_URL", &url).ok();
    let applied = out.stdout.lines().filter(|l| l.split_whitespace().nth(2) == Some("applied")).count();
    assert_eq!(applied, 2, "{}", out.stdout);

    // The next migration is applied by this tool and recorded as Prisma records it.
    let locale = "ALTER TABLE \"User\" ADD COLUMN \"locale\" TEXT;\n";
    let dir = project.root.join("prisma/migrations/20240401000000_locale");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("migration.sql"), locale).unwrap();
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &url).ok();
    let row = production
        .client()
        .query_one(
            "select length(id), checksum = encode(sha256(convert_to($1, 'UTF8')), 'hex'), finished_at is not null,
                    rolled_back_at is null and logs is null, applied_steps_count
             from public._prisma_migrations where migration_name = '20240401000000_locale'",
            &[&locale],
        )
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 36, "the id is a uuid");
    assert!(row.get::<_, bool>(1), "the checksum is not sha256 of the file's bytes");
    assert!(row.get::<_, bool>(2) && row.get::<_, bool>(3));
    assert_eq!(row.get::<_, i32>(4), 1);
    assert_eq!(production.strings("select count(*)::text from public._prisma_migrations"), ["3"]);

    // New migrations are Prisma's folders; the layout has no downs.
    let out = project.xtask(&["migrate", "new", "add tags index"]).ok();
    let written = out.stdout.trim();
    assert!(
        written.starts_with("prisma/migrations/") && written.ends_with("_add_tags_index/migration.sql"),
        "{written}"
    );
    assert!(project.root.join(written).is_file());
    project
        .xtask(&["migrate", "down", "--env", "test"])
        .env("DATABASE_URL", &url)
        .fails("prisma/migrations is in Prisma's layout, which has no down migrations");
}

#[test]
fn a_prisma_built_database_without_a_folder_becomes_a_first_migration_that_applies() {
    let production = prisma_production();
    let project = Project::new();
    project
        .xtask(&["migrate", "baseline", "--env", "test", "--confirm", "test"])
        .env("DATABASE_URL", &production.url())
        .ok();
    let up = std::fs::read_to_string(project.root.join("migrations/0001_baseline.up.sql")).unwrap();
    assert!(up.contains("CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;"), "{up}");
    assert!(up.contains("CREATE TYPE public.\"Role\" AS ENUM"), "{up}");
    assert!(!up.contains("_prisma_migrations"), "Prisma's ledger is Prisma's, not the app's schema:\n{up}");

    // A new database made from it takes rows, and its unique index and foreign key hold.
    let fresh = TestCluster::start();
    project.xtask(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", &fresh.url()).ok();
    let mut client = fresh.client();
    client.batch_execute("insert into \"User\" (id, email) values ('u1', 'a@example.com')").unwrap();
    client.batch_execute("insert into \"Post\" (\"authorId\", title) values ('u1', 'hello')").unwrap();
    assert!(client.batch_execute("insert into \"User\" (id, email) values ('u2', 'a@example.com')").is_err());
    assert!(client.batch_execute("insert into \"Post\" (\"authorId\", title) values ('nobody', 'x')").is_err());
}

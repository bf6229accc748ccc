//! `cargo xtask db`: the local Supabase-style database, without Docker: a PostgreSQL cluster
//! in `.local/db` on 127.0.0.1:54322 with what Supabase's platform creates (the `supabase`
//! room: roles, `auth`, `storage`, `realtime`, `extensions`, grants, versioned); extensions
//! the migrations need are checked first (`supabase/extensions.rs`).

mod template;

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Result, bail};
use app::{
    Environment, Guard,
    guard::{RestorePoint, TemplateReset, WriteTarget, op},
};
use xshell::Shell;

use crate::{
    context::{self, data, status, warn},
    flags::{self, DbCommand, Global},
    pg::{Binaries, Cluster, Durability, LOCAL_MARKER},
    restore_point::{keep_restore_point, spawn_drop_replaced},
    supabase::{SUPABASE_SQL, bootstrap, extensions},
};

impl flags::Db {
    pub(crate) fn run(self, global: &Global) -> Result<()> {
        let sh = Shell::new()?;
        match self.command {
            DbCommand::Up(args) => up(&sh, args.no_seed),
            DbCommand::Status => db_status(&sh),
            DbCommand::Down => down(&sh),
            DbCommand::Reset(args) if args.drop_replaced => drop_replaced(global),
            DbCommand::Reset(args) => reset(&sh, global, args.no_seed, !args.no_restore_point),
            DbCommand::Undo => undo(global),
            DbCommand::Destroy { yes } => destroy(&sh, yes),
        }
    }
}

/// The local cluster as the settings and `env/.env.local` describe it.
struct Local {
    guard: Guard,
    cluster: Cluster,
    password: String,
}

impl Local {
    /// `--env` other than local was refused as a usage error (`flags/misuse.rs`), or led
    /// `reset` and `undo` elsewhere.
    fn load(command: &str) -> Result<Local> {
        let guard = context::guard_for(Some(Environment::Local))?;
        let settings = &guard.all_settings().local;
        let url = guard.resolved().database()?;
        if !url.is_on_this_machine() || url.port() != settings.port {
            bail!(
                "the local DATABASE_URL points at {}, but the local cluster listens on 127.0.0.1:{}\nhint: make env/.env.local and env/environments.toml [local] port agree",
                url.address(),
                settings.port
            );
        }
        let password = url.password().unwrap_or_else(|| "postgres".to_string());
        let dir = checked_data_dir(&context::project_root(), &settings.data_dir)?;
        let cluster = Cluster::new(dir, settings.port, Binaries::find()?);
        // A cluster `db up` did not create (another project's, a system one) is never
        // started, stopped, reset or deleted by this project.
        if command != "status" && cluster.exists() && !cluster.dir.join(LOCAL_MARKER).is_file() {
            bail!(
                "{} has no {LOCAL_MARKER} file, so `cargo xtask db up` did not create it: `db {command}` refused\nhint: point [local] data_dir at a folder of this project's own; for a cluster an older version of this tool made, create that file in it",
                shown(&cluster.dir)
            );
        }
        Ok(Local { guard, cluster, password })
    }

    fn data_dir_shown(&self) -> String {
        shown(&self.cluster.data_dir())
    }
}

/// A folder relative to the project root where it is inside it.
fn shown(dir: &Path) -> String {
    let root = context::project_root();
    dir.strip_prefix(&root).map(|p| p.display().to_string()).unwrap_or_else(|_| dir.display().to_string())
}

fn up(sh: &Shell, no_seed: bool) -> Result<()> {
    let started_at = Instant::now();
    let local = Local::load("up")?;
    let cluster = &local.cluster;
    if let Some(port) = cluster.running_port(sh) {
        status(format!("the local database is already running on 127.0.0.1:{port} ({})", local.data_dir_shown()));
        return Ok(());
    }
    let created = !cluster.exists();
    if created {
        check_extensions_on_disk(&cluster.bins)?;
        status(format!("creating the local cluster in {}", local.data_dir_shown()));
        cluster.init(sh, &local.password, Durability::Safe)?;
    }
    cluster.start(sh)?;
    if created {
        bootstrap(&local.guard, no_seed)?;
    }
    let what = if created { "created and started" } else { "started" };
    status(format!(
        "local database {what} on 127.0.0.1:{} in {:.1} s\n  url: {}",
        cluster.port,
        started_at.elapsed().as_secs_f64(),
        local.guard.resolved().database()?
    ));
    Ok(())
}

/// Stops before the cluster is made when the migrations need an extension these server
/// binaries cannot install.
fn check_extensions_on_disk(bins: &Binaries) -> Result<()> {
    let Some(available) = extensions::available_on_disk(bins) else { return Ok(()) };
    let files = crate::migrate::load_files()?;
    extensions::check(&crate::migrate::extension_sources(&files), &available, bins.version)
}

/// Gives a new, empty database Supabase's roles and schema and the stamp of its environment.
/// Then keeps it as the template `db reset` clones.
fn bootstrap(guard: &Guard, no_seed: bool) -> Result<()> {
    let target = guard.write::<op::Reset>()?;
    target.reset_in_place(SUPABASE_SQL)?;
    migrate_and_seed(guard, no_seed, false)?;
    keep_template(&target, &template::key(guard, no_seed)?);
    Ok(())
}

/// Refreshes the template from the database just rebuilt; a template that cannot be made
/// costs the next reset its speed, not its result, so it is a warning.
fn keep_template(target: &WriteTarget<op::Reset>, key: &str) {
    if let Err(err) = target.refresh_template(key) {
        warn(format!("the template for the next `db reset` was not made: {err:#}"));
    }
}

/// `build`: the guard's database is a build database beside the target (seeded over
/// several connections).
fn migrate_and_seed(guard: &Guard, no_seed: bool, build: bool) -> Result<()> {
    let applied = crate::migrate::up_all(guard)?;
    status(format!("applied {applied} migration(s)"));
    if no_seed {
        return Ok(());
    }
    crate::seed::realistic(guard, build)
}

/// The local cluster's folder: under the project root's control, and never the root
/// itself, a folder above it, or the home folder, whatever `[local] data_dir` says.
fn checked_data_dir(root: &Path, configured: &str) -> Result<PathBuf> {
    let refused = |why: &str| {
        anyhow::anyhow!(
            "[local] data_dir = {configured:?} in env/environments.toml is {why}: refused\nhint: use a folder of its own, such as .local/db"
        )
    };
    if configured.trim().is_empty() {
        return Err(refused("empty"));
    }
    let dir = root.join(configured);
    if Path::new(configured).components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(refused("outside the project (it climbs with ..)"));
    }
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (real_dir, real_root) = (real(&dir), real(root));
    if real_root.starts_with(&real_dir) {
        return Err(refused("the project root or a folder above it"));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).map(|h| real(&h));
    if home.is_some_and(|home| home.starts_with(&real_dir)) || real_dir.parent().is_none() {
        return Err(refused("the home folder, a folder above it, or /"));
    }
    Ok(dir)
}

fn db_status(sh: &Shell) -> Result<()> {
    let local = Local::load("status")?;
    let cluster = &local.cluster;
    data(format!("data folder     {}", local.data_dir_shown()))?;
    data(format!("server          PostgreSQL {} ({})", cluster.bins.version, cluster.bins.dir.display()))?;
    if !cluster.exists() {
        data("state           not created (`cargo xtask db up` creates it)")?;
        return Ok(());
    }
    match cluster.running_port(sh) {
        None => data(format!("state           stopped (port {})", cluster.port))?,
        Some(port) => {
            data(format!("state           running on 127.0.0.1:{port}"))?;
            let mut conn = local.guard.read::<op::Inspect>()?.connect()?;
            data(format!(
                "stamp           {}",
                conn.stamp.map(|s| s.to_string()).unwrap_or_else(|| "(unstamped)".to_string())
            ))?;
            let mut tx = conn.transaction()?;
            data(format!("bootstrap       {}", bootstrap::describe(bootstrap::recorded(&mut tx)?)))?;
            data(format!("restore point   {}", restore_point(&mut tx)?))?;
        }
    }
    Ok(())
}

/// What the database's restore point holds, when it was made and its size on disk.
fn restore_point(tx: &mut postgres::Transaction<'_>) -> Result<String> {
    let row = tx.query_opt(
        "select shobj_description(oid, 'pg_database'), pg_size_pretty(pg_database_size(oid))
         from pg_database where datname = current_database() || '_xtask_restore'",
        &[],
    )?;
    let Some(row) = row else { return Ok("none (`db reset` and `seed --replace` keep one)".to_string()) };
    let (comment, size): (Option<String>, String) = (row.get(0), row.get(1));
    Ok(match comment.as_deref().and_then(RestorePoint::from_comment) {
        Some(point) => {
            format!(
                "the database as it was before the {} of {}, {size} (`cargo xtask db undo`)",
                point.replaced_by, point.made
            )
        }
        None => format!("a database not made by this project holds the restore point's name ({size})"),
    })
}

fn down(sh: &Shell) -> Result<()> {
    let local = Local::load("down")?;
    if local.cluster.running_port(sh).is_none() {
        status("the local database is not running");
        return Ok(());
    }
    local.cluster.stop(sh, false)?;
    status(format!("local database stopped; its data stays in {}", local.data_dir_shown()));
    Ok(())
}

fn destroy(sh: &Shell, yes: bool) -> Result<()> {
    let local = Local::load("destroy")?;
    if !local.cluster.dir.exists() {
        status("there is no local database to delete");
        return Ok(());
    }
    if !yes {
        crate::ui::printer().confirm(
            &format!("Delete the local database in {}?", local.data_dir_shown()),
            "`db destroy` deletes the local database's data\nhint: pass --yes to confirm when not on a terminal",
            "not deleted",
        )?;
    }
    if !local.cluster.dir.join(LOCAL_MARKER).is_file() {
        bail!(
            "{} has no {LOCAL_MARKER} file, so `cargo xtask db up` did not create it: not deleted\nhint: delete it by hand if it really is a database folder you no longer need",
            shown(&local.cluster.dir)
        );
    }
    if local.cluster.running_port(sh).is_some() {
        local.cluster.stop(sh, true)?;
    }
    std::fs::remove_dir_all(&local.cluster.dir)?;
    status(format!("deleted {}", local.cluster.dir.display()));
    Ok(())
}

/// Re-creates the database like `supabase db reset`: local (the default) or test only.
/// With `keep`, the database replaced stays as the restore point `db undo` swaps back.
fn reset(sh: &Shell, global: &Global, no_seed: bool, keep: bool) -> Result<()> {
    let started_at = Instant::now();
    let env = global.env.unwrap_or(Environment::Local);
    let guard = if env == Environment::Local {
        let local = Local::load("reset")?;
        if !local.cluster.exists() {
            local.cluster.init(sh, &local.password, Durability::Safe)?;
        }
        if local.cluster.running_port(sh).is_none() {
            local.cluster.start(sh)?;
        }
        local.guard
    } else {
        context::guard_for(Some(env))?
    };
    let target = guard.write::<op::Reset>()?;
    let key = template::key(&guard, no_seed)?;
    let how = match target.reset_from_template(&key, keep)? {
        TemplateReset::Cloned => {
            spawn_drop_replaced(env);
            "cloned from its template"
        }
        outcome => {
            if let TemplateReset::Unsafe(why) = &outcome {
                warn(format!("not reset from the template: {why}; rebuilding in place"));
            }
            // A clone runs no migration; a rebuild stops here, before any change, when
            // the server lacks an extension they create.
            crate::migrate::check_extensions(
                &mut guard.read::<op::Inspect>()?.connect()?.transaction()?,
                &crate::migrate::load_files()?,
            )?;
            let swapped = rebuild_beside(&guard, no_seed, keep)?;
            if !swapped {
                if keep {
                    keep_restore_point(&guard, "db reset")?;
                }
                target.reset_in_place(SUPABASE_SQL)?;
                migrate_and_seed(&guard, no_seed, false)?;
            }
            if outcome == TemplateReset::Miss {
                // A database swapped in under the name is another one: a new guard pins it.
                match swapped.then(|| context::guard_for(Some(env))?.write::<op::Reset>()) {
                    None => keep_template(&target, &key),
                    Some(Ok(swapped_in)) => keep_template(&swapped_in, &key),
                    Some(Err(err)) => warn(format!("the template for the next `db reset` was not made: {err:#}")),
                }
            }
            // After the template: the detached drop's own connection to the database
            // would keep the template from being copied from it.
            if swapped {
                spawn_drop_replaced(env);
            }
            "rebuilt"
        }
    };
    status(format!(
        "{} database re-created at {} in {:.1} s ({how})",
        target.environment(),
        target.url(),
        started_at.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Rebuilds the database beside it (a copy emptied, bootstrapped, migrated and seeded in
/// place of the target's state), then swaps it in; the replaced database becomes the
/// restore point with `keep`, else is dropped. `false`, nothing changed, where no build
/// can be made (an unstamped target, someone else connected): the caller rebuilds in place.
fn rebuild_beside(guard: &Guard, no_seed: bool, keep: bool) -> Result<bool> {
    let env = guard.environment();
    if guard.write::<op::Undo>().is_err() || guard.read::<op::Inspect>()?.connect()?.stamp != Some(env) {
        return Ok(false);
    }
    let started = Instant::now();
    let mut build = match guard.build_beside()? {
        Ok(build) => build,
        Err(why) => {
            warn(format!("not rebuilt beside the database: {why}; rebuilding in place"));
            return Ok(false);
        }
    };
    status(format!("rebuilding beside the database, in {}", build.name()));
    let built = build.reset_in_place(SUPABASE_SQL);
    if let Err(err) = built.and_then(|()| migrate_and_seed(build.guard(), no_seed, true)) {
        // The build is dropped; should that fail too, the next command drops it.
        let _ = build.abandon();
        return Err(err);
    }
    let keep =
        keep && build.restore_point_refused()?.inspect(|why| warn(format!("no restore point kept: {why}"))).is_none();
    if let Some(why) = build.swap(keep.then_some("db reset"))? {
        bail!(
            "{why}: the rebuilt database was not swapped in; the database is as it was\nhint: close them (the app, a psql) and reset again"
        );
    }
    if keep {
        status(format!(
            "swapped in; kept the database as it was as its restore point ({:.1} s in all; `cargo xtask db undo` swaps it back)",
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(true)
}

/// `db undo`: swaps the restore point back in (local, or test with `--env test`).
fn undo(global: &Global) -> Result<()> {
    let started = Instant::now();
    let env = global.env.unwrap_or(Environment::Local);
    let guard = if env == Environment::Local { Local::load("undo")?.guard } else { context::guard_for(Some(env))? };
    let target = guard.write::<op::Undo>()?;
    let point = target.undo()?;
    status(format!(
        "{env} database at {} swapped back to its state from before the {} of {} in {:.2} s; the state it replaced is now the restore point (`db undo` again to redo)",
        target.url(),
        point.replaced_by,
        point.made,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// `db reset --drop-replaced`: the detached half of a template reset.
fn drop_replaced(global: &Global) -> Result<()> {
    let env = global.env.unwrap_or(Environment::Local);
    context::guard_for(Some(env))?.write::<op::Reset>()?.drop_replaced()
}

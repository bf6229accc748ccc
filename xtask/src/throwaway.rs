//! Throwaway clusters: copies of a template cluster made once per process (initialized by
//! `pg`, bootstrapped by `supabase`, stamped `test`), private to this OS user (0700
//! folders, a password of random bits), stopped and deleted on drop; `throwaway/restore.rs`
//! restores content from outside into one as data. Above `pg` and `supabase`, below every
//! command that uses one.

use std::{
    path::{Path, PathBuf},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use anyhow::{Context, Result};
use app::guard::op;
use xshell::{Shell, cmd};

use crate::{
    pg::{Binaries, Cluster, Durability, free_port, make_private},
    supabase::SUPABASE_SQL,
};

pub mod restore;

/// A throwaway cluster for tests, `migrate verify` and benchmarks: a copy of a template that
/// is initialized, bootstrapped (Supabase's roles and schema) and stamped `test` once per
/// process, so each one starts in a fraction of a second. Stopped and deleted on drop,
/// also when a test panics; folders of killed processes are removed by the next process.
pub struct Throwaway {
    pub cluster: Cluster,
    sh: Shell,
}

impl Throwaway {
    pub fn start() -> Result<Throwaway> {
        Throwaway::start_from(throwaway_template()?)
    }

    /// A throwaway cluster copied from `template`, a stopped cluster's folder (the
    /// migrated template of [`crate::testing`]).
    pub(crate) fn start_from(template: &Path) -> Result<Throwaway> {
        let sh = Shell::new()?;
        let dir = throwaway_dir("cluster")?;
        let (template_data, data) = (template.join("data"), dir.join("data"));
        cmd!(sh, "cp -a {template_data} {data}").quiet().run().context("cannot copy the template cluster")?;
        std::fs::write(dir.join(app::guard::THROWAWAY_MARKER), "created by cargo xtask\n")?;
        // A port found free can be taken before the server binds it: try a few.
        let mut attempt = 0;
        loop {
            let cluster = Cluster::new(&dir, free_port()?, Binaries::find()?);
            match cluster.start(&sh) {
                Ok(()) => return Ok(Throwaway { cluster, sh }),
                Err(_) if attempt < 3 => attempt += 1,
                Err(err) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(err);
                }
            }
        }
    }

    /// The password of every throwaway cluster of this process: 128 random bits, which no
    /// other OS user can know or guess (a process id and a clock could be).
    pub fn password() -> &'static str {
        static PASSWORD: OnceLock<String> = OnceLock::new();
        PASSWORD.get_or_init(|| {
            let mut bytes = [0u8; 16];
            let random = std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
                .is_ok();
            assert!(random, "cannot read /dev/urandom for a throwaway cluster's password");
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("throwaway-{hex}")
        })
    }

    pub fn url(&self, dbname: &str) -> String {
        self.cluster.url(Throwaway::password(), dbname)
    }

    /// The guard for this cluster's `postgres` database, as the `test` environment.
    pub fn guard(&self) -> Result<app::Guard> {
        throwaway_guard(&self.url("postgres"))
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = self.cluster.stop(&self.sh, true);
        let _ = std::fs::remove_dir_all(&self.cluster.dir);
    }
}

/// The guard for a throwaway cluster's database at `url`, as the `test` environment: app
/// checks on connecting that the server is one of the clusters this project started.
pub(crate) fn throwaway_guard(url: &str) -> Result<app::Guard> {
    app::Guard::throwaway(url, app::Settings::load(&crate::context::project_root())?)
}

fn throwaway_root() -> PathBuf {
    std::env::temp_dir().join("xtask-throwaway")
}

/// The folder of this OS user's throwaways, in the shared temp folder: made 0711 (the
/// server's OS user passes through, nobody else lists or writes), or found as a real folder
/// of this user. One that another user made, or a link, is refused: its owner could rename
/// what we put there and swap in a folder of their own, where the next file would land.
fn private_root() -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let root = throwaway_root();
    match std::fs::DirBuilder::new().mode(0o711).create(&root) {
        Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(err).with_context(|| format!("cannot create {}", root.display()));
        }
        _ => {}
    }
    let me = std::fs::metadata("/proc/self").context("cannot tell which OS user this is")?.uid();
    let found = std::fs::symlink_metadata(&root).with_context(|| format!("cannot read {}", root.display()))?;
    if !found.is_dir() || found.uid() != me {
        anyhow::bail!(
            "{} is not a folder of this OS user: no throwaway cluster is made there\nhint: remove it (another user or a link put it there), or set TMPDIR to a private folder",
            root.display()
        );
    }
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711))
        .with_context(|| format!("cannot make {} private", root.display()))?;
    Ok(root)
}

fn throwaway_dir(kind: &str) -> Result<PathBuf> {
    static PROCESS_DIR: OnceLock<PathBuf> = OnceLock::new();
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let root = private_root()?;
    let process_dir = PROCESS_DIR.get_or_init(|| {
        remove_stale_throwaways();
        root.join(std::process::id().to_string())
    });
    let dir = process_dir.join(format!("{kind}{}", COUNTER.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Private before anything is written into it (a dump's copy, a TOC list, the server).
    make_private(&dir)?;
    Ok(dir)
}

/// Stops the servers and deletes the folders of earlier processes that are gone.
fn remove_stale_throwaways() {
    let Ok(entries) = std::fs::read_dir(throwaway_root()) else { return };
    let (Ok(sh), Ok(bins)) = (Shell::new(), Binaries::find()) else { return };
    // The root is in the shared temp folder: anyone could plant a link there. Only real
    // folders are followed, and only servers beside the throwaway marker are stopped.
    let real_dir = |path: &Path| std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if Path::new("/proc").join(&pid).exists() || !real_dir(&entry.path()) {
            continue;
        }
        for cluster in std::fs::read_dir(entry.path()).into_iter().flatten().flatten() {
            let ours = real_dir(&cluster.path()) && cluster.path().join(app::guard::THROWAWAY_MARKER).is_file();
            if ours && cluster.path().join("data/postmaster.pid").exists() {
                let _ = Cluster::new(cluster.path(), 0, bins.clone()).stop(&sh, true);
            }
        }
        // Removes links themselves, never what they point at.
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

fn throwaway_template() -> Result<&'static Path> {
    static TEMPLATE: Mutex<Option<&'static Path>> = Mutex::new(None);
    let mut template = TEMPLATE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = *template {
        return Ok(dir);
    }
    let sh = Shell::new()?;
    let dir = throwaway_dir("template")?;
    let cluster = Cluster::new(&dir, free_port()?, Binaries::find()?);
    cluster.init(&sh, Throwaway::password(), Durability::Throwaway)?;
    cluster.start(&sh)?;
    let bootstrapped = bootstrap(&cluster.url(Throwaway::password(), "postgres"));
    cluster.stop(&sh, false)?;
    bootstrapped.context("cannot bootstrap the template cluster")?;
    let dir: &'static Path = Box::leak(dir.into_boxed_path());
    *template = Some(dir);
    Ok(dir)
}

/// Bootstraps a new throwaway cluster's database: Supabase's schema, stamped `test`.
fn bootstrap(url: &str) -> Result<()> {
    throwaway_guard(url)?.write::<op::Reset>()?.reset_in_place(SUPABASE_SQL).map(drop)
}

//! The key of `db reset`'s template database: checksums of everything that builds the
//! reset database (the Supabase bootstrap, the migrations and their folder's settings,
//! the seed's options and the seed generator's own source), so that a template made from
//! anything else is never cloned.

use anyhow::Result;
use app::{Guard, guard::op};
use sha2::{Digest, Sha256};

/// The seed generator's source, compiled in: a change to how rows are made changes the key
/// even when the options are the same.
const SEED_SOURCES: &[&str] = &[
    include_str!("../seed.rs"),
    include_str!("../seed/accounts.rs"),
    include_str!("../seed/beside.rs"),
    include_str!("../seed/calendar.rs"),
    include_str!("../seed/copy.rs"),
    include_str!("../seed/daily.rs"),
    include_str!("../seed/model.rs"),
    include_str!("../seed/random.rs"),
    include_str!("../seed/tables.rs"),
    include_str!("../bulk.rs"),
];

/// The template key for a reset of `guard`'s database, seeded unless `no_seed`.
pub(crate) fn key(guard: &Guard, no_seed: bool) -> Result<String> {
    let mut hash = Sha256::new();
    let mut part = |label: &str, text: &str| {
        hash.update(format!("{label} {}\n", text.len()));
        hash.update(text);
    };
    part("bootstrap", crate::supabase::SUPABASE_SQL);
    let folder = crate::migrate::layout::folder()?;
    part("layout", &format!("{:?} skip_platform_extensions={}", folder.layout, folder.skip_platform_extensions));
    for migration in crate::migrate::load_files()? {
        part("migration", &format!("{} {}", migration.label(), migration.checksum));
    }
    let seeded = !no_seed && guard.allows::<op::Seed>();
    part("seed", &format!("realistic seeded={seeded}"));
    if seeded {
        for source in SEED_SOURCES {
            part("seed source", source);
        }
    }
    Ok(format!("{:x}", hash.finalize()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn seed_sources_are_every_seed_file() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/seed");
        let files = std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).count();
        // Every file under seed/ (its benchmark is in bench/ now), plus seed.rs and bulk.rs.
        assert_eq!(super::SEED_SOURCES.len(), files + 2, "add new seed files to SEED_SOURCES");
    }
}

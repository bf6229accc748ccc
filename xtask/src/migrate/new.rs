//! `cargo xtask migrate new NAME`: the next migration's file(s), named in the folder's layout.

use anyhow::{Result, bail};

use super::{MAX_VERSION, layout, load_files};
use crate::context::data;

pub(super) fn new(name: &str) -> Result<()> {
    if name.chars().any(char::is_control) {
        bail!(
            "a migration name is one line of plain text: this one holds a line break or another control character\nhint: describe the change in a few words, e.g. `add patient notes`"
        );
    }
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if slug.is_empty() {
        bail!("`{name}` gives an empty file name\nhint: describe the change in a few words, e.g. `add patient notes`");
    }
    let folder = layout::folder()?;
    let dir = &folder.dir;
    if folder.layout.forward_only() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let mut file = layout::supabase_file_name(&slug, now);
        if folder.layout == layout::Layout::Prisma {
            file = format!("{}/migration.sql", file.trim_end_matches(".sql"));
        }
        std::fs::create_dir_all(dir.join(&file).parent().unwrap_or(dir))?;
        std::fs::write(dir.join(&file), format!("-- {name}: what this changes, and why.\n\n"))?;
        data(format!("{}/{file}", folder.shown))?;
        return Ok(());
    }
    let newest = load_files()?.last().map_or(0, |m| m.version);
    let Some(version) = newest.checked_add(1).filter(|v| *v <= MAX_VERSION) else {
        bail!(
            "no version number is left after {newest:04}\nhint: migration numbers go up to {MAX_VERSION}; renumber the folder's migrations, or squash them"
        );
    };
    std::fs::create_dir_all(dir)?;
    let label = format!("{version:04}_{slug}");
    let up = dir.join(format!("{label}.up.sql"));
    let down = dir.join(format!("{label}.down.sql"));
    std::fs::write(&up, format!("-- {name}: what this changes, and why.\n\n"))?;
    std::fs::write(&down, format!("-- Reverts {label}: restores the schema exactly as it was before it.\n\n"))?;
    data(format!("{}/{label}.up.sql", folder.shown))?;
    data(format!("{}/{label}.down.sql", folder.shown))?;
    Ok(())
}

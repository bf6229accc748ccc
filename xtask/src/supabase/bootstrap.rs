//! The version of the Supabase bootstrap (`supabase/supabase.sql`), which the bootstrap records
//! in its database's comment (invisible to schema dumps) and `db status` reports, so that a
//! local database made by an older xtask can be told apart and re-created.

use anyhow::Result;

/// The version `supabase/supabase.sql` writes; raise both together.
pub(crate) const VERSION: u32 = 2;

/// The comment text that carries the version.
const PREFIX: &str = "supabase-bootstrap ";

/// The bootstrap version recorded in the connected database, if any (databases made before
/// versioning have none).
pub(crate) fn recorded(client: &mut impl postgres::GenericClient) -> Result<Option<u32>> {
    let comment: Option<String> = client
        .query_one(
            "select shobj_description(oid, 'pg_database') from pg_database where datname = current_database()",
            &[],
        )?
        .get(0);
    Ok(comment.as_deref().and_then(|c| c.strip_prefix(PREFIX)).and_then(|v| v.trim().parse().ok()))
}

/// What `db status` prints for a recorded version.
pub(crate) fn describe(recorded: Option<u32>) -> String {
    match recorded {
        Some(v) if v == VERSION => format!("supabase v{v} (current)"),
        Some(v) => {
            format!("supabase v{v}; this xtask writes v{VERSION}: `cargo xtask db reset` re-creates the database")
        }
        None => format!("none recorded (made before v{VERSION}): `cargo xtask db reset` re-creates the database"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_records_this_version() {
        assert!(
            super::super::SUPABASE_SQL.contains(&format!("'{PREFIX}{VERSION}'")),
            "raise VERSION with supabase/supabase.sql"
        );
    }
}

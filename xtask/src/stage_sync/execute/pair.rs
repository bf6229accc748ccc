//! One table the sync replaces through its shadow copy: the live table's names and the
//! shadow's, which the shadow, the carrying of its parts and the swap all speak of.

/// One replaced table: its live and shadow names.
#[derive(Clone, Debug)]
pub(crate) struct Pair {
    pub oid: u32,
    /// `"schema"."name"` of the live table, and of its shadow.
    pub live: String,
    pub shadow: String,
    /// The live schema, unquoted, and `schema.name` (as the rules name it).
    pub schema: String,
    pub key: String,
    /// The live table's name as the server prints it (with `search_path` empty).
    pub shown: String,
}

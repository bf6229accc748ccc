//! Sampling a source column's values: what `init-rules` reads to suggest rules, and what the
//! rules check reads to refuse a kept column whose values look personal (emails, phone
//! numbers) unless a person marked it reviewed.

use anyhow::Result;
use postgres::GenericClient;

use super::{
    catalog::{Category, Column, Table},
    suggest,
};
use crate::sql;

/// Whether a kept column's values look personal: the rules check asks it of every kept,
/// unreviewed column whose values are [`sampled`].
pub(super) trait PersonalValues {
    fn look_personal(&mut self, table: &Table, column: &Column) -> Result<bool>;
}

/// The source's snapshot: a sample of the column's values (the strings inside, for json
/// and arrays), any of them an email or a phone number.
impl PersonalValues for postgres::Transaction<'_> {
    fn look_personal(&mut self, table: &Table, column: &Column) -> Result<bool> {
        let values = sample(self, table, column)?;
        Ok(values.iter().any(|(_, value)| suggest::value_looks_personal(value)))
    }
}

/// A verdict given as a function (the unit tests: no database).
#[cfg(test)]
pub(super) struct Verdict<F>(pub F);

#[cfg(test)]
impl<F: FnMut(&Table, &Column) -> Result<bool>> PersonalValues for Verdict<F> {
    fn look_personal(&mut self, table: &Table, column: &Column) -> Result<bool> {
        (self.0)(table, column)
    }
}

/// Whether values of this column are sampled: text, json and text arrays.
pub(super) fn sampled(column: &Column) -> bool {
    column.category == Category::String
        || is_json(column)
        || matches!(column.base_type.as_str(), "_text" | "_varchar" | "_bpchar")
}

/// json and jsonb: sampled for the strings inside, under their keys.
pub(super) fn is_json(column: &Column) -> bool {
    matches!(column.base_type.as_str(), "json" | "jsonb")
}

/// Up to 200 rows' values of a column, as (key, string) pairs: for json every string inside,
/// under the key it sits under; for arrays each element; for text the value (key `""`).
pub(super) fn sample(client: &mut impl GenericClient, table: &Table, column: &Column) -> Result<Vec<(String, String)>> {
    let col = sql::ident(&column.name);
    let qualified = table.qualified();
    if is_json(column) {
        let rows =
            client.query(&format!("select {col}::text from {qualified} where {col} is not null limit 200"), &[])?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&row.get::<_, String>(0)) {
                strings_in(&value, "", &mut out);
            }
        }
        return Ok(out);
    }
    let sql = if column.category == Category::Array {
        format!(
            "select e from (select {col} as a from {qualified} where {col} is not null limit 200) s, unnest(s.a) e where e is not null"
        )
    } else {
        format!("select {col}::text from {qualified} where {col} is not null limit 200")
    };
    Ok(client.query(&sql, &[])?.iter().map(|r| (String::new(), r.get::<_, String>(0))).collect())
}

fn strings_in(value: &serde_json::Value, key: &str, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| strings_in(v, k, out)),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_in(v, key, out)),
        serde_json::Value::String(s) => out.push((key.to_string(), s.clone())),
        _ => {}
    }
}

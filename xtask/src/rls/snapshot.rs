//! The access matrix as a committed text file (`env/rls-matrix.txt`): one line per object
//! and persona, `operation=outcome` cells after them, aligned, sorted as probed, so that a
//! change of policy is a one-line diff in review. `--check` compares cell by cell.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

/// The snapshot, relative to the project root.
pub(super) const FILE: &str = "env/rls-matrix.txt";

const HEADER: &str = "\
# The access matrix of `cargo xtask rls matrix`: what each persona can do to each table,
# probed on rows planted for two tenants (A and B; members belong to A) in a rolled-back
# transaction. Outcomes: own (A's rows), other (B's rows), all (both), none (refused by
# row-level security), err:SQLSTATE (err:42501: no privilege). Columns granted apart from
# their table: granted. Views: bypass (owner's rights, no security_invoker) or invoker.
# Security definer functions a signed-in or anonymous caller may execute: definer, and the
# tables their body names. Rewrite with `cargo xtask rls matrix --update` after review.
";

/// One line: an object (table, `table.column`, view or function) as a persona.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub object: String,
    pub persona: String,
    pub cells: Vec<(String, String)>,
}

/// A cell whose outcome changed; `-` where the cell did not exist.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Change {
    pub object: String,
    pub persona: String,
    pub operation: String,
    pub before: String,
    pub after: String,
}

pub(super) fn render(lines: &[Line]) -> String {
    let width = |f: fn(&Line) -> usize| lines.iter().map(f).max().unwrap_or(0);
    let (object, persona) = (width(|l| l.object.len()), width(|l| l.persona.len()));
    let mut text = HEADER.to_string();
    for line in lines {
        let cells: Vec<String> = line.cells.iter().map(|(op, token)| format!("{op}={token}")).collect();
        let row = format!("{:object$}  {:persona$}  {}", line.object, line.persona, cells.join(" "));
        text.push_str(row.trim_end());
        text.push('\n');
    }
    text
}

pub(super) fn parse(text: &str) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(object), Some(persona)) = (words.next(), words.next()) else {
            bail!("{FILE}:{}: a line is `object persona operation=outcome ...`", n + 1);
        };
        let mut cells = Vec::new();
        for word in words {
            let Some((op, token)) = word.split_once('=') else {
                bail!("{FILE}:{}: `{word}` is not `operation=outcome`", n + 1);
            };
            cells.push((op.to_string(), token.to_string()));
        }
        lines.push(Line { object: object.into(), persona: persona.into(), cells });
    }
    Ok(lines)
}

/// The cells that differ, in the live matrix's order (then the ones that disappeared).
pub(super) fn diff(before: &[Line], after: &[Line]) -> Vec<Change> {
    let flat = |lines: &[Line]| -> Vec<((String, String, String), String)> {
        lines
            .iter()
            .flat_map(|l| l.cells.iter().map(|(op, t)| ((l.object.clone(), l.persona.clone(), op.clone()), t.clone())))
            .collect()
    };
    let (old, new) = (flat(before), flat(after));
    let old_map: BTreeMap<_, _> = old.iter().cloned().collect();
    let new_map: BTreeMap<_, _> = new.iter().cloned().collect();
    let mut changes = Vec::new();
    let gone = old.iter().filter(|(key, _)| !new_map.contains_key(key)).map(|(k, t)| (k, t.clone(), "-".to_string()));
    let now = new.iter().map(|(k, t)| (k, old_map.get(k).cloned().unwrap_or_else(|| "-".into()), t.clone()));
    for ((object, persona, operation), before, after) in now.chain(gone) {
        if before != after {
            changes.push(Change {
                object: object.clone(),
                persona: persona.clone(),
                operation: operation.clone(),
                before,
                after,
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(object: &str, persona: &str, cells: &[(&str, &str)]) -> Line {
        Line {
            object: object.into(),
            persona: persona.into(),
            cells: cells.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        }
    }

    #[test]
    fn round_trip_and_diff() {
        let before = vec![
            line("public.goals", "anon", &[("select", "err:42501"), ("insert", "err:42501")]),
            line("public.goals", "owner", &[("select", "own")]),
            line("public.goals.target", "anon", &[("select", "granted")]),
        ];
        assert_eq!(parse(&render(&before)).unwrap(), before);
        let after = vec![
            line("public.goals", "anon", &[("select", "all"), ("insert", "err:42501")]),
            line("public.goals", "owner", &[("select", "own")]),
            line("public.clinics.name", "anon", &[("select", "granted")]),
        ];
        let changes: Vec<String> = diff(&before, &after)
            .iter()
            .map(|c| format!("{} {} {}: {} -> {}", c.object, c.persona, c.operation, c.before, c.after))
            .collect();
        assert_eq!(
            changes,
            [
                "public.goals anon select: err:42501 -> all",
                "public.clinics.name anon select: - -> granted",
                "public.goals.target anon select: granted -> -",
            ]
        );
        assert!(parse("public.goals anon select").is_err());
    }
}

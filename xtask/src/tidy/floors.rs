//! Floors: `xtask/src`'s rooms (a top-level module with its submodules; `lib` is `lib.rs`
//! itself) stand on floors, and a file imports only from its own floor or lower ones, so
//! the plumbing never reaches up into the commands. An import is any path through `crate::`,
//! `super::` or `self::` (`use` groups included) in code that ships; it lands in the file
//! of the longest module its path names. And the file-level import graph has no circle,
//! with a module and its own ancestors and descendants counted as one unit. The floor table
//! is data: after moving rooms, adjust [`FLOORS`].

use std::collections::{BTreeMap, BTreeSet};

use super::{Rule, Source, check_known, sources};

/// Rooms by floor, lowest first. A room not yet written may stand here already.
const FLOORS: &[(&str, &[&str])] = &[
    ("ground", &["pg", "sql", "ui", "context", "app_meta", "flags"]),
    ("platform", &["supabase", "throwaway", "restore_point", "bulk", "tenancy"]),
    ("commands", &["env", "db", "migrate", "backup", "rls", "seed", "stage_sync", "load", "generated"]),
    ("top", &["bench", "ci", "testing", "lib"]),
];

/// Imports from a higher floor allowed for now, as `file -> room`: none since issue 22.
const KNOWN_UPWARD: &[&str] = &[];

/// Import circles allowed for now, each its files sorted and comma-separated: none.
const KNOWN_CIRCLES: &[&str] = &[];

#[test]
fn every_room_has_a_floor() {
    let homeless: BTreeSet<String> = graph().files.keys().map(room).filter(|r| floor(r).is_none()).collect();
    assert!(
        homeless.is_empty(),
        "these rooms of xtask/src stand on no floor: {homeless:?}\nfix: add each to FLOORS in xtask/src/tidy/floors.rs, on the lowest floor from which it imports nothing higher"
    );
}

#[test]
fn no_import_from_a_higher_floor() {
    let graph = graph();
    let mut upward = Vec::new();
    for (module, imports) in &graph.imports {
        for (target, example) in imports {
            let (from, to) = (room(module), room(target));
            if let (Some(low), Some(high)) = (floor(&from), floor(&to))
                && high > low
            {
                let file = &graph.files[module];
                let shown = format!(
                    "{file} ({from}, floor {}) imports {to} (floor {}): {example}",
                    FLOORS[low].0, FLOORS[high].0
                );
                upward.push((format!("{file} -> {to}"), shown));
            }
        }
    }
    upward.sort();
    upward.dedup_by(|a, b| a.0 == b.0);
    check_known(
        Rule {
            what: "these files import from a higher floor",
            fix: "move what is imported down to the importer's floor (or lower), or the importing code up; FLOORS in xtask/src/tidy/floors.rs is the table",
            list: "KNOWN_UPWARD in xtask/src/tidy/floors.rs",
        },
        upward,
        KNOWN_UPWARD,
    );
}

#[test]
fn no_import_circle() {
    let graph = graph();
    let circles = graph
        .circles()
        .into_iter()
        .map(|circle| {
            let files: BTreeSet<&str> = circle.iter().map(|m| graph.files[m].as_str()).collect();
            let key = files.into_iter().collect::<Vec<_>>().join(", ");
            (key.clone(), key)
        })
        .collect();
    check_known(
        Rule {
            what: "these files of xtask/src import each other in a circle (a module with its own submodules counts as one)",
            fix: "move what both sides need into a lower room, or let one side pass it in, so imports point one way",
            list: "KNOWN_CIRCLES in xtask/src/tidy/floors.rs",
        },
        circles,
        KNOWN_CIRCLES,
    );
}

/// A module path inside the crate: `["stage_sync", "rules"]`; the root is empty.
type Module = Vec<String>;

/// The files of `xtask/src` that ship, and what each imports.
struct Graph {
    files: BTreeMap<Module, String>,
    /// Per module, each module it imports with one path that does.
    imports: BTreeMap<Module, BTreeMap<Module, String>>,
}

fn graph() -> Graph {
    let sources: Vec<Source> = sources()
        .into_iter()
        .filter(|s| s.ships() && s.path.starts_with("xtask/src/") && s.path != "xtask/src/main.rs")
        .collect();
    let files: BTreeMap<Module, String> = sources.iter().map(|s| (module_of(&s.path), s.path.clone())).collect();
    let imports = sources
        .iter()
        .map(|source| {
            let module = module_of(&source.path);
            let shipped: String = source
                .code
                .lines()
                .enumerate()
                .map(|(i, line)| if source.tested[i] { "\n".to_string() } else { format!("{line}\n") })
                .collect();
            let mut targets = BTreeMap::new();
            for path in paths(&shipped, &module) {
                let target = (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|m| files.contains_key(m));
                if let Some(target) = target.filter(|t| *t != module) {
                    targets.entry(target).or_insert_with(|| path.join("::"));
                }
            }
            (module, targets)
        })
        .collect();
    Graph { files, imports }
}

impl Graph {
    /// Strongly connected sets of more than one module, an edge between a module and its own
    /// ancestor or descendant left out.
    fn circles(&self) -> Vec<Vec<Module>> {
        let edges = |m: &Module| -> Vec<Module> {
            self.imports.get(m).map(|t| t.keys().filter(|t| !related(m, t)).cloned().collect()).unwrap_or_default()
        };
        let reach = |start: &Module| -> BTreeSet<Module> {
            let (mut seen, mut todo) = (BTreeSet::new(), vec![start.clone()]);
            while let Some(m) = todo.pop() {
                for next in edges(&m) {
                    if seen.insert(next.clone()) {
                        todo.push(next);
                    }
                }
            }
            seen
        };
        let reached: BTreeMap<&Module, BTreeSet<Module>> = self.files.keys().map(|m| (m, reach(m))).collect();
        let mut circles: Vec<Vec<Module>> = Vec::new();
        for (m, from_m) in &reached {
            if circles.iter().any(|c| c.contains(m)) {
                continue;
            }
            let circle: Vec<Module> =
                from_m.iter().filter(|o| reached.get(o).is_some_and(|back| back.contains(*m))).cloned().collect();
            if circle.len() > 1 {
                circles.push(circle);
            }
        }
        circles
    }
}

fn related(a: &Module, b: &Module) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// `xtask/src/stage_sync/rules.rs` is `stage_sync::rules`; `lib.rs` the root.
fn module_of(path: &str) -> Module {
    let inner = path.trim_start_matches("xtask/src/").trim_end_matches(".rs").trim_end_matches("/mod");
    inner.split('/').filter(|s| !s.is_empty() && inner != "lib").map(str::to_string).collect()
}

fn room(module: &Module) -> String {
    module.first().cloned().unwrap_or_else(|| "lib".to_string())
}

fn floor(room: &str) -> Option<usize> {
    FLOORS.iter().position(|(_, rooms)| rooms.contains(&room))
}

/// Every path in `code` that starts at `crate`, `super` or `self`, made absolute from
/// `module`; a `use` group gives one path per member.
fn paths(code: &str, module: &Module) -> Vec<Module> {
    let tokens = tokens(code);
    let mut found = Vec::new();
    let mut k = 0;
    while k < tokens.len() {
        let starts = matches!(tokens[k].as_str(), "crate" | "super" | "self")
            && tokens.get(k + 1).is_some_and(|t| t == "::")
            && (k == 0 || tokens[k - 1] != "::");
        if !starts {
            k += 1;
            continue;
        }
        let mut base = if tokens[k] == "crate" { Vec::new() } else { module.clone() };
        if tokens[k] == "super" {
            base.pop();
        }
        k += 2;
        while tokens.get(k).is_some_and(|t| t == "super") && tokens.get(k + 1).is_some_and(|t| t == "::") {
            base.pop();
            k += 2;
        }
        k = tree(&tokens, k, base, &mut found);
    }
    found
}

/// Reads the path (or `{...}` group of paths) at `k` below `prefix` into `found`; returns
/// where it ends.
fn tree(tokens: &[String], mut k: usize, mut prefix: Module, found: &mut Vec<Module>) -> usize {
    loop {
        let Some(token) = tokens.get(k) else {
            found.push(prefix);
            return k;
        };
        if token == "{" {
            k += 1;
            while k < tokens.len() && tokens[k] != "}" {
                let before = k;
                k = tree(tokens, k, prefix.clone(), found);
                if tokens.get(k).is_some_and(|t| t == "as") {
                    k += 2;
                }
                if tokens.get(k).is_some_and(|t| t == ",") || k == before {
                    k += 1;
                }
            }
            return k + 1;
        }
        if !token.starts_with(|c: char| c.is_alphabetic() || c == '_') {
            found.push(prefix);
            return k;
        }
        if token != "self" {
            prefix.push(token.clone());
        }
        k += 1;
        if tokens.get(k).is_none_or(|t| t != "::") {
            found.push(prefix);
            return k;
        }
        k += 1;
    }
}

/// Words, `::` and single punctuation characters of `code`.
fn tokens(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let (mut tokens, mut k) = (Vec::new(), 0);
    while k < chars.len() {
        let c = chars[k];
        if c.is_alphanumeric() || c == '_' {
            let len = chars[k..].iter().take_while(|c| c.is_alphanumeric() || **c == '_').count();
            tokens.push(chars[k..k + len].iter().collect());
            k += len;
        } else if c == ':' && chars.get(k + 1) == Some(&':') {
            tokens.push("::".to_string());
            k += 2;
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            k += 1;
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_groups_super_and_self() {
        let module: Module = vec!["stage_sync".into(), "dump".into()];
        let code = "use crate::{pg::{self, restore::Restore as R}, sql};\nuse super::super::db::x;\nself::a::b(); crate::ui::status(); pub(crate) fn f() {}";
        let found: Vec<String> = paths(code, &module).iter().map(|p| p.join("::")).collect();
        assert_eq!(found, ["pg", "pg::restore::Restore", "sql", "db::x", "stage_sync::dump::a::b", "ui::status"]);
    }

    #[test]
    fn modules_are_named_from_paths() {
        assert_eq!(module_of("xtask/src/lib.rs"), Vec::<String>::new());
        assert_eq!(module_of("xtask/src/stage_sync/rules.rs"), ["stage_sync", "rules"]);
    }
}

//! Repository rules as tests, in the manner of rust-analyzer's `tidy.rs`: every Rust file
//! starts with a `//!` header, stays under a length a reader can hold, never calls
//! `process::exit` outside `main`, and parsers of user input never `.unwrap()`. The rules on
//! quoting, functions, floors and ARCHITECTURE.md's other promises live in the submodules.
//! Each failure says how to fix what it found. Every rule has a `KNOWN_*` list of places
//! allowed to break it, empty since issue 22: the test fails on anything not listed and on
//! a listed entry that no longer breaks the rule, so a list can only shrink.

mod floors;
mod promises;
mod quoting;
mod scan;
mod shape;

use std::path::{Path, PathBuf};

/// Longer files are split by what they do (see ARCHITECTURE.md's codemap).
const MAX_LINES: usize = 500;

/// Files over the limit: none, and it stays so.
const KNOWN_LONG_FILES: &[&str] = &[];

/// Where the command line, settings and data files are parsed: input comes from people, so
/// a bad value must be an `error:` line, never a panic.
const PARSERS: &[&str] = &[
    "xtask/src/flags.rs",
    "xtask/src/load/workload.rs",
    "xtask/src/stage_sync/rules.rs",
    "xtask/src/tenancy.rs",
    "xtask/src/migrate/files.rs",
    "xtask/src/migrate/layout.rs",
    "xtask/src/migrate/lint/baseline.rs",
    "app/src/settings.rs",
    "app/src/database_url.rs",
    "app/src/selection.rs",
];

#[test]
fn every_file_starts_with_a_header() {
    let missing: Vec<String> =
        sources().into_iter().filter(|source| !source.text.starts_with("//!")).map(|source| source.path).collect();
    assert!(
        missing.is_empty(),
        "these files have no `//!` header:\n  {}\nfix: start each with `//!` lines saying what the file is for (see xtask/src/ui.rs)",
        missing.join("\n  ")
    );
}

#[test]
fn no_file_is_too_long() {
    let long = sources()
        .into_iter()
        .filter(|source| source.text.lines().count() > MAX_LINES)
        .map(|source| (source.path.clone(), format!("{} ({} lines)", source.path, source.text.lines().count())))
        .collect();
    check_known(
        Rule {
            what: &format!("these files are over {MAX_LINES} lines"),
            fix: "split each by what its parts do (a submodule per step, tests beside them) and update ARCHITECTURE.md's codemap",
            list: "KNOWN_LONG_FILES in xtask/src/tidy.rs",
        },
        long,
        KNOWN_LONG_FILES,
    );
}

#[test]
fn only_main_exits() {
    let exits: Vec<String> = sources()
        .into_iter()
        .filter(|source| !source.path.starts_with("xtask/src/tidy"))
        .flat_map(|source| lines_with(&source.path, &source.text, &["process::exit("]))
        .collect();
    assert!(
        exits.is_empty(),
        "process::exit outside main skips every Drop (throwaway clusters leak):\n  {}\nfix: return an error (for a closed stdout, `ui::BrokenPipe`) and let `xtask::main` choose the exit code",
        exits.join("\n  ")
    );
}

#[test]
fn parsers_never_unwrap() {
    let unwraps: Vec<String> = PARSERS
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
            // Unit tests may unwrap: they sit after `#[cfg(test)]`.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
            lines_with(path, &code, &[".unwrap()", ".expect(\""])
        })
        .collect();
    assert!(
        unwraps.is_empty(),
        "parsers of user input unwrap (a bad value would panic):\n  {}\nfix: return an error naming the file and line, with a `hint:`; or, for a fact the code itself guarantees, say why in an `.expect(..)` on its own type, outside these files",
        unwraps.join("\n  ")
    );
}

#[test]
#[should_panic(expected = "fix: split")]
fn a_violation_not_on_its_list_fails() {
    let rule = Rule { what: "too long", fix: "split", list: "KNOWN_X" };
    check_known(rule, vec![("a.rs".into(), "a.rs (600 lines)".into())], &["b.rs"]);
}

#[test]
#[should_panic(expected = "these entries of KNOWN_X no longer break the rule")]
fn a_list_entry_that_no_longer_violates_fails() {
    let rule = Rule { what: "too long", fix: "split", list: "KNOWN_X" };
    check_known(rule, vec![("a.rs".into(), "a.rs (600 lines)".into())], &["a.rs", "b.rs"]);
}

/// `path:line: text` for each line holding one of `needles`, comments aside.
fn lines_with(path: &str, text: &str, needles: &[&str]) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//") && needles.iter().any(|n| line.contains(n)))
        .map(|(i, line)| format!("{path}:{}: {}", i + 1, line.trim()))
        .collect()
}

/// What a rule reports: what it found, how to fix it, and where its `KNOWN_*` list is.
struct Rule<'a> {
    what: &'a str,
    fix: &'a str,
    list: &'a str,
}

/// Fails on each of `found` (key, description) whose key `known` does not list, and on each
/// entry of `known` that is no longer found.
fn check_known(rule: Rule, found: Vec<(String, String)>, known: &[&str]) {
    let new: Vec<&str> =
        found.iter().filter(|(key, _)| !known.contains(&key.as_str())).map(|(_, shown)| shown.as_str()).collect();
    assert!(new.is_empty(), "{}:\n  {}\nfix: {}", rule.what, new.join("\n  "), rule.fix);
    let gone: Vec<&&str> = known.iter().filter(|entry| !found.iter().any(|(key, _)| key == **entry)).collect();
    assert!(
        gone.is_empty(),
        "these entries of {} no longer break the rule ({}):\n  {}\nfix: remove them from the list, which only shrinks",
        rule.list,
        rule.what,
        gone.iter().map(|entry| entry.to_string()).collect::<Vec<_>>().join("\n  ")
    );
}

/// A Rust source of the workspace.
struct Source {
    /// From the repository's root, with `/`.
    path: String,
    text: String,
    /// The text with comments and the insides of literals blanked ([`scan::code_only`]).
    code: String,
    /// Per 0-based line, whether only tests compile it.
    tested: Vec<bool>,
    /// Whether only tests compile the whole file.
    only_tests: bool,
}

impl Source {
    /// Code that ships: under `app/src` or `xtask/src`, outside test modules and their files.
    fn ships(&self) -> bool {
        (self.path.starts_with("app/src/") || self.path.starts_with("xtask/src/")) && !self.only_tests
    }

    /// `path:line: text` for each line that ships and whose code (literals blanked) holds one
    /// of `needles`.
    fn shipped_lines_with(&self, needles: &[&str]) -> Vec<String> {
        if !self.ships() {
            return Vec::new();
        }
        let raw: Vec<&str> = self.text.lines().collect();
        self.code
            .lines()
            .enumerate()
            .filter(|(i, line)| !self.tested[*i] && needles.iter().any(|n| line.contains(n)))
            .map(|(i, _)| format!("{}:{}: {}", self.path, i + 1, raw[i].trim()))
            .collect()
    }
}

/// Every Rust source of the workspace. A file only tests compile (`*tests.rs`, a module
/// declared under `#[cfg(test)]` and its submodules, `tests/`) has every line marked tested.
fn sources() -> Vec<Source> {
    let root = root();
    let mut files = Vec::new();
    for dir in ["app", "xtask", "tests"] {
        collect(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} Rust files under {}: is the root right?", files.len(), root.display());
    let mut sources: Vec<Source> = files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let path = path.strip_prefix(&root).expect("under the root").to_string_lossy().replace('\\', "/");
            let code = scan::code_only(&text);
            let tested = scan::test_lines(&code);
            Source { path, text, code, tested, only_tests: false }
        })
        .collect();
    let test_files: Vec<String> = sources
        .iter()
        .flat_map(|s| scan::test_module_files(&s.code).into_iter().map(|name| format!("{}{name}", module_dir(&s.path))))
        .collect();
    for source in &mut sources {
        let stem = source.path.trim_end_matches(".rs").trim_end_matches("/mod");
        source.only_tests = source.path.starts_with("tests/")
            || source.path.ends_with("tests.rs")
            || test_files.iter().any(|t| stem == t || stem.starts_with(&format!("{t}/")));
        if source.only_tests {
            source.tested.iter_mut().for_each(|t| *t = true);
        }
    }
    sources
}

/// The folder holding the submodules of the module in `path`, with a trailing `/`.
fn module_dir(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, "lib.rs" | "main.rs" | "mod.rs")) => format!("{dir}/"),
        _ => format!("{}/", path.trim_end_matches(".rs")),
    }
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let path = entry.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The repository, from this crate's manifest (not `XTASK_PROJECT_ROOT`: tidy checks the
/// sources, never a scratch project).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ has a parent").to_path_buf()
}

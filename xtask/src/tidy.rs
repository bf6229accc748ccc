//! Repository rules as tests, in the manner of rust-analyzer's `tidy.rs`: every Rust file
//! starts with a `//!` header, stays under a length a reader can hold, never calls
//! `process::exit` outside `main`, and parsers of user input never `.unwrap()`. Each failure
//! says how to fix what it found.

use std::path::{Path, PathBuf};

/// Longer files are split by what they do (see ARCHITECTURE.md's codemap).
const MAX_LINES: usize = 500;

/// Files over the limit, each with the reason it may be for now.
const LONG_FILES: &[(&str, &str)] = &[];

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
        sources().into_iter().filter(|(_, text)| !text.starts_with("//!")).map(|(path, _)| path).collect();
    assert!(
        missing.is_empty(),
        "these files have no `//!` header:\n  {}\nfix: start each with `//!` lines saying what the file is for (see xtask/src/ui.rs)",
        missing.join("\n  ")
    );
}

#[test]
fn no_file_is_too_long() {
    let long: Vec<String> = sources()
        .into_iter()
        .filter(|(path, text)| text.lines().count() > MAX_LINES && !LONG_FILES.iter().any(|(p, _)| p == path))
        .map(|(path, text)| format!("{path} ({} lines)", text.lines().count()))
        .collect();
    assert!(
        long.is_empty(),
        "these files are over {MAX_LINES} lines:\n  {}\nfix: split each by what its parts do (a submodule per step, tests beside them) and update ARCHITECTURE.md's codemap",
        long.join("\n  ")
    );
    for (path, why) in LONG_FILES {
        let lines = std::fs::read_to_string(root().join(path)).map(|t| t.lines().count()).unwrap_or(0);
        assert!(
            lines > MAX_LINES,
            "{path} is {lines} lines now: remove it from LONG_FILES in xtask/src/tidy.rs ({why})"
        );
    }
}

#[test]
fn only_main_exits() {
    let exits: Vec<String> = sources()
        .into_iter()
        .filter(|(path, _)| path != "xtask/src/tidy.rs")
        .flat_map(|(path, text)| lines_with(&path, &text, &["process::exit("]))
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

/// `path:line: text` for each line holding one of `needles`, comments aside.
fn lines_with(path: &str, text: &str, needles: &[&str]) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//") && needles.iter().any(|n| line.contains(n)))
        .map(|(i, line)| format!("{path}:{}: {}", i + 1, line.trim()))
        .collect()
}

/// Every Rust source of the workspace, as (path from the root, text).
fn sources() -> Vec<(String, String)> {
    let root = root();
    let mut files = Vec::new();
    for dir in ["app", "xtask", "tests"] {
        collect(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} Rust files under {}: is the root right?", files.len(), root.display());
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.strip_prefix(&root).expect("under the root").to_string_lossy().into_owned(), text)
        })
        .collect()
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

//! Functions a reader can hold: none that ships is over [`MAX_FN_LINES`] lines (from its
//! `fn` to its closing brace) or takes more than [`MAX_PARAMS`] parameters (`self`
//! included). Tests are exempt: `#[cfg(test)]` items, `*tests.rs` files and `tests/`.

use super::{Rule, check_known, scan, sources};

const MAX_FN_LINES: usize = 80;
const MAX_PARAMS: usize = 6;

/// Functions over [`MAX_FN_LINES`] allowed for now, as `path fn-name`: none.
const KNOWN_LONG_FUNCTIONS: &[&str] = &[];

/// Functions over [`MAX_PARAMS`] parameters allowed for now, as `path fn-name`: none.
const KNOWN_MANY_PARAMS: &[&str] = &[];

#[test]
fn no_function_is_too_long() {
    let long = shipped_functions()
        .filter(|(_, f)| f.lines > MAX_FN_LINES)
        .map(|(path, f)| (format!("{path} {}", f.name), format!("{path}:{} {} ({} lines)", f.line, f.name, f.lines)))
        .collect();
    check_known(
        Rule {
            what: &format!("these functions are over {MAX_FN_LINES} lines"),
            fix: "split each into steps that read top-down: the public function first, saying what it does in calls, its helpers after it",
            list: "KNOWN_LONG_FUNCTIONS in xtask/src/tidy/shape.rs",
        },
        long,
        KNOWN_LONG_FUNCTIONS,
    );
}

#[test]
fn no_function_takes_too_many_parameters() {
    let many = shipped_functions()
        .filter(|(_, f)| f.params > MAX_PARAMS)
        .map(|(path, f)| {
            (format!("{path} {}", f.name), format!("{path}:{} {} ({} parameters)", f.line, f.name, f.params))
        })
        .collect();
    check_known(
        Rule {
            what: &format!("these functions take more than {MAX_PARAMS} parameters"),
            fix: "pass a small struct of what belongs together (a config or a context) instead",
            list: "KNOWN_MANY_PARAMS in xtask/src/tidy/shape.rs",
        },
        many,
        KNOWN_MANY_PARAMS,
    );
}

/// Every function that ships, with its file's path.
fn shipped_functions() -> impl Iterator<Item = (String, scan::Function)> {
    sources().into_iter().filter(|source| source.ships()).flat_map(|source| {
        scan::functions(&source.code, &source.tested).into_iter().map(move |f| (source.path.clone(), f))
    })
}

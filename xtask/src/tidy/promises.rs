//! What ARCHITECTURE.md promises that reading the source can check, in code that ships:
//! only `app/src/connect.rs` opens database connections, only the printer
//! (`xtask/src/ui.rs`) prints or draws progress, TLS is never told to skip verification,
//! and `app` never depends on `xtask`. (`process::exit` only in `main` is in `tidy.rs`;
//! quoting in `quoting.rs`.)

use super::{Rule, check_known, root, sources};

/// Prints outside the printer allowed for now, as `path: the line's text`: none (a line
/// that must show under `-q` goes through `ui::report`).
const KNOWN_PRINTS: &[&str] = &[];

#[test]
fn only_connect_opens_connections() {
    let found: Vec<String> = sources()
        .into_iter()
        .filter(|s| s.path != "app/src/connect.rs")
        .flat_map(|s| {
            s.shipped_lines_with(&[
                "Client::connect",
                "Config::connect",
                "NoTls",
                "postgres::Config::new",
                "tokio_postgres::connect",
            ])
        })
        .collect();
    assert!(
        found.is_empty(),
        "these lines open a database connection outside app/src/connect.rs:\n  {}\nfix: ask the guard for a target (`guard.write::<op::..>()?.connect()` or `read`), so the matrix, the endpoint pin and the stamp check apply",
        found.join("\n  ")
    );
}

#[test]
fn only_the_printer_prints() {
    let found = sources()
        .into_iter()
        .filter(|s| s.path != "xtask/src/ui.rs")
        .flat_map(|s| s.shipped_lines_with(&["print!(", "println!(", "dbg!(", "io::stdout(", "io::stderr("]))
        .map(|line| (known_key(&line), line))
        .collect();
    check_known(
        Rule {
            what: "these lines print outside the printer (xtask/src/ui.rs)",
            fix: "use `context::status`/`warn` for status on stderr and `context::data` for data on stdout (or the `ui::Printer`), so `-q`, colour, secrets and a closed stdout are handled once",
            list: "KNOWN_PRINTS in xtask/src/tidy/promises.rs",
        },
        found,
        KNOWN_PRINTS,
    );
}

#[test]
fn progress_is_drawn_through_the_printer() {
    let found: Vec<String> = sources()
        .into_iter()
        .filter(|s| s.path != "xtask/src/ui.rs")
        .flat_map(|s| {
            s.shipped_lines_with(&["ProgressDrawTarget", "MultiProgress::new", "draw_target(", "ProgressBar::"])
                .into_iter()
                // A bar added to the printer's `MultiProgress` draws where the printer says.
                .filter(|line| !line.contains(".add(ProgressBar::") && !line.contains(", ProgressBar::"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "these lines draw progress outside the printer:\n  {}\nfix: take bars from `ui::printer().progress()` or `progress_line()` (hidden off a terminal and under -q)",
        found.join("\n  ")
    );
}

#[test]
fn tls_is_always_verified() {
    let found: Vec<String> = sources()
        .into_iter()
        .flat_map(|s| s.shipped_lines_with(&["dangerous(", "ServerCertVerifier", "danger_accept", "SslMode::Prefer"]))
        .collect();
    assert!(
        found.is_empty(),
        "these lines weaken TLS:\n  {}\nfix: remote hosts are reached over TLS with certificate verification only (ARCHITECTURE.md's invariants); trust a CA file instead",
        found.join("\n  ")
    );
}

#[test]
fn app_never_depends_on_xtask() {
    let manifest = std::fs::read_to_string(root().join("app/Cargo.toml")).expect("app/Cargo.toml");
    let uses: Vec<String> = sources()
        .into_iter()
        .filter(|s| s.path.starts_with("app/"))
        .flat_map(|s| s.shipped_lines_with(&["xtask::"]))
        .collect();
    assert!(
        !manifest.lines().any(|l| l.trim_start().starts_with("xtask")) && uses.is_empty(),
        "app depends on xtask:\n  {}\nfix: move what app needs into app; xtask depends on app, never the reverse",
        uses.join("\n  ")
    );
}

/// `path: text` of a `path:line: text` line.
fn known_key(line: &str) -> String {
    let (path, rest) = line.split_once(':').unwrap_or((line, ""));
    format!("{path}: {}", rest.split_once(": ").map_or(rest, |(_, text)| text))
}

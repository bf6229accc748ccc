//! What several suites share beyond the harness: the repository's migrations by name (so
//! the next real migration breaks no test) and the one kill suite.

use std::path::Path;

use crate::harness::{Running, TestCluster};

/// The repository's migrations, oldest first, as `NNNN_name`: tests count and name them
/// through this, so the next real migration breaks none of them. Test-only migrations are
/// numbered from 9001, far from the real sequence.
pub fn repo_migrations() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".up.sql").map(str::to_string))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no migrations in {}", dir.display());
    names
}

/// The newest migration of the repository: its version and `NNNN_name`.
pub fn latest_migration() -> (i32, String) {
    let name = repo_migrations().pop().unwrap();
    (name[..4].parse().unwrap(), name)
}

/// A kill suite: the command `run` starts is SIGKILLed once per delay (milliseconds).
/// Before each run `touch` changes the database a little and returns its state; after each
/// kill, `state` must be that touched state (the kill landed before the commit) or
/// `complete` (after it): anything else is half-written. At least one kill must land before
/// the commit, or the suite proved nothing: while none has, another kill is made at half
/// the shortest delay so far. Prints the tally and returns how many landed before.
pub fn kill_suite<'p>(
    what: &str,
    delays: &[u64],
    complete: &str,
    mut touch: impl FnMut() -> String,
    mut run: impl FnMut() -> Running<'p>,
    mut state: impl FnMut() -> String,
) -> usize {
    let mut delays = delays.to_vec();
    let (mut before, mut after, mut i) = (0, 0, 0);
    while i < delays.len() || (before == 0 && i < delays.len() + 5) {
        if i == delays.len() {
            delays.push(delays.iter().min().copied().unwrap_or(2) / 2);
        }
        let delay = delays[i];
        let touched = touch();
        let running = run();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let said = running.kill();
        let now = state();
        assert!(
            now == touched || now == complete,
            "{what}: the kill after {delay} ms left the database half-written; the killed run had said:\n{said}"
        );
        before += usize::from(now == touched && now != complete);
        after += usize::from(now == complete);
        i += 1;
    }
    eprintln!(
        "kill suite: {what} SIGKILLed {} times at {delays:?} ms: {before} before the commit (left as it was), {after} after it (complete), 0 half-written",
        delays.len()
    );
    assert!(before > 0, "{what}: no kill landed before the commit, so nothing was tested mid-run");
    before
}

/// The project's databases beside the target, once the detached drop of a replaced one
/// (and of a killed run's scratch) is done: at most 60 s on a busy machine.
pub fn settled(cluster: &TestCluster) -> Vec<String> {
    let sql = "select datname::text from pg_database where datname like 'postgres\\_xtask\\_%' order by 1";
    for _ in 0..600 {
        let names = cluster.strings(sql);
        if !names.iter().any(|n| n.ends_with("_old") || n.ends_with("_new")) {
            return names;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cluster.strings(sql)
}

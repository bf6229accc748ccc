//! Which workload statements a rollback undoes. Every load-test transaction is rolled back,
//! so a statement is accepted only if the rollback leaves the database as it was: one
//! SELECT, INSERT, UPDATE, DELETE or VALUES (with `WITH` as needed), read by Squawk's
//! PostgreSQL parser, the one `migrate lint` uses. Anywhere in its tree (CTEs, subqueries,
//! casts, `FROM f()`), no function or relation from [`DENIED`] may appear, matched on the
//! unqualified name, case-insensitively, quoted or not: sequences, advisory locks, other
//! sessions, other connections, large objects, server files and settings act outside the
//! transaction. Other functions the statement calls are named by [`calls`], and the run
//! refuses those the target declares `VOLATILE`; what the database runs on its own
//! (triggers, column defaults) is outside both checks, and the README says so.

use squawk_syntax::{
    SourceFile, SyntaxKind as K, SyntaxNode,
    ast::{self, AstNode},
};

/// Names (exact, or a prefix when ending in `_` or `*`) and why a rollback does not undo them.
const DENIED: &[(&[&str], &str)] = &[
    (&["setval", "nextval"], "moves a sequence, which a rollback does not undo"),
    (
        &["pg_terminate_backend", "pg_cancel_backend", "pg_signal_backend"],
        "acts on other sessions, which a rollback does not undo",
    ),
    (&["pg_advisory_*", "pg_try_advisory_*"], "takes an advisory lock, which can outlive the transaction"),
    (&["dblink*"], "runs SQL over another connection, outside the rolled-back transaction"),
    (
        &["lo_*", "loread", "lowrite", "pg_largeobject*"],
        "works on large objects, whose server files a rollback does not restore",
    ),
    (&["pg_notify"], "sends a notification to other sessions"),
    (
        &[
            "pg_reload_conf",
            "pg_rotate_logfile",
            "pg_switch_wal",
            "pg_create_*",
            "pg_drop_replication_slot",
            "pg_replication_*",
            "pg_logical_*",
            "pg_backup_*",
            "pg_promote",
            "pg_stat_reset*",
            "pg_stat_statements_reset",
            "pg_log_backend_memory_contexts",
            "pg_wal_*",
            "pg_copy_*",
            "pg_sync_*",
        ],
        "acts on the server, outside the transaction",
    ),
    (&["pg_read_*", "pg_ls_*", "pg_stat_file", "pg_file_*"], "reads or writes the server's files"),
    (
        &["heap_force_*", "pg_truncate_visibility_map", "pg_prewarm", "pg_buffercache_evict*"],
        "changes the server's storage or caches directly, outside the transaction",
    ),
    (&["http", "http_*"], "makes an HTTP request, which a rollback does not take back"),
    (&["pg_background_*"], "runs SQL in a background worker, outside the rolled-back transaction"),
    (&["set_config", "pg_settings"], "changes a setting or the role, which the load test sets for each transaction"),
    // `ts_stat(sql)` and `ts_rewrite(query, sql)` run a query given as text.
    (&["query_to_xml*", "cursor_to_xml*", "ts_stat", "ts_rewrite"], "runs SQL text that this check cannot read"),
];

/// Why `name` (unqualified, folded) is refused, if it is.
fn denied(name: &str) -> Option<&'static str> {
    DENIED.iter().find_map(|(names, why)| {
        names
            .iter()
            .any(|n| match n.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == *n,
            })
            .then_some(*why)
    })
}

/// Checks one statement (positional form). A refusal gives the byte offset of what is
/// refused and one sentence saying what and why.
pub(super) fn check(sql: &str) -> Result<(), (usize, String)> {
    let parse = SourceFile::parse(sql);
    if let Some(error) = parse.errors().first() {
        return Err((
            usize::from(error.range().start()),
            format!("sql does not parse ({}): a statement the check cannot read does not run", error.message()),
        ));
    }
    let statements: Vec<ast::Stmt> = parse.tree().stmts().collect();
    let [statement] = statements.as_slice() else {
        return Err((0, "one statement per query".to_string()));
    };
    let node = statement.syntax();
    let plain = matches!(
        statement,
        ast::Stmt::Select(_)
            | ast::Stmt::CompoundSelect(_)
            | ast::Stmt::ParenSelect(_)
            | ast::Stmt::Insert(_)
            | ast::Stmt::Update(_)
            | ast::Stmt::Delete(_)
            | ast::Stmt::Values(_)
            | ast::Stmt::Table(_)
    );
    if !plain {
        return Err((
            start(node),
            format!(
                "`{}` is not run by the load test: only SELECT, INSERT, UPDATE, DELETE, VALUES and TABLE (with WITH), whose effects the rollback undoes",
                kind(statement)
            ),
        ));
    }
    for token in node.descendants_with_tokens().filter_map(|e| e.into_token()) {
        // Strings are values; a name inside a literal (`typename 'text'`) is still checked.
        let string = token.kind() != K::IDENT && token.parent().is_some_and(|p| p.kind() == K::LITERAL);
        if token.kind().is_trivia() || string {
            continue;
        }
        let text = token.text();
        let offset = usize::from(token.text_range().start());
        if text.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("u&")) {
            return Err((
                offset,
                format!(
                    "`{text}`: identifiers with Unicode escapes are refused, the name they spell cannot be checked"
                ),
            ));
        }
        let name = fold(text);
        if let Some(why) = denied(&name) {
            return Err((offset, format!("`{name}` {why}: the load test runs only what a rollback undoes")));
        }
    }
    Ok(())
}

/// Volatile functions whose effects end with the transaction or touch nothing stored.
const VOLATILE_OK: &[&str] = &[
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuid_generate_v4",
    "clock_timestamp",
    "timeofday",
    "txid_current",
    "txid_current_if_assigned",
    "pg_current_xact_id",
    "pg_current_xact_id_if_assigned",
    "currval",
    "lastval",
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
];

/// The functions a statement calls by name (unqualified, folded) that the database has to
/// say something about: everything but [`VOLATILE_OK`]. The run refuses those the target
/// declares `VOLATILE` (a function that writes must be), whatever they are named.
pub(super) fn calls(sql: &str) -> Vec<String> {
    let parse = SourceFile::parse(sql);
    let mut names: Vec<String> = parse
        .syntax_node()
        .descendants()
        .filter(|n| n.kind() == K::CALL_EXPR)
        .filter_map(|call| {
            let callee = call.children().next()?;
            let last = callee
                .descendants_with_tokens()
                .filter_map(|e| e.into_token())
                .filter(|t| !t.kind().is_trivia() && t.kind() != K::DOT)
                .last()?;
            Some(fold(last.text()))
        })
        .filter(|n| !VOLATILE_OK.contains(&n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn start(node: &SyntaxNode) -> usize {
    node.descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .find(|t| !t.kind().is_trivia())
        .map_or(0, |t| usize::from(t.text_range().start()))
}

/// The statement's kind as its first words read: `COPY`, `SET`, `SELECT ... INTO`.
fn kind(statement: &ast::Stmt) -> String {
    if matches!(statement, ast::Stmt::SelectInto(_)) {
        return "SELECT ... INTO".to_string();
    }
    let words: Vec<String> = statement
        .syntax()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia())
        .take(2)
        .map(|t| t.text().to_ascii_uppercase())
        .collect();
    match words.first().map(String::as_str) {
        Some("CREATE" | "ALTER" | "DROP" | "SET" | "RESET") => words.join(" "),
        Some(first) => first.to_string(),
        None => String::new(),
    }
}

/// An identifier as a name to compare: unquoted and lower-cased (quoted names are compared
/// case-insensitively too, so `"SETVAL"` is refused like `setval`).
fn fold(text: &str) -> String {
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    text.replace("\"\"", "\"").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::check;

    fn refused(sql: &str) -> String {
        check(sql).map(|()| format!("accepted: {sql}")).unwrap_or_else(|(_, why)| why)
    }

    #[test]
    fn plain_statements_are_accepted() {
        for sql in [
            "select * from public.clinics where id = ($1::uuid)",
            "with x as (select 1) select * from x",
            "insert into public.goals (clinic_id) values (($1::uuid)) on conflict do nothing",
            "update public.goals set target = 1 where id = ($1::uuid) returning id",
            "delete from public.goals where false",
            "select currval('s'), pg_current_xact_id(), txid_current(), 'setval'",
            "table public.clinics",
        ] {
            assert_eq!(check(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn calls_a_rollback_does_not_undo_are_refused_wherever_they_are() {
        for (sql, name) in [
            ("select setval('s', 1)", "setval"),
            ("with a as (select nextval('s')) select * from a", "nextval"),
            ("select \"pg_catalog\".\"setval\"('s', 1)", "setval"),
            ("select PG_CATALOG.SetVal('s', 1)", "setval"),
            ("select 1 from (select 1 where pg_terminate_backend(1)) x", "pg_terminate_backend"),
            ("select * from pg_advisory_lock(1)", "pg_advisory_lock"),
            ("select pg_try_advisory_xact_lock(1)::text", "pg_try_advisory_xact_lock"),
            ("select dblink_exec('x', 'delete from t')", "dblink_exec"),
            ("select lo_unlink(1)", "lo_unlink"),
            ("select * from pg_largeobject", "pg_largeobject"),
            ("select pg_notify('c', 'x')", "pg_notify"),
            ("select pg_read_file('/etc/passwd')", "pg_read_file"),
            ("select pg_reload_conf()", "pg_reload_conf"),
            ("select set_config('role', 'postgres', false)", "set_config"),
            ("select status from http_get('https://example.com')", "http_get"),
            ("select * from ts_stat($$select to_tsvector(setval('s', 1)::text)$$)", "ts_stat"),
            ("select ts_rewrite('a'::tsquery, $$select 'a'::tsquery, setval('s', 1)::text::tsquery$$)", "ts_rewrite"),
            ("update pg_catalog.pg_settings set setting = '0' where name = 'statement_timeout'", "pg_settings"),
            ("select heap_force_kill('t'::regclass, array['(0,1)'::tid])", "heap_force_kill"),
            ("select 1 from t where é = 1 and pg_wal_replay_pause() is null", "pg_wal_replay_pause"),
            ("delete from t where id in (select nextval('s'))", "nextval"),
        ] {
            let why = refused(sql);
            assert!(why.starts_with(&format!("`{name}` ")), "{sql}: {why}");
        }
        assert!(refused("select U&\"\\0073etval\"('s', 1)").contains("Unicode escapes"));
    }

    #[test]
    fn statements_other_than_plain_dml_are_refused() {
        for (sql, kind) in [
            ("copy public.clinics to program 'id'", "`COPY`"),
            ("copy public.clinics from stdin", "`COPY`"),
            ("set search_path = evil", "`SET SEARCH_PATH`"),
            ("reset role", "`RESET ROLE`"),
            ("vacuum public.clinics", "`VACUUM`"),
            ("notify c", "`NOTIFY`"),
            ("select 1 into public.x", "`SELECT ... INTO`"),
            ("create table public.x (a int)", "`CREATE TABLE`"),
            ("call p()", "`CALL`"),
            ("do $$ begin perform setval('s', 1); end $$", "`DO`"),
        ] {
            assert!(refused(sql).starts_with(kind), "{sql}: {}", refused(sql));
        }
        assert!(refused("select (").starts_with("sql does not parse"));
    }

    #[test]
    fn calls_are_named_for_the_database_to_judge() {
        let calls = super::calls("select public.\"Total\"(a), sum(b), random(), x.f(1) from t, g() where now() > $1");
        assert_eq!(calls, ["f", "g", "now", "sum", "total"]);
    }

    #[test]
    fn the_repository_workload_is_accepted() {
        let text = include_str!("../../../env/load.toml");
        let workload = super::super::workload::parse(text).expect("env/load.toml is accepted");
        assert!(!workload.queries.is_empty());
    }
}

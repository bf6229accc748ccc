//! This project's rules, on Squawk's syntax tree: their names (row-level security for every
//! table an API can reach is `tracking.rs`'s, on `exposure.rs`'s events), and those read
//! from one statement alone: no transaction control, `CONCURRENTLY` only outside a
//! transaction, and an acknowledgement for every statement that destroys data.

use squawk_syntax::ast::{self, AstNode};

use super::{idents::qualified, script::Statement};

pub(super) const RLS: &str = "rls-required";
pub(super) const TRANSACTION_CONTROL: &str = "transaction-control";
pub(super) const CONCURRENTLY: &str = "concurrently-in-transaction";
pub(super) const DESTRUCTIVE: &str = "destructive";
pub(super) const MISSING_DOWN: &str = "missing-down";
pub(super) const VIEW_RLS: &str = "view-bypasses-rls";
pub(super) const OPAQUE: &str = "unanalysable-ddl";
pub(super) const BYPASS: &str = "rls-bypass";

/// Every rule name this file defines.
pub(super) const NAMES: &[&str] =
    &[RLS, VIEW_RLS, BYPASS, OPAQUE, TRANSACTION_CONTROL, CONCURRENTLY, DESTRUCTIVE, MISSING_DOWN];

/// A rule that fired on a statement (by index): rule, reason, hint.
pub(super) type Hit = (usize, &'static str, String, String);

/// Checks the statements of one file, each on its own (the exposure rules, which follow
/// tables through the file, are `tracking.rs`'s). `up`: destructive statements are checked
/// in up files only (a down exists to undo, and `rehearse` reports what it loses).
pub(super) fn check(statements: &[Statement], up: bool, no_transaction: bool) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (k, s) in statements.iter().enumerate() {
        if let Some(what) = transaction_control(&s.node) {
            hits.push((
                k,
                TRANSACTION_CONTROL,
                format!("`{what}` in a migration: each file already runs in its own transaction with its ledger row"),
                "remove it; for a statement that cannot run in a transaction, put it alone in a file starting with `-- migrate:no-transaction`".to_string(),
            ));
        }
        if !no_transaction && is_concurrent(&s.node) {
            hits.push((
                k,
                CONCURRENTLY,
                "a CONCURRENTLY operation cannot run inside a transaction, and this file runs in one".to_string(),
                "move it alone into its own migration whose first line is `-- migrate:no-transaction`".to_string(),
            ));
        }
        if up {
            for what in destructive(&s.node) {
                hits.push((
                    k,
                    DESTRUCTIVE,
                    what,
                    format!(
                        "if the data may go, say why above the statement: `-- {} {DESTRUCTIVE}: <why>`",
                        super::script::ACK
                    ),
                ));
            }
        }
    }
    hits
}

fn transaction_control(node: &ast::Stmt) -> Option<&'static str> {
    Some(match node {
        ast::Stmt::Begin(_) => "BEGIN",
        ast::Stmt::Commit(_) => "COMMIT",
        ast::Stmt::Rollback(_) => "ROLLBACK",
        ast::Stmt::SavepointCreate(_) => "SAVEPOINT",
        ast::Stmt::ReleaseSavepoint(_) => "RELEASE SAVEPOINT",
        ast::Stmt::PrepareTransaction(_) => "PREPARE TRANSACTION",
        ast::Stmt::SetTransaction(_) => "SET TRANSACTION",
        _ => return None,
    })
}

fn is_concurrent(node: &ast::Stmt) -> bool {
    match node {
        ast::Stmt::CreateIndex(i) => i.concurrently_token().is_some(),
        ast::Stmt::DropIndex(i) => i.concurrently_token().is_some(),
        ast::Stmt::Reindex(_) | ast::Stmt::AlterTable(_) => node
            .syntax()
            .descendants_with_tokens()
            .any(|e| e.as_token().is_some_and(|t| t.text().eq_ignore_ascii_case("concurrently"))),
        _ => false,
    }
}

/// What a statement destroys: tables, schemas, columns, rows, or values a narrower type
/// cannot hold.
fn destructive(node: &ast::Stmt) -> Vec<String> {
    let mut found = Vec::new();
    match node {
        ast::Stmt::DropTable(t) => {
            for name in t.table_name_refs() {
                found.push(format!("drops table {} and every row in it", qualified(name.syntax())));
            }
        }
        ast::Stmt::DropSchema(_) => found.push("drops a schema and everything in it".to_string()),
        ast::Stmt::Truncate(_) => found.push("truncates: deletes every row".to_string()),
        ast::Stmt::AlterTable(t) => {
            let table = t.table_relation_name().map(|n| qualified(n.syntax())).unwrap_or_default();
            for action in t.syntax().descendants() {
                if let Some(drop) = ast::DropColumn::cast(action.clone()) {
                    let column = drop.column_name_ref().map(|c| c.syntax().text().to_string()).unwrap_or_default();
                    found.push(format!("drops column {table}.{column} and its values"));
                } else if let Some(set_type) = ast::SetType::cast(action) {
                    let ty = set_type.ty().map(|t| t.syntax().text().to_string()).unwrap_or_default();
                    if narrows(&ty) {
                        found.push(format!(
                            "changes a column of {table} to `{ty}`, which can refuse or cut existing values"
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    found
}

/// Types with a bound (a length, a precision, a small range): converting into one can fail
/// or lose data, unlike widening to text, bigint or unbounded numeric.
fn narrows(ty: &str) -> bool {
    let ty = ty.trim().to_ascii_lowercase();
    let base = ty.split('(').next().unwrap_or_default().trim();
    ty.contains('(')
        || matches!(base, "smallint" | "int2" | "integer" | "int" | "int4" | "real" | "float4" | "char" | "character")
}

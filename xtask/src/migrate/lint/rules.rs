//! This project's rules, on Squawk's syntax tree: row-level security for every table an API
//! can reach, no transaction control, `CONCURRENTLY` only outside a transaction, and an
//! acknowledgement for every statement that destroys data.

use std::collections::BTreeSet;

use squawk_syntax::ast::{self, AstNode};

use super::script::Statement;

/// Schemas Supabase's API (PostgREST) exposes: a table there is readable with the anon key
/// unless row-level security says otherwise.
const API_SCHEMAS: &[&str] = &["public"];

pub const RLS: &str = "rls-required";
pub const TRANSACTION_CONTROL: &str = "transaction-control";
pub const CONCURRENTLY: &str = "concurrently-in-transaction";
pub const DESTRUCTIVE: &str = "destructive";
pub const MISSING_DOWN: &str = "missing-down";

/// Every rule name this file defines.
pub const NAMES: &[&str] = &[RLS, TRANSACTION_CONTROL, CONCURRENTLY, DESTRUCTIVE, MISSING_DOWN];

/// A rule that fired on a statement (by index): rule, reason, hint.
pub type Hit = (usize, &'static str, String, String);

/// Checks the statements of one file. `up`: destructive statements and row-level security
/// are checked in up files only (a down exists to undo, and `rehearse` reports what it loses).
pub fn check(statements: &[Statement], up: bool, no_transaction: bool) -> Vec<Hit> {
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
    if up {
        hits.extend(row_level_security(statements));
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

/// Tables created in an API schema without `enable row level security` or without a policy
/// in the same file.
fn row_level_security(statements: &[Statement]) -> Vec<Hit> {
    let (mut enabled, mut policies) = (BTreeSet::new(), BTreeSet::new());
    for s in statements {
        match &s.node {
            ast::Stmt::AlterTable(t) if t.syntax().descendants().any(|n| ast::EnableRls::can_cast(n.kind())) => {
                enabled.extend(t.table_relation_name().map(|n| qualified(n.syntax())));
            }
            ast::Stmt::CreatePolicy(p) => {
                policies.extend(p.on_table().and_then(|o| o.syntax().children().last()).map(|n| qualified(&n)));
            }
            _ => {}
        }
    }
    let mut hits = Vec::new();
    for (k, s) in statements.iter().enumerate() {
        let ast::Stmt::CreateTable(t) = &s.node else { continue };
        let Some(name) = t.table_name().map(|n| qualified(n.syntax())) else { continue };
        let temporary = t.persistence().is_some();
        if temporary || !API_SCHEMAS.iter().any(|schema| name.starts_with(&format!("{schema}."))) {
            continue;
        }
        let missing = match (enabled.contains(&name), policies.contains(&name)) {
            (true, true) => continue,
            (false, false) => "does not enable row-level security and has no policy",
            (false, true) => "does not enable row-level security",
            (true, false) => "enables row-level security but has no policy (nobody but the owner can read it)",
        };
        hits.push((
            k,
            RLS,
            format!("table {name} is reachable through the API and {missing} in this migration"),
            format!("add `alter table {name} enable row level security;` and at least one `create policy ... on {name}` to this file"),
        ));
    }
    hits
}

/// `Public."Notes"` gives `public.Notes`; a bare name is in `public` (the search path).
pub fn qualified(node: &squawk_syntax::SyntaxNode) -> String {
    let text: String = node.text().to_string();
    let text = text.trim();
    let text = text.strip_prefix("only ").or_else(|| text.strip_prefix("ONLY ")).unwrap_or(text).trim();
    let parts: Vec<String> = text
        .split('.')
        .map(|p| {
            let p = p.trim();
            match p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(quoted) => quoted.to_string(),
                None => p.to_ascii_lowercase(),
            }
        })
        .collect();
    if parts.len() == 1 { format!("public.{}", parts[0]) } else { parts.join(".") }
}

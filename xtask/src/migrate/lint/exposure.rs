//! What a statement does to the tables and views the API can reach, found anywhere in its
//! syntax tree: tables created (`CREATE TABLE`, `CREATE TABLE AS`, `SELECT INTO`, foreign
//! tables, schema elements), moved or renamed into place, row-level security enabled or
//! disabled, policies, and views. `DO` blocks and function bodies are parsed (PL/pgSQL and
//! SQL, `EXECUTE` of a string literal included); what cannot be read that way (dynamic SQL,
//! other languages, bodies that do not parse) is reported as opaque, never assumed harmless.

use squawk_syntax::{
    SourceFile, SyntaxKind as K, SyntaxNode,
    ast::{self, AstNode},
};

use super::idents::{call_name, ident, qualified};

mod bypass;

/// Schemas Supabase's API (PostgREST) exposes: a table there is readable with the anon key
/// unless row-level security says otherwise.
pub(super) const API_SCHEMAS: &[&str] = &["public"];

/// Bodies nested deeper than this (`EXECUTE` of a `DO` of an `EXECUTE`...) are opaque.
const MAX_DEPTH: usize = 4;

/// Functions that run SQL text given as a value, out of the linter's sight.
const RUNS_SQL_TEXT: &[&str] =
    &["dblink", "dblink_exec", "dblink_send_query", "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema"];

/// One effect, in the order the statement has them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// A table appears under this name; `how` for the message (e.g. `CREATE TABLE AS`).
    Table {
        name: String,
        how: &'static str,
        /// Written without a schema: where it lands depends on the search path.
        bare: bool,
    },
    /// A relation changes name or schema (`RENAME TO`, `SET SCHEMA`).
    Rename {
        from: String,
        to: String,
    },
    Rls {
        name: String,
        enabled: bool,
        bare: bool,
    },
    Policy {
        name: String,
        bare: bool,
    },
    /// A schema created or renamed: unqualified names may resolve elsewhere after it.
    Schema,
    /// A view that runs with its owner's rights: a finding if `name` is exposed.
    View {
        name: String,
        reason: String,
    },
    /// Something whose effect cannot be read from the text.
    Opaque(String),
    /// A way around row-level security that creates no table (`exposure/bypass.rs`).
    Bypass(String),
}

/// Whether `schema.name` lies in a schema the API exposes.
pub(super) fn exposed(name: &str) -> bool {
    let schema = name.split('.').next().unwrap_or_default();
    API_SCHEMAS.contains(&schema)
}

/// The effects of one statement (its whole tree, bodies included).
pub(super) fn events(stmt: &SyntaxNode) -> Vec<Event> {
    let mut out = Vec::new();
    walk(stmt, 0, &mut out);
    out
}

fn walk(root: &SyntaxNode, depth: usize, out: &mut Vec<Event>) {
    for node in root.descendants() {
        bypass::events(&node, out);
        match node.kind() {
            K::CREATE_TABLE | K::CREATE_TABLE_AS | K::CREATE_FOREIGN_TABLE if !temporary(&node) => {
                let how = match node.kind() {
                    K::CREATE_TABLE => "CREATE TABLE",
                    K::CREATE_TABLE_AS => "CREATE TABLE AS",
                    _ => "CREATE FOREIGN TABLE",
                };
                let bare = bare(&node);
                out.extend(name_of(&node).map(|name| Event::Table { name, how, bare }));
            }
            K::SELECT_INTO => {
                let into = node.children().find(|c| c.kind() == K::INTO_CLAUSE);
                if let Some(into) = into.filter(|i| !temporary(i)) {
                    let bare = bare(&into);
                    out.extend(name_of(&into).map(|name| Event::Table { name, how: "SELECT INTO", bare }));
                }
            }
            K::ALTER_TABLE | K::ALTER_FOREIGN_TABLE => {
                alter_table(&node, out);
                // `ALTER TABLE` sets a view's options too.
                if let Some(name) = name_of(&node) {
                    view_options(&node, &name, out);
                }
            }
            K::ALTER_VIEW | K::ALTER_MATERIALIZED_VIEW => alter_view(&node, out),
            K::CREATE_VIEW | K::CREATE_MATERIALIZED_VIEW if !temporary(&node) => create_view(&node, out),
            K::CREATE_POLICY => {
                let policy = ast::CreatePolicy::cast(node.clone());
                let table = policy.and_then(|p| p.on_table()).and_then(|o| o.syntax().children().last());
                out.extend(table.map(|t| Event::Policy { name: qualified(&t), bare: bare(&t) }));
            }
            K::CREATE_SCHEMA => out.push(Event::Schema),
            K::ALTER_SCHEMA => {
                out.push(Event::Schema);
                let to = node.children().find(|c| c.kind() == K::SCHEMA_RENAME_TO);
                let to = to.and_then(|t| t.last_child()).map(|t| ident(&t));
                if let Some(to) = to.filter(|s| API_SCHEMAS.contains(&s.as_str())) {
                    out.push(Event::Opaque(format!(
                        "renames a schema to {to}: every table in it becomes reachable through the API"
                    )));
                }
            }
            K::IMPORT_FOREIGN_SCHEMA => {
                let into = node.children().find(|c| c.kind() == K::INTO_SCHEMA).and_then(|i| i.last_child());
                if let Some(into) = into.map(|s| ident(&s)).filter(|s| API_SCHEMAS.contains(&s.as_str())) {
                    out.push(Event::Opaque(format!(
                        "imports foreign tables into {into}, which cannot have row-level security"
                    )));
                }
            }
            K::DO => do_block(&node, depth, out),
            K::CREATE_FUNCTION | K::CREATE_PROCEDURE => function(&node, depth, out),
            K::PLPGSQL_DYN_EXECUTE_STMT | K::PLPGSQL_OPEN_EXECUTE | K::PLPGSQL_RETURN_QUERY_EXECUTE_STMT => {
                dynamic(&node, depth, out)
            }
            K::CALL_EXPR => {
                let name = call_name(&node);
                if RUNS_SQL_TEXT.contains(&name.as_str()) {
                    out.push(Event::Opaque(format!("calls {name}, which runs SQL text the linter cannot read")));
                }
            }
            _ => {}
        }
    }
}

/// `TEMP`/`TEMPORARY` among the tokens before the name (`UNLOGGED` is not temporary).
fn temporary(node: &SyntaxNode) -> bool {
    node.children_with_tokens().take_while(|e| !matches!(e.kind(), K::TABLE_NAME | K::VIEW | K::PATH | K::AS_KW)).any(
        |e| {
            e.kind() == K::TEMP
                || e.as_node().is_some_and(|n| {
                    n.descendants_with_tokens().any(|t| matches!(t.kind(), K::TEMP_KW | K::TEMPORARY_KW))
                })
                || matches!(e.kind(), K::TEMP_KW | K::TEMPORARY_KW)
        },
    )
}

/// The qualified name of the relation a statement is about: its first child holding a path.
/// A bare name inside `CREATE SCHEMA s ...` is in `s`; elsewhere in `public` (the search path).
fn name_of(node: &SyntaxNode) -> Option<String> {
    let child = node.children().find(|c| c.descendants().any(|d| matches!(d.kind(), K::PATH | K::PATH_REF)))?;
    let name = qualified(&child);
    let bare = !child.text().to_string().contains('.');
    let schema = node
        .ancestors()
        .find(|a| a.kind() == K::CREATE_SCHEMA)
        .and_then(|s| s.children().find(|c| c.kind() == K::NAMED_SCHEMA).map(|n| ident(&n)));
    match schema {
        Some(schema) if bare => Some(format!("{schema}.{}", name.split_once('.').map_or(name.as_str(), |n| n.1))),
        _ => Some(name),
    }
}

/// Whether the relation a statement is about is named without a schema (and not inside
/// `CREATE SCHEMA`, which names it): the search path decides which table that is.
fn bare(node: &SyntaxNode) -> bool {
    let path = |c: &SyntaxNode| c.descendants().any(|d| matches!(d.kind(), K::PATH | K::PATH_REF));
    let child =
        if path(node) && !node.children().any(|c| path(&c)) { Some(node.clone()) } else { node.children().find(path) };
    let dotted = child.is_some_and(|c| c.descendants_with_tokens().any(|t| t.kind() == K::DOT));
    !dotted && !node.ancestors().any(|a| a.kind() == K::CREATE_SCHEMA)
}

fn alter_table(node: &SyntaxNode, out: &mut Vec<Event>) {
    let Some(name) = name_of(node) else { return };
    let (schema, _) = name.split_once('.').unwrap_or(("public", &name));
    for action in node.descendants() {
        match action.kind() {
            // FORCE applies row-level security to the owner too; it does not enable it.
            K::ENABLE_RLS => out.push(Event::Rls { name: name.clone(), enabled: true, bare: bare(node) }),
            K::DISABLE_RLS => out.push(Event::Rls { name: name.clone(), enabled: false, bare: bare(node) }),
            K::SET_SCHEMA => {
                let to = action.children().find(|c| c.kind() == K::SCHEMA_REF).map(|s| ident(&s));
                let table = name.split_once('.').map_or(name.as_str(), |n| n.1);
                out.extend(to.map(|to| Event::Rename { from: name.clone(), to: format!("{to}.{table}") }));
            }
            K::TABLE_RENAME_TO => {
                let to = action.children().find(|c| c.kind() == K::TABLE_NAME).map(|t| ident(&t));
                out.extend(to.map(|to| Event::Rename { from: name.clone(), to: format!("{schema}.{to}") }));
            }
            _ => {}
        }
    }
}

fn create_view(node: &SyntaxNode, out: &mut Vec<Event>) {
    let Some(name) = name_of(node) else { return };
    let reason = if node.kind() == K::CREATE_MATERIALIZED_VIEW {
        format!("materialized view {name} holds a copy of its rows without row-level security")
    } else if security_invoker(node) == Some(true) {
        return;
    } else {
        format!(
            "view {name} runs with its owner's rights (no `security_invoker = true`), so the row-level security of the tables it reads does not apply to its callers"
        )
    };
    out.push(Event::View { name, reason });
}

fn alter_view(node: &SyntaxNode, out: &mut Vec<Event>) {
    let Some(name) = name_of(node) else { return };
    view_options(node, &name, out);
    for action in node.children().filter(|c| c.kind() == K::SET_SCHEMA) {
        let to = action.children().find(|c| c.kind() == K::SCHEMA_REF).map(|s| ident(&s));
        let view = name.split_once('.').map_or(name.as_str(), |n| n.1);
        if let Some(to) = to {
            out.push(Event::View {
                name: format!("{to}.{view}"),
                reason: format!("moves view {name} into {to}, where the API reaches it; whether it runs with `security_invoker` is not known here"),
            });
        }
    }
}

/// `SET (security_invoker = false)` or `RESET (security_invoker)` on a view.
fn view_options(node: &SyntaxNode, name: &str, out: &mut Vec<Event>) {
    for action in node.children() {
        let reason = match action.kind() {
            K::SET_OPTIONS if security_invoker(&action) == Some(false) => "sets `security_invoker` off",
            K::RESET_OPTIONS if mentions_invoker(&action) => "resets `security_invoker` (off)",
            _ => continue,
        };
        out.push(Event::View {
            name: name.to_string(),
            reason: format!("view {name}: {reason}, so it runs with its owner's rights"),
        });
    }
}

fn mentions_invoker(list: &SyntaxNode) -> bool {
    list.descendants().filter(|n| n.kind() == K::ATTRIBUTE_NAME).any(|n| ident(&n) == "security_invoker")
}

/// The value of `security_invoker` among a statement's options; no value means true.
fn security_invoker(node: &SyntaxNode) -> Option<bool> {
    let option = node.descendants().filter(|n| n.kind() == K::ATTRIBUTE_OPTION).find(|o| {
        o.children().find(|c| c.kind() == K::ATTRIBUTE_NAME).is_some_and(|n| ident(&n) == "security_invoker")
    })?;
    let Some(value) = option.children().find(|c| c.kind() == K::ATTRIBUTE_VALUE) else { return Some(true) };
    let value = value.text().to_string().trim().trim_matches('\'').to_ascii_lowercase();
    Some(matches!(value.as_str(), "true" | "on" | "1" | "yes" | "t" | "y"))
}

fn do_block(node: &SyntaxNode, depth: usize, out: &mut Vec<Event>) {
    let Some(block) = ast::Do::cast(node.clone()) else { return };
    match block.plpgsql() {
        Some(body) if depth < MAX_DEPTH => body_events(
            "a DO block",
            &body.syntax(),
            body.errors().first().map(|e| e.message().to_string()),
            depth,
            out,
        ),
        Some(_) => out.push(Event::Opaque("a DO block nested too deep to read".to_string())),
        None => out.push(Event::Opaque("a DO block in a language other than PL/pgSQL".to_string())),
    }
}

fn function(node: &SyntaxNode, depth: usize, out: &mut Vec<Event>) {
    let (plpgsql, sql, options) = if let Some(f) = ast::CreateFunction::cast(node.clone()) {
        (f.plpgsql(), f.sql_body(), f.option_list())
    } else if let Some(p) = ast::CreateProcedure::cast(node.clone()) {
        (p.plpgsql(), p.sql_body(), p.option_list())
    } else {
        return;
    };
    let what = "a function body";
    if depth >= MAX_DEPTH && (plpgsql.is_some() || sql.is_some()) {
        out.push(Event::Opaque(format!("{what} nested too deep to read")));
    } else if let Some(body) = plpgsql {
        body_events(what, &body.syntax(), body.errors().first().map(|e| e.message().to_string()), depth, out);
    } else if let Some(body) = sql {
        body_events(what, &body.syntax(), body.errors().first().map(|e| e.message().to_string()), depth, out);
    } else {
        let language = options.into_iter().flat_map(|o| o.options()).find_map(|o| match o {
            ast::FuncOption::LanguageFuncOption(l) => l.language_name().map(|l| l.name.to_ascii_lowercase()),
            _ => None,
        });
        // A body given as text that neither parser took (another language, or one named in
        // a way the parser does not match, e.g. `'PLPGSQL'`); `BEGIN ATOMIC` is in the tree.
        let text_body = node.descendants().any(|n| n.kind() == K::AS_FUNC_OPTION);
        match language.as_deref() {
            Some("c" | "internal") => {}
            _ if !text_body => {}
            Some(other) => out.push(Event::Opaque(format!("{what} in language {other}, which the linter cannot read"))),
            None => out.push(Event::Opaque(format!("{what} without a language the linter reads"))),
        }
    }
}

fn body_events(what: &str, body: &SyntaxNode, first_error: Option<String>, depth: usize, out: &mut Vec<Event>) {
    if let Some(error) = first_error {
        out.push(Event::Opaque(format!("{what} does not parse ({error}), so what it creates cannot be checked")));
    }
    // A body may never run, or run only some of its branches: what it exposes counts, what
    // it protects (row-level security enabled, a policy, a move away) does not.
    let mut inner = Vec::new();
    walk(body, depth + 1, &mut inner);
    out.extend(inner.into_iter().filter_map(|e| match e {
        Event::Rls { enabled: true, .. } | Event::Policy { .. } => None,
        Event::Rename { to, .. } if exposed(&to) => {
            Some(Event::Table { name: to, how: "a rename in a body", bare: false })
        }
        Event::Rename { .. } => None,
        other => Some(other),
    }));
}

/// `EXECUTE 'literal SQL'` is read; SQL built at run time is opaque.
fn dynamic(node: &SyntaxNode, depth: usize, out: &mut Vec<Event>) {
    let expr = node.children().find(|c| c.kind() == K::PLPGSQL_EXPR);
    let literal = expr.and_then(|e| {
        let targets: Vec<SyntaxNode> = e.descendants().filter(|n| n.kind() == K::TARGET).collect();
        let [target] = targets.as_slice() else { return None };
        let child = target.children().next()?;
        (target.children().count() == 1).then_some(())?;
        ast::Literal::cast(child)?.string_value()
    });
    match literal {
        Some(sql) if depth < MAX_DEPTH => {
            let parse = SourceFile::parse(&sql);
            body_events(
                "SQL run by EXECUTE",
                &parse.syntax_node(),
                parse.errors().first().map(|e| e.message().to_string()),
                depth,
                out,
            );
        }
        _ => out.push(Event::Opaque("EXECUTE of SQL built at run time, which the linter cannot read".to_string())),
    }
}

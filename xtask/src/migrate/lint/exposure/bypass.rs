//! Ways around row-level security that create no table: the API's roles made owners of
//! something, members of another role or `BYPASSRLS`/`SUPERUSER`; rules on an exposed
//! relation (their actions run with the table owner's rights); and session settings that
//! change how later statements are read (`search_path` decides where an unqualified name
//! lands, `standard_conforming_strings` where a string ends), in this file or the next; and
//! extensions put in an exposed schema, whose scripts create what the linter cannot see.

use squawk_syntax::{
    SyntaxKind as K, SyntaxNode,
    ast::{self, AstNode},
};

use super::{API_SCHEMAS, Event, exposed};
use crate::migrate::lint::idents::{call_name, ident, qualified};

/// The roles PostgREST runs requests as (`authenticator` switches to the others); whatever
/// they own, or the roles they are members of own, they read without row-level security.
pub(super) const API_ROLES: &[&str] = &["anon", "authenticated", "authenticator", "public"];

/// Settings that change how the SQL after them is read.
const READING: &[&str] = &["search_path", "standard_conforming_strings", "backslash_quote", "escape_string_warning"];

/// The effects of one node (not its descendants) that bypass row-level security.
pub(super) fn events(node: &SyntaxNode, out: &mut Vec<Event>) {
    let found = match node.kind() {
        K::OWNER_TO => owner(node),
        K::REASSIGN => reassign(node),
        K::GRANT if node.descendants_with_tokens().all(|c| c.kind() != K::ON_KW) => membership(node),
        K::ROLE_OPTION_GENERIC => role_option(node),
        K::CREATE_RULE => rule(node),
        K::SET | K::SET_CONFIG_PARAM
            if node.kind() == K::SET
                || node
                    .parent()
                    .is_some_and(|p| matches!(p.kind(), K::ALTER_ROLE | K::ALTER_DATABASE | K::ALTER_USER)) =>
        {
            set(node)
        }
        K::CREATE_EXTENSION | K::ALTER_EXTENSION => extension(node),
        K::CALL_EXPR if call_name(node) == "set_config" => set_config(node),
        _ => None,
    };
    out.extend(found);
}

/// `OWNER TO` an API role.
fn owner(node: &SyntaxNode) -> Option<Event> {
    let role = node.children().find(|c| c.kind() == K::ROLE_REF).map(|r| ident(&r))?;
    API_ROLES.contains(&role.as_str()).then(|| {
        Event::Bypass(format!("makes {role} an owner, and an owner reads its tables without row-level security"))
    })
}

/// `REASSIGN OWNED ... TO` an API role.
fn reassign(node: &SyntaxNode) -> Option<Event> {
    let to = node.children().filter(|c| c.kind() == K::ROLE_REF_LIST).last();
    let role = to.map(|l| roles(&l)).and_then(|r| r.into_iter().find(|r| api(r)))?;
    Some(Event::Bypass(format!("gives {role} ownership of other roles' objects")))
}

/// A role granted to an API role (a `GRANT` with no `ON`).
fn membership(node: &SyntaxNode) -> Option<Event> {
    let granted = node.children().find(|c| c.kind() == K::REVOKE_COMMAND_LIST).map(|l| roles(&l));
    let to = node.children().find(|c| c.kind() == K::ROLE_REF_LIST).map(|l| roles(&l)).unwrap_or_default();
    // PostgREST's own setup (`grant anon, authenticated, service_role to authenticator`)
    // passes: those roles own nothing.
    let granted = granted.filter(|g| !g.iter().all(|r| api(r) || r == "service_role"));
    let (granted, role) = (granted?, to.iter().find(|r| api(r))?);
    Some(Event::Bypass(format!(
        "makes {role} a member of {}, with that role's ownerships and rights",
        granted.join(", ")
    )))
}

/// `BYPASSRLS` or `SUPERUSER` given to a role.
fn role_option(node: &SyntaxNode) -> Option<Event> {
    let option = node.text().to_string().trim().to_ascii_lowercase();
    matches!(option.as_str(), "bypassrls" | "superuser")
        .then(|| Event::Bypass(format!("gives a role {}, which ignores row-level security", option.to_uppercase())))
}

/// A rule on an exposed relation.
fn rule(node: &SyntaxNode) -> Option<Event> {
    let on = node.descendants().find(|c| c.kind() == K::RELATION_NAME_REF).map(|r| qualified(&r));
    on.filter(|t| exposed(t)).map(|on| {
        Event::Bypass(format!(
            "a rule on {on} runs its actions with the table owner's rights, past the row-level security of what they read"
        ))
    })
}

/// `SET` (or `ALTER ROLE/DATABASE ... SET`) of a setting that changes how SQL is read.
fn set(node: &SyntaxNode) -> Option<Event> {
    let param = node.descendants().find(|c| c.kind() == K::CONFIG_PARAMETER_REF).map(|p| ident(&p));
    param.filter(|p| READING.contains(&p.as_str())).map(|param| setting(&param))
}

/// An extension created in, or moved to, a schema the API exposes.
fn extension(node: &SyntaxNode) -> Option<Event> {
    let named = node.descendants().find(|c| c.kind() == K::SCHEMA_REF).map(|s| ident(&s));
    let moved = node.children().any(|c| c.kind() == K::SET_SCHEMA);
    let schema = named.unwrap_or_else(|| "public".to_string());
    ((node.kind() == K::CREATE_EXTENSION || moved) && API_SCHEMAS.contains(&schema.as_str())).then(|| {
        Event::Opaque(format!(
            "puts an extension in {schema} (the search path's schema when none is named): tables and views its script creates there have no row-level security"
        ))
    })
}

/// `set_config(...)` of a setting that changes how SQL is read, or of one named at run time.
fn set_config(node: &SyntaxNode) -> Option<Event> {
    let list = node.children().find(|c| c.kind() == K::ARG_LIST);
    let first = list.and_then(|l| l.children().next());
    let value = first.map(|a| if a.kind() == K::ARG { a.first_child().unwrap_or(a) } else { a });
    let literal = value.and_then(ast::Literal::cast).and_then(|l| l.string_value());
    match literal {
        Some(param) if !READING.contains(&param.to_ascii_lowercase().as_str()) => None,
        Some(param) => Some(setting(&param)),
        None => Some(setting("a setting named at run time")),
    }
}

fn setting(param: &str) -> Event {
    Event::Opaque(format!(
        "sets {param}, which changes where unqualified names and strings in the statements after it (this file's and the next migrations') are read"
    ))
}

fn api(role: &str) -> bool {
    API_ROLES.contains(&role)
}

fn roles(list: &SyntaxNode) -> Vec<String> {
    list.descendants().filter(|c| c.kind() == K::ROLE_REF).map(|r| ident(&r)).collect()
}

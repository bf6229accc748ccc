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

use super::{
    exposure::{API_SCHEMAS, Event, call_name, exposed},
    rules::{ident, qualified},
};

/// The roles PostgREST runs requests as (`authenticator` switches to the others); whatever
/// they own, or the roles they are members of own, they read without row-level security.
pub(super) const API_ROLES: &[&str] = &["anon", "authenticated", "authenticator", "public"];

/// Settings that change how the SQL after them is read.
const READING: &[&str] = &["search_path", "standard_conforming_strings", "backslash_quote", "escape_string_warning"];

/// The effects of one node (not its descendants) that bypass row-level security.
pub(super) fn events(node: &SyntaxNode, out: &mut Vec<Event>) {
    match node.kind() {
        K::OWNER_TO => {
            if let Some(role) = node.children().find(|c| c.kind() == K::ROLE_REF).map(|r| ident(&r)) {
                if API_ROLES.contains(&role.as_str()) {
                    out.push(Event::Bypass(format!(
                        "makes {role} an owner, and an owner reads its tables without row-level security"
                    )));
                }
            }
        }
        K::REASSIGN => {
            let to = node.children().filter(|c| c.kind() == K::ROLE_REF_LIST).last();
            if let Some(role) = to.map(|l| roles(&l)).and_then(|r| r.into_iter().find(|r| api(r))) {
                out.push(Event::Bypass(format!("gives {role} ownership of other roles' objects")));
            }
        }
        K::GRANT if node.descendants_with_tokens().all(|c| c.kind() != K::ON_KW) => {
            let granted = node.children().find(|c| c.kind() == K::REVOKE_COMMAND_LIST).map(|l| roles(&l));
            let to = node.children().find(|c| c.kind() == K::ROLE_REF_LIST).map(|l| roles(&l)).unwrap_or_default();
            // PostgREST's own setup (`grant anon, authenticated, service_role to authenticator`)
            // passes: those roles own nothing.
            let granted = granted.filter(|g| !g.iter().all(|r| api(r) || r == "service_role"));
            if let (Some(granted), Some(role)) = (granted, to.iter().find(|r| api(r))) {
                out.push(Event::Bypass(format!(
                    "makes {role} a member of {}, with that role's ownerships and rights",
                    granted.join(", ")
                )));
            }
        }
        K::ROLE_OPTION_GENERIC => {
            let option = node.text().to_string().trim().to_ascii_lowercase();
            if matches!(option.as_str(), "bypassrls" | "superuser") {
                out.push(Event::Bypass(format!(
                    "gives a role {}, which ignores row-level security",
                    option.to_uppercase()
                )));
            }
        }
        K::CREATE_RULE => {
            let on = node.descendants().find(|c| c.kind() == K::RELATION_NAME_REF).map(|r| qualified(&r));
            if let Some(on) = on.filter(|t| exposed(t)) {
                out.push(Event::Bypass(format!(
                    "a rule on {on} runs its actions with the table owner's rights, past the row-level security of what they read"
                )));
            }
        }
        K::SET | K::SET_CONFIG_PARAM
            if node.kind() == K::SET
                || node
                    .parent()
                    .is_some_and(|p| matches!(p.kind(), K::ALTER_ROLE | K::ALTER_DATABASE | K::ALTER_USER)) =>
        {
            let param = node.descendants().find(|c| c.kind() == K::CONFIG_PARAMETER_REF).map(|p| ident(&p));
            if let Some(param) = param.filter(|p| READING.contains(&p.as_str())) {
                out.push(setting(&param));
            }
        }
        K::CREATE_EXTENSION | K::ALTER_EXTENSION => {
            let named = node.descendants().find(|c| c.kind() == K::SCHEMA_REF).map(|s| ident(&s));
            let moved = node.children().any(|c| c.kind() == K::SET_SCHEMA);
            let schema = named.unwrap_or_else(|| "public".to_string());
            if (node.kind() == K::CREATE_EXTENSION || moved) && API_SCHEMAS.contains(&schema.as_str()) {
                out.push(Event::Opaque(format!(
                    "puts an extension in {schema} (the search path's schema when none is named): tables and views its script creates there have no row-level security"
                )));
            }
        }
        K::CALL_EXPR if call_name(node) == "set_config" => {
            let list = node.children().find(|c| c.kind() == K::ARG_LIST);
            let first = list.and_then(|l| l.children().next());
            let value = first.map(|a| if a.kind() == K::ARG { a.first_child().unwrap_or(a) } else { a });
            let literal = value.and_then(ast::Literal::cast).and_then(|l| l.string_value());
            match literal {
                Some(param) if !READING.contains(&param.to_ascii_lowercase().as_str()) => {}
                Some(param) => out.push(setting(&param)),
                None => out.push(setting("a setting named at run time")),
            }
        }
        _ => {}
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

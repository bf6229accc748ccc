//! Names as PostgreSQL reads them, from Squawk's syntax tree: identifiers folded and
//! decoded, qualified names, a call's function name. The floor of the linter's rules:
//! `rules.rs`, `exposure.rs` and `exposure/bypass.rs` read names through it.

use squawk_syntax::{SyntaxKind as K, SyntaxNode};

/// `Public."Notes"` gives `public.Notes`; a bare name is in `public` (the search path).
/// Read from the tokens, so comments inside a name (`public/**/.x`) change nothing.
pub(crate) fn qualified(node: &SyntaxNode) -> String {
    let tokens = tokens(node);
    let mut tokens: &[String] = &tokens;
    if tokens.first().is_some_and(|t| t.eq_ignore_ascii_case("only")) {
        tokens = &tokens[1..];
    }
    if tokens.last().is_some_and(|t| t == "*") {
        tokens = &tokens[..tokens.len() - 1];
    }
    // A custom Unicode escape character is not decoded: assume the API's schema.
    if tokens.iter().any(|t| t.eq_ignore_ascii_case("uescape")) {
        return format!("public.{}", tokens.concat());
    }
    let parts: Vec<String> = tokens.split(|t| t == ".").map(|p| fold_ident(&p.concat())).collect();
    if parts.len() == 1 { format!("public.{}", parts[0]) } else { parts.join(".") }
}

/// One identifier as PostgreSQL reads it: `"Quoted"` kept, `U&"\0070ublic"` decoded, bare
/// names lower-cased.
pub(super) fn fold_ident(text: &str) -> String {
    let text = text.trim();
    let unicode = text.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("u&"));
    let quoted = if unicode { &text[2..] } else { text };
    match quoted.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if unicode => decode_unicode(&inner.replace("\"\"", "\"")).unwrap_or_else(|| inner.to_string()),
        Some(inner) => inner.replace("\"\"", "\""),
        None => text.to_ascii_lowercase(),
    }
}

/// `\XXXX`, `\+XXXXXX` and `\\` escapes of a `U&"..."` identifier.
fn decode_unicode(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let width = match rest.chars().next()? {
            '\\' => {
                out.push('\\');
                rest = &rest[1..];
                continue;
            }
            '+' => {
                rest = &rest[1..];
                6
            }
            _ => 4,
        };
        let code = u32::from_str_radix(rest.get(..width)?, 16).ok()?;
        out.push(char::from_u32(code)?);
        rest = &rest[width..];
    }
    out.push_str(rest);
    Some(out)
}

/// A node's tokens as written, comments and white space left out.
pub(super) fn tokens(node: &SyntaxNode) -> Vec<String> {
    node.descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia())
        .map(|t| t.text().to_string())
        .collect()
}

/// A one-identifier node (a schema or role name) as PostgreSQL reads it, comments aside.
pub(super) fn ident(node: &SyntaxNode) -> String {
    fold_ident(&tokens(node).concat())
}

/// A call's function name, unqualified, unquoted and lower-cased.
pub(super) fn call_name(call: &SyntaxNode) -> String {
    let Some(callee) = call.children().next() else { return String::new() };
    let token = callee
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia() && t.kind() != K::DOT)
        .last();
    token.map(|t| fold_ident(t.text()).to_ascii_lowercase()).unwrap_or_default()
}

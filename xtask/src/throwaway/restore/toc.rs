//! The archive's table of contents read field by field (`pg_restore --list`), and the
//! checks that let a privilege statement of the archive run: names and keywords only.

/// One entry of `pg_restore --list`: `ID; TABLEOID OID TYPE NAMESPACE TAG OWNER`.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub line: &'a str,
    /// The entry's type, one of pg_dump's (`TABLE`, `DEFAULT ACL`, `EVENT TRIGGER`, ...);
    /// `None` for a type this version does not know.
    pub kind: Option<&'static str>,
    /// The fields after the type: namespace (`-` for none), tag, owner.
    pub fields: Vec<&'a str>,
}

/// pg_dump's entry types, longest first where one is a prefix of another.
const KINDS: &[&str] = &[
    "ACCESS METHOD",
    "ACL",
    "AGGREGATE",
    "BLOB DATA",
    "BLOBS",
    "BLOB",
    "CAST",
    "CHECK CONSTRAINT",
    "COLLATION",
    "COMMENT",
    "CONSTRAINT",
    "CONVERSION",
    "DATABASE PROPERTIES",
    "DATABASE",
    "DEFAULT ACL",
    "DEFAULT",
    "DOMAIN",
    "ENCODING",
    "EVENT TRIGGER",
    "EXTENSION",
    "FK CONSTRAINT",
    "FOREIGN DATA WRAPPER",
    "FOREIGN SERVER",
    "FOREIGN TABLE",
    "FUNCTION",
    "INDEX ATTACH",
    "INDEX",
    "LARGE OBJECT",
    "MATERIALIZED VIEW DATA",
    "MATERIALIZED VIEW",
    "OPERATOR CLASS",
    "OPERATOR FAMILY",
    "OPERATOR",
    "POLICY",
    "PROCEDURAL LANGUAGE",
    "PROCEDURE",
    "PUBLICATION TABLES IN SCHEMA",
    "PUBLICATION TABLE",
    "PUBLICATION",
    "ROW SECURITY",
    "RULE",
    "SCHEMA",
    "SEARCHPATH",
    "SECURITY LABEL",
    "SEQUENCE OWNED BY",
    "SEQUENCE SET",
    "SEQUENCE",
    "SERVER",
    "SHELL TYPE",
    "STATISTICS DATA",
    "STATISTICS",
    "STDSTRINGS",
    "SUBSCRIPTION TABLE",
    "SUBSCRIPTION",
    "TABLE ATTACH",
    "TABLE DATA",
    "TABLE",
    "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY",
    "TEXT SEARCH PARSER",
    "TEXT SEARCH TEMPLATE",
    "TRANSFORM",
    "TRIGGER",
    "TYPE",
    "USER MAPPING",
    "VIEW",
];

/// The entries of a `pg_restore --list` output; comment lines are not entries.
pub fn entries(list: &str) -> Vec<Entry<'_>> {
    list.lines().filter_map(entry).collect()
}

fn entry(line: &str) -> Option<Entry<'_>> {
    let (id, rest) = line.split_once(';')?;
    id.trim().parse::<u64>().ok()?;
    let mut rest = rest.trim_start();
    // Two object ids, then the type.
    for _ in 0..2 {
        let (number, after) = rest.split_once(' ')?;
        number.parse::<u64>().ok()?;
        rest = after;
    }
    let kind = KINDS.iter().copied().find(|k| rest == *k || rest.strip_prefix(k).is_some_and(|r| r.starts_with(' ')));
    let after = kind.map_or(rest, |k| &rest[k.len()..]);
    Some(Entry { line, kind, fields: after.split_whitespace().collect() })
}

/// An identifier as `--list` shows it in a tag, without SQL's double quotes.
pub(super) fn unquote(name: &str) -> &str {
    name.strip_prefix('"').and_then(|n| n.strip_suffix('"')).unwrap_or(name)
}

/// The words of `statement` (one statement, ending in `;`) if it is made only of keywords,
/// unquoted and quoted identifiers, numbers and the characters of `punctuation`: no
/// literal, operator, backslash or second statement.
fn names_only(statement: &str, punctuation: &str) -> Option<Vec<String>> {
    let body = statement.strip_suffix(';')?;
    let mut words: Vec<String> = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {}
            c if punctuation.contains(c) => {}
            '"' => {
                let mut closed = false;
                while let Some(q) = chars.next() {
                    // Nothing psql or the server could read as more than a name.
                    if q.is_control() || q == '\\' {
                        return None;
                    }
                    if q == '"' && chars.peek() != Some(&'"') {
                        closed = true;
                        break;
                    }
                    if q == '"' {
                        chars.next();
                    }
                }
                if !closed {
                    return None;
                }
                words.push("\"".to_string());
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut word = c.to_ascii_uppercase().to_string();
                while let Some(&n) = chars.peek().filter(|n| n.is_ascii_alphanumeric() || **n == '_') {
                    word.push(n.to_ascii_uppercase());
                    chars.next();
                }
                words.push(word);
            }
            _ => return None,
        }
    }
    Some(words)
}

/// Whether `statement` is one `ALTER DEFAULT PRIVILEGES FOR ROLE ...;` of names, keywords
/// and commas: nothing in it can call a function.
pub fn is_default_privileges(statement: &str) -> bool {
    names_only(statement, ",")
        .is_some_and(|w| w.starts_with(&["ALTER", "DEFAULT", "PRIVILEGES", "FOR", "ROLE"].map(String::from)))
}

/// Whether `statement` is one `GRANT` or `REVOKE` of names, keywords, commas, dots and the
/// brackets of function signatures and column lists.
pub fn is_grant(statement: &str) -> bool {
    names_only(statement, ",.()[]").is_some_and(|w| w.first().is_some_and(|f| f == "GRANT" || f == "REVOKE"))
}

#[cfg(test)]
mod tests {
    use super::{
        super::{MISSING_ROLES, tolerable},
        *,
    };

    #[test]
    fn entries_are_parsed_by_their_fields_not_by_substrings() {
        let list = "; Archive created\n;\n215; 1259 16410 TABLE public x DEFAULT ACL y postgres\n\
                    3375; 826 16521 DEFAULT ACL public DEFAULT PRIVILEGES FOR TABLES postgres\n\
                    3377; 3466 16600 EVENT TRIGGER - issue_pg_graphql_access supabase_admin\n\
                    2; 3079 16384 EXTENSION - pg_graphql \n3567; 0 0 COMMENT - EXTENSION pg_graphql \n\
                    3556; 0 16410 TABLE DATA public x DEFAULT ACL y postgres\n";
        let kinds: Vec<_> = entries(list).iter().map(|e| e.kind.unwrap_or("?")).collect();
        assert_eq!(kinds, ["TABLE", "DEFAULT ACL", "EVENT TRIGGER", "EXTENSION", "COMMENT", "TABLE DATA"]);
        assert_eq!(entries(list)[3].fields, ["-", "pg_graphql"]);
    }

    #[test]
    fn only_plain_default_privileges_pass() {
        assert!(is_default_privileges(
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES TO anon,\"Odd \"\" role\";"
        ));
        for bad in [
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT ALL ON TABLES TO anon; COPY x TO PROGRAM 'id';",
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT ALL ON TABLES TO anon",
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"x;\" GRANT SELECT ON TABLES TO f(1);",
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"unclosed; select 1;",
            "COPY x TO PROGRAM 'id'; ALTER DEFAULT PRIVILEGES FOR ROLE a GRANT ALL ON TABLES TO b;",
        ] {
            assert!(!is_default_privileges(bad), "{bad}");
        }
        assert_eq!(
            tolerable("pg_restore: error: could not execute query: ERROR:  role \"x\" does not exist"),
            Some(MISSING_ROLES)
        );
        assert!(is_grant("GRANT ALL ON FUNCTION public.f(i integer, t character varying(20)[]) TO anon;"));
        assert!(!is_grant("GRANT ALL ON TABLE public.t TO anon; \\! id"));
        assert!(!is_grant("GRANT SELECT ON TABLE public.t TO anon; SELECT 1;"));
        assert_eq!(tolerable("pg_restore: error: COPY failed for table \"users\": ERROR:  invalid input"), None);
    }
}

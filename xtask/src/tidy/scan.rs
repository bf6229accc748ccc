//! A reader of Rust source just deep enough for tidy's rules: the code with comments and the
//! insides of string and character literals blanked (lines kept, so line numbers stay), the
//! lines that only tests compile (`#[cfg(test)]` items), and the functions with their
//! length and parameter count. Not a parser: it is right for this repository's code, and
//! its unit tests pin the cases that matter.

/// `text` with every comment and the inside of every string and character literal replaced
/// by spaces; quotes, newlines and everything else kept in place.
pub(super) fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let end = literal_or_comment_end(&chars, i);
        if end == i {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // Keep the delimiters' first character so `"` still reads as a string in the output.
        let keep_first = chars[i] != '/';
        for (k, &c) in chars[i..end].iter().enumerate() {
            out.push(if c == '\n' || (keep_first && (k == 0 || k + 1 == end - i)) { c } else { ' ' });
        }
        i = end;
    }
    out
}

/// The string literals that are the first argument of a `format!`, each with the 0-based
/// line it starts on and its text between the quotes.
pub(super) fn format_strings(text: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let (mut found, mut i, mut line, mut before) = (Vec::new(), 0, 0, String::new());
    while i < chars.len() {
        let end = literal_or_comment_end(&chars, i);
        if end == i {
            line += usize::from(chars[i] == '\n');
            before.push(chars[i]);
            i += 1;
            continue;
        }
        let literal: String = chars[i..end].iter().collect();
        if chars[i] == '"' && before.trim_end().ends_with("format!(") {
            found.push((line, literal[1..literal.len() - 1].to_string()));
        }
        line += literal.matches('\n').count();
        before.clear();
        i = end;
    }
    found
}

/// Where the comment or literal starting at `i` ends (one past it), or `i` for none.
fn literal_or_comment_end(chars: &[char], i: usize) -> usize {
    let at = |k: usize| chars.get(k).copied().unwrap_or('\0');
    let word_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    match (at(i), at(i + 1)) {
        ('/', '/') => (i..chars.len()).find(|&k| chars[k] == '\n').unwrap_or(chars.len()),
        ('/', '*') => block_comment_end(chars, i),
        ('"', _) => quoted_end(chars, i + 1, '"'),
        ('b', '"') if !word_before => quoted_end(chars, i + 2, '"'),
        ('r', '"' | '#') if !word_before => raw_end(chars, i + 1).unwrap_or(i),
        ('b', 'r') if !word_before && matches!(at(i + 2), '"' | '#') => raw_end(chars, i + 2).unwrap_or(i),
        ('\'', '\\') => quoted_end(chars, i + 1, '\''),
        ('\'', c) if c != '\'' && at(i + 2) == '\'' => i + 3,
        ('b', '\'') if !word_before => literal_or_comment_end(chars, i + 1).max(i + 1),
        _ => i,
    }
}

fn block_comment_end(chars: &[char], start: usize) -> usize {
    let (mut depth, mut k) = (0, start);
    while k + 1 < chars.len() {
        match (chars[k], chars[k + 1]) {
            ('/', '*') => (depth, k) = (depth + 1, k + 2),
            ('*', '/') => {
                (depth, k) = (depth - 1, k + 2);
                if depth == 0 {
                    return k;
                }
            }
            _ => k += 1,
        }
    }
    chars.len()
}

/// One past the closing `quote`, from just inside the opening one; `\` escapes.
fn quoted_end(chars: &[char], mut k: usize, quote: char) -> usize {
    while k < chars.len() {
        match chars[k] {
            '\\' => k += 2,
            c if c == quote => return k + 1,
            _ => k += 1,
        }
    }
    chars.len()
}

/// A raw string whose `#`s start at `k`: one past its end, or `None` when it is no raw string.
fn raw_end(chars: &[char], k: usize) -> Option<usize> {
    let hashes = chars[k..].iter().take_while(|&&c| c == '#').count();
    if chars.get(k + hashes) != Some(&'"') {
        return None;
    }
    let mut j = k + hashes + 1;
    while j < chars.len() {
        if chars[j] == '"' && chars[j + 1..].iter().take(hashes).filter(|&&c| c == '#').count() == hashes {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(chars.len())
}

/// For each line of `code` (from [`code_only`]), whether only tests compile it: the lines of
/// an item under `#[cfg(test)]` or `#[test]`.
pub(super) fn test_lines(code: &str) -> Vec<bool> {
    let mut tested = vec![false; code.lines().count() + 1];
    for attribute in ["#[cfg(test)]", "#[test]"] {
        for (at, _) in code.match_indices(attribute) {
            let end = item_end(code, at + attribute.len());
            let (first, last, lines) = (line_of(code, at), line_of(code, end), tested.len());
            tested[first..=last.min(lines - 1)].iter_mut().for_each(|t| *t = true);
        }
    }
    tested
}

/// Modules declared `#[cfg(test)] mod name;` in `code`: files only tests compile.
pub(super) fn test_module_files(code: &str) -> Vec<String> {
    code.match_indices("#[cfg(test)]")
        .filter_map(|(at, _)| {
            let rest = code[at + "#[cfg(test)]".len()..].trim_start();
            let rest = rest.strip_prefix("pub ").unwrap_or(rest).trim_start();
            let name = rest.strip_prefix("mod ")?.split(';').next()?.trim();
            name.chars().all(|c| c.is_alphanumeric() || c == '_').then(|| name.to_string())
        })
        .collect()
}

/// The byte offset of the end of the item starting at `from`: its `;` or its closing brace.
fn item_end(code: &str, from: usize) -> usize {
    let bytes = code.as_bytes();
    let mut depth = 0usize;
    for (k, &b) in bytes.iter().enumerate().skip(from) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return k;
                }
            }
            b';' if depth == 0 => return k,
            _ => {}
        }
    }
    bytes.len().saturating_sub(1)
}

/// The 0-based line of byte offset `at`.
pub(super) fn line_of(code: &str, at: usize) -> usize {
    code.as_bytes()[..at.min(code.len())].iter().filter(|&&b| b == b'\n').count()
}

/// A function of a file: where it starts, how long it is, how many parameters it takes.
#[derive(Debug, PartialEq)]
pub(super) struct Function {
    pub name: String,
    /// 1-based line of its `fn`.
    pub line: usize,
    /// Lines from its `fn` to its closing brace.
    pub lines: usize,
    /// Parameters, `self` included.
    pub params: usize,
}

/// Every function with a body in `code` (from [`code_only`]) that `tested` (from
/// [`test_lines`]) does not mark as test code.
pub(super) fn functions(code: &str, tested: &[bool]) -> Vec<Function> {
    let bytes = code.as_bytes();
    let word = |k: usize| bytes.get(k).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    code.match_indices("fn ")
        .filter(|&(at, _)| at == 0 || !word(at - 1))
        .filter(|&(at, _)| !tested.get(line_of(code, at)).copied().unwrap_or(false))
        .filter_map(|(at, _)| function_at(code, at))
        .collect()
}

/// The function whose `fn` is at `at`, if it has a name and a body.
fn function_at(code: &str, at: usize) -> Option<Function> {
    let rest = &code[at + 3..];
    let name: String = rest.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if name.is_empty() {
        return None; // a function pointer type: `fn(u8) -> u8`
    }
    let after_name = at + 3 + rest.find(name.as_str())? + name.len();
    let open = after_name + code[after_name..].find('(')?;
    let open = match code[after_name..].trim_start().starts_with('<') {
        // Generic parameters may hold parentheses (`F: Fn(u8)`): the list starts after them.
        true => {
            let generics_end = after_name + angle_end(&code[after_name..])?;
            generics_end + code[generics_end..].find('(')?
        }
        false => open,
    };
    let close = matching(code, open)?;
    let params = split_top_level(&code[open + 1..close]).into_iter().filter(|p| !p.trim().is_empty()).count();
    let body = close + code[close..].find(['{', ';'])?;
    if code.as_bytes()[body] == b';' {
        return None; // a declaration in a trait or an `extern` block
    }
    let end = matching(code, body)?;
    let line = line_of(code, at);
    Some(Function { name, line: line + 1, lines: line_of(code, end) - line + 1, params })
}

/// The offset just past the `>` closing the first `<` of `text` (an arrow's `>` aside).
fn angle_end(text: &str) -> Option<usize> {
    let (mut depth, mut previous) = (0i32, ' ');
    for (k, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' if previous != '-' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k + 1);
                }
            }
            _ => {}
        }
        previous = c;
    }
    None
}

/// The offset of the bracket closing the one at `open`.
fn matching(code: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (k, b) in code.bytes().enumerate().skip(open) {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// `list` cut at its commas outside brackets and generic arguments.
fn split_top_level(list: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start, mut previous) = (Vec::new(), 0i32, 0, ' ');
    for (k, c) in list.char_indices() {
        match c {
            '(' | '[' | '{' | '<' => depth += 1,
            '>' if previous == '-' => {}
            ')' | ']' | '}' | '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&list[start..k]);
                start = k + 1;
            }
            _ => {}
        }
        previous = c;
    }
    parts.push(&list[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_literals_are_blanked_in_place() {
        let text = "let a = \"x { // y\"; // z {\nlet b = '{'; /* {\n */ let c: &'static str = r#\"}\"#;";
        let code = code_only(text);
        assert_eq!(code.lines().count(), 3);
        assert!(!code.contains('{') && !code.contains('}') && !code.contains("//"), "{code}");
        assert!(code.contains("&'static str"), "{code}");
    }

    #[test]
    fn functions_are_measured_from_fn_to_closing_brace() {
        let text = "fn a(x: u8, f: impl Fn(u8, u8) -> u8, m: HashMap<u8, u8>) {\n    \"}\";\n}\n\
                    trait T { fn d(&self); }\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n\
                    fn b<F: Fn() -> u8>(&self, g: fn(u8) -> u8) -> u8 { 1 }\n";
        let code = code_only(text);
        let found = functions(&code, &test_lines(&code));
        assert_eq!(
            found,
            vec![
                Function { name: "a".into(), line: 1, lines: 3, params: 3 },
                Function { name: "b".into(), line: 9, lines: 1, params: 2 }
            ]
        );
    }

    #[test]
    fn cfg_test_module_files_are_found() {
        assert_eq!(test_module_files("mod a;\n#[cfg(test)]\nmod tidy;\n#[cfg(test)]\nmod t {}"), vec!["tidy"]);
    }
}

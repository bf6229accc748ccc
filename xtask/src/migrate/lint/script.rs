//! A migration file cut into statements with Squawk's PostgreSQL parser, each with its line
//! and the acknowledgement comments that belong to it. `migrate lint` checks the statements;
//! `migrate rehearse` runs them one by one and reads the same acknowledgements.

use squawk_syntax::{
    SourceFile, SyntaxKind,
    ast::{self, AstNode},
};

/// The comment that acknowledges one rule for one statement: `-- migrate:ack RULE: why`.
pub(crate) const ACK: &str = "migrate:ack";

/// A parsed migration file.
pub(crate) struct Script {
    pub statements: Vec<Statement>,
    /// Syntax errors: line and message.
    pub errors: Vec<(usize, String)>,
}

/// One statement: its syntax tree, where it is, and its acknowledgements.
pub(crate) struct Statement {
    pub node: ast::Stmt,
    /// Byte offsets of the statement's first and last token (comments before it excluded).
    pub start: usize,
    pub end: usize,
    /// 1-based line of the first token.
    pub line: usize,
    pub acks: Vec<Ack>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ack {
    pub rule: String,
    /// Why the finding is acceptable; empty when the comment gives no reason (an error).
    pub reason: String,
    pub line: usize,
}

impl Statement {
    pub(crate) fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.start..self.end]
    }

    /// The statement's first line, for reports.
    pub(crate) fn summary(&self, sql: &str) -> String {
        let first = self.text(sql).lines().next().unwrap_or_default().trim();
        if first.chars().count() > 40 {
            format!("{}...", first.chars().take(37).collect::<String>())
        } else {
            first.to_string()
        }
    }

    /// The `nth` acknowledgement of `rule` that gives a reason (0: the first).
    pub(crate) fn acknowledges(&self, rule: &str, nth: usize) -> Option<&Ack> {
        self.acks.iter().filter(|a| a.rule == rule && !a.reason.is_empty()).nth(nth)
    }
}

/// Parses a file. An acknowledgement is a `--` comment (never text inside a string or a
/// body) and belongs to exactly one statement: the one it lies in, the one whose last line
/// it ends, or the next one when only comment lines stand between them. Two statements on
/// the line below a comment: only the first is acknowledged.
pub(crate) fn parse(sql: &str) -> Script {
    let parse = SourceFile::parse(sql);
    let lines = LineIndex::new(sql);
    let text_lines: Vec<&str> = sql.lines().collect();
    let mut statements = Vec::new();
    for node in parse.tree().stmts() {
        let syntax = node.syntax();
        let tokens =
            || syntax.descendants_with_tokens().filter_map(|e| e.into_token()).filter(|t| !t.kind().is_trivia());
        let (Some(first), Some(last)) = (tokens().next(), tokens().last()) else { continue };
        let (start, end) = (usize::from(first.text_range().start()), usize::from(last.text_range().end()));
        statements.push(Statement { node, start, end, line: lines.line(start), acks: Vec::new() });
    }
    let comments = parse
        .syntax_node()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| t.kind() == SyntaxKind::COMMENT && t.text().starts_with("--"));
    for comment in comments {
        let offset = usize::from(comment.text_range().start());
        let line = lines.line(offset);
        let Some(ack) = parse_ack(comment.text(), line) else { continue };
        if let Some(k) = owner(&statements, &lines, &text_lines, offset) {
            statements[k].acks.push(ack);
        }
    }
    let errors =
        parse.errors().iter().map(|e| (lines.line(usize::from(e.range().start())), e.message().to_string())).collect();
    Script { statements, errors }
}

/// The statement a comment at `offset` belongs to, if any.
fn owner(statements: &[Statement], lines: &LineIndex, text: &[&str], offset: usize) -> Option<usize> {
    if let Some(k) = statements.iter().position(|s| s.start <= offset && offset < s.end) {
        return Some(k);
    }
    let line = lines.line(offset);
    if let Some(k) = statements.iter().rposition(|s| s.end <= offset) {
        if lines.line(statements[k].end.saturating_sub(1)) == line {
            return Some(k);
        }
    }
    let next = statements.iter().position(|s| s.start > offset)?;
    let between = (line + 1)..statements[next].line;
    let alone = text.get(line - 1).is_some_and(|l| l.trim_start().starts_with("--"));
    (alone && between.into_iter().all(|n| text.get(n - 1).is_some_and(|l| l.trim_start().starts_with("--"))))
        .then_some(next)
}

/// `-- migrate:ack destructive: the column was never read` gives the ack.
fn parse_ack(comment: &str, number: usize) -> Option<Ack> {
    let comment = comment.strip_prefix("--")?;
    let rest = comment.trim_start().strip_prefix(ACK)?;
    let (rule, reason) = rest.split_once(':').unwrap_or((rest, ""));
    Some(Ack { rule: rule.trim().to_string(), reason: reason.trim().to_string(), line: number })
}

/// Byte offset to 1-based line number.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { starts }
    }

    pub(crate) fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_lines_and_acks() {
        let sql = "-- header\n\ncreate table t (a int);\n-- migrate:ack destructive: never read\n-- more words\nalter table t\n  drop column a; -- migrate:ack other: inside\n\n-- migrate:ack unrelated: a blank line separates it\n\nselect 1;\n";
        let script = parse(sql);
        assert!(script.errors.is_empty());
        let lines: Vec<usize> = script.statements.iter().map(|s| s.line).collect();
        assert_eq!(lines, [3, 6, 11]);
        assert!(script.statements[0].acks.is_empty());
        let rules: Vec<&str> = script.statements[1].acks.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(rules, ["destructive", "other"]);
        assert_eq!(script.statements[1].acks[0].reason, "never read");
        assert!(script.statements[2].acks.is_empty());
        assert_eq!(script.statements[1].text(sql), "alter table t\n  drop column a;");
    }

    #[test]
    fn an_ack_without_reason_acknowledges_nothing() {
        let script = parse("-- migrate:ack destructive\ndrop table t;\n");
        assert_eq!(script.statements[0].acks[0].reason, "");
        assert!(script.statements[0].acknowledges("destructive", 0).is_none());
    }

    #[test]
    fn an_ack_covers_one_statement_only() {
        let script = parse(
            "-- migrate:ack destructive: one\ndrop table a; drop table b;\ndrop table c; -- migrate:ack destructive: c\ndrop table d;\nselect '-- migrate:ack destructive: in a string';\ndrop table e;\n",
        );
        let acked: Vec<usize> = script.statements.iter().map(|s| s.acks.len()).collect();
        assert_eq!(acked, [1, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn syntax_errors_have_lines() {
        let script = parse("select 1;\ncreate tabel x ();\n");
        assert_eq!(script.errors.first().map(|e| e.0), Some(2));
    }
}

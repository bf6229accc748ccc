//! The exposure findings of one file: its tables followed statement by statement under
//! their current names (created, moved, renamed, row-level security enabled or disabled,
//! policies), then those that end the file in an API schema without row-level security;
//! views, bypasses and unreadable statements are reported where they are.

use super::{
    exposure::{API_SCHEMAS, Event, events, exposed},
    rules::{BYPASS, Hit, OPAQUE, RLS, VIEW_RLS},
    script::Statement,
};
use squawk_syntax::ast::AstNode;

/// A table followed through the file under its current name.
struct Tracked {
    name: String,
    /// The statement that put it where the API reaches it, and how.
    stmt: usize,
    how: String,
    rls: bool,
    disabled: bool,
    policy: bool,
    /// Created under an unqualified name (see [`Tracker::reaches`]).
    bare: bool,
}

impl Tracked {
    fn new(name: String, stmt: usize, how: String) -> Tracked {
        Tracked { name, stmt, how, rls: false, disabled: false, policy: false, bare: false }
    }
}

/// The tables of one file, and whether a schema appeared in it.
#[derive(Default)]
struct Tracker {
    tracked: Vec<Tracked>,
    schema: bool,
}

impl Tracker {
    /// The table an ENABLE or a policy written under `name` protects. Unqualified, it is
    /// the first table of that name on the search path: the one created here only if that
    /// was unqualified too and no schema appeared since (`"$user"` comes before `public`).
    fn reaches(&mut self, name: &str, bare: bool) -> Option<&mut Tracked> {
        let schema = self.schema;
        let t = self.tracked.iter_mut().rev().find(|t| t.name == name)?;
        (!bare || (t.bare && !schema)).then_some(t)
    }

    fn apply(&mut self, k: usize, event: Event, hits: &mut Vec<Hit>) {
        match event {
            Event::Table { name, how, bare } => {
                self.tracked.push(Tracked { bare, ..Tracked::new(name, k, format!("created by {how}")) })
            }
            Event::Rename { from, to } => {
                let moved = !exposed(&from) && exposed(&to);
                let other_schema = from.split_once('.').map(|f| f.0) != to.split_once('.').map(|t| t.0);
                match self.tracked.iter_mut().rev().find(|t| t.name == from) {
                    Some(t) => {
                        if moved {
                            (t.stmt, t.how) = (k, format!("moved into place from {from}"));
                        }
                        t.bare &= !other_schema;
                        t.name = to;
                    }
                    None if moved => self.tracked.push(Tracked::new(to, k, format!("moved into place from {from}"))),
                    None => {}
                }
            }
            Event::Rls { name, enabled: false, .. } => match self.tracked.iter_mut().rev().find(|t| t.name == name) {
                Some(t) => (t.rls, t.disabled) = (false, true),
                None => self.tracked.push(Tracked { disabled: true, policy: true, ..Tracked::new(name, k, "an existing table".into()) }),
            },
            // An existing table: its policies are not in this file. Enabled, it is safe
            // wherever it moves (no policy means no rows).
            Event::Rls { name, bare, .. } => {
                let known = self.tracked.iter().any(|t| t.name == name);
                match self.reaches(&name, bare) {
                    Some(t) => (t.rls, t.disabled) = (true, false),
                    None if known => {}
                    None => self.tracked.push(Tracked {
                        rls: true,
                        policy: true,
                        ..Tracked::new(name, k, "an existing table".into())
                    }),
                }
            }
            Event::Policy { name, bare } => {
                if let Some(t) = self.reaches(&name, bare) {
                    t.policy = true;
                }
            }
            Event::Schema => self.schema = true,
            Event::View { name, reason } if exposed(&name) => hits.push((
                k,
                VIEW_RLS,
                reason,
                format!("create it `with (security_invoker = true)` so the caller's row-level security applies, or keep it out of {}", API_SCHEMAS.join(", ")),
            )),
            Event::View { .. } => {}
            Event::Bypass(what) => hits.push((
                k,
                BYPASS,
                format!("{what}: the API's requests would read past row-level security"),
                "leave ownership with the migration's role, keep the API roles (anon, authenticated, authenticator) out of other roles and without BYPASSRLS, and put no rules on exposed tables".to_string(),
            )),
            Event::Opaque(what) => hits.push((
                k,
                OPAQUE,
                format!("{what}: tables it may create in {} cannot be checked for row-level security", API_SCHEMAS.join(", ")),
                "write the DDL as plain statements in the migration, or acknowledge it after reading it: `-- migrate:ack unanalysable-ddl: why`".to_string(),
            )),
        }
    }
}

/// The file's findings on exposure: tables that end the file in an API schema without
/// row-level security enabled and a policy written in this file, views running with their
/// owner's rights there, and statements whose effects cannot be read.
pub(super) fn check(statements: &[Statement]) -> Vec<Hit> {
    let mut tracker = Tracker::default();
    let mut hits = Vec::new();
    for (k, s) in statements.iter().enumerate() {
        for event in events(s.node.syntax()) {
            tracker.apply(k, event, &mut hits);
        }
    }
    let tracked = tracker.tracked;
    for t in tracked.iter().filter(|t| exposed(&t.name)) {
        let missing = match (t.disabled, t.rls, t.policy) {
            (true, _, _) => "row-level security is disabled",
            (false, true, true) => continue,
            (false, false, false) => "does not enable row-level security and has no policy",
            (false, false, true) => "does not enable row-level security",
            (false, true, false) => "enables row-level security but has no policy (nobody but the owner can read it)",
        };
        let name = &t.name;
        hits.push((
            t.stmt,
            RLS,
            format!("table {name} ({}) is reachable through the API and {missing} in this migration", t.how),
            format!("add `alter table {name} enable row level security;` and at least one `create policy ... on {name}` to this file"),
        ));
    }
    hits.sort_by_key(|h| h.0);
    hits
}

//! A clinic's people: its users and their roles, with one documented login per role
//! (`ROLE@clinicN.seed.test`, for RLS testing and demos), front-desk staff, assistants, a
//! bookkeeper who only views, logins for some providers and a suspended former employee;
//! and each active user's dashboards. Drawn from the clinic's stream, after its offices and
//! providers (see `model.rs`). Each login has an `email` identity in `auth.identities`, as
//! GoTrue needs.

use fake::{
    Fake,
    faker::name::en::{FirstName, LastName},
};
use rand::RngExt;

use super::{
    model::{Clinic, DOCUMENTED_ROLES, Dashboard, Kind, User, Widget, email_part, metric},
    random::{Rng, Uuid},
};

/// A widget: metric key, widget type, title, config (JSON).
type WidgetSpec = (&'static str, &'static str, &'static str, &'static str);
/// A dashboard: name, description, widgets.
type Board = (&'static str, Option<&'static str>, &'static [WidgetSpec]);

impl User {
    /// The id of the login's `auth.identities` row: derived from its `auth.users` id rather
    /// than drawn, so that adding identities left every other seeded value as it was.
    pub(super) fn identity_id(&self) -> Uuid {
        let mut bytes = self.auth_id.0;
        for (i, b) in bytes.iter_mut().enumerate() {
            *b ^= 0x5a ^ (i as u8).wrapping_mul(37);
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Uuid(bytes)
    }
}

impl Clinic {
    /// The documented logins (one per role), front-desk staff and assistants per office,
    /// logins for some providers, a bookkeeper who only views, and a suspended former
    /// employee where there is more than one office.
    pub(super) fn add_users(&mut self, rng: &mut Rng) {
        for role in DOCUMENTED_ROLES {
            let (first, last) = if role == "provider" {
                (self.providers[0].first_name, self.providers[0].last_name)
            } else {
                (FirstName().fake_with_rng(rng), LastName().fake_with_rng(rng))
            };
            let user = self.add_user(rng, self.email(role), format!("{first} {last}"), role, true);
            if role == "provider" {
                self.providers[0].user = Some(user);
            }
        }
        for _ in 0..self.locations.len() * 2 {
            self.add_named_user(rng, "staff", true);
        }
        self.add_named_user(rng, "viewer", true);
        for provider in 1..self.providers.len() {
            let chance = if self.providers[provider].kind == Kind::Dentist { 0.6 } else { 0.3 };
            if self.providers[provider].status != "inactive" && rng.random_bool(chance) {
                let p = &self.providers[provider];
                let email =
                    self.email(&format!("{}.{}.p{provider}", email_part(p.first_name), email_part(p.last_name)));
                let name = format!("{} {}", p.first_name, p.last_name);
                let user = self.add_user(rng, email, name, "provider", true);
                self.providers[provider].user = Some(user);
            }
        }
        if self.locations.len() > 1 {
            self.add_named_user(rng, "staff", false);
        }
    }

    fn add_named_user(&mut self, rng: &mut Rng, role: &'static str, active: bool) {
        let first: &str = FirstName().fake_with_rng(rng);
        let last: &str = LastName().fake_with_rng(rng);
        let email = self.email(&format!("{}.{}.{}", email_part(first), email_part(last), self.users.len()));
        self.add_user(rng, email, format!("{first} {last}"), role, active);
    }

    fn add_user(&mut self, rng: &mut Rng, email: String, name: String, role: &'static str, active: bool) -> usize {
        let created_at = self.created_at + rng.random_range(0..90 * 86_400);
        let (id, auth_id, role_id) = (Uuid::draw(rng), Uuid::draw(rng), Uuid::draw(rng));
        self.users.push(User { id, auth_id, role_id, email, name, role, active, created_at });
        self.users.len() - 1
    }

    /// An "Overview" for every active user; owners and admins also get "Providers".
    pub(super) fn add_dashboards(&mut self, rng: &mut Rng) {
        const OVERVIEW: [WidgetSpec; 5] = [
            ("total_production", "kpi", "Production", "{\"range\": \"month_to_date\"}"),
            ("collections", "kpi", "Collections", "{\"range\": \"month_to_date\"}"),
            ("new_patients", "kpi", "New patients", "{\"range\": \"month_to_date\"}"),
            (
                "total_production",
                "line_chart",
                "Production, last 90 days",
                "{\"range\": \"last_90_days\", \"group_by\": \"week\"}",
            ),
            ("total_production", "goal_progress", "Monthly goal", "{\"period\": \"monthly\"}"),
        ];
        const PROVIDERS: [WidgetSpec; 3] = [
            ("dentist_production", "bar_chart", "Doctor production by provider", "{\"group_by\": \"provider\"}"),
            ("hygiene_production", "bar_chart", "Hygiene production by provider", "{\"group_by\": \"provider\"}"),
            (
                "production_per_hour",
                "table",
                "Production per hour",
                "{\"group_by\": \"provider\", \"range\": \"last_30_days\"}",
            ),
        ];
        for user in 0..self.users.len() {
            if !self.users[user].active {
                continue;
            }
            let manager = matches!(self.users[user].role, "owner" | "admin");
            let boards: &[Board] = if manager {
                &[("Overview", None, &OVERVIEW), ("Providers", Some("How each provider is doing"), &PROVIDERS)]
            } else {
                &[("Overview", None, &OVERVIEW)]
            };
            for (n, (name, description, widgets)) in boards.iter().enumerate() {
                let id = Uuid::draw(rng);
                let created_at = self.users[user].created_at + rng.random_range(3_600..30 * 86_400);
                let widgets = widgets
                    .iter()
                    .enumerate()
                    .map(|(i, (key, kind, title, config))| Widget {
                        id: Uuid::draw(rng),
                        metric: Some(metric(key)),
                        kind,
                        title,
                        position: ((i as i64 % 3) * 4, (i as i64 / 3) * 3, 4, 3),
                        config,
                    })
                    .collect();
                let dashboard =
                    Dashboard { id, user, name, description: *description, is_default: n == 0, created_at, widgets };
                self.dashboards.push(dashboard);
            }
        }
    }
}

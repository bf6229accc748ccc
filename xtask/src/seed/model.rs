//! One clinic's structure: its name and offices (US addresses and phone numbers from
//! `fake`), providers and their weekly schedules, data sources and metrics; its users and
//! dashboards are in `accounts.rs`. Everything comes from the clinic's own random stream,
//! in a fixed order, so the same seed and clinic number always give the same clinic, and a
//! table pass can regenerate it instead of keeping every clinic in memory.

use fake::{
    Fake,
    faker::{
        address::en::{CityName, StateAbbr, StreetName},
        name::en::{FirstName, LastName},
        number::en::NumberWithFormat,
    },
};
use rand::RngExt;

use super::{
    calendar::{Calendar, END},
    random::{self, Rng, Stream, Uuid, between},
};

/// The documented logins' password; `auth.users` stores [`PASSWORD_HASH`], its bcrypt hash.
pub(super) const PASSWORD: &str = "seed-password";
/// bcrypt (cost 10) of [`PASSWORD`], computed once: the seed must not depend on a salt.
pub(super) const PASSWORD_HASH: &str = "$2a$10$qm2tSGyIacVIpYesiLdCDuonkQxFUXuOTjVfFErnq4hM4VSGrWYhm";
/// Every seeded email ends with this, so `--replace` can find seeded `auth.users` rows.
pub(crate) const EMAIL_DOMAIN: &str = "seed.test";
/// The roles that get a documented login `ROLE@clinicN.seed.test`, in this order.
pub(super) const DOCUMENTED_ROLES: [&str; 5] = ["owner", "admin", "provider", "staff", "viewer"];

#[derive(Debug)]
pub(super) struct Clinic {
    /// 1-based; part of every email: `clinicN.seed.test`.
    pub number: u32,
    pub id: Uuid,
    pub name: String,
    pub timezone: &'static str,
    pub created_at: i64,
    pub locations: Vec<Location>,
    pub providers: Vec<Provider>,
    pub users: Vec<User>,
    pub sources: Vec<Source>,
    pub metrics: Vec<Metric>,
    pub dashboards: Vec<Dashboard>,
}

#[derive(Debug)]
pub(super) struct Location {
    pub id: Uuid,
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: &'static str,
    pub postal_code: String,
    pub phone: String,
    pub saturdays: bool,
    pub created_at: i64,
    /// The Google sheet its daily numbers come from (index into `sources`).
    pub source: usize,
    /// Providers who work here, per weekday (0 = Sunday).
    pub roster: [Vec<usize>; 7],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dentist,
    Hygienist,
}

#[derive(Debug)]
pub(super) struct Provider {
    pub id: Uuid,
    pub kind: Kind,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub email: Option<String>,
    pub user: Option<usize>,
    pub status: &'static str,
    /// Index of the first and (for those who left) last day worked; on leave from a day on.
    pub hired: usize,
    pub left: Option<usize>,
    pub leave_from: Option<usize>,
    /// Production per hour worked, in dollars, before busyness and noise.
    pub rate: f64,
    /// (location, primary, provider_locations.id)
    pub locations: Vec<(usize, bool, Uuid)>,
    pub created_at: i64,
}

#[derive(Debug)]
pub(super) struct User {
    pub id: Uuid,
    pub auth_id: Uuid,
    pub role_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: &'static str,
    pub active: bool,
    pub created_at: i64,
}

#[derive(Debug)]
pub(super) struct Source {
    pub id: Uuid,
    pub location: Option<usize>,
    pub name: String,
    pub kind: &'static str,
    pub spreadsheet_id: Option<String>,
    pub sheet_name: Option<&'static str>,
    /// Obviously fake: `seed-fake-access-token-...`.
    pub tokens: Option<(String, String)>,
    pub status: &'static str,
    pub last_error: Option<&'static str>,
    pub active: bool,
    pub created_at: i64,
}

#[derive(Debug)]
pub(super) struct Metric {
    pub id: Uuid,
    pub def: &'static MetricDef,
    pub source: Option<usize>,
}

#[derive(Debug)]
pub(super) struct MetricDef {
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub unit: &'static str,
    pub aggregation: &'static str,
    pub imported: bool,
}

#[derive(Debug)]
pub(super) struct Dashboard {
    pub id: Uuid,
    pub user: usize,
    pub name: &'static str,
    pub description: Option<&'static str>,
    pub is_default: bool,
    pub created_at: i64,
    pub widgets: Vec<Widget>,
}

#[derive(Debug)]
pub(super) struct Widget {
    pub id: Uuid,
    pub metric: Option<usize>,
    pub kind: &'static str,
    pub title: &'static str,
    pub position: (i64, i64, i64, i64),
    pub config: &'static str,
}

/// What each clinic measures (dashboards show them, goals target them).
pub(super) const METRICS: [MetricDef; 10] = [
    m("total_production", "Total production", "Dentist and hygiene production", "currency", "sum", true),
    m("dentist_production", "Doctor production", "Production by dentists", "currency", "sum", true),
    m("hygiene_production", "Hygiene production", "Production by hygienists", "currency", "sum", true),
    m("net_production", "Net production", "Production less adjustments and write-offs", "currency", "sum", true),
    m("collections", "Collections", "Patient and insurance income", "currency", "sum", true),
    m("collection_rate", "Collection rate", "Collections as a share of net production", "percent", "avg", false),
    m("patients_seen", "Patients seen", "Patients seen by any provider", "count", "sum", true),
    m("new_patients", "New patients", "First visits", "count", "sum", true),
    m("hygiene_hours", "Hygiene hours", "Hours worked by hygienists", "hours", "sum", true),
    m("production_per_hour", "Production per hour", "Production per provider hour", "ratio", "avg", false),
];

const fn m(
    key: &'static str,
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    aggregation: &'static str,
    imported: bool,
) -> MetricDef {
    MetricDef { key, name, description, unit, aggregation, imported }
}

/// Index of a metric in [`METRICS`] (and in every clinic's `metrics`).
pub(super) fn metric(key: &str) -> usize {
    METRICS.iter().position(|m| m.key == key).expect("a known metric key")
}

impl Clinic {
    /// Clinic number `number` (1-based) of the seed, for the calendar's range.
    pub(super) fn generate(seed: u64, number: u32, calendar: &Calendar) -> Clinic {
        let rng = &mut random::rng(seed, Stream::Clinic, &[u64::from(number)]);
        let first = calendar.first();
        let created_at = first.add(-rng.random_range(60..900)).midnight() + rng.random_range(46_800..79_200);
        let state: &'static str = StateAbbr().fake_with_rng(rng);
        let home: String = CityName().fake_with_rng(rng);
        let mut clinic = Clinic {
            number,
            id: Uuid::draw(rng),
            name: clinic_name(rng, &home),
            timezone: timezone(state),
            created_at,
            locations: Vec::new(),
            providers: Vec::new(),
            users: Vec::new(),
            sources: Vec::new(),
            metrics: Vec::new(),
            dashboards: Vec::new(),
        };
        let count = pick(rng, &[(1, 45), (2, 35), (3, 20)]);
        for index in 0..count {
            let city = if index == 0 { home.clone() } else { CityName().fake_with_rng(rng) };
            clinic.add_location(rng, city, state);
        }
        clinic.add_providers(rng, calendar.days.len());
        clinic.add_users(rng);
        clinic.metrics = (0..METRICS.len())
            .map(|i| Metric { id: Uuid::draw(rng), def: &METRICS[i], source: METRICS[i].imported.then_some(0) })
            .collect();
        clinic.add_dashboards(rng);
        clinic
    }

    pub(super) fn email(&self, local: &str) -> String {
        format!("{local}@clinic{}.{EMAIL_DOMAIN}", self.number)
    }

    fn add_location(&mut self, rng: &mut Rng, city: String, state: &'static str) {
        let index = self.locations.len();
        let mut name = format!("{city} Office");
        if self.locations.iter().any(|l| l.name == name) {
            name = format!("{city} Office {}", index + 1);
        }
        let street: String = StreetName().fake_with_rng(rng);
        let line1 = format!("{} {street}", rng.random_range(10..9800));
        let line2 = rng.random_bool(0.35).then(|| format!("Suite {}", rng.random_range(100..450)));
        // Real ZIP codes start at 00501; 00000-00499 are what stage-sync's pseudonyms use.
        let postal_code: String = NumberWithFormat("^####").fake_with_rng(rng);
        // 555-01xx numbers are reserved for fiction: never someone's real phone.
        let phone = format!("({}) 555-01{:02}", rng.random_range(201..990), rng.random_range(0..100));
        let created_at = self.created_at + rng.random_range(0..40) * 86_400;
        let source = self.sources.len();
        self.sources.push(Source {
            id: Uuid::draw(rng),
            location: Some(index),
            name: format!("{name} daily sheet"),
            kind: "google_sheets",
            spreadsheet_id: Some(format!("seed-sheet-{}", hex(rng, 12))),
            sheet_name: Some("Daily"),
            tokens: Some((
                format!("seed-fake-access-token-{}", hex(rng, 16)),
                format!("seed-fake-refresh-token-{}", hex(rng, 16)),
            )),
            status: "succeeded",
            last_error: None,
            active: true,
            created_at,
        });
        if index == 0 && rng.random_bool(0.3) {
            self.sources.push(Source {
                id: Uuid::draw(rng),
                location: None,
                name: "Practice management export".to_string(),
                kind: "excel",
                spreadsheet_id: None,
                sheet_name: Some("Export"),
                tokens: None,
                status: "failed",
                last_error: Some("column \"Net Prod\" not found in the uploaded file"),
                active: false,
                created_at,
            });
        }
        let saturdays = rng.random_bool(0.3);
        let roster = Default::default();
        self.locations.push(Location {
            id: Uuid::draw(rng),
            name,
            line1,
            line2,
            city,
            state,
            postal_code,
            phone,
            saturdays,
            created_at,
            source,
            roster,
        });
    }

    /// Dentists, and about 1.6 hygienists per dentist, per office; each works four or five
    /// weekdays at its primary office, some a day a week at another, some Saturdays.
    fn add_providers(&mut self, rng: &mut Rng, days: usize) {
        for home in 0..self.locations.len() {
            let dentists = pick(rng, &[(1, 35), (2, 45), (3, 20)]);
            let hygienists = ((dentists as f64) * between(rng, 1.2, 2.0)).round() as usize;
            for kind in
                std::iter::repeat_n(Kind::Dentist, dentists).chain(std::iter::repeat_n(Kind::Hygienist, hygienists))
            {
                self.add_provider(rng, kind, home, days);
            }
        }
    }

    fn add_provider(&mut self, rng: &mut Rng, kind: Kind, home: usize, days: usize) {
        let index = self.providers.len();
        let first_name: &'static str = FirstName().fake_with_rng(rng);
        let last_name: &'static str = LastName().fake_with_rng(rng);
        let email = rng
            .random_bool(0.8)
            .then(|| self.email(&format!("{}.{}.{index}", email_part(first_name), email_part(last_name))));
        // The first dentist (the documented provider login) is there all along.
        let veteran = index == 0 || rng.random_bool(0.85);
        let hired = if veteran { 0 } else { rng.random_range(0..days) };
        let left = (index > 0 && rng.random_bool(0.08) && hired + 1 < days).then(|| rng.random_range(hired..days));
        let leave_from = (index > 0 && left.is_none() && rng.random_bool(0.04))
            .then(|| days.saturating_sub(rng.random_range(5..40)));
        let status = if left.is_some() {
            "inactive"
        } else if leave_from.is_some() {
            "on_leave"
        } else {
            "active"
        };
        let rate = match kind {
            Kind::Dentist => between(rng, 430.0, 720.0),
            Kind::Hygienist => between(rng, 110.0, 175.0),
        };
        let mut locations = vec![(home, true, Uuid::draw(rng))];
        let away = rng.random_range(0..self.locations.len());
        if away != home && rng.random_bool(0.3) {
            locations.push((away, false, Uuid::draw(rng)));
        }
        // Weekdays: one day off (or none), one at the other office if any, some Saturdays.
        let day_off = if rng.random_bool(0.7) { rng.random_range(1..6) } else { 0 };
        let away_day = rng.random_range(1..6);
        for weekday in 1..6 {
            if weekday == day_off {
                continue;
            }
            let at = if locations.len() > 1 && weekday == away_day { locations[1].0 } else { home };
            self.locations[at].roster[weekday].push(index);
        }
        if self.locations[home].saturdays && rng.random_bool(0.45) {
            self.locations[home].roster[6].push(index);
        }
        let created_at = if hired == 0 {
            self.created_at + rng.random_range(0..60 * 86_400)
        } else {
            END.add(1 - days as i32 + hired as i32 - 7).midnight() + 43_200
        };
        self.providers.push(Provider {
            id: Uuid::draw(rng),
            kind,
            first_name,
            last_name,
            email,
            user: None,
            status,
            hired,
            left,
            leave_from,
            rate,
            locations,
            created_at,
        });
    }
}

fn clinic_name(rng: &mut Rng, city: &str) -> String {
    let last: &str = LastName().fake_with_rng(rng);
    match rng.random_range(0..6) {
        0 => format!("{last} Family Dentistry"),
        1 => format!("{city} Dental Care"),
        2 => format!("Bright Smiles of {city}"),
        3 => format!("{last} & {} Dental Group", LastName().fake_with_rng::<&str, _>(rng)),
        4 => format!("Gentle Dental of {city}"),
        _ => format!("{city} Family & Cosmetic Dentistry"),
    }
}

/// A state's main time zone.
fn timezone(state: &str) -> &'static str {
    match state {
        "AL" | "AR" | "IA" | "IL" | "KS" | "LA" | "MN" | "MO" | "MS" | "ND" | "NE" | "OK" | "SD" | "TN" | "TX"
        | "WI" => "America/Chicago",
        "CO" | "ID" | "MT" | "NM" | "UT" | "WY" => "America/Denver",
        "AZ" => "America/Phoenix",
        "CA" | "NV" | "OR" | "WA" => "America/Los_Angeles",
        "AK" => "America/Anchorage",
        "HI" => "Pacific/Honolulu",
        _ => "America/New_York",
    }
}

/// A weighted choice among small counts.
fn pick(rng: &mut Rng, weights: &[(usize, u32)]) -> usize {
    let total: u32 = weights.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for &(value, weight) in weights {
        if roll < weight {
            return value;
        }
        roll -= weight;
    }
    weights[0].0
}

/// A name as it may appear in an email address: lowercase letters only ("O'Keefe": "okeefe").
pub(super) fn email_part(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphabetic).map(|c| c.to_ascii_lowercase()).collect()
}

fn hex(rng: &mut Rng, bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every developer and CI must see the same fixtures: a change of this clinic means the
    /// generators (or `fake`, `rand_chacha`) changed every seeded row. Update it knowingly.
    #[test]
    fn clinic_one_of_seed_one_is_pinned() {
        let calendar = Calendar::ending_at_end(14);
        let clinic = Clinic::generate(1, 1, &calendar);
        assert_eq!(clinic.id.to_string(), "46d681f1-0458-4d6d-8463-968568bcc1f7");
        assert_eq!(clinic.name, "Zemlakport Family & Cosmetic Dentistry");
        assert_eq!(clinic.users[0].email, "owner@clinic1.seed.test");
        assert_eq!(clinic.locations.len(), 3);
        let again = Clinic::generate(1, 1, &calendar);
        assert_eq!(format!("{clinic:?}"), format!("{again:?}"));
        assert_ne!(Clinic::generate(2, 1, &calendar).id, clinic.id);
    }

    #[test]
    fn every_clinic_has_the_documented_logins_and_staff() {
        let calendar = Calendar::ending_at_end(30);
        for number in 1..=40 {
            let clinic = Clinic::generate(7, number, &calendar);
            for (user, role) in clinic.users.iter().zip(DOCUMENTED_ROLES) {
                assert_eq!(user.email, format!("{role}@clinic{number}.seed.test"));
                assert_eq!(user.role, role);
            }
            let dentists = clinic.providers.iter().filter(|p| p.kind == Kind::Dentist).count();
            assert!(dentists >= clinic.locations.len() && clinic.providers.len() > dentists);
            assert_eq!(clinic.providers[0].user, Some(2), "the provider login is the first dentist");
            let mut emails: Vec<&str> = clinic.users.iter().map(|u| u.email.as_str()).collect();
            emails.sort();
            emails.dedup();
            assert_eq!(emails.len(), clinic.users.len());
        }
    }
}

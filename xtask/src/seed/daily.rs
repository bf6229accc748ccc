//! What happens at one office on one day: which providers work (their weekly schedule, less
//! vacations and sick days, only while employed), their hours, patients and production
//! (rate x hours x the day's busyness x noise), and the office's financials, which add up:
//! production is the providers' sum, net = production - adjustments - write-offs, and
//! collections (patient + insurance income) are 85-102% of net.
//!
//! Each (clinic, office, day) has its own random stream, so the dentist, hygiene and
//! financials passes regenerate the same day independently and agree to the cent.

use rand::RngExt;

use super::{
    calendar::Calendar,
    model::{Clinic, Kind},
    random::{self, Stream, Uuid, between, noise},
};

/// One provider's day at the office.
#[derive(Debug)]
pub(super) struct Work {
    pub provider: usize,
    pub kind: Kind,
    pub id: Uuid,
    /// Cents.
    pub production: i64,
    pub verified: Option<i64>,
    /// Hundredths of an hour.
    pub hours: i64,
    pub patients: i64,
    pub new_patients: i64,
    pub at: i64,
    pub note: Option<&'static str>,
}

/// The office's day, in cents.
#[derive(Debug)]
pub(super) struct Financial {
    pub id: Uuid,
    pub production: i64,
    pub adjustments: i64,
    pub write_offs: i64,
    pub net: i64,
    pub patient_income: i64,
    pub insurance_income: i64,
    pub collections: i64,
    pub at: i64,
    pub note: Option<&'static str>,
}

/// A reusable buffer for one office-day.
#[derive(Debug, Default)]
pub(super) struct LocationDay {
    pub work: Vec<Work>,
    pub financial: Option<Financial>,
}

/// Notes as people type them into the daily sheet (one spans two lines, as pasted).
const NOTES: [&str; 6] = [
    "Late start: compressor repair",
    "Two cancellations filled from the waitlist",
    "Short day: staff CPR training",
    "Covered emergency visits for Dr. on vacation",
    "Imported from sheet row 12\nchecked by the office manager",
    "Patient no-shows: 3 (storm)",
];

/// Days this close to the end are not verified against the practice-management system yet.
const UNVERIFIED_DAYS: usize = 7;

impl LocationDay {
    /// Fills the buffer with office `location` of `clinic` on the calendar's day `index`;
    /// empty when the office is closed or nobody worked.
    pub(super) fn generate(&mut self, seed: u64, clinic: &Clinic, location: usize, calendar: &Calendar, index: usize) {
        self.work.clear();
        self.financial = None;
        let day = &calendar.days[index];
        let office = &clinic.locations[location];
        if !day.is_open(office.saturdays) {
            return;
        }
        let place = [u64::from(clinic.number), location as u64, day.date.0 as u64];
        let rng = &mut random::rng(seed, Stream::LocationDay, &place);
        let verified = calendar.days.len() - index > UNVERIFIED_DAYS;
        let evening = day.date.midnight() + 22 * 3600;
        for &p in &office.roster[usize::from(day.weekday)] {
            let provider = &clinic.providers[p];
            // Vacations, sick days, courses.
            let absent = rng.random_bool(0.04);
            let employed = index >= provider.hired
                && provider.left.is_none_or(|last| index <= last)
                && provider.leave_from.is_none_or(|from| index < from);
            if absent || !employed {
                continue;
            }
            let full_day = match day.weekday {
                5 => 7.0,
                6 => 5.0,
                _ => 8.0,
            };
            let hours = full_day - f64::from(rng.random_range(0..5u8)) * 0.25;
            let production = (hours * provider.rate * day.busyness * noise(rng, 0.5) * 100.0).round() as i64;
            let per_hour = match provider.kind {
                Kind::Dentist => between(rng, 1.0, 1.7),
                Kind::Hygienist => between(rng, 0.95, 1.2),
            };
            let new_patients = match provider.kind {
                Kind::Dentist => [0, 0, 0, 1, 1, 1, 1, 2, 2, 3][rng.random_range(0..10)],
                Kind::Hygienist => 0,
            };
            let verified = verified.then(|| {
                if rng.random_bool(0.92) {
                    production
                } else {
                    (production as f64 * between(rng, 0.97, 1.01)).round() as i64
                }
            });
            let at = evening + rng.random_range(0..3600);
            let note = rng.random_bool(0.01).then(|| NOTES[rng.random_range(0..NOTES.len())]);
            self.work.push(Work {
                provider: p,
                kind: provider.kind,
                id: Uuid::draw(rng),
                production,
                verified,
                hours: (hours * 100.0) as i64,
                patients: (hours * per_hour).round() as i64,
                new_patients,
                at,
                note,
            });
        }
        if self.work.is_empty() {
            return;
        }
        let production: i64 = self.work.iter().map(|w| w.production).sum();
        self.financial = Some(financial(rng, production, evening));
    }
}

/// The office's financials for a day of this production, drawn after its providers' work
/// from the same stream; `evening` is when the providers' rows were entered.
fn financial(rng: &mut random::Rng, production: i64, evening: i64) -> Financial {
    let share = |rng: &mut random::Rng, amount: i64, low: f64, high: f64| {
        (amount as f64 * between(rng, low, high)).round() as i64
    };
    let adjustments = share(rng, production, 0.005, 0.03);
    let write_offs = share(rng, production, 0.08, 0.18);
    let net = production - adjustments - write_offs;
    let collections = share(rng, net, 0.85, 1.02);
    let insurance_income = share(rng, collections, 0.55, 0.72);
    Financial {
        id: Uuid::draw(rng),
        production,
        adjustments,
        write_offs,
        net,
        patient_income: collections - insurance_income,
        insurance_income,
        collections,
        at: evening + 3600 + rng.random_range(0..1800),
        note: rng.random_bool(0.005).then_some("Deposit counted twice; corrected next day"),
    }
}

/// A clinic's monthly totals, in cents (counts for new patients), for goals near them.
#[derive(Debug)]
pub(super) struct Actuals {
    pub months: usize,
    /// `[provider * months + month]`
    pub provider: Vec<i64>,
    /// `[location * months + month]`
    pub location: Vec<i64>,
    pub production: Vec<i64>,
    pub collections: Vec<i64>,
    pub new_patients: Vec<i64>,
}

impl Actuals {
    /// Regenerates every day of the clinic (cheap next to loading it) and sums per month.
    pub(super) fn of(seed: u64, clinic: &Clinic, calendar: &Calendar) -> Actuals {
        let months = calendar.months.len();
        let mut actuals = Actuals {
            months,
            provider: vec![0; clinic.providers.len() * months],
            location: vec![0; clinic.locations.len() * months],
            production: vec![0; months],
            collections: vec![0; months],
            new_patients: vec![0; months],
        };
        let mut day = LocationDay::default();
        for location in 0..clinic.locations.len() {
            for (index, d) in calendar.days.iter().enumerate() {
                day.generate(seed, clinic, location, calendar, index);
                let Some(financial) = &day.financial else { continue };
                let m = d.month;
                for work in &day.work {
                    actuals.provider[work.provider * months + m] += work.production;
                    actuals.new_patients[m] += work.new_patients;
                }
                actuals.location[location * months + m] += financial.production;
                actuals.production[m] += financial.production;
                actuals.collections[m] += financial.collections;
            }
        }
        actuals
    }
}

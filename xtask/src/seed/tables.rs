//! The seeded tables, in load order (parents before children, so each COPY's foreign keys
//! find their rows), each with its column list and the function that writes its rows.
//! Every pass regenerates the clinics it needs from their streams, one at a time, so memory
//! holds one clinic, never the dataset.

use anyhow::Result;
use rand::RngExt;

use super::{
    calendar::{Calendar, Date, END},
    copy::TableWriter,
    daily::{Actuals, LocationDay},
    model::{self, Clinic, Kind, METRICS, PASSWORD_HASH},
    random::{self, Stream, Uuid, between},
};

/// What to generate: the seed, how many clinics, which days.
#[derive(Debug)]
pub(super) struct Seeder {
    pub seed: u64,
    pub clinics: u32,
    pub calendar: Calendar,
}

/// A table: its name, the columns the seed fills (the rest keep their defaults), and
/// whether its rows may be written frozen (tables the seed empties in its transaction).
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static str,
    pub freeze: bool,
    pub(super) write: fn(&Seeder, &mut TableWriter) -> Result<()>,
}

/// Every table the seed loads. `auth.users` is not emptied (it may hold developers' own
/// sign-ups); only its seeded rows (`*.seed.test`) are replaced, their identities with them
/// (the foreign key cascades).
pub(crate) const TABLES: [Table; 16] = [
    t(
        "auth.users",
        "instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, confirmation_token, recovery_token, email_change, email_change_token_new, raw_app_meta_data, raw_user_meta_data, created_at, updated_at",
        false,
        auth_users,
    ),
    t(
        "auth.identities",
        "id, user_id, provider_id, provider, identity_data, created_at, updated_at",
        false,
        auth_identities,
    ),
    t("public.clinics", "id, name, timezone, created_at, updated_at", true, clinics),
    t(
        "public.locations",
        "id, clinic_id, name, address_line1, address_line2, city, state, postal_code, phone, is_active, created_at, updated_at",
        true,
        locations,
    ),
    t("public.users", "id, auth_id, email, name, created_at, updated_at", true, users),
    t(
        "public.user_clinic_roles",
        "id, user_id, clinic_id, role, is_active, created_at, updated_at",
        true,
        user_clinic_roles,
    ),
    t(
        "public.providers",
        "id, clinic_id, user_id, first_name, last_name, email, provider_type, status, created_at, updated_at",
        true,
        providers,
    ),
    t(
        "public.provider_locations",
        "id, clinic_id, provider_id, location_id, is_primary, created_at, updated_at",
        true,
        provider_locations,
    ),
    t(
        "public.data_sources",
        "id, clinic_id, location_id, name, source_type, spreadsheet_id, sheet_name, access_token, refresh_token, token_expires_at, last_synced_at, sync_status, last_error, is_active, created_at, updated_at",
        true,
        data_sources,
    ),
    t(
        "public.metric_definitions",
        "id, clinic_id, key, name, description, unit, aggregation, data_source_id, is_active, created_at, updated_at",
        true,
        metric_definitions,
    ),
    t(
        "public.daily_dentist_production",
        "id, clinic_id, location_id, provider_id, date, production, verified_production, hours_worked, patients_seen, new_patients, data_source_id, notes, created_at, updated_at",
        true,
        dentist_production,
    ),
    t(
        "public.daily_hygiene_production",
        "id, clinic_id, location_id, provider_id, date, production, verified_production, hours_worked, patients_seen, data_source_id, notes, created_at, updated_at",
        true,
        hygiene_production,
    ),
    t(
        "public.daily_location_financials",
        "id, clinic_id, location_id, date, production, adjustments, write_offs, net_production, patient_income, insurance_income, collections, data_source_id, notes, created_at, updated_at",
        true,
        financials,
    ),
    t(
        "public.goals",
        "id, clinic_id, provider_id, location_id, metric_definition_id, period, start_date, end_date, target, notes, created_at, updated_at",
        true,
        goals,
    ),
    t(
        "public.dashboards",
        "id, clinic_id, user_id, name, description, is_default, layout, created_at, updated_at",
        true,
        dashboards,
    ),
    t(
        "public.dashboard_widgets",
        "id, clinic_id, user_id, dashboard_id, metric_definition_id, widget_type, title, position_x, position_y, width, height, config, created_at, updated_at",
        true,
        widgets,
    ),
];

const fn t(
    name: &'static str,
    columns: &'static str,
    freeze: bool,
    write: fn(&Seeder, &mut TableWriter) -> Result<()>,
) -> Table {
    Table { name, columns, freeze, write }
}

impl Seeder {
    /// Each clinic in turn, regenerated from its stream.
    fn each_clinic(&self, mut f: impl FnMut(&Clinic) -> Result<()>) -> Result<()> {
        for number in 1..=self.clinics {
            f(&Clinic::generate(self.seed, number, &self.calendar))?;
        }
        Ok(())
    }

    /// Each office-day of each clinic, with the clinic and office index.
    fn each_day(&self, mut f: impl FnMut(&Clinic, usize, Date, &LocationDay) -> Result<()>) -> Result<()> {
        let mut day = LocationDay::default();
        self.each_clinic(|clinic| {
            for location in 0..clinic.locations.len() {
                for (index, d) in self.calendar.days.iter().enumerate() {
                    day.generate(self.seed, clinic, location, &self.calendar, index);
                    if !day.work.is_empty() {
                        f(clinic, location, d.date, &day)?;
                    }
                }
            }
            Ok(())
        })
    }
}

fn auth_users(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    let app_meta = r#"{"provider": "email", "providers": ["email"], "seeded": true}"#;
    s.each_clinic(|c| {
        for u in &c.users {
            let user_meta = format!("{{\"name\": {}}}", serde_json::to_string(&u.name)?);
            w.uuid(&Uuid([0; 16])).uuid(&u.auth_id).text("authenticated").text("authenticated");
            // GoTrue reads these token columns as strings: empty, never null.
            w.text(&u.email).text(PASSWORD_HASH).timestamp(u.created_at).text("").text("").text("").text("");
            w.jsonb(app_meta).jsonb(&user_meta).timestamp(u.created_at).timestamp(u.created_at).end()?;
        }
        Ok(())
    })
}

/// The `email` identity GoTrue signs a user in with: without it, a real GoTrue refuses the
/// password login.
fn auth_identities(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    s.each_clinic(|c| {
        for u in &c.users {
            let sub = String::from_utf8_lossy(&u.auth_id.text()).into_owned();
            let data =
                serde_json::json!({"sub": sub, "email": u.email, "email_verified": true, "phone_verified": false});
            w.uuid(&u.identity_id()).uuid(&u.auth_id).text(&sub).text("email").jsonb(&data.to_string());
            w.timestamp(u.created_at).timestamp(u.created_at).end()?;
        }
        Ok(())
    })
}

fn clinics(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    s.each_clinic(|c| {
        w.uuid(&c.id).text(&c.name).text(c.timezone).timestamp(c.created_at).timestamp(c.created_at).end()
    })
}

fn locations(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    s.each_clinic(|c| {
        for l in &c.locations {
            w.uuid(&l.id).uuid(&c.id).text(&l.name).text(&l.line1).opt_text(l.line2.as_deref()).text(&l.city);
            w.text(l.state).text(&l.postal_code).text(&l.phone).boolean(true);
            w.timestamp(l.created_at).timestamp(l.created_at).end()?;
        }
        Ok(())
    })
}

fn users(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    s.each_clinic(|c| {
        for u in &c.users {
            w.uuid(&u.id)
                .uuid(&u.auth_id)
                .text(&u.email)
                .text(&u.name)
                .timestamp(u.created_at)
                .timestamp(u.created_at)
                .end()?;
        }
        Ok(())
    })
}

fn user_clinic_roles(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    s.each_clinic(|c| {
        for u in &c.users {
            w.uuid(&u.role_id).uuid(&u.id).uuid(&c.id).text(u.role).boolean(u.active);
            w.timestamp(u.created_at).timestamp(u.created_at).end()?;
        }
        Ok(())
    })
}

fn providers(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    s.each_clinic(|c| {
        for p in &c.providers {
            let kind = if p.kind == Kind::Dentist { "dentist" } else { "hygienist" };
            w.uuid(&p.id).uuid(&c.id).opt_uuid(p.user.map(|u| &c.users[u].id)).text(p.first_name).text(p.last_name);
            w.opt_text(p.email.as_deref()).text(kind).text(p.status);
            w.timestamp(p.created_at).timestamp(p.created_at).end()?;
        }
        Ok(())
    })
}

fn provider_locations(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    s.each_clinic(|c| {
        for p in &c.providers {
            for (location, primary, id) in &p.locations {
                w.uuid(id).uuid(&c.id).uuid(&p.id).uuid(&c.locations[*location].id).boolean(*primary);
                w.timestamp(p.created_at).timestamp(p.created_at).end()?;
            }
        }
        Ok(())
    })
}

fn data_sources(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    let synced = END.midnight() + 23 * 3600;
    s.each_clinic(|c| {
        for d in &c.sources {
            w.uuid(&d.id).uuid(&c.id).opt_uuid(d.location.map(|l| &c.locations[l].id)).text(&d.name);
            w.text(d.kind).opt_text(d.spreadsheet_id.as_deref()).opt_text(d.sheet_name);
            match &d.tokens {
                Some((access, refresh)) => w.text(access).text(refresh).timestamp(synced + 3600),
                None => w.null().null().null(),
            };
            let last_synced = if d.active { synced } else { d.created_at + 86_400 };
            w.timestamp(last_synced).text(d.status).opt_text(d.last_error).boolean(d.active);
            w.timestamp(d.created_at).timestamp(last_synced).end()?;
        }
        Ok(())
    })
}

fn metric_definitions(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    s.each_clinic(|c| {
        for m in &c.metrics {
            let d = m.def;
            w.uuid(&m.id).uuid(&c.id).text(d.key).text(d.name).text(d.description);
            w.text(d.unit).text(d.aggregation).opt_uuid(m.source.map(|i| &c.sources[i].id));
            w.boolean(true).timestamp(c.created_at).timestamp(c.created_at).end()?;
        }
        Ok(())
    })
}

fn dentist_production(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    production(s, w, Kind::Dentist)
}

fn hygiene_production(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    production(s, w, Kind::Hygienist)
}

fn production(s: &Seeder, w: &mut TableWriter, kind: Kind) -> Result<()> {
    s.each_day(|c, location, date, day| {
        let office = &c.locations[location];
        for work in day.work.iter().filter(|work| work.kind == kind) {
            w.uuid(&work.id).uuid(&c.id).uuid(&office.id).uuid(&c.providers[work.provider].id).date(date);
            w.cents(work.production).opt_cents(work.verified).cents(work.hours).int(work.patients);
            if kind == Kind::Dentist {
                w.int(work.new_patients);
            }
            w.uuid(&c.sources[office.source].id).opt_text(work.note).timestamp(work.at).timestamp(work.at).end()?;
        }
        Ok(())
    })
}

fn financials(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    s.each_day(|c, location, date, day| {
        let Some(f) = &day.financial else { return Ok(()) };
        let office = &c.locations[location];
        w.uuid(&f.id).uuid(&c.id).uuid(&office.id).date(date).cents(f.production).cents(f.adjustments);
        w.cents(f.write_offs).cents(f.net).cents(f.patient_income).cents(f.insurance_income).cents(f.collections);
        w.uuid(&c.sources[office.source].id).opt_text(f.note).timestamp(f.at).timestamp(f.at).end()
    })
}

/// Monthly goals (clinic production, collections and new patients; each office's and each
/// provider's production) and yearly production goals, each within about 10% of what the
/// month or year actually brought (scaled up where the range covers it only in part).
fn goals(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    let calendar = &s.calendar;
    let mut covered = vec![0i64; calendar.months.len()];
    for day in &calendar.days {
        covered[day.month] += 1;
    }
    s.each_clinic(|c| {
        let actuals = Actuals::of(s.seed, c, calendar);
        let rng = &mut random::rng(s.seed, Stream::Goals, &[u64::from(c.number)]);
        let mut goal = |provider: Option<&Uuid>,
                        location: Option<&Uuid>,
                        key: &str,
                        period: &str,
                        span: (Date, Date),
                        actual: f64| {
            let metric = model::metric(key);
            let target = actual * between(rng, 0.92, 1.1);
            let cents = if METRICS[metric].unit == "count" {
                target.round() as i64 * 100
            } else {
                (target / 10_000.0).round() as i64 * 10_000
            };
            let created = span.0.add(-rng.random_range(5..20)).midnight() + 36_000;
            let id = Uuid::draw(rng);
            w.uuid(&id).uuid(&c.id).opt_uuid(provider).opt_uuid(location).uuid(&c.metrics[metric].id).text(period);
            w.date(span.0).date(span.1).cents(cents.max(0)).null().timestamp(created).timestamp(created).end()
        };
        for (m, &(start, end)) in calendar.months.iter().enumerate() {
            let scale = f64::from(end.0 - start.0 + 1) / covered[m] as f64;
            let span = (start, end);
            goal(None, None, "total_production", "monthly", span, actuals.production[m] as f64 * scale)?;
            goal(None, None, "collections", "monthly", span, actuals.collections[m] as f64 * scale)?;
            goal(None, None, "new_patients", "monthly", span, actuals.new_patients[m] as f64 * scale)?;
            for (l, office) in c.locations.iter().enumerate() {
                let actual = actuals.location[l * actuals.months + m] as f64 * scale;
                goal(None, Some(&office.id), "total_production", "monthly", span, actual)?;
            }
            for (p, provider) in c.providers.iter().enumerate() {
                let actual = actuals.provider[p * actuals.months + m];
                if actual > 0 {
                    let key = if provider.kind == Kind::Dentist { "dentist_production" } else { "hygiene_production" };
                    goal(Some(&provider.id), None, key, "monthly", span, actual as f64 * scale)?;
                }
            }
        }
        let (first_year, ..) = calendar.first().ymd();
        for year in first_year..=END.ymd().0 {
            let span = (Date::from_ymd(year, 1, 1), Date::from_ymd(year, 12, 31));
            let months = calendar.months.iter().enumerate().filter(|(_, (start, _))| start.ymd().0 == year);
            let (actual, days) =
                months.fold((0.0, 0), |(sum, days), (m, _)| (sum + actuals.production[m] as f64, days + covered[m]));
            let scale = f64::from(span.1.0 - span.0.0 + 1) / days as f64;
            goal(None, None, "total_production", "yearly", span, actual * scale)?;
        }
        Ok(())
    })
}

fn dashboards(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    s.each_clinic(|c| {
        for d in &c.dashboards {
            w.uuid(&d.id)
                .uuid(&c.id)
                .uuid(&c.users[d.user].id)
                .text(d.name)
                .opt_text(d.description)
                .boolean(d.is_default);
            w.jsonb(r#"{"columns": 12}"#).timestamp(d.created_at).timestamp(d.created_at).end()?;
        }
        Ok(())
    })
}

fn widgets(s: &Seeder, w: &mut TableWriter) -> Result<()> {
    s.each_clinic(|c| {
        for d in &c.dashboards {
            for x in &d.widgets {
                let (px, py, width, height) = x.position;
                w.uuid(&x.id)
                    .uuid(&c.id)
                    .uuid(&c.users[d.user].id)
                    .uuid(&d.id)
                    .opt_uuid(x.metric.map(|m| &c.metrics[m].id));
                w.text(x.kind).text(x.title).int(px).int(py).int(width).int(height).jsonb(x.config);
                w.timestamp(d.created_at).timestamp(d.created_at).end()?;
            }
        }
        Ok(())
    })
}

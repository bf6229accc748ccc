//! Parameters drawn from the target's own data: its members (with their logins, so RLS sees
//! a real user), their clinics' providers and locations, and the days each clinic has data
//! for. Read once before the run, so the measured transactions hold only the queries.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use postgres::Client;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::workload::{Param, Query, Role};
use crate::seed::calendar::Date;

/// What the draws choose from.
#[derive(Debug)]
pub(super) struct Data {
    members: Vec<Member>,
    clinics: HashMap<String, Clinic>,
    clinic_ids: Vec<String>,
}

#[derive(Debug)]
struct Member {
    auth_id: String,
    user_id: String,
    clinic: String,
    role: String,
}

#[derive(Debug, Default)]
struct Clinic {
    providers: Vec<String>,
    locations: Vec<String>,
    /// First and last day with financials; the whole table's span when the clinic has none.
    first: Option<Date>,
    last: Option<Date>,
}

/// One transaction's draw: the claims to set and the positional parameters' text.
#[derive(Debug)]
pub(super) struct Draw {
    /// `request.jwt.claims` as JSON.
    pub claims: String,
    pub values: Vec<Option<String>>,
}

impl Data {
    /// Reads members, providers, locations and date spans, in a transaction rolled back after.
    pub(super) fn read(client: &mut Client) -> Result<Data> {
        let mut tx = client.transaction()?;
        let members: Vec<Member> = tx
            .query(
                "select u.auth_id::text, u.id::text, r.clinic_id::text, r.role::text
                 from public.user_clinic_roles r join public.users u on u.id = r.user_id
                 where r.is_active and u.auth_id is not null order by 3, 4, 1",
                &[],
            )
            .context("cannot read the target's members")?
            .iter()
            .map(|r| Member { auth_id: r.get(0), user_id: r.get(1), clinic: r.get(2), role: r.get(3) })
            .collect();
        let mut clinics: HashMap<String, Clinic> = HashMap::new();
        for row in tx.query(
            "select clinic_id::text, id::text from public.providers where status = 'active' order by 1, 2",
            &[],
        )? {
            clinics.entry(row.get(0)).or_default().providers.push(row.get(1));
        }
        for row in
            tx.query("select clinic_id::text, id::text from public.locations where is_active order by 1, 2", &[])?
        {
            clinics.entry(row.get(0)).or_default().locations.push(row.get(1));
        }
        let spans = "select clinic_id::text, min(date) - date '1970-01-01', max(date) - date '1970-01-01'
                     from public.daily_location_financials group by 1";
        for row in tx.query(spans, &[])? {
            let clinic = clinics.entry(row.get(0)).or_default();
            clinic.first = Some(Date(row.get(1)));
            clinic.last = Some(Date(row.get(2)));
        }
        let clinic_ids: Vec<String> =
            tx.query("select id::text from public.clinics order by 1", &[])?.iter().map(|r| r.get(0)).collect();
        tx.rollback()?;
        if members.is_empty() {
            bail!(
                "the target has no active members with a login, so no query can run as a real user\nhint: seed it first (`cargo xtask seed --profile large`), or sync staging"
            );
        }
        Ok(Data { members, clinics, clinic_ids })
    }

    pub(super) fn members(&self) -> usize {
        self.members.len()
    }

    pub(super) fn clinics(&self) -> usize {
        self.clinic_ids.len()
    }

    /// Whether some member can carry this query's claims.
    pub(super) fn has_member_for(&self, query: &Query) -> bool {
        self.members.iter().any(|m| query.members.is_empty() || query.members.contains(&m.role))
    }

    /// Draws a member (of the query's member roles) and the query's parameters.
    pub(super) fn draw(&self, query: &Query, role: Role, rng: &mut ChaCha8Rng) -> Draw {
        let eligible = |m: &&Member| query.members.is_empty() || query.members.contains(&m.role);
        let count = self.members.iter().filter(eligible).count().max(1);
        let pick = rng.random_range(0..count);
        let member = self.members.iter().filter(eligible).nth(pick).unwrap_or(&self.members[0]);
        let clinic = self.clinics.get(&member.clinic);
        let (first, last) = match clinic.and_then(|c| c.first.zip(c.last)) {
            Some(span) => span,
            None => (crate::seed::calendar::END.add(-364), crate::seed::calendar::END),
        };
        let days = query.days[rng.random_range(0..query.days.len())] as i32;
        // The range ends within the data, starting no earlier than its first day when it fits.
        let earliest_end = first.add(days - 1).min(last);
        let to = Date(rng.random_range(earliest_end.0..=last.0));
        let from = to.add(1 - days);
        let day = Date(rng.random_range(first.0..=last.0));
        let mut one_of = |list: Option<&Vec<String>>| -> Option<String> {
            let list = list.filter(|l| !l.is_empty())?;
            Some(list[rng.random_range(0..list.len())].clone())
        };
        let provider = one_of(clinic.map(|c| &c.providers));
        let location = one_of(clinic.map(|c| &c.locations));
        let others: Vec<&String> = self.clinic_ids.iter().filter(|c| **c != member.clinic).collect();
        let other_clinic = (!others.is_empty()).then(|| others[rng.random_range(0..others.len())].clone());
        let amount = format!("{:.2}", rng.random_range(100.0..5000.0));
        let values = query
            .params
            .iter()
            .map(|param| match param {
                Param::Clinic => Some(member.clinic.clone()),
                Param::OtherClinic => other_clinic.clone(),
                Param::User => Some(member.user_id.clone()),
                Param::Provider => provider.clone(),
                Param::Location => location.clone(),
                Param::From => Some(text(from)),
                Param::To => Some(text(to)),
                Param::Day => Some(text(day)),
                Param::Amount => Some(amount.clone()),
            })
            .collect();
        let claims = match role {
            Role::Authenticated => format!(
                r#"{{"sub":"{}","role":"authenticated","aud":"authenticated","user_role":"{}"}}"#,
                member.auth_id, member.role
            ),
            Role::ServiceRole => r#"{"role":"service_role"}"#.to_string(),
        };
        Draw { claims, values }
    }
}

fn text(date: Date) -> String {
    String::from_utf8_lossy(&date.text()).into_owned()
}

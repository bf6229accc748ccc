//! The seed's calendar: a fixed range of days ending on [`END`] (never "today", so that the
//! same options give the same data on every machine and every day), which days a dental
//! office is open (no Sundays, no US holidays, Saturdays only where a location opens them),
//! and how busy a day is (weekday, season, a slow growth over the years).

/// The last seeded day. Fixed: data must not depend on when the seed runs.
pub(crate) const END: Date = Date::from_ymd(2026, 10, 31);

/// A day, as days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Date(pub i32);

/// One day of the range, with what the generators need precomputed.
#[derive(Debug)]
pub(crate) struct Day {
    pub date: Date,
    /// `YYYY-MM-DD`, for COPY.
    pub text: [u8; 10],
    /// 0 = Sunday ... 6 = Saturday.
    pub weekday: u8,
    pub holiday: bool,
    /// How busy the day is, relative to an average weekday of the final year.
    pub busyness: f64,
    /// Months since the range's first month: goals are per month.
    pub month: usize,
}

/// The days of the range, oldest first.
#[derive(Debug)]
pub(crate) struct Calendar {
    pub days: Vec<Day>,
    /// First day of each month the range touches, and the last day of that month.
    pub months: Vec<(Date, Date)>,
}

impl Calendar {
    /// The `count` days that end on [`END`].
    pub(crate) fn ending_at_end(count: u32) -> Calendar {
        let first = END.add(1 - count as i32);
        let (first_year, first_month, _) = first.ymd();
        let (last_year, ..) = END.ymd();
        let holidays: Vec<Date> = (first_year - 1..=last_year + 1).flat_map(holidays_of).collect();
        let month_index = |date: Date| {
            let (y, m, _) = date.ymd();
            ((y - first_year) * 12 + m as i32 - first_month as i32) as usize
        };
        let days = (0..count as i32)
            .map(|i| {
                let date = first.add(i);
                let weekday = date.weekday();
                Day {
                    date,
                    text: date.text(),
                    weekday,
                    holiday: holidays.contains(&date),
                    busyness: busyness(date, weekday),
                    month: month_index(date),
                }
            })
            .collect();
        let mut months = Vec::new();
        let mut start = Date::from_ymd(first_year, first_month, 1);
        while start <= END {
            let (y, m, _) = start.ymd();
            let next = if m == 12 { Date::from_ymd(y + 1, 1, 1) } else { Date::from_ymd(y, m + 1, 1) };
            months.push((start, next.add(-1)));
            start = next;
        }
        Calendar { days, months }
    }

    pub(crate) fn first(&self) -> Date {
        self.days.first().map(|d| d.date).unwrap_or(END)
    }
}

impl Day {
    /// Whether a location is open: never on Sundays or holidays, Saturdays only if it opens
    /// them.
    pub(crate) fn is_open(&self, saturdays: bool) -> bool {
        !self.holiday && self.weekday != 0 && (self.weekday != 6 || saturdays)
    }
}

/// Weekday rhythm (Tuesday busiest, Friday short, Saturday a half day), seasons (January
/// and summer slow, spring, autumn and early December busy as patients use their insurance
/// before the year ends, the last week of December quiet), and 4% growth a year.
fn busyness(date: Date, weekday: u8) -> f64 {
    const WEEKDAY: [f64; 7] = [0.0, 1.02, 1.06, 1.03, 1.0, 0.86, 0.62];
    const MONTH: [f64; 12] = [0.9, 0.95, 1.05, 1.03, 1.02, 0.97, 0.9, 0.98, 0.99, 1.04, 1.02, 1.07];
    let (_, month, day) = date.ymd();
    let season = if month == 12 && day >= 20 { 0.82 } else { MONTH[month as usize - 1] };
    let years_before_end = f64::from(END.0 - date.0) / 365.25;
    WEEKDAY[weekday as usize] * season * 1.04f64.powf(-years_before_end)
}

/// The days a US dental office closes in `year`: New Year's Day, Memorial Day, Independence
/// Day, Labor Day, Thanksgiving and the Friday after, Christmas Eve and Christmas Day; a
/// fixed-date holiday on a weekend is also observed on the Friday before or Monday after.
fn holidays_of(year: i32) -> Vec<Date> {
    let mut days = Vec::new();
    for (month, day) in [(1, 1), (7, 4), (12, 24), (12, 25)] {
        let date = Date::from_ymd(year, month, day);
        days.push(date);
        match date.weekday() {
            6 => days.push(date.add(-1)),
            0 => days.push(date.add(1)),
            _ => {}
        }
    }
    let nth = |month: u32, weekday: u8, n: i32| {
        let first = Date::from_ymd(year, month, 1);
        first.add((i32::from(weekday) - i32::from(first.weekday())).rem_euclid(7) + 7 * (n - 1))
    };
    let last_monday_of_may = nth(6, 1, 1).add(-7);
    let thanksgiving = nth(11, 4, 4);
    days.extend([last_monday_of_may, nth(9, 1, 1), thanksgiving, thanksgiving.add(1)]);
    days
}

impl Date {
    /// Days from the civil date (Howard Hinnant's algorithm).
    pub(crate) const fn from_ymd(year: i32, month: u32, day: u32) -> Date {
        let y = if month <= 2 { year - 1 } else { year };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let mp = (month as i32 + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day as i32 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Date(era * 146097 + doe - 719468)
    }

    pub(crate) fn ymd(self) -> (i32, u32, u32) {
        let z = self.0 + 719468;
        let era = if z >= 0 { z } else { z - 146096 } / 146097;
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (yoe + era * 400 + i32::from(month <= 2), month, day)
    }

    pub(crate) fn add(self, days: i32) -> Date {
        Date(self.0 + days)
    }

    /// 0 = Sunday ... 6 = Saturday (1970-01-01 was a Thursday).
    pub(crate) fn weekday(self) -> u8 {
        (self.0 + 4).rem_euclid(7) as u8
    }

    /// Seconds since the epoch at midnight UTC.
    pub(crate) fn midnight(self) -> i64 {
        i64::from(self.0) * 86_400
    }

    pub(crate) fn text(self) -> [u8; 10] {
        let (y, m, d) = self.ymd();
        let mut out = *b"0000-00-00";
        let y = y.clamp(0, 9999) as u32;
        for (i, digit) in
            [y / 1000, y / 100 % 10, y / 10 % 10, y % 10, 0, m / 10, m % 10, 0, d / 10, d % 10].into_iter().enumerate()
        {
            if i != 4 && i != 7 {
                out[i] = b'0' + digit as u8;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_know_their_weekday() {
        assert_eq!(Date::from_ymd(1970, 1, 1), Date(0));
        assert_eq!(END.ymd(), (2026, 10, 31));
        assert_eq!(&END.text(), b"2026-10-31");
        assert_eq!(END.weekday(), 6, "2026-10-31 is a Saturday");
        for n in -800_000..800_000 {
            let date = Date(n);
            let (y, m, d) = date.ymd();
            assert_eq!(Date::from_ymd(y, m, d), date);
        }
    }

    #[test]
    fn holidays_are_the_us_ones() {
        let h = holidays_of(2025);
        for (m, d) in [(1, 1), (5, 26), (7, 4), (9, 1), (11, 27), (11, 28), (12, 24), (12, 25)] {
            assert!(h.contains(&Date::from_ymd(2025, m, d)), "2025-{m}-{d}");
        }
        // 2026-07-04 is a Saturday: observed on Friday the 3rd.
        assert!(holidays_of(2026).contains(&Date::from_ymd(2026, 7, 3)));
        let calendar = Calendar::ending_at_end(730);
        assert_eq!(calendar.days.len(), 730);
        assert_eq!(calendar.days.last().map(|d| d.date), Some(END));
        assert_eq!(calendar.months.len(), 24);
    }
}

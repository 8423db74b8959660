//! Time specifications `TIMES,WEEKDAYS,MONTHDAYS,MONTHS[,TZ]` used by timed includes
//! (§5.4), `GotoIfTime`, `ExecIfTime` and `IFTIME` (§12.4). Each field is `*` or a list
//! of values and ranges joined by `&`; ranges may wrap (`fri-mon`, `22:00-06:00`).

use jiff::Timestamp;
use jiff::tz::TimeZone;

const MINUTES: usize = 24 * 60;
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

#[derive(Debug, Clone)]
pub struct TimeSpec {
    /// One bit per minute of the day. The end minute of a range is included, so
    /// `09:00-17:00` runs through 17:00:59 as in Asterisk.
    minutes: Vec<u64>,
    weekdays: u8,
    mdays: u32,
    months: u16,
    tz: Option<TimeZone>,
}

impl PartialEq for TimeSpec {
    fn eq(&self, o: &Self) -> bool {
        self.minutes == o.minutes
            && self.weekdays == o.weekdays
            && self.mdays == o.mdays
            && self.months == o.months
    }
}

/// Why a time specification was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeSpecError {
    #[error("invalid time range '{0}' (expected HH:MM-HH:MM)")]
    Time(String),
    #[error("invalid weekday '{0}' (expected sun..sat)")]
    Weekday(String),
    #[error("invalid day of month '{0}' (expected 1..31)")]
    MonthDay(String),
    #[error("invalid month '{0}' (expected jan..dec)")]
    Month(String),
    #[error("unknown time zone '{0}'")]
    Zone(String),
}

impl TimeSpec {
    /// Parses the fields given separately (already split on `,` or `|`).
    pub fn from_fields(fields: &[&str]) -> Result<TimeSpec, TimeSpecError> {
        let get = |i: usize| fields.get(i).map(|s| s.trim()).unwrap_or("*");
        let minutes = parse_times(get(0))?;
        let weekdays = parse_list(get(1), 0, 6, |s| name_index(s, &WEEKDAYS))
            .map_err(|_| TimeSpecError::Weekday(get(1).into()))? as u8;
        let mdays = parse_list(get(2), 1, 31, |s| s.parse::<u32>().ok())
            .map_err(|_| TimeSpecError::MonthDay(get(2).into()))?;
        let months = parse_list(get(3), 0, 11, |s| name_index(s, &MONTHS))
            .map_err(|_| TimeSpecError::Month(get(3).into()))? as u16;
        let tz = match fields.get(4).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            Some(name) => {
                Some(TimeZone::get(name).map_err(|_| TimeSpecError::Zone(name.to_string()))?)
            }
            None => None,
        };
        Ok(TimeSpec {
            minutes,
            weekdays,
            mdays,
            months,
            tz,
        })
    }

    /// Parses `TIMES,WEEKDAYS,MDAYS,MONTHS[,TZ]`; the legacy `|` separator works too.
    pub fn parse(spec: &str) -> Result<TimeSpec, TimeSpecError> {
        let sep = if spec.contains(',') { ',' } else { '|' };
        let fields: Vec<&str> = spec.split(sep).collect();
        Self::from_fields(&fields)
    }

    /// Whether `now` falls inside the spec, in the spec's zone or else `default_tz`.
    pub fn matches(&self, now: Timestamp, default_tz: &TimeZone) -> bool {
        let tz = self.tz.as_ref().unwrap_or(default_tz);
        let z = now.to_zoned(tz.clone());
        let minute = z.hour() as usize * 60 + z.minute() as usize;
        let wd = z.weekday().to_sunday_zero_offset() as u32;
        self.minutes[minute / 64] & (1 << (minute % 64)) != 0
            && self.weekdays & (1 << wd) != 0
            && self.mdays & (1 << z.day() as u32) != 0
            && self.months & (1 << (z.month() as u32 - 1)) != 0
    }
}

fn name_index(s: &str, names: &[&str]) -> Option<u32> {
    let l = s.to_ascii_lowercase();
    names
        .iter()
        .position(|n| l.len() >= 3 && l.starts_with(n))
        .map(|i| i as u32)
}

/// Parses a `&`-joined list of values and wrapping ranges into a bit mask.
fn parse_list(
    field: &str,
    min: u32,
    max: u32,
    value: impl Fn(&str) -> Option<u32>,
) -> Result<u32, ()> {
    let all = (min..=max).fold(0u32, |m, v| m | (1 << v));
    if field.is_empty() || field == "*" {
        return Ok(all);
    }
    let mut mask = 0u32;
    for part in field.split('&') {
        let part = part.trim();
        if part == "*" {
            mask |= all;
            continue;
        }
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (value(a.trim()).ok_or(())?, value(b.trim()).ok_or(())?),
            None => {
                let v = value(part).ok_or(())?;
                (v, v)
            }
        };
        if a < min || a > max || b < min || b > max {
            return Err(());
        }
        let mut v = a;
        loop {
            mask |= 1 << v;
            if v == b {
                break;
            }
            v = if v == max { min } else { v + 1 };
        }
    }
    Ok(mask)
}

fn parse_times(field: &str) -> Result<Vec<u64>, TimeSpecError> {
    let mut bits = vec![0u64; MINUTES.div_ceil(64)];
    let set = |bits: &mut Vec<u64>, m: usize| bits[m / 64] |= 1 << (m % 64);
    if field.is_empty() || field == "*" {
        (0..MINUTES).for_each(|m| set(&mut bits, m));
        return Ok(bits);
    }
    for part in field.split('&') {
        let bad = || TimeSpecError::Time(part.to_string());
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                minute_of(a.trim()).ok_or_else(bad)?,
                minute_of(b.trim()).ok_or_else(bad)?,
            ),
            None => {
                let m = minute_of(part.trim()).ok_or_else(bad)?;
                (m, m)
            }
        };
        let mut m = a;
        loop {
            set(&mut bits, m);
            if m == b {
                break;
            }
            m = (m + 1) % MINUTES;
        }
    }
    Ok(bits)
}

fn minute_of(s: &str) -> Option<usize> {
    let (h, m) = s.split_once(':')?;
    let h: usize = h.parse().ok()?;
    let m: usize = m.parse().ok()?;
    // Asterisk accepts 24:00 as the end of the day.
    if h == 24 && m == 0 {
        return Some(MINUTES - 1);
    }
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn office_hours() {
        let t = TimeSpec::parse("09:00-17:00,mon-fri,*,*").unwrap();
        // 2026-08-03 is a Monday.
        assert!(t.matches(at("2026-08-03T09:00:00Z"), &TimeZone::UTC));
        assert!(t.matches(at("2026-08-03T17:00:59Z"), &TimeZone::UTC));
        assert!(!t.matches(at("2026-08-03T17:01:00Z"), &TimeZone::UTC));
        assert!(!t.matches(at("2026-08-02T10:00:00Z"), &TimeZone::UTC));
    }

    #[test]
    fn never_and_always() {
        let never = TimeSpec::parse("*,*,31,feb").unwrap();
        let always = TimeSpec::parse("*|*|*|*").unwrap();
        let now = at("2026-02-28T12:00:00Z");
        assert!(!never.matches(now, &TimeZone::UTC));
        assert!(always.matches(now, &TimeZone::UTC));
    }

    #[test]
    fn wrapping_ranges_and_zone() {
        let t = TimeSpec::parse("22:00-06:00,fri-mon,*,*,Europe/Berlin").unwrap();
        // 2026-08-08 is a Saturday; 23:30 in Berlin is 21:30 UTC.
        assert!(t.matches(at("2026-08-08T21:30:00Z"), &TimeZone::UTC));
        assert!(!t.matches(at("2026-08-08T12:00:00Z"), &TimeZone::UTC));
    }

    #[test]
    fn errors() {
        assert!(TimeSpec::parse("25:00-26:00,*,*,*").is_err());
        assert!(TimeSpec::parse("*,funday,*,*").is_err());
        assert!(TimeSpec::parse("*,*,*,*,Not/AZone").is_err());
    }
}

//! RFC 3339 timestamps (an image config's `created`) to unix seconds, by hand: the one
//! date format the service reads does not justify a date crate.
//!
//! Accepted: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `t`/space for `T` and `z` for
//! `Z` (RFC 3339 §5.6 allows both), any number of fractional digits (Go writes up to 9;
//! they are truncated to whole seconds). Leap seconds (`:60`) count as the second after.
//! Years are 0000–9999, also in UTC (an offset that moves the instant
//! out of them is refused), so the result is within `i64` and [`format`] writes it back. Fake dates are kept as
//! they are: 1970-01-01 (ko, reproducible builds) and 1980-01-01 or earlier (Jib's "48
//! years ago") are valid timestamps and come back unchanged.

/// Unix seconds of `text`, or `None` when it is not an RFC 3339 date-time.
pub fn parse(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let year = num(0, 4)?;
    let month = num(5, 2)?;
    let day = num(8, 2)?;
    let hour = num(11, 2)?;
    let minute = num(14, 2)?;
    let second = num(17, 2)?;
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None;
        }
    }
    let offset = match b.get(at..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() - at == 6 && b[at + 3] == b':' => {
            let (h, m) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'+' {
                minutes
            } else {
                -minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60;
    // The offset can move the instant out of the years 0000-9999 in UTC, which `format`
    // could not write back as RFC 3339 ("10000-01-01…", "-001-12-31…").
    (FIRST..=LAST).contains(&seconds).then_some(seconds)
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the instants [`format`] can write.
const FIRST: i64 = -62_167_219_200;
const LAST: i64 = 253_402_300_799;

/// Unix seconds as RFC 3339 in UTC (`1970-01-01T00:00:00Z`), for answers and tables.
pub fn format(seconds: i64) -> String {
    let mut out = String::with_capacity(20);
    write(&mut out, seconds);
    out
}

/// [`format`] appended to `out` (no allocation per date in a long answer).
pub fn write(out: &mut String, seconds: i64) {
    use std::fmt::Write as _;
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    );
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm,
/// counting in 400-year eras of 146097 days that start on March 1st).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of a count of days since 1970-01-01 (the inverse of
/// `days_from_civil`; also behind `history::date`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_dates() {
        // (text, unix seconds computed by `date -u -d TEXT +%s`)
        let table: &[(&str, i64)] = &[
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:01z", 1),
            ("1969-12-31T23:59:59Z", -1),
            // Jib's fixed date: the epoch plus one second, "48 years ago" in the UI.
            ("1970-01-01T00:00:01Z", 1),
            ("1980-01-01T00:00:00Z", 315_532_800),
            ("2024-02-29T12:34:56Z", 1_709_210_096),
            ("2024-02-29t12:34:56Z", 1_709_210_096),
            ("2024-02-29 12:34:56Z", 1_709_210_096),
            ("2023-06-01T10:20:30.123456789Z", 1_685_614_830),
            ("2023-06-01T10:20:30.5Z", 1_685_614_830),
            ("2023-06-01T12:20:30+02:00", 1_685_614_830),
            ("2023-06-01T05:50:30-04:30", 1_685_614_830),
            ("2023-06-01T10:20:30.000+00:00", 1_685_614_830),
            ("2016-12-31T23:59:60Z", 1_483_228_800),
            ("0001-01-01T00:00:00Z", -62_135_596_800),
            ("9999-12-31T23:59:59Z", 253_402_300_799),
            ("2000-03-01T00:00:00Z", 951_868_800),
        ];
        for &(text, want) in table {
            assert_eq!(parse(text), Some(want), "{text}");
        }
    }

    /// Found by the `cleanup` fuzz target's check: the API wrote these back as
    /// `10000-01-01T23:58:59Z` and `-001-12-31T23:00:00Z`, which are not RFC 3339.
    #[test]
    fn offsets_that_leave_the_years_0000_to_9999_are_refused() {
        assert_eq!(parse("9999-12-31T23:59:59-23:59"), None);
        assert_eq!(parse("0000-01-01T00:00:00+01:00"), None);
        assert_eq!(parse("9999-12-31T23:59:59-00:00"), Some(LAST));
        assert_eq!(parse("0000-01-01T01:00:00+01:00"), Some(FIRST));
        assert_eq!(format(FIRST), "0000-01-01T00:00:00Z");
        assert_eq!(format(LAST), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn invalid_dates() {
        let table = [
            "",
            "2023-06-01",
            "2023-06-01T10:20:30",
            "2023-06-01T10:20:30+0200",
            "2023-06-01T10:20:30+02",
            "2023-06-01T10:20:30.Z",
            "2023-06-01T10:20:30ZZ",
            "2023-13-01T10:20:30Z",
            "2023-02-29T10:20:30Z",
            "2023-04-31T10:20:30Z",
            "2023-06-00T10:20:30Z",
            "2023-06-01T24:00:00Z",
            "2023-06-01T10:60:00Z",
            "2023-06-01T10:20:61Z",
            "2023-06-01T10:20:30+24:00",
            "2023/06/01T10:20:30Z",
            "2023-06-01X10:20:30Z",
            "+2023-06-01T10:20:30Z",
            "２023-06-01T10:20:30Z",
            "2023-06-01T10:20:30.1é",
        ];
        for text in table {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn format_round_trips() {
        for seconds in [0, 1, -1, 315_532_800, 1_709_210_096, 253_402_300_799] {
            assert_eq!(parse(&format(seconds)), Some(seconds), "{seconds}");
        }
        assert_eq!(format(1_685_614_830), "2023-06-01T10:20:30Z");
    }

    /// A cheap fuzz: every prefix and every one-byte change of valid dates either
    /// parses or is refused, never panics, and what parses formats back to a date.
    #[test]
    fn mutations_never_panic() {
        let seeds = ["2023-06-01T12:20:30.123+02:00", "1970-01-01T00:00:00Z"];
        for seed in seeds {
            for end in 0..=seed.len() {
                let _ = parse(&seed[..end]);
            }
            let bytes = seed.as_bytes();
            for i in 0..bytes.len() {
                for b in [b'0', b'9', b'-', b':', b'+', b'Z', b'.', 0xff, b' '] {
                    let mut m = bytes.to_vec();
                    m[i] = b;
                    if let Ok(text) = std::str::from_utf8(&m) {
                        if let Some(s) = parse(text) {
                            assert!(parse(&format(s)) == Some(s), "{text}");
                        }
                    }
                }
            }
        }
    }
}

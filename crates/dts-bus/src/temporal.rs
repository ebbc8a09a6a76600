//! Calendar arithmetic for the encoders: days since the Unix epoch for a civil date (and back),
//! and the text forms of MySQL temporal values, including the zero dates no calendar has.
//!
//! `days_from_civil`/`civil_from_days` are the proleptic Gregorian algorithms of H. Hinnant
//! ("chrono-Compatible Low-Level Date Algorithms"): exact for every year 0..=9999.

/// Whether a MySQL date is a real calendar date (MySQL also stores `0000-00-00` and dates with
/// a zero month or day).
pub fn is_calendar_date(year: u16, month: u8, day: u8) -> bool {
    if !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    day <= days[usize::from(month - 1)]
}

/// Days since 1970-01-01 of a calendar date.
pub fn days_from_civil(year: u16, month: u8, day: u8) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = i64::from(year) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The calendar date of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD`.
pub fn date_text(year: u16, month: u8, day: u8) -> String {
    format!("{year:04}-{month:02}-{day:02}")
}

/// `.ffffff` cut to `digits` (0..=6) fractional digits; empty for 0 digits.
pub fn fraction_text(micros: u32, digits: u32) -> String {
    if digits == 0 {
        return String::new();
    }
    let digits = digits.min(6);
    let scaled = micros / 10u32.pow(6 - digits);
    format!(".{scaled:0width$}", width = digits as usize)
}

/// `YYYY-MM-DD HH:MM:SS[.f]`, with `digits` fractional digits.
#[allow(clippy::too_many_arguments)]
pub fn datetime_text(
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micros: u32,
    digits: u32,
) -> String {
    format!("{} {hour:02}:{minute:02}:{second:02}{}", date_text(year, month, day), fraction_text(micros, digits))
}

/// ISO-8601 UTC text of a TIMESTAMP (`2024-02-29T12:34:56.123456Z`), as Debezium's
/// `ZonedTimestamp` writes it, with `digits` fractional digits.
pub fn zoned_text(seconds: i64, micros: u32, digits: u32) -> String {
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        fraction_text(micros, digits)
    )
}

/// Parses [`zoned_text`] back into seconds and microseconds.
pub fn parse_zoned(text: &str) -> Option<(i64, u32)> {
    let t = text.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut dp = date.split('-');
    let (y, m, d) = (dp.next()?.parse::<u16>().ok()?, dp.next()?.parse::<u8>().ok()?, dp.next()?.parse::<u8>().ok()?);
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, b),
        None => (time, ""),
    };
    let mut tp = hms.split(':');
    let (h, mi, s) =
        (tp.next()?.parse::<i64>().ok()?, tp.next()?.parse::<i64>().ok()?, tp.next()?.parse::<i64>().ok()?);
    let micros = if frac.is_empty() {
        0
    } else {
        if frac.len() > 6 {
            return None;
        }
        frac.parse::<u32>().ok()? * 10u32.pow(6 - frac.len() as u32)
    };
    Some((days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + s, micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip_over_the_whole_mysql_range() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(days_from_civil(1000, 1, 1), -354_285);
        let mut day = days_from_civil(1, 1, 1);
        let last = days_from_civil(9999, 12, 31);
        while day <= last {
            let (y, m, d) = civil_from_days(day);
            assert!(is_calendar_date(y as u16, m, d));
            assert_eq!(days_from_civil(y as u16, m, d), day);
            day += 97;
        }
        assert!(!is_calendar_date(0, 0, 0));
        assert!(!is_calendar_date(2023, 2, 29));
        assert!(is_calendar_date(2000, 2, 29));
    }

    #[test]
    fn zoned_text_carries_the_column_fraction_and_parses_back() {
        assert_eq!(zoned_text(1_709_210_096, 123_456, 6), "2024-02-29T12:34:56.123456Z");
        assert_eq!(zoned_text(0, 0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(zoned_text(1, 500_000, 2), "1970-01-01T00:00:01.50Z");
        assert_eq!(parse_zoned("2024-02-29T12:34:56.123456Z"), Some((1_709_210_096, 123_456)));
        assert_eq!(parse_zoned("1970-01-01T00:00:01.50Z"), Some((1, 500_000)));
        assert_eq!(fraction_text(999_999, 6), ".999999");
        assert_eq!(fraction_text(1, 6), ".000001");
    }
}

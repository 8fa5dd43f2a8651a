//! Time stamps: RFC 3339 in records and JSON, "5 minutes ago" for people.

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    rustix::time::clock_gettime(rustix::time::ClockId::Realtime).tv_sec
}

/// Formats seconds since the epoch as RFC 3339 UTC (`2026-11-29T03:21:10Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Seconds and nanoseconds since the epoch, now.
pub fn now_nanos() -> (i64, u32) {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    (t.tv_sec, t.tv_nsec as u32)
}

/// Formats an instant as RFC 3339 UTC with nine digits of fraction
/// (`2026-11-29T03:21:10.000000042Z`, Go's `RFC3339Nano` without its
/// trimming): every such text has the same width, so that two compare as
/// their instants do.
pub fn rfc3339_nano(secs: i64, nanos: u32) -> String {
    let whole = rfc3339(secs);
    format!("{}.{nanos:09}Z", &whole[..whole.len() - 1])
}

/// Parses an instant as docker's `logs --since` and `--until` take one,
/// `now` being `(seconds, nanoseconds)` since the epoch: a duration before
/// now (Go's: `10m`, `1h30m`, `1.5s`, `250ms`), seconds since the epoch
/// (`1700000000`, `1700000000.5`), or an RFC 3339 date and time, its
/// time or parts of it left out (`2026-12-01`, `2026-12-01T15:04`,
/// `2026-12-01T15:04:05.123Z`, `...+01:00`); one without a zone is UTC.
pub fn parse_instant(text: &str, now: (i64, u32)) -> Option<(i64, u32)> {
    let as_nanos = |(s, n): (i64, u32)| i128::from(s) * 1_000_000_000 + i128::from(n);
    let from_nanos = |t: i128| {
        let secs = i64::try_from(t.div_euclid(1_000_000_000)).ok()?;
        Some((secs, t.rem_euclid(1_000_000_000) as u32))
    };
    if let Some(d) = parse_go_duration(text) {
        return from_nanos(as_nanos(now) - d);
    }
    if let Some((secs, frac)) = seconds_and_fraction(text) {
        return Some((secs.parse().ok()?, frac));
    }
    let (date, rest) = match text.split_once('T') {
        Some((d, r)) => (d, Some(r)),
        None => (text, None),
    };
    let number = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d) = (number(y)?, number(m)?, number(d)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let mut secs = days_from_civil(y, m as u32, d as u32) * 86_400;
    let mut nanos = 0;
    if let Some(rest) = rest {
        // The zone: `Z`, `+HH:MM` or `-HH:MM`; none is UTC.
        let (time, offset) = if let Some(t) = rest.strip_suffix('Z') {
            (t, 0)
        } else if let Some(at) = rest.rfind(['+', '-']) {
            let (t, zone) = rest.split_at(at);
            let (hh, mm) = zone[1..].split_once(':')?;
            if hh.len() != 2 || mm.len() != 2 {
                return None;
            }
            let (hh, mm) = (number(hh)?, number(mm)?);
            if hh > 23 || mm > 59 {
                return None;
            }
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            (t, sign * (hh * 3600 + mm * 60))
        } else {
            (rest, 0)
        };
        let (hms, frac) = match time.split_once('.') {
            Some((hms, f)) => (hms, Some(f)),
            None => (time, None),
        };
        let fields: Vec<&str> = hms.split(':').collect();
        if !(2..=3).contains(&fields.len()) || fields.iter().any(|f| f.len() != 2) {
            return None;
        }
        let (h, min) = (number(fields[0])?, number(fields[1])?);
        let sec = fields.get(2).map_or(Some(0), |s| number(s))?;
        if h > 23 || min > 59 || sec > 60 || (frac.is_some() && fields.len() != 3) {
            return None;
        }
        if let Some(f) = frac {
            nanos = fraction_nanos(f)?;
        }
        secs += h * 3600 + min * 60 + sec - offset;
    }
    Some((secs, nanos))
}

/// A duration as podman's `wait --interval` takes it: Go's (`250ms`,
/// `1.5s`), or a number alone, of milliseconds.
pub fn parse_interval(text: &str) -> Option<std::time::Duration> {
    let nanos = match text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
        true => i128::from(text.parse::<u32>().ok()?) * 1_000_000,
        false => parse_go_duration(text)?,
    };
    Some(std::time::Duration::from_nanos(u64::try_from(nanos).ok()?))
}

/// `SECONDS[.FRACTION]`, all digits: the seconds as text and the fraction
/// as nanoseconds.
fn seconds_and_fraction(text: &str) -> Option<(&str, u32)> {
    let (secs, frac) = match text.split_once('.') {
        Some((s, f)) => (s, fraction_nanos(f)?),
        None => (text, 0),
    };
    (!secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit())).then_some((secs, frac))
}

/// The digits after a decimal point (1 to 9 of them) as nanoseconds.
fn fraction_nanos(f: &str) -> Option<u32> {
    if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32))
}

/// Go's `time.ParseDuration` (what docker takes): decimal numbers, each
/// with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), as nanoseconds;
/// `0` alone is zero. A leading sign is refused (docker's "since" is in
/// the past).
fn parse_go_duration(text: &str) -> Option<i128> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total: i128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let units: [(&str, i128); 8] = [
            ("ns", 1),
            ("us", 1_000),
            ("µs", 1_000),
            ("μs", 1_000),
            ("ms", 1_000_000),
            ("s", 1_000_000_000),
            ("m", 60_000_000_000),
            ("h", 3_600_000_000_000),
        ];
        let (unit, scale) = units.iter().find(|(u, _)| after.starts_with(u))?;
        let (whole, frac) = match number.split_once('.') {
            Some((w, f)) => (w, f),
            None => (number, ""),
        };
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return None;
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut part = whole.checked_mul(*scale)?;
        let mut unit_of_digit = *scale;
        for b in frac.bytes() {
            unit_of_digit /= 10;
            part += i128::from(b - b'0') * unit_of_digit;
        }
        total = total.checked_add(part)?;
        rest = &after[unit.len()..];
    }
    Some(total)
}

/// The number of days in month `m` of year `y`.
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days-from-civil algorithm: days since 1970-01-01 of a
/// date of the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats a duration in the way `docker ps` does: "3 seconds", "5 minutes", "2 hours", "4 days".
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (n, unit) = match secs {
        0..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_922_470), "2026-11-29T03:21:10Z");
    }

    #[test]
    fn formats_instants_with_nanoseconds_in_one_width() {
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nano(1_795_922_470, 42),
            "2026-11-29T03:21:10.000000042Z"
        );
        assert!(rfc3339_nano(9, 999_999_999) < rfc3339_nano(10, 0));
    }

    #[test]
    fn parses_instants_as_dockers_since_takes_them() {
        let now = (1_795_922_470, 500_000_000);
        let at = |t: &str| parse_instant(t, now);
        // Durations before now.
        assert_eq!(at("10s"), Some((1_795_922_460, 500_000_000)));
        assert_eq!(at("1h30m"), Some((1_795_922_470 - 5400, 500_000_000)));
        assert_eq!(at("1.5s"), Some((1_795_922_469, 0)));
        assert_eq!(at("250ms"), Some((1_795_922_470, 250_000_000)));
        assert_eq!(at("0"), Some(now));
        // Seconds since the epoch.
        assert_eq!(at("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(at("1700000000.25"), Some((1_700_000_000, 250_000_000)));
        // RFC 3339 and its shorter forms.
        assert_eq!(at("2026-11-29T03:21:10Z"), Some((1_795_922_470, 0)));
        assert_eq!(at("2026-11-29T03:21:10"), Some((1_795_922_470, 0)));
        assert_eq!(
            at("2026-11-29T03:21:10.000000042Z"),
            Some((1_795_922_470, 42))
        );
        assert_eq!(at("2026-11-29T04:21:10+01:00"), Some((1_795_922_470, 0)));
        assert_eq!(at("2026-11-29T02:51:10-00:30"), Some((1_795_922_470, 0)));
        assert_eq!(at("2026-11-29T03:21"), Some((1_795_922_460, 0)));
        assert_eq!(at("2026-11-29"), Some((1_795_910_400, 0)));
        assert_eq!(at("2000-02-29"), Some((951_782_400, 0)));
        // Each format round-trips through the formatter.
        for secs in [0, 951_782_400, 1_795_922_470, 4_102_444_800] {
            assert_eq!(at(&rfc3339_nano(secs, 7)), Some((secs, 7)));
        }
        for bad in [
            "",
            "yesterday",
            "-10s",
            "10x",
            "1.s.5",
            "2026-13-01",
            "2026-02-30",
            "2026-11-29T25:00",
            "2026-11-29T03",
            "2026-11-29T03:21:10+0100",
            "26-11-29",
            "1700000000.1234567890",
            "2026-11-29T03:21.5",
        ] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_intervals_as_podmans_wait() {
        let ms = std::time::Duration::from_millis;
        assert_eq!(parse_interval("250ms"), Some(ms(250)));
        assert_eq!(parse_interval("1.5s"), Some(ms(1500)));
        assert_eq!(parse_interval("100"), Some(ms(100)));
        for bad in ["", "-1s", "1x", "fast"] {
            assert_eq!(parse_interval(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(125), "2 minutes");
        assert_eq!(human_duration(7200), "2 hours");
        assert_eq!(human_duration(-5), "0 seconds");
    }
}

//! The validity dates of a certificate (RFC 5280 `Validity`), read from its DER without a
//! general X.509 parser: `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
//! OPTIONAL, serialNumber, signature, issuer, validity SEQUENCE { notBefore, notAfter } … } … }`.
//! Anything else — a truncated or oddly encoded certificate — gives `None`: rustls has already
//! accepted the pair, so the dates are only for warnings and `/metrics`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub type Unix = i64;

/// A certificate's `notBefore` and `notAfter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The first second it is valid.
    pub not_before: Unix,
    /// The last second it is valid.
    pub not_after: Unix,
}

/// How soon before `notAfter` a warning is logged.
pub const EXPIRES_SOON: Unix = 14 * 86_400;

/// One DER element: its tag, its content, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The validity of a DER certificate.
pub fn validity(der: &[u8]) -> Option<Validity> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, certificate, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = element(certificate)? else {
        return None;
    };
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs)?.2;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        tbs = element(tbs)?.2;
    }
    let (SEQUENCE, dates, _) = element(tbs)? else {
        return None;
    };
    let (tag, before, rest) = element(dates)?;
    let not_before = time(tag, before)?;
    let (tag, after, _) = element(rest)?;
    let not_after = time(tag, after)?;
    Some(Validity {
        not_before,
        not_after,
    })
}

/// `UTCTime` (tag 0x17, `YYMMDDHHMMSSZ`, 1950–2049) or `GeneralizedTime` (0x18,
/// `YYYYMMDDHHMMSSZ`).
fn time(tag: u8, text: &[u8]) -> Option<Unix> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if text.len() == 12 => {
            let yy: i64 = text[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        0x18 if text.len() == 14 => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |i: usize| rest[i..i + 2].parse::<i64>().ok();
    let (month, day, h, m, s) = (num(0)?, num(2)?, num(4)?, num(6)?, num(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Now, in seconds since the epoch.
pub fn now() -> Unix {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// "2026-12-07 14:00:00 UTC".
pub fn shown(t: Unix) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(
        || t.to_string(),
        |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// What is wrong with the dates at `now`, if anything: expired, not yet valid, or expiring
/// within [`EXPIRES_SOON`].
pub fn problem(v: Validity, now: Unix) -> Option<String> {
    let dates = format!(
        "valid from {} to {}",
        shown(v.not_before),
        shown(v.not_after)
    );
    if now > v.not_after {
        Some(format!(
            "has expired ({dates}): clients refuse it; renew it"
        ))
    } else if now < v.not_before {
        Some(format!(
            "is not valid yet ({dates}): clients refuse it; check the clock or the certificate"
        ))
    } else if v.not_after - now < EXPIRES_SOON {
        Some(format!(
            "expires in {} days ({dates}): renew it",
            (v.not_after - now) / 86_400
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(before: (i32, u8, u8), after: (i32, u8, u8)) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.not_before = rcgen::date_time_ymd(before.0, before.1, before.2);
        p.not_after = rcgen::date_time_ymd(after.0, after.1, after.2);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn dates_are_read_from_real_certificates() {
        // UTCTime before 2050, GeneralizedTime from 2050 on.
        let v = validity(&cert((2024, 2, 29), (2051, 1, 1))).unwrap();
        assert_eq!(shown(v.not_before), "2024-02-29 00:00:00 UTC");
        assert_eq!(shown(v.not_after), "2051-01-01 00:00:00 UTC");
        let jan_2026 = 1_767_225_600;
        assert_eq!(problem(v, jan_2026), None);
        let old = validity(&cert((2020, 1, 1), (2021, 1, 1))).unwrap();
        assert!(problem(old, jan_2026).unwrap().starts_with("has expired"));
        let later = validity(&cert((2030, 1, 1), (2031, 1, 1))).unwrap();
        assert!(problem(later, jan_2026)
            .unwrap()
            .starts_with("is not valid yet"));
        let soon = validity(&cert((2025, 1, 1), (2026, 1, 8))).unwrap();
        assert!(problem(soon, jan_2026)
            .unwrap()
            .starts_with("expires in 7 days"));
    }

    #[test]
    fn anything_else_has_no_dates() {
        let der = cert((2024, 1, 1), (2025, 1, 1));
        for cut in [0, 1, 5, 40, der.len() / 2] {
            assert_eq!(validity(&der[..cut]), None, "{cut}");
        }
        assert_eq!(validity(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(time(0x17, b"991301000000Z"), None);
        assert_eq!(time(0x17, b"9912010000Z"), None);
        assert_eq!(time(0x18, b"20250101000000Z"), Some(1_735_689_600));
    }
}

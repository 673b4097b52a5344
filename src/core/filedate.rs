//! The file-date bounds every file passes, downloaded or imported: not before 2000-01-01, not
//! more than [`MAX_DAYS_AHEAD`] days after today (UTC).

use chrono::{Days, NaiveDate};

/// How many days after today (UTC) a file may be dated: Microsoft dates files by the Monday of
/// their week and publishes them days later, so a later date is a mistake or an attack (it
/// would become "latest" for every later run).
pub const MAX_DAYS_AHEAD: u64 = 2;

/// The earliest file date accepted (Microsoft's first files are from 2018).
pub const EARLIEST_DATE: (i32, u32, u32) = (2000, 1, 1);

/// Checks a file's date against today (UTC): not before 2000-01-01, not more than
/// [`MAX_DAYS_AHEAD`] days after today.
pub fn check_file_date(date: NaiveDate, today: NaiveDate) -> Result<(), String> {
    let (y, m, d) = EARLIEST_DATE;
    let earliest = NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
    let latest = today + Days::new(MAX_DAYS_AHEAD);
    if date < earliest {
        return Err(format!(
            "file date {date} is before {earliest}: check the file name or --date"
        ));
    }
    if date > latest {
        return Err(format!(
            "file date {date} is more than {MAX_DAYS_AHEAD} days after today ({today}, UTC): \
             a future date would make this file the newest for every later run; check the file \
             name or --date (delete a mistaken snapshot with `tagwall snapshots delete`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn file_dates_are_bounded_by_today() {
        let today = d(2026, 11, 30);
        assert!(check_file_date(d(2026, 12, 2), today).is_ok());
        assert!(check_file_date(d(2019, 1, 7), today).is_ok());
        let e = check_file_date(d(2099, 12, 31), today).unwrap_err();
        assert!(
            e.starts_with("file date 2099-12-31 is more than 2 days after today (2026-11-30, UTC)"),
            "{e}"
        );
        assert!(check_file_date(d(2026, 12, 3), today).is_err());
        assert!(check_file_date(d(1999, 12, 31), today).is_err());
    }
}

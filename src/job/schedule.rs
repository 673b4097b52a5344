//! `tagwall daemon`: runs a job at the times of a cron schedule until told to stop. The clock
//! and the stop signal are parameters, so tests drive it with `tokio::time::pause()` and a clock
//! that follows tokio's.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// How long a run in progress may go on after the stop signal; then it is abandoned.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The longest cron expression accepted.
pub const MAX_CRON_LEN: usize = 200;

/// A crontab schedule in UTC, with crontab's meaning (Vixie cron / POSIX): 5 fields (minute hour
/// day-of-month month day-of-week), weekday 0-7 with 0 and 7 both Sunday, names `MON`-`SUN` and
/// `JAN`-`DEC`, a restricted day-of-month and day-of-week matching either, and the aliases
/// `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`).
#[derive(Debug, Clone)]
pub struct CronSchedule {
    text: String,
    cron: Cron,
}

impl CronSchedule {
    /// Parses a crontab line's time fields; the error says what to write.
    pub fn parse(text: &str) -> Result<CronSchedule, String> {
        let shown = crate::core::text::quoted(text, 60);
        if text.len() > MAX_CRON_LEN {
            return Err(format!(
                "cron = {shown}: longer than {MAX_CRON_LEN} characters; write 5 fields (minute hour day month weekday), e.g. \"0 7 * * 1\""
            ));
        }
        let trimmed = text.trim();
        if !trimmed.starts_with('@') && trimmed.split_whitespace().count() != 5 {
            return Err(format!(
                "cron = {shown}: write crontab's 5 fields (minute hour day month weekday, UTC), e.g. \"0 7 * * 1\" for Mondays at 07:00, or @daily / @weekly"
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(trimmed)
            .map_err(|e| format!("cron = {shown} is not a valid crontab schedule: {e}"))?;
        Ok(CronSchedule {
            text: trimmed.to_string(),
            cron,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first scheduled time strictly after `now`, if any.
    pub fn next_after(&self, now: &DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(now, false).ok()
    }
}

/// A time as the daemon logs it: `Mon 2026-11-30 07:00:00 UTC`.
pub fn when(t: &DateTime<Utc>) -> String {
    t.format("%a %Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The wall clock the loop reads (`now`), which tests replace with one that follows tokio's
/// paused time.
pub trait Clock {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The stop signal came while waiting.
    Signal,
    /// The schedule has no further time.
    ScheduleEnded,
}

/// Runs `job` at each time of `schedule` (plus up to `random_delay`), and once at once when
/// `run_now`, until `stop` completes. A job in progress is never interrupted by the loop: `stop`
/// is only watched while waiting, so the step in progress finishes (its own writes are atomic).
pub async fn run<J, F, S>(
    schedule: &CronSchedule,
    random_delay: Duration,
    run_now: bool,
    clock: &dyn Clock,
    mut job: J,
    stop: S,
) -> Stopped
where
    J: FnMut() -> F,
    F: Future<Output = ()>,
    S: Future<Output = ()>,
{
    tokio::pin!(stop);
    if run_now && run_until_stopped(job(), stop.as_mut()).await {
        return Stopped::Signal;
    }
    loop {
        let now = clock.now();
        let Some(next) = schedule.next_after(&now) else {
            return Stopped::ScheduleEnded;
        };
        let delay = jitter(random_delay);
        tracing::info!(
            "next run at {}{}",
            when(&next),
            if delay.is_zero() {
                String::new()
            } else {
                format!(" + {} s random delay", delay.as_secs())
            }
        );
        let wait = (next - now).to_std().unwrap_or_default() + delay;
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut stop => {
                tracing::info!("stop requested while waiting: exiting");
                return Stopped::Signal;
            }
        }
        if run_until_stopped(job(), stop.as_mut()).await {
            return Stopped::Signal;
        }
    }
}

/// Runs `job` to its end, or, once `stop` completes, for at most [`STOP_GRACE`] more: whether
/// the stop came. An abandoned run leaves everything whole (the store writes in transactions,
/// files are renamed into place); a notification it was sending is not sent.
async fn run_until_stopped<F, S>(job: F, stop: std::pin::Pin<&mut S>) -> bool
where
    F: Future<Output = ()>,
    S: Future<Output = ()>,
{
    tokio::pin!(job);
    tokio::select! {
        () = &mut job => return false,
        () = stop => {}
    }
    tracing::info!(
        "stop requested during a run: it has {} s to finish",
        STOP_GRACE.as_secs()
    );
    match tokio::time::timeout(STOP_GRACE, job).await {
        Ok(()) => tracing::info!("the run finished; exiting"),
        Err(_) => tracing::warn!(
            "the run did not finish within {} s of the stop: abandoned (the store and the published files stay whole; a notification in progress is not sent)",
            STOP_GRACE.as_secs()
        ),
    }
    true
}

/// A random duration up to `max` (whole seconds).
fn jitter(max: Duration) -> Duration {
    // Whole seconds, 0 to max inclusive.
    let secs = (crate::fetch::client::jitter() * (max.as_secs() + 1) as f64) as u64;
    Duration::from_secs(secs.min(max.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A clock that starts at `start` and advances with tokio's clock (paused or not).
    pub struct TokioClock {
        start: DateTime<Utc>,
        origin: tokio::time::Instant,
    }

    impl TokioClock {
        /// A clock reading `start` now.
        pub fn new(start: DateTime<Utc>) -> TokioClock {
            TokioClock {
                start,
                origin: tokio::time::Instant::now(),
            }
        }
    }

    impl Clock for TokioClock {
        fn now(&self) -> DateTime<Utc> {
            self.start + chrono::Duration::from_std(self.origin.elapsed()).unwrap_or_default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_each_scheduled_time_and_stops_on_the_signal() {
        let schedule = CronSchedule::parse("0 7 * * *").unwrap();
        let start = DateTime::parse_from_rfc3339("2026-11-22T06:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = TokioClock::new(start);
        let runs: Arc<Mutex<Vec<DateTime<Utc>>>> = Arc::default();
        let seen = runs.clone();
        let stop = tokio::time::sleep(Duration::from_secs(3 * 86_400));
        let clock_ref = &clock;
        let ended = run(
            &schedule,
            Duration::ZERO,
            true,
            clock_ref,
            || {
                let seen = seen.clone();
                let at = clock_ref.now();
                async move {
                    seen.lock().unwrap().push(at);
                    // A job takes a while; the schedule continues from when it ends.
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            },
            stop,
        )
        .await;
        assert_eq!(ended, Stopped::Signal);
        let times: Vec<String> = runs
            .lock()
            .unwrap()
            .iter()
            .map(|t| t.format("%F %T").to_string())
            .collect();
        assert_eq!(
            times,
            [
                "2026-11-22 06:00:00",
                "2026-11-22 07:00:00",
                "2026-11-23 07:00:00",
                "2026-11-24 07:00:00"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_hangs_is_abandoned_soon_after_the_stop() {
        let schedule = CronSchedule::parse("0 7 * * *").unwrap();
        let clock = TokioClock::new(Utc::now());
        let started = tokio::time::Instant::now();
        // A notification to a server that never answers.
        let hung = || std::future::pending::<()>();
        let stop = tokio::time::sleep(Duration::from_secs(10));
        let ended = run(&schedule, Duration::ZERO, true, &clock, hung, stop).await;
        assert_eq!(ended, Stopped::Signal);
        assert_eq!(started.elapsed(), Duration::from_secs(10) + STOP_GRACE);
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_secs(30)) <= Duration::from_secs(30));
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    fn next(cron: &str, from: &str) -> String {
        let s = CronSchedule::parse(cron).unwrap();
        let from: DateTime<Utc> = from.parse().unwrap();
        when(&s.next_after(&from).unwrap())
    }

    #[test]
    fn weekdays_mean_what_crontab_says() {
        // 2026-11-30 is a Monday.
        let from = "2026-11-29T12:00:00Z";
        let days = [
            ("0", "Sun 2026-12-06"),
            ("1", "Mon 2026-11-30"),
            ("2", "Tue 2026-12-01"),
            ("3", "Wed 2026-12-02"),
            ("4", "Thu 2026-12-03"),
            ("5", "Fri 2026-12-04"),
            ("6", "Sat 2026-12-05"),
            ("7", "Sun 2026-12-06"),
            ("MON", "Mon 2026-11-30"),
            ("fri", "Fri 2026-12-04"),
            ("SUN", "Sun 2026-12-06"),
        ];
        for (dow, day) in days {
            assert_eq!(
                next(&format!("0 7 * * {dow}"), from),
                format!("{day} 07:00:00 UTC"),
                "weekday {dow}"
            );
        }
        assert_eq!(
            next("0 7 * * 1-5", "2026-12-04T08:00:00Z"),
            "Mon 2026-12-07 07:00:00 UTC"
        );
        assert_eq!(
            next("30 6 * * MON-FRI", "2026-12-05T00:00:00Z"),
            "Mon 2026-12-07 06:30:00 UTC"
        );
    }

    #[test]
    fn aliases_and_day_of_month_or_weekday() {
        let from = "2026-11-30T12:00:00Z";
        assert_eq!(next("@daily", from), "Tue 2026-12-01 00:00:00 UTC");
        assert_eq!(next("@weekly", from), "Sun 2026-12-06 00:00:00 UTC");
        assert_eq!(next("@hourly", from), "Mon 2026-11-30 13:00:00 UTC");
        // Vixie cron: a restricted day of month and weekday match either.
        assert_eq!(next("0 7 15 * 3", from), "Wed 2026-12-02 07:00:00 UTC");
    }

    #[test]
    fn bad_schedules_are_refused_with_what_to_write() {
        for bad in [
            "0 7 * * 8",
            "0 7 * *",
            "0 0 7 * * *",
            "61 7 * * *",
            "0 7 * * MONDAY",
            "",
            "@often",
        ] {
            let e = CronSchedule::parse(bad).unwrap_err();
            assert!(e.starts_with("cron = "), "{bad}: {e}");
        }
        let long = format!("0 7 * * {}", "1,".repeat(200_000));
        let e = CronSchedule::parse(&long).unwrap_err();
        assert!(e.contains("longer than 200"), "{e}");
        assert!(e.len() < 400, "{e}");
    }
}

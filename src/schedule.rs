//! `tagwall daemon`: runs a job at the times of a cron schedule until told to stop. The clock
//! and the stop signal are parameters, so tests drive it with `tokio::time::pause()` and a clock
//! that follows tokio's.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

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
    schedule: &cron::Schedule,
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
    if run_now {
        job().await;
    }
    loop {
        let now = clock.now();
        let Some(next) = schedule.after(&now).next() else {
            return Stopped::ScheduleEnded;
        };
        let delay = jitter(random_delay);
        tracing::info!(
            "next run at {}{}",
            next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            if delay.is_zero() {
                String::new()
            } else {
                format!(" + {} s random delay", delay.as_secs())
            }
        );
        let wait = (next - now).to_std().unwrap_or_default() + delay;
        tokio::select! {
            () = tokio::time::sleep(wait) => job().await,
            () = &mut stop => {
                tracing::info!("stop requested while waiting: exiting");
                return Stopped::Signal;
            }
        }
    }
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
        let schedule = crate::config::parse_cron("0 7 * * *").unwrap();
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

    #[test]
    fn jitter_stays_within_its_bound() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_secs(30)) <= Duration::from_secs(30));
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}

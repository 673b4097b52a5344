//! `GET /metrics`: requests by ruleset, file and status, bytes sent, and the age of each
//! ruleset's publish, in Prometheus' text format. Labels hold only configured ruleset names and
//! the names their manifests list (or the route), so their number is bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::SystemTime;

use super::content::Index;

/// Per (ruleset, file, status): requests and body bytes.
type Counts = BTreeMap<(String, String, u16), (u64, u64)>;

/// Request counters.
#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
}

/// A label value escaped for Prometheus.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one response of `bytes` body bytes.
    pub fn record(&self, ruleset: &str, file: &str, status: u16, bytes: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let entry = counts
            .entry((ruleset.to_string(), file.to_string(), status))
            .or_default();
        entry.0 += 1;
        entry.1 += bytes;
    }

    /// The exposition text; `dropped`: access log lines dropped while stderr was blocked.
    /// Only the rulesets `shown` takes appear; the server's own figures (routes, the access log)
    /// only when `whole`.
    pub fn render(
        &self,
        index: &Index,
        now: SystemTime,
        dropped: u64,
        shown: &dyn Fn(&str) -> bool,
        whole: bool,
    ) -> String {
        let visible = |r: &str| if r.is_empty() { whole } else { shown(r) };
        let mut out = String::from(
            "# HELP tagwall_serve_requests_total Requests answered, by ruleset, file and status.\n\
             # TYPE tagwall_serve_requests_total counter\n",
        );
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((r, f, s), (n, _)) in counts.iter().filter(|((r, _, _), _)| visible(r)) {
            let _ = writeln!(
                out,
                "tagwall_serve_requests_total{{ruleset=\"{}\",file=\"{}\",status=\"{s}\"}} {n}",
                label(r),
                label(f)
            );
        }
        out.push_str(
            "# HELP tagwall_serve_response_bytes_total Body bytes sent, by ruleset and file.\n\
             # TYPE tagwall_serve_response_bytes_total counter\n",
        );
        let mut bytes: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for ((r, f, _), (_, b)) in counts.iter().filter(|((r, _, _), _)| visible(r)) {
            *bytes.entry((r, f)).or_default() += b;
        }
        for ((r, f), b) in bytes {
            let _ = writeln!(
                out,
                "tagwall_serve_response_bytes_total{{ruleset=\"{}\",file=\"{}\"}} {b}",
                label(r),
                label(f)
            );
        }
        out.push_str(
            "# HELP tagwall_serve_publish_age_seconds Seconds since each served ruleset was published.\n\
             # TYPE tagwall_serve_publish_age_seconds gauge\n",
        );
        for (name, r) in index.rulesets.iter().filter(|(n, _)| shown(n)) {
            let age = now
                .duration_since(r.published)
                .map_or(0.0, |d| d.as_secs_f64());
            let _ = writeln!(
                out,
                "tagwall_serve_publish_age_seconds{{ruleset=\"{}\"}} {age:.0}",
                label(name)
            );
        }
        out.push_str(
            "# HELP tagwall_serve_ruleset_problem 1 while a ruleset's published directory cannot be served (the last good copy stays).\n\
             # TYPE tagwall_serve_ruleset_problem gauge\n",
        );
        for name in index.problems.keys().filter(|n| shown(n)) {
            let _ = writeln!(
                out,
                "tagwall_serve_ruleset_problem{{ruleset=\"{}\"}} 1",
                label(name)
            );
        }
        if !whole {
            return out;
        }
        let _ = writeln!(
            out,
            "# HELP tagwall_serve_access_log_dropped_total Access log lines dropped because stderr did not take them (serving never waits for the log).\n\
             # TYPE tagwall_serve_access_log_dropped_total counter\n\
             tagwall_serve_access_log_dropped_total {dropped}"
        );
        out
    }
}

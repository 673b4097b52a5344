//! `out/metrics.prom`: the run in Prometheus text format, for node_exporter's textfile collector.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::NaiveDate;

use crate::rules::summary::{RulesetStatus, Summary};

/// The metrics of a run. `newest` is each cloud's newest stored file date; `last_success` the
/// previous value of the success timestamp, kept when this run failed.
pub fn render(
    summary: &Summary,
    newest: &BTreeMap<&str, NaiveDate>,
    last_success: Option<&str>,
) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let now = chrono::DateTime::parse_from_rfc3339(&summary.finished).map_or(0, |t| t.timestamp());
    let success = if summary.exit_code == 1 {
        last_success.map(str::to_string)
    } else {
        Some(now.to_string())
    };
    metric(
        "tagwall_last_run_timestamp_seconds",
        "Unix time the last sync finished.",
        &[(String::new(), now.to_string())],
    );
    metric(
        "tagwall_last_run_exit_code",
        "Exit code of the last sync: 0 ok, 1 error, 3 withheld.",
        &[(String::new(), summary.exit_code.to_string())],
    );
    if let Some(t) = success {
        metric(
            "tagwall_last_success_timestamp_seconds",
            "Unix time of the last sync without error.",
            &[(String::new(), t)],
        );
    }
    let dates: Vec<(String, String)> = newest
        .iter()
        .map(|(cloud, d)| {
            (
                format!("{{cloud=\"{cloud}\"}}"),
                d.and_hms_opt(0, 0, 0)
                    .map_or(0, |t| t.and_utc().timestamp())
                    .to_string(),
            )
        })
        .collect();
    metric(
        "tagwall_snapshot_file_date_timestamp_seconds",
        "File date (Unix time, midnight UTC) of the newest stored snapshot per cloud.",
        &dates,
    );
    let mut entries = Vec::new();
    let mut addresses = Vec::new();
    let mut withheld = Vec::new();
    for r in &summary.rulesets {
        for (family, c) in &r.families {
            let labels = format!("{{ruleset=\"{}\",family=\"{family}\"}}", r.ruleset);
            entries.push((labels.clone(), c.entries.to_string()));
            // Prometheus values are floats: IPv6 counts are exact only up to 2^53.
            addresses.push((
                labels,
                format!("{:e}", c.addresses.parse::<f64>().unwrap_or(0.0)),
            ));
        }
        let w = u8::from(r.status == RulesetStatus::Withheld);
        withheld.push((format!("{{ruleset=\"{}\"}}", r.ruleset), w.to_string()));
    }
    metric(
        "tagwall_ruleset_entries",
        "CIDR entries published per ruleset and family.",
        &entries,
    );
    metric(
        "tagwall_ruleset_addresses",
        "Addresses covered by the published entries per ruleset and family.",
        &addresses,
    );
    metric(
        "tagwall_ruleset_withheld",
        "1 when the guard withheld the ruleset's newest change.",
        &withheld,
    );
    out
}

//! What people read, each writing into any `Write`: diffs between snapshots (text, Markdown,
//! JSON, HTML), a tag's history, the weekly reports and their "Your rulesets" section, a
//! ruleset's change in addresses, the run summary (`last-run.md`/`.html`), the Slack, Teams and
//! email messages, and the run's metrics.

pub mod address_changes;
pub mod chat;
pub mod diff_json;
pub mod diff_markdown;
pub mod diff_text;
pub mod history;
pub mod html;
pub mod metrics;
pub mod ruleset_diff;
pub mod rulesets_section;
pub mod run_summary;
pub mod run_summary_html;
pub mod table;

pub use crate::rules::manifest::json_count;

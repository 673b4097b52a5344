//! Output formats. Each writes into any `Write`, so commands, files and tests share them.

pub mod address_changes;
pub mod chat;
pub mod comment;
pub mod csv;
pub mod diff_json;
pub mod diff_markdown;
pub mod diff_text;
pub mod history;
pub mod html;
pub mod ipset;
pub mod iptables;
pub mod loadable;
pub mod metrics;
pub mod nft;
pub mod plain;
pub mod ruleset_diff;
pub mod ruleset_files;
pub mod rulesets_section;
pub mod run_summary;
pub mod run_summary_html;
pub mod table;
pub mod vendor;

pub use crate::rules::manifest::json_count;

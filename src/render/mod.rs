//! Output formats. Each writes into any `Write`, so commands, files and tests share them.
//!
//! - [`firewall`]: the fifteen ruleset formats the firewalls, proxies and tools load, each
//!   described once ([`crate::rules::format`]), every line checked against its loader's grammar
//!   before anything is published.
//! - [`report`]: what people read: diffs, histories, the weekly reports, the run summary and its
//!   messages, metrics.

pub mod firewall;
pub mod report;

pub use crate::rules::manifest::json_count;

//! tagwall keeps firewall allowlists in step with Microsoft's weekly "Azure IP Ranges and Service
//! Tags" files.
//!
//! # Layout
//! One folder per layer; lower layers never import higher ones (see ARCHITECTURE.md):
//! 1. [`core`]: the model (clouds, tags, snapshots, prefixes), outside text made safe to show,
//!    parsing, the canonical form, address sets, diffs, histories, aggregation. Pure.
//! 2. [`rules`]: rulesets, selection, allowlists, the guard, lookups, the manifest and the run
//!    summary with its statuses. Pure.
//! 3. [`render`]: output formats writing into `impl Write`.
//! 4. [`store`] (sqlx: the history store, its temporal algorithm, originals, importing files),
//!    [`fetch`] (reqwest: discovery, proxies, downloads), [`publish`] (the output directory's one
//!    owner: layout, atomic writes, the tools' checks, the one publish path, reports, baselines),
//!    [`notify`] (run summaries to a webhook — JSON, Slack, Teams — and by SMTP email),
//!    [`logsink`] (stderr that `serve` and `daemon` never wait for).
//! 5. [`job`]: `emit` and lookups over the store, one `sync` run, the daemon's schedule;
//!    [`serve`]: the published rulesets over HTTP.
//! 6. [`app`]: settings, argument parsing, command dispatch.

pub mod app;
pub mod core;
pub mod fetch;
pub mod job;
pub mod logsink;
pub mod notify;
pub mod publish;
pub mod render;
pub mod rules;
pub mod serve;
pub mod store;

//! tagwall keeps firewall allowlists in step with Microsoft's weekly "Azure IP Ranges and Service
//! Tags" files.
//!
//! # Layout
//! One folder per layer; a module imports its own submodules and lower layers only, and no two
//! files import each other (`tests/it/layers.rs` holds both; ARCHITECTURE.md has the table):
//! 1. [`core`]: the model (clouds, tags, snapshots, prefixes), outside text made safe to show,
//!    parsing, the canonical form, address sets, diffs, histories, aggregation. Pure.
//! 2. [`rules`]: rulesets and their formats, selection, allowlists, the guard, lookups, the
//!    manifest and the run summary with its statuses. Pure.
//! 3. [`render`]: output formats writing into `impl Write`.
//! 4. I/O, in this order: [`localfs`] (bounded reads of local files) and [`logsink`] (stderr
//!    that `serve` and `daemon` never wait for); [`store`] (sqlx: the history store, its
//!    temporal algorithm, originals, importing files); [`fetch`] (reqwest: discovery, proxies,
//!    downloads, into the store), [`publish`] (the output directory's one owner: layout,
//!    atomic writes, the tools' checks, the one publish path, reports, baselines) and
//!    [`notify`] (run summaries to a webhook — JSON, Slack, Teams — through the poster the job
//!    gives, `fetch`'s client; and by SMTP email).
//! 5. [`job`]: `emit` and lookups over the store, one `sync` run, the daemon's schedule;
//!    [`serve`]: the published rulesets over HTTP.
//! 6. [`app`]: settings, argument parsing, command dispatch.

pub mod app;
pub mod core;
pub mod fetch;
pub mod job;
pub mod localfs;
pub mod logsink;
pub mod notify;
pub mod publish;
pub mod render;
pub mod rules;
pub mod serve;
pub mod store;

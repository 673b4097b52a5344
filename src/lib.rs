//! tagwall keeps firewall allowlists in step with Microsoft's weekly "Azure IP Ranges and Service
//! Tags" files.
//!
//! # Layout
//! Lower layers never import higher ones (see ARCHITECTURE.md):
//! 1. [`model`]: clouds, tags, snapshots, prefixes; [`text`]: outside text made safe to show. No I/O.
//! 2. [`parse`], [`canonical`], [`temporal`], [`snapref`], [`rawcodec`], [`ranges`], [`diff`],
//!    [`history`], [`ruleset`], [`select`], [`aggregate`], [`allowlist`], [`lookup`],
//!    [`discover`], [`guard`]: pure logic.
//! 3. [`render`]: output formats writing into `impl Write`.
//! 4. [`store`] (sqlx), [`fetch`] (reqwest: discovery, proxies, downloads), [`artifacts`] (atomic files and directories), [`import`] (files into the
//!    store), [`emit`] (rulesets from the store into output directories; lookups).
//! 5. [`sync`]: one run of the scheduled job; [`schedule`]: the daemon's loop.
//! 6. [`config`], [`cli`], [`run`]: settings, argument parsing, command dispatch.

pub mod aggregate;
pub mod allowlist;
pub mod artifacts;
pub mod canonical;
pub mod cli;
pub mod config;
pub mod diff;
pub mod discover;
pub mod emit;
pub mod fetch;
pub mod guard;
pub mod history;
pub mod import;
pub mod lookup;
pub mod manifest;
pub mod model;
pub mod parse;
pub mod publish;
pub mod ranges;
pub mod rawcodec;
pub mod render;
pub mod ruleset;
pub mod run;
pub mod schedule;
pub mod select;
pub mod snapref;
pub mod store;
pub mod summary;
pub mod sync;
pub mod temporal;
pub mod text;
pub mod validate;

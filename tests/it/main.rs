//! The integration tests, one crate: one build and one link of the library for all of them
//! (5 min 3 s for 40 test binaries, 2 min 44 s for this one, same machine, lib included).
//! `tests/unprivileged.rs` stays a binary of its own: CI runs it as `nobody`.

#[path = "../common/mod.rs"]
mod common;

mod address_changes;
mod apply_hooks;
mod apply_interrupted;
mod approval_sticks;
mod bad_input;
mod cli;
mod cli_rules;
mod concurrency;
mod deploy;
mod diff_real;
mod emit_guard;
mod faults;
mod fetch;
mod firewall_tools;
mod grace;
mod guard;
mod hostile_names;
mod html_chromium;
mod layers;
mod lookup_published;
mod notify;
mod notify_stalls;
mod overdue;
mod permissions;
mod publishable_settings;
mod real_data;
mod reject;
mod replica_checks;
mod ruleset_diff;
mod rulesets_real;
mod serve;
mod serve_floods;
mod site;
mod site_pages;
mod special_prefixes;
mod store_contract;
mod store_props;
mod sync;
mod vanished_tag;
mod vendor_formats;

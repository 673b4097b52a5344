//! Orchestration over the store, the network and the output directory: `emit` (rulesets from
//! stored snapshots; lookups), `sync` (one run of the scheduled job), `schedule` (the daemon's
//! loop).

pub mod approve;
pub mod emit;
pub mod schedule;
pub mod sync;

//! Rulesets, pure: settings as typed rulesets, which tags they select, the allowlist they make,
//! the guard's verdict on a change, lookups, the manifest of a published directory, and the run
//! summary with its statuses. No I/O.

pub mod allowlist;
pub mod changes;
pub mod delivery;
pub mod format;
pub mod grace;
pub mod guard;
pub mod lookup;
pub mod manifest;
pub mod ruleset;
pub mod select;
pub mod summary;

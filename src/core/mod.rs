//! The pure core: the data model and the algorithms on snapshots. No I/O, no async.

pub mod aggregate;
pub mod buffers;
pub mod canonical;
pub mod diff;
pub mod digest;
pub mod filedate;
pub mod history;
pub mod host;
pub mod model;
pub mod parse;
pub mod ranges;
pub mod secret;
pub mod snapref;
pub mod special;
pub mod text;

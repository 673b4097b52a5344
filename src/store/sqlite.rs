//! The store's SQL for SQLite: each file of `store/sql/` a module of this one, reading the
//! `Db` and constants below (so `cargo fmt` and `clippy` see them; the compiler builds them once
//! per backend).

type Db = sqlx::Sqlite;
/// Takes the write lock at once, so concurrent importers wait (busy timeout) rather than fail.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
/// Binary columns as hex text.
const HEX_PREFIX: &str = "hex(prefix)";
const HEX_VERSION: &str = "hex(version_digest)";
const HEX_PREFIXES: &str = "hex(prefixes_digest)";
#[path = "sql/appends.rs"]
#[allow(clippy::duplicate_mod)] // the same SQL, built for each backend
mod appends;
#[path = "sql/delete.rs"]
#[allow(clippy::duplicate_mod)] // the same SQL, built for each backend
mod delete;
#[path = "sql/ops.rs"]
#[allow(clippy::duplicate_mod)] // the same SQL, built for each backend
mod ops;
#[path = "sql/published.rs"]
#[allow(clippy::duplicate_mod)] // the same SQL, built for each backend
mod published;
#[path = "sql/reads.rs"]
#[allow(clippy::duplicate_mod)] // the same SQL, built for each backend
mod reads;
#[path = "sql/validators.rs"]
#[allow(clippy::duplicate_mod)] // the same SQL, built for each backend
mod validators;
pub(super) use self::{appends::*, delete::*, ops::*, published::*, reads::*, validators::*};

//! The store's SQL for PostgreSQL: each file of `store/sql/` a module of this one, reading the
//! `Db` and constants below (so `cargo fmt` and `clippy` see them; the compiler builds them once
//! per backend).

type Db = sqlx::Postgres;
/// Importers serialise on the `import_lock` row each import updates first.
const BEGIN_WRITE: &str = "BEGIN";
/// Binary columns as hex text.
const HEX_PREFIX: &str = "encode(prefix, 'hex')";
const HEX_VERSION: &str = "encode(version_digest, 'hex')";
const HEX_PREFIXES: &str = "encode(prefixes_digest, 'hex')";
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

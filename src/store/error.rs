//! Why the store could not do what was asked: [`StoreError`].

use chrono::NaiveDate;

use super::rawcodec::RawError;
use crate::core::model::Cloud;
use crate::core::snapref::SnapRef;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("could not open the store at {url}: {message}")]
    Open {
        /// The store URL, password hidden.
        url: String,
        /// The driver's reason.
        message: String,
    },
    /// The embedded migrations could not be applied.
    #[error("could not bring the store at {url} up to date: {message}")]
    Migrate {
        /// The store URL, password hidden.
        url: String,
        /// The migrator's reason.
        message: String,
    },
    /// A query failed; the transaction in progress was rolled back.
    #[error("the store failed, nothing was changed: {0}")]
    Sql(#[from] sqlx::Error),
    /// No snapshot matches the reference.
    #[error(
        "no {cloud} snapshot matches {at}: run `tagwall snapshots --cloud {cloud}` to list them"
    )]
    NotFound {
        /// The cloud searched.
        cloud: Cloud,
        /// The reference, as the user wrote it.
        at: SnapRef,
    },
    /// Another run holds the store's run lock.
    #[error("another tagwall run holds the lock on {url} (waited {waited} s): it is probably still running; try again later or raise --lock-wait")]
    Busy {
        /// The store.
        url: String,
        /// Seconds waited.
        waited: u64,
    },
    /// The store holds data it could not have written.
    #[error("the store is damaged: {0}")]
    Damaged(String),
    /// Too many different files share one file date.
    #[error(
        "{0} already has 63 different files of this cloud: refusing another for the same date"
    )]
    TooManyForDate(NaiveDate),
    /// The file date cannot be placed in history.
    #[error("file date {0} is before 1970-01-01: pass the right --date")]
    DateOutOfRange(NaiveDate),
    /// A stored original could not be reproduced.
    #[error(transparent)]
    Raw(#[from] RawError),
}

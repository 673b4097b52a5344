//! Getting each cloud's newest ServiceTags file from Microsoft or a mirror, through the network
//! as it is (proxies, TLS inspection), into the store.
//!
//! - [`settings`]: `[fetch]` validated;
//! - [`proxy`]: the route (proxy, `NO_PROXY`, credentials as [`proxy::Secret`]s);
//! - [`client`]: the reqwest client (rustls, retries, size limit, conditional requests);
//! - [`error`]: failures in the operator's terms;
//! - [`doctor`]: the whole path checked step by step;
//! - this module: discovery (page, then probing, or a mirror directory) and [`fetch_cloud`].

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use self::discover::Published;
use crate::core::filedate;
use crate::core::model::{Cloud, SnapshotInfo};
use crate::store::import::{
    cloud_from_name, file_date_from_name, import_bytes, FileOutcome, ImportError,
};
use crate::store::{SnapRef, Store, StoreError, Validators};

pub mod client;
pub mod discover;
pub mod doctor;
pub mod error;
pub mod proxy;
pub mod settings;
pub mod tunnel;

pub use client::{Client, Download};
pub use error::FetchError;
pub use settings::{FetchSettings, FetchSpec, Mirror};

/// The `User-Agent` sent: tagwall and its version.
pub const USER_AGENT: &str = concat!("tagwall/", env!("CARGO_PKG_VERSION"));

/// How the newest file was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Listed on this page (the details page or a mirror's index).
    Page(String),
    /// Found by probing the folder day by day (the page failed or listed nothing).
    Probe,
    /// The newest file of a mirror directory.
    Directory,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Page(url) => write!(f, "listed on {url}"),
            Via::Probe => f.write_str("found by probing the folder"),
            Via::Directory => f.write_str("newest in the mirror directory"),
        }
    }
}

/// Where the newest file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A URL.
    Url(String),
    /// A file of a mirror directory.
    File(PathBuf),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Url(u) => f.write_str(u),
            Location::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// What discovery found for a cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// The newest file.
    Found {
        /// Its date.
        date: NaiveDate,
        /// Where it is.
        location: Location,
        /// How it was found.
        via: Via,
    },
    /// The cloud is retired: no new files will come.
    Retired {
        /// The last file's date.
        last: NaiveDate,
    },
}

/// Why a cloud could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Nothing was found.
    #[error("no {cloud} file found: {detail}")]
    NothingFound {
        /// The cloud.
        cloud: Cloud,
        /// Where was looked and what happened.
        detail: String,
    },
    /// A mirror file could not be read.
    #[error("could not read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The file was not imported (nothing of it was stored).
    #[error("{location}: {source}")]
    Import {
        /// Where it came from.
        location: Location,
        /// Why.
        source: ImportError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Finds `cloud`'s newest file: a mirror directory's newest file, else the newest file the
/// page lists (the first allowed URL of that date), else the newest file probing finds.
pub async fn discover(
    client: &Client,
    settings: &FetchSettings,
    cloud: Cloud,
    today: NaiveDate,
) -> Result<Discovery, Error> {
    if let (true, Some(last)) = (
        settings.from_microsoft(cloud),
        discover::retired_after(cloud),
    ) {
        return Ok(Discovery::Retired { last });
    }
    if let Some(Mirror::Dir(dir)) = &settings.mirror {
        return newest_in_dir(dir, cloud, today);
    }
    let page_url = settings
        .page(cloud)
        .expect("a URL mirror or Microsoft has a page");
    let page = client.page(&page_url).await;
    from_page(client, settings, cloud, today, &page_url, page.as_deref()).await
}

/// Discovery given what the page answered: the newest file it lists, else probing the folder.
/// (`doctor` reads the page itself and hands its answer in.)
pub async fn from_page(
    client: &Client,
    settings: &FetchSettings,
    cloud: Cloud,
    today: NaiveDate,
    page_url: &str,
    page: Result<&str, &FetchError>,
) -> Result<Discovery, Error> {
    let folder = settings.folder(cloud);
    let page_problem = match page {
        Ok(page) => {
            let files = dated_until(discover::files_in_page(cloud, page, &folder), today);
            if let Some(found) = pick(&files, &settings.allowed_hosts)? {
                return Ok(Discovery::Found {
                    date: found.date,
                    location: Location::Url(found.url.clone()),
                    via: Via::Page(page_url.to_string()),
                });
            }
            format!("{page_url} lists no {cloud} file")
        }
        Err(e) => {
            tracing::warn!("{cloud}: the page failed, probing {folder} instead: {e}");
            format!("{page_url} failed ({e})")
        }
    };
    for candidate in discover::probe_candidates(cloud, &folder, today) {
        discover::check_url(&candidate.url, &settings.allowed_hosts).map_err(FetchError::from)?;
        if client.head(&candidate.url).await?.is_some() {
            return Ok(Discovery::Found {
                date: candidate.date,
                location: Location::Url(candidate.url),
                via: Via::Probe,
            });
        }
    }
    Err(Error::NothingFound {
        cloud,
        detail: format!(
            "{page_problem}, and probing {folder} found no file dated {} to {today}",
            today - chrono::Days::new(discover::PROBE_DAYS)
        ),
    })
}

/// The files dated no later than [`filedate::MAX_DAYS_AHEAD`] days after today; the others
/// are left out with a warning (a future date would shadow every real file from then on).
fn dated_until(files: Vec<Published>, today: NaiveDate) -> Vec<Published> {
    files
        .into_iter()
        .filter(|f| date_acceptable(f.date, today, &f.url))
        .collect()
}

/// Whether a found file's date is acceptable ([`filedate::check_file_date`]); when it is not,
/// a warning names the file.
fn date_acceptable(date: NaiveDate, today: NaiveDate, what: &str) -> bool {
    match filedate::check_file_date(date, today) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("ignoring {}: {e}", crate::core::text::terminal(what));
            false
        }
    }
}

/// The first allowed URL of the newest date; an error when that date has only refused URLs
/// (an older file is never taken silently).
fn pick<'a>(
    files: &'a [Published],
    allowed: &[String],
) -> Result<Option<&'a Published>, FetchError> {
    let Some(newest) = files.first() else {
        return Ok(None);
    };
    let same_day = files.iter().take_while(|f| f.date == newest.date);
    let mut refused = None;
    for f in same_day {
        match discover::check_url(&f.url, allowed) {
            Ok(()) => return Ok(Some(f)),
            Err(e) => refused = refused.or(Some(e)),
        }
    }
    Err(refused.expect("at least one").into())
}

fn newest_in_dir(dir: &Path, cloud: Cloud, today: NaiveDate) -> Result<Discovery, Error> {
    if !dir.is_dir() {
        return Err(Error::Read {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        });
    }
    // Subdirectories too, so one tree can hold every cloud (e.g. Public/, China/).
    let files = crate::store::import::collect_files(&[dir.to_path_buf()]).map_err(|source| {
        Error::Read {
            path: dir.to_path_buf(),
            source,
        }
    })?;
    let newest = files
        .into_iter()
        .filter(|p| cloud_from_name(p) == Some(cloud))
        .filter_map(|p| Some((file_date_from_name(&p)?, p)))
        .filter(|(date, p)| date_acceptable(*date, today, &p.display().to_string()))
        .max();
    match newest {
        Some((date, path)) => Ok(Discovery::Found {
            date,
            location: Location::File(path),
            via: Via::Directory,
        }),
        None => Err(Error::NothingFound {
            cloud,
            detail: format!(
                "the mirror directory {} holds no ServiceTags_{}_YYYYMMDD.json or .json.gz (subdirectories included)",
                dir.display(),
                cloud.name()
            ),
        }),
    }
}

/// What fetching a cloud did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `--dry-run`: nothing stored. The snapshot of that date if it is stored already, else
    /// the file read and parsed (never imported), so that the run can check it as the real
    /// one would.
    DryRun {
        /// The stored snapshot of the file's date.
        stored: Option<SnapshotInfo>,
        /// The file as it would be imported (id 0).
        candidate: Option<Box<Candidate>>,
    },
    /// The server said the file is unchanged since it was imported (no body transferred).
    NotModified(SnapshotInfo),
    /// The file was new and is stored.
    Imported {
        /// The new snapshot.
        info: SnapshotInfo,
        /// Harmless oddities of the file.
        warnings: Vec<String>,
        /// Bytes transferred (as received).
        size: u64,
        /// sha256 of those bytes.
        sha256: String,
    },
    /// The file's content was already stored.
    AlreadyStored {
        /// The snapshot that holds it.
        info: SnapshotInfo,
        /// Bytes transferred.
        size: u64,
        /// sha256 of those bytes.
        sha256: String,
    },
    /// A retired cloud: nothing to fetch.
    Retired,
}

/// A file read and parsed but not stored (`--dry-run`).
#[derive(Debug, Clone)]
pub struct Candidate {
    /// What the snapshot would be (id 0: not stored).
    pub info: SnapshotInfo,
    /// Its content.
    pub snapshot: crate::core::model::Snapshot,
}

/// One cloud's fetch: what was found and what was done.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The cloud.
    pub cloud: Cloud,
    /// What discovery found.
    pub discovery: Discovery,
    /// What was done.
    pub outcome: Outcome,
    /// How old the newest file is, when it is overdue (older than `[fetch] overdue_days`).
    pub overdue: Option<i64>,
}

impl Fetched {
    /// Logs what the operator should know: an overdue newest file, oddities of an imported one.
    pub fn warn(&self) {
        if let Some(days) = self.overdue {
            tracing::warn!(
                "{}: the newest file found is {days} days old, but Microsoft publishes weekly: check the page or mirror (tagwall doctor)",
                self.cloud
            );
        }
        if let Outcome::Imported { warnings, .. } = &self.outcome {
            for w in warnings {
                tracing::warn!("{}: {w}", self.cloud);
            }
        }
    }
}

/// What [`fetch_cloud`] does with a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Download, validate and import it.
    Import,
    /// Download and validate it, store nothing: report what an import would do.
    DryRun,
}

impl Mode {
    /// [`Mode::DryRun`] when `dry_run` (`--dry-run`), else [`Mode::Import`].
    pub fn dry_run_if(dry_run: bool) -> Mode {
        if dry_run {
            Mode::DryRun
        } else {
            Mode::Import
        }
    }
}

/// Discovers, downloads (conditionally), validates and, as `mode` says, imports `cloud`'s
/// newest file.
pub async fn fetch_cloud(
    store: &Store,
    client: &Client,
    settings: &FetchSettings,
    cloud: Cloud,
    today: NaiveDate,
    mode: Mode,
) -> Result<Fetched, Error> {
    let discovery = discover(client, settings, cloud, today).await?;
    let (date, location) = match &discovery {
        Discovery::Retired { .. } => {
            return Ok(Fetched {
                cloud,
                discovery,
                outcome: Outcome::Retired,
                overdue: None,
            })
        }
        Discovery::Found { date, location, .. } => (*date, location.clone()),
    };
    let overdue = discover::overdue(cloud, date, today, settings.overdue_days);
    let outcome = if mode == Mode::DryRun {
        let stored = store.snapshots(Some(cloud)).await?;
        let stored = stored.into_iter().rev().find(|s| s.file_date == date);
        let candidate = match stored {
            Some(_) => None,
            None => Some(Box::new(candidate(client, &location, cloud, date).await?)),
        };
        Outcome::DryRun { stored, candidate }
    } else {
        match &location {
            Location::File(path) => import_file(store, path, cloud, date).await?,
            Location::Url(url) => download(store, client, url, cloud, date).await?,
        }
    };
    Ok(Fetched {
        cloud,
        discovery,
        outcome,
        overdue,
    })
}

/// Reads (or downloads) and parses the file at `location` without storing it.
async fn candidate(
    client: &Client,
    location: &Location,
    cloud: Cloud,
    date: NaiveDate,
) -> Result<Candidate, Error> {
    let import = |source: ImportError| Error::Import {
        location: location.clone(),
        source,
    };
    let (bytes, name) = match location {
        Location::File(path) => (read_file(path).await?, file_name(path).to_string()),
        Location::Url(url) => match client.download(url, None).await? {
            Download::Body(body) => (body.bytes, discover::file_name(cloud, date)),
            Download::NotModified => unreachable!("no validators were sent"),
        },
    };
    let raw = crate::core::parse::decompress(bytes).map_err(|e| import(e.into()))?;
    let parsed = crate::core::parse::parse(&raw, Some(cloud)).map_err(|e| import(e.into()))?;
    let snapshot = parsed.snapshot;
    let plain = crate::core::canonical::render_plain(&snapshot);
    let info = SnapshotInfo {
        id: 0,
        cloud,
        file_date: date,
        change_number: snapshot.change_number,
        tags: snapshot.tags.len() as i64,
        prefixes: snapshot.prefix_count() as i64,
        content_sha256: crate::core::digest::sha256_hex(&plain),
        sha256: crate::core::digest::sha256_hex(&raw),
        size: raw.len() as i64,
        source: name,
    };
    Ok(Candidate { info, snapshot })
}

/// A mirror directory's file, read with the one bounded reader.
async fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    crate::localfs::read_bounded_blocking(path)
        .await
        .map_err(|e| Error::Read {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })
}

/// A file's name without `.gz`, for the record.
fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .trim_end_matches(".gz")
}

async fn import_file(
    store: &Store,
    path: &Path,
    cloud: Cloud,
    date: NaiveDate,
) -> Result<Outcome, Error> {
    let bytes = read_file(path).await?;
    let size = bytes.len() as u64;
    let sha256 = crate::core::digest::sha256_hex(&bytes);
    let location = Location::File(path.to_path_buf());
    store_bytes(
        store,
        bytes,
        file_name(path),
        cloud,
        date,
        location,
        size,
        sha256,
    )
    .await
    .map(|(o, _)| o)
}

async fn download(
    store: &Store,
    client: &Client,
    url: &str,
    cloud: Cloud,
    date: NaiveDate,
) -> Result<Outcome, Error> {
    // Validators count only while the snapshot they led to is still stored.
    let mut validators = store.validators(url).await?;
    let mut known = None;
    if let Some(v) = &validators {
        match store.resolve(cloud, &SnapRef::Id(v.snapshot_id)).await {
            Ok(info) => known = Some(info),
            Err(StoreError::NotFound { .. }) => validators = None,
            Err(e) => return Err(e.into()),
        }
    }
    let body = match client.download(url, validators.as_ref()).await? {
        Download::NotModified => {
            return Ok(Outcome::NotModified(known.expect("validators were sent")));
        }
        Download::Body(body) => body,
    };
    let (size, sha256) = (body.bytes.len() as u64, body.sha256.clone());
    let name = discover::file_name(cloud, date);
    let (outcome, id) = store_bytes(
        store,
        body.bytes,
        &name,
        cloud,
        date,
        Location::Url(url.to_string()),
        size,
        sha256.clone(),
    )
    .await?;
    let v = Validators {
        etag: body.etag,
        last_modified: body.last_modified,
        sha256,
        snapshot_id: id,
    };
    store.save_validators(url, &v).await?;
    Ok(outcome)
}

#[allow(clippy::too_many_arguments)]
async fn store_bytes(
    store: &Store,
    bytes: Vec<u8>,
    name: &str,
    cloud: Cloud,
    date: NaiveDate,
    location: Location,
    size: u64,
    sha256: String,
) -> Result<(Outcome, i64), Error> {
    let import = |source: ImportError| Error::Import {
        location: location.clone(),
        source,
    };
    let gzipped = bytes.starts_with(&[0x1f, 0x8b]);
    let raw = crate::core::parse::decompress(bytes).map_err(|e| import(e.into()))?;
    // The very same bytes stored before (an unchanged mirror file, a server without validators):
    // nothing to parse or import. Uncompressed bytes were hashed as received already.
    let raw_sha = if gzipped {
        crate::core::digest::sha256_hex(&raw)
    } else {
        sha256.clone()
    };
    let stored = store.snapshots(Some(cloud)).await?;
    if let Some(info) = stored.into_iter().find(|s| s.sha256 == raw_sha) {
        let id = info.id;
        return Ok((Outcome::AlreadyStored { info, size, sha256 }, id));
    }
    Ok(
        match import_bytes(store, raw, name, date, Some(cloud))
            .await
            .map_err(import)?
        {
            FileOutcome::Imported { info, warnings } => {
                let id = info.id;
                (
                    Outcome::Imported {
                        info,
                        warnings,
                        size,
                        sha256,
                    },
                    id,
                )
            }
            FileOutcome::AlreadyStored { info, .. } => {
                let id = info.id;
                (Outcome::AlreadyStored { info, size, sha256 }, id)
            }
        },
    )
}

/// `Public  2025-07-28  new: imported as id:39 (4123456 bytes, sha256 0a1b2c3d4e5f)  URL (how)`.
pub fn line(f: &Fetched) -> String {
    format!("{:<16} {}", f.cloud.name(), describe(f))
}

/// [`line`] without the cloud.
pub fn describe(f: &Fetched) -> String {
    let (date, location, via) = match &f.discovery {
        Discovery::Retired { last } => {
            return format!(
            "retired: its last file is dated {last}; its history stays readable, nothing to fetch"
        )
        }
        Discovery::Found {
            date,
            location,
            via,
        } => (date, location, via),
    };
    let bytes =
        |size: &u64, sha: &str| format!("{size} bytes, sha256 {}", &sha[..12.min(sha.len())]);
    let what = match &f.outcome {
        Outcome::DryRun {
            stored: Some(info), ..
        } => format!(
            "up to date: the newest file is already stored as id:{} (nothing to download)",
            info.id
        ),
        Outcome::DryRun {
            candidate: Some(c), ..
        } => format!(
            "would import: new ({} tags, {} prefixes; checked below as the real run would)",
            c.info.tags, c.info.prefixes
        ),
        Outcome::DryRun { .. } => "would download: new".to_string(),
        Outcome::NotModified(info) => format!(
            "unchanged: not modified since it was stored as id:{}",
            info.id
        ),
        Outcome::Imported {
            info, size, sha256, ..
        } => {
            format!("new: imported as id:{} ({})", info.id, bytes(size, sha256))
        }
        Outcome::AlreadyStored { info, size, sha256 } => {
            let also = if info.file_date == *date {
                String::new()
            } else {
                format!(", same content as dated {}", info.file_date)
            };
            format!(
                "already stored as id:{}{also} ({})",
                info.id,
                bytes(size, sha256)
            )
        }
        Outcome::Retired => String::new(),
    };
    let overdue = f
        .overdue
        .map(|d| format!(" [overdue: {d} days old]"))
        .unwrap_or_default();
    format!("{date}  {what}  {location} ({via}){overdue}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn the_newest_allowed_url_is_picked_and_a_refused_newest_is_an_error() {
        let allowed = vec!["download.microsoft.com".to_string()];
        let p = |date, url: &str| Published {
            date,
            url: url.into(),
        };
        let files = [
            p(
                d(2025, 7, 28),
                "https://evil.example/ServiceTags_Public_20250728.json",
            ),
            p(
                d(2025, 7, 28),
                "https://download.microsoft.com/a/ServiceTags_Public_20250728.json",
            ),
            p(
                d(2025, 7, 21),
                "https://download.microsoft.com/a/ServiceTags_Public_20250721.json",
            ),
        ];
        assert_eq!(pick(&files, &allowed).unwrap().unwrap().url, files[1].url);
        let err = pick(&files[..1], &allowed).unwrap_err().to_string();
        assert!(err.contains("host evil.example is not allowed"), "{err}");
        assert!(pick(&[], &allowed).unwrap().is_none());
    }

    #[test]
    fn a_mirror_directory_gives_its_newest_file_of_the_cloud() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "ServiceTags_Public_20250714.json",
            "ServiceTags_Public_20250721.json.gz",
            "ServiceTags_China_20250728.json",
            "ServiceTags_Public_20250728.txt",
            "sub/ServiceTags_Public_20250707.json",
            "ServiceTags_Public_20991231.json",
            "notes.json",
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "{}").unwrap();
        }
        let Discovery::Found {
            date,
            location,
            via,
        } = newest_in_dir(dir.path(), Cloud::Public, d(2026, 11, 30)).unwrap()
        else {
            panic!("found nothing");
        };
        assert_eq!((date, via), (d(2025, 7, 21), Via::Directory));
        assert_eq!(
            location,
            Location::File(dir.path().join("ServiceTags_Public_20250721.json.gz"))
        );
        let err = newest_in_dir(dir.path(), Cloud::AzureGovernment, d(2026, 11, 30))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("holds no ServiceTags_AzureGovernment_YYYYMMDD.json"),
            "{err}"
        );
    }
}

//! Importing files from disk: finding them, dating them, parsing them and storing them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;

use crate::core::model::{Cloud, Snapshot, SnapshotInfo};
use crate::core::parse::{self, ParseError};
use crate::localfs::{read_bounded, ReadError};
use crate::store::{ContentParts, ImportOutcome, NewSnapshot, Prefetch, Store, StoreError};

/// What the user said about the files being imported.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// The cloud every file must be for (`--cloud`).
    pub cloud: Option<Cloud>,
    /// The file date to use instead of the one in the file name (`--date`).
    pub date: Option<NaiveDate>,
}

/// What importing one file did.
#[derive(Debug, Clone)]
pub enum FileOutcome {
    /// Stored as a new snapshot.
    Imported {
        /// The new snapshot.
        info: SnapshotInfo,
        /// Harmless oddities worth telling.
        warnings: Vec<String>,
    },
    /// The same content was already stored.
    AlreadyStored {
        /// The snapshot that holds it.
        info: SnapshotInfo,
        /// The file date this file would have had.
        file_date: NaiveDate,
    },
}

/// Why one file was not imported. Nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read, or is not a regular file.
    #[error(transparent)]
    Read(ReadError),
    /// The file is not a usable ServiceTags file.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The file date is out of range (in the future, or before 2000).
    #[error("{0}")]
    Date(String),
    /// Neither the name nor `--date` gives the file date.
    #[error(
        "no file date: name the file ServiceTags_<Cloud>_<YYYYMMDD>.json or pass --date YYYY-MM-DD"
    )]
    NoDate,
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ReadError> for ImportError {
    fn from(e: ReadError) -> Self {
        match e {
            // The import's own message: it says what a ServiceTags file should be.
            ReadError::TooLarge { .. } => ImportError::Parse(ParseError::TooLarge),
            other => ImportError::Read(other),
        }
    }
}

/// Expands files and directories (recursively) into the `*.json` and `*.json.gz` files they hold,
/// oldest file date first, so that a directory imports as a run of appended weeks. Each file and
/// directory is taken once, however many links lead to it (so a symlink loop ends); in a
/// directory only regular files are taken. Named files are taken whatever they are: a device,
/// FIFO or socket is then refused by [`crate::localfs::read_bounded`] with its name.
pub fn collect_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = HashSet::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files, &mut dirs)?;
        } else {
            files.push(path.clone());
        }
    }
    files.sort_by_key(|f| (file_date_from_name(f), f.clone()));
    // One path per file: the one with the earliest date in its name.
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, dirs: &mut HashSet<PathBuf>) -> std::io::Result<()> {
    if !dirs.insert(std::fs::canonicalize(dir)?) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        // Follows links: what matters is what the file is.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, out, dirs)?;
        } else if meta.is_file() && is_service_tags_name(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_service_tags_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".json") || name.ends_with(".json.gz")
}

/// The date in a name such as `ServiceTags_Public_20250728.json.gz`: the last `_YYYYMMDD`.
pub fn file_date_from_name(path: &Path) -> Option<NaiveDate> {
    let name = path.file_name()?.to_str()?;
    name.match_indices('_').rev().find_map(|(i, _)| {
        let digits = name.get(i + 1..i + 9)?;
        let after = name[i + 9..].chars().next();
        if digits.bytes().all(|b| b.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
        {
            NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
        } else {
            None
        }
    })
}

/// The cloud a name such as `ServiceTags_China_20250728.json` claims, if any.
pub fn cloud_from_name(path: &Path) -> Option<Cloud> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("ServiceTags_")?;
    rest.split('_').next()?.parse().ok()
}

/// A file read, dated, parsed and hashed: everything of an import but the store's part.
#[derive(Debug)]
pub struct ReadyFile {
    /// The canonical content (shared with the parts that are made from it beside the
    /// transaction, for a file imported alone).
    pub snapshot: Arc<Snapshot>,
    /// Harmless oddities worth telling.
    pub warnings: Vec<String>,
    /// The file date.
    pub file_date: NaiveDate,
    /// The file name, for the record.
    pub source: String,
    parts: ContentParts,
}

/// How many threads preparing one file may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// This thread only: other threads are preparing other files ([`Preparers`]).
    One,
    /// A second thread beside this one, on a machine with a core to spare: a file imported
    /// alone, such as the weekly one ([`ContentParts::beside_parse`]).
    Spare,
}

impl Threads {
    /// [`Threads::Spare`] when the machine has more than one core.
    pub fn for_one_file() -> Threads {
        match std::thread::available_parallelism() {
            Ok(n) if n.get() > 1 => Threads::Spare,
            _ => Threads::One,
        }
    }
}

/// Reads, dates, parses and hashes the file at `path` (blocking: run it off the runtime).
pub fn prepare_file(
    path: &Path,
    options: ImportOptions,
    threads: Threads,
) -> Result<ReadyFile, ImportError> {
    let bytes = read_bounded(path)?;
    let file_date = options
        .date
        .or_else(|| file_date_from_name(path))
        .ok_or(ImportError::NoDate)?;
    let raw = parse::decompress(bytes)?;
    let source = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("(unnamed)")
        .to_string();
    prepare_bytes(raw, source, file_date, options.cloud, threads)
}

/// Dates, parses and hashes one file's (uncompressed) bytes.
pub fn prepare_bytes(
    raw: Vec<u8>,
    source: String,
    file_date: NaiveDate,
    cloud: Option<Cloud>,
    threads: Threads,
) -> Result<ReadyFile, ImportError> {
    crate::core::filedate::check_file_date(file_date, chrono::Utc::now().date_naive())
        .map_err(ImportError::Date)?;
    let (snapshot, mut warnings, parts) = match threads {
        Threads::One => {
            let parsed = parse::parse(&raw, cloud)?;
            let parts = ContentParts::new(&parsed.snapshot, raw);
            (Arc::new(parsed.snapshot), parsed.warnings, parts)
        }
        Threads::Spare => ContentParts::beside_parse(raw, |raw| parse::parse_in_two(raw, cloud))?,
    };
    if let Some(named) = cloud_from_name(Path::new(&source)) {
        if named != snapshot.cloud {
            warnings.push(format!(
                "the name says {named} but the content is for {}: stored as {}",
                snapshot.cloud, snapshot.cloud
            ));
        }
    }
    Ok(ReadyFile {
        snapshot,
        warnings,
        file_date,
        source,
        parts,
    })
}

/// Stores a prepared file, using what `prefetch` read when it still holds.
pub async fn store_ready(
    store: &Store,
    ready: ReadyFile,
    prefetch: Prefetch,
) -> Result<FileOutcome, ImportError> {
    let (kept, parts) = ready.split();
    let new = NewSnapshot::from_parts(&kept.snapshot, parts, kept.file_date, &kept.source);
    let outcome = store.import_prefetched(new, prefetch).await?;
    Ok(kept.outcome(outcome))
}

/// What the store can read for importing a file of `cloud` before the file is parsed
/// ([`Store::prefetch_append`]), read while it is. Nothing when the cloud is not known yet or
/// the read fails: the import then reads for itself, and reports any error.
async fn prefetch(store: &Store, cloud: Option<Cloud>) -> Prefetch {
    let Some(cloud) = cloud else {
        return Prefetch::default();
    };
    store.prefetch_append(cloud).await.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "reading ahead for an import failed: it reads for itself");
        Prefetch::default()
    })
}

/// Prepares one file on the blocking pool while the store reads ahead for it, then stores it.
async fn prepare_and_store(
    store: &Store,
    cloud: Option<Cloud>,
    prepare: impl FnOnce() -> Result<ReadyFile, ImportError> + Send + 'static,
) -> Result<FileOutcome, ImportError> {
    let (ready, prefetch) =
        tokio::join!(tokio::task::spawn_blocking(prepare), prefetch(store, cloud));
    let ready = ready.map_err(|e| ImportError::Read(ReadError::Io(std::io::Error::other(e))))??;
    store_ready(store, ready, prefetch).await
}

/// A [`ReadyFile`] without the parts the store takes.
struct Kept {
    snapshot: Arc<Snapshot>,
    warnings: Vec<String>,
    file_date: NaiveDate,
    source: String,
}

impl ReadyFile {
    fn split(self) -> (Kept, ContentParts) {
        let kept = Kept {
            snapshot: self.snapshot,
            warnings: self.warnings,
            file_date: self.file_date,
            source: self.source,
        };
        (kept, self.parts)
    }
}

impl Kept {
    fn outcome(self, outcome: ImportOutcome) -> FileOutcome {
        match outcome {
            ImportOutcome::Imported(info) => FileOutcome::Imported {
                info,
                warnings: self.warnings,
            },
            ImportOutcome::AlreadyStored(info) => FileOutcome::AlreadyStored {
                info,
                file_date: self.file_date,
            },
        }
    }
}

/// Reads, parses and stores one file; on any error nothing of it is stored.
pub async fn import_file(
    store: &Store,
    path: &Path,
    options: ImportOptions,
) -> Result<FileOutcome, ImportError> {
    let owned = path.to_path_buf();
    let cloud = options.cloud.or_else(|| cloud_from_name(path));
    prepare_and_store(store, cloud, move || {
        prepare_file(&owned, options, Threads::for_one_file())
    })
    .await
}

/// Files stored in one transaction at most, when they are a run of appended weeks (measured on
/// the 38 Public files: 8 overlaps the store's work with the preparation best; see BENCHMARKS.md).
const RUN_FILES: usize = 8;

/// Prepared files each of `threads` preparing threads may have waiting (about 2.5 MB each once
/// compressed): with the file each thread is preparing, a whole next run is in flight while the
/// store writes this one, and memory stays bounded whatever the number of cores (three each on
/// two cores; see BENCHMARKS.md).
fn waiting_per_preparer(threads: usize) -> usize {
    RUN_FILES
        .saturating_sub(threads)
        .div_ceil(threads.max(1))
        .max(1)
}

/// Threads preparing files at most (fewer on a machine with fewer cores).
const MAX_PREPARERS: usize = 4;

/// Imports `files` in order, pipelined: the next files are read, parsed, hashed and compressed
/// on blocking threads ([`Preparers`]) while the store writes the ones before.
/// Consecutive files that append weeks to one cloud (a backfill) are stored up to [`RUN_FILES`]
/// per transaction ([`Store::import_appends`]); if such a transaction fails, its files are
/// imported again one by one, so each file's outcome is its own. `each` gets every file's
/// outcome, in order; a failed file does not stop the others.
pub async fn import_files(
    store: &Store,
    files: Vec<PathBuf>,
    options: ImportOptions,
    mut each: impl FnMut(&Path, Result<FileOutcome, ImportError>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let [one] = files.as_slice() {
        // The weekly case: the store reads ahead while the file is parsed.
        return each(one, import_file(store, one, options).await);
    }
    let mut preparers = Preparers::start(files, options);
    let mut group = Group::default();
    let mut result = Ok(());
    while let Some((path, ready)) = preparers.next().await {
        if !group.takes(&ready) {
            result = group.flush(store, options, &mut each).await;
        }
        group.items.push((path, ready));
        if result.is_ok() && group.storable() >= RUN_FILES {
            result = group.flush(store, options, &mut each).await;
        }
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = group.flush(store, options, &mut each).await;
    }
    result.and(preparers.stop().await)
}

/// Threads that read, parse, hash and compress the files, several at once, handing them over in
/// the files' order. Each thread takes every n-th file and holds at most
/// [`waiting_per_preparer`] prepared files waiting, so memory stays bounded.
struct Preparers {
    queues: Vec<tokio::sync::mpsc::Receiver<(PathBuf, Result<ReadyFile, ImportError>)>>,
    threads: Vec<tokio::task::JoinHandle<()>>,
    next: usize,
}

impl Preparers {
    fn start(files: Vec<PathBuf>, options: ImportOptions) -> Preparers {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = cores.clamp(1, MAX_PREPARERS).min(files.len().max(1));
        // Fewer files than cores (a single file, say): each thread may use a second core.
        let per_file = if 2 * n <= cores {
            Threads::Spare
        } else {
            Threads::One
        };
        let mut queues = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for k in 0..n {
            let (tx, rx) = tokio::sync::mpsc::channel(waiting_per_preparer(n));
            let mine: Vec<PathBuf> = files.iter().skip(k).step_by(n).cloned().collect();
            threads.push(tokio::task::spawn_blocking(move || {
                for path in mine {
                    let ready = prepare_file(&path, options, per_file).and_then(|mut ready| {
                        ready.parts.compress_now().map_err(ImportError::Store)?;
                        Ok(ready)
                    });
                    if tx.blocking_send((path, ready)).is_err() {
                        break;
                    }
                }
            }));
            queues.push(rx);
        }
        Preparers {
            queues,
            threads,
            next: 0,
        }
    }

    /// The next file in order, or `None` after the last.
    async fn next(&mut self) -> Option<(PathBuf, Result<ReadyFile, ImportError>)> {
        let k = self.next % self.queues.len();
        self.next += 1;
        self.queues[k].recv().await
    }

    /// Stops the threads (a thread still preparing finishes its file first).
    async fn stop(self) -> std::io::Result<()> {
        drop(self.queues);
        for thread in self.threads {
            thread.await.map_err(std::io::Error::other)?;
        }
        Ok(())
    }
}

/// Prepared files waiting to be stored together.
#[derive(Default)]
struct Group {
    items: Vec<(PathBuf, Result<ReadyFile, ImportError>)>,
    /// What the last run stored left for the next.
    carry: crate::store::RunCarry,
}

impl Group {
    fn storable(&self) -> usize {
        self.items.iter().filter(|(_, r)| r.is_ok()).count()
    }

    /// Whether `ready` continues the group's run: a failed file always does (it only waits for
    /// its turn to be told); a file of the same cloud must be dated after the group's last.
    fn takes(&self, ready: &Result<ReadyFile, ImportError>) -> bool {
        let Ok(next) = ready else {
            return true;
        };
        match self.items.iter().rev().find_map(|(_, r)| r.as_ref().ok()) {
            None => true,
            Some(last) => {
                last.snapshot.cloud == next.snapshot.cloud && last.file_date < next.file_date
            }
        }
    }

    /// Stores the group's files and tells each outcome, in order; the group is then empty.
    async fn flush(
        &mut self,
        store: &Store,
        options: ImportOptions,
        each: &mut impl FnMut(&Path, Result<FileOutcome, ImportError>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let items = std::mem::take(&mut self.items);
        if items.iter().filter(|(_, r)| r.is_ok()).count() < 2 {
            for (path, ready) in items {
                let outcome = match ready {
                    Ok(ready) => store_ready(store, ready, Prefetch::default()).await,
                    Err(e) => Err(e),
                };
                each(&path, outcome)?;
            }
            return Ok(());
        }
        let mut order = Vec::with_capacity(items.len());
        let (mut kept, mut parts) = (Vec::new(), Vec::new());
        for (path, ready) in items {
            match ready {
                Ok(ready) => {
                    let (k, p) = ready.split();
                    kept.push(k);
                    parts.push(p);
                    order.push((path, None));
                }
                Err(e) => order.push((path, Some(e))),
            }
        }
        let mut news: Vec<NewSnapshot<'_>> = kept
            .iter()
            .zip(parts)
            .map(|(k, p)| NewSnapshot::from_parts(&k.snapshot, p, k.file_date, &k.source))
            .collect();
        let outcomes = match store.import_appends(&mut news, &mut self.carry).await {
            Ok(Some(outcomes)) => outcomes.into_iter().map(Ok).collect(),
            Ok(None) => {
                let mut one_by_one = Vec::with_capacity(news.len());
                for new in news {
                    one_by_one.push(store.import(new).await);
                }
                one_by_one
            }
            Err(e) => {
                tracing::warn!(
                    files = kept.len(),
                    error = %e,
                    "storing a run of weeks in one transaction failed: importing them one by one"
                );
                drop(news);
                return Self::one_by_one(store, options, order, each).await;
            }
        };
        let mut stored = kept.into_iter().zip(outcomes);
        for (path, failed) in order {
            let outcome = match failed {
                Some(e) => Err(e),
                None => {
                    let (k, outcome) = stored.next().expect("one outcome per stored file");
                    outcome.map(|o| k.outcome(o)).map_err(ImportError::from)
                }
            };
            each(&path, outcome)?;
        }
        Ok(())
    }

    /// Reads and imports each file again on its own, after its run's transaction failed.
    async fn one_by_one(
        store: &Store,
        options: ImportOptions,
        order: Vec<(PathBuf, Option<ImportError>)>,
        each: &mut impl FnMut(&Path, Result<FileOutcome, ImportError>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        for (path, failed) in order {
            let outcome = match failed {
                Some(e) => Err(e),
                None => import_file(store, &path, options).await,
            };
            each(&path, outcome)?;
        }
        Ok(())
    }
}

/// Parses and stores one file's (uncompressed) bytes.
pub async fn import_bytes(
    store: &Store,
    raw: Vec<u8>,
    source: &str,
    file_date: NaiveDate,
    cloud: Option<Cloud>,
) -> Result<FileOutcome, ImportError> {
    let source = source.to_string();
    let expected = cloud.or_else(|| cloud_from_name(Path::new(&source)));
    prepare_and_store(store, expected, move || {
        prepare_bytes(raw, source, file_date, cloud, Threads::for_one_file())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_run_is_in_flight_whatever_the_cores() {
        for threads in 1..=MAX_PREPARERS {
            let in_flight = threads * (1 + waiting_per_preparer(threads));
            assert!(in_flight >= RUN_FILES, "{threads} threads: {in_flight}");
            assert!(
                in_flight <= RUN_FILES + threads,
                "{threads} threads: {in_flight}"
            );
        }
        assert_eq!(waiting_per_preparer(2), 3);
    }

    #[test]
    fn dates_and_clouds_come_from_microsofts_names() {
        let p = Path::new("x/ServiceTags_AzureGovernment_20260323.json.gz");
        assert_eq!(file_date_from_name(p), NaiveDate::from_ymd_opt(2026, 3, 23));
        assert_eq!(cloud_from_name(p), Some(Cloud::AzureGovernment));
        assert_eq!(file_date_from_name(Path::new("tags_20251301.json")), None);
        assert_eq!(file_date_from_name(Path::new("tags_202501011.json")), None);
        assert_eq!(file_date_from_name(Path::new("weekly.json")), None);
        assert_eq!(cloud_from_name(Path::new("weekly_20250101.json")), None);
    }
}

//! What `serve` serves: each configured ruleset as published, read whole into memory, every
//! file checked against the sha256 its manifest records, gzip-compressed once. A request reads
//! only this in-memory index, never the file system or the store, so it never sees a
//! half-replaced directory and no request path reaches a file name.
//!
//! Two [`Source`]s: the output directory (a ruleset's directory, re-read when it or its
//! manifest changes: a publish swaps the directory), or the store (the newest publish recorded
//! for each ruleset, re-read when a newer one is recorded: replicas without a shared disk serve
//! the same bytes). [`Content::refresh`] keeps serving the last good copy while a new one does
//! not check out, and stops serving a ruleset that is no longer published.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use bytes::Bytes;

use crate::publish::baseline::{check_files, read_files, Files};
use crate::rules::ruleset::Ruleset as Configured;
use crate::store::Store;

/// What identifies a published directory on disk: its device and inode, its manifest's inode,
/// size and modification time (seconds, nanoseconds). A publish swaps the directory.
type DirKey = (u64, u64, u64, u64, i64, i64);

/// What a served copy was read from: unchanged key, unchanged copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// A directory of the output directory.
    Dir(DirKey),
    /// A publish recorded in the store, by id.
    Publish(i64),
}

/// Where the published rulesets are read from (`[serve] source`).
#[derive(Debug)]
pub enum Source {
    /// The output directory (`[output] dir`).
    Output(PathBuf),
    /// The publishes recorded in the store.
    Store(Store),
}

/// What reading one ruleset gave: its copy (`None`: not published) or why it cannot be served.
type Read = Result<Option<Arc<Ruleset>>, Refused>;

/// Why a ruleset cannot be served now, and what to serve meanwhile when nothing was served yet.
#[derive(Debug)]
struct Refused {
    why: String,
    fallback: Option<Arc<Ruleset>>,
}

impl From<String> for Refused {
    fn from(why: String) -> Refused {
        Refused {
            why,
            fallback: None,
        }
    }
}

/// A stored publish as read.
enum Stored {
    /// It passed the checks.
    Good(Arc<Ruleset>),
    /// It failed them: never served.
    Refused(String),
    /// It could not be read now (the store, a publish pruned while it was read).
    Unreadable(String),
}

/// One file as served.
#[derive(Debug)]
pub struct File {
    /// The bytes.
    pub body: Bytes,
    /// The bytes gzip-compressed, when that is smaller.
    pub gzip: Option<Bytes>,
    /// The sha256 the manifest records (for `manifest.json`, its own).
    pub sha256: String,
    /// `Content-Type`.
    pub content_type: &'static str,
}

/// One ruleset as served.
#[derive(Debug)]
pub struct Ruleset {
    /// Every file by name, `manifest.json` included.
    pub files: BTreeMap<String, Arc<File>>,
    /// When it was published (the manifest's modification time, or the time the store
    /// recorded).
    pub published: SystemTime,
    /// The snapshot: `Public 2025-07-28 (id:4)`.
    pub snapshot: String,
    /// What it was read from.
    key: Key,
}

/// Everything served, as of one refresh.
#[derive(Debug, Default)]
pub struct Index {
    /// The rulesets served.
    pub rulesets: BTreeMap<String, Arc<Ruleset>>,
    /// Rulesets whose published directory cannot be served now, and why.
    pub problems: BTreeMap<String, String>,
}

/// The index and where it comes from.
#[derive(Debug)]
pub struct Content {
    source: Source,
    rulesets: Vec<Configured>,
    current: RwLock<Arc<Index>>,
    /// Stored publishes that failed their checks, by id, with why: not read again.
    refused: std::sync::Mutex<BTreeMap<i64, String>>,
}

/// `Content-Type` by file name.
pub fn content_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".csv") {
        "text/csv; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    }
}

fn file(name: &str, bytes: Vec<u8>, sha256: String) -> File {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::default(),
    );
    let gzip = gz
        .write_all(&bytes)
        .and_then(|()| gz.finish())
        .ok()
        .filter(|g| g.len() < bytes.len())
        .map(Bytes::from);
    File {
        body: Bytes::from(bytes),
        gzip,
        sha256,
        content_type: content_type(name),
    }
}

/// The directory's identity, `None` when it is not there.
fn key_of(dir: &Path) -> std::io::Result<Option<DirKey>> {
    let d = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let m = std::fs::symlink_metadata(dir.join(crate::rules::manifest::FILE))?;
    Ok(Some((
        d.dev(),
        d.ino(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
    )))
}

fn ruleset(files: Files, key: Key, published: SystemTime) -> Ruleset {
    let s = &files.manifest.snapshot;
    let snapshot = format!("{} {} (id:{})", s.cloud, s.file_date, s.id);
    let manifest_sha = crate::core::digest::sha256_hex(&files.manifest_bytes);
    let mut map = BTreeMap::new();
    for (f, (name, bytes)) in files.manifest.files.iter().zip(files.files) {
        map.insert(name.clone(), Arc::new(file(&name, bytes, f.sha256.clone())));
    }
    let manifest = crate::rules::manifest::FILE;
    map.insert(
        manifest.to_string(),
        Arc::new(file(manifest, files.manifest_bytes, manifest_sha)),
    );
    Ruleset {
        files: map,
        published,
        snapshot,
        key,
    }
}

impl Content {
    /// The configured `rulesets` from `source`, read once.
    pub async fn load(source: Source, rulesets: Vec<Configured>) -> Arc<Content> {
        let content = Arc::new(Content {
            source,
            rulesets,
            current: RwLock::new(Arc::new(Index::default())),
            refused: Default::default(),
        });
        content.refresh().await;
        content
    }

    /// The index now.
    pub fn current(&self) -> Arc<Index> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads what changed; true when the index changed.
    pub async fn refresh(self: &Arc<Self>) -> bool {
        let old = self.current();
        let reads = match &self.source {
            Source::Output(root) => {
                let (me, root, old) = (self.clone(), root.clone(), old.clone());
                tokio::task::spawn_blocking(move || me.read_output(&root, &old))
                    .await
                    .unwrap_or_else(|e| self.all_failed(&format!("the reader failed: {e}")))
            }
            Source::Store(store) => self.read_store(store, &old).await,
        };
        self.apply(&old, reads)
    }

    /// The same problem for every ruleset.
    fn all_failed(&self, why: &str) -> Vec<(String, Read)> {
        self.rulesets
            .iter()
            .map(|r| (r.name.clone(), Err(why.to_string().into())))
            .collect()
    }

    /// Makes the index of what was read: a ruleset that cannot be read now keeps its last good
    /// copy, its problem logged once.
    fn apply(&self, old: &Index, reads: Vec<(String, Read)>) -> bool {
        let mut next = Index::default();
        let mut changed = false;
        for (name, read) in reads {
            let previous = old.rulesets.get(&name);
            match read {
                Ok(Some(r)) => {
                    let replaced = previous.is_none_or(|p| !Arc::ptr_eq(p, &r));
                    changed |= replaced;
                    let r = match previous {
                        Some(p) if replaced => later_than(r, p),
                        _ => r,
                    };
                    next.rulesets.insert(name, r);
                }
                Ok(None) => changed |= previous.is_some(),
                Err(Refused { why, fallback }) => {
                    if old.problems.get(&name) != Some(&why) {
                        tracing::warn!("serve: ruleset {name}: {why}; the last good copy stays");
                        changed = true;
                    }
                    if let Some(p) = previous.or(fallback.as_ref()) {
                        changed |= previous.is_none_or(|q| !Arc::ptr_eq(p, q));
                        next.rulesets.insert(name.clone(), p.clone());
                    }
                    next.problems.insert(name, why);
                }
            }
        }
        changed |= old.problems.len() != next.problems.len();
        if changed {
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        }
        changed
    }

    /// Every ruleset from the output directory `root`.
    fn read_output(&self, root: &Path, old: &Index) -> Vec<(String, Read)> {
        self.rulesets
            .iter()
            .map(|spec| {
                let name = &spec.name;
                // Checked before and after the read: the marker is written before a directory
                // is swapped in, so a directory read while its commands run is never served.
                let unapplied = || crate::publish::applying::pending(root, name);
                let read = match unapplied() {
                    true => Err(UNAPPLIED.to_string().into()),
                    false => match read_dir(spec, &root.join(name), old.rulesets.get(name)) {
                        Ok(_) if unapplied() => Err(UNAPPLIED.to_string().into()),
                        read => read,
                    },
                };
                (name.clone(), read)
            })
            .collect()
    }

    /// Every ruleset from the store: its newest recorded publish that passes the checks (a
    /// newer one that fails is reported; with nothing served yet, the newest good one of the
    /// kept publishes is served meanwhile).
    async fn read_store(&self, store: &Store, old: &Index) -> Vec<(String, Read)> {
        let kept = match store.kept_publishes().await {
            Ok(n) => n,
            Err(e) => return self.all_failed(&format!("the store cannot be read: {e}")),
        };
        let mut reads: Vec<(String, Read)> = Vec::with_capacity(self.rulesets.len());
        for spec in &self.rulesets {
            let name = &spec.name;
            // Newest first.
            let mine: Vec<&(String, i64, String)> =
                kept.iter().filter(|(n, _, _)| n == name).collect();
            let read = match mine.first() {
                None => Ok(None),
                Some((_, id, at)) => match old.rulesets.get(name) {
                    Some(p) if p.key == Key::Publish(*id) => Ok(Some(p.clone())),
                    previous => match self.read_checked(store, spec, *id, at).await {
                        Stored::Good(r) => Ok(Some(r)),
                        Stored::Unreadable(why) => Err(why.into()),
                        Stored::Refused(why) if previous.is_some() => Err(why.into()),
                        Stored::Refused(why) => {
                            Err(self.older_good(store, spec, &mine[1..], why).await)
                        }
                    },
                },
            };
            reads.push((name.clone(), read));
        }
        reads
    }

    /// A stored publish read and checked; one that failed its checks is not read again.
    async fn read_checked(&self, store: &Store, spec: &Configured, id: i64, at: &str) -> Stored {
        let known = self
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned();
        if let Some(why) = known {
            return Stored::Refused(why);
        }
        let read = read_publish(store, spec, id, at).await;
        if let Stored::Refused(why) = &read {
            let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
            // Bounded: the store keeps only a few publishes a ruleset.
            if refused.len() >= 1024 {
                refused.clear();
            }
            refused.insert(id, why.clone());
        }
        read
    }

    /// With nothing served yet and the newest publish refused (`why`): the newest good one of
    /// `older`, served while the problem is reported.
    async fn older_good(
        &self,
        store: &Store,
        spec: &Configured,
        older: &[&(String, i64, String)],
        why: String,
    ) -> Refused {
        for (_, id, at) in older {
            if let Stored::Good(r) = self.read_checked(store, spec, *id, at).await {
                return Refused {
                    why: format!("{why}; serving the older publish {id} meanwhile"),
                    fallback: Some(r),
                };
            }
        }
        why.into()
    }

    /// Refreshes every `every` until `stop` completes.
    pub async fn watch(
        self: Arc<Self>,
        every: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(every) => {}
            }
            self.refresh().await;
        }
    }
}

/// `new`, replacing `old`, with a publish time in a later second than `old`'s: `Last-Modified`
/// has whole seconds, so two publishes within one second would otherwise share it and a client
/// sending `If-Modified-Since` would get 304 for a changed body.
fn later_than(new: Arc<Ruleset>, old: &Ruleset) -> Arc<Ruleset> {
    let second = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    if second(new.published) > second(old.published) {
        return new;
    }
    let published =
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(second(old.published) + 1);
    Arc::new(Ruleset {
        files: new.files.clone(),
        published,
        snapshot: new.snapshot.clone(),
        key: new.key,
    })
}

/// Why a directory whose `apply` commands have not finished is not served.
const UNAPPLIED: &str =
    "its apply commands have not finished (a publish in progress, or one a stopped run left for the next run to apply)";

/// A ruleset's directory as served: the previous copy when the directory did not change, a new
/// one when it did and checks out, `None` when it is not published.
fn read_dir(spec: &Configured, dir: &Path, previous: Option<&Arc<Ruleset>>) -> Read {
    let name = &spec.name;
    let key = match key_of(dir) {
        Ok(None) => return Ok(None),
        Ok(Some(k)) => Key::Dir(k),
        Err(e) => return Err(format!("{} cannot be read: {e}", dir.display()).into()),
    };
    if let Some(p) = previous.filter(|p| p.key == key) {
        return Ok(Some(p.clone()));
    }
    let files = read_files(dir, name)
        .and_then(|f| crate::publish::served::check(spec, &f).map(|()| f))
        .map_err(|why| format!("{}: {why}", dir.display()))?;
    // Read again: a directory swapped while it was read is read at the next refresh.
    let published = std::fs::metadata(dir.join(crate::rules::manifest::FILE))
        .and_then(|m| m.modified())
        .map_err(|e| format!("{} cannot be read: {e}", dir.display()))?;
    if key_of(dir).ok().flatten().map(Key::Dir) != Some(key) {
        return Err(format!("{} changed while it was read", dir.display()).into());
    }
    Ok(Some(serving(name, files, key, published)))
}

/// A publish recorded in the store, checked like a directory and as its publisher checked the
/// files (`publish::served`).
async fn read_publish(store: &Store, spec: &Configured, id: i64, at: &str) -> Stored {
    let what = format!("the store's publish {id}");
    let mut stored = match store.publish_files(id).await {
        Ok(s) => s,
        Err(e) => return Stored::Unreadable(format!("{what} cannot be read: {e}")),
    };
    let manifest = crate::rules::manifest::FILE;
    let Some(at_manifest) = stored.iter().position(|(n, _)| n == manifest) else {
        // A newer publish replaced it while it was read: the next refresh reads that one.
        return Stored::Unreadable(format!("{what} has no {manifest}"));
    };
    let (_, manifest_bytes) = stored.swap_remove(at_manifest);
    let mut stored: BTreeMap<String, Vec<u8>> = stored.into_iter().collect();
    let checked = check_files(&spec.name, manifest_bytes, |file| {
        stored
            .remove(file)
            .ok_or_else(|| format!("{file} is missing"))
    })
    .and_then(|files| match stored.keys().next() {
        // A file the manifest does not name was put there by someone else.
        Some(extra) => Err(format!(
            "it holds {}, which its manifest.json does not name",
            crate::core::text::quoted(extra, 80)
        )),
        None => Ok(files),
    })
    .and_then(|f| crate::publish::served::check(spec, &f).map(|()| f));
    let files = match checked {
        Ok(f) => f,
        Err(why) => return Stored::Refused(format!("{what}: {why}")),
    };
    match chrono::DateTime::parse_from_rfc3339(at) {
        Ok(t) => Stored::Good(serving(
            &spec.name,
            files,
            Key::Publish(id),
            SystemTime::from(t),
        )),
        Err(e) => Stored::Refused(format!(
            "{what}: its time {} is not RFC 3339 ({e})",
            crate::core::text::quoted(at, 40)
        )),
    }
}

/// The ruleset as served, logged.
fn serving(name: &str, files: Files, key: Key, published: SystemTime) -> Arc<Ruleset> {
    tracing::info!(
        "serve: ruleset {name}: serving {} ({} files)",
        files.manifest.snapshot.file_date,
        files.files.len() + 1
    );
    Arc::new(ruleset(files, key, published))
}

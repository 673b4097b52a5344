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
type Read = Result<Option<Arc<Ruleset>>, String>;

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
    names: Vec<String>,
    current: RwLock<Arc<Index>>,
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
    /// The rulesets `names` from `source`, read once.
    pub async fn load(source: Source, names: Vec<String>) -> Arc<Content> {
        let content = Arc::new(Content {
            source,
            names,
            current: RwLock::new(Arc::new(Index::default())),
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
        self.names
            .iter()
            .map(|n| (n.clone(), Err(why.to_string())))
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
                    changed |= previous.is_none_or(|p| !Arc::ptr_eq(p, &r));
                    next.rulesets.insert(name, r);
                }
                Ok(None) => changed |= previous.is_some(),
                Err(why) => {
                    if old.problems.get(&name) != Some(&why) {
                        tracing::warn!("serve: ruleset {name}: {why}; the last good copy stays");
                        changed = true;
                    }
                    if let Some(p) = previous {
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
        self.names
            .iter()
            .map(|name| {
                let read = read_dir(name, &root.join(name), old.rulesets.get(name));
                (name.clone(), read)
            })
            .collect()
    }

    /// Every ruleset from the store: its newest recorded publish.
    async fn read_store(&self, store: &Store, old: &Index) -> Vec<(String, Read)> {
        let newest = match store.newest_publishes().await {
            Ok(n) => n,
            Err(e) => return self.all_failed(&format!("the store cannot be read: {e}")),
        };
        let mut reads = Vec::with_capacity(self.names.len());
        for name in &self.names {
            let read = match newest.iter().find(|(n, _, _)| n == name) {
                None => Ok(None),
                Some((_, id, at)) => match old.rulesets.get(name) {
                    Some(p) if p.key == Key::Publish(*id) => Ok(Some(p.clone())),
                    _ => read_publish(store, name, *id, at).await,
                },
            };
            reads.push((name.clone(), read));
        }
        reads
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

/// A ruleset's directory as served: the previous copy when the directory did not change, a new
/// one when it did and checks out, `None` when it is not published.
fn read_dir(name: &str, dir: &Path, previous: Option<&Arc<Ruleset>>) -> Read {
    let key = match key_of(dir) {
        Ok(None) => return Ok(None),
        Ok(Some(k)) => Key::Dir(k),
        Err(e) => return Err(format!("{} cannot be read: {e}", dir.display())),
    };
    if let Some(p) = previous.filter(|p| p.key == key) {
        return Ok(Some(p.clone()));
    }
    let files = read_files(dir, name).map_err(|why| format!("{}: {why}", dir.display()))?;
    // Read again: a directory swapped while it was read is read at the next refresh.
    let published = std::fs::metadata(dir.join(crate::rules::manifest::FILE))
        .and_then(|m| m.modified())
        .map_err(|e| format!("{} cannot be read: {e}", dir.display()))?;
    if key_of(dir).ok().flatten().map(Key::Dir) != Some(key) {
        return Err(format!("{} changed while it was read", dir.display()));
    }
    Ok(Some(serving(name, files, key, published)))
}

/// A publish recorded in the store, checked like a directory.
async fn read_publish(store: &Store, name: &str, id: i64, at: &str) -> Read {
    let what = format!("the store's publish {id}");
    let mut stored = store
        .publish_files(id)
        .await
        .map_err(|e| format!("{what} cannot be read: {e}"))?;
    let manifest = crate::rules::manifest::FILE;
    let Some(at_manifest) = stored.iter().position(|(n, _)| n == manifest) else {
        // A newer publish replaced it while it was read: the next refresh reads that one.
        return Err(format!("{what} has no {manifest}"));
    };
    let (_, manifest_bytes) = stored.swap_remove(at_manifest);
    let mut stored: BTreeMap<String, Vec<u8>> = stored.into_iter().collect();
    let files = check_files(name, manifest_bytes, |file| {
        stored
            .remove(file)
            .ok_or_else(|| format!("{file} is missing"))
    })
    .map_err(|why| format!("{what}: {why}"))?;
    let published = chrono::DateTime::parse_from_rfc3339(at)
        .map(SystemTime::from)
        .map_err(|e| {
            format!(
                "{what}: its time {} is not RFC 3339 ({e})",
                crate::core::text::quoted(at, 40)
            )
        })?;
    Ok(Some(serving(name, files, Key::Publish(id), published)))
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

//! What `serve` serves: each configured ruleset's published directory, read whole into memory,
//! every file checked against the sha256 its manifest records, gzip-compressed once. A request
//! reads only this in-memory index, never the file system, so it never sees a half-replaced
//! directory and no request path reaches a file name. [`Content::refresh`] re-reads a ruleset
//! when its directory or manifest changes (a publish swaps the directory), keeps serving the
//! last good copy while a new one does not check out, and stops serving a ruleset whose
//! directory is gone.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use bytes::Bytes;

use crate::publish::baseline::{read_files, Files};

/// What identifies a published directory on disk: its device and inode, its manifest's inode,
/// size and modification time (seconds, nanoseconds). A publish swaps the directory.
type DirKey = (u64, u64, u64, u64, i64, i64);

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
    /// When it was published (the manifest's modification time).
    pub published: SystemTime,
    /// The snapshot: `Public 2025-07-28 (id:4)`.
    pub snapshot: String,
    /// The directory it was read from.
    key: DirKey,
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
    root: PathBuf,
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

fn ruleset(files: Files, key: DirKey, published: SystemTime) -> Ruleset {
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
    /// The rulesets `names` under the output directory `root`, read once.
    pub fn load(root: &Path, names: Vec<String>) -> Content {
        let content = Content {
            root: root.to_path_buf(),
            names,
            current: RwLock::new(Arc::new(Index::default())),
        };
        content.refresh();
        content
    }

    /// The index now.
    pub fn current(&self) -> Arc<Index> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads what changed on disk; true when the index changed.
    pub fn refresh(&self) -> bool {
        let old = self.current();
        let mut next = Index::default();
        let mut changed = false;
        for name in &self.names {
            let dir = self.root.join(name);
            let previous = old.rulesets.get(name);
            match self.read_one(name, &dir, previous) {
                Ok(Some(r)) => {
                    changed |= previous.is_none_or(|p| !Arc::ptr_eq(p, &r));
                    next.rulesets.insert(name.clone(), r);
                }
                Ok(None) => changed |= previous.is_some(),
                Err(why) => {
                    if old.problems.get(name) != Some(&why) {
                        tracing::warn!("serve: ruleset {name}: {why}; the last good copy stays");
                        changed = true;
                    }
                    next.problems.insert(name.clone(), why);
                    if let Some(p) = previous {
                        next.rulesets.insert(name.clone(), p.clone());
                    }
                }
            }
        }
        changed |= old.problems.len() != next.problems.len();
        if changed {
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        }
        changed
    }

    /// The ruleset as served: the previous copy when its directory did not change, a new one
    /// when it did and checks out, `None` when it is not published.
    fn read_one(
        &self,
        name: &str,
        dir: &Path,
        previous: Option<&Arc<Ruleset>>,
    ) -> Result<Option<Arc<Ruleset>>, String> {
        let key = match key_of(dir) {
            Ok(None) => return Ok(None),
            Ok(Some(k)) => k,
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
        if key_of(dir).ok().flatten() != Some(key) {
            return Err(format!("{} changed while it was read", dir.display()));
        }
        tracing::info!(
            "serve: ruleset {name}: serving {} ({} files)",
            files.manifest.snapshot.file_date,
            files.files.len() + 1
        );
        Ok(Some(Arc::new(ruleset(files, key, published))))
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
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.refresh()).await;
        }
    }
}

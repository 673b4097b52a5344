//! Reading the local files tagwall did not write itself — ServiceTags files, manifests,
//! published files read back, certificates, secrets — the one way: only a regular file (opened
//! without blocking, so a FIFO cannot hang a run, and checked after opening, so nothing can be
//! swapped in between), and never more than a limit, whatever its size claims (`/dev/zero` has
//! none). Callers name the file and say what the error means for them.

use std::fs::{File, FileType, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::core::parse::MAX_FILE_BYTES;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("could not read the file: {0}")]
    Io(#[from] io::Error),
    /// The path names something other than a regular file.
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// The file holds more than the limit.
    #[error("it is larger than the {} limit", shown_limit(*.limit))]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

impl ReadError {
    /// Whether the file does not exist (often not an error: nothing was written yet).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`] (64 MiB), the one limit on every file
/// tagwall reads or writes.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, ReadError> {
    read_at_most(path, MAX_FILE_BYTES)
}

/// Reads a regular file of at most `limit` bytes.
pub fn read_at_most(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// [`read_bounded`] on the blocking thread pool.
pub async fn read_bounded_blocking(path: &Path) -> Result<Vec<u8>, ReadError> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || read_bounded(&owned))
        .await
        .map_err(|e| ReadError::Io(io::Error::other(e)))?
}

/// The permission bits of a file other users (group or world) can read or write — a secrets
/// file (proxy credentials, serve tokens) that should be `chmod 600` — or `None`.
pub fn open_to_others(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then_some(mode & 0o777)
}

fn open_regular(path: &Path) -> Result<File, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(kind_name(&kind)));
    }
    Ok(file)
}

fn kind_name(kind: &FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

fn shown_limit(limit: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if limit >= MIB && limit.is_multiple_of(MIB) {
        format!("{} MiB", limit / MIB)
    } else {
        format!("{limit}-byte")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("manifest.json");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        let e = read_bounded(&fifo).unwrap_err();
        assert_eq!(e.to_string(), "it is a FIFO, not a regular file");
        let e = read_bounded(dir.path()).unwrap_err();
        assert_eq!(e.to_string(), "it is a directory, not a regular file");
    }

    #[test]
    fn more_than_the_limit_is_refused_whatever_the_size_claims() {
        let e = read_at_most(Path::new("/dev/zero"), 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is a character device, not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [7u8; 11]).unwrap();
        let e = read_at_most(&path, 10).unwrap_err();
        assert_eq!(e.to_string(), "it is larger than the 10-byte limit");
        assert_eq!(read_at_most(&path, 11).unwrap(), [7u8; 11]);
        assert_eq!(shown_limit(MAX_FILE_BYTES), "64 MiB");
        assert!(read_bounded(&dir.path().join("missing"))
            .unwrap_err()
            .is_not_found());
    }
}

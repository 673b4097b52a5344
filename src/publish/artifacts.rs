//! Writing output files and directories so that readers never see half of one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The name prefix of [`write_atomic`]'s temporary files, which a killed run can leave behind
/// (`publish::Layout::clean_temporaries` removes them).
pub const TEMP_PREFIX: &str = ".tagwall-tmp-";

/// Writes `bytes` to `path` through a temporary file in the same directory, then renames it into
/// place: a crash leaves either the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)?;
    // Reports and rule files are for others to read: not the temporary file's private 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What [`write_dir_atomic`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirOutcome {
    /// The directory was created or replaced.
    Written,
    /// The directory already held exactly these files: nothing was written.
    Unchanged,
}

/// Creates `dir` and its missing parents as 0755 (less when the umask takes more), whatever the
/// umask: an output directory is never writable by others.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
}

/// [`create_dir`] for a folder tagwall owns inside the output directory `root` (`reports/…`,
/// `.tagwall/`): a symbolic link anywhere below `root` on the way is refused, never followed, as
/// for the ruleset directories.
pub fn create_owned_dir(root: &Path, dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let Ok(below) = dir.strip_prefix(root) else {
        return create_dir(dir);
    };
    create_dir(root)?;
    let mut at = root.to_path_buf();
    for part in below.components() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "{} is a symbolic link: tagwall does not follow links inside its output directory (remove it; tagwall makes the folder)",
                    at.display()
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::DirBuilder::new().mode(0o755).create(&at) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Replaces the directory `parent/name` with one holding exactly `files` (name, bytes), written
/// in order (so the last, the manifest, is written last), in a temporary directory beside it that
/// is then swapped in with one `rename`. A crash at any point leaves the previous complete
/// directory (or, before the first success, none); leftovers of a crash are cleared next time.
/// When the directory already holds exactly these files, nothing is written.
pub fn write_dir_atomic(
    parent: &Path,
    name: &str,
    files: &[(String, Vec<u8>)],
) -> io::Result<DirOutcome> {
    create_dir(parent)?;
    let target = parent.join(name);
    recover(parent, name, &target)?;
    if holds_exactly(&target, files) {
        return Ok(DirOutcome::Unchanged);
    }
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.new-"))
        .tempdir_in(parent)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))?;
    }
    for (file, bytes) in files {
        let mut f = fs::File::create(tmp.path().join(file))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(0o644))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::File::open(tmp.path())?.sync_all()?;
    if target.exists() {
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            tmp.path(),
            rustix::fs::CWD,
            &target,
            rustix::fs::RenameFlags::EXCHANGE,
        ) {
            // The temporary path now holds the old directory; dropping `tmp` removes it.
            Ok(()) => {}
            Err(e) if exchange_unsupported(e) => {
                // Two renames: a crash between them leaves the old directory under `.old-`,
                // which `recover` puts back.
                let old = parent.join(format!(".{name}.old-{}", std::process::id()));
                fs::rename(&target, &old)?;
                fs::rename(tmp.keep(), &target)?;
                fs::remove_dir_all(&old)?;
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        fs::rename(tmp.keep(), &target)?;
    }
    fs::File::open(parent)?.sync_all()?;
    Ok(DirOutcome::Written)
}

fn exchange_unsupported(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    e == Errno::INVAL || e == Errno::NOSYS || e == Errno::NOTSUP
}

/// Clears what an interrupted [`write_dir_atomic`] left: unfinished `.NAME.new-*` directories,
/// and `.NAME.old-*` ones (put back first if `NAME` itself is missing).
fn recover(parent: &Path, name: &str, target: &Path) -> io::Result<()> {
    let (new, old) = (format!(".{name}.new-"), format!(".{name}.old-"));
    let mut leftovers: Vec<(bool, PathBuf)> = Vec::new();
    for entry in fs::read_dir(parent)? {
        let entry = entry?;
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&new) || file.starts_with(&old) {
            leftovers.push((file.starts_with(&old), entry.path()));
        }
    }
    for (is_old, path) in leftovers {
        if is_old && !target.exists() {
            tracing::warn!(
                "restoring {} from {} (an earlier run stopped mid-swap)",
                target.display(),
                path.display()
            );
            fs::rename(&path, target)?;
        } else {
            fs::remove_dir_all(&path)?;
        }
    }
    Ok(())
}

/// Whether `dir` holds exactly `files` with the same contents.
pub fn holds_exactly(dir: &Path, files: &[(String, Vec<u8>)]) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    if entries.count() != files.len() {
        return false;
    }
    files
        .iter()
        .all(|(name, bytes)| fs::read(dir.join(name)).is_ok_and(|have| have == *bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(tag: &str) -> Vec<(String, Vec<u8>)> {
        vec![
            ("a.txt".into(), format!("{tag} a").into_bytes()),
            ("manifest.json".into(), format!("{tag} m").into_bytes()),
        ]
    }

    fn read(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn directories_are_swapped_whole_and_unchanged_ones_left_alone() {
        let out = tempfile::tempdir().unwrap();
        assert_eq!(
            write_dir_atomic(out.path(), "r", &files("1")).unwrap(),
            DirOutcome::Written
        );
        assert_eq!(read(&out.path().join("r")), files("1"));
        assert_eq!(
            write_dir_atomic(out.path(), "r", &files("1")).unwrap(),
            DirOutcome::Unchanged
        );
        assert_eq!(
            write_dir_atomic(out.path(), "r", &files("2")).unwrap(),
            DirOutcome::Written
        );
        assert_eq!(read(&out.path().join("r")), files("2"));
        // Only the directory itself is left: no temporaries.
        assert_eq!(fs::read_dir(out.path()).unwrap().count(), 1);
        // A stray file makes the directory differ.
        fs::write(out.path().join("r/stray"), b"x").unwrap();
        assert_eq!(
            write_dir_atomic(out.path(), "r", &files("2")).unwrap(),
            DirOutcome::Written
        );
        assert_eq!(read(&out.path().join("r")), files("2"));
    }

    #[test]
    fn leftovers_of_a_crash_are_recovered() {
        let out = tempfile::tempdir().unwrap();
        // A crash between the two fallback renames: the old set sits under `.r.old-1`.
        let old = out.path().join(".r.old-1");
        fs::create_dir(&old).unwrap();
        fs::write(old.join("manifest.json"), b"old").unwrap();
        fs::create_dir(out.path().join(".r.new-x")).unwrap();
        recover(out.path(), "r", &out.path().join("r")).unwrap();
        assert_eq!(
            fs::read(out.path().join("r/manifest.json")).unwrap(),
            b"old"
        );
        assert_eq!(fs::read_dir(out.path()).unwrap().count(), 1);
    }

    #[test]
    fn replaces_whole_files_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_atomic(&dir.path().join("no/such/dir/x"), b"x").is_err());
    }
}

//! What a ruleset has published, read back from its directory: the guard's baseline. The
//! manifest names every file with its sha256 and the digest of the entries; the entries are
//! read from the published list files themselves and must match both. A directory that fails
//! any of this is damaged, and the guard withholds rather than compare against it.

use std::path::Path;

use ipnet::IpNet;

use crate::core::ranges::Family;
use crate::rules::manifest::{entries_digest, Manifest};

/// A ruleset directory as read back.
#[derive(Debug)]
pub enum Published {
    /// Nothing is published yet.
    Nothing,
    /// The directory exists but cannot be trusted: why.
    Damaged(String),
    /// The published state.
    Valid(Box<Baseline>),
}

/// What is published.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// The manifest.
    pub manifest: Manifest,
    /// Every entry of the list files, in address order.
    pub entries: Vec<IpNet>,
}

/// Reads `dir`, the published directory of ruleset `name`.
pub fn read(dir: &Path, name: &str) -> Published {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Published::Nothing,
        Err(e) => return Published::Damaged(format!("{} cannot be read: {e}", dir.display())),
        Ok(m) if !m.is_dir() => {
            return Published::Damaged(format!("{} is not a directory", dir.display()))
        }
        Ok(_) => {}
    }
    match read_dir(dir, name) {
        Ok(b) => Published::Valid(Box::new(b)),
        Err(why) => Published::Damaged(format!("{}: {why}", dir.display())),
    }
}

/// A ruleset directory's files as published: the manifest and every file it names, each checked
/// against the sha256 the manifest records (what `tagwall serve` serves).
#[derive(Debug, Clone)]
pub struct Files {
    /// The manifest.
    pub manifest: Manifest,
    /// `manifest.json` as written.
    pub manifest_bytes: Vec<u8>,
    /// Every other file, in the manifest's order.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Files {
    /// Every entry of the list files, in address order, checked against the manifest.
    pub fn entries(&self, name: &str) -> Result<Vec<IpNet>, String> {
        let entries = entries_of(name, &self.files)?;
        check_entries(&self.manifest, &entries)?;
        Ok(entries)
    }
}

/// Reads and checks the files of `dir`, the published directory of ruleset `name`; the error
/// says what is wrong (a directory replaced while it is read fails the check: read it again).
pub fn read_files(dir: &Path, name: &str) -> Result<Files, String> {
    let path = dir.join(crate::rules::manifest::FILE);
    let manifest_bytes = crate::localfs::read_bounded(&path)
        .map_err(|e| format!("its manifest.json cannot be read ({e})"))?;
    check_files(name, manifest_bytes, |file| {
        crate::localfs::read_bounded(&dir.join(file))
            .map_err(|e| format!("{file} cannot be read ({e})"))
    })
}

/// Checks a published ruleset `name` wherever it is kept: `manifest_bytes` must be its valid
/// manifest, naming only plain file names, and `read` must give each file it names with the
/// sha256 it records.
pub fn check_files(
    name: &str,
    manifest_bytes: Vec<u8>,
    mut read: impl FnMut(&str) -> Result<Vec<u8>, String>,
) -> Result<Files, String> {
    let manifest = Manifest::parse(&manifest_bytes)
        .map_err(|e| format!("its manifest.json is not valid ({e})"))?;
    if manifest.ruleset.name != name {
        return Err(format!(
            "its manifest.json is of ruleset {}",
            crate::core::text::quoted(&manifest.ruleset.name, 64)
        ));
    }
    let mut files = Vec::new();
    for f in &manifest.files {
        if f.name.contains('/') || f.name.starts_with('.') || f.name == crate::rules::manifest::FILE
        {
            return Err(format!(
                "its manifest.json names the file {}",
                crate::core::text::quoted(&f.name, 64)
            ));
        }
        let bytes = read(&f.name)?;
        if crate::core::digest::sha256_hex(&bytes) != f.sha256 {
            return Err(format!(
                "{} differs from what its manifest.json records",
                f.name
            ));
        }
        files.push((f.name.clone(), bytes));
    }
    Ok(Files {
        manifest,
        manifest_bytes,
        files,
    })
}

fn read_dir(dir: &Path, name: &str) -> Result<Baseline, String> {
    let Files {
        manifest, files, ..
    } = read_files(dir, name)?;
    let entries = entries_of(name, &files)?;
    check_entries(&manifest, &entries)?;
    Ok(Baseline { manifest, entries })
}

/// The entries against the manifest: its digest of them, or (manifests before 0.2) its
/// per-family counts.
pub(super) fn check_entries(manifest: &Manifest, entries: &[IpNet]) -> Result<(), String> {
    match &manifest.entries_sha256 {
        Some(digest) if *digest != entries_digest(entries) => {
            Err("its entries differ from the digest its manifest.json records".into())
        }
        Some(_) => Ok(()),
        None => {
            for family in [Family::V4, Family::V6] {
                let n = entries.iter().filter(|e| Family::of(e) == family).count();
                if manifest.family(family).map_or(0, |c| c.entries) != n {
                    return Err(format!(
                        "its {} entries differ from its manifest.json",
                        family.label()
                    ));
                }
            }
            Ok(())
        }
    }
}

/// The entries a list file holds, by how its name ends (`.txt` lists and their parts, `.ipset`,
/// `.nft`, `.csv`, `.json`); `None` for a file that is not a list.
pub(super) fn list_entries(file: &str, bytes: &[u8]) -> Option<Result<Vec<IpNet>, String>> {
    let text = String::from_utf8_lossy(bytes);
    let found =
        if file.ends_with(".txt") && !file.ends_with(".junos.txt") && !file.ends_with(".asa.txt") {
            lines(file, &text, Some)
        } else if file.ends_with(".ipset") {
            lines(file, &text, |l| {
                l.strip_prefix("add ").and_then(|r| r.split(' ').nth(1))
            })
        } else if file.ends_with(".nft") {
            nft_entries(file, &text)
        } else if file.ends_with(".csv") {
            csv_entries(file, &text)
        } else if file.ends_with(".json") && !file.ends_with(".checkpoint.json") {
            json_entries(file, &text)
        } else {
            return None;
        };
    Some(found.map(|mut e| {
        e.sort();
        e.dedup();
        e
    }))
}

/// The entries, from the first list file there is: `<name>.txt`, the per-family `.txt` files,
/// `.ipset`, `.nft`, `.csv`, `.json`.
fn entries_of(name: &str, files: &[(String, Vec<u8>)]) -> Result<Vec<IpNet>, String> {
    let file = |suffix: &str| {
        files
            .iter()
            .find(|(n, _)| *n == format!("{name}{suffix}"))
            .map(|(n, b)| (n.as_str(), String::from_utf8_lossy(b).into_owned()))
    };
    let mut entries = if let Some((n, text)) = file(".txt") {
        lines(n, &text, Some)?
    } else if let (Some((n4, t4)), Some((n6, t6))) = (file(".ipv4.txt"), file(".ipv6.txt")) {
        let mut all = lines(n4, &t4, Some)?;
        all.extend(lines(n6, &t6, Some)?);
        all
    } else if let Some((n, text)) = file(".ipv4.txt").or_else(|| file(".ipv6.txt")) {
        lines(n, &text, Some)?
    } else if let Some((n, text)) = file(".ipset") {
        // `add <set> <cidr>`: the entries go into the temporary sets that are then swapped.
        lines(n, &text, |l| {
            l.strip_prefix("add ").and_then(|r| r.split(' ').nth(1))
        })?
    } else if let Some((n, text)) = file(".nft") {
        nft_entries(n, &text)?
    } else if let Some((n, text)) = file(".csv") {
        csv_entries(n, &text)?
    } else if let Some((n, text)) = file(".json") {
        json_entries(n, &text)?
    } else {
        return Err("it holds no list file to read the entries from".into());
    };
    entries.sort();
    entries.dedup();
    Ok(entries)
}

/// The CIDRs `pick` finds on the lines that are not comments.
fn lines<'t>(
    file: &str,
    text: &'t str,
    pick: impl Fn(&'t str) -> Option<&'t str>,
) -> Result<Vec<IpNet>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(pick)
        .map(|t| cidr(file, t))
        .collect()
}

fn cidr(file: &str, token: &str) -> Result<IpNet, String> {
    token.parse().map_err(|_| {
        format!(
            "{file} holds {} where a CIDR belongs",
            crate::core::text::quoted(token, 64)
        )
    })
}

/// The elements of the `add element … { … }` blocks.
fn nft_entries(file: &str, text: &str) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("add element ") && line.ends_with('{') {
            inside = true;
        } else if inside && line == "}" {
            inside = false;
        } else if inside {
            out.push(cidr(file, line.trim_end_matches(','))?);
        }
    }
    Ok(out)
}

/// The `cidr` column (fields may be quoted, with `""` for a quote).
fn csv_entries(file: &str, text: &str) -> Result<Vec<IpNet>, String> {
    let mut rows = text.lines().map(csv_fields);
    let header = rows.next().unwrap_or_default();
    let col = header
        .iter()
        .position(|h| h == "cidr")
        .ok_or_else(|| format!("{file} has no cidr column"))?;
    rows.map(|r| {
        r.get(col)
            .ok_or_else(|| format!("{file} has a row without a cidr"))
            .and_then(|c| cidr(file, c))
    })
    .collect()
}

fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("one field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

/// `ipv4.cidrs[].cidr` and `ipv6.cidrs[].cidr` of `<name>.json`.
fn json_entries(file: &str, text: &str) -> Result<Vec<IpNet>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{file} is not JSON ({e})"))?;
    let mut out = Vec::new();
    for family in [Family::V4, Family::V6] {
        for item in doc[family.key()]["cidrs"].as_array().into_iter().flatten() {
            let c = item["cidr"]
                .as_str()
                .ok_or_else(|| format!("{file} has an entry without a cidr"))?;
            out.push(cidr(file, c)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn entries_are_read_from_each_list_format() {
        let want = nets(&["20.0.0.0/15", "20.2.0.0/16", "2603:1000::/40"]);
        let cases: [(&str, &str); 5] = [
            (".txt", "# tags: x\n20.0.0.0/15\n20.2.0.0/16\n2603:1000::/40\n"),
            (
                ".ipset",
                "# c\ncreate s-t hash:net\nadd s-t 20.0.0.0/15\nadd s-t 20.2.0.0/16\nadd s6-t 2603:1000::/40\nswap s s-t\n",
            ),
            (
                ".nft",
                "table inet t {\n}\nadd element inet t s4 {\n\t20.0.0.0/15,\n\t20.2.0.0/16\n}\nadd element inet t s6 {\n\t2603:1000::/40\n}\nadd rule inet t c ip daddr @s4 accept\n",
            ),
            (
                ".csv",
                "ruleset,service_tags,cidr\nr,\"A,\"\"B\"\"\",20.0.0.0/15\nr,A,20.2.0.0/16\nr,A,2603:1000::/40\n",
            ),
            (
                ".json",
                r#"{"ipv4":{"cidrs":[{"cidr":"20.0.0.0/15"},{"cidr":"20.2.0.0/16"}]},"ipv6":{"cidrs":[{"cidr":"2603:1000::/40"}]}}"#,
            ),
        ];
        for (suffix, text) in cases {
            let files = vec![(format!("r{suffix}"), text.as_bytes().to_vec())];
            assert_eq!(entries_of("r", &files).unwrap(), want, "{suffix}");
        }
        let bad = vec![("r.txt".to_string(), b"20.0.0.0/15\nrm -rf /\n".to_vec())];
        assert!(entries_of("r", &bad)
            .unwrap_err()
            .contains("where a CIDR belongs"));
    }
}

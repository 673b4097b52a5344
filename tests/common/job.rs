//! A sync job in a temporary directory: settings, a store, a mirror directory of real files.

use std::path::{Path, PathBuf};

use super::tagwall;

/// A job directory: settings, a SQLite store (or `db`), and an empty mirror directory.
pub struct Job {
    pub dir: tempfile::TempDir,
    pub mirror: PathBuf,
}

impl Job {
    /// A job whose settings are the store, `[fetch] clouds = ["Public"]`, then `settings`.
    pub fn new(db: Option<&str>, settings: &str) -> Job {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        std::fs::create_dir(&mirror).unwrap();
        let db = db.map_or_else(
            || format!("sqlite://{}", dir.path().join("t.db").display()),
            str::to_string,
        );
        std::fs::write(
            dir.path().join("tagwall.toml"),
            format!("[store]\nurl = \"{db}\"\n[fetch]\nclouds = [\"Public\"]\n{settings}\n"),
        )
        .unwrap();
        Job { dir, mirror }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Puts a real Public file (by date) into the mirror.
    pub fn add_week(&self, shared: &Path, date: &str) {
        let name = format!("ServiceTags_Public_{date}.json.gz");
        std::fs::copy(shared.join("Public").join(&name), self.mirror.join(&name)).unwrap();
    }

    /// Puts the real Public file of `from` into the mirror as the file of `date`, changed by
    /// `edit` (the whole JSON document).
    pub fn add_edited_week(
        &self,
        shared: &Path,
        from: &str,
        date: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) {
        let raw = tagwall::core::parse::decompress(
            std::fs::read(shared.join(format!("Public/ServiceTags_Public_{from}.json.gz")))
                .unwrap(),
        )
        .unwrap();
        let mut doc: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        edit(&mut doc);
        std::fs::write(
            self.mirror.join(format!("ServiceTags_Public_{date}.json")),
            serde_json::to_vec(&doc).unwrap(),
        )
        .unwrap();
    }

    /// Empties the mirror.
    pub fn clear_mirror(&self) {
        for e in std::fs::read_dir(&self.mirror).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }

    /// `tagwall sync --source <mirror> ARGS`: exit code and output.
    pub fn sync(&self, args: &[&str]) -> (i32, String) {
        let mut cmd = tagwall(self.path());
        cmd.args(["sync", "--source"]).arg(&self.mirror).args(args);
        super::run_text(&mut cmd)
    }

    /// `tagwall ARGS` in the job directory: exit code and output.
    pub fn run(&self, args: &[&str]) -> (i32, String) {
        super::run_text(tagwall(self.path()).args(args))
    }

    /// Replaces everything from the first `[[ruleset]]` of the settings with `text`.
    pub fn set_rulesets(&self, text: &str) {
        let path = self.path().join("tagwall.toml");
        let head = std::fs::read_to_string(&path)
            .unwrap()
            .split("[[ruleset]]")
            .next()
            .unwrap()
            .to_string();
        std::fs::write(path, format!("{head}{text}")).unwrap();
    }

    pub fn out(&self) -> PathBuf {
        self.path().join("out")
    }
}

/// The prefixes of tag `name` in a ServiceTags document.
pub fn prefixes_of<'d>(
    doc: &'d mut serde_json::Value,
    name: &str,
) -> &'d mut Vec<serde_json::Value> {
    doc["values"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no tag {name}"))["properties"]["addressPrefixes"]
        .as_array_mut()
        .unwrap()
}

/// A ruleset directory holds exactly the files its manifest lists, with their sha256; the
/// snapshot date it names.
pub fn consistent(dir: &Path) -> Result<String, String> {
    use sha2::{Digest, Sha256};
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let listed = manifest["files"].as_array().unwrap();
    let on_disk = std::fs::read_dir(dir).unwrap().count();
    if on_disk != listed.len() + 1 {
        return Err(format!(
            "{} files on disk, manifest lists {}",
            on_disk,
            listed.len()
        ));
    }
    for f in listed {
        let bytes =
            std::fs::read(dir.join(f["name"].as_str().unwrap())).map_err(|e| e.to_string())?;
        if hex::encode(Sha256::digest(&bytes)) != f["sha256"].as_str().unwrap() {
            return Err(format!("{} differs from the manifest", f["name"]));
        }
    }
    Ok(manifest["snapshot"]["file_date"]
        .as_str()
        .unwrap()
        .to_string())
}

/// A job whose one ruleset `entra` (AzureCloud, a plain list) is notified as `tagwall.run/1`
/// JSON to `/hook` of a real HTTPS server, `when = "changes"`; and the bodies posted there.
pub fn notified_job(server: &super::https::TestServer) -> Job {
    server.route("/hook", super::https::Reply::page("ok"));
    Job::new(
        None,
        &format!(
            "ca_bundle = \"{}\"\n[notify]\nwebhook_url = \"{}\"\nformat = \"json\"\nwhen = \"changes\"\n[[ruleset]]\nname = \"entra\"\ntags = [\"AzureCloud\"]\nformats = [\"txt\"]\n",
            server.ca_pem.display(),
            server.url("/hook")
        ),
    )
}

/// The JSON bodies posted to `/hook`, in order.
pub fn hook_posts(server: &super::https::TestServer) -> Vec<serde_json::Value> {
    server
        .log()
        .into_iter()
        .filter(|l| l.method == "POST" && l.path == "/hook")
        .map(|l| serde_json::from_slice(&l.request_body).unwrap())
        .collect()
}

//! Store URLs, which may carry a password and so are never shown as they are.

use std::fmt;

/// The kind of database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://path` or `sqlite:path`: an embedded file, created on first use.
    Sqlite,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
}

/// A database URL. `Debug` and `Display` hide any password, so the value can go into logs and
/// error messages; only [`DbUrl::expose`] gives the real text, to the driver.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl(String);

/// The error of [`DbUrl::parse`].
#[derive(Debug, thiserror::Error)]
#[error("store URL {0} is not supported: use sqlite://FILE (the default is sqlite://tagwall.db) or postgres://USER@HOST/DB")]
pub struct BadUrl(String);

impl DbUrl {
    /// Checks the scheme. A bare path ending in `.db` or `.sqlite` is taken as a SQLite file.
    pub fn parse(text: &str) -> Result<DbUrl, BadUrl> {
        let text = text.trim();
        let url = DbUrl(text.to_string());
        if url.backend().is_some() {
            Ok(url)
        } else if !text.contains("://") && (text.ends_with(".db") || text.ends_with(".sqlite")) {
            Ok(DbUrl(format!("sqlite://{text}")))
        } else {
            Err(BadUrl(url.to_string()))
        }
    }

    /// The backend the scheme names, if any.
    pub fn backend(&self) -> Option<Backend> {
        let lower = self.0.to_ascii_lowercase();
        if lower.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    /// The file of a SQLite URL (`None` for PostgreSQL and in-memory databases).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        if self.backend() != Some(Backend::Sqlite) {
            return None;
        }
        let rest = &self.0["sqlite:".len()..];
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or("");
        (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
    }

    /// The URL with its password, for the database driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({})", redact(&self.0))
    }
}

/// Replaces the password in `scheme://user:password@host` and any `password=` query value.
fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let authority_end = out[start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@').map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        let file = |u: &str| DbUrl::parse(u).unwrap().sqlite_file();
        assert_eq!(file("sqlite://tagwall.db"), Some("tagwall.db".into()));
        assert_eq!(
            file("sqlite:///var/lib/t.db?mode=rwc"),
            Some("/var/lib/t.db".into())
        );
        assert_eq!(file("sqlite:x.db"), Some("x.db".into()));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("postgres://u@h/db"), None);
    }

    #[test]
    fn passwords_never_show() {
        let url =
            DbUrl::parse("postgres://app:s3cr3t@db.corp:5432/tagwall?password=x2&sslmode=require")
                .unwrap();
        let shown = format!("{url} {url:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("x2"),
            "{shown}"
        );
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db.corp:5432/tagwall?password=***&sslmode=require"
        );
        assert_eq!(url.backend(), Some(Backend::Postgres));
        assert!(url.expose().contains("s3cr3t"));
    }

    #[test]
    fn schemes_and_bare_paths() {
        assert_eq!(
            DbUrl::parse("sqlite://tagwall.db").unwrap().backend(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            DbUrl::parse("history.db").unwrap().expose(),
            "sqlite://history.db"
        );
        let err = DbUrl::parse("mysql://root:pw@localhost/x")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("store URL mysql://root:***@localhost/x is not supported"),
            "{err}"
        );
    }
}

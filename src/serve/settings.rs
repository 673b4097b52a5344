//! `[serve]` as written and as typed settings: where `tagwall serve` listens and where its tokens
//! come from. Tokens are never in the settings file or on the command line: they come from
//! [`TOKENS_ENV`] or from the file `tokens_file` names.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The environment variable with the tokens, comma-separated.
pub const TOKENS_ENV: &str = "TAGWALL_SERVE_TOKENS";
/// Where `serve` listens by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// `[serve]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    listen: Option<String>,
    tokens_file: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    access_log: Option<bool>,
    #[serde(default)]
    source: ServeFrom,
    public_url: Option<String>,
    allow_insecure_login: Option<bool>,
}

/// `[serve] source`: where the published rulesets are read from.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServeFrom {
    /// The output directory, `[output] dir` (the default).
    #[default]
    Output,
    /// The newest publish of each ruleset recorded in the store: for replicas without a
    /// shared disk.
    Store,
}

/// `[serve]`, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Lines `token [ruleset,ruleset]`, read when the server starts.
    pub tokens_file: Option<PathBuf>,
    /// The certificate chain and key (PEM) for HTTPS, when set.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Whether each request is logged (target `tagwall::access`, level info).
    pub access_log: bool,
    /// Where the published rulesets are read from.
    pub source: ServeFrom,
    /// The review site's address as people reach it (`https://tagwall.example.com`, no
    /// trailing `/`): messages link to it.
    pub public_url: Option<String>,
    /// Whether the login form takes a token over plain HTTP on a non-loopback address.
    pub allow_insecure_login: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            listen: DEFAULT_LISTEN.parse().expect("a valid address"),
            tokens_file: None,
            tls: None,
            access_log: true,
            source: ServeFrom::Output,
            public_url: None,
            allow_insecure_login: false,
        }
    }
}

impl ServeSection {
    /// Checks the section.
    pub fn validate(self) -> Result<Settings, String> {
        let listen = match self.listen {
            None => Settings::default().listen,
            Some(text) => parse_listen(&text).map_err(|e| format!("[serve] {e}"))?,
        };
        let tls = match (self.tls_cert, self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => {
                return Err("[serve] set both tls_cert and tls_key (PEM files), or neither".into())
            }
        };
        Ok(Settings {
            listen,
            tokens_file: self.tokens_file,
            tls,
            access_log: self.access_log.unwrap_or(true),
            source: self.source,
            public_url: self.public_url.map(|u| public_url(&u)).transpose()?,
            allow_insecure_login: self.allow_insecure_login.unwrap_or(false),
        })
    }
}

/// `public_url`: `http://` or `https://`, a host (and port, and path), only the characters of
/// a plain URL; kept without a trailing `/`. It goes into messages as a link, so nothing that
/// could end or change one (`<`, `>`, `|`, `"`, spaces, `?`, `#`) is taken.
pub fn public_url(text: &str) -> Result<String, String> {
    let shown = crate::core::text::quoted(text, 100);
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    let plain = text.len() <= 200
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'.' | b'-' | b'_' | b'[' | b']')
        });
    match rest {
        Some(r) if plain && !r.is_empty() && !r.starts_with('/') && !r.contains("//") => {
            Ok(text.trim_end_matches('/').to_string())
        }
        _ => Err(format!(
            "[serve] public_url = {shown}: give the address people open, like https://tagwall.example.com or https://intra.example.com/tagwall (letters, digits, ':', '/', '.', '-', '_'; no query)"
        )),
    }
}

/// `ADDR:PORT` (`[::1]:8080` for IPv6).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!(
            "listen = {}: give an address and port like 127.0.0.1:8080 or [::]:8443",
            crate::core::text::quoted(text, 60)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_is_checked() {
        let s: ServeSection = toml::from_str("listen = \"0.0.0.0:9000\"").unwrap();
        assert_eq!(s.validate().unwrap().listen.port(), 9000);
        let s: ServeSection = toml::from_str("listen = \"localhost\"").unwrap();
        assert!(s.validate().unwrap_err().contains("127.0.0.1:8080"));
        let s: Result<ServeSection, _> = toml::from_str("tokens = \"x\"");
        assert!(s
            .unwrap_err()
            .to_string()
            .contains("unknown field `tokens`"));
        assert_eq!(Settings::default().listen.to_string(), DEFAULT_LISTEN);
        let s: ServeSection = toml::from_str("source = \"store\"").unwrap();
        assert_eq!(s.validate().unwrap().source, ServeFrom::Store);
        let e = toml::from_str::<ServeSection>("source = \"disk\"").unwrap_err();
        assert!(
            e.to_string().contains("expected `output` or `store`"),
            "{e}"
        );
        assert_eq!(Settings::default().source, ServeFrom::Output);
        let s: ServeSection =
            toml::from_str("public_url = \"https://fw.example.com:8443/tw/\"").unwrap();
        let s = s.validate().unwrap();
        assert_eq!(
            s.public_url.as_deref(),
            Some("https://fw.example.com:8443/tw")
        );
        assert!(!s.allow_insecure_login);
        for bad in [
            "ftp://x",
            "https://",
            "https://a b",
            "https://x/<b>",
            "https://x/?q=1",
            "https://x|y",
            "https:///x",
        ] {
            let s: ServeSection = toml::from_str(&format!("public_url = {bad:?}")).unwrap();
            assert!(s.validate().unwrap_err().contains("public_url"), "{bad}");
        }
        let s: ServeSection = toml::from_str("tls_cert = \"c.pem\"").unwrap();
        assert!(s
            .validate()
            .unwrap_err()
            .contains("both tls_cert and tls_key"));
    }
}

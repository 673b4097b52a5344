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
}

/// `[serve]`, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Lines `token [ruleset,ruleset]`, read when the server starts.
    pub tokens_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            listen: DEFAULT_LISTEN.parse().expect("a valid address"),
            tokens_file: None,
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
        Ok(Settings {
            listen,
            tokens_file: self.tokens_file,
        })
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
    }
}

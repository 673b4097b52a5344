//! `[notify]` and `[notify.email]` as written, and as typed settings: where run summaries go, in
//! which shape, when. SMTP credentials come from the environment only
//! ([`SMTP_USERNAME_ENV`], [`SMTP_PASSWORD_ENV`]), never from the settings file.

use std::path::PathBuf;

use serde::Deserialize;

use crate::core::secret::Secret;

/// The environment variable with the SMTP user name.
pub const SMTP_USERNAME_ENV: &str = "TAGWALL_SMTP_USERNAME";
/// The environment variable with the SMTP password.
pub const SMTP_PASSWORD_ENV: &str = "TAGWALL_SMTP_PASSWORD";
/// The most recipients one message goes to.
pub const MAX_RECIPIENTS: usize = 50;
/// The longest a notification (an SMTP delivery, a webhook's exchange) may take, in seconds.
pub const MAX_TIMEOUT_SECONDS: u64 = 600;
/// `timeout_seconds` when it is not set.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;

/// `[notify] remind_days` when it is not set.
pub const DEFAULT_REMIND_DAYS: u32 = 7;

/// `[notify]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    webhook_url: Option<String>,
    format: Option<String>,
    when: Option<String>,
    remind_days: Option<u32>,
    timeout_seconds: Option<u64>,
    email: Option<EmailSection>,
}

/// `[notify.email]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailSection {
    host: String,
    port: Option<u16>,
    tls: Option<String>,
    from: String,
    to: Vec<String>,
    ca_bundle: Option<PathBuf>,
    timeout_seconds: Option<u64>,
}

/// A webhook URL: may carry a token, so it is never shown whole.
#[derive(Clone)]
pub struct Webhook(pub String);

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Webhook {
    /// Scheme and host only.
    pub fn redacted(&self) -> String {
        let host = crate::core::host::host_of(&self.0);
        let scheme = self.0.split("://").next().unwrap_or("https");
        format!("{scheme}://{host}/***")
    }
}

/// The shape of the webhook's body (`[notify] format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChatFormat {
    /// The run summary as `tagwall.run/1` JSON.
    #[default]
    Json,
    /// A Slack incoming-webhook message with blocks.
    Slack,
    /// A Microsoft Teams incoming-webhook (Workflows) message with an Adaptive Card.
    Teams,
}

/// Which runs are sent (`[notify] when`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum When {
    /// Every run.
    #[default]
    Always,
    /// Runs that imported a file, changed, withheld or failed something.
    Changes,
    /// Runs that withheld or failed something.
    Problems,
}

/// How the SMTP connection is secured (`[notify.email] tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (default; port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS (a relay on a trusted network; port 25). Refused with credentials.
    None,
}

/// The SMTP user and password, from the environment.
#[derive(Clone, Debug)]
pub struct SmtpCredentials {
    /// The user name.
    pub username: String,
    /// The password (`Debug` prints `***`).
    pub password: Secret,
}

/// `[notify.email]`, checked.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// The SMTP server's host name (also the name its certificate must carry).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: SmtpTls,
    /// The sender mailbox.
    pub from: lettre::message::Mailbox,
    /// The recipients.
    pub to: Vec<lettre::message::Mailbox>,
    /// Extra CA certificates (PEM) to trust besides the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// How long the whole delivery may take: connect, TLS, greeting, every command, the message.
    pub timeout: std::time::Duration,
    /// From the environment, when set.
    pub credentials: Option<SmtpCredentials>,
}

/// `[notify]`, checked.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Where the summary is posted.
    pub webhook: Option<Webhook>,
    /// The body's shape.
    pub format: ChatFormat,
    /// Which runs are sent.
    pub when: When,
    /// A withheld change is notified once, then again at most every this many days (for
    /// `when = "changes"` and `"problems"`).
    pub remind_days: u32,
    /// How long the webhook's whole exchange may take (`[notify] timeout_seconds`); `None`:
    /// the default.
    pub webhook_timeout: Option<std::time::Duration>,
    /// Email through SMTP.
    pub email: Option<EmailSettings>,
    /// The review site (`[serve] public_url`): messages link to it.
    pub site: Option<String>,
}

impl NotifySection {
    /// Checks the section; `env` reads an environment variable (the credentials).
    pub fn validate(self, env: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let format = match self.format.as_deref() {
            None | Some("json") => ChatFormat::Json,
            Some("slack") => ChatFormat::Slack,
            Some("teams") => ChatFormat::Teams,
            Some(other) => {
                return Err(format!(
                    "[notify] format = {}: use \"json\", \"slack\" or \"teams\"",
                    crate::core::text::quoted(other, 40)
                ))
            }
        };
        let when = match self.when.as_deref() {
            None | Some("always") => When::Always,
            Some("changes") => When::Changes,
            Some("problems") => When::Problems,
            Some(other) => {
                return Err(format!(
                    "[notify] when = {}: use \"always\", \"changes\" or \"problems\"",
                    crate::core::text::quoted(other, 40)
                ))
            }
        };
        if self.format.is_some() && self.webhook_url.is_none() {
            return Err("[notify] format is set but webhook_url is not: add webhook_url = \"https://…\" or remove format".into());
        }
        let remind_days = match self.remind_days {
            None => DEFAULT_REMIND_DAYS,
            Some(d @ 1..=365) => d,
            Some(other) => {
                return Err(format!(
                    "[notify] remind_days = {other}: use 1 to 365 (days between reminders of a change still withheld)"
                ))
            }
        };
        Ok(Settings {
            webhook: webhook(self.webhook_url)?,
            format,
            when,
            remind_days,
            webhook_timeout: Some(timeout("[notify]", self.timeout_seconds)?),
            email: self.email.map(|e| e.validate(&env)).transpose()?,
            site: None,
        })
    }
}

/// `[notify] webhook_url`: https only.
fn webhook(url: Option<String>) -> Result<Option<Webhook>, String> {
    match url {
        None => Ok(None),
        Some(url) if url.starts_with("https://") && url.len() <= 2048 => Ok(Some(Webhook(url))),
        Some(_) => Err(
            "[notify] webhook_url must be an https:// URL of at most 2048 bytes (it is posted through [fetch]'s proxy and TLS settings)".into(),
        ),
    }
}

impl EmailSection {
    fn validate(self, env: &impl Fn(&str) -> Option<String>) -> Result<EmailSettings, String> {
        let tls = match self.tls.as_deref() {
            None | Some("starttls") => SmtpTls::StartTls,
            Some("tls") => SmtpTls::Tls,
            Some("none") => SmtpTls::None,
            Some(other) => {
                return Err(format!(
                    "[notify.email] tls = {}: use \"starttls\" (default), \"tls\" or \"none\"",
                    crate::core::text::quoted(other, 40)
                ))
            }
        };
        let host = host(&self.host)?;
        let from = mailbox("from", &self.from)?;
        if self.to.is_empty() || self.to.len() > MAX_RECIPIENTS {
            return Err(format!(
                "[notify.email] to: give 1 to {MAX_RECIPIENTS} addresses"
            ));
        }
        let to = self
            .to
            .iter()
            .map(|t| mailbox("to", t))
            .collect::<Result<_, _>>()?;
        let credentials = credentials(env)?;
        if credentials.is_some() && tls == SmtpTls::None {
            return Err(format!(
                "[notify.email] tls = \"none\" with {SMTP_USERNAME_ENV} set would send the password in clear: use \"starttls\" or \"tls\""
            ));
        }
        Ok(EmailSettings {
            port: self.port.unwrap_or(match tls {
                SmtpTls::StartTls => 587,
                SmtpTls::Tls => 465,
                SmtpTls::None => 25,
            }),
            host,
            tls,
            from,
            to,
            ca_pem: self.ca_bundle.as_deref().map(ca_bundle).transpose()?,
            timeout: timeout("[notify.email]", self.timeout_seconds)?,
            credentials,
        })
    }
}

/// A host name or IP address: letters, digits, `.`, `-`, `:` (IPv6), at most 253 bytes.
fn host(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 253
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "[notify.email] host = {}: give the SMTP server's host name or IP address",
            crate::core::text::quoted(text, 60)
        ))
    }
}

fn mailbox(key: &str, text: &str) -> Result<lettre::message::Mailbox, String> {
    let valid = text.len() <= 320 && !text.chars().any(char::is_control);
    match text.parse::<lettre::message::Mailbox>() {
        Ok(m) if valid => Ok(m),
        _ => Err(format!(
            "[notify.email] {key} = {}: give an address like \"tagwall@example.com\" or \"Firewall team <fw@example.com>\"",
            crate::core::text::quoted(text, 80)
        )),
    }
}

/// Both variables or neither; the error names them, never their values.
fn credentials(env: &impl Fn(&str) -> Option<String>) -> Result<Option<SmtpCredentials>, String> {
    let username = env(SMTP_USERNAME_ENV).filter(|s| !s.is_empty());
    let password = env(SMTP_PASSWORD_ENV).filter(|s| !s.is_empty());
    match (username, password) {
        (None, None) => Ok(None),
        (Some(username), Some(password)) => Ok(Some(SmtpCredentials {
            username,
            password: Secret::new(password),
        })),
        _ => Err(format!(
            "[notify.email]: set both {SMTP_USERNAME_ENV} and {SMTP_PASSWORD_ENV} in the environment, or neither"
        )),
    }
}

/// The PEM file must exist and hold at least one certificate.
fn ca_bundle(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| {
        format!(
            "[notify.email] ca_bundle = {}: {e}",
            crate::core::text::quoted(&path.display().to_string(), 200)
        )
    })?;
    match lettre::transport::smtp::client::Certificate::from_pem(&pem) {
        Ok(_) => Ok(pem),
        Err(_) => Err(format!(
            "[notify.email] ca_bundle = {}: not a PEM file with certificates",
            crate::core::text::quoted(&path.display().to_string(), 200)
        )),
    }
}

/// `timeout_seconds` of `section`: 1 to [`MAX_TIMEOUT_SECONDS`].
fn timeout(section: &str, seconds: Option<u64>) -> Result<std::time::Duration, String> {
    match seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS) {
        s @ 1..=MAX_TIMEOUT_SECONDS => Ok(std::time::Duration::from_secs(s)),
        s => Err(format!(
            "{section} timeout_seconds = {s}: use 1 to {MAX_TIMEOUT_SECONDS} (seconds a notification may take in all)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Settings, String> {
        let section: NotifySection = toml::from_str(text).map_err(|e| e.to_string())?;
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        section.validate(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn email_settings_take_defaults_and_credentials_from_the_environment() {
        let s = parse(
            "[email]\nhost = \"smtp.example.com\"\nfrom = \"tagwall@example.com\"\nto = [\"Firewall team <fw@example.com>\"]\n",
            &[(SMTP_USERNAME_ENV, "fw"), (SMTP_PASSWORD_ENV, "S3CRET")],
        )
        .unwrap();
        let e = s.email.unwrap();
        assert_eq!((e.port, e.tls), (587, SmtpTls::StartTls));
        assert_eq!(e.timeout.as_secs(), 30);
        assert_eq!(e.to[0].email.to_string(), "fw@example.com");
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("S3CRET") && shown.contains("***"),
            "{shown}"
        );
        assert_eq!(s.format, ChatFormat::Json);
        assert_eq!(s.when, When::Always);
    }

    #[test]
    fn bad_notify_settings_are_named() {
        let base = "[email]\nhost = \"smtp.example.com\"\nfrom = \"t@example.com\"\nto = [\"fw@example.com\"]\n";
        for (text, env, wanted) in [
            ("format = \"slack\"\n", &[][..], "webhook_url is not"),
            (
                "webhook_url = \"https://h/x\"\nformat = \"discord\"\n",
                &[],
                "use \"json\", \"slack\" or \"teams\"",
            ),
            ("when = \"sometimes\"\n", &[], "\"changes\""),
            (
                "[email]\nhost = \"smtp.example.com\"\nfrom = \"not an address\"\nto = [\"fw@example.com\"]\n",
                &[],
                "from = \"not an address\"",
            ),
            (
                "[email]\nhost = \"smtp.example.com\"\nfrom = \"t@example.com\"\nto = []\n",
                &[],
                "give 1 to 50",
            ),
            (
                "[email]\nhost = \"smtp.example.com\\r\\nRCPT\"\nfrom = \"t@example.com\"\nto = [\"fw@example.com\"]\n",
                &[],
                "host name or IP",
            ),
            (base, &[(SMTP_USERNAME_ENV, "fw")], "set both"),
            (
                "[email]\nhost = \"relay\"\ntls = \"none\"\nfrom = \"t@example.com\"\nto = [\"fw@example.com\"]\n",
                &[(SMTP_USERNAME_ENV, "fw"), (SMTP_PASSWORD_ENV, "pw")],
                "in clear",
            ),
            (
                "[email]\nhost = \"h\"\nfrom = \"t@example.com\"\nto = [\"fw@example.com\"]\npassword = \"x\"\n",
                &[],
                "unknown field `password`",
            ),
        ] {
            let err = parse(text, env).unwrap_err();
            assert!(err.contains(wanted), "{text}: {err}");
            assert!(!err.contains("pw\""), "{err}");
        }
    }
}

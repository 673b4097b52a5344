//! The email notification: `last-run.md` (and each weekly report's Markdown written in the run)
//! as the text part, the run summary as the HTML part, each weekly HTML report written in the run
//! attached; sent through SMTP with STARTTLS, implicit TLS or (for a trusted relay, without
//! credentials) none.

use std::path::Path;

use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::rules::summary::Summary;

use super::settings::{EmailSettings, SmtpTls};

/// The most text the text part holds; a longer report is cut with a note.
const MAX_TEXT: usize = 1 << 20;
/// The largest weekly HTML report attached; a larger one is named instead.
const MAX_ATTACHMENT: u64 = 8 << 20;

/// Builds and sends the message; the recipients on success.
pub async fn send(settings: &EmailSettings, summary: &Summary) -> anyhow::Result<String> {
    let message = message(settings, summary)?;
    let transport = transport(settings)?;
    // lettre bounds only the connect: the whole exchange is bounded here.
    let sent = tokio::time::timeout(settings.timeout, transport.send(message))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "SMTP server {}:{} did not finish the delivery within {} s ([notify.email] timeout_seconds): it stalled; the message was not sent",
                settings.host,
                settings.port,
                settings.timeout.as_secs()
            )
        })?;
    sent.with_context(|| {
        format!(
            "SMTP server {}:{} refused or failed the delivery",
            settings.host, settings.port
        )
    })?;
    Ok(settings
        .to
        .iter()
        .map(|m| m.email.to_string())
        .collect::<Vec<_>>()
        .join(", "))
}

/// The message: subject, text and HTML parts, reports attached.
pub fn message(settings: &EmailSettings, summary: &Summary) -> anyhow::Result<Message> {
    let mut builder = Message::builder()
        .from(settings.from.clone())
        .subject(crate::render::report::chat::fallback(summary));
    for to in &settings.to {
        builder = builder.to(to.clone());
    }
    let (text, html) = parts(summary)?;
    let mut body = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(text, html));
    for (name, bytes) in attachments(summary) {
        body = body.singlepart(Attachment::new(name).body(bytes, ContentType::TEXT_HTML));
    }
    builder
        .multipart(body)
        .context("could not build the email message")
}

/// `last-run.md` then each weekly report's Markdown; the summary as HTML.
fn parts(summary: &Summary) -> anyhow::Result<(String, String)> {
    let mut md = Vec::new();
    crate::render::report::run_summary::write(&mut md, summary)?;
    let mut text = String::from_utf8_lossy(&md).into_owned();
    for cloud in &summary.clouds {
        let Some(base) = cloud.report.as_deref() else {
            continue;
        };
        let path = format!("{base}.md");
        let at = summary.report_url(cloud).unwrap_or_else(|| path.clone());
        match crate::localfs::read_at_most(Path::new(&path), MAX_TEXT as u64).ok() {
            Some(report) if text.len() + report.len() <= MAX_TEXT => {
                text.push_str("\n\n---\n\n");
                text.push_str(&String::from_utf8_lossy(&report));
            }
            _ => text.push_str(&format!("\n\nThe weekly report is at {at}.\n")),
        }
    }
    let mut html = Vec::new();
    crate::render::report::run_summary_html::write(&mut html, summary)?;
    let html = crate::render::report::html::for_mail(&String::from_utf8_lossy(&html));
    Ok((plain_text(&text), html))
}

/// Each weekly HTML report the run wrote, as (file name, bytes).
fn attachments(summary: &Summary) -> Vec<(String, Vec<u8>)> {
    summary
        .clouds
        .iter()
        .filter_map(|c| {
            let base = c.report.as_deref()?;
            let path = format!("{base}.html");
            let bytes = crate::localfs::read_at_most(Path::new(&path), MAX_ATTACHMENT)
                .ok()
                .map(|b| {
                    crate::render::report::html::for_mail(&String::from_utf8_lossy(&b)).into_bytes()
                });
            if bytes.is_none() {
                tracing::warn!("the email does not attach {path}: unreadable or over 8 MiB");
            }
            let date = c.file_date.as_deref().unwrap_or("report");
            Some((format!("tagwall-{}-{date}.html", c.cloud), bytes?))
        })
        .collect()
}

/// The Markdown of the text part as plain text: the entities Markdown needs for `<`, `>` and `&`
/// decoded (a mail client shows the text as it is, so `&lt;script&gt;` would be shown so).
fn plain_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (decoded, len) = if rest.starts_with("&lt;") {
            ('<', 4)
        } else if rest.starts_with("&gt;") {
            ('>', 4)
        } else if rest.starts_with("&amp;") {
            ('&', 5)
        } else {
            ('&', 1)
        };
        out.push(decoded);
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

fn transport(s: &EmailSettings) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
        .port(s.port)
        .timeout(Some(s.timeout));
    builder = match s.tls {
        SmtpTls::StartTls => builder.tls(Tls::Required(tls_parameters(s)?)),
        SmtpTls::Tls => builder.tls(Tls::Wrapper(tls_parameters(s)?)),
        SmtpTls::None => builder.tls(Tls::None),
    };
    if let Some(c) = &s.credentials {
        builder = builder.credentials(Credentials::new(
            c.username.clone(),
            c.password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

/// The system's roots, plus `ca_bundle`'s certificates.
fn tls_parameters(s: &EmailSettings) -> anyhow::Result<TlsParameters> {
    let mut params = TlsParameters::builder(s.host.clone());
    if let Some(pem) = &s.ca_pem {
        params = params.add_root_certificate(
            Certificate::from_pem(pem).context("[notify.email] ca_bundle holds no certificate")?,
        );
    }
    params
        .build_rustls()
        .context("could not set up TLS for the SMTP server")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_part_shows_text_not_entities() {
        assert_eq!(
            plain_text("tag &lt;script&gt; &amp;lt; a&b &am"),
            "tag <script> &lt; a&b &am"
        );
    }
}

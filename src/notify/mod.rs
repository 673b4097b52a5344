//! Notifications after a run: the summary posted to a webhook (`[notify] webhook_url`, as
//! `tagwall.run/1` JSON, a Slack message or a Teams card) and mailed through SMTP
//! (`[notify.email]`). A notification that fails is logged, never fatal, and never names a
//! secret: the webhook URL shows only its host, SMTP credentials come from the environment.
//!
//! - [`settings`]: `[notify]` as written and as typed settings.
//! - [`email`]: the message (Markdown text, HTML part, the weekly reports attached) and the
//!   SMTP delivery.

pub mod email;
pub mod settings;

use std::time::Duration;

use crate::rules::summary::{any_change, CloudStatus, RulesetStatus, Summary};

use settings::{ChatFormat, Settings, Webhook, When};

/// What posts a webhook's JSON body: the run's one HTTP client (`fetch::Client`, given by the
/// job), so a webhook goes through the same proxy and TLS settings as the downloads.
pub trait PostJson {
    /// Posts `body` as `application/json` to `url`; the error says what failed and what to do.
    fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

/// Sends `summary` wherever `settings` say, when `[notify] when` wants this run.
pub async fn send(settings: &Settings, client: &impl PostJson, summary: &Summary) {
    if !wanted(settings.when, summary) {
        if settings.webhook.is_some() || settings.email.is_some() {
            tracing::debug!("nothing to notify: [notify] when does not take this run");
        }
        return;
    }
    let linked;
    let summary = match &settings.site {
        None => summary,
        Some(site) => {
            linked = Summary {
                site: Some(site.clone()),
                ..summary.clone()
            };
            &linked
        }
    };
    if let Some(hook) = &settings.webhook {
        let limit = settings
            .webhook_timeout
            .unwrap_or(Duration::from_secs(settings::DEFAULT_TIMEOUT_SECONDS));
        post(hook, settings.format, client, summary, limit).await;
    }
    if let Some(email) = &settings.email {
        match email::send(email, summary).await {
            Ok(to) => tracing::info!("mailed the run summary to {to}"),
            Err(e) => tracing::error!("could not mail the run summary: {e:#}"),
        }
    }
}

/// Whether `when` takes this run.
pub fn wanted(when: When, s: &Summary) -> bool {
    // A withheld change notified within `remind_days` is not news.
    let withheld =
        |r: &&crate::rules::summary::RulesetRun| r.status.is_withheld() && !r.already_notified;
    let problem = s.error.is_some()
        || s.clouds
            .iter()
            .any(|c| c.status == CloudStatus::Failed || c.notice.is_some())
        || s.rulesets
            .iter()
            .any(|r| r.status == RulesetStatus::Failed || withheld(&r));
    match when {
        When::Always => true,
        When::Problems => problem,
        When::Changes => {
            problem
                || s.clouds.iter().any(|c| c.status == CloudStatus::New)
                || s.rulesets.iter().any(|r| match r.status {
                    // A rejected change was decided: nothing new to tell.
                    RulesetStatus::Rejected => false,
                    RulesetStatus::Withheld | RulesetStatus::WouldWithhold => withheld(&r),
                    RulesetStatus::Unchanged => any_change(&r.changes),
                    _ => true,
                })
        }
    }
}

/// The webhook's body in `format`.
pub fn body(format: ChatFormat, summary: &Summary) -> serde_json::Result<Vec<u8>> {
    match format {
        ChatFormat::Json => serde_json::to_vec(summary),
        ChatFormat::Slack => serde_json::to_vec(&crate::render::report::chat::slack(summary)),
        ChatFormat::Teams => serde_json::to_vec(&crate::render::report::chat::teams(summary)),
    }
}

async fn post(
    hook: &Webhook,
    format: ChatFormat,
    client: &impl PostJson,
    summary: &Summary,
    limit: Duration,
) {
    let body = match body(format, summary) {
        Ok(b) => b,
        Err(e) => return tracing::error!("could not encode the run summary: {e}"),
    };
    match tokio::time::timeout(limit, client.post_json(&hook.0, body)).await {
        Ok(Ok(())) => tracing::info!("posted the run summary to {}", hook.redacted()),
        // The URL may hold a token: only its host is named.
        Ok(Err(e)) => tracing::error!(
            "could not post the run summary to {}: {}",
            hook.redacted(),
            e.replace(&hook.0, &hook.redacted())
        ),
        Err(_) => tracing::error!(
            "could not post the run summary to {}: no answer within {} s ([notify] timeout_seconds); the run goes on",
            hook.redacted(),
            limit.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::summary::RulesetRun;

    #[test]
    fn when_picks_runs() {
        let mut s = Summary::failed("2026-12-01T00:00:00Z".into(), String::new());
        s.error = None;
        s.exit_code = 0;
        let mut quiet = RulesetRun::failed("a", String::new());
        quiet.error = None;
        quiet.status = RulesetStatus::Unchanged;
        s.rulesets = vec![quiet.clone()];
        assert!(wanted(When::Always, &s));
        assert!(!wanted(When::Changes, &s));
        assert!(!wanted(When::Problems, &s));
        s.rulesets[0].status = RulesetStatus::Published;
        assert!(wanted(When::Changes, &s));
        assert!(!wanted(When::Problems, &s));
        s.rulesets[0].status = RulesetStatus::Withheld;
        assert!(wanted(When::Problems, &s));
        // Notified already, within remind_days: not news, except to `always`.
        s.rulesets[0].already_notified = true;
        assert!(!wanted(When::Problems, &s));
        assert!(!wanted(When::Changes, &s));
        assert!(wanted(When::Always, &s));
        s.rulesets[0].already_notified = false;
        s.rulesets[0].status = RulesetStatus::Rejected;
        assert!(!wanted(When::Changes, &s));
        s.rulesets[0].status = RulesetStatus::Withheld;
        s.rulesets = vec![quiet];
        s.error = Some("the store is unreachable".into());
        assert!(wanted(When::Problems, &s));
    }
}

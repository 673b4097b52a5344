//! `tagwall serve`: the published rulesets over HTTP until SIGTERM or SIGINT.

use std::sync::Arc;

use anyhow::{bail, Context};

use crate::app::cli::ServeArgs;
use crate::app::config::Config;
use crate::serve::auth::Tokens;
use crate::serve::content::Content;
use crate::serve::settings::{parse_listen, TOKENS_ENV};
use crate::serve::{State, REFRESH};

use super::EXIT_OK;

/// Serves until a stop signal, then drains.
pub async fn serve(config: &Config, args: ServeArgs) -> anyhow::Result<u8> {
    let listen = match &args.listen {
        Some(text) => parse_listen(text).map_err(|e| anyhow::anyhow!("--listen: {e}"))?,
        None => config.serve.listen,
    };
    let names: Vec<String> = config.rulesets.iter().map(|r| r.name.clone()).collect();
    if names.is_empty() {
        bail!(
            "{} defines no [[ruleset]]: there is nothing to serve",
            config.source_name()
        );
    }
    let known: Vec<&str> = names.iter().map(String::as_str).collect();
    let tokens = Tokens::load(
        std::env::var(TOKENS_ENV).ok().as_deref(),
        config.serve.tokens_file.as_deref(),
        &known,
    )
    .map_err(anyhow::Error::msg)?;
    if tokens.is_empty() && !listen.ip().is_loopback() {
        tracing::warn!(
            "serving on {listen} without tokens: anyone who reaches it reads the lists (set {TOKENS_ENV} or [serve] tokens_file)"
        );
    }
    let certs = match &config.serve.tls {
        None => None,
        Some((cert, key)) => {
            Some(crate::serve::tls::Certs::load(cert, key).map_err(anyhow::Error::msg)?)
        }
    };
    let tls = certs
        .clone()
        .map(crate::serve::tls::server_config)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let stop = super::sync::shutdown()?;
    let content = Arc::new(Content::load(&config.output_dir, names));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("could not listen on {listen}"))?;
    tracing::info!(
        "serving {} on {}://{} ({} tokens; {} rulesets served now)",
        config.output_dir.display(),
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr()?,
        tokens.len(),
        content.current().rulesets.len()
    );
    let (done, watching) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(content.clone().watch(REFRESH, stopped(watching.clone())));
    if let Some(certs) = certs {
        tokio::spawn(certs.watch(stopped(watching)));
    }
    let state = Arc::new(State {
        content,
        tokens,
        metrics: Default::default(),
    });
    crate::serve::run(listener, state, tls, stop).await?;
    let _ = done.send(true);
    let _ = watcher.await;
    Ok(EXIT_OK)
}

async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|&v| v).await;
}

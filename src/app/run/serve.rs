//! `tagwall serve`, and the server of `tagwall daemon --serve`: the published rulesets over HTTP
//! until SIGTERM or SIGINT.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::app::cli::ServeArgs;
use crate::app::config::Config;
use crate::serve::auth::Tokens;
use crate::serve::content::{Content, Source};
use crate::serve::settings::{parse_listen, ServeFrom, TOKENS_ENV};
use crate::serve::site::model::Reports;
use crate::serve::site::Site;
use crate::serve::tls::Certs;
use crate::serve::{State, REFRESH};
use crate::store::Store;

use super::EXIT_OK;

/// Serves until a stop signal, then drains.
pub async fn serve(config: &Config, args: ServeArgs) -> anyhow::Result<u8> {
    let listen = listen_of(config, args.listen.as_deref())?;
    let stop = super::shutdown()?;
    prepare(config, listen).await?.run(stop).await?;
    Ok(EXIT_OK)
}

/// `--listen` (or `--serve`) when given, else `[serve] listen`.
pub fn listen_of(config: &Config, flag: Option<&str>) -> anyhow::Result<SocketAddr> {
    match flag {
        Some(text) => parse_listen(text).map_err(|e| anyhow::anyhow!("--listen: {e}")),
        None => Ok(config.serve.listen),
    }
}

/// A server with its settings checked and its address bound, not yet serving.
pub struct Prepared {
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    content: Arc<Content>,
    certs: Option<Arc<Certs>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// Checks the tokens and certificates, reads what is published, binds `listen`.
pub async fn prepare(config: &Config, listen: SocketAddr) -> anyhow::Result<Prepared> {
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
    if !tokens.is_empty() && config.serve.tls.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(
            "serving on {listen} over plain HTTP with tokens: a token sent in clear can be read on the way; set [serve] tls_cert and tls_key (docs/serve.md), or listen on loopback behind a TLS proxy"
        );
    }
    let certs = match &config.serve.tls {
        None => None,
        Some((cert, key)) => Some(Certs::load(cert, key).map_err(anyhow::Error::msg)?),
    };
    let tls = certs
        .clone()
        .map(crate::serve::tls::server_config)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let (source, from) = match config.serve.source {
        ServeFrom::Output => (
            Source::Output(config.output_dir.clone()),
            config.output_dir.display().to_string(),
        ),
        ServeFrom::Store => (
            Source::Store(Store::open(&config.db).await?),
            format!("the publishes recorded in {}", config.db),
        ),
    };
    let content = Content::load(source, config.rulesets.clone()).await;
    let site = site(config, listen).await;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("could not listen on {listen}"))?;
    tracing::info!(
        "serving {from} on {}://{} ({} tokens; {} rulesets served now)",
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr()?,
        tokens.len(),
        content.current().rulesets.len()
    );
    // Filtered like any other log: RUST_LOG=info,tagwall::access=off turns it off too.
    let logged = config.serve.access_log
        && tracing::enabled!(target: crate::serve::access::TARGET, tracing::Level::INFO);
    let access_log = logged.then(crate::serve::access::AccessLog::new);
    let limit = crate::serve::conns::limit_for_open_files(crate::serve::MAX_CONNECTIONS);
    if limit < crate::serve::MAX_CONNECTIONS {
        tracing::warn!(
            "serve: the open-files limit holds {limit} connections, not {}: raise it (ulimit -n, LimitNOFILE=) to serve more at once",
            crate::serve::MAX_CONNECTIONS
        );
    }
    let state = Arc::new(State {
        content: content.clone(),
        tokens,
        metrics: Default::default(),
        access_log,
        conns: crate::serve::conns::Conns::new(limit),
        certs: certs.clone(),
        site,
    });
    Ok(Prepared {
        listener,
        state,
        content,
        certs,
        tls,
    })
}

impl Prepared {
    /// Serves until `stop` completes, then drains; the watchers stop with it.
    pub async fn run(self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        let (done, watching) = tokio::sync::watch::channel(false);
        let watcher = tokio::spawn(self.content.watch(REFRESH, stopped(watching.clone())));
        tokio::spawn(self.state.site.clone().watch(stopped(watching.clone())));
        if let Some(certs) = self.certs {
            tokio::spawn(certs.watch(stopped(watching)));
        }
        let served = crate::serve::run(self.listener, self.state, self.tls, stop).await;
        let _ = done.send(true);
        let _ = watcher.await;
        Ok(served?)
    }
}

/// The review site: the store for its history and decisions (without it, pages say so and
/// nobody decides), and whether logging in is allowed on this address.
async fn site(config: &Config, listen: SocketAddr) -> Arc<Site> {
    let store = match Store::open(&config.db).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("serve: the review site cannot open the store ({e}): its pages show no history, and nothing can be approved there");
            None
        }
    };
    let secure = config.serve.tls.is_some();
    let login_refused = (!secure && !listen.ip().is_loopback() && !config.serve.allow_insecure_login)
        .then(|| format!(
            "Logging in over plain HTTP on {listen} would send the token in clear. Serve HTTPS ([serve] tls_cert and tls_key), listen on loopback behind a TLS proxy, or set [serve] allow_insecure_login = true."
        ));
    let reports = match config.serve.source {
        ServeFrom::Output => Reports::Output,
        ServeFrom::Store => Reports::Store,
    };
    Site::new(config.desk(), store, reports, secure, login_refused).await
}

/// Completes once `rx` holds true (at once when it already does).
pub async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|&v| v).await;
}

//! TLS for `serve`: rustls with the certificate chain and key of `[serve] tls_cert` / `tls_key`
//! (PEM), offering HTTP/2 and HTTP/1.1 by ALPN. [`Certs::reload`] re-reads them on SIGHUP and
//! when either file changes; a new handshake takes the new pair, open connections keep theirs,
//! so nothing is dropped. A pair that does not load (unreadable, not PEM, key not matching the
//! certificate) is logged once and the pair in use stays. A certificate that has expired, is not
//! valid yet or expires within 14 days is loaded with a warning naming its dates, and `/metrics`
//! shows its dates and whether it is valid now. The key's content never appears in errors or
//! logs.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::cert_dates::{self, Validity};

/// How often the files are checked for a change.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies the two files' contents on disk: inode, size, mtime of each.
type Stamp = [(u64, u64, i64, i64); 2];

/// The pair in use and where it comes from.
pub struct Certs {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files as last loaded, and as last refused (logged once).
    stamps: Mutex<(Option<Stamp>, Option<Stamp>)>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Certs({}, key {})",
            self.cert.display(),
            self.key.display()
        )
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn stamp(cert: &Path, key: &Path) -> Option<Stamp> {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
    };
    Some([one(cert)?, one(key)?])
}

/// Reads and checks a certificate chain and its key.
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let shown = |p: &Path| crate::core::text::quoted(&p.display().to_string(), 200);
    let read = |p: &Path, what: &str| {
        crate::localfs::read_bounded(p).map_err(|e| format!("[serve] {what} = {}: {e}", shown(p)))
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read(cert, "tls_cert")?)
            .collect::<Result<_, _>>()
            .map_err(|_| {
                format!(
                    "[serve] tls_cert = {}: not a PEM certificate chain",
                    shown(cert)
                )
            })?;
    if chain.is_empty() {
        return Err(format!(
            "[serve] tls_cert = {}: holds no certificate",
            shown(cert)
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&read(key, "tls_key")?).map_err(|_| {
        format!(
            "[serve] tls_key = {}: not a PEM private key (PKCS#8, PKCS#1 or SEC1)",
            shown(key)
        )
    })?;
    CertifiedKey::from_der(chain, private, &rustls::crypto::ring::default_provider()).map_err(|e| {
        format!(
            "[serve] tls_cert = {} and tls_key = {} do not make a usable pair: {e}",
            shown(cert),
            shown(key)
        )
    })
}

/// Warns when the certificate just loaded is expired, not yet valid or expiring soon, with its
/// dates (at start and on every reload).
fn warn_dates(path: &Path, pair: &CertifiedKey) {
    let shown = crate::core::text::quoted(&path.display().to_string(), 200);
    match pair.cert.first().and_then(|c| cert_dates::validity(c)) {
        Some(v) => {
            if let Some(problem) = cert_dates::problem(v, cert_dates::now()) {
                tracing::warn!("serve: the certificate of [serve] tls_cert = {shown} {problem}");
            }
        }
        None => tracing::warn!(
            "serve: the validity dates of [serve] tls_cert = {shown} could not be read; they are not checked"
        ),
    }
}

impl Certs {
    /// Loads the pair; the error names the file and what is wrong.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Certs>, String> {
        let stamp = stamp(cert, key);
        let pair = load_pair(cert, key)?;
        warn_dates(cert, &pair);
        Ok(Arc::new(Certs {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(pair)),
            stamps: Mutex::new((stamp, None)),
        }))
    }

    /// Re-reads the pair when `force`d or when the files changed; true when a new pair is in use.
    pub fn reload(&self, force: bool) -> bool {
        let now = stamp(&self.cert, &self.key);
        let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if !force && (now == stamps.0 || now == stamps.1) {
            return false;
        }
        match load_pair(&self.cert, &self.key) {
            Ok(pair) => {
                warn_dates(&self.cert, &pair);
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
                *stamps = (now, None);
                tracing::info!("serve: loaded the TLS certificate {}", self.cert.display());
                true
            }
            Err(e) => {
                if force || stamps.1 != now {
                    tracing::error!("serve: {e}; the certificate in use stays");
                }
                stamps.1 = now;
                false
            }
        }
    }

    /// The validity dates of the certificate in use (its chain's first).
    pub fn validity(&self) -> Option<Validity> {
        let pair = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        pair.cert.first().and_then(|c| cert_dates::validity(c))
    }

    /// The certificate's dates for `/metrics`, and whether it is valid at `now`.
    pub fn render_into(&self, out: &mut String, now: cert_dates::Unix) {
        use std::fmt::Write as _;
        let Some(v) = self.validity() else {
            return;
        };
        let valid = u8::from(v.not_before <= now && now <= v.not_after);
        let _ = write!(
            out,
            "# HELP tagwall_serve_tls_certificate_not_after_seconds When the certificate in use expires (Unix time).\n\
             # TYPE tagwall_serve_tls_certificate_not_after_seconds gauge\n\
             tagwall_serve_tls_certificate_not_after_seconds {}\n\
             # HELP tagwall_serve_tls_certificate_not_before_seconds When the certificate in use becomes valid (Unix time).\n\
             # TYPE tagwall_serve_tls_certificate_not_before_seconds gauge\n\
             tagwall_serve_tls_certificate_not_before_seconds {}\n\
             # HELP tagwall_serve_tls_certificate_valid 1 when the certificate in use is within its dates now, else 0.\n\
             # TYPE tagwall_serve_tls_certificate_valid gauge\n\
             tagwall_serve_tls_certificate_valid {valid}\n",
            v.not_after, v.not_before
        );
    }

    /// Reloads on SIGHUP and on file changes until `stop` completes.
    pub async fn watch(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("serve: cannot listen for SIGHUP ({e}): certificates reload on file changes only");
                None
            }
        };
        tokio::pin!(stop);
        loop {
            let force = tokio::select! {
                () = &mut stop => return,
                _ = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
                () = tokio::time::sleep(CHECK_EVERY) => false,
            };
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.reload(force)).await;
        }
    }
}

/// The server's TLS settings: the pair from `certs`, TLS 1.2 and 1.3, ALPN h2 and http/1.1.
pub fn server_config(certs: Arc<Certs>) -> Result<Arc<rustls::ServerConfig>, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

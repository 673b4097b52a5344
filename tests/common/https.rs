//! A local HTTPS server for fetch tests, with a certificate from a test CA made on the spot.
//! Hand-written HTTP/1.1 so it can misbehave on purpose: cut bodies short, answer slowly, fail
//! a few times, and record every request and how many body bytes it sent. Loopback only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

/// What a path answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this body; 304 when `If-None-Match` matches the ETag.
    Ok {
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// This status, empty body.
    Status(u16),
    /// 302 to this location.
    Redirect(String),
    /// 200 announcing the whole length but closing after `sent` bytes.
    Truncated { body: Vec<u8>, sent: usize },
    /// Waits, then answers.
    Slow { delay: Duration, then: Box<Reply> },
    /// Answers `status` the next `times` requests, then `then`.
    FailFirst {
        times: usize,
        status: u16,
        then: Box<Reply>,
    },
}

impl Reply {
    /// 200 with a body and an ETag made from its length.
    pub fn file(body: Vec<u8>) -> Reply {
        Reply::Ok {
            etag: Some(format!(
                "\"{}-{}\"",
                body.len(),
                body.first().copied().unwrap_or(0)
            )),
            last_modified: Some("Mon, 28 Jul 2025 10:00:00 GMT".into()),
            body,
        }
    }
    /// 200 with a page.
    pub fn page(text: &str) -> Reply {
        Reply::Ok {
            body: text.as_bytes().to_vec(),
            etag: None,
            last_modified: None,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub status: u16,
    pub body_bytes: usize,
    /// The request's own body (by Content-Length).
    pub request_body: Vec<u8>,
}

impl Logged {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    routes: Mutex<HashMap<String, Reply>>,
    log: Mutex<Vec<Logged>>,
}

/// The running server.
pub struct TestServer {
    pub port: u16,
    /// The test CA's certificate (PEM), for `ca_bundle`.
    pub ca_pem: PathBuf,
    state: Arc<State>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server on 127.0.0.1 with a fresh CA and a certificate for 127.0.0.1/localhost.
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, config) = certificates();
        let ca_path = dir.path().join("test-ca.pem");
        std::fs::write(&ca_path, ca_pem).unwrap();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let served = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(std_listener, config, served));
        });
        TestServer {
            port,
            ca_pem: ca_path,
            state,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Sets what `path` answers.
    pub fn route(&self, path: &str, reply: Reply) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), reply);
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    /// Forgets the requests so far.
    pub fn clear_log(&self) {
        self.state.log.lock().unwrap().clear();
    }
}

/// A test CA and a server certificate for 127.0.0.1 and localhost that it signed, as PEM.
pub struct TestPki {
    pub ca_pem: String,
    /// The server certificate, then the CA's.
    pub chain_pem: String,
    pub key_pem: String,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "tagwall test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        leaf.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        TestPki {
            ca_pem: ca_cert.pem(),
            chain_pem: format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
            key_pem: leaf_key.serialize_pem(),
            chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            key_der: leaf_key.serialize_der(),
        }
    }
}

fn certificates() -> (String, Arc<rustls::ServerConfig>) {
    let pki = TestPki::new();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            pki.chain.clone(),
            rustls::pki_types::PrivateKeyDer::Pkcs8(pki.key_der.clone().into()),
        )
        .unwrap();
    (pki.ca_pem, Arc::new(config))
}

async fn serve(
    listener: std::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    state: Arc<State>,
) {
    let listener = TcpListener::from_std(listener).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, state) = (acceptor.clone(), state.clone());
        tokio::spawn(async move {
            // A client that rejects the certificate ends the handshake: nothing to serve.
            if let Ok(tls) = acceptor.accept(tcp).await {
                let _ = handle(tls, &state).await;
            }
        });
    }
}

async fn handle<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    state: &State,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut logged = Logged {
        method: method.clone(),
        path: path.clone(),
        headers,
        status: 0,
        body_bytes: 0,
        request_body: buf[end..].to_vec(),
    };
    let length: usize = logged
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while logged.request_body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        logged.request_body.extend_from_slice(&chunk[..n]);
    }
    let mut reply = {
        let mut routes = state.routes.lock().unwrap();
        match routes.get_mut(&path) {
            None => Reply::Status(404),
            Some(Reply::FailFirst {
                times,
                status,
                then,
            }) => {
                if *times > 0 {
                    *times -= 1;
                    Reply::Status(*status)
                } else {
                    (**then).clone()
                }
            }
            Some(r) => r.clone(),
        }
    };
    if let Reply::Slow { delay, then } = reply {
        tokio::time::sleep(delay).await;
        reply = *then;
    }
    let head_only = method == "HEAD";
    let (status, body, announced, extra): (u16, Vec<u8>, usize, String) = match reply {
        Reply::Ok {
            body,
            etag,
            last_modified,
        } => {
            if etag.is_some() && logged.header("If-None-Match") == etag.as_deref() {
                (304, Vec::new(), 0, String::new())
            } else {
                let mut extra = String::new();
                if let Some(e) = etag {
                    extra.push_str(&format!("ETag: {e}\r\n"));
                }
                if let Some(lm) = last_modified {
                    extra.push_str(&format!("Last-Modified: {lm}\r\n"));
                }
                let n = body.len();
                (200, body, n, extra)
            }
        }
        Reply::Status(s) => (s, Vec::new(), 0, String::new()),
        Reply::Redirect(to) => (302, Vec::new(), 0, format!("Location: {to}\r\n")),
        Reply::Truncated { body, sent } => (200, body[..sent].to_vec(), body.len(), String::new()),
        Reply::Slow { .. } | Reply::FailFirst { .. } => unreachable!("resolved above"),
    };
    let reason = match status {
        200 => "OK",
        302 => "Found",
        304 => "Not Modified",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {announced}\r\nContent-Type: application/octet-stream\r\n{extra}Connection: close\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await?;
    if !head_only {
        stream.write_all(&body).await?;
        logged.body_bytes = body.len();
    }
    logged.status = status;
    state.log.lock().unwrap().push(logged);
    stream.flush().await?;
    if announced == body.len() {
        let _ = stream.shutdown().await;
    }
    Ok(())
}

//! `tagwall doctor`: the whole path to each cloud's files, one step at a time (route, DNS, TCP,
//! proxy CONNECT, TLS, page, file, age), each failure with what to do. The steps operators
//! otherwise retrace with packet captures.

use std::time::Duration;

use chrono::NaiveDate;
use tokio::net::TcpStream;

use crate::core::host::host_of;
use crate::core::model::Cloud;
use crate::fetch::discover;
use crate::fetch::proxy::{Credentials, ProxyUrl};
use crate::fetch::tunnel;
use crate::fetch::{
    discover as find, from_page, Client, Discovery, Error, FetchError, FetchSettings, Location,
    Mirror,
};

/// A step's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Works.
    Ok,
    /// Works, but worth attention.
    Warn,
    /// Fails: `fix` says what to do.
    Fail,
    /// Not tried because an earlier step failed.
    Skip,
}

impl Status {
    /// The label printed.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One checked step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The cloud checked.
    pub cloud: Cloud,
    /// `route`, `dns`, `tcp`, `connect`, `tls`, `page`, `file`, `age`, `mirror`, `retired`.
    pub name: &'static str,
    /// The result.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do, for failures and warnings.
    pub fix: Option<String>,
}

struct Steps {
    cloud: Cloud,
    list: Vec<Step>,
}

impl Steps {
    fn push(&mut self, name: &'static str, status: Status, detail: String, fix: Option<String>) {
        self.list.push(Step {
            cloud: self.cloud,
            name,
            status,
            detail,
            fix,
        });
    }
    fn failed(&self) -> bool {
        self.list.iter().any(|s| s.status == Status::Fail)
    }
}

/// Checks the path to `cloud`'s newest file.
pub async fn check(
    client: &Client,
    settings: &FetchSettings,
    cloud: Cloud,
    today: NaiveDate,
) -> Vec<Step> {
    let mut steps = Steps {
        cloud,
        list: Vec::new(),
    };
    if let (true, Some(last)) = (
        settings.from_microsoft(cloud),
        discover::retired_after(cloud),
    ) {
        steps.push("retired", Status::Ok, format!("{cloud} is retired: its last file is dated {last}; its history stays readable, nothing to fetch"), None);
        return steps.list;
    }
    if let Some(Mirror::Dir(dir)) = &settings.mirror {
        check_mirror(&mut steps, client, settings, dir, today).await;
        return steps.list;
    }
    let page = settings.page(cloud).expect("not a mirror directory");
    check_hosts(&mut steps, client, settings, &page).await;
    if steps.failed() {
        steps.push(
            "file",
            Status::Skip,
            "not tried: an earlier step failed".into(),
            None,
        );
        return steps.list;
    }
    let answer = check_page(&mut steps, client, settings, &page).await;
    // The page already read, so discovery does not ask for it again.
    let found = from_page(client, settings, cloud, today, &page, answer.as_deref()).await;
    check_file(&mut steps, client, found, today, settings.overdue_days).await;
    steps.list
}

/// A mirror directory: its newest file and that file's age.
async fn check_mirror(
    steps: &mut Steps,
    client: &Client,
    settings: &FetchSettings,
    dir: &std::path::Path,
    today: NaiveDate,
) {
    let cloud = steps.cloud;
    match find(client, settings, cloud, today).await {
        Ok(Discovery::Found { location, date, .. }) => {
            steps.push(
                "mirror",
                Status::Ok,
                format!("newest file {location} ({date})"),
                None,
            );
            age(steps, cloud, date, today, settings.overdue_days);
        }
        Ok(Discovery::Retired { .. }) => {}
        Err(e) => steps.push(
            "mirror",
            Status::Fail,
            e.to_string(),
            Some(format!(
                "copy Microsoft's files into {} under their original names",
                dir.display()
            )),
        ),
    }
}

/// The route, network path and TLS to the page's host and the folder's (when another).
async fn check_hosts(steps: &mut Steps, client: &Client, settings: &FetchSettings, page: &str) {
    let route = client.route();
    if let Some(note) = &route.note {
        steps.push(
            "route",
            Status::Warn,
            note.clone(),
            Some("set HTTPS_PROXY or [fetch] proxy".into()),
        );
    }
    let folder = settings.folder(steps.cloud);
    let mut hosts = vec![page.to_string()];
    if host_of(&folder) != host_of(page) {
        hosts.push(folder.clone());
    }
    for url in &hosts {
        let host = host_of(url);
        let port = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.port_or_known_default())
            .unwrap_or(443);
        let creds = route
            .credentials
            .as_ref()
            .map(|c| format!(", credentials from {}", c.origin))
            .unwrap_or_default();
        steps.push(
            "route",
            Status::Ok,
            format!(
                "{host}:{port} is to be reached {}{creds}",
                route.describe(host)
            ),
            None,
        );
        if !network(
            steps,
            route.proxy_for(host),
            route.credentials.as_ref(),
            host,
            port,
            settings.connect_timeout,
        )
        .await
        {
            continue;
        }
        match client.head(url).await {
            Ok(_) | Err(FetchError::Status { .. }) => steps.push(
                "tls",
                Status::Ok,
                format!("the certificate of {host} is trusted"),
                None,
            ),
            Err(e) => fail(steps, "tls", e),
        }
    }
}

/// The download page: how many files it lists. Returns its text for discovery.
async fn check_page(
    steps: &mut Steps,
    client: &Client,
    settings: &FetchSettings,
    page: &str,
) -> Result<String, FetchError> {
    let cloud = steps.cloud;
    let folder = settings.folder(cloud);
    let answer = client.page(page).await;
    match &answer {
        Ok(text) => {
            let files = discover::files_in_page(cloud, text, &folder);
            match files.first() {
                Some(f) => steps.push("page", Status::Ok, format!("{page} lists {} file(s), newest {}", files.len(), f.date), None),
                None => steps.push("page", Status::Warn, format!("{page} lists no {cloud} file"), Some("tagwall falls back to probing the folder day by day; if this persists, Microsoft changed the page: set [fetch] pages or a mirror".into())),
            }
        }
        Err(e) => {
            let fix = Some("tagwall falls back to probing the folder; fix the page's access if the probe fails too".to_string());
            steps.push("page", Status::Warn, e.to_string(), fix);
        }
    }
    answer
}

/// The file discovery found: whether it answers, and its age.
async fn check_file(
    steps: &mut Steps,
    client: &Client,
    found: Result<Discovery, Error>,
    today: NaiveDate,
    overdue_days: u32,
) {
    match found {
        Ok(Discovery::Found {
            date,
            location: Location::Url(url),
            via,
        }) => {
            match client.head(&url).await {
                Ok(Some(h)) => {
                    let size = h.length.map(|n| format!(", {n} bytes")).unwrap_or_default();
                    steps.push("file", Status::Ok, format!("{url} ({via}{size})"), None);
                }
                Ok(None) => steps.push(
                    "file",
                    Status::Fail,
                    format!("{url} is listed but answers 404"),
                    Some("try again later: Microsoft may be publishing it".into()),
                ),
                Err(e) => fail(steps, "file", e),
            }
            let cloud = steps.cloud;
            age(steps, cloud, date, today, overdue_days);
        }
        Ok(_) => {}
        Err(Error::Fetch(e)) => fail(steps, "file", e),
        Err(e) => steps.push(
            "file",
            Status::Fail,
            e.to_string(),
            Some(
                "set [fetch] mirror to a copy of the files, or check [fetch] pages/folders".into(),
            ),
        ),
    }
}

fn fail(steps: &mut Steps, name: &'static str, e: FetchError) {
    // The messages end with what to do: keep them whole.
    steps.push(name, Status::Fail, e.to_string(), None);
}

fn age(steps: &mut Steps, cloud: Cloud, date: NaiveDate, today: NaiveDate, limit: u32) {
    match discover::overdue(cloud, date, today, limit) {
        Some(days) => steps.push("age", Status::Warn, format!("the newest {cloud} file is {days} days old"), Some("Microsoft publishes weekly: check that this is really the newest file (the page may be stale, or the mirror not updated)".into())),
        None => steps.push("age", Status::Ok, format!("the newest file is dated {date}"), None),
    }
}

/// DNS, TCP and (through a proxy) CONNECT to `host:port`; false when a step failed.
async fn network(
    steps: &mut Steps,
    proxy: Option<&ProxyUrl>,
    creds: Option<&Credentials>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> bool {
    let (hop_host, hop_port) = match proxy {
        Some(p) => (p.host.as_str(), p.port),
        None => (host, port),
    };
    let what = if proxy.is_some() { "the proxy " } else { "" };
    let Some(addr) = resolve(steps, what, hop_host, hop_port, timeout).await else {
        return false;
    };
    let Some(mut stream) = tcp(steps, what, addr, proxy.is_some(), port, timeout).await else {
        return false;
    };
    match proxy {
        Some(p) if p.scheme == "http" => {
            connect(steps, &mut stream, creds, host, port, timeout).await
        }
        _ => true,
    }
}

/// The DNS step: the first address of `host`.
async fn resolve(
    steps: &mut Steps,
    what: &str,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Option<std::net::SocketAddr> {
    let addrs: Vec<std::net::SocketAddr> = match tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((host, port)),
    )
    .await
    {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => {
            steps.push("dns", Status::Fail, format!("could not resolve {what}{host}: {e}"), Some("check the name and /etc/resolv.conf; where only the proxy resolves external names, set [fetch] proxy".into()));
            return None;
        }
        Err(_) => {
            steps.push(
                "dns",
                Status::Fail,
                format!("resolving {what}{host} timed out"),
                Some("check the resolver in /etc/resolv.conf".into()),
            );
            return None;
        }
    };
    let Some(addr) = addrs.first().copied() else {
        steps.push(
            "dns",
            Status::Fail,
            format!("{what}{host} has no address"),
            Some("check the name".into()),
        );
        return None;
    };
    steps.push(
        "dns",
        Status::Ok,
        format!("{what}{host} is {}", addr.ip()),
        None,
    );
    Some(addr)
}

/// The TCP step.
async fn tcp(
    steps: &mut Steps,
    what: &str,
    addr: std::net::SocketAddr,
    via_proxy: bool,
    port: u16,
    timeout: Duration,
) -> Option<TcpStream> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            steps.push(
                "tcp",
                Status::Ok,
                format!("connected to {what}{addr}"),
                None,
            );
            Some(s)
        }
        Ok(Err(e)) => {
            steps.push("tcp", Status::Fail, format!("connecting to {what}{addr} failed: {e}"), Some(if via_proxy { "check the proxy's address and port".into() } else { format!("a firewall may block outbound {port}/tcp: allow it, or use the proxy ([fetch] proxy)") }));
            None
        }
        Err(_) => {
            steps.push(
                "tcp",
                Status::Fail,
                format!(
                    "connecting to {what}{addr} timed out after {} s",
                    timeout.as_secs()
                ),
                Some(
                    "a firewall may drop the traffic: allow it, or use the proxy ([fetch] proxy)"
                        .into(),
                ),
            );
            None
        }
    }
}

/// The CONNECT step through an HTTP proxy.
async fn connect(
    steps: &mut Steps,
    stream: &mut TcpStream,
    creds: Option<&Credentials>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> bool {
    match tunnel::connect(stream, creds, host, port, timeout).await {
        Ok((200, _)) => {
            steps.push(
                "connect",
                Status::Ok,
                format!("the proxy opened a tunnel to {host}:{port}"),
                None,
            );
            true
        }
        // tinyproxy answers wrong credentials with 401, others with 407.
        Ok((code @ (401 | 407), reason)) => {
            let (what, fix) = if creds.is_some() {
                (
                    "credentials rejected",
                    "check TAGWALL_PROXY_USER/TAGWALL_PROXY_PASSWORD or [fetch] proxy_credentials_file",
                )
            } else {
                (
                    "credentials required",
                    "configure credentials: TAGWALL_PROXY_USER and TAGWALL_PROXY_PASSWORD, or [fetch] proxy_credentials_file",
                )
            };
            steps.push(
                "connect",
                Status::Fail,
                format!("{what}: the proxy answered CONNECT {host}:{port} with {code} {reason}"),
                Some(fix.into()),
            );
            false
        }
        Ok((code, reason)) => {
            steps.push(
                "connect",
                Status::Fail,
                format!("the proxy refused CONNECT {host}:{port}: {code} {reason}"),
                Some(format!(
                    "ask for CONNECT to {host}:{port} to be allowed on the proxy"
                )),
            );
            false
        }
        Err(e) => {
            steps.push(
                "connect",
                Status::Fail,
                format!("CONNECT {host}:{port} through the proxy failed: {e}"),
                Some("check that [fetch] proxy names an HTTP proxy".into()),
            );
            false
        }
    }
}

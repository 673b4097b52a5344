//! The review site of `tagwall serve`: server-rendered pages for the firewall team, and the forms
//! that approve or reject a withheld change.
//!
//! - `html` — the page frame and stylesheet; `pages` — each page's body.
//! - `model` — what the pages show, gathered in memory and rebuilt every [`REBUILD`].
//! - `session` — login sessions and their CSRF tokens; `limit` — failed logins per client.
//! - `routes` — which requests are the site's, and the answers.
//!
//! Who may do what comes from the server's tokens (`serve::auth`): pages need any valid token
//! (a session cookie, or Bearer/Basic like the lists) unless the server has none; deciding
//! needs a session of a token of role `approve` that may read the ruleset, the session's CSRF
//! token and a comment. Decisions go through `job::approve`, the code of `tagwall approve` and
//! `tagwall reject`: the store's run lock, the one publish path, the store's record.

pub mod html;
pub mod limit;
pub mod model;
pub mod pages;
pub mod routes;
pub mod session;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::core::model::SnapshotInfo;
use crate::core::ranges::{AddrSet, Family};
use crate::job::approve::Desk;
use crate::store::Store;

use self::model::{Model, Reports};

/// How often the model is rebuilt.
pub const REBUILD: Duration = Duration::from_secs(2);
/// How many reports rendered from the store are kept.
const REPORTS_KEPT: usize = 8;

/// The site's state.
pub struct Site {
    /// The settings' rulesets and how decisions publish.
    pub desk: Desk,
    /// The history store (`None`: it could not be opened; pages say so, nobody decides).
    pub store: Option<Store>,
    /// Logged-in browsers.
    pub sessions: session::Sessions,
    /// Failed logins.
    pub limiter: limit::Limiter,
    /// Where reports come from.
    pub reports: Reports,
    /// Whether the server speaks HTTPS (cookies get `Secure`).
    pub secure: bool,
    /// Why the login form is refused (plain HTTP beyond loopback), if it is.
    pub login_refused: Option<String>,
    model: RwLock<Arc<Model>>,
    building: tokio::sync::Mutex<()>,
    rendered: Mutex<VecDeque<(String, Arc<String>)>>,
    emitted: tokio::sync::Mutex<BTreeMap<(i64, Family), Emitted>>,
}

/// The budgeted rulesets' lists of one family at one snapshot, by ruleset.
type Emitted = Arc<BTreeMap<String, AddrSet>>;

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Site({} rulesets, {:?})",
            self.desk.rulesets.len(),
            self.sessions
        )
    }
}

impl Site {
    /// The site for `desk`, reading `store`; the model is built once before it serves.
    pub async fn new(
        desk: Desk,
        store: Option<Store>,
        reports: Reports,
        secure: bool,
        login_refused: Option<String>,
    ) -> Arc<Site> {
        let site = Arc::new(Site {
            desk,
            store,
            sessions: Default::default(),
            limiter: Default::default(),
            reports,
            secure,
            login_refused,
            model: RwLock::new(Arc::new(Model::default())),
            building: tokio::sync::Mutex::new(()),
            rendered: Mutex::new(VecDeque::new()),
            emitted: Default::default(),
        });
        site.rebuild().await;
        site
    }

    /// The model now.
    pub fn model(&self) -> Arc<Model> {
        self.model.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Builds the model again (one build at a time).
    pub async fn rebuild(&self) {
        let _one = self.building.lock().await;
        let old = self.model();
        let next = Model::build(self.store.as_ref(), &self.desk, self.reports, &old).await;
        *self.model.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
    }

    /// Rebuilds every [`REBUILD`] until `stop` completes.
    pub async fn watch(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(REBUILD) => {}
            }
            self.rebuild().await;
        }
    }

    /// The lists of `family` that the budgeted rulesets emit at `at` (what a lookup checks
    /// for them): read from the store at the first lookup there, then kept (the last 8).
    pub async fn emitted(
        &self,
        store: &Store,
        at: &SnapshotInfo,
        family: Family,
    ) -> anyhow::Result<Emitted> {
        let mut kept = self.emitted.lock().await;
        if let Some(e) = kept.get(&(at.id, family)) {
            return Ok(e.clone());
        }
        let rulesets: Vec<&crate::rules::ruleset::Ruleset> = self.desk.rulesets.iter().collect();
        let lists = Arc::new(crate::job::emit::budgeted_lists(store, at, family, &rulesets).await?);
        if kept.len() >= 8 {
            kept.clear();
        }
        kept.insert((at.id, family), lists.clone());
        Ok(lists)
    }

    /// A report rendered from the store before, by `cloud/date`.
    fn rendered(&self, key: &str) -> Option<Arc<String>> {
        let kept = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().find(|(k, _)| k == key).map(|(_, r)| r.clone())
    }

    fn keep_rendered(&self, key: String, page: Arc<String>) {
        let mut kept = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= REPORTS_KEPT {
            kept.pop_front();
        }
        kept.push_back((key, page));
    }
}

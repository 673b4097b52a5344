//! Every page of the review site with arbitrary text wherever data reaches it: tag names,
//! regions, services, guard reasons, snapshot labels, who decided and why, problems. The
//! property: the page's markup does not depend on the text — each of `<`, `>`, `"` and `'`
//! occurs as often as when every text is a plain `x`. Escaped text adds none of them; text that
//! reached the page as markup would.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use proptest::prelude::*;
use tagwall::core::model::{Cloud, SnapshotInfo};
use tagwall::job::approve::{Desk, Review};
use tagwall::publish::baseline::Published;
use tagwall::publish::ruleset::Withheld;
use tagwall::rules::lookup::{Found, Relation, Report, Span, Verdict};
use tagwall::rules::ruleset::{Ruleset, RulesetSpec};
use tagwall::rules::summary::{EntryChange, FamilyDelta, RangeChange, RulesetRun, RulesetStatus};
use tagwall::serve::auth::Access;
use tagwall::serve::content::Index;
use tagwall::serve::site::html::{page, Who};
use tagwall::serve::site::model::{Model, Pending, PublishRow};
use tagwall::serve::site::pages::{self, View};
use tagwall::store::{Approval, Decision};

/// Text made to break out of HTML, or anything at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
            "'><svg onload=alert(1)>",
            "</td></tr></table><h1>x",
            "<!--",
            "]]><![CDATA[",
            "&lt;b&gt;",
        ])
        .prop_map(str::to_string),
        "\\PC{1,40}",
        any::<String>().prop_filter("not empty", |s| !s.is_empty()),
    ]
}

fn ruleset() -> Ruleset {
    let spec: RulesetSpec = toml::from_str("name = \"entra\"\ntags = [\"AzureCloud\"]\n").unwrap();
    spec.validate().unwrap()
}

fn desk() -> Desk {
    Desk {
        output_dir: "/nonexistent".into(),
        validate: Default::default(),
        rulesets: vec![ruleset()],
        fetch: Default::default(),
        guard: Default::default(),
        notify: Default::default(),
        lock_wait: std::time::Duration::from_secs(1),
    }
}

fn info() -> SnapshotInfo {
    SnapshotInfo {
        id: 2,
        cloud: Cloud::Public,
        file_date: NaiveDate::from_ymd_opt(2025, 7, 28).unwrap(),
        change_number: 1,
        tags: 1,
        prefixes: 1,
        content_sha256: "0".repeat(64),
        sha256: "0".repeat(64),
        size: 0,
        source: "file".into(),
    }
}

fn changes(t: &dyn Fn(usize) -> String) -> tagwall::rules::summary::Changes {
    let range = |cidr: &str, i| RangeChange {
        cidr: cidr.into(),
        addresses: "256".into(),
        tags: vec![t(i), t(i + 1)],
    };
    let entry = |cidr: &str, i| EntryChange {
        cidr: cidr.into(),
        tags: vec![t(i)],
        addresses: 256.into(),
        until: None,
    };
    BTreeMap::from([(
        "ipv4".to_string(),
        FamilyDelta {
            allowed: vec![range("20.0.0.0/24", 10)],
            disallowed: vec![range("40.0.0.0/24", 12)],
            allowed_addresses: "256".into(),
            disallowed_addresses: "256".into(),
            added: vec![entry("20.0.0.0/24", 14)],
            removed: vec![entry("40.0.0.0/24", 15)],
            retiring: Vec::new(),
        },
    )])
}

/// The model with text `t(i)` in every place data reaches a page.
fn model(t: &dyn Fn(usize) -> String) -> Model {
    let mut run = RulesetRun::failed("entra", String::new());
    run.error = None;
    run.status = RulesetStatus::Withheld;
    run.reasons = vec![t(0)];
    run.changes = changes(t);
    let review = Review {
        marker: Withheld {
            ruleset: "entra".into(),
            snapshot_id: 2,
            content_sha256: None,
            snapshot: t(1),
            reasons: vec![t(2)],
            notified_at: None,
        },
        info: info(),
        published: Published::Damaged(t(3)),
        changes: changes(t),
    };
    let mut m = Model::default();
    m.runs = BTreeMap::from([("entra".to_string(), run)]);
    m.last_run = Some(t(4));
    m.pending = BTreeMap::from([(
        "entra".to_string(),
        Arc::new(Pending::new(review, String::new())),
    )]);
    m.approvals = vec![Approval {
        decision: Decision::Rejected,
        ruleset: "entra".into(),
        snapshot: t(5),
        snapshot_id: 1,
        approved_by: t(6),
        comment: t(7),
        reasons: vec![t(8)],
        approved_at: t(9),
    }];
    m.publishes = BTreeMap::from([(
        "entra".to_string(),
        vec![PublishRow {
            id: 1,
            at: t(16),
            snapshot: t(17),
            change: None,
            counts: Vec::new(),
        }],
    )]);
    m.reports = BTreeMap::from([("Public".to_string(), vec!["2025-07-28".to_string()])]);
    m.problems = vec![t(18)];
    m
}

fn lookup(t: &dyn Fn(usize) -> String) -> Report {
    Report {
        query: "20.0.0.1/32".parse().unwrap(),
        snapshot: info(),
        found: vec![Found {
            tag: t(20),
            region: t(21),
            system_service: t(22),
            prefixes: vec!["20.0.0.0/24".parse().unwrap()],
            relation: Relation::Contains,
        }],
        verdicts: vec![Verdict {
            ruleset: "entra".into(),
            allows: true,
            via: vec![t(23)],
            note: Some(t(24)),
        }],
        history: vec![(
            t(20),
            vec![Span {
                from: NaiveDate::from_ymd_opt(2025, 7, 28).unwrap(),
                to: None,
            }],
        )],
    }
}

/// Every page, whole, with text `t(i)`.
fn pages(t: &dyn Fn(usize) -> String) -> Vec<(&'static str, String)> {
    let desk = desk();
    let model = model(t);
    let mut index = Index::default();
    index.problems.insert("entra".into(), t(19));
    let name = t(25);
    let who = Who {
        name: Some(&name),
        approves: true,
        csrf: Some("0123"),
    };
    let v = View {
        who,
        access: Access::Open,
        index: &index,
        model: &model,
        desk: &desk,
    };
    let error = t(26);
    let q = t(27);
    vec![
        ("/", page(&t(28), &v.who, &pages::home::body(&v))),
        (
            "/rulesets/entra/",
            pages::ruleset::body(&v, "entra").unwrap(),
        ),
        (
            "/pending/entra",
            pages::pending::body(&v, "entra", Some("0123")).unwrap(),
        ),
        ("/reports/", pages::reports::index(&v)),
        (
            "/reports/Public/",
            pages::reports::cloud(&v, "Public").unwrap(),
        ),
        (
            "/lookup",
            pages::lookup::body(&v, &q, Some(Ok(vec![lookup(t)]))),
        ),
        (
            "/lookup error",
            pages::lookup::body(&v, &q, Some(Err(error.clone()))),
        ),
        (
            "/login",
            pages::login::body(Some(&error), Some(&error), false),
        ),
        (
            "/login failed",
            pages::login::body(None, Some(&error), false),
        ),
    ]
}

fn markup(html: &str) -> [usize; 4] {
    ['<', '>', '"', '\''].map(|c| html.matches(c).count())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_text_from_data_becomes_markup_on_any_page(texts in prop::collection::vec(text(), 30)) {
        let hostile = pages(&|i| texts[i].clone());
        let plain = pages(&|_| "x".to_string());
        for ((path, h), (_, p)) in hostile.iter().zip(&plain) {
            prop_assert_eq!(markup(h), markup(p), "{} holds markup from its data:\n{}", path, h);
        }
    }
}

//! Notifications on real weeks, received by real local servers: Slack and Teams messages posted
//! to an HTTPS webhook receiver, and email through a real SMTP server (Python's aiosmtpd) with
//! STARTTLS and a login from the environment.

use crate::common;

use common::https::{Reply, TestServer};
use common::job::{prefixes_of, Job};
use common::smtp::SmtpSink;
use common::{run_text, shared_data, tagwall};
use serde_json::Value;

const RULESET: &str =
    "[[ruleset]]\nname = \"entra\"\ntags = [\"AzureCloud\"]\nformats = [\"txt\"]\n";

/// The JSON bodies POSTed to `path`, in order.
fn posts(server: &TestServer, path: &str) -> Vec<Value> {
    server
        .log()
        .into_iter()
        .filter(|l| l.method == "POST" && l.path == path)
        .map(|l| serde_json::from_slice(&l.request_body).unwrap())
        .collect()
}

/// Adds a week whose AzureCloud gains 0.0.0.0/0: the guard withholds it.
fn add_dangerous_week(job: &Job, shared: &std::path::Path) {
    job.add_edited_week(shared, "20250728", "20250804", |doc| {
        prefixes_of(doc, "AzureCloud").push("0.0.0.0/0".into());
    });
}

fn last_run(job: &Job) -> Value {
    serde_json::from_slice(&std::fs::read(job.out().join("last-run.json")).unwrap()).unwrap()
}

#[test]
fn slack_messages_say_what_changed_and_how_to_approve() {
    let Some(shared) = shared_data() else { return };
    let server = TestServer::start();
    server.route("/slack/T0K3N", Reply::page("ok"));
    let job = Job::new(
        None,
        &format!(
            "ca_bundle = \"{}\"\n[notify]\nwebhook_url = \"{}\"\nformat = \"slack\"\nwhen = \"changes\"\n{RULESET}",
            server.ca_pem.display(),
            server.url("/slack/T0K3N")
        ),
    );
    job.add_week(&shared, "20250721");
    assert_eq!(job.sync(&[]).0, 0);
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let run = last_run(&job);
    let families = run["rulesets"][0]["changes"].as_object().unwrap();
    let list = |key: &str| -> Vec<Value> {
        families
            .values()
            .flat_map(|f| f[key].as_array().unwrap().clone())
            .collect()
    };
    let (added, removed) = (list("added"), list("removed"));
    assert!(
        !added.is_empty() || !removed.is_empty(),
        "a real week changes AzureCloud"
    );
    let posted = posts(&server, "/slack/T0K3N");
    assert_eq!(posted.len(), 2, "one message per run");
    let msg = &posted[1];
    let blocks = msg["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "tagwall sync: published changes");
    let section = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .find(|t| t.starts_with("*`entra`*"))
        .unwrap_or_else(|| panic!("no ruleset section: {msg}"));
    let counts = format!("firewall entries +{} / -{}", added.len(), removed.len());
    assert!(section.contains(&counts), "{counts}: {section}");
    // Addresses lead: the family's change, then its ranges with their tags.
    let ranges = list("allowed");
    assert!(!ranges.is_empty());
    assert!(section.contains("IPv4: newly allowed "), "{section}");
    assert!(
        ranges
            .iter()
            .any(|r| section.contains(&format!("+ {} AzureCloud", r["cidr"].as_str().unwrap()))),
        "{section}"
    );
    assert!(
        section.find("newly allowed").unwrap() < section.find("firewall entries").unwrap(),
        "{section}"
    );

    // Nothing new: `when = "changes"` sends nothing.
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(posts(&server, "/slack/T0K3N").len(), 2, "{text}");

    add_dangerous_week(&job, &shared);
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    let posted = posts(&server, "/slack/T0K3N");
    assert_eq!(posted.len(), 3);
    let all = serde_json::to_string(&posted[2]).unwrap();
    for wanted in [
        "tagwall sync: a change was withheld for review",
        "*`entra`*: withheld",
        "AzureCloud (",
        "*Withheld:* IPv4 would gain",
        "`tagwall approve entra --show`",
        "`tagwall approve entra --comment \\\"reviewed: why it is safe\\\"`",
    ] {
        assert!(all.contains(wanted), "{wanted}: {all}");
    }
    // The reason and the commands before the list.
    assert!(
        all.find("*Withheld:*").unwrap() < all.find("```IPv4: newly allowed").unwrap(),
        "{all}"
    );
    assert!(
        posted[2]["text"].as_str().unwrap().starts_with(
            "tagwall sync: a change was withheld for review (entra withheld: IPv4 would gain"
        ),
        "{}",
        posted[2]["text"]
    );
    assert!(!text.contains("T0K3N"), "{text}");
}

#[test]
fn teams_cards_and_failed_runs_are_posted() {
    let Some(shared) = shared_data() else { return };
    let server = TestServer::start();
    server.route("/teams", Reply::page("ok"));
    let job = Job::new(
        None,
        &format!(
            "ca_bundle = \"{}\"\n[notify]\nwebhook_url = \"{}\"\nformat = \"teams\"\n{RULESET}",
            server.ca_pem.display(),
            server.url("/teams")
        ),
    );
    job.add_week(&shared, "20250728");
    assert_eq!(job.sync(&[]).0, 0);
    add_dangerous_week(&job, &shared);
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    let posted = posts(&server, "/teams");
    assert_eq!(posted.len(), 2);
    let msg = &posted[1];
    assert_eq!(msg["type"], "message");
    let attachment = &msg["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    let body = card["body"].as_array().unwrap();
    assert_eq!(
        body[0]["text"],
        "tagwall sync: a change was withheld for review"
    );
    let all = serde_json::to_string(card).unwrap();
    for wanted in [
        "entra: withheld",
        "- allowed ",
        "**Withheld:** IPv4 would gain",
        "tagwall approve entra --show",
    ] {
        assert!(all.contains(wanted), "{wanted}: {all}");
    }
    // A run that fails as a whole is posted too, with its error.
    let (code, text) = job.sync(&["--cloud", "Nowhere"]);
    assert_eq!(code, 1, "{text}");
    let posted = posts(&server, "/teams");
    assert_eq!(posted.len(), 3, "{text}");
    let all = serde_json::to_string(&posted[2]).unwrap();
    assert!(
        all.contains("tagwall sync: failed")
            && all.contains("**Error:**")
            && all.contains("Nowhere"),
        "{all}"
    );
}

/// `[notify.email]` for `sink`, with or without its CA.
fn email_settings(sink: &SmtpSink, trust: bool) -> String {
    let ca = if trust {
        format!("ca_bundle = \"{}\"\n", sink.ca_pem.display())
    } else {
        String::new()
    };
    format!(
        "[notify.email]\nhost = \"127.0.0.1\"\nport = {}\n{ca}from = \"tagwall <tagwall@example.test>\"\nto = [\"Firewall team <fw@example.test>\", \"noc@example.test\"]\ntimeout_seconds = 20\n{RULESET}",
        sink.port
    )
}

fn sync_with_login(job: &Job, user: &str, password: &str) -> (i32, String) {
    run_text(
        tagwall(job.path())
            .env("TAGWALL_SMTP_USERNAME", user)
            .env("TAGWALL_SMTP_PASSWORD", password)
            .args(["sync", "-v", "--source"])
            .arg(&job.mirror),
    )
}

fn part<'m>(msg: &'m Value, kind: &str, filename: Option<&str>) -> &'m str {
    msg["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == kind && p["filename"].as_str() == filename)
        .and_then(|p| p["text"].as_str())
        .unwrap_or_else(|| panic!("no {kind} part {filename:?}: {msg}"))
}

#[test]
fn email_goes_through_starttls_with_the_reports() {
    let Some(shared) = shared_data() else { return };
    let sink = SmtpSink::start(true, Some(("tagwall", "S3CRET-pw")));
    let job = Job::new(None, &format!("[notify]\n{}", email_settings(&sink, true)));
    job.add_week(&shared, "20250728");
    let (code, text) = sync_with_login(&job, "tagwall", "S3CRET-pw");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("mailed the run summary to fw@example.test, noc@example.test"),
        "{text}"
    );
    add_dangerous_week(&job, &shared);
    let (code, text) = sync_with_login(&job, "tagwall", "S3CRET-pw");
    assert_eq!(code, 3, "{text}");
    let mail = sink.messages();
    assert_eq!(mail.len(), 2, "{text}");
    let msg = &mail[1];
    assert_eq!(msg["tls"], true, "STARTTLS was used");
    assert_eq!(msg["login"], "tagwall");
    assert_eq!(msg["mail_from"], "tagwall@example.test");
    assert_eq!(
        msg["rcpt_tos"],
        serde_json::json!(["fw@example.test", "noc@example.test"])
    );
    assert!(
        msg["subject"].as_str().unwrap().starts_with(
            "tagwall sync: a change was withheld for review (entra withheld: IPv4 would gain"
        ),
        "{}",
        msg["subject"]
    );
    let plain = part(msg, "text/plain", None);
    assert!(plain.contains("## Ruleset `entra`: withheld"), "{plain}");
    assert!(
        plain.contains("    tagwall approve entra --show"),
        "{plain}"
    );
    // The reason and the commands come before the lists.
    assert!(
        plain.find("Why it was withheld").unwrap() < plain.find("**IPv4**: newly allowed").unwrap(),
        "{plain}"
    );
    assert!(
        plain.contains("## Your rulesets"),
        "the weekly report follows: {plain}"
    );
    let html = part(msg, "text/html", None);
    assert!(
        html.contains("<h2>Ruleset <code>entra</code>: withheld</h2>"),
        "{html}"
    );
    assert!(html.contains("tagwall approve entra --show"), "{html}");
    assert!(html.contains("<code>0.0.0.0/0</code>"), "{html}");
    let report = part(msg, "text/html", Some("tagwall-Public-2025-08-04.html"));
    let on_disk =
        std::fs::read_to_string(job.out().join("reports/Public/2025-08-04.html")).unwrap();
    // Attached whole, but for its script: mail gateways quarantine HTML with scripts.
    assert!(on_disk.contains("<script>"));
    assert!(
        !report.contains("<script") && !html.contains("<script"),
        "{report}"
    );
    assert_eq!(
        report,
        tagwall::render::report::html::for_mail(&on_disk),
        "the weekly HTML report is attached, script-free"
    );
    assert!(report.contains("<details") || !on_disk.contains("<details"));
    assert!(!text.contains("S3CRET"), "{text}");

    // A wrong password: the server refuses, the run goes on, the password is never shown.
    let (code, text) = sync_with_login(&job, "tagwall", "wrong-S3CRET");
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("could not mail the run summary"), "{text}");
    assert!(!text.contains("S3CRET"), "{text}");
    assert!(sink.refused_logins().contains("tagwall"));
    assert_eq!(sink.messages().len(), 2);
}

#[test]
fn email_is_not_sent_to_a_server_whose_certificate_is_not_trusted() {
    let Some(shared) = shared_data() else { return };
    let sink = SmtpSink::start(true, None);
    let job = Job::new(None, &format!("[notify]\n{}", email_settings(&sink, false)));
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("could not mail the run summary"), "{text}");
    assert!(sink.messages().is_empty());
    // Trusted, without a login (the server asks for none): delivered.
    std::fs::write(
        job.path().join("tagwall.toml"),
        format!(
            "[store]\nurl = \"sqlite://{}\"\n[fetch]\nclouds = [\"Public\"]\n[notify]\n{}",
            job.path().join("t.db").display(),
            email_settings(&sink, true)
        ),
    )
    .unwrap();
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let mail = sink.messages();
    assert_eq!(mail.len(), 1, "{text}");
    assert_eq!(mail[0]["tls"], true);
    assert_eq!(mail[0]["login"], Value::Null);
    assert_eq!(
        mail[0]["subject"],
        "tagwall sync: unchanged: the published rulesets are up to date"
    );
}

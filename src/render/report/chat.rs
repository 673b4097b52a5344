//! Chat notifications of a run (`[notify] format`): a Slack incoming-webhook message with blocks,
//! and a Microsoft Teams incoming-webhook (Workflows) message with an Adaptive Card. Both say
//! what each ruleset changes, which changes the guard withheld with the command that publishes
//! them, and what failed. Text from outside (tag names, errors, fetch details) is escaped for each
//! format's markup, so it can neither mention people, link nor format; messages stay within the
//! services' limits (Slack: 50 blocks, 3,000 characters a section).

use serde_json::{json, Value};

use crate::core::text::markdown;
use crate::rules::summary::{Changes, CloudRun, RulesetRun, RulesetStatus, Summary};

use super::rulesets_section::approve_commands;

/// The most entries listed per ruleset; the counts are always whole.
pub const MAX_ENTRIES: usize = 10;
/// The most rulesets with a section of their own; the rest are named in one line. Slack: two
/// blocks each, within 50 with the title, context, error, clouds and that line.
const MAX_RULESETS_SLACK: usize = 22;
/// The same for Teams (no block limit, but a message of at most about 28 KB).
const MAX_RULESETS_TEAMS: usize = 30;
/// Slack's limit on a section's text, with room for the closing lines.
const SLACK_SECTION: usize = 2900;

/// The title: the run's verdict.
fn title(s: &Summary) -> String {
    format!("tagwall sync: {}", s.verdict())
}

/// The line under the title: when, which tagwall, dry run or forced.
fn context(s: &Summary) -> String {
    let mut line = format!("finished {} · tagwall {}", s.finished, s.tagwall);
    if s.dry_run {
        line.push_str(" · dry run: nothing was published");
    }
    if s.forced {
        line.push_str(" · --force: the guard's reasons were not enforced");
    }
    line
}

/// Slack's marks for newly allowed and no longer allowed ranges (in a code block).
const MARKS: [&str; 2] = ["+", "−"];
/// Teams' words for them (list items: a leading `+` or `-` would start a nested list).
const WORDS: [&str; 2] = ["allowed", "no longer allowed"];

/// The change in addresses, one line per family ("IPv4: newly allowed 256 addresses in 1
/// range, …"), then one line per range, `+ 20.150.27.0/24 AzureCloud (256 addresses)`, at most
/// [`MAX_ENTRIES`] ranges, then how many more and where they all are. Raw text: each format
/// escapes it.
fn entry_lines(changes: &Changes, marks: [&str; 2]) -> Vec<String> {
    let mut lines = Vec::new();
    let (mut listed, mut total) = (0, 0);
    for (family, line, [allowed, gone]) in super::address_changes::families(changes) {
        lines.push(format!("{}: {line}", family.label()));
        // Both directions get a share of the lines.
        let share = MAX_ENTRIES / 2;
        let rows = allowed
            .iter()
            .take(share.max(MAX_ENTRIES.saturating_sub(gone.len())))
            .chain(
                gone.iter()
                    .take(share.max(MAX_ENTRIES.saturating_sub(allowed.len()))),
            );
        total += allowed.len() + gone.len();
        for row in rows {
            if listed < MAX_ENTRIES {
                listed += 1;
                let mark = if row.allowed { marks[0] } else { marks[1] };
                lines.push(format!(
                    "{mark} {} {} ({})",
                    row.range.cidr,
                    row.range.tags.join(", "),
                    row.amount()
                ));
            }
        }
    }
    if total > listed {
        lines.push(format!(
            "… {} more ranges (all in last-run.md and tagwall diff --ruleset)",
            total - listed
        ));
    }
    lines
}

/// "published 2025-07-28: +3 / -1 entries" — the status, snapshot and change counts.
fn headline(r: &RulesetRun) -> String {
    let mut line = r.status.name().to_string();
    if let Some(snap) = &r.snapshot {
        line.push_str(&format!(" {snap}"));
    }
    if let Some(by) = &r.approved_by {
        line.push_str(&format!(" (approved by {by})"));
    }
    if crate::rules::summary::any_change(&r.changes) {
        line.push_str(&format!(
            ": {}",
            crate::rules::summary::changes_line(&r.changes)
        ));
    }
    line
}

/// Rulesets worth a section: everything but the unchanged ones, at most `most`; the names of
/// the others.
fn split(s: &Summary, most: usize) -> (Vec<&RulesetRun>, Vec<&str>) {
    let (shown, quiet): (Vec<&RulesetRun>, Vec<&RulesetRun>) = s
        .rulesets
        .iter()
        .partition(|r| r.status != RulesetStatus::Unchanged);
    let mut rest: Vec<&str> = quiet.iter().map(|r| r.ruleset.as_str()).collect();
    let shown = if shown.len() > most {
        rest.extend(shown[most..].iter().map(|r| r.ruleset.as_str()));
        shown[..most].to_vec()
    } else {
        shown
    };
    (shown, rest)
}

fn cloud_line(c: &CloudRun) -> String {
    if let Some(notice) = c.notice_text() {
        return notice;
    }
    format!(
        "{}: {}{} ({})",
        c.cloud,
        c.status,
        c.file_date
            .as_deref()
            .map(|d| format!(", file of {d}"))
            .unwrap_or_default(),
        c.detail
    )
}

/// Escapes text for Slack's mrkdwn: `&`, `<`, `>` as entities (no links, no mentions), backticks
/// and formatting marks replaced or escaped by width-less lookalikes, control characters dropped.
pub fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\''),
            '*' | '_' | '~' => {
                out.push(c);
                out.push('\u{200b}');
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking the cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn slack_section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SLACK_SECTION + 90)}})
}

/// One ruleset's section: headline, entries in a code block, why withheld and the command, error.
fn slack_ruleset(r: &RulesetRun, review: Option<String>) -> Value {
    let mut text = format!(
        "*`{}`*: {}",
        slack_escape(&r.ruleset),
        slack_escape(&headline(r))
    );
    if !r.reasons.is_empty() {
        let why = if r.status.is_withheld() {
            "Withheld"
        } else {
            "Flagged"
        };
        let reasons = slack_escape(&r.reasons.join("; "));
        text.push_str(&format!("\n*{why}:* {}", cut(&reasons, 800)));
    }
    if r.status.is_withheld() {
        match review {
            // A settings URL of plain characters (`[serve] public_url`): a link of its own.
            Some(url) => text.push_str(&format!(
                "\nThe published files stay. <{url}|Review it, then approve or reject it>"
            )),
            None => {
                let [show, approve] = approve_commands(&r.ruleset);
                text.push_str(&format!(
                    "\nThe published files stay. Review, then publish:\n`{}`\n`{}`",
                    slack_escape(&show),
                    slack_escape(&approve)
                ));
            }
        }
    }
    let lines = entry_lines(&r.changes, MARKS);
    if !lines.is_empty() {
        let body: Vec<String> = lines.iter().map(|l| slack_escape(l)).collect();
        text.push_str(&format!(
            "\n```{}```",
            cut(&body.join("\n"), SLACK_SECTION / 2)
        ));
    }
    if let Some(e) = &r.error {
        text.push_str(&format!("\n*Error:* {}", cut(&slack_escape(e), 800)));
    }
    slack_section(&text)
}

/// The Slack message (`text` is the notification's fallback).
pub fn slack(s: &Summary) -> Value {
    let (shown, rest) = split(s, MAX_RULESETS_SLACK);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&title(s), 150)}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(&context(s))}]}),
    ];
    if let Some(e) = &s.error {
        blocks.push(slack_section(&format!(
            "*Error:* {}",
            cut(&slack_escape(e), SLACK_SECTION)
        )));
    }
    if !s.clouds.is_empty() {
        let clouds: Vec<String> = s
            .clouds
            .iter()
            .map(|c| {
                let line = format!("• {}", slack_escape(&cut(&cloud_line(c), 400)));
                match s.report_url(c) {
                    Some(url) => format!("{line} <{url}|report>"),
                    None => line,
                }
            })
            .collect();
        blocks.push(slack_section(&format!("*Clouds*\n{}", clouds.join("\n"))));
    }
    for r in shown {
        blocks.push(json!({"type": "divider"}));
        blocks.push(slack_ruleset(r, s.pending_url(&r.ruleset)));
    }
    if !rest.is_empty() {
        blocks.push(slack_section(&format!(
            "Unchanged or not shown: {}",
            cut(&slack_escape(&rest.join(", ")), SLACK_SECTION)
        )));
    }
    json!({"text": cut(&fallback(s), 400), "blocks": blocks})
}

/// The one-line notification text: verdict and the rulesets that were not unchanged.
pub fn fallback(s: &Summary) -> String {
    let (shown, _) = split(s, 5);
    let names: Vec<String> = shown.iter().map(|r| short(r)).collect();
    if names.is_empty() {
        title(s)
    } else {
        format!("{} ({})", title(s), names.join("; "))
    }
}

/// A ruleset in a few words: "entra published: IPv4 +256 / -0 addresses", "entra withheld:
/// <the first reason>", "entra failed".
fn short(r: &RulesetRun) -> String {
    let mut text = format!("{} {}", r.ruleset, r.status);
    if r.status.is_withheld() {
        if let Some(reason) = r.reasons.first() {
            text.push_str(&format!(": {}", cut(reason, 120)));
        }
    } else if crate::rules::summary::any_change(&r.changes) {
        let families: Vec<String> = r
            .changes
            .iter()
            .filter(|(_, d)| d.addresses_changed())
            .map(|(key, d)| {
                let family = crate::core::ranges::Family::from_key(key);
                format!(
                    "{} +{} / -{}",
                    family.label(),
                    family.amount_text(&d.allowed_addresses),
                    family.amount_text(&d.disallowed_addresses)
                )
            })
            .collect();
        if !families.is_empty() {
            text.push_str(&format!(": {}", families.join(", ")));
        }
    }
    text
}

fn text_block(text: String) -> Value {
    json!({"type": "TextBlock", "text": text, "wrap": true})
}

/// Outside text for a Teams card: Markdown escaped, and no URL or `www.` name that Teams would
/// turn into a link (a word joiner, U+2060, is put before `://` and after `www`).
fn teams_md(text: &str) -> String {
    let escaped = markdown(text);
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped.as_str();
    while !rest.is_empty() {
        if rest.starts_with("://") {
            out.push('\u{2060}');
        }
        let www = rest
            .get(..4)
            .is_some_and(|w| w.eq_ignore_ascii_case("www."));
        if www {
            out.push_str(&rest[..3]);
            out.push('\u{2060}');
            rest = &rest[3..];
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// One ruleset's container in the Teams card.
fn teams_ruleset(r: &RulesetRun, review: Option<String>) -> Value {
    let mut items = vec![json!({
        "type": "TextBlock", "wrap": true, "weight": "Bolder",
        "text": format!("{}: {}", teams_md(&r.ruleset), teams_md(&headline(r))),
    })];
    if !r.reasons.is_empty() {
        let why = if r.status.is_withheld() {
            "Withheld"
        } else {
            "Flagged"
        };
        items.push(text_block(format!(
            "**{why}:** {}",
            cut(&teams_md(&r.reasons.join("; ")), 800)
        )));
    }
    if r.status.is_withheld() {
        match review {
            Some(url) => items.push(text_block(format!(
                "The published files stay. [Review it, then approve or reject it]({url})"
            ))),
            None => {
                let [show, approve] = approve_commands(&r.ruleset);
                items.push(text_block(format!(
                    "The published files stay. Review, then publish:\r\r`{}`\r\r`{}`",
                    teams_md(&show),
                    teams_md(&approve)
                )));
            }
        }
    }
    let lines = entry_lines(&r.changes, WORDS);
    if !lines.is_empty() {
        let list: Vec<String> = lines.iter().map(|l| format!("- {}", teams_md(l))).collect();
        items.push(json!({
            "type": "TextBlock", "wrap": true, "fontType": "Monospace", "spacing": "Small",
            "text": list.join("\r"),
        }));
    }
    if let Some(e) = &r.error {
        items.push(text_block(format!("**Error:** {}", cut(&teams_md(e), 800))));
    }
    json!({"type": "Container", "separator": true, "items": items})
}

/// The Teams message: one Adaptive Card (version 1.4, full width).
pub fn teams(s: &Summary) -> Value {
    let (shown, rest) = split(s, MAX_RULESETS_TEAMS);
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true, "text": teams_md(&title(s))}),
        json!({"type": "TextBlock", "isSubtle": true, "spacing": "None", "wrap": true, "text": teams_md(&context(s))}),
    ];
    if let Some(e) = &s.error {
        body.push(text_block(format!(
            "**Error:** {}",
            cut(&teams_md(e), 2000)
        )));
    }
    if !s.clouds.is_empty() {
        let facts: Vec<Value> = s
            .clouds
            .iter()
            .map(|c| {
                let mut value = teams_md(&cut(&cloud_line(c), 400));
                if let Some(url) = s.report_url(c) {
                    value.push_str(&format!(" [report]({url})"));
                }
                json!({"title": teams_md(&c.cloud), "value": value})
            })
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    body.extend(
        shown
            .into_iter()
            .map(|r| teams_ruleset(r, s.pending_url(&r.ruleset))),
    );
    if !rest.is_empty() {
        body.push(text_block(format!(
            "Unchanged or not shown: {}",
            cut(&teams_md(&rest.join(", ")), 3000)
        )));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::summary::{EntryChange, FamilyDelta, RangeChange, RulesetRun};

    fn entry(cidr: &str, tag: &str, n: u64) -> EntryChange {
        EntryChange {
            cidr: cidr.into(),
            tags: vec![tag.into()],
            addresses: n.into(),
            until: None,
        }
    }

    fn range(cidr: &str, tag: &str, n: u64) -> RangeChange {
        RangeChange {
            cidr: cidr.into(),
            tags: vec![tag.into()],
            addresses: n.to_string(),
        }
    }

    fn summary() -> Summary {
        let mut withheld = RulesetRun::failed("entra-connector", String::new());
        withheld.error = None;
        withheld.status = RulesetStatus::Withheld;
        withheld.snapshot = Some("Public 2025-07-28 (id:4)".into());
        withheld.reasons = vec!["IPv4: 12% of the addresses would go (limit 10%)".into()];
        withheld.changes.insert(
            "ipv4".into(),
            FamilyDelta {
                allowed: (0..12)
                    .map(|i| range(&format!("20.{i}.0.0/24"), "AzureCloud", 256))
                    .collect(),
                disallowed: vec![range("40.1.0.0/16", "<!channel> *bold* `x`", 65536)],
                allowed_addresses: "3072".into(),
                disallowed_addresses: "65536".into(),
                added: (0..9)
                    .map(|i| entry(&format!("20.{i}.0.0/24"), "AzureCloud", 256))
                    .collect(),
                removed: vec![entry("40.1.0.0/16", "<!channel> *bold* `x`", 65536)],
                retiring: (0..3)
                    .map(|i| entry(&format!("52.{i}.0.0/24"), "AzureCloud", 256))
                    .collect(),
            },
        );
        let mut quiet = RulesetRun::failed("azure-all", String::new());
        quiet.error = None;
        quiet.status = RulesetStatus::Unchanged;
        let failed = RulesetRun::failed("broken", "store: \"database is locked\"".into());
        let mut s = Summary::failed("2026-12-01T00:00:00Z".into(), String::new());
        s.error = None;
        s.exit_code = 1;
        s.finished = "2026-12-01T00:00:05Z".into();
        s.rulesets = vec![withheld, quiet, failed];
        s
    }

    #[test]
    fn with_the_review_site_messages_link_its_pages() {
        let mut s = summary();
        s.site = Some("https://tw.example.com".into());
        s.clouds = vec![crate::rules::summary::CloudRun {
            cloud: "Public".into(),
            file_date: Some("2025-07-28".into()),
            report: Some("out/reports/Public/2025-07-28".into()),
            ..serde_json::from_value(
                serde_json::json!({"cloud": "Public", "status": "new", "detail": "new"}),
            )
            .unwrap()
        }];
        let slack = serde_json::to_string(&slack(&s)).unwrap();
        assert!(
            slack.contains("<https://tw.example.com/pending/entra-connector|Review it, then approve or reject it>"),
            "{slack}"
        );
        assert!(
            slack.contains("<https://tw.example.com/reports/Public/2025-07-28|report>"),
            "{slack}"
        );
        assert!(!slack.contains("tagwall approve"), "{slack}");
        let teams = serde_json::to_string(&teams(&s)).unwrap();
        assert!(
            teams.contains("](https://tw.example.com/pending/entra-connector)"),
            "{teams}"
        );
        assert!(teams.contains("[report](https://tw.example.com/reports/Public/2025-07-28)"));
        let mut md = Vec::new();
        crate::render::report::run_summary::write(&mut md, &s).unwrap();
        let md = String::from_utf8(md).unwrap();
        assert!(
            md.contains("<https://tw.example.com/pending/entra-connector>"),
            "{md}"
        );
        assert!(
            md.contains("report: <https://tw.example.com/reports/Public/2025-07-28>"),
            "{md}"
        );
        let mut html = Vec::new();
        crate::render::report::run_summary_html::write(&mut html, &s).unwrap();
        let html = String::from_utf8(html).unwrap();
        assert!(
            html.contains("<a href=\"https://tw.example.com/pending/entra-connector\">"),
            "{html}"
        );
        assert!(!html.contains("tagwall approve"), "{html}");
    }

    #[test]
    fn slack_names_each_change_the_approve_command_and_the_failures() {
        let v = slack(&summary());
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(v["blocks"][0]["text"]["text"], "tagwall sync: failed");
        assert!(
            text.contains("+ 20.0.0.0/24 AzureCloud (256 addresses)"),
            "{text}"
        );
        assert!(text.contains("… 3 more ranges"), "{text}");
        assert!(
            text.contains("IPv4: newly allowed 3072 addresses in 12 ranges"),
            "{text}"
        );
        assert!(text.contains("− 40.1.0.0/16"), "{text}");
        assert!(
            text.contains("tagwall approve entra-connector --show"),
            "{text}"
        );
        assert!(
            text.contains("*Error:* store: \\\"database is locked\\\""),
            "{text}"
        );
        assert!(text.contains("Unchanged or not shown: azure-all"), "{text}");
        assert!(v["blocks"].as_array().unwrap().len() <= 50);
        // The hostile tag neither mentions nor formats.
        assert!(
            !text.contains("<!channel>") && text.contains("&lt;!channel&gt;"),
            "{text}"
        );
        assert_eq!(
            v["text"],
            "tagwall sync: failed (entra-connector withheld: IPv4: 12% of the addresses would go (limit 10%); broken failed)"
        );
    }

    #[test]
    fn slack_stays_within_its_limits() {
        let mut s = summary();
        let template = s.rulesets[0].clone();
        s.rulesets = (0..60)
            .map(|i| {
                let mut r = template.clone();
                r.ruleset = format!("r{i}");
                r.reasons = vec!["x".repeat(5000)];
                r
            })
            .collect();
        let v = slack(&s);
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{}", blocks.len());
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.len() <= 3000, "{}", t.len());
            }
        }
        assert!(serde_json::to_string(&v).unwrap().contains("r59"));
    }

    #[test]
    fn teams_is_one_adaptive_card_with_escaped_text() {
        let v = teams(&summary());
        let card = &v["attachments"][0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        let text = serde_json::to_string(card).unwrap();
        assert!(
            text.contains("tagwall approve entra-connector --show"),
            "{text}"
        );
        assert!(text.contains("\\\\*bold\\\\*"), "{text}");
        assert!(text.contains("\\r- allowed 20.1.0.0/24"), "{text}");
        assert!(
            text.contains("- no longer allowed 40.1.0.0/16 &lt;!channel&gt; \\\\*bold"),
            "{text}"
        );
        // The reason and the commands come before the list.
        let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"));
        assert!(at("**Withheld:**") < at("allowed 20.1.0.0/24"), "{text}");
        assert!(text.contains("**Error:**"), "{text}");
    }

    #[test]
    fn teams_never_links_a_url_in_outside_text() {
        let t = teams_md("Storage.https://evil.example/x and WWW.evil.example");
        assert!(!t.contains("https://") && !t.contains("WWW."), "{t}");
        assert_eq!(
            t.replace('\u{2060}', ""),
            "Storage.https://evil.example/x and WWW.evil.example"
        );
    }
}

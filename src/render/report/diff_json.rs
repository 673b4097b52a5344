//! The diff as JSON, schema `tagwall.diff/1` (documented in docs/diff-json.md).

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::core::diff::{Anomaly, Diff, TagStatus};
use crate::core::model::SnapshotInfo;

use super::json_count as count;

fn side(s: &SnapshotInfo) -> Value {
    json!({
        "id": s.id,
        "file_date": s.file_date.to_string(),
        "change_number": s.change_number,
        "sha256": s.sha256,
    })
}

fn status(s: TagStatus) -> &'static str {
    match s {
        TagStatus::Added => "added",
        TagStatus::Removed => "removed",
        TagStatus::Changed => "changed",
    }
}

/// The anomaly's kind (stable) and a sentence for people.
pub fn anomaly_text(a: &Anomaly) -> (&'static str, String) {
    match a {
        Anomaly::ContentChangedNumberUnchanged { number } => (
            "content_changed_number_unchanged",
            format!("the content changed but the top-level changeNumber stayed {number}"),
        ),
        Anomaly::NumberWentDown { from, to } => (
            "number_went_down",
            format!("the top-level changeNumber went down from {from} to {to}"),
        ),
        Anomaly::NumberMovedWithoutContentChange { from, to } => (
            "number_moved_without_content_change",
            format!("the top-level changeNumber moved from {from} to {to} with no content change"),
        ),
        Anomaly::TagChangedNumberUnchanged { tag, number } => (
            "tag_changed_number_unchanged",
            format!("{tag} changed but its changeNumber stayed {number}"),
        ),
    }
}

/// Builds the JSON document.
pub fn to_value(diff: &Diff, from: &SnapshotInfo, to: &SnapshotInfo) -> Value {
    let (added, removed) = diff.pairs();
    let (v4a, v4r, v6a, v6r) = diff.addresses;
    let tags: Vec<Value> = diff
        .tags
        .iter()
        .map(|t| {
            let region = t.after.as_ref().or(t.before.as_ref()).map_or("", |m| m.region.as_str());
            json!({
                "name": t.name,
                "status": status(t.status),
                "region": region,
                "prefixes_added": t.prefixes_added.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "prefixes_removed": t.prefixes_removed.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "metadata_changes": t.metadata_changes().iter().map(|c| json!({
                    "field": c.field, "from": c.from, "to": c.to,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "schema": "tagwall.diff/1",
        "cloud": from.cloud.name(),
        "from": side(from),
        "to": side(to),
        "content_changed": !diff.is_empty(),
        "summary": {
            "tags_added": diff.count(TagStatus::Added),
            "tags_removed": diff.count(TagStatus::Removed),
            "tags_changed": diff.count(TagStatus::Changed),
            "prefixes_added": added,
            "prefixes_removed": removed,
            "ipv4_addresses_added": count(v4a),
            "ipv4_addresses_removed": count(v4r),
            "ipv6_addresses_added": count(v6a),
            "ipv6_addresses_removed": count(v6r),
        },
        "regions": diff.regions.iter().map(|(name, r)| json!({
            "region": name, "prefixes_added": r.prefixes_added, "prefixes_removed": r.prefixes_removed,
        })).collect::<Vec<_>>(),
        "anomalies": diff.anomalies.iter().map(|a| {
            let (kind, message) = anomaly_text(a);
            json!({ "kind": kind, "message": message })
        }).collect::<Vec<_>>(),
        "tags": tags,
    })
}

/// Writes the JSON document, pretty-printed, with a final newline.
pub fn write(
    out: &mut impl Write,
    diff: &Diff,
    from: &SnapshotInfo,
    to: &SnapshotInfo,
) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(diff, from, to))?;
    writeln!(out)
}

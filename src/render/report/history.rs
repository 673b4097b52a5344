//! A tag's weekly changelog as text or JSON.

use std::io::{self, Write};

use serde_json::json;

use crate::core::history::Entry;

/// One line per snapshot with the counts and the change, then the prefixes added and removed.
pub fn write_text(out: &mut impl Write, tag: &str, entries: &[Entry]) -> io::Result<()> {
    for e in entries {
        let s = &e.snapshot;
        let what = match (e.present, e.first) {
            (false, _) if e.prefixes_removed.is_empty() => "absent".to_string(),
            (false, _) => format!("removed (-{})", e.prefixes_removed.len()),
            (true, true) => "first snapshot".to_string(),
            (true, false) if e.prefixes_added.is_empty() && e.prefixes_removed.is_empty() => {
                "unchanged".to_string()
            }
            (true, false) => format!("+{} -{}", e.prefixes_added.len(), e.prefixes_removed.len()),
        };
        writeln!(
            out,
            "{} {}  id:{:<4} ipv4 {:>6}  ipv6 {:>6}  {what}",
            tag, s.file_date, s.id, e.ipv4_prefixes, e.ipv6_prefixes
        )?;
        if !e.first {
            for p in &e.prefixes_added {
                writeln!(out, "    + {p}")?;
            }
            for p in &e.prefixes_removed {
                writeln!(out, "    - {p}")?;
            }
        }
    }
    Ok(())
}

/// `{"tag", "cloud", "entries": [...]}` with each entry's snapshot, counts and changes.
pub fn write_json(out: &mut impl Write, tag: &str, entries: &[Entry]) -> io::Result<()> {
    let cloud = entries.first().map_or("", |e| e.snapshot.cloud.name());
    let list: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({
                "snapshot": { "id": e.snapshot.id, "file_date": e.snapshot.file_date.to_string(),
                              "change_number": e.snapshot.change_number },
                "first": e.first,
                "present": e.present,
                "ipv4_prefixes": e.ipv4_prefixes,
                "ipv6_prefixes": e.ipv6_prefixes,
                "prefixes_added": e.prefixes_added.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "prefixes_removed": e.prefixes_removed.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_writer_pretty(
        &mut *out,
        &json!({ "tag": tag, "cloud": cloud, "entries": list }),
    )?;
    writeln!(out)
}

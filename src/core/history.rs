//! One tag's weekly changelog, computed from its validity intervals alone. Pure: no I/O.

use ipnet::IpNet;

use crate::core::model::SnapshotInfo;

/// A stored interval of one of the tag's prefixes: the ordinals of the first and last snapshot
/// holding it (`to` is [`OPEN`](crate::core::model::OPEN) while it still holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixSpan {
    /// The prefix.
    pub prefix: IpNet,
    /// The first ordinal.
    pub from: i64,
    /// The last ordinal.
    pub to: i64,
}

/// A stored interval of the tag's properties, with its prefix counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionSpan {
    /// The first ordinal.
    pub from: i64,
    /// The last ordinal.
    pub to: i64,
    /// IPv4 prefixes in this version.
    pub ipv4_prefixes: i64,
    /// IPv6 prefixes in this version.
    pub ipv6_prefixes: i64,
}

impl VersionSpan {
    /// Whether the version holds at snapshot ordinal `ord`.
    pub fn holds_at(&self, ord: i64) -> bool {
        self.from <= ord && ord <= self.to
    }
}

/// The tag in one snapshot of its cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The snapshot.
    pub snapshot: SnapshotInfo,
    /// Whether this is the cloud's first stored snapshot (everything in it counts as added).
    pub first: bool,
    /// Whether the tag is in it.
    pub present: bool,
    /// Its IPv4 and IPv6 prefix counts there (0 when absent).
    pub ipv4_prefixes: i64,
    /// See `ipv4_prefixes`.
    pub ipv6_prefixes: i64,
    /// Prefixes that are in this snapshot but not the one before (all of them in the first).
    pub prefixes_added: Vec<IpNet>,
    /// Prefixes that were in the snapshot before but are not in this one.
    pub prefixes_removed: Vec<IpNet>,
}

/// The tag's entry for each snapshot (`snapshots` in history order, with their ordinals).
pub fn changelog(
    snapshots: &[(SnapshotInfo, i64)],
    prefixes: &[PrefixSpan],
    versions: &[VersionSpan],
) -> Vec<Entry> {
    let mut out = Vec::with_capacity(snapshots.len());
    for (k, (info, ord)) in snapshots.iter().enumerate() {
        let prev = k.checked_sub(1).map(|p| snapshots[p].1);
        let version = versions.iter().find(|v| v.holds_at(*ord));
        let mut added: Vec<IpNet> = prefixes
            .iter()
            .filter(|s| s.from == *ord)
            .map(|s| s.prefix)
            .collect();
        let mut removed: Vec<IpNet> = match prev {
            Some(prev) => prefixes
                .iter()
                .filter(|s| s.to == prev)
                .map(|s| s.prefix)
                .collect(),
            None => Vec::new(),
        };
        added.sort_unstable();
        removed.sort_unstable();
        out.push(Entry {
            snapshot: info.clone(),
            first: k == 0,
            present: version.is_some(),
            ipv4_prefixes: version.map_or(0, |v| v.ipv4_prefixes),
            ipv6_prefixes: version.map_or(0, |v| v.ipv6_prefixes),
            prefixes_added: added,
            prefixes_removed: removed,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::fixtures::info;
    use crate::core::model::OPEN;

    #[test]
    fn appearances_and_disappearances_per_week() {
        let snaps = [
            (info(1, 6), 10),
            (info(2, 13), 20),
            (info(3, 20), 30),
            (info(4, 27), 40),
        ];
        let a: IpNet = "10.0.0.0/8".parse().unwrap();
        let b: IpNet = "11.0.0.0/8".parse().unwrap();
        // a in weeks 1-2, b from week 2 on.
        let span = |prefix, from, to| PrefixSpan { prefix, from, to };
        let version = |from, to, ipv4_prefixes| VersionSpan {
            from,
            to,
            ipv4_prefixes,
            ipv6_prefixes: 0,
        };
        let prefixes = [span(a, 10, 20), span(b, 20, OPEN)];
        let versions = [version(10, 10, 1), version(20, 20, 2), version(30, OPEN, 1)];
        let log = changelog(&snaps, &prefixes, &versions);
        let summary: Vec<(bool, i64, usize, usize)> = log
            .iter()
            .map(|e| {
                (
                    e.present,
                    e.ipv4_prefixes,
                    e.prefixes_added.len(),
                    e.prefixes_removed.len(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (true, 1, 1, 0),
                (true, 2, 1, 0),
                (true, 1, 0, 1),
                (true, 1, 0, 0)
            ]
        );
        assert_eq!(log[2].prefixes_removed, [a]);
        let gone = changelog(&snaps, &[span(a, 10, 10)], &[version(10, 10, 1)]);
        assert!(!gone[1].present);
        assert_eq!(gone[1].prefixes_removed, [a]);
    }
}

-- `tagwall diff` without reading whole snapshots.
-- Each snapshot's addresses over all its tags, as merged ranges (`ranges::AddrSet::to_bytes`):
-- the unique addresses gained and lost between two snapshots come from two rows.
CREATE TABLE snapshot_addresses (
    snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots (id),
    ipv4 BLOB NOT NULL,
    ipv6 BLOB NOT NULL
);
-- The intervals that start or end between two snapshots, found from the index alone: the index
-- on (cloud, to_ord) becomes one on (cloud, to_ord, from_ord), so no fourth index is maintained.
DROP INDEX prefix_intervals_by_ord;
CREATE INDEX prefix_intervals_by_ord ON prefix_intervals (cloud, to_ord, from_ord);

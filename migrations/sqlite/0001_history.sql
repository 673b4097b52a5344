-- The history store (SQLite). See ARCHITECTURE.md, "History store".
-- Ordinals (`ord`, `from_ord`, `to_ord`) sort a cloud's snapshots: days since 1970-01-01 of the
-- file date times 64, plus the snapshot's rank among files of the same date. `to_ord` 2147483647
-- marks an interval that reaches the newest snapshot.

CREATE TABLE clouds (
    code INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO clouds (code, name) VALUES (1, 'Public'), (2, 'AzureGovernment'), (3, 'China'), (4, 'AzureGermany');

-- One row, updated first by every import so that imports into one store run one at a time.
CREATE TABLE import_lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO import_lock (id, generation) VALUES (1, 0);

CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cloud INTEGER NOT NULL REFERENCES clouds (code),
    ord INTEGER NOT NULL,
    file_date TEXT NOT NULL,
    change_number INTEGER NOT NULL,
    content_sha256 TEXT NOT NULL,
    tag_count INTEGER NOT NULL,
    prefix_count INTEGER NOT NULL,
    raw_sha256 TEXT NOT NULL,
    raw_size INTEGER NOT NULL,
    raw_render INTEGER NOT NULL,
    raw_style INTEGER NOT NULL,
    raw_blob BLOB NOT NULL,
    source_name TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (cloud, content_sha256)
);
CREATE INDEX snapshots_by_ord ON snapshots (cloud, ord);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cloud INTEGER NOT NULL REFERENCES clouds (code),
    name TEXT NOT NULL,
    UNIQUE (cloud, name)
);

-- A tag's properties (and a digest of its prefix set) over the run of snapshots they hold in.
CREATE TABLE tag_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cloud INTEGER NOT NULL,
    tag_id INTEGER NOT NULL REFERENCES tags (id),
    from_ord INTEGER NOT NULL,
    to_ord INTEGER NOT NULL,
    json_id TEXT NOT NULL,
    change_number INTEGER NOT NULL,
    region TEXT NOT NULL,
    region_id INTEGER,
    platform TEXT NOT NULL,
    system_service TEXT NOT NULL,
    network_features TEXT, -- NULL: absent from the file; 'null'; or a JSON array
    ipv4_prefixes INTEGER NOT NULL,
    ipv6_prefixes INTEGER NOT NULL,
    prefixes_digest BLOB NOT NULL, -- sha256 (first 16 bytes) of the tag's sorted prefixes
    version_digest BLOB NOT NULL   -- sha256 (first 16 bytes) of every column above from json_id on
);
CREATE INDEX tag_versions_by_ord ON tag_versions (cloud, to_ord, from_ord);
CREATE INDEX tag_versions_by_tag ON tag_versions (tag_id, from_ord);

-- A (tag, prefix) pair over the run of snapshots it holds in. `prefix` is the network address
-- bytes followed by the prefix length (5 bytes for IPv4, 17 for IPv6).
CREATE TABLE prefix_intervals (
    id INTEGER PRIMARY KEY,
    cloud INTEGER NOT NULL,
    tag_id INTEGER NOT NULL REFERENCES tags (id),
    prefix BLOB NOT NULL,
    from_ord INTEGER NOT NULL,
    to_ord INTEGER NOT NULL
);
CREATE INDEX prefix_intervals_by_ord ON prefix_intervals (cloud, to_ord);
-- Covers the import's read of a tag's intervals, which then needs no table lookups.
CREATE INDEX prefix_intervals_by_tag ON prefix_intervals (tag_id, to_ord, prefix, from_ord);

-- The newest snapshot's prefixes per tag (exactly the facts of the open intervals), so that the
-- weekly append is a set difference that reads no interval. `prefixes` holds each prefix's bytes
-- preceded by their length, in sorted order.
CREATE TABLE head_prefixes (
    tag_id INTEGER PRIMARY KEY REFERENCES tags (id),
    cloud INTEGER NOT NULL,
    prefixes BLOB NOT NULL
);

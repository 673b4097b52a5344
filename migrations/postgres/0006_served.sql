-- Each publish of a ruleset's directory, byte for byte, written in the same transaction as a
-- whole: `tagwall serve` with [serve] source = "store" serves the newest of each ruleset, so
-- replicas without a shared disk serve identical bytes, ETags and Last-Modified. The newest
-- few per ruleset are kept.
CREATE TABLE publishes (
    id BIGSERIAL PRIMARY KEY,
    ruleset TEXT NOT NULL,
    -- The sha256 of the manifest.json below: a publish identical to the newest is not recorded.
    manifest_sha256 TEXT NOT NULL,
    -- RFC 3339, UTC: the Last-Modified of every file.
    published_at TEXT NOT NULL
);
CREATE INDEX publishes_by_ruleset ON publishes (ruleset, id);

-- The files of a publish, manifest.json included, in the manifest's order.
CREATE TABLE publish_files (
    publish_id BIGINT NOT NULL REFERENCES publishes (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (publish_id, position)
);

-- Conditional downloads (`tagwall fetch`): the validators each URL last answered with and the
-- snapshot its bytes became, so an unchanged file costs one small request (304 Not Modified).
CREATE TABLE fetch_validators (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    sha256 TEXT NOT NULL,
    snapshot_id BIGINT NOT NULL REFERENCES snapshots (id),
    fetched_at TEXT NOT NULL
);

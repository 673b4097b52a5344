-- Published state the store keeps for sync and approve.

-- The diff reports written (out/reports/<cloud>/<date>.*): which snapshot each compares with
-- which. A snapshot with a predecessor but no row here, or a row naming another predecessor
-- (a backfill came in between), gets its report (re)written by the next run.
CREATE TABLE reports (
    snapshot_id BIGINT PRIMARY KEY REFERENCES snapshots (id),
    before_id BIGINT NOT NULL REFERENCES snapshots (id),
    written_at TEXT NOT NULL
);

-- Every `tagwall approve`: who published which withheld change, and why.
CREATE TABLE approvals (
    id BIGSERIAL PRIMARY KEY,
    ruleset TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    snapshot_id BIGINT NOT NULL,
    approved_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    reasons TEXT NOT NULL,
    approved_at TEXT NOT NULL
);

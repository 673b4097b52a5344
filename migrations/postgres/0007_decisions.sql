-- `tagwall reject`: a withheld change someone decided not to publish is recorded beside the
-- approvals, so later runs on the same file do not withhold and notify it again.
ALTER TABLE approvals ADD COLUMN decision TEXT NOT NULL DEFAULT 'approved';

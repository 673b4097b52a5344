-- `tagwall lookup`: find the intervals of given prefixes (every network that could contain an
-- address) without scanning the table.
CREATE INDEX prefix_intervals_by_prefix ON prefix_intervals (prefix, cloud);

"""The yardstick for the backfill benchmark: a Python loop that only parses each ServiceTags
file and diffs its (tag, prefix) set with the previous file's. Usage: python3 this.py DIR"""
import gzip
import json
import sys
from pathlib import Path

previous = set()
changes = 0
for path in sorted(Path(sys.argv[1]).glob("ServiceTags_*.json*")):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        doc = json.load(f)
    pairs = {(v["name"], p) for v in doc["values"] for p in v["properties"]["addressPrefixes"]}
    changes += len(pairs - previous) + len(previous - pairs)
    previous = pairs
print(f"{changes} (tag, prefix) changes")

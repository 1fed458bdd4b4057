#!/usr/bin/env python3
"""Summarise meson testlog.json files: one line per non-passing test, then 'N passed, N failed, N skipped'.
Exit 1 if anything failed or if no test ran at all."""
import json
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            res = t.get("result")
            name = f"{path.split('/')[0]}:{t.get('name')}"
            if res in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif res == "SKIP":
                skipped += 1
                print(f"skipped: {name}")
            else:
                failed += 1
                print(f"FAILED ({res}): {name}")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)

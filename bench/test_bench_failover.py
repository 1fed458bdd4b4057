#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Smoke test of bench/bench-failover.py (suite 'cluster').

First the overlap and percentile helpers on hand-made timelines (no root needed), then a short
keepalived-only run (3 nodes, 3 kill trials, 1 partition trial per advert_int) into a temp dir:
the report must exist with numbers in every row, the CDF plot must be a PNG, the 0.01 s setting
must fail over faster than the 1 s one, and the partition must show two MASTERs (VRRP cannot
avoid it; a count of 0 would mean the detector is blind). Exit 77 (skipped) without root, ip netns
or keepalived.
"""

import importlib.util
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "bench-failover.py")
PY = "/usr/bin/python3"


def load():
    spec = importlib.util.spec_from_file_location("bench_failover", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_helpers(bf):
    assert bf.percentile([1, 2, 3, 4], 50) == 2.5
    assert bf.percentile([5], 99) == 5
    assert bf.max_overlap([(0, 10), (10, 20)]) == 1          # touching is not overlapping
    assert bf.max_overlap([(0, 10), (5, 20), (6, 7)]) == 3
    ms = 1_000_000
    # n1 MASTER before the window and never told otherwise; n2 takes over inside it
    evs = {"n1": [(0, "BACKUP"), (1 * ms, "MASTER")],
           "n2": [(0, "BACKUP"), (50 * ms, "MASTER")],
           "n3": [(0, "BACKUP")]}
    assert bf.max_overlap(bf.master_intervals(evs, 10 * ms, 100 * ms)) == 2
    # a clean hand-over: n1 leaves MASTER before n2 enters it
    evs["n1"].append((40 * ms, "KILLED"))
    assert bf.max_overlap(bf.master_intervals(evs, 10 * ms, 100 * ms)) == 1
    recs = [{"type": "local_leader", "election": bf.ELECTION, "node": "n1", "t": 0, "value": True},
            {"type": "local_leader", "election": bf.ELECTION, "node": "n2", "t": 30 * ms, "value": True},
            {"type": "local_leader", "election": bf.ELECTION, "node": "n1", "t": 20 * ms, "value": False}]
    assert bf.max_overlap(bf.local_leader_intervals(recs, 10 * ms, 100 * ms)) == 1
    recs[2]["t"] = 35 * ms   # n1 let go only after n2 took over
    assert bf.max_overlap(bf.local_leader_intervals(recs, 10 * ms, 100 * ms)) == 2


def main():
    bf = load()
    check_helpers(bf)
    print("helpers: ok")
    if os.geteuid() != 0:
        print("SKIP: not root")
        return 77
    why = bf.netns.usable()
    if why:
        print("SKIP: %s" % why)
        return 77
    if not os.access(bf.KEEPALIVED, os.X_OK):
        print("SKIP: keepalived not installed")
        return 77
    with tempfile.TemporaryDirectory(prefix="bench-failover-test-") as d:
        out = os.path.join(d, "results.md")
        p = subprocess.Popen([PY, SCRIPT, "--quick", "--only", "keepalived", "--nodes", "3", "--trials", "3",
                              "--partition-trials", "1", "--output", out],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            stdout, stderr = p.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            p.terminate()   # its handlers tear the namespaces down
            stdout, stderr = p.communicate(timeout=30)
        sys.stdout.write(stdout[-3000:])
        sys.stderr.write(stderr[-3000:])
        assert p.returncode == 0, "bench-failover exited %d" % p.returncode
        report = open(out).read()
        num = r"(\d+\.\d+)"
        rows = {}
        for label in ("advert_int 1 s (default)", "advert_int 0.01 s (fastest)"):
            m = re.search(r"\| keepalived, %s \| 3 \| %s \| %s \| %s \| %s \|" % (re.escape(label), num, num, num, num),
                          report)
            assert m, "no kill row with numbers for %s in:\n%s" % (label, report)
            rows[label] = [float(x) for x in m.groups()]
            assert 0 < rows[label][0] <= rows[label][3], rows[label]
        # VRRP waits 3 adverts + skew: the default cannot beat 1 s, the fastest must be well below it
        assert rows["advert_int 1 s (default)"][0] > 1000, rows
        assert rows["advert_int 0.01 s (fastest)"][0] < 1000, rows
        parts = re.findall(r"\| keepalived, advert_int [0-9.]+ s \| 1 \| (\d+) \|", report)
        assert len(parts) == 2, report
        assert sum(int(x) for x in parts) >= 1, "no two-MASTER partition seen: %s" % parts
        assert re.search(r"`nproc` \d+", report) and "Linux " in report, report
        with open(os.path.join(d, "failover-cdf-3.png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        # nothing of ours is left behind
        left = [ns for ns in bf.netns.list_netns() if ns.startswith("edh%d-" % p.pid)]
        assert not left, "namespaces left behind: %s" % left
    print("smoke run: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

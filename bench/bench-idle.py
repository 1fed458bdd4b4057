#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Idle cost of a cluster (not a test; issue 12): N nodes (tests/cluster harness, network
namespaces, 198.18.0.0/15), default timing unless --profile, one election led by a persistent
candidate. After --settle s, over --seconds s: per node electiond CPU %, wake-ups/s (context
switches of all its threads) and bytes/s on its veth (in + out, and by kind: gossip, cluster
channel, Raft). Prints a Markdown table; --label and --output append it to a file.

    sudo /usr/bin/python3 bench/bench-idle.py [--nodes 3] [--seconds 20] [--profile FILE]
                          [--electiond PATH] [--label TEXT] [--output FILE]
"""

import argparse
import importlib.util
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
import cluster  # noqa: E402
import netns  # noqa: E402


def load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bc = load("bench_cluster", "bench-cluster.py")
bf = load("bench_failover", "bench-failover.py")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--settle", type=float, default=3)
    ap.add_argument("--profile")
    ap.add_argument("--electiond")
    ap.add_argument("--label", default="")
    ap.add_argument("--output")
    a = ap.parse_args()
    why = netns.usable()
    if why:
        print("bench-idle: needs root and ip netns: %s" % why)
        return 77
    if a.electiond:
        os.environ["ELECTIOND"] = os.path.abspath(a.electiond)
    os.environ.setdefault("ELECTIOND", os.path.join(ROOT, "build", "daemon", "electiond"))
    config = bf.read_profile(a.profile) if a.profile else None

    with cluster.Cluster(a.nodes, config=config) as c:
        c.start(wait=True)
        bf.quorate_all(c, 60)
        tail = bf.RecTail(c)
        tid, leader, _ = bf.enter_all(c, tail)
        for x in c.nodes:
            bc.counters_install(x, c.port)
        time.sleep(a.settle)
        b0 = {x.name: bc.counters_read(x) for x in c.nodes}
        t0 = time.monotonic()
        idle = bc.idle_figures(c.nodes, a.seconds)
        dt = time.monotonic() - t0
        b1 = {x.name: bc.counters_read(x) for x in c.nodes}
        tid1, leader1, _ = c.nodes[0].get_term(bf.ELECTION)
        load_avg = " ".join(open("/proc/loadavg").read().split()[:3])

    rows = []
    for x in sorted(idle):
        d = {k: (b1[x].get(k, 0) - b0[x].get(k, 0)) / dt for k in b1[x]}
        kinds = {k: d.get(k + "-in", 0) + d.get(k + "-out", 0) for k in ("gossip", "channel", "raft")}
        total = d.get("all-in", 0) + d.get("all-out", 0)
        rows.append((x, idle[x]["cpu_pct"], idle[x]["wakeups_per_s"], total, kinds))
    med = lambda i: statistics.median(r[i] for r in rows)  # noqa: E731
    out = ["### %s" % (a.label or "idle"), "",
           "%d nodes, %s, one election led (%s, term %d%s); %.0f s window after %.0f s settle; load average %s; "
           "electiond `%s`; %s UTC." % (
               a.nodes, ("timing " + os.path.relpath(a.profile, ROOT)) if a.profile else "defaults", leader, tid,
               "" if tid1 == tid else " → %d during the window!" % tid1, dt, a.settle, load_avg,
               os.path.relpath(os.environ["ELECTIOND"], ROOT), time.strftime("%Y-%m-%d %H:%M", time.gmtime())), "",
           "| node | CPU % | wake-ups/s | bytes/s (in+out) | gossip | channel | Raft |", "|---|---|---|---|---|---|---|"]
    for x, cpu, wk, total, kinds in rows:
        out.append("| %s | %.2f | %.0f | %.0f | %.0f | %.0f | %.0f |" % (x, cpu, wk, total, kinds["gossip"],
                                                                      kinds["channel"], kinds["raft"]))
    out.append("| median | %.2f | %.0f | %.0f | | | |" % (med(1), med(2), med(3)))
    text = "\n".join(out) + "\n"
    print(text)
    if a.output:
        with open(a.output, "a") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

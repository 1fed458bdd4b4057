#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""False step-down check (not a test; issue 12): an N-node cluster (tests/cluster harness, network
namespaces, 198.18.0.0/15) with one election led by a persistent candidate, under CPU saturation
(busy-loop processes, 2 per CPU by default) and client load (bench-client on every node's bus,
Enter/Leave of its own ids in an election of its own). Nothing is killed or cut, so every change
of the watched election's term, every Quorate=false and every LocalLeader=false of the leader is a
false step-down. Appends one row to bench/results-stepdown.md.

    sudo /usr/bin/python3 bench/bench-stepdown.py [--profile conf/50-fast.conf] [--nodes 3]
                          [--seconds 300] [--clients 8] [--burners N]
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
import cluster  # noqa: E402
import netns  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_failover", os.path.join(HERE, "bench-failover.py"))
bf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bf)

ELECTION = bf.ELECTION


class WatchTail(bf.RecTail):
    """Like RecTail, but keeps only the records that matter here (the load elections' terms are
    millions of lines in a long run)."""

    def poll(self):
        keys = ('"election": "%s"' % ELECTION, '"type": "quorate"')
        for fn in os.listdir(self.c.hist_dir):
            if not fn.startswith("rec-"):
                continue
            path = os.path.join(self.c.hist_dir, fn)
            off = self.offsets.get(fn, 0)
            with open(path, "rb") as f:
                f.seek(off)
                data = f.read()
            end = data.rfind(b"\n")
            if end < 0:
                continue
            self.offsets[fn] = off + end + 1
            for line in data[:end].decode(errors="replace").split("\n"):
                if any(k in line for k in keys):
                    try:
                        self.records.append(json.loads(line))
                    except ValueError:
                        pass
        return self.records


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", help="timing drop-in (default: the built-in defaults)")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--clients", type=int, default=8, help="bench-client connections per node")
    ap.add_argument("--burners", type=int, default=2 * (os.cpu_count() or 1))
    ap.add_argument("--build-dir", default=os.environ.get("ELECTIOND_BUILD_ROOT", os.path.join(ROOT, "build")))
    ap.add_argument("--output", default=os.path.join(HERE, "results-stepdown.md"))
    a = ap.parse_args()

    why = netns.usable()
    if why:
        print("bench-stepdown: needs root and ip netns: %s" % why)
        return 77
    build = os.path.abspath(a.build_dir)
    os.environ.setdefault("ELECTIOND", os.path.join(build, "daemon", "electiond"))
    client = os.path.join(build, "tests", "bench-client")
    config = bf.read_profile(a.profile) if a.profile else None

    burners, loads = [], []
    with cluster.Cluster(a.nodes, config=config) as c:
        try:
            c.start(wait=True)
            bf.quorate_all(c, 60)
            tail = WatchTail(c)
            tid0, leader, cands = bf.enter_all(c, tail)
            lead_node = c.node(leader)
            bf.log("formed: %s leads %s at term %d" % (leader, ELECTION, tid0))
            n_before = len(tail.poll())
            t0 = time.monotonic_ns()
            for _ in range(a.burners):
                burners.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
            for x in c.nodes:
                loads.append(subprocess.Popen(
                    [client, "--address", x.bus_address, "--clients", str(a.clients), "--seconds", str(a.seconds),
                     "--warmup", "0", "--election", "load-" + x.name],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            deadline = time.monotonic() + a.seconds
            while time.monotonic() < deadline:
                time.sleep(min(5, max(0, deadline - time.monotonic())))
                tail.poll()
                bf.log("%.0f s left; load %s" % (deadline - time.monotonic(),
                                                 " ".join(open("/proc/loadavg").read().split()[:3])))
            load_avg = " ".join(open("/proc/loadavg").read().split()[:3])
            outs = []
            for p in loads:
                out, err = p.communicate(timeout=120)
                try:
                    outs.append(json.loads(out.strip().splitlines()[-1]))
                except (ValueError, IndexError):
                    outs.append({"ops_per_sec": 0, "errors": -1, "first_error": err[-200:]})
            t1 = time.monotonic_ns()
        finally:
            for p in burners:
                p.kill()
                p.wait()
            for p in loads:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        recs = [r for r in tail.poll()[n_before:] if t0 <= r.get("t", 0) <= t1]
        terms = [r for r in recs if r.get("type") == "term" and r.get("election") == ELECTION and r["term"] != tid0]
        unquorate = [r for r in recs if r.get("type") == "quorate" and not r["value"]]
        ll_lost = [r for r in recs if r.get("type") == "local_leader" and r.get("election") == ELECTION
                   and r.get("node") == lead_node.name and not r["value"]]
        tid1, leader1, _ = c.nodes[0].get_term(ELECTION)

    ops = sum(o.get("ops_per_sec", 0) for o in outs)
    errors = sum(max(0, o.get("errors", 0)) for o in outs)
    false_sd = len({r["term"] for r in terms})
    row = ("| %s | %s | %d | %.0f | %d busy loops + %d×%d clients | %.0f ops/s, %d failed calls | %d (term %d → %d, "
           "leader %s → %s) | %d | %d | %s |" % (
               time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               os.path.relpath(a.profile, ROOT) if a.profile else "defaults", a.nodes, a.seconds,
               a.burners, a.nodes, a.clients, ops, errors, false_sd, tid0, tid1, leader, leader1,
               len(unquorate), len(ll_lost), load_avg))
    header = ["# False step-downs under CPU saturation and client load (bench/bench-stepdown.py)", "",
              "Machine: %d CPUs, shared with other helpers' builds and tests. Nothing is killed or cut: "
              "every term change of the watched election, Quorate=false on any node and LocalLeader=false "
              "on its leader is false." % (os.cpu_count() or 0), "",
              "| date | timing | nodes | seconds | load | client results | term changes | Quorate=false "
              "| leader's LocalLeader=false | load average at the end |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    lines = open(a.output).read().split("\n") if os.path.exists(a.output) else header + [""]
    rows_at = [i for i, l in enumerate(lines) if l.startswith("|---") or l.startswith("| 20")]
    lines.insert(rows_at[-1] + 1 if rows_at else len(lines), row)   # after the table's last row
    with open(a.output, "w") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")
    print(row)
    if errors or false_sd or unquorate or ll_lost:
        for r in (terms + unquorate + ll_lost)[:20]:
            print("  ", r)
    return 0


if __name__ == "__main__":
    sys.exit(main())

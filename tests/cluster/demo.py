#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Demo: three electiond nodes in network namespaces on this machine, a persistent candidate
entering on each with electionctl, electionctl/busctl views of the term, then SIGKILL of the
leader's node and the failover time as seen by every survivor (TermChanged, CLOCK_MONOTONIC).

    sudo ELECTIOND=build/daemon/electiond ELECTIONCTL=build/client-lib/electionctl \\
        /usr/bin/python3 tests/cluster/demo.py [--nodes 3] [--election web]
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
import netns  # noqa: E402



def show(node, argv):
    """Runs a client inside node's namespace against its bus, echoing the command line."""
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=node.bus_address)
    print("%s$ %s" % (node.name, " ".join(argv)), flush=True)
    p = subprocess.run(netns.ns_argv(node.ns, argv), env=env, capture_output=True, text=True, timeout=20)
    sys.stdout.write(p.stdout + p.stderr)
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--election", default="web")
    a = ap.parse_args()
    why = netns.usable()
    if why:
        print("demo needs root and ip netns: %s" % why)
        return 77
    ctl = os.environ.get("ELECTIONCTL") or "electionctl"
    with cluster.Cluster(a.nodes) as c:
        c.start()
        cluster.wait_until(lambda: all(bool(n.manager_prop("Quorate")) for n in c.nodes), 30,
                           "the cluster to form", 0.1)
        print("cluster %r formed: %s" % (c.cluster_name, ", ".join("%s=%s" % (n.name, n.addr) for n in c.nodes)))
        for n in c.nodes:
            show(n, [ctl, "--persistent", "--id=" + n.name, "enter", a.election])
        c.wait_converged(10)
        show(c.nodes[-1], [ctl, "status"])
        show(c.nodes[-1], ["busctl", "call", "org.electiond.Election1",
                           "/org/electiond/Election1/election/" + a.election,
                           "org.electiond.Election1.Election", "GetTerm"])
        tid, leader, _ = c.nodes[0].get_term(a.election)
        victim = c.node(leader)
        survivors = [n for n in c.nodes if n is not victim]
        print("term %d, leader %s: killing %s (SIGKILL) ..." % (tid, leader, victim.name), flush=True)
        t_kill = cluster.now_ns()
        victim.kill()

        def seen():
            out = {}
            for r in c.history():
                if (r["type"] == "term" and r.get("node") in {n.name for n in survivors}
                        and r["election"] == a.election and r["term"] > tid and r["leader"] != leader
                        and r["t"] > t_kill):
                    out.setdefault(r["node"], r)
            return out if len(out) == len(survivors) else None
        got = cluster.wait_until(seen, 30, "every survivor to see a new leader", 0.01)
        for name, r in sorted(got.items()):
            print("  %s saw term %d leader %s after %.0f ms" % (name, r["term"], r["leader"], (r["t"] - t_kill) / 1e6))
        worst = max(r["t"] for r in got.values()) - t_kill
        print("failover (SIGKILL -> new leader known on every survivor): %.0f ms" % (worst / 1e6))
        show(survivors[0], [ctl, "term", a.election])
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Planned-stop benchmark (issue 11 §1): SIGTERM (`systemctl stop electiond`) of the electiond
whose candidate leads -> the successor's LocalLeader=true, in the tests/cluster namespace harness.

    sudo ELECTIOND=build/daemon/electiond /usr/bin/python3 bench/bench-planned-stop.py \
        [--trials 30] [--nodes 3] [--output bench/results-planned-stop.md]

Each trial: every node has its persistent candidate (id = node name) in one election; the node
whose candidate leads gets SIGTERM at t0 (CLOCK_MONOTONIC, one clock for every namespace);
measured are
  * LocalLeader: t0 -> the first LocalLeader=true record (recorder, PropertiesChanged) of
    another node;
  * term: t0 -> every survivor's TermChanged with the successor as leader;
  * exit: t0 -> the stopped daemon has exited (its hand-over wait included).
Then the node is started again and the next trial stops whichever node leads by then. The
whole history goes through tests/checker/check_history.py (two LocalLeader=true at once is a
violation). Needs root and `ip netns`; exits 77 otherwise.
"""

import argparse
import importlib.util
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
sys.path.insert(0, os.path.join(ROOT, "tests", "checker"))
import cluster  # noqa: E402
import netns  # noqa: E402
import check_history  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_failover", os.path.join(HERE, "bench-failover.py"))
bf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bf)
ELECTION = bf.ELECTION


def trial(c, tail, i, trials, res):
    tid, leader, _cands = bf.enter_all(c, tail)
    victim = c.node(leader)
    survivors = [x for x in c.nodes if x is not victim]
    names = {x.name for x in survivors}
    t0 = time.monotonic_ns()
    victim.terminate()          # SIGTERM; returns once the daemon exited
    t_exit = time.monotonic_ns()
    if victim.daemon.popen.returncode != 0:
        raise RuntimeError("%s exited with %s:\n%s" % (victim.name, victim.daemon.popen.returncode,
                                                       victim.log_tail()))
    new = cluster.wait_until(lambda: [r for r in tail.poll()
                                      if r.get("type") == "local_leader" and r["t"] > t0
                                      and r.get("election") == ELECTION and r["value"]
                                      and r.get("node") in names],
                             10, "LocalLeader on the successor's node", 0.002)
    got = bf.wait_term_on(tail, names, t0, lambda r: r["term"] > tid and r["leader"] not in ("", leader), 10,
                          "every survivor to see the successor")
    handed = "Planned stop: leads handed over" in victim.log_tail(80)
    res["local_leader"].append(new[0]["t"] - t0)
    res["term"].append(max(got.values()) - t0)
    res["exit"].append(t_exit - t0)
    res["handed_over"] += int(handed)
    bf.log("trial %d/%d: %s stopped, %s LocalLeader %.1f ms, all survivors' term %.1f ms, exit %.1f ms%s"
           % (i + 1, trials, leader, new[0]["node"], bf.ms(res["local_leader"][-1]), bf.ms(res["term"][-1]),
              bf.ms(res["exit"][-1]), "" if handed else " (NO hand-over logged)"))
    victim.start(wait=True)
    bf.quorate_all(c, 60)


def fmt_row(label, vals):
    s = bf.summary(vals)
    return "| %s | %d | %.1f | %.1f | %.1f | %.1f |" % (label, s["n"], bf.ms(s["p50"]), bf.ms(s["p90"]),
                                                        bf.ms(s["p99"]), bf.ms(s["max"]))


def main():
    ap = argparse.ArgumentParser(description="planned stop (SIGTERM) -> successor LocalLeader")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--output", default=os.path.join(HERE, "results-planned-stop.md"))
    ap.add_argument("--history", default=None, help="keep the run's history (JSON lines) here")
    args = ap.parse_args()

    why = netns.usable()
    if why:
        print("SKIP: needs root and ip netns: %s" % why)
        return 77

    res = {"local_leader": [], "term": [], "exit": [], "handed_over": 0}
    with cluster.Cluster(args.nodes) as c:
        c.start(wait=False)
        for x in c.nodes:
            x.wait_ready(60)
        bf.quorate_all(c, 60)
        tail = bf.RecTail(c)
        bf.enter_all(c, tail)
        bf.log("N=%d: cluster formed" % args.nodes)
        for i in range(args.trials):
            trial(c, tail, i, args.trials, res)
        c.heal()
        c.wait_converged(10)
        c.write_final()
        hist = c.history()
        if args.history:
            c.save_history(args.history)
    verdict = check_history.check(hist, convergence_bound=10.0)

    lines = [
        "# Planned stop (SIGTERM of the leading node) -> successor acts",
        "",
        "`bench/bench-planned-stop.py --trials %d --nodes %d`, %s, commit %s." % (
            args.trials, args.nodes, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), bf.git_head()),
        "Default timing settings (ProbeIntervalSec 0.05, LeaseSec 0.2, NodeTimeoutSec 0.35).",
        "",
        "| from SIGTERM to (ms) | n | p50 | p90 | p99 | max |",
        "|---|---|---|---|---|---|",
        fmt_row("successor LocalLeader=true", res["local_leader"]),
        fmt_row("every survivor's TermChanged", res["term"]),
        fmt_row("stopped daemon exited", res["exit"]),
        "",
        "Hand-over logged by the stopped daemon in %d of %d trials; checker: %d violation(s)%s." % (
            res["handed_over"], args.trials, len(verdict.violations),
            "" if not verdict.violations else " — " + "; ".join(str(v) for v in verdict.violations[:5])),
        "",
        "Machine: %s" % json.dumps(bf.machine_info()),
        "",
    ]
    with open(args.output, "w") as f:
        f.write("\n".join(lines))
    with open(os.path.splitext(args.output)[0] + ".json", "w") as f:
        json.dump({k: v for k, v in res.items()}, f)
    print("\n".join(lines))
    return 1 if verdict.violations else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Liveness checks for electiond cluster histories (issue 10 §2), next to check_history.py's
safety rules.

    liveness.py HISTORY.jsonl [--bound SEC] [--fault-grace SEC]

Exit status 0: no violation; 1: violations; 2: unreadable input.
Importable: check(records, bound, fault_grace) -> check_history.Result.

(f) no-leader-after-heal: after every node_event "all_healed" at time H (the nemesis ended every
    fault, restarted every node and removed every rule), each election whose leader is non-empty
    in the nodes' agreed view at H + bound must have been led by some node (a LocalLeader=true
    claim open at some instant of [H, H + bound]). The view at H + bound: the latest term record
    of each live node; an election whose live nodes disagree then is left to check_history's
    no-convergence rule.

(g) lost-candidacy: a persistent candidacy (Enter with flag 1 acknowledged) that its owner did
    not give up — no later Leave/Evict of that id was invoked, and no later Enter re-bound it
    as connection-bound — must be among the candidates of every final snapshot. No fault excuses
    it (persistent candidacies survive restarts, and a fenced node's persistent candidacies are
    re-entered when it is back), except an identity fault (clone, dupname) on its node, after
    which the node's candidacies may legitimately belong to the impostor's fate.

(h) false-step-down: a node reporting LocalLeader=false for an election while the node's own
    latest term record (within --record-slack after the report) still names the same term id
    and the same leader as when the claim began, at a moment when no fault was active anywhere
    in the cluster (any node's fault window of check_history.py, extended by --fault-grace, and
    until --fault-grace after the node's first Quorate=true report after it: its catch-up) and
    no client had disconnected within the grace. In a fault-free run every step-down must come
    with a term change.

(i) mismatched-node-led: a node the nemesis restarted with other timing settings (node_fault
    "timing") must be refused leases, so from its start inside the window until node_fault_end it
    never reports LocalLeader=true — unless overlapping timing faults made the nodes with those
    settings a majority of the cluster: then they may lead, and the others, after a second,
    may not.
"""

import argparse
import bisect
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_history as CH  # noqa: E402

NS = CH.NS
DEFAULT_BOUND = 10.0
DEFAULT_FAULT_GRACE = 1.0
IDENTITY_FAULTS = ("clone", "dupname")


def check(records, bound=DEFAULT_BOUND, fault_grace=DEFAULT_FAULT_GRACE, record_slack=0.5, lease=None):
    res = CH.Result()
    recs = [r for _i, r in sorted(enumerate(records), key=lambda p: (p[1].get("t", 0), p[0]))]
    if not recs:
        return res
    t0, end_t = recs[0]["t"], recs[-1]["t"]
    T = lambda t: CH.fmt_t(t, t0)  # noqa: E731
    if lease is None:
        lease = CH._config_lease(recs) or CH.DEFAULT_LEASE
    cap_ns = int(lease * (1 + CH.DEFAULT_RHO) * NS)
    grace = int(fault_grace * NS)
    claims = CH._claims(recs, cap_ns, end_t, False)
    n_f = _leader_after_heal(recs, res, T, claims, int(bound * NS))
    n_g = _lost_candidacy(recs, res, T)
    n_h = _false_step_down(recs, res, T, grace, int(record_slack * NS))
    n_i = _mismatched_led(recs, res, T)
    res.summary = {"heals_checked": n_f, "persistent_checked": n_g, "step_downs_checked": n_h,
                   "mismatched_checked": n_i}
    return res


def _leader_after_heal(recs, res, T, claims, bound_ns):
    heals = [r["t"] for r in recs if r.get("type") == "node_event" and r.get("event") == "all_healed"]
    end_t = recs[-1]["t"]
    heals = [h for h in heals if h + bound_ns <= end_t]   # else the history ends before the bound
    views = {}
    alive = {}
    i = 0
    for h in heals:                 # one sweep: checkpoints h + bound are increasing
        while i < len(recs) and recs[i]["t"] <= h + bound_ns:
            r = recs[i]
            i += 1
            ty = r.get("type")
            if ty == "term":
                views[(r["node"], r["election"])] = r
            elif ty == "node_event" and r.get("node"):
                ev = r.get("event")
                if ev in ("start", "cont"):
                    alive[r["node"]] = True
                elif ev in ("kill", "terminate", "stop", "start_failed"):
                    alive[r["node"]] = False
            elif ty == "owner":
                alive[r["node"]] = bool(r.get("owner"))
        by_e = defaultdict(dict)
        for (node, e), r in views.items():
            if alive.get(node, True):
                by_e[e][node] = (r["term"], r["leader"])
        for e, vs in sorted(by_e.items()):
            if len(set(vs.values())) != 1:
                continue
            term, leader = next(iter(vs.values()))
            if not leader:
                continue
            led = any(s <= h + bound_ns and en >= h for s, en, _node, _r in claims.get(e, ()))
            if not led:
                res.add("no-leader-after-heal",
                        "election %r: all faults healed at %s, nodes agree on term %d led by %r, but no "
                        "node held LocalLeader within %.1fs" % (e, T(h), term, leader, bound_ns / NS))
    return len(heals)


def _lost_candidacy(recs, res, T):
    finals = [r for r in recs if r.get("type") == "final"]
    if not finals:
        return 0
    identity = defaultdict(list)   # node -> times of identity faults touching it
    for r in recs:
        if r.get("type") == "node_event" and r.get("event") == "node_fault" and r.get("fault") in IDENTITY_FAULTS:
            for n in CH.event_nodes(r):
                identity[n].append(r["t"])
    invokes = defaultdict(list)    # (election, id) -> invokes
    by_req = {}
    for r in recs:
        if r.get("type") == "invoke":
            invokes[(r["election"], r["id"])].append(r)
            by_req[r.get("req")] = r
    n = 0
    for ok in recs:
        if ok.get("type") != "ok" or ok.get("op") != "enter" or not (int(ok.get("flags", 0) or 0) & 1):
            continue
        e, cid = ok["election"], ok["id"]
        inv = by_req.get(ok.get("req"), ok)
        later = [x for x in invokes[(e, cid)] if x["t"] > inv["t"]]
        if any(x["op"] in ("leave", "evict") or (x["op"] == "enter" and not int(x.get("flags", 0) or 0) & 1)
               for x in later):
            continue
        if any(t > inv["t"] for t in identity.get(ok["node"], ())):
            continue
        n += 1
        for f in finals:
            v = (f.get("elections") or {}).get(e)
            if cid not in (v or {}).get("candidates", []):
                res.add("lost-candidacy",
                        "election %r: persistent candidacy %r (entered on %s at %s, never given up) is "
                        "missing from %s's final state %r" % (e, cid, ok["node"], T(ok["t"]), f["node"],
                                                              (v or {}).get("candidates", [])), [ok, f])
                break
    return n


def _false_step_down(recs, res, T, grace, slack):
    faults = CH._fault_intervals(recs, grace)
    # A node's fault lasts until it is back: first Quorate=true after the window, + grace. A node
    # that was cut off (or restarted) for long catches up first, and a granter refuses a lease to
    # a node that is still applying what it missed (DESIGN.md leases rule 3): seed 102 saw n1
    # quorate 1.6 s after the heal, then refused once 0.2 s later.
    quorate = defaultdict(list)
    for r in recs:
        if r.get("type") == "quorate" and r.get("value"):
            quorate[r["node"]].append(r["t"])
    windows = []
    for node, ivs in faults.items():
        qs = quorate.get(node, [])
        for a, b in ivs:
            i = bisect.bisect_left(qs, b)
            if b != float("inf") and i < len(qs):
                b = max(b, qs[i] + grace)
            windows.append((a, b))
    windows.sort()
    disconnects = sorted(r["t"] for r in recs if r.get("type") == "client_event")

    def quiet(t):
        if any(a - grace <= t <= b for a, b in windows):
            return False
        j = bisect.bisect_left(disconnects, t - grace)
        return not (j < len(disconnects) and disconnects[j] <= t + grace)

    terms = defaultdict(list)      # (node, election) -> term records
    for r in recs:
        if r.get("type") == "term":
            terms[(r["node"], r["election"])].append(r)
    times = {k: [r["t"] for r in v] for k, v in terms.items()}
    opened = {}
    n = 0
    for r in recs:
        if r.get("type") != "local_leader":
            continue
        key = (r["node"], r["election"])
        lst, ts = terms.get(key, []), times.get(key, [])
        if r.get("value"):
            if key not in opened:
                i = bisect.bisect_right(ts, r["t"])
                opened[key] = (r["t"], lst[i - 1] if i else None)
            continue
        if key not in opened:
            continue
        t_open, start = opened.pop(key)
        if start is None or not start["leader"]:
            continue
        n += 1
        # explained by any change of the node's view between the claim and just after the report
        lo, hi = bisect.bisect_right(ts, t_open), bisect.bisect_right(ts, r["t"] + slack)
        if any((x["term"], x["leader"]) != (start["term"], start["leader"]) for x in lst[lo:hi]):
            continue
        if quiet(r["t"]):
            res.add("false-step-down",
                    "node %s stepped down from election %r at %s while its term %d led by %r stood and "
                    "no fault was active" % (r["node"], r["election"], T(r["t"]), start["term"],
                                             start["leader"]), [r, start])
    return n


def _mismatched_led(recs, res, T, grace_ns=NS):
    """(i) A granter grants only to requesters with its own timing settings (DESIGN.md rule 8),
    so a lease needs a majority of the cluster's nodes running one set of settings. A node
    running the nemesis' "timing" settings, from its first start inside the fault window to the
    window's end, may report LocalLeader=true only while those nodes are a majority; and while
    they are, a node with the cluster's own settings may not (after grace_ns: the lease it held
    when the majority changed sides runs out). Several timing faults may overlap; all of them
    run the same settings."""
    window = {}      # node -> False (fault, not started yet), True (its mismatched daemon started),
                     # "ending" (window ended; the mismatched daemon may run until the next start)
    nodes = []
    majority_since = None    # when the started mismatched nodes became a majority
    minority_since = None    # when they stopped being one (their leases may run out until + grace)
    n = 0
    reported = set()

    def is_majority():
        started = sum(1 for v in window.values() if v)     # True and "ending"
        return bool(nodes) and 2 * started > len(nodes)

    for r in recs:
        ty = r.get("type")
        if ty == "node_event":
            ev, node = r.get("event"), r.get("node")
            if ev == "cluster" and r.get("nodes"):
                nodes = list(r["nodes"])
            elif ev == "node_fault" and r.get("fault") == "timing":
                window[node] = False
                n += 1
            elif ev == "node_fault_end" and r.get("fault") == "timing":
                if window.get(node) is True:
                    window[node] = "ending"
                else:
                    window.pop(node, None)
                reported.discard(node)
            elif ev == "start" and node in window:
                if window[node] == "ending":
                    window.pop(node)
                else:
                    window[node] = True
            if is_majority():
                if majority_since is None:
                    majority_since, minority_since = r["t"], None
                    reported = {x for x in reported if x in window}
            elif majority_since is not None:
                majority_since, minority_since = None, r["t"]
                reported = {x for x in reported if x in window}
        elif ty == "local_leader" and r.get("value"):
            node = r.get("node")
            if node in reported:
                continue

            if (window.get(node) is True and majority_since is None
                    and (minority_since is None or r["t"] > minority_since + grace_ns)):
                res.add("mismatched-node-led",
                        "node %s runs with timing settings that differ from the cluster's, yet held LocalLeader "
                        "of election %r at %s" % (node, r["election"], T(r["t"])), [r])
                reported.add(node)      # once per window
            elif (node not in window and majority_since is not None
                  and r["t"] > majority_since + grace_ns):
                res.add("mismatched-node-led",
                        "node %s keeps the cluster's timing settings, but since %s a majority of the nodes runs "
                        "others, yet it held LocalLeader of election %r at %s"
                        % (node, T(majority_since), r["election"], T(r["t"])), [r])
                reported.add(node)
    return n


def _latest(lst, t):
    i = bisect.bisect_right([r["t"] for r in lst] if len(lst) < 64 else _times(lst), t)
    return lst[i - 1] if i else None


_times_cache = {}


def _times(lst):
    c = _times_cache.get(id(lst))
    if c is None or c[0] is not lst or len(c[1]) != len(lst):
        c = (lst, [r["t"] for r in lst])
        _times_cache[id(lst)] = c
    return c[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description="Liveness checks of an electiond cluster history.")
    ap.add_argument("history")
    ap.add_argument("--bound", type=float, default=DEFAULT_BOUND, metavar="SEC")
    ap.add_argument("--fault-grace", type=float, default=DEFAULT_FAULT_GRACE, metavar="SEC")
    a = ap.parse_args(argv)
    try:
        recs = CH.load(a.history)
    except (OSError, ValueError) as e:
        print("liveness: %s" % e, file=sys.stderr)
        return 2
    r = check(recs, a.bound, a.fault_grace)
    print("liveness: %(heals_checked)d heals, %(persistent_checked)d persistent candidacies, "
          "%(step_downs_checked)d step-downs, %(mismatched_checked)d mismatched-timing windows checked"
          % r.summary if r.summary else "liveness: empty history")
    if r.ok:
        print("OK: no violations")
        return 0
    print("FAILED: %d violation(s)" % len(r.violations))
    for v in r.violations:
        print("  VIOLATION %s" % v)
    return 1


if __name__ == "__main__":
    sys.exit(main())

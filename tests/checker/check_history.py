#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Safety checker for electiond cluster histories.

    check_history.py HISTORY.jsonl [--convergence-bound SEC] [--lease SEC] [--rho R]
                     [--tolerance SEC] [--fault-grace SEC] [--record-slack SEC] [--clip-partitions]

Exit status 0: no violation; 1: violations (each printed); 2: unreadable input.
Importable: check(records, ...) -> Result with .violations and .summary.

History format (JSON lines, written by tests/cluster/recorder.py and cluster.py; "t" is
time.monotonic_ns(), one clock for every namespace of the host):
  term          node, election, term, leader, candidates, src   a node's view of an election
  local_leader  node, election, value, term, src
  quorate       node, value, src
  owner         node, owner                 the daemon's bus name appeared ("" = vanished)
  invoke/ok/fail  op, election, id, node, owner, client, req[, flags][, term, leader, candidates]
  client_event  event="disconnect", owner, node, client
  node_event    event = cluster(nodes, config) | start | kill | terminate | restart | stop | cont
                | twin_start | twin_gone (another process with the node's identity runs: a fault on it)
                | link_down | link_up | partition(groups) | partition_oneway(nodes, from_nodes)
                | loss(percent, nodes) | bridge_down | bridge_up | heal | healed
                | node_fault / node_fault_end (nemesis, nodes) | all_healed, node/nodes
                | stall / stall_end (node: its event loop sat in a delayed write)
  final         node, elections: {name: {term, leader, candidates}}   read at the end of a run

The model, rule by rule
-----------------------
(a) leader-conflict: every observation of an election's term (term records, client replies,
    final snapshots) maps (election, term id) to a leader. Two different non-empty leaders for
    one pair is a violation. Leader "" is not a claim: when the last candidate leaves, the term id
    stays and the leader becomes "" (DESIGN.md), so (id, "A") then (id, "") is legal.

(b) term-regress / term-reuse: per node and election, the term ids of its term records in
    record order (one recorder per node writes them in the daemon's emission order; this spans
    the node's restarts) never go down. term-reuse: the node saw the same id with another
    non-empty leader after it restarted. Client replies are left out here: a reply carries the
    term right after its own command, which may be older than a signal already recorded.

(c) split-brain: each node's claim on an election is an interval. It opens at a record
    LocalLeader=true (signal or read) and closes at the first of
      - the node's own report LocalLeader=false;
      - cap = F + lease * (1 + rho), where F is the time the harness SIGSTOPped, SIGKILLed or
        terminated the node's daemon (or the recorder saw its bus name vanish), or the start of a
        stall: node_event "stall" .. "stall_end", a write that the nemesis' slow disk delayed
        on the daemon's main thread, so its event loop ran nothing (a pause by other means;
        README "A frozen daemon"). A node that
        cannot run cannot report its step-down, but its lease, anchored at send times before F,
        ends by then on a clock that is at most rho slow. Kills are treated like pauses on
        purpose: the others cannot tell them apart, so a successor claiming before the cap means
        NodeTimeout is too short for a paused node.
      - a restart of the daemon (a new process starts with no claim).
    If the node resumes (SIGCONT, stall_end) before the cap, the cap is dropped: it is observable again and
    its own reports count. If it resumes after the cap, the old claim stays closed at the cap; a
    new claim needs a new true record (the harness asks the recorder to read LocalLeader right
    after SIGCONT, so a node that did not step down on resume is caught).
    Network faults do NOT cap a claim: a partitioned node is still observable through its local
    bus, and its own step-down report is the truth; capping would hide exactly the minority
    leader that never steps down. (--clip-partitions applies the cap to link_down/partitions as
    well, for comparison.) Two claims of different nodes on one election that overlap by more
    than --tolerance (default 0) are a violation. Start times are when the recorder saw the
    true value, which is at or after the daemon's decision, so recording latency can only hide an
    overlap at the start; at the end it can add a false one of a few ms, hence --tolerance.

(d) lost-enter: an Enter acknowledged ("ok") to a client on node N must stay among the
    candidates in every later term record of N, until an excuse occurs after its invocation: a
    Leave or Evict of that (election, id) was invoked; a connection that entered the id
    disconnected; or it shows again later with no new Enter in between (parked by DROP_NODE and
    restored by its node, DESIGN.md rule 10); or a fault was active on a node that entered the id at any time in between:
    killed/terminated/failed to start (until its next start), stopped (until SIGCONT), link
    down, partitioned, one-way partitioned, lossy (until the heal), bridge down, a nemesis
    node-level fault (node_fault .. node_fault_end, on every node it names) — the cluster
    may declare such a node dead and drop its candidacies, and a drop decided during the fault
    may commit a little later, so each fault window is extended by --fault-grace (default 1 s).
    "Later" means: a record with a higher term id than the reply's, or one recorded more than
    --record-slack (default 0.5 s) after the reply. Signals and replies travel on different
    connections to different processes, so a signal emitted before the Enter was applied (for
    example while a lagging node replays its log) can be recorded just after the client saw the
    reply; such a record must not count as a loss.
    missing-change: at each final snapshot, an acknowledged Enter with no excuse and no later
    Leave/Evict invocation must be present; an acknowledged Leave (or Evict) with no later
    Enter invocation of the same id must be absent.

(e) no-convergence: for every "healed" record at time H, there must be an instant in
    [H, H + bound] at which every live node (started; not killed, terminated, stopped or failed
    to start since) has the
    same view (term id, leader, candidates) of every election; views come from term records and
    final snapshots, an election a node never reported counts as (0, "", []).
"""

import argparse
import bisect
import json
import sys
from collections import defaultdict

NS = 1_000_000_000
DEFAULT_LEASE = 0.2      # LeaseSec default (DESIGN.md)
DEFAULT_RHO = 0.01       # clock-rate bound (DESIGN.md)
DEFAULT_BOUND = 10.0
DEFAULT_RECORD_SLACK = 0.5  # how late a recorder may see a signal emitted before a reply
DEFAULT_FAULT_GRACE = 1.0  # a drop decided during a fault may commit this long after it ends

PROCESS_DOWN = {"kill", "terminate", "stop"}
# a daemon whose event loop sat in a write the disk shim delayed (nemesis disk_slow): like a pause
STALL, STALL_END = "stall", "stall_end"
NET_CUT = {"link_down", "partition", "partition_oneway"}


class Violation:
    def __init__(self, kind, message, records=()):
        self.kind = kind
        self.message = message
        self.records = list(records)

    def __str__(self):
        return "%s: %s" % (self.kind, self.message)

    def __repr__(self):
        return "Violation(%s)" % self


class Result:
    def __init__(self):
        self.violations = []
        self.summary = {}

    @property
    def ok(self):
        return not self.violations

    def kinds(self):
        return sorted({v.kind for v in self.violations})

    def add(self, kind, message, records=()):
        self.violations.append(Violation(kind, message, records))


def load(path):
    recs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                recs.append(json.loads(line))
            except ValueError as e:
                raise ValueError("%s:%d: %s" % (path, n, e))
    return recs


def fmt_t(t, t0):
    return "%.3fs" % ((t - t0) / NS)


def event_nodes(r):
    """Nodes a node_event is about."""
    out = set()
    if r.get("node"):
        out.add(r["node"])
    for key in ("nodes", "from_nodes"):
        out.update(r.get(key) or [])
    for g in r.get("groups") or []:
        out.update(g)
    return out


def _config_lease(recs):
    for r in recs:
        if r.get("type") == "node_event" and r.get("event") == "cluster":
            v = (r.get("config") or {}).get("Cluster", {}).get("LeaseSec")
            if v is not None:
                try:
                    return float(v)
                except ValueError:
                    pass
    return None


def check(records, convergence_bound=DEFAULT_BOUND, lease=None, rho=DEFAULT_RHO, tolerance=0.0,
          clip_partitions=False, fault_grace=DEFAULT_FAULT_GRACE, record_slack=DEFAULT_RECORD_SLACK):
    res = Result()
    # Stable order: by time, then input order (one writer's records keep their order).
    recs = [r for _i, r in sorted(enumerate(records), key=lambda p: (p[1].get("t", 0), p[0]))]
    if lease is None:
        lease = _config_lease(recs)
    if lease is None:
        lease = DEFAULT_LEASE
    t0 = recs[0]["t"] if recs else 0
    T = lambda t: fmt_t(t, t0)  # noqa: E731
    cap_ns = int(lease * (1 + rho) * NS)
    tol_ns = int(tolerance * NS)
    end_t = recs[-1]["t"] if recs else 0

    nodes = set()
    for r in recs:
        if r.get("type") == "node_event" and r.get("event") == "cluster":
            nodes.update(r.get("nodes") or [])
        elif r.get("node") and r.get("type") in ("term", "local_leader", "quorate", "final", "owner"):
            nodes.add(r["node"])

    # ---- (a) one leader per (election, term id) ----------------------------------------------
    leaders = {}
    for r in _term_observations(recs):
        e, tid, leader = r["election"], r["term"], r["leader"]
        if not leader:
            continue
        prev = leaders.get((e, tid))
        if prev is None:
            leaders[(e, tid)] = r
        elif prev["leader"] != leader and not prev.get("_reported"):
            prev["_reported"] = True
            res.add("leader-conflict",
                    "election %r term %d has two leaders: %r (node %s at %s) and %r (node %s at %s)"
                    % (e, tid, prev["leader"], prev.get("node"), T(prev["t"]), leader, r.get("node"),
                       T(r["t"])), [prev, r])
    for r in leaders.values():
        r.pop("_reported", None)

    # ---- (b) per-node monotonic term ids, no reuse across restarts ----------------------------
    restarts = defaultdict(list)   # node -> start times of its daemon after the first
    starts_seen = defaultdict(int)
    for r in recs:
        if r.get("type") == "node_event" and r.get("event") == "start":
            starts_seen[r["node"]] += 1
            if starts_seen[r["node"]] > 1:
                restarts[r["node"]].append(r["t"])
    last = {}                      # (node, election) -> record with the highest term so far
    seen_leader = {}               # (node, election, term) -> record
    for r in recs:
        if r.get("type") != "term":
            continue
        key = (r["node"], r["election"])
        prev = last.get(key)
        if prev is not None and r["term"] < prev["term"]:
            across = any(prev["t"] < s <= r["t"] for s in restarts[r["node"]])
            res.add("term-regress",
                    "node %s saw election %r go from term %d (at %s) down to term %d (at %s)%s"
                    % (r["node"], r["election"], prev["term"], T(prev["t"]), r["term"], T(r["t"]),
                       " across a restart" if across else ""), [prev, r])
        if prev is None or r["term"] >= prev["term"]:
            last[key] = r
        sk = (r["node"], r["election"], r["term"])
        old = seen_leader.get(sk)
        if old is not None and r["leader"] and old["leader"] and old["leader"] != r["leader"]:
            if any(old["t"] < s <= r["t"] for s in restarts[r["node"]]):
                res.add("term-reuse",
                        "node %s: election %r term %d led by %r (at %s) is reused for %r after a "
                        "restart (at %s)" % (r["node"], r["election"], r["term"], old["leader"],
                                             T(old["t"]), r["leader"], T(r["t"])), [old, r])
        if old is None or (not old["leader"] and r["leader"]):
            seen_leader[sk] = r

    # ---- (c) LocalLeader claims never overlap ---------------------------------------------------
    intervals = _claims(recs, cap_ns, end_t, clip_partitions)
    n_overlaps = 0
    for e, ivs in intervals.items():
        ivs.sort()
        for i, (s1, e1, n1, r1) in enumerate(ivs):
            for s2, e2, n2, r2 in ivs[i + 1:]:
                if s2 >= e1:
                    break
                if n1 == n2:
                    continue
                overlap = min(e1, e2) - s2
                if overlap > tol_ns:
                    n_overlaps += 1
                    if n_overlaps <= 20:
                        res.add("split-brain",
                                "election %r: %s held LocalLeader from %s to %s and %s from %s to %s "
                                "(overlap %.1f ms)" % (e, n1, T(s1), T(e1), n2, T(s2), T(e2),
                                                       overlap / 1e6), [r1, r2])

    # ---- (d) acknowledged changes stay --------------------------------------------------------
    n_acked = _check_acked(recs, res, T, int(fault_grace * NS), int(record_slack * NS))

    # ---- (e) convergence after heal -------------------------------------------------------------
    n_healed = _check_convergence(recs, res, T, nodes, int(convergence_bound * NS))

    res.summary = {
        "records": len(recs),
        "nodes": sorted(nodes),
        "elections": len({r["election"] for r in recs if r.get("type") == "term"}),
        "terms": len(leaders),
        "claims": sum(len(v) for v in intervals.values()),
        "acked_enters": n_acked,
        "heals_checked": n_healed,
        "lease_sec": lease,
        "duration_sec": (end_t - t0) / NS,
    }
    return res


def _term_observations(recs):
    for r in recs:
        ty = r.get("type")
        if ty == "term":
            yield r
        elif ty == "ok" and "term" in r and "leader" in r:
            yield r
        elif ty == "final":
            for e, v in (r.get("elections") or {}).items():
                yield {"t": r["t"], "node": r["node"], "election": e, "term": v["term"],
                       "leader": v["leader"], "candidates": v.get("candidates", [])}


def _claims(recs, cap_ns, end_t, clip_partitions):
    """election -> [(start, end, node, opening record)]"""
    cut = PROCESS_DOWN | {STALL} | (NET_CUT if clip_partitions else set())
    resume = {"cont", STALL_END} | ({"link_up", "heal"} if clip_partitions else set())
    out = defaultdict(list)
    open_ = {}   # (node, election) -> [start, cap or None, record]

    def close_capped(t):
        for key, c in list(open_.items()):
            if c[1] is not None and c[1] <= t:
                out[key[1]].append((c[0], c[1], key[0], c[2]))
                del open_[key]

    for r in recs:
        t = r["t"]
        close_capped(t)
        ty = r.get("type")
        if ty == "local_leader":
            key = (r["node"], r["election"])
            if r.get("value"):
                if key not in open_:
                    open_[key] = [t, None, r]
            elif key in open_:
                c = open_.pop(key)
                out[key[1]].append((c[0], min(t, c[1]) if c[1] is not None else t, key[0], c[2]))
        elif ty == "owner" and not r.get("owner"):
            for key, c in open_.items():
                if key[0] == r["node"]:
                    c[1] = t + cap_ns if c[1] is None else min(c[1], t + cap_ns)
        elif ty == "node_event":
            ev = r.get("event")
            who = event_nodes(r)
            if ev == "heal":
                who = {k[0] for k in open_}
            for key, c in list(open_.items()):
                if key[0] not in who:
                    continue
                if ev in cut:
                    c[1] = t + cap_ns if c[1] is None else min(c[1], t + cap_ns)
                elif ev in resume:
                    c[1] = None        # observable again before its cap: its reports count
                elif ev == "start":
                    out[key[1]].append((c[0], min(t, c[1]) if c[1] is not None else t, key[0], c[2]))
                    del open_[key]
    close_capped(end_t)
    for key, c in open_.items():
        out[key[1]].append((c[0], max(c[0], end_t) if c[1] is None else min(c[1], end_t), key[0], c[2]))
    return out


def _fault_intervals(recs, grace_ns):
    """node -> [(start, end)]: when a fault that can make the cluster drop the node was active
    (process down or stopped, link down, partitioned, lossy, bridge down), end extended by grace
    (a drop decided during the fault may commit a little after it ends)."""
    inf = float("inf")
    out = defaultdict(list)
    active = defaultdict(dict)   # node -> kind -> start
    everyone = set()
    for r in recs:
        if r.get("type") == "node_event" and r.get("event") == "cluster":
            everyone.update(r.get("nodes") or [])
        elif r.get("node"):
            everyone.add(r["node"])

    def begin(nodes, kind, t):
        for n in nodes:
            active[n].setdefault(kind, t)

    def end(nodes, kinds, t):
        for n in nodes:
            for k in kinds:
                if k in active[n]:
                    out[n].append((active[n].pop(k), t + grace_ns))

    net = ("link", "net", "bridge")
    for r in recs:
        if r.get("type") != "node_event":
            continue
        ev, t, who = r.get("event"), r["t"], event_nodes(r)
        if ev in ("kill", "terminate", "start_failed"):
            begin(who, "down", t)
        elif ev == "start":
            end(who, ["down"], t)
        elif ev == "stop":
            begin(who, "stop", t)
        elif ev == "cont":
            end(who, ["stop"], t)
        elif ev == STALL:
            begin(who, "stall", t)
        elif ev == STALL_END:
            end(who, ["stall"], t)
        elif ev == "link_down":
            begin(who, "link", t)
        elif ev == "link_up":
            end(who, ["link"], t)
        elif ev in ("partition", "partition_oneway", "loss"):
            begin(who, "net", t)
        elif ev == "twin_start":
            # a second process with the node's identity shuts it out of its peers until it exits
            begin(who, "twin", t)
        elif ev == "twin_gone":
            end(who, ["twin"], t)
        elif ev == "bridge_down":
            begin(everyone, "bridge", t)
        elif ev == "bridge_up":
            end(everyone, ["bridge"], t)
        elif ev == "node_fault":          # nemesis: wrong settings/identity/disk/clock
            begin(who, "node", t)
        elif ev == "node_fault_end":
            end(who, ["node"], t)
        elif ev in ("heal", "healed"):
            end(everyone, net, t)
    for n, kinds in active.items():
        for k, t in kinds.items():
            out[n].append((t, inf))
    return out


def _check_acked(recs, res, T, fault_grace_ns, slack_ns):
    excuse_ops = {"leave", "evict"}
    faults = _fault_intervals(recs, fault_grace_ns)
    invokes = {}
    for r in recs:
        if r.get("type") == "invoke" and r.get("req"):
            invokes[r["req"]] = r
    by_node = defaultdict(list)    # (node, election) -> term records in order
    for r in recs:
        if r.get("type") == "term":
            by_node[(r["node"], r["election"])].append(r)
    by_node_t = {k: [r["t"] for r in v] for k, v in by_node.items()}
    # Only these records can excuse a disappearance; scanning them alone keeps long soaks fast.
    excuse_recs = [r for r in recs if r.get("type") in ("client_event", "owner")
                   or (r.get("type") == "invoke" and r.get("op") in excuse_ops)]
    excuse_t = [r["t"] for r in excuse_recs]
    finals = [r for r in recs if r.get("type") == "final"]

    # Who entered each (election, id), from which connection/node, and when.
    enterers = defaultdict(list)   # (e, id) -> invoke records of enter
    for r in recs:
        if r.get("type") == "invoke" and r.get("op") == "enter":
            enterers[(r["election"], r["id"])].append(r)

    # Leave/Evict calls by (election, id): (invoked, replied or None). One invoked before the Enter
    # but still in flight when the Enter was invoked is concurrent with it, and may apply after it.
    # A call that failed without a definite answer (OutcomeUnknown, no reply, a timeout…) may
    # still commit at any later time (DESIGN.md "outcome unknown"): it excuses a later loss too.
    definite = {"org.electiond.Election1.Error.NotCandidate", "org.freedesktop.DBus.Error.AccessDenied",
                "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"}
    replies = {}
    for r in recs:
        if r.get("type") in ("ok", "fail") and r.get("req"):
            refused = r.get("type") == "fail" and (
                r.get("error") in definite or (r.get("error") == "org.electiond.Election1.Error.NoQuorum"
                                               and str(r.get("message", "")).startswith("This node has no quorum")))
            unknown = r.get("type") == "fail" and not refused
            replies[r["req"]] = (r["t"], refused, unknown)
    removers = defaultdict(list)
    for r in recs:
        if r.get("type") == "invoke" and r.get("op") in excuse_ops:
            removers[(r.get("election"), r.get("id"))].append((r["t"], replies.get(r.get("req")), r))

    def excused(e, cid, since, until):
        for t_i, rep, r in removers.get((e, cid), ()):
            if t_i >= since:
                continue
            if rep is None or rep[0] >= since or rep[2]:
                return r
        owners = {x.get("owner") for x in enterers[(e, cid)] if x["t"] <= until}
        owner_nodes = {x.get("node") for x in enterers[(e, cid)] if x["t"] <= until}
        for n in owner_nodes:
            for a, b in faults.get(n, ()):
                if a <= until and b >= since:
                    return {"type": "fault", "node": n, "t": a}
        for r in excuse_recs[bisect.bisect_left(excuse_t, since):]:
            t = r["t"]
            if t > until:
                break
            ty = r.get("type")
            if ty == "invoke" and r.get("op") in excuse_ops and r.get("election") == e and r.get("id") == cid:
                return r
            if ty == "client_event" and r.get("event") == "disconnect" and r.get("owner") in owners:
                return r
            if ty == "owner" and not r.get("owner") and r.get("node") in owner_nodes:
                return r
        return None

    def restored(key, e, cid, t_gone):
        """The cluster parked it (DROP_NODE) and its node brought it back (RESTORE_NODE, DESIGN
        rule 10): it shows again later with no new Enter of it in between."""
        recs_k = by_node.get(key, [])
        for r in recs_k[bisect.bisect_right(by_node_t.get(key, []), t_gone):]:
            if cid in r["candidates"]:
                return not any(t_gone < x["t"] <= r["t"] for x in enter_invokes[(e, cid)])
        return False

    enter_invokes = defaultdict(list)
    for r in recs:
        if r.get("type") == "invoke" and r.get("op") == "enter":
            enter_invokes[(r.get("election"), r.get("id"))].append(r)

    n = 0
    for ok in recs:
        if ok.get("type") != "ok" or ok.get("op") != "enter":
            continue
        n += 1
        e, cid, node = ok["election"], ok["id"], ok["node"]
        inv = invokes.get(ok.get("req"), ok)
        t_inv = inv["t"]
        key = (node, e)
        for r in by_node.get(key, [])[bisect.bisect_left(by_node_t.get(key, []), t_inv):]:
            if cid in r["candidates"]:
                continue
            # After the Enter for sure: a newer term, or recorded well after the reply (a signal
            # emitted before the reply can reach the recorder a little after the client).
            if r["term"] > ok.get("term", r["term"]) or r["t"] > ok["t"] + slack_ns:
                if not excused(e, cid, t_inv, r["t"]) and not restored(key, e, cid, r["t"]):
                    res.add("lost-enter",
                            "election %r: Enter of %r acknowledged on %s at %s (term %s) is gone from "
                            "%s's term %d at %s (candidates %r) without Leave/Evict, disconnect or "
                            "node fault" % (e, cid, node, T(ok["t"]), ok.get("term"), node, r["term"],
                                            T(r["t"]), r["candidates"]), [ok, r])
                break
        for f in finals:
            if f["t"] < ok["t"]:
                continue
            v = (f.get("elections") or {}).get(e)
            cands = v.get("candidates", []) if v else []
            if cid not in cands and not excused(e, cid, t_inv, f["t"]):
                res.add("missing-change",
                        "election %r: acknowledged Enter of %r (on %s at %s) is missing from %s's "
                        "final state %r" % (e, cid, node, T(ok["t"]), f["node"], cands), [ok, f])

    for ok in recs:
        if ok.get("type") != "ok" or ok.get("op") not in ("leave", "evict"):
            continue
        e, cid = ok["election"], ok["id"]
        t_inv = invokes.get(ok.get("req"), ok)["t"]
        later_enter = any(x["t"] > t_inv for x in enterers[(e, cid)])
        if later_enter:
            continue
        for f in finals:
            if f["t"] < ok["t"]:
                continue
            v = (f.get("elections") or {}).get(e)
            if v and cid in v.get("candidates", []):
                res.add("missing-change",
                        "election %r: acknowledged %s of %r (on %s at %s) but %r is still a candidate "
                        "in %s's final state" % (e, ok["op"].capitalize(), cid, ok["node"], T(ok["t"]),
                                                 cid, f["node"]), [ok, f])
    return n


def _check_convergence(recs, res, T, nodes, bound_ns):
    heals = [r for r in recs if r.get("type") == "node_event" and r.get("event") == "healed"]
    if not heals:
        return 0
    end_t = recs[-1]["t"]
    for h in heals:
        th = h["t"]
        views = defaultdict(dict)          # node -> election -> (term, leader, candidates)
        state = {n: "alive" for n in nodes}  # alive | dead | stopped
        agreed = None
        last_diff = None

        def apply(r):
            ty = r.get("type")
            if ty == "term":
                views[r["node"]][r["election"]] = (r["term"], r["leader"], tuple(r["candidates"]))
            elif ty == "final":
                for e, v in (r.get("elections") or {}).items():
                    views[r["node"]][e] = (v["term"], v["leader"], tuple(v.get("candidates", [])))
            elif ty == "node_event":
                ev = r.get("event")
                n = r.get("node")
                if n is None:
                    return
                if ev == "start" or ev == "cont":
                    state[n] = "alive"
                elif ev in ("kill", "terminate", "start_failed"):
                    state[n] = "dead"
                elif ev == "stop":
                    state[n] = "stopped"

        def agree():
            live = sorted(n for n, s in state.items() if s == "alive")
            if len(live) < 2:
                return True, None
            elections = set()
            for n in live:
                elections.update(views[n])
            for e in sorted(elections):
                seen = {}
                for n in live:
                    v = views[n].get(e, (0, "", ()))
                    seen.setdefault(v, []).append(n)
                if len(seen) > 1:
                    return False, "election %r: %s" % (
                        e, "; ".join("%s see (%d, %r, %r)" % (",".join(ns), v[0], v[1], list(v[2]))
                                     for v, ns in seen.items()))
            return True, None

        i = 0
        while i < len(recs) and recs[i]["t"] <= th:
            apply(recs[i])
            i += 1
        ok, last_diff = agree()
        if ok:
            agreed = th
        while agreed is None and i < len(recs) and recs[i]["t"] <= th + bound_ns:
            apply(recs[i])
            i += 1
            ok, diff = agree()
            if ok:
                agreed = recs[i - 1]["t"]
            else:
                last_diff = diff
        if agreed is None:
            extra = " (history ends %.3fs after it)" % ((end_t - th) / NS) if end_t < th + bound_ns else ""
            res.add("no-convergence",
                    "nodes did not agree within %.1fs of the heal at %s%s; last difference: %s"
                    % (bound_ns / NS, T(th), extra, last_diff), [h])
    return len(heals)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check an electiond cluster history for safety violations.")
    ap.add_argument("history")
    ap.add_argument("--convergence-bound", type=float, default=DEFAULT_BOUND, metavar="SEC",
                    help="time after a heal by which all live nodes must agree (default %(default)s)")
    ap.add_argument("--lease", type=float, default=None, metavar="SEC",
                    help="LeaseSec of the run (default: from the history's cluster record, else %s)"
                    % DEFAULT_LEASE)
    ap.add_argument("--rho", type=float, default=DEFAULT_RHO, help="clock-rate bound (default %(default)s)")
    ap.add_argument("--tolerance", type=float, default=0.0, metavar="SEC",
                    help="LocalLeader overlap tolerated for recording latency (default 0)")
    ap.add_argument("--record-slack", type=float, default=DEFAULT_RECORD_SLACK, metavar="SEC",
                    help="how late a recorder may see a signal emitted before a reply (default %(default)s)")
    ap.add_argument("--fault-grace", type=float, default=DEFAULT_FAULT_GRACE, metavar="SEC",
                    help="how long after a fault ends it still excuses a lost candidacy (default %(default)s)")
    ap.add_argument("--clip-partitions", action="store_true",
                    help="also end a claim at (link down / partition) + lease")
    a = ap.parse_args(argv)
    try:
        recs = load(a.history)
    except (OSError, ValueError) as e:
        print("check_history: %s" % e, file=sys.stderr)
        return 2
    r = check(recs, a.convergence_bound, a.lease, a.rho, a.tolerance, a.clip_partitions, a.fault_grace,
              a.record_slack)
    s = r.summary
    print("history: %d records, %.1fs, nodes %s, %d elections, %d terms, %d LocalLeader claims, "
          "%d acknowledged enters, %d heals checked (lease %.3fs)"
          % (s["records"], s["duration_sec"], ",".join(s["nodes"]), s["elections"], s["terms"],
             s["claims"], s["acked_enters"], s["heals_checked"], s["lease_sec"]))
    if r.ok:
        print("OK: no violations")
        return 0
    print("FAILED: %d violation(s)" % len(r.violations))
    for v in r.violations:
        print("  VIOLATION %s" % v)
    return 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Linearizability checker for electiond histories (independent of check_history.py).

    linearizability.py HISTORY.jsonl [--budget N] [--fault-grace SEC] [--strict-drops]

Exit status 0: linearizable; 1: not linearizable (or, with --fail-unknown, undecided);
2: unreadable input. Importable: check(records, ...) -> Result (.violations, .unknown, .summary).

What is checked
---------------
The mutating client calls (Enter/Leave/Anoint/Promote/Evict; "invoke" and "ok"/"fail" records
written by recorder.Client) of each election form a concurrent history of one object; elections
are independent objects, and linearizability is local (Herlihy & Wing), so every election is
checked on its own. The sequential object is the seed's rules (docs/DESIGN.md "The rules"):

    state  = term id, ordered candidates [(id, node, owner, persistent)], leader = first
    ENTER  id present: re-bind (node, owner, persistent := caller's), no reorder, same term;
           absent: append; if now the only candidate, term + 1
    LEAVE  absent: no-op; connection-bound and (node, owner) != caller's: AccessDenied;
           else remove; if it led and someone is left, term + 1
    EVICT  absent: NotCandidate; else remove as LEAVE
    ANOINT absent: NotCandidate; leader: no-op; else move to front, term + 1
    PROMOTE absent: NotCandidate; leader: no-op; else swap with the one ahead; reaching the
           front: term + 1

A reply "ok" carries the term right after the call's own command (id, leader, candidates); the
model's state after the call must equal it exactly (term id and the candidate list in order).
NotCandidate and AccessDenied replies are definite results (the call changed nothing, and the
model must give the same answer at the call's linearization point). ServiceUnknown /
NameHasNoOwner mean the call never reached a daemon (its node's daemon was down), and a NoQuorum
whose message says the node refused the change ("This node has no quorum: ...", sent before
anything is submitted: DESIGN.md lease rule 6) had no effect: such calls are left out. Every
other failure (NoQuorum "could not be committed in time", NoReply/timeout, Disconnected,
anything else) is indeterminate: the call may have taken effect at
any time after its invocation (with no upper bound: a command submitted before a commit timeout
can still commit later) or never.

Internal transitions (no client call): the cluster removes candidacies by itself — DROP_OWNER
(the owner's bus connection went away), DROP_RUN (the daemon of the candidacy's node restarted)
and DROP_NODE (the node was fenced: no lease from a majority for NodeTimeoutSec) — and, with the
short-fence fix, re-enters a fenced persistent candidacy at the back when its node is back. The
model allows these as nondeterministic steps between calls, each constrained by the history:

  * a connection-bound candidacy of owner O may be removed at any time after a client_event
    "disconnect" of O;
  * any candidacy of node N (connection-bound or persistent) may be removed at a time when a
    fault touching N was active (its daemon killed, terminated, stopped or failed to start, its
    link down, partitioned either way, lossy, the bridge down, or a node-level fault — the same
    windows as check_history.py's lost-enter excuse, extended by --fault-grace);
  * a removed (parked) candidacy may be re-appended at the back later (any time): persistent ones,
    and connection-bound ones whose connection still lives, come back when their node is back;
    Leave/Evict of a parked id forget it and answer ok (nothing visible changes);
  * a removal of several candidacies may be one command (one term change at most) or several;
  * the same candidacies may be parked and re-appended several times before one call (a node
    that flaps: each cycle of a sole candidate is a term), up to MAX_EXTRA_CYCLES more.

"At a time" is judged against the search's position: a removal placed just before the
linearization point of call C must have a window that starts before C completed and ends after
the latest invocation among the calls already linearized (a lower bound of "now") — except
NotCandidate replies: they change nothing and observe only their own id, so a removal of another
id commutes with them and they do not raise that bound (seed 548158137: a candidacy dropped with its node's restart at
59 s, whose first later call, at 83.8 s, came just after a NotCandidate of another id). The removals
are guessed lazily: only when a call's reply shows that candidacies are gone (or moved to the
back), and only those; so a search never invents removals no reply asks for.

Soundness (no false alarm): every real behaviour of a correct daemon is a sequence of rule
applications and of such internal steps inside their windows, so some branch of the search
follows it. Approximations, all on the permissive side: the windows come from the harness's
fault records (a drop can only happen while or shortly after the cluster could see the node as
failed); re-appends are placed after the removals guessed for the same call. What it still
catches: an acknowledged call whose reply state no order of the calls explains (lost or reordered
candidates outside fault windows, a term id that skips or repeats, two replies for one term with
different candidates, a stale reply — a reply showing a state older than one a completed call
already produced —, a candidate that appears without an Enter, an Anoint whose reply does not
show it leading).

Identity: a call's node is the harness node it was made on, except while the nemesis runs that
node's daemon under another node's name (node_fault "dupname"): the daemon then submits it as
that name, and so does the model (Leave's ownership check compares node names).

Optional "final" check: when every final snapshot of the run (cluster.write_final) agrees on an
election, that view is added as a read at the end of the history (all calls must fit before it);
this catches acknowledged changes lost without an excuse.

Search: Wing & Gong's algorithm with Lowe's memoisation (a configuration = the set of linearized
calls + the model state; a configuration that failed once is not explored again). Indeterminate
calls with equal signature (op, id, node, owner, flags) are interchangeable, so they are
linearized in invocation order and counted, not named. An indeterminate call that would
not change the state where it is tried is not tried there (leaving it for later is never worse). A search that exceeds --budget steps for
one election ends as "unknown" (reported, not a violation).
"""

import argparse
import json
import sys
import threading
from collections import defaultdict

NS = 1_000_000_000
INF = float("inf")
MUTATING = ("enter", "leave", "anoint", "promote", "evict")
DEFINITE_ERRORS = {
    "org.electiond.Election1.Error.NotCandidate": "not_candidate",
    "org.freedesktop.DBus.Error.AccessDenied": "denied",
}
# The call never reached an electiond (no owner of the bus name, or the GetElection before it
# failed): it certainly had no effect, and is left out.
NOT_DELIVERED = {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"}
# A node without a lease refuses a change before submitting it (DESIGN.md "Leases" rule 6,
# electiond-bus.c call_submit): that NoQuorum, told apart by its message, had no effect. The other
# NoQuorum ("could not be committed in time") is indeterminate.
NO_QUORUM = "org.electiond.Election1.Error.NoQuorum"
REFUSED_PREFIX = "This node has no quorum"
DEFAULT_BUDGET = 500_000
MAX_EXTRA_CYCLES = 4        # park/restore cycles of the same candidacies before one call
DEFAULT_FAULT_GRACE = 2.5  # composed faults: a drop (and its restore) may commit well after one ends


class Violation:
    def __init__(self, kind, message, records=()):
        self.kind = kind
        self.message = message
        self.records = list(records)

    def __str__(self):
        return "%s: %s" % (self.kind, self.message)


class Result:
    def __init__(self):
        self.violations = []
        self.unknown = []        # elections whose search ran out of budget
        self.summary = {}

    @property
    def ok(self):
        return not self.violations

    def kinds(self):
        return sorted({v.kind for v in self.violations})


class Op:
    __slots__ = ("idx", "op", "cid", "node", "owner", "persistent", "inv", "ret", "result", "rec",
                 "sig")

    def __init__(self, idx, op, cid, node, owner, persistent, inv, ret, result, rec):
        self.idx = idx
        self.op = op
        self.cid = cid
        self.node = node
        self.owner = owner
        self.persistent = persistent
        self.inv = inv
        self.ret = ret          # INF: indeterminate
        self.result = result    # None (indeterminate), ("ok", term, ids), ("err", kind)
        self.rec = rec
        self.sig = (op, cid, node, owner, persistent)

    def __repr__(self):
        return "%s(%s)@%s" % (self.op, self.cid, self.node)


# ---- the sequential object --------------------------------------------------------------------
# state: (term, cands, fenced); cands: tuple of (id, node, owner, persistent); fenced: frozenset
# of persistent candidacies removed by an internal step that may come back at the back.

def _ids(cands):
    return tuple(c[0] for c in cands)


def _find(cands, cid):
    for i, c in enumerate(cands):
        if c[0] == cid:
            return i
    return -1


def _unfence(fenced, cid):
    if any(f[0] == cid for f in fenced):
        return frozenset(f for f in fenced if f[0] != cid)
    return fenced


def apply(state, op):
    """(new state, outcome) of op on state; outcome "ok", "not_candidate" or "denied"."""
    term, cands, fenced = state
    i = _find(cands, op.cid)
    if op.op == "enter":
        me = (op.cid, op.node, op.owner, op.persistent)
        fenced = _unfence(fenced, op.cid)
        if i >= 0:
            return (term, cands[:i] + (me,) + cands[i + 1:], fenced), "ok"
        return (term + 1 if not cands else term, cands + (me,), fenced), "ok"
    if op.op in ("leave", "evict"):
        if i < 0:
            # a candidacy the cluster parked (DROP_NODE) is forgotten: ok, nothing visible changes
            f = next((f for f in fenced if f[0] == op.cid), None)
            if f is not None:
                if op.op == "leave" and not f[3] and (f[1], f[2]) != (op.node, op.owner):
                    return state, "denied"
                # a connection-bound one may be gone for good instead (DROP_RUN, DROP_OWNER)
                return (term, cands, _unfence(fenced, op.cid)), "ok" if f[3] or op.op == "leave" else "ok|not_candidate"
            return state, ("ok" if op.op == "leave" else "not_candidate")
        c = cands[i]
        if op.op == "leave" and not c[3] and (c[1], c[2]) != (op.node, op.owner):
            return state, "denied"
        rest = cands[:i] + cands[i + 1:]
        return (term + 1 if i == 0 and rest else term, rest, _unfence(fenced, op.cid)), "ok"
    if op.op == "anoint":
        if i < 0:
            return state, "not_candidate"
        if i == 0:
            return state, "ok"
        return (term + 1, (cands[i],) + cands[:i] + cands[i + 1:], fenced), "ok"
    if op.op == "promote":
        if i < 0:
            return state, "not_candidate"
        if i == 0:
            return state, "ok"
        c = list(cands)
        c[i - 1], c[i] = c[i], c[i - 1]
        return (term + 1 if i == 1 else term, tuple(c), fenced), "ok"
    if op.op == "read":
        return state, "ok"
    raise ValueError(op.op)


def _remove(state, group):
    """One internal command removing the candidacies whose ids are in group."""
    term, cands, fenced = state
    rest = tuple(c for c in cands if c[0] not in group)
    if len(rest) == len(cands):
        return state
    led = cands[0][0] in group
    # parked, persistent or not: a connection-bound one comes back if its connection still lives
    gone = frozenset(c for c in cands if c[0] in group)
    return (term + 1 if led and rest else term, rest, fenced | gone)


def _reappend(state, cid):
    term, cands, fenced = state
    for f in fenced:
        if f[0] == cid and _find(cands, cid) < 0:
            return (term + 1 if not cands else term, cands + (f,), _unfence(fenced, cid))
    return None


def _ordered_partitions(items):
    """Every way to split items into an ordered sequence of non-empty groups."""
    items = list(items)
    if not items:
        yield ()
        return
    if len(items) > 5:          # too many to enumerate: all at once, or one by one in order
        yield (frozenset(items),)
        yield tuple(frozenset([x]) for x in items)
        return
    seen = set()

    def rec(rest):
        if not rest:
            yield ()
            return
        rest = list(rest)
        m = len(rest)
        for mask in range(1, 1 << m):
            g = frozenset(rest[k] for k in range(m) if mask >> k & 1)
            left = [rest[k] for k in range(m) if not mask >> k & 1]
            for tail in rec(left):
                yield (g,) + tail
    for p in rec(items):
        if p not in seen:
            seen.add(p)
            yield p


# ---- the search -------------------------------------------------------------------------------

class _Search:
    def __init__(self, ops, windows, budget):
        self.det = sorted([o for o in ops if o.result is not None], key=lambda o: o.inv)
        ind = defaultdict(list)
        for o in ops:
            if o.result is None:
                ind[o.sig].append(o)
        self.sigs = sorted(ind, key=lambda s: repr(s))
        self.ind = [sorted(ind[s], key=lambda o: o.inv) for s in self.sigs]
        self.windows = windows      # (kind, key) -> [(start, end)]
        self.budget = budget
        self.steps = 0
        self.failed = set()
        self.best = (-1, None)      # deepest prefix reached, first call left there
        for i, o in enumerate(self.det):
            o.idx = i

    # --- internal steps ---
    def droppable(self, c, lo, hi):
        cid, node, owner, persistent = c
        wins = list(self.windows.get(("node", node), ()))
        if not persistent:
            wins += self.windows.get(("owner", owner), ())
        return any(a < hi and b > lo for a, b in wins)

    def guesses(self, state, op, lo, hi):
        """States that internal steps can reach before op, as the op's reply asks for."""
        back = op.op in ("promote", "anoint") and op.result is not None and op.result[0] == "ok"
        for st in self._guesses(state, op, lo, hi):
            yield st
            if back:
                # its own id parked and back at the end just before it moves it up (the
                # reply shows it moved, not at the end: seed 960257850)
                i = _find(st[1], op.cid)
                if i >= 0 and self.droppable(st[1][i], lo, hi):
                    st = _remove(st, frozenset([op.cid]))
                st2 = _reappend(st, op.cid)
                if st2 is not None:
                    yield st2

    def _guesses(self, state, op, lo, hi):
        yield state
        if op.result is not None and op.result == ("err", "not_candidate"):
            # the reply says the id is gone: the cluster may have removed it meanwhile
            term, cands, fenced = state
            i = _find(cands, op.cid)
            if i >= 0 and self.droppable(cands[i], lo, hi):
                yield _remove(state, frozenset([op.cid]))
            return
        if op.result is None or op.result[0] != "ok":
            return
        want = op.result[2]
        term, cands, fenced = state
        # a sole candidate whose node flaps: each park and return is one more term (also one
        # that is parked now and comes back first)
        sole = [state] if len(cands) == 1 else []
        if not cands:
            sole += [st for st in (_reappend(state, f[0]) for f in sorted(fenced)) if st is not None]
        for st in sole:
            if not self.droppable(st[1][0], lo, hi):
                continue
            if st is not state:
                yield st
            for j in range(1, min(MAX_EXTRA_CYCLES, op.result[1] - st[0]) + 1):
                yield (st[0] + j, st[1], st[2])
        want_set = set(want)
        own = op.cid if op.op in ("leave", "evict") else None
        must = [c for c in cands if c[0] not in want_set and c[0] != own]
        # suffixes of the reply that may be re-appended fenced candidacies
        for s, self_drop in [(s, d) for s in range(len(want), -1, -1) for d in (False, True)]:
            tail = want[s:]
            if op.op == "enter" and tail and tail[-1] == op.cid:
                tail = tail[:-1]
            elif self_drop and op.op not in ("leave", "evict"):
                # (a Leave/Evict may find its own id parked by the cluster, with the others it
                # dropped, and forget it: seed 614504698)
                continue
            if self_drop and _find(cands, op.cid) < 0:
                continue
            fenced_ids = {f[0] for f in fenced}
            moved = []
            ok = True
            for cid in tail:
                i = _find(cands, cid)
                if i >= 0:
                    # parked and back (connection-bound ones too, while their connection lives)
                    moved.append(cands[i])
                elif cid not in fenced_ids:
                    ok = False
                    break
            if not ok:
                continue
            drop = must + moved + ([cands[_find(cands, op.cid)]] if self_drop else [])
            if not drop and not tail:
                continue   # plain state already yielded
            if not all(self.droppable(c, lo, hi) for c in drop):
                continue
            for parts in _ordered_partitions([c[0] for c in drop]):
                st = state
                for g in parts:
                    st = _remove(st, g)
                for cid in tail:
                    st2 = _reappend(st, cid)
                    if st2 is None:
                        break
                    st = st2
                else:
                    yield st
                    # the same candidacies parked and back again (a flapping node: each cycle
                    # of a sole candidate is one more term), as often as the reply's term allows
                    for _ in range(min(MAX_EXTRA_CYCLES, op.result[1] - st[0]) if tail else 0):
                        back = [st[1][_find(st[1], cid)] for cid in tail]
                        if not all(self.droppable(c, lo, hi) for c in back):
                            break
                        st = _remove(st, frozenset(tail))
                        for cid in tail:
                            st = _reappend(st, cid)
                        yield st

    def matches(self, op, state, outcome):
        r = op.result
        if r is None:
            return True
        if r[0] == "err":
            return r[1] in outcome.split("|")
        return "ok" in outcome.split("|") and state[0] == r[1] and _ids(state[1]) == r[2]

    def run(self, state0):
        return self._rec(0, frozenset(), tuple(0 for _ in self.sigs), state0, -INF)

    def _rec(self, k, extra, counts, state, lo):
        # normalise: advance the prefix over linearized calls
        while k in extra:
            extra = extra - {k}
            k += 1
        if k >= len(self.det):
            return True
        key = (k, extra, counts, state)
        if key in self.failed:
            return False
        self.steps += 1
        if self.steps > self.budget:
            raise _Budget()
        if k > self.best[0]:
            self.best = (k, self.det[k])
        # calls that may go next: invoked before the earliest completion among those left
        mc = INF
        cand = []
        j = k
        while j < len(self.det) and self.det[j].inv < mc:
            if j not in extra:
                cand.append(self.det[j])
                mc = min(mc, self.det[j].ret)
            j += 1
        for s, lst in enumerate(self.ind):
            if counts[s] < len(lst) and lst[counts[s]].inv < mc:
                cand.append(lst[counts[s]])
        for op in cand:
            # lo: a lower bound of when an internal step placed here happened, the latest
            # invocation among the calls linearized — but not NotCandidate replies: they change
            # nothing and observe only their own id, so a removal of another id that the sequence
            # puts after one of them may have happened before it (the two commute; either order
            # fits the call's interval) — unless a removal was guessed for it
            passive = op.result == ("err", "not_candidate")
            tried = set()
            for st in self.guesses(state, op, lo, op.ret):
                if st in tried:
                    continue
                tried.add(st)
                nlo = lo if passive and st == state else max(lo, op.inv)
                ns, outcome = apply(st, op)
                if not self.matches(op, ns, outcome):
                    continue
                if op.result is None and ns == st:
                    # an indeterminate call without effect here: leaving it out is never worse
                    # (a later copy of the same signature would only be less flexible)
                    continue
                if op.result is None:
                    s = self.sigs.index(op.sig)
                    nc = counts[:s] + (counts[s] + 1,) + counts[s + 1:]
                    if self._rec(k, extra, nc, ns, nlo):
                        return True
                else:
                    if self._rec(k, extra | {op.idx}, counts, ns, nlo):
                        return True
        self.failed.add(key)
        return False


class _Budget(Exception):
    pass


# ---- from a history ---------------------------------------------------------------------------

def fault_windows(recs, grace_ns):
    """(kind, key) -> [(start, end)]: ("node", n) while a fault touching n was active (+ grace),
    ("owner", o) from o's disconnect on."""
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    import check_history
    out = defaultdict(list)
    for n, ivs in check_history._fault_intervals(recs, grace_ns).items():
        out[("node", n)].extend(ivs)
    for r in recs:
        if r.get("type") == "client_event" and r.get("event") == "disconnect":
            out[("owner", r.get("owner"))].append((r["t"], INF))
    return out


def _identity_windows(recs):
    """node -> [(start, end, name)]: while the nemesis ran node's daemon under another node's name
    (node_fault "dupname"), calls through it carry that name as their node."""
    out = defaultdict(list)
    open_ = {}
    for r in recs:
        if r.get("type") != "node_event" or r.get("fault") != "dupname":
            continue
        if r.get("event") == "node_fault":
            other = [x for x in r.get("nodes") or [] if x != r.get("node")]
            if other:
                open_[r["node"]] = (r["t"], other[0])
        elif r.get("event") == "node_fault_end" and r.get("node") in open_:
            t, name = open_.pop(r["node"])
            out[r["node"]].append((t, r["t"], name))
    for node, (t, name) in open_.items():
        out[node].append((t, INF, name))
    return out


def history_ops(recs):
    """election -> [Op] from invoke/ok/fail records."""
    ident = _identity_windows(recs)
    inv = {}
    done = {}
    for r in recs:
        ty = r.get("type")
        if ty not in ("invoke", "ok", "fail") or r.get("op") not in MUTATING or not r.get("req"):
            continue
        if ty == "invoke":
            inv[r["req"]] = r
        else:
            done[r["req"]] = r
    out = defaultdict(list)
    for req, i in inv.items():
        d = done.get(req)
        if d is not None and d["type"] == "fail" and (d.get("error") in NOT_DELIVERED or (
                d.get("error") == NO_QUORUM and str(d.get("message", "")).startswith(REFUSED_PREFIX))):
            continue
        persistent = bool(int(i.get("flags", 0) or 0) & 1) if i["op"] == "enter" else False
        ret, result = INF, None
        if d is not None and d["type"] == "ok":
            ret, result = d["t"], ("ok", int(d["term"]), tuple(d["candidates"]))
        elif d is not None and d.get("error") in DEFINITE_ERRORS:
            ret, result = d["t"], ("err", DEFINITE_ERRORS[d["error"]])
        node = i["node"]
        for a, b, name in ident.get(node, ()):
            if a <= i["t"] <= b:
                node = name
        out[i["election"]].append(Op(0, i["op"], i["id"], node, i.get("owner", ""), persistent,
                                     i["t"], ret, result, d or i))
    return out


def final_reads(recs):
    """election -> Op "read" at the end, when every final snapshot agrees on it."""
    finals = [r for r in recs if r.get("type") == "final"]
    if not finals:
        return {}
    t = max(r["t"] for r in finals)
    views = defaultdict(set)
    for f in finals:
        for e, v in (f.get("elections") or {}).items():
            views[e].add((int(v["term"]), tuple(v.get("candidates", []))))
    out = {}
    for e, vs in views.items():
        if len(vs) == 1 and len([f for f in finals if e in (f.get("elections") or {})]) == len(finals):
            term, cands = next(iter(vs))
            out[e] = Op(0, "read", "", "", "", False, t, t + 1, ("ok", term, cands), finals[-1])
    return out


def check(records, budget=DEFAULT_BUDGET, fault_grace=DEFAULT_FAULT_GRACE, use_final=True):
    res = Result()
    recs = [r for _i, r in sorted(enumerate(records), key=lambda p: (p[1].get("t", 0), p[0]))]
    t0 = recs[0]["t"] if recs else 0
    windows = fault_windows(recs, int(fault_grace * NS))
    by_e = history_ops(recs)
    finals = final_reads(recs) if use_final else {}
    n_ops = n_ind = 0
    steps = 0
    for e in sorted(by_e):
        ops = list(by_e[e])
        if e in finals:
            ops.append(finals[e])
        n_ops += len(ops)
        n_ind += sum(1 for o in ops if o.result is None)
        s = _Search(ops, windows, budget)
        try:
            ok = _run_big_stack(lambda: s.run((0, (), frozenset())))
        except _Budget:
            res.unknown.append(e)
            steps += s.steps
            continue
        steps += s.steps
        if not ok:
            k, op = s.best
            what = ("the final state %r" % (op.result,) if op.op == "read" else
                    "%s(%r) on %s invoked at %.3fs, reply %r" % (op.op, op.cid, op.node, (op.inv - t0) / NS,
                                                                 op.result))
            res.violations.append(Violation(
                "not-linearizable",
                "election %r: no order of its %d calls explains the replies; the longest linearizable "
                "prefix (%d calls) is stuck at %s" % (e, len(ops), k, what), [op.rec]))
    res.summary = {"elections": len(by_e), "calls": n_ops, "indeterminate": n_ind, "steps": steps,
                   "unknown": list(res.unknown)}
    return res


def _run_big_stack(fn):
    """Runs fn in a thread with a large stack (the search recurses once per call)."""
    out = {}

    def body():
        try:
            out["v"] = fn()
        except BaseException as e:   # re-raised in the caller
            out["e"] = e
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 200000))
    threading.stack_size(512 * 1024 * 1024)
    try:
        t = threading.Thread(target=body)
        t.start()
        t.join()
    finally:
        threading.stack_size(0)
        sys.setrecursionlimit(old)
    if "e" in out:
        raise out["e"]
    return out["v"]


def load(path):
    recs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                try:
                    recs.append(json.loads(line))
                except ValueError as e:
                    raise ValueError("%s:%d: %s" % (path, n, e))
    return recs


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check that an electiond history is linearizable.")
    ap.add_argument("history")
    ap.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="search steps per election")
    ap.add_argument("--fault-grace", type=float, default=DEFAULT_FAULT_GRACE, metavar="SEC")
    ap.add_argument("--no-final", action="store_true", help="do not add the final snapshot as a read")
    ap.add_argument("--fail-unknown", action="store_true", help="exit 1 when a search ran out of budget")
    a = ap.parse_args(argv)
    try:
        recs = load(a.history)
    except (OSError, ValueError) as e:
        print("linearizability: %s" % e, file=sys.stderr)
        return 2
    r = check(recs, a.budget, a.fault_grace, not a.no_final)
    s = r.summary
    print("linearizability: %d elections, %d calls (%d indeterminate), %d search steps%s"
          % (s["elections"], s["calls"], s["indeterminate"], s["steps"],
             ", undecided: %s" % ",".join(s["unknown"]) if s["unknown"] else ""))
    if r.ok and not (a.fail_unknown and r.unknown):
        print("OK: linearizable")
        return 0
    for v in r.violations:
        print("  VIOLATION %s" % v)
    print("FAILED")
    return 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tests of tests/checker/linearizability.py on hand-made histories, linearizable and not, plus
random histories generated from a sequential run of the model (must all pass) and the same with
one reply corrupted (must be caught)."""

import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linearizability as L  # noqa: E402

S = 1_000_000_000
ms = 1_000_000


class H:
    """Builds a history; times in ms."""

    def __init__(self):
        self.recs = [{"t": 0, "type": "node_event", "event": "cluster", "nodes": ["n1", "n2", "n3"]}]
        self.n = 0

    def call(self, op, cid, t0, t1, node="n1", owner=":1.1", reply=None, error=None, flags=None,
             election="e", message=""):
        self.n += 1
        req = "r%d" % self.n
        inv = {"t": t0 * ms, "type": "invoke", "op": op, "election": election, "id": cid, "node": node,
               "owner": owner, "client": owner, "req": req}
        if flags is not None:
            inv["flags"] = flags
        self.recs.append(inv)
        if reply is not None:
            term, cands = reply
            self.recs.append(dict(inv, t=t1 * ms, type="ok", term=term, leader=cands[0] if cands else "",
                                  candidates=list(cands)))
        elif error is not None:
            self.recs.append(dict(inv, t=t1 * ms, type="fail", error=error, message=message))
        return self

    def event(self, t, event, **kw):
        self.recs.append(dict({"t": t * ms, "type": "node_event", "event": event}, **kw))
        return self

    def disconnect(self, t, owner, node="n1"):
        self.recs.append({"t": t * ms, "type": "client_event", "event": "disconnect", "owner": owner,
                          "node": node, "client": owner})
        return self

    def final(self, t, cands, term, nodes=("n1", "n2", "n3"), election="e"):
        for n in nodes:
            self.recs.append({"t": t * ms, "type": "final", "node": n,
                              "elections": {election: {"term": term, "leader": cands[0] if cands else "",
                                                       "candidates": list(cands)}}})
        return self

    def check(self, **kw):
        return L.check(self.recs, **kw)


NOQ = "org.electiond.Election1.Error.NoQuorum"
NOTC = "org.electiond.Election1.Error.NotCandidate"
DENIED = "org.freedesktop.DBus.Error.AccessDenied"


class HandMade(unittest.TestCase):
    def ok(self, h):
        r = h.check()
        self.assertTrue(r.ok, [str(v) for v in r.violations])
        self.assertFalse(r.unknown)
        return r

    def bad(self, h):
        r = h.check()
        self.assertEqual(r.kinds(), ["not-linearizable"], r.summary)
        return r

    def test_sequential(self):
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
               .call("enter", "b", 20, 30, owner=":1.2", node="n2", reply=(1, ["a", "b"])) \
               .call("leave", "a", 40, 50, reply=(2, ["b"])) \
               .call("leave", "b", 60, 70, owner=":1.2", node="n2", reply=(2, []))
        self.ok(h)

    def test_concurrent_either_order(self):
        # overlapping enters: b's reply shows it first, a's shows it second: b went first
        h = H().call("enter", "a", 0, 100, reply=(1, ["b", "a"])) \
               .call("enter", "b", 10, 50, owner=":1.2", reply=(1, ["b"]))
        self.ok(h)

    def test_real_time_order_violated(self):
        # b is invoked after a's reply, yet b's reply claims b went first
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
               .call("enter", "b", 20, 30, owner=":1.2", reply=(1, ["b"]))
        self.bad(h)

    def test_stale_reply(self):
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
               .call("enter", "b", 20, 30, owner=":1.2", reply=(1, ["a", "b"])) \
               .call("anoint", "b", 40, 50, owner=":1.2", reply=(2, ["b", "a"])) \
               .call("enter", "c", 60, 70, owner=":1.3", reply=(1, ["a", "b", "c"]))
        self.bad(h)

    def test_term_skip_and_repeat(self):
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
               .call("leave", "a", 20, 30, reply=(1, [])) \
               .call("enter", "b", 40, 50, owner=":1.2", reply=(3, ["b"]))
        self.bad(h)
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
               .call("leave", "a", 20, 30, reply=(1, [])) \
               .call("enter", "b", 40, 50, owner=":1.2", reply=(1, ["b"]))
        self.bad(h)          # term id reused for a new leader
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
               .call("leave", "a", 20, 30, reply=(1, [])) \
               .call("enter", "b", 40, 50, owner=":1.2", reply=(2, ["b"]))
        self.ok(h)

    def test_anoint_promote(self):
        base = H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
                  .call("enter", "b", 20, 30, owner=":1.2", reply=(1, ["a", "b"])) \
                  .call("enter", "c", 40, 50, owner=":1.3", reply=(1, ["a", "b", "c"]))
        h = H()
        h.recs = list(base.recs)
        h.n = base.n
        h.call("promote", "c", 60, 70, owner=":1.3", reply=(1, ["a", "c", "b"])) \
         .call("promote", "c", 80, 90, owner=":1.3", reply=(2, ["c", "a", "b"])) \
         .call("anoint", "b", 100, 110, owner=":1.2", reply=(3, ["b", "c", "a"])) \
         .call("anoint", "b", 120, 130, owner=":1.2", reply=(3, ["b", "c", "a"]))
        self.ok(h)
        h2 = H()
        h2.recs = list(base.recs)
        h2.n = base.n
        h2.call("anoint", "c", 60, 70, owner=":1.3", reply=(1, ["c", "a", "b"]))   # no new term
        self.bad(h2)

    def test_definite_errors(self):
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
               .call("evict", "a", 20, 30, error=NOTC)      # a is a candidate: wrong answer
        self.bad(h)
        h = H().call("evict", "x", 0, 10, error=NOTC) \
               .call("enter", "a", 20, 30, reply=(1, ["a"])) \
               .call("leave", "a", 40, 50, owner=":9.9", node="n2", error=DENIED) \
               .call("leave", "a", 60, 70, reply=(1, []))
        self.ok(h)
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
               .call("leave", "a", 40, 50, owner=":9.9", node="n2", reply=(1, []))  # not its owner
        self.bad(h)
        h = H().call("enter", "a", 0, 10, flags=1, reply=(1, ["a"])) \
               .call("leave", "a", 40, 50, owner=":9.9", node="n2", reply=(1, []))  # persistent: any uid-0 caller
        self.ok(h)

    def test_indeterminate(self):
        took = H().call("enter", "a", 0, 3000, error=NOQ) \
                  .call("enter", "b", 4000, 4010, owner=":1.2", reply=(1, ["a", "b"]))
        self.ok(took)
        did_not = H().call("enter", "a", 0, 3000, error=NOQ) \
                     .call("enter", "b", 4000, 4010, owner=":1.2", reply=(1, ["b"]))
        self.ok(did_not)
        # refused before submission (no lease): certainly no effect
        refused = H().call("enter", "a", 0, 3, error=NOQ, message="This node has no quorum: no change is "
                           "accepted here now.") \
                     .call("enter", "b", 4000, 4010, owner=":1.2", reply=(1, ["a", "b"]))
        self.bad(refused)
        # the call never reached a daemon
        gone = H().call("enter", "a", 0, 3, error="org.freedesktop.DBus.Error.ServiceUnknown") \
                  .call("enter", "b", 4000, 4010, owner=":1.2", reply=(1, ["a", "b"]))
        self.bad(gone)
        # an indeterminate call cannot take effect before it was invoked
        early = H().call("enter", "b", 0, 10, owner=":1.2", reply=(1, ["a", "b"])) \
                   .call("enter", "a", 20, 3000, error=NOQ)
        self.bad(early)
        # many interchangeable indeterminate calls stay cheap
        h = H()
        for i in range(60):
            h.call("enter", "a", 100 * i, 100 * i + 50, error=NOQ)
        h.call("enter", "b", 10000, 10010, owner=":1.2", reply=(1, ["a", "b"]))
        h.call("leave", "a", 10020, 10030, reply=(2, ["b"]))
        h.call("enter", "c", 10040, 10050, owner=":1.3", reply=(2, ["b", "a", "c"]))   # a late copy
        r = self.ok(h)
        self.assertLess(r.summary["steps"], 20000)

    def test_internal_drop_needs_an_excuse(self):
        def hist():
            return H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
                      .call("enter", "b", 20, 30, node="n2", owner=":2.1", reply=(1, ["a", "b"]))
        h = hist().call("enter", "c", 5000, 5010, node="n3", owner=":3.1", reply=(2, ["b", "c"]))
        self.bad(h)          # a vanished, nothing excuses it
        h = hist().disconnect(1000, ":1.1") \
                  .call("enter", "c", 5000, 5010, node="n3", owner=":3.1", reply=(2, ["b", "c"]))
        self.ok(h)           # DROP_OWNER after the disconnect
        h = hist().event(1000, "kill", node="n1").event(1500, "start", node="n1") \
                  .call("enter", "c", 5000, 5010, node="n3", owner=":3.1", reply=(2, ["b", "c"]))
        self.ok(h)           # dropped while n1 was down (window ends at start + grace, before c)
        h = hist().event(1000, "kill", node="n2").event(1500, "start", node="n2") \
                  .call("enter", "c", 5000, 5010, node="n3", owner=":3.1", reply=(2, ["b", "c"]))
        self.bad(h)          # the fault was on the wrong node
        # dropped long after the fault window and after a later call already saw it
        h = hist().event(100, "kill", node="n1").event(200, "start", node="n1") \
                  .call("enter", "c", 5000, 5010, node="n3", owner=":3.1", reply=(1, ["a", "b", "c"])) \
                  .call("enter", "d", 6000, 6010, node="n3", owner=":3.2", reply=(2, ["b", "c", "d"]))
        self.bad(h)
        # a NotCandidate reply after the node restarted (DROP_RUN removed it)
        h = hist().event(1000, "kill", node="n1").event(1500, "start", node="n1") \
                  .call("evict", "a", 1600, 1610, node="n3", owner=":3.1", error=NOTC)
        self.ok(h)
        h = hist().call("evict", "a", 1600, 1610, node="n3", owner=":3.1", error=NOTC)
        self.bad(h)
        # seed 548158137: a NotCandidate of another id comes first, long after the window; the
        # drop commutes with it (it changes and observes nothing of a)
        h = hist().event(1000, "kill", node="n1").event(1500, "start", node="n1") \
                  .call("evict", "z", 9000, 9010, node="n3", owner=":3.1", error=NOTC) \
                  .call("evict", "a", 9200, 9210, node="n3", owner=":3.1", error=NOTC)
        self.ok(h)
        # ... but not with a reply that saw a still listed
        h = hist().event(1000, "kill", node="n1").event(1500, "start", node="n1") \
                  .call("anoint", "b", 9000, 9010, node="n2", owner=":2.1", reply=(2, ["b", "a"])) \
                  .call("evict", "a", 9200, 9210, node="n3", owner=":3.1", error=NOTC)
        self.bad(h)
        # ... nor with a NotCandidate that returned before the window began
        h = hist().call("evict", "z", 900, 910, node="n3", owner=":3.1", error=NOTC) \
                  .event(1000, "kill", node="n1").event(1500, "start", node="n1") \
                  .call("evict", "a", 9200, 9210, node="n3", owner=":3.1", error=NOTC)
        self.ok(h)           # (the drop may still come after it: fine)
        # seed 614504698: the cluster dropped both (c first, then the sole a: no new term), and
        # the Evict of c forgot the parked c
        def two():
            return H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
                      .call("enter", "c", 20, 30, node="n3", owner=":3.1", reply=(1, ["a", "c"]))
        h = two().event(1000, "loss", nodes=["n1", "n3"], percent=30).event(2000, "heal") \
                 .call("evict", "c", 3000, 3010, node="n2", owner=":2.1", reply=(1, []))
        self.ok(h)
        h = two().call("evict", "c", 3000, 3010, node="n2", owner=":2.1", reply=(1, []))
        self.bad(h)          # no fault: a could not have gone
        # seed 960257850: a parked, back at the end, then promoted past c: the reply shows it
        # moved up, not at the end
        def three():
            return H().call("enter", "b", 0, 10, node="n2", owner=":2.1", reply=(1, ["b"])) \
                      .call("enter", "a", 20, 30, flags=1, reply=(1, ["b", "a"])) \
                      .call("enter", "c", 40, 50, node="n3", owner=":3.1", reply=(1, ["b", "a", "c"]))
        h = three().event(1000, "stop", node="n1").event(1500, "cont", node="n1") \
                   .call("promote", "a", 3000, 3010, reply=(1, ["b", "a", "c"]))
        self.ok(h)
        h = three().event(1000, "stop", node="n1").event(1500, "cont", node="n1") \
                   .call("promote", "a", 3000, 3010, reply=(1, ["b", "c", "a"]))
        self.bad(h)          # a promote that did not move it
        h = three().call("promote", "a", 3000, 3010, reply=(1, ["b", "a", "c"]))
        self.bad(h)          # no fault: promoted in place, it would lead under term 2
        h = three().event(1000, "stop", node="n1").event(1500, "cont", node="n1") \
                   .call("enter", "d", 2000, 2010, node="n3", owner=":3.2", reply=(1, ["b", "c", "a", "d"])) \
                   .call("promote", "a", 3000, 3010, reply=(1, ["b", "a", "c", "d"]))
        self.ok(h)
        h = three().call("enter", "d", 2000, 2010, node="n3", owner=":3.2", reply=(1, ["b", "c", "a", "d"]))
        self.bad(h)          # no fault: a cannot have been parked
        # two leaders dropped: two commands (two new terms) or one (one new term) both fit
        for term in (2, 3):
            h = H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
                   .call("enter", "b", 20, 30, node="n2", owner=":2.1", reply=(1, ["a", "b"])) \
                   .call("enter", "c", 40, 50, node="n3", owner=":3.1", reply=(1, ["a", "b", "c"])) \
                   .event(1000, "partition", groups=[["n1"], ["n2", "n3"]]) \
                   .event(1000, "partition", groups=[["n2"], ["n1", "n3"]]) \
                   .event(2000, "heal").event(2000, "healed") \
                   .call("leave", "c", 5000, 5010, node="n3", owner=":3.1", reply=(term, []))
            self.ok(h)

    def test_persistent_reappended_after_fence(self):
        def hist():
            return H().call("enter", "a", 0, 10, flags=1, reply=(1, ["a"])) \
                      .call("enter", "b", 20, 30, node="n2", owner=":2.1", reply=(1, ["a", "b"]))
        h = hist().event(1000, "partition", groups=[["n1"], ["n2", "n3"]]).event(2000, "heal") \
                  .event(2000, "healed") \
                  .call("enter", "c", 5000, 5010, node="n3", owner=":3.1", reply=(2, ["b", "a", "c"]))
        self.ok(h)
        h = hist().call("enter", "c", 5000, 5010, node="n3", owner=":3.1", reply=(2, ["b", "a", "c"]))
        self.bad(h)          # no fence: a cannot have moved to the back
        # a connection-bound candidacy whose connection still lives comes back too (parked)
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])) \
               .call("enter", "b", 20, 30, node="n2", owner=":2.1", reply=(1, ["a", "b"])) \
               .event(1000, "partition", groups=[["n1"], ["n2", "n3"]]).event(2000, "heal") \
               .call("enter", "c", 5000, 5010, node="n3", owner=":3.1", reply=(2, ["b", "a", "c"]))
        self.ok(h)

    def test_parked_and_restored_twice(self):
        # nemesis seed 497610148: the sole candidate a is parked and back twice (terms 2 and 3)
        # before the Promote's reply shows it leading at term 3
        def hist(t_fault):
            return H().call("enter", "a", 0, 10, flags=1, reply=(1, ["a"])) \
                      .event(t_fault, "partition", groups=[["n1"], ["n2", "n3"]]) \
                      .event(t_fault + 1000, "heal").event(t_fault + 1000, "healed")
        self.ok(hist(1000).call("promote", "a", 1500, 1600, reply=(3, ["a"])))
        self.ok(hist(1000).call("promote", "a", 1500, 1600, reply=(2, ["a"])))
        # no fault on n1: a cannot have been parked at all
        self.bad(hist(100000).call("promote", "a", 1500, 1600, reply=(3, ["a"])))
        # the same before a Leave of it (seed 497610148, election s2)
        self.ok(hist(1000).call("leave", "a", 1500, 1600, reply=(4, [])))
        self.bad(hist(100000).call("leave", "a", 1500, 1600, reply=(4, [])))
        # parked when the Leave comes: back first, then flapping (seed 102 of the soak runs)
        h = H().call("enter", "a", 0, 10, flags=1, reply=(1, ["a"])) \
               .event(1000, "partition", groups=[["n1"], ["n2", "n3"]]) \
               .call("enter", "b", 1100, 1110, node="n2", owner=":2.1", reply=(1, ["a", "b"])) \
               .call("leave", "a", 1200, 1210, reply=(2, ["b"])) \
               .call("leave", "b", 1300, 1310, node="n2", owner=":2.1", reply=(2, [])) \
               .event(2000, "heal").event(2000, "healed")
        self.ok(h)
        # beyond the cycles allowed
        self.bad(hist(1000).call("promote", "a", 1500, 1600, reply=(3 + L.MAX_EXTRA_CYCLES + 1, ["a"])))

    def test_final_state(self):
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])).final(5000, [], 1)
        self.bad(h)          # acknowledged Enter lost without excuse
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])).call("leave", "a", 20, 3000, error=NOQ) \
               .final(5000, [], 1)
        self.ok(h)
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])).final(5000, ["a"], 1)
        self.ok(h)
        # finals that disagree are not used
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"])).final(5000, [], 1, nodes=("n1",)) \
               .final(5000, ["a"], 1, nodes=("n2",))
        self.ok(h)

    def test_elections_are_independent(self):
        h = H().call("enter", "a", 0, 10, reply=(1, ["a"]), election="x") \
               .call("enter", "a", 20, 30, reply=(1, ["a"]), election="y") \
               .call("enter", "b", 40, 50, owner=":1.2", reply=(1, ["b"]), election="x")
        r = self.bad(h)
        self.assertIn("'x'", r.violations[0].message)

    def test_budget_gives_unknown(self):
        h = H()
        for i in range(12):   # a wide concurrent non-linearizable history
            h.call("enter", "c%d" % i, 0, 1000, owner=":1.%d" % i, reply=(1, ["c%d" % i]))
        r = h.check(budget=500)
        self.assertTrue(r.unknown or not r.ok)


class Random(unittest.TestCase):
    """Histories produced by running the model itself with overlapping calls."""

    def test_model_runs_are_linearizable(self):
        # Calls are recorded in the order of their linearization points; real-time overlap is random.
        # (Linearization point order == model order because lin is increasing per generated call.)
        for seed in range(25):
            rng = random.Random(seed)
            h = self.simulate_ordered(rng)
            r = h.check()
            self.assertTrue(r.ok, "seed %d: %s" % (seed, [str(v) for v in r.violations]))

    def simulate_ordered(self, rng, n_ops=120, clients=5, noq=0.1):
        """Like simulate, with strictly increasing linearization points (so the run is legal)."""
        h = H()
        state = (0, (), frozenset())
        lin = 0
        busy = [0] * clients
        ids = ["c%d" % k for k in range(clients)]
        for _ in range(n_ops):
            k = rng.randrange(clients)
            lin += rng.randint(1, 15)
            if busy[k] >= lin:
                continue
            inv = rng.randint(busy[k] + 1, lin) if busy[k] + 1 <= lin else lin
            ret = lin + rng.randint(0, 40)
            busy[k] = ret
            op = rng.choice(["enter", "enter", "leave", "anoint", "promote", "evict"])
            cid = ids[k] if op != "evict" else rng.choice(ids)
            o = L.Op(0, op, cid, "n%d" % (k % 3 + 1), ":1.%d" % k, False, 0, 0, None, None)
            ns, outcome = L.apply(state, o)
            if rng.random() < noq:
                if rng.random() < 0.5:
                    state = ns
                h.call(op, cid, inv, ret, node=o.node, owner=o.owner, error=NOQ)
                continue
            state = ns
            if outcome == "ok":
                h.call(op, cid, inv, ret, node=o.node, owner=o.owner, reply=(ns[0], list(L._ids(ns[1]))))
            else:
                h.call(op, cid, inv, ret, node=o.node, owner=o.owner,
                       error={"not_candidate": NOTC, "denied": DENIED}[outcome])
        return h

    def test_corrupted_reply_is_caught(self):
        caught = 0
        for seed in range(25):
            rng = random.Random(1000 + seed)
            h = self.simulate_ordered(rng, noq=0.0)
            oks = [r for r in h.recs if r.get("type") == "ok" and r["term"] > 0]
            victim = rng.choice(oks)
            victim["term"] += 1          # a term id the rules never give here
            r = h.check()
            self.assertFalse(r.unknown)
            if not r.ok:
                caught += 1
        self.assertEqual(caught, 25)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tests of tests/checker/liveness.py on hand-made histories."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import liveness  # noqa: E402

ms = 1_000_000


def base():
    return [{"t": 0, "type": "node_event", "event": "cluster", "nodes": ["n1", "n2", "n3"]}]


def term(t, node, tid, cands, e="e"):
    return {"t": t * ms, "type": "term", "node": node, "election": e, "term": tid,
            "leader": cands[0] if cands else "", "candidates": list(cands), "src": "signal"}


def ll(t, node, value, tid, e="e"):
    return {"t": t * ms, "type": "local_leader", "node": node, "election": e, "value": value, "term": tid,
            "src": "prop"}


def ev(t, event, **kw):
    return dict({"t": t * ms, "type": "node_event", "event": event}, **kw)


def call(t0, t1, op, cid, node="n1", flags=None, reply=None, e="e", req=[0]):
    req[0] += 1
    inv = {"t": t0 * ms, "type": "invoke", "op": op, "election": e, "id": cid, "node": node,
           "owner": ":1.1", "client": "c", "req": "r%d" % req[0]}
    if flags is not None:
        inv["flags"] = flags
    out = [inv]
    if reply is not None:
        out.append(dict(inv, t=t1 * ms, type="ok", term=reply[0], leader=reply[1][0] if reply[1] else "",
                        candidates=list(reply[1])))
    return out


def final(t, cands, tid, e="e"):
    return [{"t": t * ms, "type": "final", "node": n,
             "elections": {e: {"term": tid, "leader": cands[0] if cands else "", "candidates": list(cands)}}}
            for n in ("n1", "n2", "n3")]


class LeaderAfterHeal(unittest.TestCase):
    def hist(self, claim):
        r = base() + [ev(1000, "partition", groups=[["n1"], ["n2", "n3"]]), ev(2000, "heal"),
                      ev(2000, "healed"), ev(2100, "all_healed")]
        r += [term(2200, n, 3, ["a"]) for n in ("n1", "n2", "n3")]
        if claim:
            r.append(ll(2300, "n1", True, 3))
        r.append(ev(20000, "heal"))   # the history goes on past the bound
        return r

    def test_leader_acts(self):
        self.assertTrue(liveness.check(self.hist(True), bound=5).ok)

    def test_nobody_leads(self):
        r = liveness.check(self.hist(False), bound=5)
        self.assertEqual(r.kinds(), ["no-leader-after-heal"])

    def test_history_too_short(self):
        h = self.hist(False)[:-1]
        self.assertTrue(liveness.check(h, bound=5).ok)


class LostCandidacy(unittest.TestCase):
    def test_persistent_lost(self):
        h = base() + call(10, 20, "enter", "a", flags=1, reply=(1, ["a"])) \
            + [ev(1000, "partition", groups=[["n1"], ["n2", "n3"]]), ev(2000, "heal")] + final(5000, [], 2)
        self.assertEqual(liveness.check(h).kinds(), ["lost-candidacy"])

    def test_persistent_kept_or_given_up(self):
        h = base() + call(10, 20, "enter", "a", flags=1, reply=(1, ["a"])) + final(5000, ["a"], 1)
        self.assertTrue(liveness.check(h).ok)
        h = base() + call(10, 20, "enter", "a", flags=1, reply=(1, ["a"])) + call(30, 40, "leave", "a") \
            + final(5000, [], 1)
        self.assertTrue(liveness.check(h).ok)
        h = base() + call(10, 20, "enter", "a", flags=1, reply=(1, ["a"])) + call(30, 40, "enter", "a", flags=0) \
            + final(5000, [], 1)
        self.assertTrue(liveness.check(h).ok)      # re-bound as connection-bound
        h = base() + call(10, 20, "enter", "a", flags=0, reply=(1, ["a"])) + final(5000, [], 1)
        self.assertTrue(liveness.check(h).ok)      # connection-bound: other rules judge it

    def test_identity_fault_excuses(self):
        h = base() + call(10, 20, "enter", "a", flags=1, reply=(1, ["a"])) \
            + [ev(1000, "node_fault", node="n2", nodes=["n2", "n1"], fault="clone")] + final(5000, [], 2)
        self.assertTrue(liveness.check(h).ok)


class FalseStepDown(unittest.TestCase):
    def test_step_down_without_cause(self):
        h = base() + [term(100, "n1", 1, ["a"]), ll(110, "n1", True, 1), ll(3000, "n1", False, 1)] \
            + [ev(9000, "heal")]
        self.assertEqual(liveness.check(h).kinds(), ["false-step-down"])

    def test_step_down_with_term_change(self):
        h = base() + [term(100, "n1", 1, ["a"]), ll(110, "n1", True, 1), ll(3000, "n1", False, 1),
                      term(3001, "n1", 2, ["b"])]
        self.assertTrue(liveness.check(h).ok)
        h = base() + [term(100, "n1", 1, ["a"]), ll(110, "n1", True, 1), ll(3000, "n1", False, 1),
                      term(3001, "n1", 1, [])]
        self.assertTrue(liveness.check(h).ok)      # last candidate left

    def test_step_down_during_fault(self):
        h = base() + [term(100, "n1", 1, ["a"]), ll(110, "n1", True, 1),
                      ev(2900, "partition", groups=[["n1"], ["n2", "n3"]]), ll(3000, "n1", False, 1),
                      ev(4000, "heal"), ev(4000, "healed")]
        self.assertTrue(liveness.check(h).ok)
        # a fault on any node counts (the cluster's leases depend on all voters)
        h = base() + [term(100, "n1", 1, ["a"]), ll(110, "n1", True, 1),
                      ev(2900, "stop", node="n3"), ll(3000, "n1", False, 1), ev(3500, "cont", node="n3")]
        self.assertTrue(liveness.check(h).ok)

    def test_step_down_while_catching_up(self):
        # seed 102: n1 back after a long cut is quorate 1.6 s after the heal, then refused once
        def hist(t_down):
            return base() + [ev(100, "partition", groups=[["n1"], ["n2", "n3"]]), ev(200, "heal"),
                             ev(200, "healed"),
                             {"t": 2500 * ms, "type": "quorate", "node": "n1", "value": True, "src": "prop"},
                             term(2501, "n1", 5, ["a"]), ll(2502, "n1", True, 5), ll(t_down, "n1", False, 5)]
        self.assertTrue(liveness.check(hist(2800)).ok)
        self.assertEqual(liveness.check(hist(4000)).kinds(), ["false-step-down"])


class MismatchedTiming(unittest.TestCase):
    def hist(self, led):
        h = base() + [ev(100, "node_fault", node="n2", nodes=["n2"], fault="timing"),
                      ev(110, "terminate", node="n2"), ev(200, "start", node="n2")]
        if led:
            h.append(ll(500, "n2", True, 3))
        h += [ev(3000, "node_fault_end", node="n2", nodes=["n2"], fault="timing"), ev(3100, "start", node="n2"),
              ll(3500, "n2", True, 4)]
        return h

    def test_never_leads(self):
        self.assertTrue(liveness.check(self.hist(False)).ok)

    def test_led(self):
        self.assertEqual(liveness.check(self.hist(True)).kinds(), ["mismatched-node-led"])


class OverlappingTiming(unittest.TestCase):
    """Two of three nodes run the nemesis' timing settings: they are the majority that leads."""
    def hist(self, *leads):
        h = base() + [ev(100, "node_fault", node="n1", nodes=["n1"], fault="timing"),
                      ev(110, "terminate", node="n1"), ev(200, "start", node="n1"),
                      ev(1000, "node_fault", node="n3", nodes=["n3"], fault="timing"),
                      ev(1010, "terminate", node="n3"), ev(1100, "start", node="n3"),
                      ev(8000, "node_fault_end", node="n1", nodes=["n1"], fault="timing"),
                      ev(8010, "terminate", node="n1"), ev(9000, "start", node="n1"),
                      ev(20000, "node_fault_end", node="n3", nodes=["n3"], fault="timing"),
                      ev(20010, "terminate", node="n3"), ev(20100, "start", node="n3")]
        h += [ll(t, node, True, 3) for t, node in leads]
        return sorted(h, key=lambda r: r["t"])

    def test_majority_leads(self):
        self.assertTrue(liveness.check(self.hist((1500, "n3"), (5000, "n1"))).ok)

    def test_lone_mismatched_node_before_the_second(self):
        self.assertEqual(liveness.check(self.hist((500, "n1"))).kinds(), ["mismatched-node-led"])

    def test_minority_with_cluster_settings(self):
        self.assertTrue(liveness.check(self.hist((1600, "n2"))).ok)     # its old lease runs out
        self.assertEqual(liveness.check(self.hist((3000, "n2"))).kinds(), ["mismatched-node-led"])

    def test_after_the_majority_ended(self):
        # n1 still runs the mismatched settings until its restart at 9 s
        self.assertTrue(liveness.check(self.hist((8500, "n3"), (9500, "n3"))).ok)
        self.assertEqual(liveness.check(self.hist((12000, "n3"))).kinds(), ["mismatched-node-led"])
        self.assertTrue(liveness.check(self.hist((12000, "n2"), (21000, "n1"))).ok)


if __name__ == "__main__":
    unittest.main(verbosity=2)

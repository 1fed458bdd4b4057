#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests of check_history.py: good histories pass, each kind of bad one is caught."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_history as ch  # noqa: E402

MS = 1_000_000
S = 1000 * MS


class H:
    """Builds a history; times are given in ms."""

    def __init__(self, nodes=("n1", "n2", "n3"), lease=0.2):
        self.recs = [{"t": 0, "type": "node_event", "event": "cluster", "nodes": list(nodes),
                      "config": {"Cluster": {"LeaseSec": str(lease)}}}]
        for n in nodes:
            self.ev(0, "start", node=n)

    def add(self, ms, **kw):
        kw["t"] = int(ms * MS)
        self.recs.append(kw)
        return self

    def ev(self, ms, event, **kw):
        return self.add(ms, type="node_event", event=event, **kw)

    def term(self, ms, node, tid, leader, cands, election="e"):
        return self.add(ms, type="term", node=node, election=election, term=tid, leader=leader,
                        candidates=list(cands), src="signal")

    def term_all(self, ms, tid, leader, cands, nodes=("n1", "n2", "n3"), election="e"):
        for i, n in enumerate(nodes):
            self.term(ms + i, n, tid, leader, cands, election)
        return self

    def ll(self, ms, node, value, election="e", tid=None):
        return self.add(ms, type="local_leader", node=node, election=election, value=value, term=tid,
                        src="prop")

    def op(self, ms_inv, ms_ok, node, op, cid, req, term=None, leader=None, cands=None, election="e",
           owner=None):
        base = {"op": op, "election": election, "id": cid, "node": node, "req": req,
                "owner": owner or ":1.%s" % node, "client": "c-" + node}
        self.add(ms_inv, type="invoke", **base)
        if ms_ok is not None:
            self.add(ms_ok, type="ok", term=term, leader=leader, candidates=list(cands), **base)
        return self

    def final(self, ms, node, elections):
        return self.add(ms, type="final", node=node,
                        elections={e: {"term": v[0], "leader": v[1], "candidates": list(v[2])}
                                   for e, v in elections.items()})

    def check(self, **kw):
        return ch.check(self.recs, **kw)


def valid_history():
    """A 3-node run: a enters on n1, b on n2, a leaves (b leads), n2 killed and restarted after
    the cluster dropped it, a partition heals and everyone agrees."""
    h = H()
    h.op(100, 110, "n1", "enter", "a", "r1", 1, "a", ["a"])
    h.term_all(105, 1, "a", ["a"])
    h.ll(106, "n1", True, tid=1)
    h.op(200, 210, "n2", "enter", "b", "r2", 1, "a", ["a", "b"])
    h.term_all(205, 1, "a", ["a", "b"])
    h.op(300, 310, "n1", "leave", "a", "r3", 2, "b", ["b"])
    h.term_all(305, 2, "b", ["b"])
    h.ll(306, "n1", False, tid=2)
    h.ll(320, "n2", True, tid=2)
    # n2 is killed; its claim ends by kill + lease; n3 enters and leads only after NodeTimeout.
    h.ev(400, "kill", node="n2")
    h.op(410, 420, "n3", "enter", "c", "r4", 2, "b", ["b", "c"])
    h.term(415, "n1", 2, "b", ["b", "c"])
    h.term(416, "n3", 2, "b", ["b", "c"])
    h.term(800, "n1", 3, "c", ["c"])
    h.term(801, "n3", 3, "c", ["c"])
    h.ll(802, "n3", True, tid=3)
    h.ev(900, "restart", node="n2")
    h.ev(900, "start", node="n2")
    h.term(950, "n2", 3, "c", ["c"], )
    # A partition of n1 and its heal; n1 catches up right after.
    h.ev(1000, "partition", groups=[["n1"], ["n2", "n3"]])
    h.op(1010, 1020, "n3", "enter", "d", "r5", 3, "c", ["c", "d"])
    h.term(1015, "n3", 3, "c", ["c", "d"])
    h.term(1016, "n2", 3, "c", ["c", "d"])
    h.ev(1100, "heal")
    h.ev(1101, "healed")
    h.term(1150, "n1", 3, "c", ["c", "d"])
    for n in ("n1", "n2", "n3"):
        h.final(1200, n, {"e": (3, "c", ["c", "d"])})
    return h


class CheckerTest(unittest.TestCase):
    def assertCaught(self, h, kind, **kw):
        r = h.check(**kw)
        self.assertIn(kind, r.kinds(), "expected %s, got %s" % (kind, [str(v) for v in r.violations]))
        return r

    def assertPasses(self, h, **kw):
        r = h.check(**kw)
        self.assertEqual(r.violations, [], [str(v) for v in r.violations])
        return r

    def test_valid_history_passes(self):
        r = self.assertPasses(valid_history())
        self.assertEqual(r.summary["heals_checked"], 1)
        self.assertEqual(r.summary["acked_enters"], 4)
        self.assertGreaterEqual(r.summary["claims"], 3)

    def test_empty_history_passes(self):
        self.assertTrue(ch.check([]).ok)

    # (a)
    def test_two_leaders_for_one_term(self):
        h = valid_history()
        h.term(1300, "n3", 3, "x", ["x"])
        r = self.assertCaught(h, "leader-conflict")
        self.assertIn("term 3", str(r.violations[0]))

    def test_two_leaders_via_client_reply(self):
        h = H()
        h.term_all(100, 1, "a", ["a"])
        h.op(200, 210, "n2", "enter", "b", "r1", 1, "b", ["b"])
        self.assertCaught(h, "leader-conflict")

    def test_empty_leader_after_last_leave_is_not_a_conflict(self):
        h = H()
        h.term_all(100, 1, "a", ["a"])
        h.term_all(200, 1, "", [])
        h.term_all(300, 2, "b", ["b"])
        self.assertPasses(h)

    # (b)
    def test_term_goes_down(self):
        h = H()
        h.term(100, "n1", 5, "a", ["a"])
        h.term(200, "n1", 4, "a", ["a"])
        self.assertCaught(h, "term-regress")

    def test_restart_then_lower_term(self):
        h = H()
        h.term(100, "n1", 5, "a", ["a"])
        h.ev(150, "kill", node="n1")
        h.ev(160, "start", node="n1")
        h.term(200, "n1", 3, "a", ["a"])
        r = self.assertCaught(h, "term-regress")
        self.assertIn("across a restart", str(r.violations[0]))

    def test_term_reused_for_other_leader_after_restart(self):
        h = H()
        h.term(100, "n1", 5, "a", ["a"])
        h.ev(150, "kill", node="n1")
        h.ev(160, "start", node="n1")
        h.term(200, "n1", 5, "b", ["b"])
        self.assertCaught(h, "term-reuse")

    def test_other_nodes_lagging_is_fine(self):
        h = H()
        h.term(100, "n1", 5, "a", ["a"])
        h.term(110, "n2", 3, "x", ["x"])
        h.term(120, "n2", 5, "a", ["a"])
        self.assertPasses(h)

    # (c)
    def test_overlapping_local_leaders(self):
        h = H()
        h.ll(100, "n1", True)
        h.ll(200, "n2", True)
        h.ll(300, "n1", False)
        r = self.assertCaught(h, "split-brain")
        self.assertIn("overlap 100.0 ms", str(r.violations[0]))

    def test_non_overlapping_local_leaders_pass(self):
        h = H()
        h.ll(100, "n1", True)
        h.ll(200, "n1", False)
        h.ll(200, "n2", True)
        h.ll(300, "n2", False)
        h.ll(301, "n3", True)
        self.assertPasses(h)

    def test_stopped_leader_overlap_within_lease_is_caught(self):
        # n1 is SIGSTOPped at 100 ms with lease 0.2 s: it may still act until ~302 ms.
        h = H()
        h.ll(50, "n1", True)
        h.ev(100, "stop", node="n1")
        h.ll(250, "n2", True)          # too early: inside n1's lease
        h.ev(600, "cont", node="n1")
        h.ll(601, "n1", False)
        self.assertCaught(h, "split-brain")

    def test_stopped_leader_taken_over_after_lease_passes(self):
        h = H()
        h.ll(50, "n1", True)
        h.ev(100, "stop", node="n1")
        h.ll(450, "n2", True)          # after stop + lease * (1 + rho) = 302 ms
        h.ev(600, "cont", node="n1")
        h.ll(601, "n1", False)         # steps down on resume: recorded late, but capped
        self.assertPasses(h)

    def test_killed_leader_taken_over_inside_lease_is_caught(self):
        h = H()
        h.ll(50, "n1", True)
        h.ev(100, "kill", node="n1")
        h.add(101, type="owner", node="n1", owner="")
        h.ll(200, "n2", True)
        h.ll(500, "n2", False)
        self.assertCaught(h, "split-brain")

    def test_resumed_leader_that_does_not_step_down_is_caught(self):
        h = H()
        h.ll(50, "n1", True)
        h.ev(100, "stop", node="n1")
        h.ll(450, "n2", True)
        h.ev(600, "cont", node="n1")
        h.add(602, type="local_leader", node="n1", election="e", value=True, src="probe")
        h.ll(700, "n2", False)
        self.assertCaught(h, "split-brain")

    def test_stalled_leader_taken_over_after_lease_passes(self):
        # the 5-node soak's case: a 300 ms disk delay, twice, on the daemon's main thread; the
        # recorder sees its step-down 1.2 s after the stall began (events written out of order)
        h = H()
        h.ll(50, "n1", True)
        h.ll(450, "n2", True)          # after stall + lease * (1 + rho) = 302 ms
        h.ll(1300, "n1", False)
        h.ev(100, "stall", node="n1")
        h.ev(1250, "stall_end", node="n1")
        h.recs.sort(key=lambda r: r["t"])
        self.assertPasses(h)

    def test_stalled_leader_overlap_within_lease_is_caught(self):
        h = H()
        h.ll(50, "n1", True)
        h.ev(100, "stall", node="n1")
        h.ll(250, "n2", True)          # inside the lease n1 renewed before the stall
        h.ev(700, "stall_end", node="n1")
        h.ll(701, "n1", False)
        self.assertCaught(h, "split-brain")

    def test_short_stall_keeps_claim(self):
        h = H()
        h.ll(50, "n1", True)
        h.ev(100, "stall", node="n1")
        h.ev(120, "stall_end", node="n1")
        h.ll(500, "n2", True)          # n1 ran again and never stepped down
        h.ll(600, "n1", False)
        self.assertCaught(h, "split-brain")

    def test_short_pause_keeps_claim(self):
        # Stopped for less than the lease and resumed: the claim continues past the old cap.
        h = H()
        h.ll(50, "n1", True)
        h.ev(100, "stop", node="n1")
        h.ev(150, "cont", node="n1")
        h.ll(500, "n2", True)
        h.ll(600, "n1", False)
        self.assertCaught(h, "split-brain")

    def test_partitioned_leader_that_never_steps_down_is_caught(self):
        h = H()
        h.ll(50, "n1", True)
        h.ev(100, "partition", groups=[["n1"], ["n2", "n3"]])
        h.ll(600, "n2", True)
        h.ll(900, "n1", False)
        self.assertCaught(h, "split-brain")
        # The brief's looser model (cap at partition + lease) would not see it.
        self.assertPasses(h, clip_partitions=True)

    def test_tolerance(self):
        h = H()
        h.ll(100, "n1", True)
        h.ll(200, "n2", True)
        h.ll(203, "n1", False)
        self.assertCaught(h, "split-brain")
        self.assertPasses(h, tolerance=0.005)

    def test_claims_of_different_elections_do_not_conflict(self):
        h = H()
        h.ll(100, "n1", True, election="x")
        h.ll(100, "n2", True, election="y")
        self.assertPasses(h)

    # (d)
    def test_acknowledged_enter_disappears(self):
        h = H()
        h.op(100, 110, "n1", "enter", "a", "r1", 1, "a", ["a"])
        h.term(105, "n1", 1, "a", ["a"])
        h.op(200, 210, "n1", "enter", "b", "r2", 1, "a", ["a", "b"])
        h.term(205, "n1", 1, "a", ["a", "b"])
        h.term(300, "n1", 2, "b", ["b"])     # a vanished: no Leave, disconnect or fault
        r = self.assertCaught(h, "lost-enter")
        self.assertIn("'a'", str(r.violations[0]))

    def test_enter_gone_after_leave_disconnect_or_kill_passes(self):
        for excuse in ("leave", "disconnect", "kill"):
            h = H()
            h.op(100, 110, "n1", "enter", "a", "r1", 1, "a", ["a"])
            h.term(105, "n1", 1, "a", ["a"])
            h.op(200, 210, "n2", "enter", "b", "r2", 1, "a", ["a", "b"])
            h.term(205, "n1", 1, "a", ["a", "b"])
            if excuse == "leave":
                h.op(250, 260, "n1", "leave", "a", "r3", 2, "b", ["b"])
            elif excuse == "disconnect":
                h.add(250, type="client_event", event="disconnect", owner=":1.n1", node="n1")
            else:
                h.ev(250, "kill", node="n1")
            h.term(300, "n1" if excuse != "kill" else "n2", 2, "b", ["b"])
            h.term(301, "n3", 2, "b", ["b"])
            r = h.check()
            self.assertEqual(r.violations, [], "%s: %s" % (excuse, [str(v) for v in r.violations]))

    def test_evict_concurrent_with_enter_excuses(self):
        # 3-node soak, seed 360202690: an Evict invoked a moment before the Enter, still in flight,
        # applies after it (both acknowledged): the Enter's candidacy is gone, legitimately
        def hist(evict_inv, evict_ok):
            h = H()
            h.op(evict_inv, evict_ok, "n3", "evict", "a", "r0", 1, "", [])
            h.op(100, 106, "n1", "enter", "a", "r1", 1, "a", ["a"])
            h.term(105, "n1", 1, "a", ["a"])
            h.term(114, "n1", 1, "", [])
            h.term(300, "n1", 2, "b", ["b"])
            return h
        self.assertPasses(hist(99, 114))
        # one that had already returned before the Enter was invoked excuses nothing
        self.assertCaught(hist(50, 60), "lost-enter")
        # unless its outcome was unknown: it may commit long after (5-node soak, seed 775100249)
        h = H()
        h.add(50, type="invoke", op="leave", election="e", id="a", node="n1", req="r0", owner=":1.n1")
        h.add(60, type="fail", op="leave", election="e", id="a", node="n1", req="r0", owner=":1.n1",
              error="org.electiond.Election1.Error.OutcomeUnknown", message="The change was submitted")
        h.op(100, 106, "n1", "enter", "a", "r1", 1, "a", ["a"])
        h.term(105, "n1", 1, "a", ["a"])
        h.term(200, "n1", 1, "", [])
        self.assertPasses(h)

    def lost_enter_history(self, fault_ms, heal_ms, enter_ms):
        h = H()
        h.term_all(10, 1, "x", ["x"])
        if fault_ms is not None:
            h.ev(fault_ms, "loss", percent=20, nodes=["n1", "n2", "n3"])
            h.ev(heal_ms, "heal")
            h.ev(heal_ms + 1, "healed")
        h.op(enter_ms, enter_ms + 10, "n2", "enter", "a", "r1", 1, "x", ["x", "a"])
        h.term(enter_ms + 5, "n2", 1, "x", ["x", "a"])
        h.term(enter_ms + 100, "n2", 2, "x", ["x"])   # a dropped as if n2 was declared dead
        for n in ("n1", "n3"):
            h.term(enter_ms + 101, n, 2, "x", ["x"])
        return h

    def test_enter_lost_while_a_fault_is_ongoing_is_excused(self):
        # The loss began before the Enter was invoked and lasts past the disappearance.
        self.assertPasses(self.lost_enter_history(100, 5000, 1000))

    def test_enter_lost_just_after_heal_is_excused_by_grace(self):
        self.assertPasses(self.lost_enter_history(100, 1000, 1300))

    def test_enter_lost_long_after_heal_is_caught(self):
        self.assertCaught(self.lost_enter_history(100, 1000, 3000), "lost-enter")
        self.assertCaught(self.lost_enter_history(None, None, 3000), "lost-enter")

    def test_late_recorded_old_signal_is_not_a_loss(self):
        # A signal emitted before the Enter applied, recorded after the client's ok.
        h = H()
        h.term(50, "n1", 1, "x", ["x"])
        h.op(100, 110, "n1", "enter", "a", "r1", 1, "x", ["x", "a"])
        h.term(112, "n1", 1, "x", ["x"])
        h.term(113, "n1", 1, "x", ["x", "a"])
        self.assertPasses(h)

    def test_replayed_log_recorded_after_the_reply_is_not_a_loss(self):
        # Seen on a real run: a lagging node replays its log; the client's reply is stamped a
        # fraction of a millisecond before the recorder stamps the replayed older states.
        h = H()
        h.term(50, "n2", 10, "x", ["x", "b"])
        h.op(100, 120, "n2", "enter", "b", "r1", 11, "y", ["y", "b"])
        h.term(120.3, "n2", 10, "x", ["x"])
        h.term(120.4, "n2", 11, "y", ["y"])
        h.term(120.5, "n2", 11, "y", ["y", "b"])
        self.assertPasses(h)

    def test_same_term_loss_recorded_later_is_caught(self):
        # Leave of a non-leading candidate keeps the term id: caught once past the slack.
        h = H()
        h.op(100, 120, "n2", "enter", "b", "r1", 1, "x", ["x", "b"])
        h.term(119, "n2", 1, "x", ["x", "b"])
        h.term(2000, "n2", 1, "x", ["x"])
        self.assertCaught(h, "lost-enter")

    def test_acknowledged_enter_missing_from_final_state(self):
        h = H()
        h.op(100, 110, "n1", "enter", "a", "r1", 1, "a", ["a"])
        h.final(500, "n2", {"e": (1, "", [])})
        self.assertCaught(h, "missing-change")

    def test_acknowledged_leave_missing_from_final_state(self):
        h = H()
        h.op(100, 110, "n1", "enter", "a", "r1", 1, "a", ["a"])
        h.op(200, 210, "n1", "leave", "a", "r2", 1, "", [])
        h.final(500, "n3", {"e": (1, "a", ["a"])})
        r = self.assertCaught(h, "missing-change")
        self.assertIn("still a candidate", str(r.violations[0]))

    # (e)
    def test_no_convergence_after_heal(self):
        h = H()
        h.term_all(100, 1, "a", ["a"])
        h.ev(200, "partition", groups=[["n1"], ["n2", "n3"]])
        h.term(300, "n2", 2, "b", ["b"])
        h.term(301, "n3", 2, "b", ["b"])
        h.ev(400, "heal")
        h.ev(401, "healed")
        h.term(5000, "n1", 2, "b", ["b"])   # 4.6 s later: too late for a 1 s bound
        self.assertCaught(h, "no-convergence", convergence_bound=1.0)
        self.assertPasses(h, convergence_bound=10.0)

    def test_convergence_ignores_dead_and_stopped_nodes(self):
        h = H()
        h.term_all(100, 1, "a", ["a"])
        h.ev(200, "stop", node="n1")
        h.term(300, "n2", 2, "b", ["b"])
        h.term(301, "n3", 2, "b", ["b"])
        h.ev(400, "heal")
        h.ev(401, "healed")
        h.term(10000, "n2", 2, "b", ["b"])
        self.assertPasses(h, convergence_bound=1.0)

    def test_convergence_ignores_node_that_failed_to_start(self):
        h = H()
        h.term_all(100, 1, "a", ["a"])
        h.ev(200, "kill", node="n1")
        h.ev(300, "start", node="n1")
        h.ev(400, "start_failed", node="n1")
        h.term(500, "n2", 2, "b", ["b"])
        h.term(501, "n3", 2, "b", ["b"])
        h.ev(600, "healed")
        self.assertPasses(h, convergence_bound=1.0)

    def test_history_ending_before_agreement_is_caught(self):
        h = H()
        h.term(100, "n1", 1, "a", ["a"])
        h.ev(400, "healed")
        r = self.assertCaught(h, "no-convergence", convergence_bound=5.0)
        self.assertIn("history ends", str(r.violations[0]))

    # CLI
    def test_cli_exit_codes(self):
        with tempfile.TemporaryDirectory() as d:
            good, bad = os.path.join(d, "good.jsonl"), os.path.join(d, "bad.jsonl")
            with open(good, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in valid_history().recs)
            h = valid_history()
            h.term(1300, "n3", 3, "x", ["x"])
            with open(bad, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in h.recs)
            tool = os.path.join(HERE, "check_history.py")
            p = subprocess.run([sys.executable, tool, good, "--convergence-bound", "5", "--lease", "0.2"],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("OK", p.stdout)
            p = subprocess.run([sys.executable, tool, bad], capture_output=True, text=True)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("VIOLATION leader-conflict", p.stdout)
            p = subprocess.run([sys.executable, tool, os.path.join(d, "missing.jsonl")],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)

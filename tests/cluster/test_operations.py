#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Operations on a running cluster (issue 11): a planned stop (SIGTERM) of the leading node hands
its leads to the next candidate before the daemon leaves (STEP_DOWN), instead of leaving them
without an acting leader until NodeTimeout declares the node failed.

Every run's history goes through the checker (never two LocalLeader=true at once). Exits 77 when
not root or without ip netns."""

import os
import sys
import unittest

import dbus

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "checker"))
import cluster  # noqa: E402
import netns  # noqa: E402
from test_cluster import ClusterBase  # noqa: E402

PERSISTENT = 1


class PlannedStopTest(ClusterBase):
    def local_leader(self, node, election):
        try:
            return bool(node.election(election).Get(cluster.ELECTION_IFACE, "LocalLeader",
                                                    dbus_interface="org.freedesktop.DBus.Properties",
                                                    timeout=5))
        except Exception:
            return False

    def test_sigterm_hands_over_and_candidacy_returns(self):
        c = self.make(3)
        self.wait_formed(c)
        n1, n2, n3 = c.nodes
        t0 = c.client(n1).op("enter", "h", "A", flags=PERSISTENT)
        c.client(n2).op("enter", "h", "B", flags=PERSISTENT)
        c.client(n3).op("enter", "h", "C", flags=PERSISTENT)
        cluster.wait_until(lambda: self.local_leader(n1, "h"), 5, "A to lead locally on n1")
        term_a = n1.get_term("h")[0]
        self.assertEqual(t0[1], "A")

        n1.terminate()   # SIGTERM; returns once the daemon exited
        self.assertEqual(n1.daemon.popen.returncode, 0, n1.log_tail())
        self.assertIn("Planned stop: leads handed over", n1.log_tail(60))
        cluster.wait_until(lambda: self.local_leader(n2, "h"), 5, "B to lead locally on n2", 0.005)

        # The new term came from the hand-over, not from a DROP_NODE after NodeTimeout: it still
        # lists A, at the back (a drop would have taken A off the list).
        hist = c.history()
        handover = [r for r in hist if r.get("type") == "term" and r.get("node") == "n2"
                    and r.get("election") == "h" and r.get("term") == term_a + 1]
        self.assertTrue(handover, "n2 never reported term %d" % (term_a + 1))
        self.assertEqual(handover[0]["leader"], "B")
        self.assertEqual(handover[0]["candidates"], ["B", "C", "A"])

        # Later the cluster declares the stopped node failed: A is parked, nobody else's lead moves.
        self.wait_all([n2, n3], "h", lambda t: t[2] == ["B", "C"], "A to be parked", 10)
        self.assertEqual(n2.get_term("h")[:2], (term_a + 1, "B"))

        # Back again: A returns at the back; B keeps the lead.
        n1.start(wait=False)
        n1.wait_ready(20)
        self.wait_formed(c)
        self.wait_all(c.nodes, "h", lambda t: t == (term_a + 1, "B", ["B", "C", "A"]),
                      "A to come back at the back", 10)
        self.assertTrue(self.local_leader(n2, "h"))
        self.assertFalse(self.local_leader(n1, "h"))
        self.check_history(c)

    def test_sigterm_of_a_follower_candidate_moves_it_back(self):
        # n2 leads nothing but stands ahead of n3's candidacy: the planned stop moves it behind
        # (no term change), so a later failure of the leader hands the lead to a live node.
        c = self.make(3)
        self.wait_formed(c)
        n1, n2, n3 = c.nodes
        c.client(n1).op("enter", "f", "A", flags=PERSISTENT)
        c.client(n2).op("enter", "f", "B", flags=PERSISTENT)
        t = c.client(n3).op("enter", "f", "C", flags=PERSISTENT)
        n2.terminate()
        self.assertEqual(n2.daemon.popen.returncode, 0, n2.log_tail())
        self.wait_all([n1, n3], "f", lambda x: x[2][:2] == ["A", "C"], "B to move behind C", 5)
        moved = [r for r in c.history() if r.get("type") == "term" and r.get("node") == "n1"
                 and r.get("election") == "f" and r.get("candidates") == ["A", "C", "B"]]
        self.assertTrue(moved, "n1 never reported B behind C (only a drop after NodeTimeout?)")
        self.assertEqual(moved[0]["term"], t[0])
        self.assertEqual(n1.get_term("f")[:2], (t[0], "A"))
        self.assertTrue(self.local_leader(n1, "f"))
        self.check_history(c)


class DrainTest(ClusterBase):
    def local_leader(self, node, election):
        return PlannedStopTest.local_leader(self, node, election)

    def drained(self, node):
        return [str(x) for x in node.manager_prop("Drained")]

    def test_drain_keeps_candidate_out_of_the_lead(self):
        c = self.make(3)
        self.wait_formed(c)
        n1, n2, n3 = c.nodes
        a, b, cc = c.client(n1), c.client(n2), c.client(n3)
        t = a.op("enter", "h", "A", flags=PERSISTENT)
        b.op("enter", "h", "B", flags=PERSISTENT)
        cc.op("enter", "h", "C", flags=PERSISTENT)
        a.op("enter", "g", "A", flags=PERSISTENT)
        b.op("enter", "g", "B", flags=PERSISTENT)
        cluster.wait_until(lambda: self.local_leader(n1, "h") and self.local_leader(n1, "g"), 5,
                           "A to lead h and g on n1")
        self.assertEqual(self.drained(n1), [])

        # drain by name: only h moves
        n1.manager().Drain(["h"], dbus_interface=cluster.MANAGER_IFACE, timeout=10)
        self.assertEqual(self.drained(n1), ["h"])
        self.wait_all(c.nodes, "h", lambda x: x == (t[0] + 1, "B", ["B", "C", "A"]), "B to lead h", 5)
        cluster.wait_until(lambda: self.local_leader(n2, "h"), 5, "B to lead h locally on n2")
        self.assertFalse(self.local_leader(n1, "h"))
        self.assertTrue(self.local_leader(n1, "g"))

        # drain of every election; undrain of the name "h" does not lift it
        n1.manager().Drain(dbus.Array([], signature="s"), dbus_interface=cluster.MANAGER_IFACE, timeout=10)
        self.assertEqual(self.drained(n1), ["", "h"])
        self.wait_all(c.nodes, "g", lambda x: x[1:] == ("B", ["B", "A"]), "B to lead g", 5)
        n1.manager().Undrain(["h"], dbus_interface=cluster.MANAGER_IFACE, timeout=10)
        self.assertEqual(self.drained(n1), [""])

        # Anoint cannot bring a drained candidacy ahead of another node's
        r = b.op("anoint", "h", "A")
        self.assertEqual(r[1:], ("B", ["B", "C", "A"]))
        # it leads only while nobody else is a candidate
        b.op("leave", "h", "B")
        self.wait_all(c.nodes, "h", lambda x: x[1:] == ("C", ["C", "A"]), "C to lead h", 5)
        cc.op("leave", "h", "C")
        self.wait_all(c.nodes, "h", lambda x: x[1:] == ("A", ["A"]), "A (drained) to lead h alone", 5)
        cluster.wait_until(lambda: self.local_leader(n1, "h"), 5, "A to lead h locally")
        r = cc.op("enter", "h", "C", flags=PERSISTENT)
        self.assertEqual(r[1:], ("C", ["C", "A"]), "a new Enter of another node goes ahead of the drained one")
        cluster.wait_until(lambda: self.local_leader(n3, "h") and not self.local_leader(n1, "h"), 5,
                           "C to take h over from the drained A")

        # undrain: eligible again
        n1.manager().Undrain(dbus.Array([], signature="s"), dbus_interface=cluster.MANAGER_IFACE, timeout=10)
        self.assertEqual(self.drained(n1), [])
        r = b.op("anoint", "h", "A")
        self.assertEqual(r[1], "A")
        cluster.wait_until(lambda: self.local_leader(n1, "h"), 5, "A to lead h again")
        # the drain was replicated: another node sees nothing of it, and the history is safe
        self.assertEqual(self.drained(n2), [])
        self.check_history(c)


def main():
    why = netns.usable()
    if why:
        print("SKIP: cluster tests need root and ip netns: %s" % why)
        return 77
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    if len(sys.argv) > 1:
        suite = unittest.defaultTestLoader.loadTestsFromNames(sys.argv[1:], sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    if not res.wasSuccessful():
        return 1
    if res.testsRun and len(res.skipped) == res.testsRun:
        print("SKIP: every test skipped: %s" % res.skipped[0][1])
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())

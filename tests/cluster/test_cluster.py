#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Cluster tests of issue 4 §5 on the namespace harness: 3- and 5-node bootstrap, Enter on one
node seen on all, forwarding from followers, SIGKILL of the leader's node, minority partition,
heal and convergence; every run's history goes through the checker.

Tests skip only when the machine cannot run them (not root, or `ip netns` unusable: a real
capability check, never the daemon's log text); a daemon that does not form a cluster fails
them. Exits 77 when every test skipped, so meson counts the file as skipped, not passed."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "checker"))
import cluster  # noqa: E402
import netns  # noqa: E402
import check_history  # noqa: E402

FORM_TIMEOUT = 20      # seconds for a cluster to form
FAILOVER_TIMEOUT = 10  # seconds for a new leader after SIGKILL (target: < 1 s)
CONVERGE_BOUND = 10.0  # seconds after a heal


# Violation kinds of a known daemon bug, printed but not failed on by the functional tests
# (empty: none known; the hand-over overlap found at 59dcb02 is fixed).
KNOWN_BUG_KINDS = set()


class ClusterBase(unittest.TestCase):
    def make(self, n, start=None, **kw):
        """A started cluster (start: names of the nodes to start now, default all)."""
        why = netns.usable()
        if why:
            self.skipTest("cluster tests need root and ip netns: %s" % why)
        config = kw.pop("config", {})
        config.setdefault("Node", {}).setdefault("CommitTimeoutSec", "2")
        c = cluster.Cluster(n, config=config, **kw)
        self.addCleanup(c.close)
        c.start_buses()
        started = [x for x in c.nodes if start is None or x.name in start]
        for x in started:
            x.start(wait=False)
        for x in started:
            x.wait_ready()
        self.cluster = c
        return c

    def wait_formed(self, c, nodes=None, want=None):
        nodes = nodes or c.nodes
        want = want or len(nodes)

        def formed():
            for n in nodes:
                try:
                    members = n.manager_prop("Members")
                    if not bool(n.manager_prop("Quorate")):
                        return False
                except Exception:
                    return False
                if sum(1 for m in members if str(m[2]) == "alive") < want:
                    return False
            return True
        cluster.wait_until(formed, FORM_TIMEOUT, "%d nodes to form a quorate cluster" % want, 0.1)

    def check_history(self, c):
        c.write_final()
        res = check_history.check(c.history(), convergence_bound=CONVERGE_BOUND)
        known = [v for v in res.violations if v.kind in KNOWN_BUG_KINDS]
        for v in known:
            print("KNOWN BUG (see SafetyTest): %s" % v)
        bad = [v for v in res.violations if v.kind not in KNOWN_BUG_KINDS]
        self.assertEqual(bad, [], "\n".join(str(v) for v in bad))
        return res

    def wait_all(self, nodes, election, pred, what, timeout=10):
        def ok():
            try:
                return all(pred(n.get_term(election)) for n in nodes)
            except Exception:
                return False
        cluster.wait_until(ok, timeout, what, 0.02)


class ClusterTest(ClusterBase):
    # --- bootstrap ------------------------------------------------------------------------
    def test_bootstrap_3(self):
        c = self.make(3)
        self.wait_formed(c)
        for n in c.nodes:
            self.assertEqual(str(n.manager_prop("ClusterName")), c.cluster_name)
            roles = sorted(str(m[3]) for m in n.manager_prop("Members"))
            self.assertEqual(roles.count("leader"), 1, roles)
        self.check_history(c)

    def test_bootstrap_5(self):
        c = self.make(5)
        self.wait_formed(c)
        self.check_history(c)

    # --- replication and forwarding --------------------------------------------------------
    def test_enter_on_one_node_seen_on_all_and_forwarding(self):
        c = self.make(3)
        self.wait_formed(c)
        # Enter on every node: at most one of them is the Raft leader, so the others forward.
        clients = [c.client(n) for n in c.nodes]
        t = clients[0].op("enter", "web", "a")
        self.assertEqual(t[1:], ("a", ["a"]))
        self.wait_all(c.nodes, "web", lambda x: x == t, "every node to see a lead web")
        t2 = clients[1].op("enter", "web", "b")
        self.assertEqual(t2, (t[0], "a", ["a", "b"]))   # read-your-writes on the follower
        t3 = clients[2].op("enter", "web", "c")
        self.assertEqual(t3, (t[0], "a", ["a", "b", "c"]))
        self.wait_all(c.nodes, "web", lambda x: x == t3, "every node to see a, b, c")
        # A leave forwarded from a follower moves the term on everywhere.
        t4 = clients[0].op("leave", "web", "a")
        self.assertEqual(t4, (t[0] + 1, "b", ["b", "c"]))
        self.wait_all(c.nodes, "web", lambda x: x == t4, "every node to see b lead")
        cluster.wait_until(lambda: bool(c.node("n2").election("web").Get(
            cluster.ELECTION_IFACE, "LocalLeader", dbus_interface="org.freedesktop.DBus.Properties")),
            5, "n2 LocalLeader=true")
        self.check_history(c)

    # --- failover ---------------------------------------------------------------------------
    def test_kill_leaders_node_gives_new_leader_with_higher_term(self):
        c = self.make(3)
        self.wait_formed(c)
        n1, n2, n3 = c.nodes
        t = c.client(n1).op("enter", "db", "a")
        c.client(n2).op("enter", "db", "b")
        self.wait_all(c.nodes, "db", lambda x: x[1:] == ("a", ["a", "b"]), "a to lead on all")
        t_kill = time.monotonic()
        n1.kill()
        self.wait_all([n2, n3], "db", lambda x: x[1] == "b" and x[0] > t[0],
                      "b to lead with a higher term on the survivors", FAILOVER_TIMEOUT)
        failover = time.monotonic() - t_kill
        # The survivors saw it as a TermChanged signal, not just on reads.
        for n in (n2, n3):
            self.assertTrue([r for r in c.history() if r["type"] == "term" and r.get("node") == n.name
                             and r["election"] == "db" and r["leader"] == "b" and r["term"] > t[0]
                             and r["src"] == "signal"], n.name)
        print("failover after SIGKILL: %.3f s" % failover)
        self.check_history(c)

    # --- partitions -----------------------------------------------------------------------
    def test_minority_partition_loses_quorum_then_heals(self):
        c = self.make(3)
        self.wait_formed(c)
        n1, n2, n3 = c.nodes
        c.client(n1).op("enter", "q", "a", flags=1)   # persistent: survives n1's isolation
        self.wait_all(c.nodes, "q", lambda x: x[1] == "a", "a to lead on all")
        c.partition([[n1], [n2, n3]])
        cluster.wait_until(lambda: not bool(n1.manager_prop("Quorate")), 10, "n1 Quorate=false")
        self.assertFalse(bool(n1.election("q").Get(cluster.ELECTION_IFACE, "LocalLeader",
                                                   dbus_interface="org.freedesktop.DBus.Properties")))
        # The minority elects nobody and refuses changes in bounded time.
        import dbus
        start = time.monotonic()
        with self.assertRaises(dbus.DBusException) as cm:
            c.client(n1).op("enter", "q", "x", timeout=20)
        self.assertEqual(cm.exception.get_dbus_name(), "org.electiond.Election1.Error.NoQuorum")
        self.assertLess(time.monotonic() - start, 10)
        # The majority still serves.
        self.assertTrue(bool(n2.manager_prop("Quorate")))
        tb = c.client(n2).op("enter", "q2", "b")
        self.assertEqual(tb[1], "b")
        c.heal()
        cluster.wait_until(lambda: bool(n1.manager_prop("Quorate")), 10, "n1 quorate again")
        c.wait_converged(CONVERGE_BOUND)
        self.check_history(c)


class ClusterEdgeTest(ClusterBase):
    """Joining late, whole-cluster restart, intruders and garbage."""

    def members(self, node):
        return {str(m[0]): str(m[2]) for m in node.manager_prop("Members")}

    def test_late_join(self):
        c = self.make(3, start=["n1", "n2"], bootstrap_expect=2)
        n1, n2, n3 = c.nodes
        self.wait_formed(c, [n1, n2])
        c.client(n1).op("enter", "late", "a", flags=1)
        n3.start()
        self.wait_formed(c)
        self.wait_all(c.nodes, "late", lambda x: x[1:] == ("a", ["a"]), "n3 to catch up")
        t = c.client(n3).op("enter", "late", "c")      # forwarded by the newcomer
        self.assertEqual(t[1:], ("a", ["a", "c"]))
        self.wait_all(c.nodes, "late", lambda x: x == t, "every node to see c")
        self.check_history(c)

    def test_whole_cluster_restart_keeps_term_ids_increasing(self):
        c = self.make(3)
        self.wait_formed(c)
        cl = c.client("n1")
        cl.op("enter", "r", "a", flags=1)
        t = cl.op("enter", "r", "b", flags=1)
        cl.close()
        self.wait_all(c.nodes, "r", lambda x: x == t, "every node to see a, b")
        for n in c.nodes:
            n.kill()
        for n in c.nodes:
            n.start(wait=False)
        for n in c.nodes:
            n.wait_ready()
        self.wait_formed(c)
        # Persistent candidacies survive; the term id only moves forward.
        self.wait_all(c.nodes, "r", lambda x: x == t, "the state back after the restart", 20)
        t2 = c.client("n2").op("anoint", "r", "b")
        self.assertEqual(t2[:2], (t[0] + 1, "b"))
        self.check_history(c)

    def test_wrong_key_or_other_cluster_never_joins(self):
        bad_key = os.path.join(self._tmp(), "bad.key")
        with open(bad_key, "w") as f:
            f.write("0" * 64)
        c = self.make(4, start=["n1", "n2"], bootstrap_expect=2,
                      node_config={"n3": {"Cluster": {"KeyFile": bad_key}},
                                   "n4": {"Cluster": {"Name": "other"}}})
        n1, n2, n3, n4 = c.nodes
        self.wait_formed(c, [n1, n2])
        # count the intruders' gossip as it reaches n1 and n2
        for n in (n1, n2):
            for x in (n3, n4):
                n.count_packets("from-" + x.name, 'iifname "veth0" ip saddr %s udp dport %d' % (x.addr, c.port))
        # The intruders cannot join (nor, alone, bootstrap); they serve their bus but are never
        # quorate: start them without waiting for quorum.
        n3.start(wait=False)
        n4.start(wait=False)

        # Until several of each intruder's packets reached both members (discovery is once a
        # second, plus unicast to Peers=), they never appear and never crash.
        def intruders_heard():
            for n in (n1, n2):
                m = self.members(n)
                self.assertNotIn("n3", m)
                self.assertNotIn("n4", m)
            for n in (n3, n4):
                self.assertTrue(n.alive(), "%s died:\n%s" % (n.name, n.log_tail()))
            return all(n.packets("from-" + x.name) >= 5 for n in (n1, n2) for x in (n3, n4))
        cluster.wait_until(intruders_heard, 20, "the intruders' packets to reach both members", 0.1)
        for n in (n1, n2):
            m = self.members(n)
            self.assertNotIn("n3", m)
            self.assertNotIn("n4", m)
        for n in (n3, n4):
            self.assertFalse(n.quorate())
        self.assertTrue(bool(n1.manager_prop("Quorate")))
        self.check_history(c)

    def test_garbage_packets_are_dropped(self):
        import random
        c = self.make(3)
        self.wait_formed(c)
        rng = random.Random(4)
        payloads = [b"", b"\x00", b"electiond", bytes(1500)] + \
                   [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600))) for _ in range(60)]
        for n in c.nodes[1:]:
            for port in (c.port, c.port + 1):   # gossip, and the cluster channel on Port+1
                c.send_udp("n1", n.addr, port, payloads)
        for n in c.nodes:
            self.assertTrue(n.alive(), "%s died on garbage:\n%s" % (n.name, n.log_tail()))
        t = c.client("n2").op("enter", "g", "a")
        self.wait_all(c.nodes, "g", lambda x: x == t, "the cluster to still replicate")
        self.check_history(c)

    def _tmp(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="edh%d-0-" % os.getpid())
        self.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
        return d


class SafetyTest(ClusterBase):
    """Safety properties checked by direct reads (evaluated by the daemons at the moment of use)."""

    def local_leader(self, obj):
        return bool(obj.Get(cluster.ELECTION_IFACE, "LocalLeader",
                            dbus_interface="org.freedesktop.DBus.Properties", timeout=5))

    def test_graceful_anoint_never_two_local_leaders(self):
        # Anoint moves the lead between candidates of two nodes. Right after the call returns,
        # read the new leader's node, the old one's, then the new one's again: if all three say
        # true, both held LocalLeader at the instant of the middle read (hand-over, rule 4).
        c = self.make(3)
        self.wait_formed(c)
        n1, n2, _ = c.nodes
        a, b = c.client(n1), c.client(n2)
        a.op("enter", "h", "A")
        b.op("enter", "h", "B")
        e1, e2 = n1.election("h"), n2.election("h")
        cluster.wait_until(lambda: self.local_leader(e1), 5, "A to lead locally on n1")
        both = []
        for i in range(40):
            new, old, cl, cid = (e2, e1, b, "B") if i % 2 == 0 else (e1, e2, a, "A")
            t = cl.op("anoint", "h", cid)
            if self.local_leader(new) and self.local_leader(old) and self.local_leader(new):
                both.append(t[0])
            cluster.wait_until(lambda: self.local_leader(new) and not self.local_leader(old), 5,
                               "the hand-over to complete")
        self.assertEqual(both, [], "both nodes reported LocalLeader=true right after Anoint in terms %s"
                         % both)
        self.check_history(c)

    # Found failing at 59dcb02 (the new leader claimed 2 ms after the old leader's node was
    # paused); passes since 6e3cc4f.
    def test_new_leader_waits_out_a_paused_old_leaders_lease(self):
        """The node that gains the lead from a paused node must not claim LocalLeader inside the
        paused node's possible lease (SIGSTOP + Lease(1+rho))."""
        lease, rho = 0.2, 0.01
        c = self.make(3, config={"Cluster": {"ProbeIntervalSec": "0.05", "LeaseSec": str(lease),
                                             "NodeTimeoutSec": "0.35"}})
        self.wait_formed(c)
        # n1 := the Raft leader (the Anoint commits at once), n2 := another node, the old leader's
        # node, which we pause. (Pausing the Raft leader would delay the commit past the lease.)
        raft_leader = [str(m[0]) for m in c.nodes[0].manager_prop("Members") if str(m[3]) == "leader"]
        self.assertEqual(len(raft_leader), 1)
        n1 = c.node(raft_leader[0])
        n2 = [n for n in c.nodes if n is not n1][0]
        a, b = c.client(n1), c.client(n2)
        b.op("enter", "h", "B", flags=1)
        a.op("enter", "h", "A", flags=1)
        e1, e2 = n1.election("h"), n2.election("h")
        cluster.wait_until(lambda: self.local_leader(e2), 5, "B to lead locally on its node")
        t_stop = time.monotonic()
        n2.stop()
        t = a.op("anoint", "h", "A")          # n1 + n3 are a majority: this commits
        self.assertEqual(t[1], "A")
        cluster.wait_until(lambda: self.local_leader(e1), 5, "n1 to take over", 0.002)
        waited = time.monotonic() - t_stop
        n2.cont()
        self.assertGreaterEqual(waited, lease * (1 + rho),
                                "n1 claimed LocalLeader %.0f ms after n2 (the old leader's node) was "
                                "paused, inside n2's possible lease" % (waited * 1000))
        cluster.wait_until(lambda: not self.local_leader(e2), 5, "n2 to step down on resume")

    def test_killed_node_restarts_and_rejoins(self):
        c = self.make(3)
        self.wait_formed(c)
        n1, n2, n3 = c.nodes
        c.client(n1).op("enter", "rj", "a")
        tb = c.client(n2).op("enter", "rj", "b")
        n1.kill()
        self.wait_all([n2, n3], "rj", lambda x: x[1] == "b" and x[0] > tb[0], "b to lead after the kill",
                      FAILOVER_TIMEOUT)
        n1.start(wait=False)
        n1.wait_ready(20)   # raises with the log if electiond dies or hangs on the way back
        self.wait_formed(c)
        c.wait_converged(CONVERGE_BOUND)
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
    for test, _tb in res.expectedFailures:
        print("KNOWN BUG still present: %s" % test.id())
    if not res.wasSuccessful():
        return 1
    if res.testsRun and len(res.skipped) == res.testsRun:
        print("SKIP: every test skipped: %s" % res.skipped[0][1])
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Self-tests of the cluster harness: namespaces, reachability, fault injection, standalone daemons
with private buses and recorders, and a teardown that leaves nothing behind.

    test_harness.py NetTest      network only (plain UDP sockets)
    test_harness.py DaemonTest   standalone electiond + private bus + recorder per node

Needs root and working `ip netns`; otherwise exits 77 (skipped)."""

import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "checker"))
import cluster  # noqa: E402
import netns  # noqa: E402


def root_links():
    return sorted(l.split(":")[1].strip().split("@")[0]
                  for l in netns.run([netns.IP, "-o", "link", "show"]).splitlines())


def root_has_test_addr():
    return "198.18." in netns.run([netns.IP, "-o", "addr", "show"])


def ns_inode(path):
    return os.stat(path).st_ino


def assert_gone(tc, c, pids, names, d):
    present = set(netns.list_netns())
    tc.assertFalse(present & set(names), "namespaces left: %s" % (present & set(names)))
    tc.assertEqual([p for p in pids if netns.pid_alive(p) and not _zombie(p)], [], "processes left")
    tc.assertFalse(os.path.exists(d), "temp dir left: %s" % d)


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _zombie(pid):
    return proc_state(pid) in (None, "Z")


class NetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.links_before = root_links()
        cls.c = cluster.Cluster(3, clustered=False, record=False)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def tearDown(self):
        self.c.heal()

    def count(self, a, b, n=20):
        return self.c.udp_count(a, b, count=n, window=0.4)

    def test_00_namespaces_up_and_root_untouched(self):
        names = set(netns.list_netns())
        for ns in [self.c.prefix + "-sw"] + [n.ns for n in self.c.nodes]:
            self.assertIn(ns, names)
        # Nothing of ours in the root namespace: no new link, no address of our range.
        self.assertEqual(root_links(), self.links_before)
        self.assertFalse(root_has_test_addr())
        for n in self.c.nodes:
            addrs = netns.run([netns.IP, "-n", n.ns, "-o", "addr", "show"])
            self.assertIn("inet %s/24" % n.addr, addrs)
            self.assertTrue(n.addr.startswith("198.18."))
            self.assertNotIn("inet6", addrs)
            self.assertIn("lo", netns.run([netns.IP, "-n", n.ns, "-o", "link", "show", "up"]))
            # Our only nft table there is our own named one.
            tables = netns.ns_run(n.ns, [netns.NFT, "list", "tables"]).split()
            self.assertEqual(tables, ["table", "inet", netns.NFT_TABLE])

    def test_01_udp_reaches_all(self):
        self.assertEqual(self.count("n1", "n2"), 20)
        self.assertEqual(self.count("n1", "n3"), 20)
        self.assertEqual(self.count("n3", "n1"), 20)

    def test_01b_multicast_reaches_all(self):
        # The daemon discovers peers by multicast on veth0 (gossip group 239.255.46.80).
        g = "239.255.46.80"
        self.assertEqual(self.c.udp_count("n1", "n2", window=0.4, group=g, port=40001), 20)
        self.assertEqual(self.c.udp_count("n1", "n3", window=0.4, group=g, port=40001), 20)
        self.c.partition([["n1"], ["n2", "n3"]])
        self.assertEqual(self.c.udp_count("n1", "n2", window=0.4, group=g, port=40001), 0)

    def test_01c_send_udp(self):
        probe = os.path.join(HERE, "udpprobe.py")
        r = subprocess.Popen(netns.ns_argv(self.c.node("n2").ns,
                                           [cluster.PY, probe, "recv", "198.18.0.2", "40002", "0.5"]),
                             stdout=subprocess.PIPE, text=True)
        self.assertEqual(r.stdout.readline().strip(), "ready")
        self.c.send_udp("n1", "198.18.0.2", 40002, b"\x00garbage\xff")
        out, _ = r.communicate(timeout=10)
        self.assertEqual(out.strip(), "1")

    def test_02_two_way_partition_and_heal(self):
        self.c.partition([["n1"], ["n2", "n3"]])
        self.assertEqual(self.count("n1", "n2"), 0)
        self.assertEqual(self.count("n2", "n1"), 0)
        self.assertEqual(self.count("n3", "n1"), 0)
        self.assertEqual(self.count("n2", "n3"), 20)
        self.c.heal()
        self.assertEqual(self.count("n1", "n2"), 20)
        self.assertEqual(self.count("n2", "n1"), 20)

    def test_03_one_way_partition(self):
        self.c.partition_oneway(["n2"], ["n1"])
        self.assertEqual(self.count("n1", "n2"), 0)
        self.assertEqual(self.count("n2", "n1"), 20)
        self.assertEqual(self.count("n3", "n2"), 20)

    def test_03b_reconnect_heals_one_pair_only(self):
        self.c.partition([["n1"], ["n2", "n3"]])
        self.c.reconnect(["n1"], ["n2"])
        self.assertEqual(self.count("n1", "n2"), 20)
        self.assertEqual(self.count("n2", "n1"), 20)
        self.assertEqual(self.count("n1", "n3"), 0)
        self.assertEqual(self.count("n3", "n1"), 0)
        self.assertEqual(self.count("n2", "n3"), 20)

    def test_04_link_down(self):
        self.c.node("n2").link_down()
        self.assertEqual(self.count("n1", "n2"), 0)
        self.assertEqual(self.count("n2", "n3"), 0)
        self.assertEqual(self.count("n1", "n3"), 20)
        self.c.node("n2").link_up()
        self.assertEqual(self.count("n1", "n2"), 20)

    def test_05_bridge_down(self):
        self.c.bridge_down()
        self.assertEqual(self.count("n1", "n3"), 0)
        self.c.bridge_up()
        self.assertEqual(self.count("n1", "n3"), 20)

    def test_06_random_loss(self):
        self.c.loss(20)
        got = self.c.udp_count("n1", "n2", count=500, window=0.4)
        # 20% of 500 lost once per path: expect ~400 (sd ~9); wide bounds against flakiness.
        self.assertGreaterEqual(got, 300)
        self.assertLessEqual(got, 470)
        self.c.loss(20, nodes=["n3"])   # only paths touching n3 lose now
        self.assertEqual(self.count("n1", "n2", 100), 100)

    def test_07_history_records_faults(self):
        events = [r["event"] for r in self.c.history() if r["type"] == "node_event"]
        for ev in ("cluster", "partition", "partition_oneway", "link_down", "loss", "heal", "healed"):
            self.assertIn(ev, events)


class TeardownTest(unittest.TestCase):
    def test_teardown_leaves_nothing(self):
        c = cluster.Cluster(2, clustered=False, record=False)
        names = [c.prefix + "-sw"] + [n.ns for n in c.nodes]
        d = c.dir
        # A stray process inside a node namespace is ours too and must go with it.
        stray = subprocess.Popen(netns.ns_argv(c.nodes[0].ns, ["sleep", "300"]))
        c.close()
        stray.wait(5)
        assert_gone(self, c, [stray.pid], names, d)

    def test_stale_leftovers_of_dead_runs_are_removed(self):
        p = subprocess.Popen(["true"])
        p.wait()
        dead = p.pid
        stale = "edh%d-1-sw" % dead
        netns.run([netns.IP, "netns", "add", stale])
        try:
            with cluster.Cluster(1, clustered=False, record=False):
                self.assertNotIn(stale, netns.list_netns())
        finally:
            netns.run([netns.IP, "netns", "del", stale], check=False)


class DaemonTest(unittest.TestCase):
    def test_clustered_config_is_accepted(self):
        # The config the harness writes (and timing keys a scenario sets) must parse: a bad key
        # or value makes electiond exit at start, which wait_ready reports with its log.
        with cluster.Cluster(2, config={"Cluster": {"ProbeIntervalSec": "0.05", "LeaseSec": "0.2",
                                                    "NodeTimeoutSec": "0.35"},
                                        "Node": {"CommitTimeoutSec": "2"}}, record=False) as c:
            c.start()
            with open(c.node("n1").config_path) as f:
                conf = f.read()
            for line in ("Name=n1", "KeyFile=" + c.key_file, "Interfaces=veth0", "Port=7946",
                         "Peers=198.18.0.2", "BootstrapExpect=2", "LeaseSec=0.2"):
                self.assertIn(line + "\n", conf)
            for n in c.nodes:
                self.assertTrue(n.alive())
                self.assertNotIn("Failed", n.log_tail())

    def test_standalone_daemons_with_private_buses(self):
        c = cluster.Cluster(3, clustered=False)
        names = [c.prefix + "-sw"] + [n.ns for n in c.nodes]
        d = c.dir
        try:
            c.start()
            for n in c.nodes:
                # The daemon runs inside the node's namespace and serves its own bus.
                self.assertEqual(ns_inode("/proc/%d/ns/net" % n.daemon.pid),
                                 ns_inode("/run/netns/" + n.ns))
                self.assertEqual(str(n.manager_prop("NodeName")), n.name)
                self.assertEqual(n.get_term("harness-" + n.name), (0, "", []))
            # Buses are private: an Enter on n2 is not seen on n1 (standalone nodes).
            cl = c.client("n2")
            self.assertEqual(cl.op("enter", "only-n2", "a"), (1, "a", ["a"]))
            self.assertEqual(c.node("n1").get_term("only-n2"), (0, "", []))

            def recorded(pred):
                return [r for r in c.history() if pred(r)]
            cluster.wait_until(lambda: recorded(lambda r: r["type"] == "term" and r["node"] == "n2"
                                                and r["election"] == "only-n2" and r["term"] == 1),
                               5, "n2's recorder to log term 1")
            cluster.wait_until(lambda: recorded(lambda r: r["type"] == "local_leader" and r["node"] == "n2"
                                                and r["value"] is True),
                               5, "n2's recorder to log LocalLeader=true")
            self.assertFalse(recorded(lambda r: r["type"] == "term" and r.get("node") != "n2"))

            # Process control: SIGSTOP/SIGCONT (then a probe), SIGKILL and restart.
            n3 = c.node("n3")
            n3.stop()
            cluster.wait_until(lambda: proc_state(n3.daemon.pid) == "T", 5, "n3 to be stopped")
            n3.cont()
            cluster.wait_until(lambda: recorded(lambda r: r.get("node") == "n3" and r.get("src") == "probe"),
                               5, "n3's probe records")
            n2 = c.node("n2")
            old = n2.daemon.pid
            n2.kill()
            self.assertFalse(netns.pid_alive(old) and not _zombie(old))
            n2.start()
            self.assertEqual(n2.starts, 2)
            # Connection-bound candidacy of the old run is gone; term id never goes back.
            cluster.wait_until(lambda: n2.get_term("only-n2") == (1, "", []), 5, "old run's candidacy dropped")
            cluster.wait_until(lambda: len(recorded(lambda r: r["type"] == "owner" and r.get("node") == "n2")) >= 3,
                               5, "n2 owner vanish and reappear")
            c.write_final()
            hist = os.path.join(d, "history.jsonl")
            c.save_history(hist)
            import check_history
            res = check_history.check(check_history.load(hist))
            self.assertEqual(res.violations, [], [str(v) for v in res.violations])
            self.assertGreaterEqual(res.summary["claims"], 1)
            with open(hist) as f:
                for line in f:
                    json.loads(line)
            pids = c.pids()
            self.assertGreaterEqual(len(pids), 10)   # 3 buses, 3 recorders, 4 daemons
        finally:
            c.close()
        assert_gone(self, c, pids, names, d)


if __name__ == "__main__":
    why = netns.usable()
    if why:
        print("SKIP: cluster harness needs root and ip netns: %s" % why)
        sys.exit(77)
    unittest.main(verbosity=2)

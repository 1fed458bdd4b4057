#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 11 §7: disaster recovery.

- force_new_cluster: a 3-node cluster with elections; --force-new-cluster is refused while the
  others are alive; the majority goes on without the survivor (changes a lead, creates an
  election) and then dies for good; the survivor restarted with --force-new-cluster is a
  one-voter cluster with its elections, every term id moved up by 2^20 and above the ids the lost
  majority handed out, also in the election it never heard of; Enter works; a new node (wiped state) joins it; a lost member
  that comes back with its old state is foreign and never merges.
- backup_restore: an offline copy of a stopped node's state directory, restored on another node
  with --restore after the cluster is gone, takes a new node id (never a twin of the original),
  keeps the elections with term ids above every id the cluster handed out after the backup, and
  serves."""

import os
import re
import shutil
import signal
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
import netns  # noqa: E402
from cluster import wait_until  # noqa: E402

OFFSET = 1 << 20
PROPS = "org.freedesktop.DBus.Properties"


def roles(node):
    try:
        return {str(m[0]): (str(m[2]), str(m[3])) for m in node.manager_prop("Members")}
    except Exception:
        return {}


def voters(node):
    return sorted(n for n, (state, role) in roles(node).items() if role in ("voter", "leader"))


def quorate(node):
    try:
        return bool(node.manager_prop("Quorate"))
    except Exception:
        return False


def node_id(node):
    with open(os.path.join(node.state_dir, "node-id")) as f:
        return f.read().strip()


def start_with(node, args, wait=True):
    saved = node.cluster.extra_args
    node.cluster.extra_args = list(args)
    try:
        node.start(wait=wait)
    finally:
        node.cluster.extra_args = saved


def wipe(node):
    shutil.rmtree(node.state_dir)
    os.makedirs(node.state_dir)


class RecoveryTest(unittest.TestCase):
    def setUp(self):
        why = netns.usable()
        if why:
            self.skipTest(why)

    def make(self):
        c = cluster.Cluster(3, config={"Node": {"CommitTimeoutSec": "2"}}, record=False)
        self.addCleanup(c.close)
        c.start()
        wait_until(lambda: all(voters(x) == ["n1", "n2", "n3"] and quorate(x) for x in c.nodes), 30,
                   "a quorate 3-voter cluster")
        return c

    def test_force_new_cluster(self):
        c = self.make()
        n1, n2, n3 = c.nodes
        c.client(n1).op("enter", "web", "a", flags=1)
        c.client(n2).op("enter", "web", "b", flags=1)
        c.client(n2).op("enter", "db", "b", flags=1)
        c.client(n3).op("anoint", "web", "b")
        for x in c.nodes:
            wait_until(lambda: x.get_term("web")[1] == "b" and x.get_term("db")[1] == "b", 10,
                       "%s to apply everything" % x.name)
        before = {e: n1.get_term(e)[0] for e in ("web", "db")}

        # refused while the old cluster is alive
        n1.terminate()
        start_with(n1, ["--force-new-cluster"], wait=False)
        wait_until(lambda: not n1.alive(), 20, "n1 to refuse forcing a new cluster")
        self.assertEqual(n1.daemon.popen.returncode, 1)
        self.assertIn("Refusing to force a new cluster", n1.log_tail(1 << 20))
        n1.start()
        wait_until(lambda: quorate(n1) and voters(n1) == ["n1", "n2", "n3"], 20, "n1 back in its cluster")
        old_id = node_id(n1)

        # n1 cut off: the majority goes on without it, changes web's lead and creates an election
        # n1 never hears of; then the majority is lost for good
        c.partition([[n1], [n2, n3]])
        wait_until(lambda: not quorate(n1), 10, "n1 to lose its quorum")
        wait_until(lambda: quorate(n2), 10, "the majority to stay quorate")
        for _ in range(3):
            c.client(n2).op("anoint", "web", "a")
            c.client(n2).op("anoint", "web", "b")
        lost = c.client(n2).op("enter", "lost", "l")
        c.client(n3).op("anoint", "lost", "l")
        majority_web = n2.get_term("web")[0]
        self.assertGreater(majority_web, before["web"])
        n2.kill()
        n3.kill()
        c.heal()
        self.assertEqual(n1.get_term("lost")[0], 0)
        n1.kill()

        start_with(n1, ["--force-new-cluster"])
        self.assertIn("FORCED A NEW CLUSTER", n1.log_tail(1 << 20))
        wait_until(lambda: quorate(n1) and voters(n1) == ["n1"], 10, "n1 the only voter, quorate")
        self.assertEqual(node_id(n1), old_id)   # a survivor keeps its identity
        wait_until(lambda: not os.path.exists(os.path.join(n1.state_dir, "force-new-cluster-bump")), 10,
                   "the bump to be applied")
        for e in ("web", "db"):
            t = n1.get_term(e)
            self.assertGreaterEqual(t[0], before[e] + OFFSET, (e, t, before))
        self.assertGreater(n1.get_term("web")[0], majority_web)
        # the election created by the lost majority starts above every id it may have handed out
        t = c.client(n1).op("enter", "lost", "again")
        self.assertGreater(t[0], lost[0])
        self.assertEqual(t[0], OFFSET + 1)
        # n2's candidacies are parked as those of a failed node; n1's 'a' leads web now
        wait_until(lambda: n1.get_term("web")[1] == "a", 10, "a to lead web on the survivor")
        t = c.client(n1).op("enter", "new", "x")
        self.assertEqual(t[1], "x")
        t = c.client(n1).op("enter", "db", "a2")
        self.assertGreater(t[0], before["db"] + OFFSET - 1)
        wait_until(lambda: bool(n1.election("web").Get(cluster.ELECTION_IFACE, "LocalLeader",
                                                        dbus_interface=PROPS)), 10, "n1 LocalLeader of web")

        # a lost member that comes back with its old state is foreign: never merged, never quorate
        n3.start(wait=False)
        wait_until(lambda: roles(n1).get("n3", ("", ""))[0] == "foreign", 20, "n3 to be foreign to n1")
        self.assertFalse(quorate(n3))
        self.assertEqual(voters(n1), ["n1"])
        n3.kill()

        # a new node (wiped state) joins the forced cluster and gets its elections
        wipe(n2)
        n2.start(wait=False)
        n2.wait_ready(30)
        wait_until(lambda: voters(n1) == ["n1", "n2"], 20, "n2 to join as a voter")
        self.assertEqual(n2.get_term("web"), n1.get_term("web"))
        t = c.client(n2).op("enter", "joined", "j")
        wait_until(lambda: n1.get_term("joined") == (t[0], t[1], t[2]), 10, "n2's Enter on n1")

        # a later normal restart does not bump again
        terms = n1.get_term("web")[0]
        n1.terminate()
        n1.start()
        wait_until(lambda: quorate(n1), 20, "n1 quorate after a normal restart")
        self.assertLess(n1.get_term("web")[0], terms + OFFSET)

    def test_backup_restore(self):
        c = self.make()
        n1, n2, n3 = c.nodes
        c.client(n1).op("enter", "web", "a", flags=1)
        c.client(n2).op("enter", "web", "b", flags=1)
        for x in c.nodes:
            wait_until(lambda: x.get_term("web")[2] == ["a", "b"], 10, "%s to apply both" % x.name)

        # backup: stop n1 (the others keep serving), copy its state directory, start it again
        n1.terminate()
        backup = os.path.join(c.dir, "backup")
        shutil.copytree(n1.state_dir, backup, symlinks=True)
        n1.start()
        wait_until(lambda: quorate(n1), 20, "n1 back")
        original_id = node_id(n1)

        # the cluster goes on handing out term ids after the backup
        for _ in range(3):
            c.client(n2).op("anoint", "web", "b")
            c.client(n1).op("anoint", "web", "a")
        wait_until(lambda: n3.get_term("web")[1] == "a", 10, "n3 to apply the anoints")
        highest = max(x.get_term("web")[0] for x in c.nodes)

        # a restore is refused while the cluster it came from is alive
        n3.terminate()
        wipe(n3)
        shutil.copytree(backup, n3.state_dir, symlinks=True, dirs_exist_ok=True)
        start_with(n3, ["--restore"], wait=False)
        wait_until(lambda: not n3.alive(), 20, "the restore to be refused")
        self.assertEqual(n3.daemon.popen.returncode, 1)
        self.assertIn("Refusing to force a new cluster", n3.log_tail(1 << 20))

        # the whole cluster is lost; the backup is restored on n3
        n1.kill()
        n2.kill()
        wipe(n3)
        shutil.copytree(backup, n3.state_dir, symlinks=True, dirs_exist_ok=True)
        start_with(n3, ["--restore"])
        self.assertIn("FORCED A NEW CLUSTER", n3.log_tail(1 << 20))
        self.assertNotEqual(node_id(n3), original_id)     # never a twin of n1
        wait_until(lambda: quorate(n3) and voters(n3) == ["n3"], 10, "n3 the only voter, quorate")
        wait_until(lambda: n3.get_term("web")[0] > highest, 10, "term ids above every id handed out")
        self.assertEqual(sorted(n3.get_term("web")[2]), [])   # a and b belong to lost nodes: parked
        t = c.client(n3).op("enter", "web", "c")
        self.assertEqual(t[1], "c")
        self.assertGreater(t[0], highest)

        # the original n1 back with its own state: a foreign cluster, not a twin, never merged
        n1.start(wait=False)
        wait_until(lambda: roles(n3).get("n1", ("", ""))[0] == "foreign", 20, "n1 to be foreign to n3")
        self.assertNotIn("Duplicate identity", n1.log_tail(1 << 20) + n3.log_tail(1 << 20))
        self.assertEqual(voters(n3), ["n3"])


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 14 §1 in a cluster: an election nobody stands in is removed by the Raft leader's FORGET
(RemoveEmptyElectionsSec=0.3 here) on every node at once — gone from ListElections and the object
manager of each — and, entered again on another node, continues above every term id it had.
An election with a persistent candidacy stays. Exits 77 when not root or without ip netns."""

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


class CollectTest(ClusterBase):
    def enter(self, node, name, id_, flags=0):
        t = node.election(name).Enter(id_, dbus.UInt64(flags), dbus_interface=cluster.ELECTION_IFACE, timeout=10)
        return (int(t[0]), str(t[1]), [str(x) for x in t[2]])

    def leave(self, node, name, id_):
        t = node.election(name).Leave(id_, dbus_interface=cluster.ELECTION_IFACE, timeout=10)
        return (int(t[0]), str(t[1]), [str(x) for x in t[2]])

    def managed_paths(self, node):
        objs = node.manager().GetManagedObjects(dbus_interface="org.freedesktop.DBus.ObjectManager", timeout=5)
        return {str(p) for p in objs}

    def test_empty_election_removed_everywhere_and_comes_back_higher(self):
        # history recording off: its model keeps elections forever (a removed one reads term 0)
        c = self.make(3, config={"Node": {"RemoveEmptyElectionsSec": "0.3"}}, record=False)
        self.wait_formed(c)
        n1, n2, n3 = c.nodes
        self.enter(n3, "keep", "K", flags=1)
        for i in range(3):
            self.enter(n2, "gone", "g%d" % i)
            self.leave(n2, "gone", "g%d" % i)
        last = n2.get_term("gone")
        self.assertEqual(last[1:], ("", []))
        path = str(n1.manager().GetElection("gone", dbus_interface=cluster.MANAGER_IFACE, timeout=5))

        def removed_everywhere():
            try:
                return all("gone" not in n.snapshot() and path not in self.managed_paths(n) for n in c.nodes)
            except Exception:
                return False
        cluster.wait_until(removed_everywhere, 15, "'gone' to be removed on every node", 0.05)
        for n in c.nodes:
            self.assertIn("keep", n.snapshot())
            self.assertEqual(n.get_term("gone"), (0, "", []))
        for n in c.nodes:
            self.assertIn("Election 'gone' was empty and is removed", n.log_tail(2000))

        t = self.enter(n1, "gone", "again")
        self.assertGreater(t[0], last[0])
        self.wait_all(c.nodes, "gone", lambda x: x == t, "the new term everywhere", 10)
        for n in c.nodes:
            self.assertIn(path, self.managed_paths(n))
        self.leave(n1, "gone", "again")


def main():
    res = unittest.main(verbosity=2, exit=False).result
    if res.failures or res.errors:
        return 1
    if res.testsRun and len(res.skipped) == res.testsRun:
        print("SKIP: every test skipped: %s" % res.skipped[0][1])
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())

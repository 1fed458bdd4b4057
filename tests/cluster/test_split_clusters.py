#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Two clusters of the same name and key, bootstrapped apart (a partition at start), then joined
by healing the partition: they must never merge, each must log it and show the other's nodes as
"foreign" in its status (Members), and their elections stay apart."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
import netns  # noqa: E402
from cluster import wait_until  # noqa: E402




def members(node):
    try:
        return {str(m[0]): (str(m[2]), str(m[3])) for m in node.manager_prop("Members")}
    except Exception:
        return {}


class SplitClusters(unittest.TestCase):
    def test_same_name_clusters_never_merge(self):
        why = netns.usable()
        if why:
            self.skipTest(why)
        c = cluster.Cluster(4, bootstrap_expect=2, config={"Node": {"CommitTimeoutSec": "2"}})
        self.addCleanup(c.close)
        c.start_buses()
        # apart from the first packet on: {n1, n2} and {n3, n4} each bootstrap their own cluster
        c.partition([["n1", "n2"], ["n3", "n4"]])
        for n in c.nodes:
            n.start(wait=False)
        for n in c.nodes:
            n.wait_ready(30)
        n1, n2, n3, n4 = c.nodes
        for a, b in ((n1, n2), (n3, n4)):
            wait_until(lambda: members(a).get(b.name, ("",))[0] == "alive" and
                       any(r == "leader" for _, r in members(a).values()), 20,
                       "%s and %s to form a cluster" % (a.name, b.name))

        t1 = c.client("n1").op("enter", "apart", "left")
        t3 = c.client("n3").op("enter", "apart", "right")
        self.assertEqual(t1[1], "left")
        self.assertEqual(t3[1], "right")

        c.heal()
        # gossip now reaches across: each side sees the other's nodes, as foreign
        for a, others in ((n1, ("n3", "n4")), (n3, ("n1", "n2"))):
            wait_until(lambda: all(members(a).get(o, ("",))[0] == "foreign" for o in others), 20,
                       "%s to show %s as foreign" % (a.name, ", ".join(others)))
        # and both logged it
        for n in (n1, n3):
            wait_until(lambda: "belongs to another cluster" in n.log_tail(1 << 20), 10, "%s to log the conflict" % n.name)

        # never merged: each side keeps its own term, changes on one side never reach the other
        c.client("n2").op("enter", "apart", "left2")
        wait_until(lambda: n1.get_term("apart")[2] == ["left", "left2"], 10, "left2 on n1")
        # the right side commits and applies a change made after left2 committed (instead of
        # watching for a fixed time): its log went on without left2
        c.client("n4").op("enter", "apart", "right2")
        wait_until(lambda: all(n.get_term("apart")[2] == ["right", "right2"] for n in (n3, n4)), 10,
                   "right2 on n3 and n4 (and no left2)")
        self.assertEqual(n3.get_term("apart")[1:], ("right", ["right", "right2"]))
        self.assertEqual(n4.get_term("apart")[1:], ("right", ["right", "right2"]))
        self.assertEqual(n1.get_term("apart")[2], ["left", "left2"])
        for n in c.nodes:
            self.assertTrue(n.alive(), n.log_tail())


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`electionctl is-leader` (made for ExecCondition=) answers for this node at this moment: the
candidate leads AND this node holds the lead (LocalLeader: quorum, unexpired lease). A leader
cut off from its cluster still has itself as Leader in its applied state, yet must answer 1
once its lease has run out."""

import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
import netns  # noqa: E402
from cluster import wait_until  # noqa: E402

ELECTIONCTL = os.path.join(os.environ.get("ELECTIOND_BUILD_ROOT", "build"), "client-lib", "electionctl")



class IsLeader(unittest.TestCase):
    def is_leader(self, node, election, cid):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=node.bus_address)
        return subprocess.run(netns.ns_argv(node.ns, [ELECTIONCTL, "is-leader", election, "--id", cid]),
                              env=env, capture_output=True, timeout=20).returncode

    def test_is_leader_follows_the_lease(self):
        why = netns.usable()
        if why:
            self.skipTest(why)
        if not os.access(ELECTIONCTL, os.X_OK):
            self.skipTest("electionctl not built at %s" % ELECTIONCTL)
        c = cluster.Cluster(3, config={"Node": {"CommitTimeoutSec": "2"}})
        self.addCleanup(c.close)
        c.start()
        n1, n2, n3 = c.nodes
        c.client("n1").op("enter", "svc", "one", flags=1)
        c.client("n2").op("enter", "svc", "two", flags=1)
        wait_until(lambda: self.is_leader(n1, "svc", "one") == 0, 10, "is-leader 0 on the leader's node")
        self.assertEqual(self.is_leader(n2, "svc", "two"), 1)   # a follower candidate
        self.assertEqual(self.is_leader(n2, "svc", "one"), 1)   # leads, but from another node

        c.partition([["n1"], ["n2", "n3"]])
        t_cut = time.monotonic()
        wait_until(lambda: self.is_leader(n1, "svc", "one") == 1, 5, "is-leader 1 on the cut-off node")
        # by then the lease (0.2 s) and nothing else has run out: n1 still shows itself as leader
        self.assertLess(time.monotonic() - t_cut, 2.0)
        # the majority moves on, and answers for its own candidate once the hand-over cleared
        wait_until(lambda: self.is_leader(n2, "svc", "two") == 0, 10, "is-leader 0 on the new leader's node")
        self.assertEqual(self.is_leader(n1, "svc", "one"), 1)
        c.heal()
        wait_until(lambda: n1.get_term("svc")[1] == "two", 10, "n1 to learn the new term")
        self.assertEqual(self.is_leader(n1, "svc", "one"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)

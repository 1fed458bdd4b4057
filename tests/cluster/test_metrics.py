#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`electionctl metrics` on a 3-node namespace cluster: leases are renewed and counted, calls from
followers are forwarded and counted on both ends, and cutting the leader's node off counts a lease
failure and a step-down there, drop votes on the majority, and a term change of the election."""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import cluster  # noqa: E402
import netns  # noqa: E402
from cluster import wait_until  # noqa: E402
from metrics_parse import parse, value  # noqa: E402

ELECTIONCTL = os.path.join(os.environ.get("ELECTIOND_BUILD_ROOT", "build"), "client-lib", "electionctl")


class ClusterMetrics(unittest.TestCase):
    def scrape(self, node):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=node.bus_address)
        r = subprocess.run(netns.ns_argv(node.ns, [ELECTIONCTL, "metrics"]), env=env, capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        return parse(r.stdout)

    def v(self, node, family, **labels):
        return value(self.scrape(node), family, **labels)

    def total(self, nodes, family, **labels):
        return sum(self.v(n, family, **labels) for n in nodes)

    def test_leases_forwarding_and_step_down(self):
        why = netns.usable()
        if why:
            self.skipTest(why)
        if not os.access(ELECTIONCTL, os.X_OK):
            self.skipTest("electionctl not built at %s" % ELECTIONCTL)
        c = cluster.Cluster(3, config={"Node": {"CommitTimeoutSec": "2"}})
        self.addCleanup(c.close)
        c.start()
        n1, n2, n3 = c.nodes

        f = self.scrape(n1)
        self.assertEqual(value(f, "electiond_clustered"), 1)
        self.assertEqual(sum(s[2] for s in f["electiond_raft_role"]["samples"]), 1)
        wait_until(lambda: self.v(n1, "electiond_quorate") == 1, 10, "n1 quorate")
        # leases are renewed every probe interval: the counter keeps moving
        r0 = self.v(n1, "electiond_lease_renewals")
        wait_until(lambda: self.v(n1, "electiond_lease_renewals") > r0 + 2, 10, "lease renewals on n1")

        c.client("n1").op("enter", "svc", "one", flags=1)
        c.client("n2").op("enter", "svc", "two", flags=1)
        c.client("n3").op("enter", "svc", "three", flags=1)
        wait_until(lambda: self.v(n1, "electiond_election_local_leader", election="svc") == 1, 10,
                   "n1 to lead svc")
        # two of the three nodes are Raft followers: their calls went to the Raft leader
        self.assertGreaterEqual(self.total(c.nodes, "electiond_forwarded_calls", direction="sent"), 2)
        self.assertGreaterEqual(self.total(c.nodes, "electiond_forwarded_calls", direction="received"), 1)
        for n in c.nodes:
            f = self.scrape(n)
            self.assertEqual(value(f, "electiond_election_candidates", election="svc"), 3)
            self.assertGreaterEqual(value(f, "electiond_commit_latency_seconds", le="+Inf"), 1)
        self.assertEqual(self.v(n1, "electiond_step_downs"), 0)
        term_changes = self.v(n2, "electiond_election_term_changes", election="svc")

        c.partition([["n1"], ["n2", "n3"]])
        wait_until(lambda: self.v(n1, "electiond_step_downs") >= 1, 10, "a step-down counted on n1")
        f = self.scrape(n1)
        self.assertGreaterEqual(value(f, "electiond_lease_failures"), 1)
        self.assertEqual(value(f, "electiond_quorate"), 0)
        self.assertEqual(value(f, "electiond_election_local_leader", election="svc"), 0)
        # the majority drops n1's candidacy: asked, answered yes, DROP_NODE submitted, new term
        wait_until(lambda: self.v(n2, "electiond_election_term_changes", election="svc") > term_changes, 15,
                   "a term change of svc on n2")
        self.assertGreaterEqual(self.total([n2, n3], "electiond_drop_vote_requests"), 1)
        self.assertGreaterEqual(self.total([n2, n3], "electiond_drop_votes", vote="yes"), 1)
        self.assertGreaterEqual(self.total([n2, n3], "electiond_drop_nodes_submitted"), 1)
        self.assertEqual(self.total([n2, n3], "electiond_election_local_leader", election="svc"), 1)
        c.heal()


if __name__ == "__main__":
    unittest.main(verbosity=2)

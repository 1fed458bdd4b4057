#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Liveness of a clustered node (issue 14): after a stall the lease timer does not fire a burst
of back-to-back rounds."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
import netns  # noqa: E402
from cluster import wait_until  # noqa: E402

FORM_TIMEOUT = 20
MSG_LEASE_REQ = 9     # daemon/electiond-cluster.c, enum of channel message types


def formed(c, nodes=None):
    def ok():
        for n in nodes or c.nodes:
            try:
                if not bool(n.manager_prop("Quorate")):
                    return False
            except Exception:
                return False
        return True
    wait_until(ok, FORM_TIMEOUT, "a quorate cluster", 0.05)


def count_lease_requests_install(c, node):
    """Counts the LEASE_REQ datagrams node sends on veth0: UDP to the channel port (Port + 1) whose
    type byte (after "ELCM", version, the length-prefixed cluster name, sender id, epoch and seq)
    is LEASE_REQ."""
    offset_bits = (8 + 4 + 1 + 1 + len(c.cluster_name) + 8 + 8 + 8) * 8   # from the UDP header
    node.count_packets("lease-req", 'oifname "veth0" udp dport %d @th,%d,8 %d' % (c.port + 1, offset_bits, MSG_LEASE_REQ),
                       hook="output")


def count_lease_requests(node):
    return node.packets("lease-req")


class TickTest(unittest.TestCase):
    def setUp(self):
        why = netns.usable()
        if why:
            self.skipTest(why)

    def test_no_burst_of_lease_rounds_after_a_stall(self):
        """SIGSTOP a node for longer than many probe intervals; once resumed it sends lease rounds
        at the probe interval, not one per interval missed (re-armed from now, not from the old
        deadline)."""
        interval, stall = 0.05, 1.5
        c = cluster.Cluster(3, config={"Cluster": {"ProbeIntervalSec": str(interval)}})
        self.addCleanup(c.close)
        c.start()
        formed(c)
        n = c.nodes[2]
        voters = len(c.nodes) - 1           # a round sends one LEASE_REQ to each other voter
        count_lease_requests_install(c, n)
        wait_until(lambda: count_lease_requests(n) > 0, 5, "lease requests to be counted")
        n.stop()
        before = count_lease_requests(n)
        # hold the stall (a fault of fixed length, not a wait for a condition)
        time.sleep(stall)
        self.assertEqual(count_lease_requests(n), before, "a stopped node sent lease requests")
        t0 = time.monotonic()
        n.cont()
        time.sleep(0.1)                     # the sampling window: the first 100 ms after resume
        after = count_lease_requests(n)
        window = time.monotonic() - t0      # includes the time the read itself took
        rounds = (after - before) / voters
        allowed = window / interval + 2     # rounds at the probe interval, plus slack for edges
        missed = stall / interval
        self.assertLessEqual(rounds, allowed,
                             "%.0f lease rounds in the %.0f ms after a %.1f s stall (at most %.0f expected; "
                             "about %.0f would be one per missed interval)"
                             % (rounds, window * 1000, stall, allowed, missed))
        # and rounds go on: the node is still requesting leases
        wait_until(lambda: count_lease_requests(n) > after, 5, "lease rounds to continue after resume")


if __name__ == "__main__":
    unittest.main(verbosity=2)

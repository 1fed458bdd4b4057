#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""[Cluster] Encrypt= on a 3-node namespace cluster (issue 13 §4). A packet sniffer (sniff.py, an
AF_PACKET socket inside one node's own namespace) records that node's veth while a client enters
an election with a distinctive name and the node restarts (so Raft handshakes are on the
capture too):

- with Encrypt=yes the election name, the candidate id, the cluster name, the node's Raft address
  and its 64-bit node id appear nowhere in the capture, and only sealed magics (ELGS, ELCS, EDRS)
  do;
- with Encrypt=no (the control, proving the capture would see them) they do appear.

A node with Encrypt=no next to an Encrypt=yes cluster never gets in; both sides log the
mismatch and count it (electiond_packets_dropped_total reasons plaintext / encrypted)."""

import os
import struct
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
ELECTION = "sniff-secret-election"
CANDIDATE = "candidate-visible-or-not"
CLUSTER = "sniffcluster"


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    out, i = [], 0
    while i + 4 <= len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out


class Encryption(unittest.TestCase):
    def setUp(self):
        why = netns.usable()
        if why:
            self.skipTest(why)

    def scrape(self, node):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=node.bus_address)
        r = subprocess.run(netns.ns_argv(node.ns, [ELECTIONCTL, "metrics"]), env=env, capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        return parse(r.stdout)

    def capture(self, encrypt):
        """Runs the scenario on a fresh cluster; returns (capture bytes, facts about n3)."""
        c = cluster.Cluster(3, cluster_name=CLUSTER, config={"Cluster": {"Encrypt": "yes" if encrypt else "no"}})
        self.addCleanup(c.close)
        c.start()
        n1, n2, n3 = c.nodes
        with open(os.path.join(n3.state_dir, "node-id")) as f:
            node_id = int(f.read().strip(), 16)
        out = os.path.join(c.dir, "n3.cap")
        sniffer = cluster.Proc(netns.ns_argv(n3.ns, [cluster.PY, os.path.join(HERE, "sniff.py"), netns.NODE_IF, out]),
                               os.path.join(c.dir, "sniff.log"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               registry=c.procs)
        self.assertEqual(sniffer.popen.stdout.readline().decode().strip(), "ready")
        # an election through n1, replicated to n3 over Raft; leases and gossip all along
        term = c.client("n1").op("enter", ELECTION, CANDIDATE, flags=1)
        wait_until(lambda: n3.get_term(ELECTION) == term, 10, "n3 to see the election")
        # n3 restarts: Raft handshakes (ids, addresses) and a fresh gossip introduction
        n3.restart(graceful=True)
        wait_until(lambda: n3.get_term(ELECTION) == term, 15, "n3 to see the election again")
        c.client("n2").op("get", ELECTION)
        sniffer.popen.stdin.close()
        count = int(sniffer.popen.stdout.readline().decode().strip() or 0)
        sniffer.popen.wait(10)
        caps = frames(out)
        self.assertEqual(len(caps), count)
        self.assertGreater(count, 20)
        return b"\n".join(caps), {"node_id": node_id, "raft_address": "%s:%d" % (n3.addr, c.port)}

    def test_names_hidden_only_when_encrypted(self):
        plain, facts = self.capture(encrypt=False)
        # control: the capture sees what there is to see
        self.assertIn(ELECTION.encode(), plain)
        self.assertIn(CANDIDATE.encode(), plain)
        self.assertIn(CLUSTER.encode(), plain)
        self.assertIn(facts["raft_address"].encode(), plain)
        self.assertIn(b"ELGP", plain)
        self.assertIn(b"ELCM", plain)
        self.assertIn(b"EDRT", plain)
        self.assertIn(struct.pack(">Q", facts["node_id"]), plain)

        sealed, facts = self.capture(encrypt=True)
        for needle in (ELECTION, CANDIDATE, CLUSTER, facts["raft_address"]):
            self.assertNotIn(needle.encode(), sealed, needle)
        self.assertNotIn(struct.pack(">Q", facts["node_id"]), sealed)
        self.assertNotIn(struct.pack("<Q", facts["node_id"]), sealed)
        for magic in (b"ELGS", b"ELCS", b"EDRS"):
            self.assertIn(magic, sealed)
        for magic in (b"ELGP", b"ELCM", b"EDRT"):
            self.assertNotIn(magic, sealed)

    def test_mismatch_refused_and_visible(self):
        if not os.access(ELECTIONCTL, os.X_OK):
            self.skipTest("electionctl not built at %s" % ELECTIONCTL)
        c = cluster.Cluster(4, bootstrap_expect=3, config={"Cluster": {"Encrypt": "yes"}},
                            node_config={"n4": {"Cluster": {"Encrypt": "no"}}})
        self.addCleanup(c.close)
        c.start_buses()
        n1, n2, n3, n4 = c.nodes
        for n in (n1, n2, n3):
            n.start(wait=False)
        for n in (n1, n2, n3):
            n.wait_ready()
        n4.start(wait=False)

        def log(n):
            with open(os.path.join(n.dir, "electiond.log"), errors="replace") as f:
                return f.read()

        def dropped(n, reason):
            return sum(value(self.scrape(n), "electiond_packets_dropped", protocol=p, reason=reason)
                       for p in ("gossip", "channel"))

        wait_until(lambda: dropped(n1, "plaintext") > 0, 15, "n1 to count n4's plaintext packets")
        wait_until(lambda: dropped(n4, "encrypted") > 0, 15, "n4 to count the cluster's encrypted packets")
        wait_until(lambda: "encryption settings differ" in log(n1), 10, "n1 to log the mismatch")
        wait_until(lambda: "encryption settings differ" in log(n4), 10, "n4 to log the mismatch")
        self.assertIn("Encrypt=yes", log(n1).split("encryption settings differ")[0].splitlines()[-1])
        # rate-limited: one line per 30 s per codec, however many packets: let 20 more arrive
        seen = dropped(n1, "plaintext")
        wait_until(lambda: dropped(n1, "plaintext") >= seen + 20, 15, "20 more plaintext packets at n1")
        self.assertLessEqual(log(n1).count("sends unencrypted packets"), 1)
        self.assertFalse(any(str(m[0]) == "n4" for m in n1.manager_prop("Members")))
        self.assertTrue(n4.daemon.alive(), n4.log_tail())
        self.assertFalse(n4.quorate())
        for n in (n1, n2, n3):
            self.assertTrue(n.quorate(), n.name)


if __name__ == "__main__":
    unittest.main(verbosity=2)

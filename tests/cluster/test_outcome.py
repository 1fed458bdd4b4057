#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a failed call says (issue 14): NoQuorum means "not applied"; a change that left the node
but was not seen committed in time is OutcomeUnknown; a change that commits is never answered
with an error. Calls go through electionctl (exit 7 = outcome unknown), so its mapping is
checked on the way."""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
import netns  # noqa: E402
from cluster import wait_until  # noqa: E402

ELECTIONCTL = os.path.join(os.environ.get("ELECTIOND_BUILD_ROOT", "build"), "client-lib", "electionctl")
EXIT_OUTCOME_UNKNOWN = 7
# a long lease, so that a node cut off keeps accepting calls for a while (it refuses them
# with NoQuorum at once as soon as its lease has run out)
LONG_LEASE = {"Cluster": {"LeaseSec": "2", "NodeTimeoutSec": "3"}}


def ctl(node, *args):
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=node.bus_address, LC_ALL="C")
    return subprocess.Popen(netns.ns_argv(node.ns, [ELECTIONCTL] + list(args)), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def raft_leader(c):
    for n in c.nodes:
        try:
            for m in n.manager_prop("Members"):
                if str(m[3]) == "leader":
                    return c.node(str(m[0]))
        except Exception:
            pass
    return None


def candidates(node, election):
    try:
        return node.get_term(election)[2]
    except Exception:
        return None


class OutcomeTest(unittest.TestCase):
    def setUp(self):
        why = netns.usable()
        if why:
            self.skipTest(why)
        if not os.access(ELECTIONCTL, os.X_OK):
            self.skipTest("electionctl not built at %s" % ELECTIONCTL)

    def make(self, commit_timeout):
        config = {"Node": {"CommitTimeoutSec": str(commit_timeout)}}
        config.update(LONG_LEASE)
        c = cluster.Cluster(3, config=config)
        self.addCleanup(c.close)
        c.start()
        wait_until(lambda: all(n.quorate() for n in c.nodes), 20, "a quorate cluster")
        leader = wait_until(lambda: raft_leader(c), 10, "a Raft leader")
        return c, leader

    def test_forwarded_change_committed_elsewhere_is_outcome_unknown(self):
        """A follower forwards an Enter to the leader and then hears nothing back (it drops every
        packet coming in): the change commits on the others, the follower cannot know. It must
        answer OutcomeUnknown, not NoQuorum."""
        c, leader = self.make(commit_timeout=1)
        f = [n for n in c.nodes if n is not leader][0]
        others = [n.name for n in c.nodes if n is not f]
        c.partition_oneway([f.name], others)       # f still sends, hears nothing
        self.assertTrue(f.quorate(), "the follower lost its lease at once")
        p = ctl(f, "enter", "oc", "--id", "x", "--persistent")
        out, err = p.communicate(timeout=30)
        # the others committed it
        wait_until(lambda: candidates(leader, "oc") == ["x"], 10, "the Enter to commit on the leader")
        self.assertNotIn("No quorum", err, "a change that committed was reported as not applied")
        self.assertEqual(p.returncode, EXIT_OUTCOME_UNKNOWN, out + err)
        self.assertIn("Outcome unknown", err)
        c.heal()
        wait_until(lambda: candidates(f, "oc") == ["x"], 20, "the follower to learn the change")

    def test_leader_cut_off_before_commit_hands_the_change_on(self):
        """The Raft leader takes an Enter and is cut off before it commits; the others elect a
        new leader, then the partition heals. The change is handed on and commits: the call
        succeeds (or, at worst, says OutcomeUnknown) but never reports a failure, and what it
        reported agrees with the state."""
        c, leader = self.make(commit_timeout=8)
        rest = [n for n in c.nodes if n is not leader]
        c.partition([[leader.name], [n.name for n in rest]])
        self.assertTrue(leader.quorate(), "the leader lost its lease at once")
        p = ctl(leader, "enter", "oc", "--id", "y", "--persistent")
        # the majority moves on without the old leader
        wait_until(lambda: (lambda l: l is not None and l is not leader)(raft_leader_of(rest)), 20,
                   "the majority to elect a new Raft leader")
        self.assertIsNone(p.poll(), "the call was answered before the partition healed")
        c.heal()
        out, err = p.communicate(timeout=30)
        print("leader's call after the heal: exit %d %s" % (p.returncode, err.strip()))
        self.assertIn(p.returncode, (0, EXIT_OUTCOME_UNKNOWN), out + err)
        if p.returncode == 0:
            wait_until(lambda: all(candidates(n, "oc") == ["y"] for n in c.nodes), 20,
                       "every node to have the change it acknowledged")
        c.wait_converged(20)
        final = candidates(rest[0], "oc")
        if final == ["y"]:
            self.assertNotIn("No quorum", err)
        else:
            self.assertNotEqual(p.returncode, 0, "acknowledged, but not in the state")


def raft_leader_of(nodes):
    for n in nodes:
        try:
            for m in n.manager_prop("Members"):
                if str(m[3]) == "leader" and str(m[0]) in [x.name for x in nodes]:
                    return n.cluster.node(str(m[0]))
        except Exception:
            pass
    return None


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A node dead for longer than RemoveDeadAfterSec is removed from the Raft configuration; when it
comes back with its old log, the Raft leader tells it so, it exits (its service manager restarts
it), and the next start joins fresh under a new server id — server ids are never reused."""

import os
import re
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
import netns  # noqa: E402
from cluster import wait_until  # noqa: E402




def role(node, name):
    try:
        for m in node.manager_prop("Members"):
            if str(m[0]) == name:
                return str(m[2]), str(m[3])
    except Exception:
        pass
    return None


def server_ids(node):
    return re.findall(r"Raft engine started as server ([0-9a-f]{16})", node.log_tail(1 << 20))


class Removal(unittest.TestCase):
    def test_removed_node_rejoins_fresh(self):
        why = netns.usable()
        if why:
            self.skipTest(why)
        c = cluster.Cluster(3, config={"Node": {"CommitTimeoutSec": "2"},
                                       "Cluster": {"RemoveDeadAfterSec": "1"}})
        self.addCleanup(c.close)
        c.start()
        n1, n2, n3 = c.nodes
        wait_until(lambda: role(n1, "n3") == ("alive", "voter") or role(n1, "n3") == ("alive", "leader"), 20,
                   "n3 to be a voter")
        first_id = server_ids(n3)[-1]

        n3.kill()
        # dead, then removed from the configuration: it keeps its gossip entry but no Raft role
        wait_until(lambda: (role(n1, "n3") or ("", ""))[1] == "none", 20, "the leader to remove n3")

        # back with its old log: told it is no member, it exits non-zero, and says why
        n3.start(wait=False)
        wait_until(lambda: not n3.alive(), 20, "n3 to learn it was removed and exit")
        self.assertEqual(n3.daemon.popen.returncode, 1, n3.log_tail(1 << 20)[-3000:])
        self.assertIn("no longer a member", n3.log_tail(1 << 20))

        # restarted (as systemd's Restart= would): joins fresh, under a new server id
        n3.start(wait=False)
        n3.wait_ready(30)
        wait_until(lambda: (role(n1, "n3") or ("", ""))[1] in ("voter", "leader"), 30, "n3 to be a voter again")
        ids = server_ids(n3)
        self.assertNotEqual(ids[-1], first_id)
        t = c.client("n3").op("enter", "back", "x")
        wait_until(lambda: n1.get_term("back") == (t[0], t[1], t[2]), 10, "n3's Enter on n1")


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""electionctl run in a 3-node cluster (namespace harness, tests/cluster/): when the leader's node
ends up in a minority partition, its COMMAND is stopped (LocalLeader goes false: no quorum, lease
ran out) before the majority hands the leadership to another candidate. Skips like the cluster
tests while the daemon has no cluster consensus."""

import os
import signal
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, 'cluster'))
import cluster  # noqa: E402
from test_cluster import ClusterBase  # noqa: E402
from test_client_common import ELECTIONCTL, LineProcess  # noqa: E402


def read_marker(path):
    try:
        with open(path) as f:
            return [l.split() for l in f.read().splitlines()]
    except FileNotFoundError:
        return []


class RunClusterTest(ClusterBase):

    def test_run_stops_command_in_minority_before_handover(self):
        c = self.make(3)
        self.wait_formed(c)
        n1, n2, n3 = c.nodes
        marker = tempfile.mktemp(prefix='electionctl-cluster-')
        self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
        script = ('echo start $ELECTION_TERM $(date +%s.%N) >> "$MARKER"; '
                  'trap \'echo stop $ELECTION_TERM $(date +%s.%N) >> "$MARKER"; exit 0\' TERM; '
                  'while :; do sleep 0.02; done')
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=n1.bus_address, MARKER=marker, LC_ALL='C.UTF-8')
        p = LineProcess([ELECTIONCTL, '--stop-timeout', '1', 'run', 'svc', '--id', 'a', '--',
                         'sh', '-c', script], env)
        self.addCleanup(p.close)
        cluster.wait_until(lambda: len(read_marker(marker)) == 1, 20, 'COMMAND to start on n1', 0.02)
        term_a = int(read_marker(marker)[0][1])
        # a second candidate on the majority side, persistent
        c.client(n2).op('enter', 'svc', 'b', flags=1)
        self.wait_all(c.nodes, 'svc', lambda t: t[2] == ['a', 'b'], 'both candidates everywhere')

        c.partition([[n1], [n2, n3]])
        # n1 loses quorum and its lease: COMMAND must stop ...
        cluster.wait_until(lambda: len(read_marker(marker)) >= 2, 20, 'COMMAND to stop on n1', 0.02)
        stop = read_marker(marker)[1]
        self.assertEqual(stop[0], 'stop')
        # ... and the majority gives the leadership to b only afterwards, with a higher term
        taken = []

        def b_leads():
            try:
                t = n2.get_term('svc')
            except Exception:
                return False
            if t[1] == 'b':
                taken.append((t, time.time()))
                return True
            return False
        cluster.wait_until(b_leads, 30, 'b to lead on the majority side', 0.01)
        self.assertGreater(int(taken[0][0][0]), term_a)
        self.assertLess(float(stop[2]), taken[0][1], 'COMMAND still ran when the majority saw b lead')
        # never two COMMANDs: nothing started again on n1 while cut off
        self.assertEqual([l[0] for l in read_marker(marker)], ['start', 'stop'])

        p.send(signal.SIGTERM)
        self.assertIn(p.wait(20), (0, 3, 5))


if __name__ == '__main__':
    res = unittest.main(verbosity=2, exit=False).result
    if res.testsRun and len(res.skipped) == res.testsRun:
        sys.exit(77)  # meson: skipped
    sys.exit(0 if res.wasSuccessful() else 1)

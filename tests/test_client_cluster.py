#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""electionctl run in a 3-node cluster (namespace harness, tests/cluster/): when the leader's node
ends up in a minority partition, its COMMAND is stopped (LocalLeader goes false: no quorum, lease
ran out) before the majority hands the leadership to another candidate; when the leader's
electiond is frozen (SIGSTOP) and tells run nothing, run's own copy of the lease deadline
(WatchLease/LeaseRenewed) SIGTERMs COMMAND before any other node reports LocalLeader=true.
Skips like the cluster tests while the daemon has no cluster consensus."""

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


# COMMAND for the frozen-daemon test: records, with time.monotonic_ns() (CLOCK_MONOTONIC, one clock
# for every namespace and for the recorders' history), when it starts and when SIGTERM reaches it.
RECORDING_COMMAND = r"""
import os, signal, sys, time
def note(what):
    with open(os.environ['MARKER'], 'a') as f:
        f.write('%s %s %d\n' % (what, os.environ['ELECTION_TERM'], time.monotonic_ns()))
def on_term(sig, frame):
    note('stop')
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
note('start')
while True:
    time.sleep(1)
"""


class RunFrozenDaemonTest(ClusterBase):

    def test_run_stops_command_when_its_daemon_is_frozen(self):
        """SIGSTOP of the leading node's electiond: nobody tells `run` anything any more, yet its
        COMMAND must get SIGTERM (from run's own copy of the lease deadline) before any other node
        reports LocalLeader=true for the election."""
        c = self.make(3)
        self.wait_formed(c)
        # run on a node that is not the Raft leader: the other two then drop it fastest
        raft_leader = [str(m[0]) for m in c.nodes[0].manager_prop('Members') if str(m[3]) == 'leader']
        self.assertEqual(len(raft_leader), 1)
        x = [n for n in c.nodes if n.name != raft_leader[0]][0]
        y = [n for n in c.nodes if n is not x][0]
        marker = tempfile.mktemp(prefix='electionctl-frozen-')
        self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=x.bus_address, MARKER=marker, LC_ALL='C.UTF-8')
        env.pop('LANGUAGE', None)
        p = LineProcess([ELECTIONCTL, '--stop-timeout', '2', 'run', 'fz', '--id', 'a', '--',
                         '/usr/bin/python3', '-c', RECORDING_COMMAND], env)
        self.addCleanup(p.close)
        cluster.wait_until(lambda: len(read_marker(marker)) == 1, 20, 'COMMAND to start on %s' % x.name, 0.02)
        self.assertEqual(read_marker(marker)[0][0], 'start')
        c.client(y).op('enter', 'fz', 'b', flags=1)
        self.wait_all(c.nodes, 'fz', lambda t: t[1] == 'a' and t[2] == ['a', 'b'], 'a leading, b next, everywhere')
        # while the daemon renews the lease (LeaseRenewed reaches run), COMMAND outlives many leases
        start_ns = int(read_marker(marker)[0][2])
        cluster.wait_until(lambda: time.monotonic_ns() - start_ns > 5 * 200_000_000, 10,
                           'COMMAND to outlive five leases (LeaseSec=0.2)', 0.02)
        self.assertEqual([l[0] for l in read_marker(marker)], ['start'], 'COMMAND stopped though the lease was renewed')

        t_freeze = time.monotonic_ns()
        x.stop()
        self.addCleanup(lambda: x.stopped and x.cont())

        def takeover():
            for r in c.history():
                if (r.get('type') == 'local_leader' and r.get('election') == 'fz' and r.get('value')
                        and r.get('node') != x.name and r.get('t', 0) > t_freeze):
                    return r
            return None
        taken = cluster.wait_until(takeover, 30, 'another node to report LocalLeader=true for fz', 0.02)

        def stopped():
            return next((l for l in read_marker(marker) if l[0] == 'stop'), None)
        try:
            stop = cluster.wait_until(stopped, 5, 'SIGTERM to reach COMMAND', 0.02)
        except TimeoutError:
            self.fail('COMMAND never got SIGTERM while %s\'s electiond was stopped (%s took over); '
                      'run stderr: %r' % (x.name, taken['node'], p.stderr()[-2000:]))
        print('frozen at 0, COMMAND got SIGTERM at %.1f ms, %s took over at %.1f ms'
              % ((int(stop[2]) - t_freeze) / 1e6, taken['node'], (int(taken['t']) - t_freeze) / 1e6))
        self.assertLess(int(stop[2]), int(taken['t']),
                        'COMMAND got SIGTERM %.1f ms after %s reported LocalLeader=true'
                        % ((int(stop[2]) - int(taken['t'])) / 1e6, taken['node']))
        self.assertGreater(int(stop[2]), t_freeze)
        self.assertIn('lease expired without renewal (daemon not responding?): stopping COMMAND', p.stderr())
        # once, and not started again while the daemon is stopped
        self.assertEqual([l[0] for l in read_marker(marker)], ['start', 'stop'])

        x.cont()
        # the resumed node learns it was replaced; run ends (its candidacy was dropped) or is told to
        p.send(signal.SIGTERM)
        self.assertIn(p.wait(30), (0, 3, 5))
        self.assertEqual([l[0] for l in read_marker(marker)], ['start', 'stop'])


if __name__ == '__main__':
    res = unittest.main(verbosity=2, exit=False).result
    if res.testsRun and len(res.skipped) == res.testsRun:
        sys.exit(77)  # meson: skipped
    sys.exit(0 if res.wasSuccessful() else 1)

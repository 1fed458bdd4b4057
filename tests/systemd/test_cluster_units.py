#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Leader units on a 3-node cluster (tests/cluster harness: network namespaces on a bridge) where
every node has its own real `systemd --user` manager (tests/systemd/sdmanager.py) as its system
bus. Every node is a persistent candidate of "web" through elections.d and runs web-app.service
while it leads. Checked:
- the unit runs on exactly one node, the leader's;
- Anoint moves it, and the old leader's stop happens before the new leader's start;
- killing the leader's node (electiond and everything its manager runs) starts it on the new leader;
- a partitioned leader stops its unit before the majority side starts one;
- a failing health unit moves leadership (and the unit) away.
Each unit appends "start|stop NODE <CLOCK_REALTIME ns>" to one shared file (one host clock):
"start" from ExecStartPre= (before it runs), "stop" from ExecStopPost= (once it is gone).
"""

import os
import shutil
import signal
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TESTS, 'lib'))
sys.path.insert(0, os.path.join(TESTS, 'cluster'))

import sdmanager  # noqa: E402
from test_leader_units import daemon_wires_units  # noqa: E402

SRC = os.environ.get('ELECTIOND_SOURCE_ROOT', os.path.dirname(TESTS))
NODES = ('n1', 'n2', 'n3')
ELECTION = 'web'
UNIT = 'web-app.service'


def wait_for(cond, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout:.1f}s waiting for {what}')
        time.sleep(interval)


class ClusterUnitsTest(unittest.TestCase):
    health = False

    def setUp(self):
        import cluster
        import netns
        reason = netns.usable()
        if reason:
            self.skipTest(f'network namespaces not usable here: {reason}')
        self.tmp = tempfile.mkdtemp(prefix='electiond-sdcluster-')
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.events = os.path.join(self.tmp, 'events')
        open(self.events, 'w').close()
        os.chmod(self.events, 0o666)

        node_config = {}
        self.dirs = {}
        for n in NODES:
            ed = os.path.join(self.tmp, n, 'elections.d')
            rd = os.path.join(self.tmp, n, 'run')
            os.makedirs(ed)
            self.dirs[n] = (ed, rd)
            node_config[n] = {'Node': {'ElectionsDirectory': ed, 'RuntimeDirectory': rd}}
            with open(os.path.join(ed, ELECTION + '.conf'), 'w') as f:
                f.write(f'[Election]\nUnits={UNIT}\n' + ('HealthUnit=web-health.service\n' if self.health else ''))

        self.c = cluster.Cluster(len(NODES), node_config=node_config, record=False)
        self.addCleanup(self.c.close)
        self.sd = {}
        for node in self.c.nodes:
            m = sdmanager.UserManager()
            self.addCleanup(m.stop)   # runs before c.close(): daemons first, then managers
            m.start()
            self.sd[node.name] = m
            with open(os.path.join(SRC, 'systemd', 'electiond-leader@.target')) as f:
                m.add_unit('electiond-leader@.target', f.read())
            m.add_unit(UNIT, f"""[Unit]
PartOf=electiond-leader@{ELECTION}.target
[Service]
ExecStartPre=/bin/sh -c 'echo "start {node.name} $(date +%%s%%N)" >> {self.events}'
ExecStart=/bin/sleep 1000
ExecStopPost=/bin/sh -c 'echo "stop {node.name} $(date +%%s%%N)" >> {self.events}'
""")
            if self.health:
                m.add_unit('web-health.service', """[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'test ! -e %t/unhealthy'
""")
            m.reload()
            if self.health:
                m.start_unit('web-health.service')
                m.wait_state('web-health.service', 'active')
            node.bus_address = m.address   # the node's "system bus" is its manager's bus
        self.addCleanup(self.stop_daemons)
        for node in self.c.nodes:
            node.start(wait=False)
        for node in self.c.nodes:
            node.wait_ready(timeout=20)

    def stop_daemons(self):
        for node in self.c.nodes:
            node.close_bus()
            if node.alive():
                if node.stopped:
                    node.cont()
                node.terminate()

    # -- helpers --

    def log(self, name):
        try:
            with open(os.path.join(self.c.node(name).dir, 'electiond.log'), errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def state(self, name):
        return self.sd[name].active_state(UNIT)

    def running_on(self, names=NODES):
        return [n for n in names if self.state(n) == 'active']

    def leader(self, via):
        return self.c.node(via).get_term(ELECTION)[1]

    def flag_exists(self, name):
        return os.path.exists(os.path.join(self.dirs[name][1], 'leader', ELECTION))

    def events_list(self):
        with open(self.events) as f:
            return [(kind, node, int(ts)) for kind, node, ts in (line.split() for line in f if line.strip())]

    def last(self, kind, node):
        ts = [t for k, n, t in self.events_list() if k == kind and n == node]
        return ts[-1] if ts else None

    def wait_single_runner(self, names=NODES, timeout=20, not_on=None):
        """Exactly one node runs the unit, it is the leader all of names agree on (and, with
        not_on, it is not that node: the move has happened)."""
        seen = {}

        def ok():
            try:
                leaders = {self.leader(n) for n in names}
            except Exception as e:
                seen['error'] = str(e)
                return None
            seen['leaders'] = leaders
            seen['running'] = self.running_on(names)
            seen['flags'] = [n for n in names if self.flag_exists(n)]
            if len(leaders) != 1 or (not_on is not None and not_on in leaders):
                return None
            leader = leaders.pop()
            if leader not in names:
                return None
            return leader if self.running_on(names) == [leader] and self.flag_exists(leader) else None
        try:
            return wait_for(ok, timeout, f'exactly one of {names} to run {UNIT}')
        except TimeoutError as e:
            raise AssertionError(f'{e}; last seen: {seen}\n' +
                                 '\n'.join(f'--- {n}:\n' + self.log(n)[-6000:] for n in names)) from None

    def assert_stop_before_start(self, old, new):
        stop, start = self.last('stop', old), self.last('start', new)
        self.assertIsNotNone(stop, f'{old} never stopped {UNIT}')
        self.assertIsNotNone(start, f'{new} never started {UNIT}')
        self.assertLess(stop, start, f'{new} started {UNIT} before {old} had stopped it')
        print(f'\n  {old} stopped {UNIT} {(start - stop) / 1e6:.1f} ms before {new} started it', flush=True)

    # -- tests --

    def test_one_runner_and_anoint_moves_it(self):
        leader = self.wait_single_runner()
        other = next(n for n in NODES if n != leader)
        self.c.node(other).election(ELECTION).Anoint(other, dbus_interface='org.electiond.Election1.Election',
                                                     timeout=10)
        self.assertEqual(self.wait_single_runner(not_on=leader), other)
        self.assertFalse(self.flag_exists(leader))
        self.assert_stop_before_start(leader, other)

    def test_killed_leader_node_fails_over(self):
        leader = self.wait_single_runner()
        # The whole node dies: its daemon, and everything its service manager runs.
        self.c.node(leader).kill()
        for pid in self.sd[leader].leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        survivors = [n for n in NODES if n != leader]
        new = self.wait_single_runner(survivors)
        self.assertNotEqual(new, leader)

    def test_partitioned_leader_stops_first(self):
        leader = self.wait_single_runner()
        others = [n for n in NODES if n != leader]
        self.c.partition([[leader], others])
        new = wait_for(lambda: self.running_on(others) and self.running_on(others)[0], 20,
                       'the majority side to start the unit')
        wait_for(lambda: self.state(leader) != 'active', 20, 'the minority leader to stop')
        self.assertFalse(self.flag_exists(leader))
        self.assert_stop_before_start(leader, new)
        self.assertEqual(self.running_on(others), [new])


class ClusterHealthTest(ClusterUnitsTest):
    health = True

    # The inherited scenarios also run with a (healthy) health unit configured.
    def test_failing_health_moves_leadership(self):
        leader = self.wait_single_runner()
        open(os.path.join(self.sd[leader].dir, 'unhealthy'), 'w').close()
        self.sd[leader].call('RestartUnit', 'ss', ('web-health.service', 'replace'))
        self.sd[leader].wait_state('web-health.service', 'failed')
        new = self.wait_single_runner(not_on=leader)
        self.assertNotEqual(new, leader)
        self.assertNotIn(leader, [str(c) for c in self.c.node(new).get_term(ELECTION)[2]])
        self.assert_stop_before_start(leader, new)


if __name__ == '__main__':
    reason = sdmanager.skip_reason()
    if reason:
        print('SKIP:', reason)
        sys.exit(sdmanager.SKIP)
    if not daemon_wires_units():
        print('SKIP: this electiond does not call the units module yet (manager wiring pending)')
        sys.exit(sdmanager.SKIP)
    # Only the health scenario in the health class: the others already ran above.
    for name in ('test_one_runner_and_anoint_moves_it', 'test_killed_leader_node_fails_over',
                 'test_partitioned_leader_stops_first'):
        setattr(ClusterHealthTest, name, None)
    prog = unittest.main(verbosity=2, exit=False)
    r = prog.result
    if r.testsRun and len(r.skipped) == r.testsRun and not r.failures and not r.errors:
        print('SKIP: every scenario skipped:', r.skipped[0][1])
        sys.exit(sdmanager.SKIP)
    sys.exit(0 if r.wasSuccessful() else 1)

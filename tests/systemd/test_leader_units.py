#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Leadership drives real units: a standalone electiond whose "system bus" is a real
`systemd --user` manager's bus (tests/systemd/sdmanager.py), configured through elections.d.

- the leader target and Units= run exactly while this node's candidate leads; Anoint of another
  candidate stops them, with the flag file removed before the stop runs; Anoint back restarts them;
- /run/electiond/leader/NAME (RuntimeDirectory= here) exists exactly while leading and holds the
  term id;
- units can guard themselves with ConditionPathExists= on the flag file or
  ExecCondition=electionctl is-leader;
- a failing HealthUnit= withdraws the candidacy (leadership moves on), an active one re-enters;
- a unit that fails to start is retried until it starts;
- a broken elections.d file is reported and skipped, the good ones still work;
- stopping the daemon stops the leader units; after kill -9 a new run that leads keeps them
  running and rewrites the flag (stale flags go), one that must not lead stops them.
"""

import os
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'lib'))

import sdmanager  # noqa: E402
import electiond_test as et  # noqa: E402

SRC = os.environ.get('ELECTIOND_SOURCE_ROOT', os.path.dirname(os.path.dirname(HERE)))
NODE = 'node-a'


def wait_for(cond, timeout=10, what='condition'):
    deadline = time.monotonic() + et.T(timeout)
    while True:
        et.pump()
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {et.T(timeout):.1f}s waiting for {what}')
        time.sleep(0.02)


def daemon_wires_units():
    """The manager calls the units module (electiond-units.c) only once the lead wires it; until
    then the daemon does not drive units at all and these tests cannot run."""
    exe = os.environ.get('ELECTIOND')
    if not exe or not os.path.exists(exe):
        return False
    with open(exe, 'rb') as f:
        return b'stopping the units of election' in f.read()   # a string of electiond-units.c


class LeaderUnitsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='electiond-sdtest-')
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.elections_dir = os.path.join(self.tmp, 'elections.d')
        self.runtime_dir = os.path.join(self.tmp, 'run')
        os.makedirs(self.elections_dir)
        self.sd = sdmanager.UserManager()
        self.addCleanup(self.sd.stop)
        self.sd.start()
        self.rt = self.sd.dir   # %t of the test manager
        with open(os.path.join(SRC, 'systemd', 'electiond-leader@.target')) as f:
            self.sd.add_unit('electiond-leader@.target', f.read())
        self.daemon = None
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        if self.daemon is not None:
            out = self.daemon.output() if self.daemon.running() else ''
            self.daemon.cleanup()
            et.check_sanitizer_output(out)

    # -- helpers --

    def flag(self, name='web'):
        return os.path.join(self.runtime_dir, 'leader', name)

    def flag_term(self, name='web'):
        try:
            with open(self.flag(name)) as f:
                return int(f.read().strip())
        except FileNotFoundError:
            return None

    def add_leader_unit(self, name='web-app.service', election='web'):
        # Records, when it is stopped, whether the flag file was still there.
        self.sd.add_unit(name, f"""[Unit]
PartOf=electiond-leader@{election}.target
[Service]
ExecStart=/bin/sleep 1000
ExecStopPost=/bin/sh -c 'if test -e {self.flag(election)}; then echo present; else echo absent; fi >> %t/{name}.stops'
""")

    def stops_seen(self, name='web-app.service'):
        try:
            with open(os.path.join(self.rt, name + '.stops')) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def write_conf(self, name, text):
        with open(os.path.join(self.elections_dir, name + '.conf'), 'w') as f:
            f.write(text)

    def start_daemon(self):
        self.sd.reload()
        self.daemon = et.Daemon(self.sd, config_text=(
            f'[Node]\nName={NODE}\nElectionsDirectory={self.elections_dir}\nRuntimeDirectory={self.runtime_dir}\n'))
        self.client = et.Client(self.sd)
        self.clients.append(self.client)

    def term(self, name='web'):
        return self.client.election(name).get_term()

    def wait_leader(self, leader, name='web'):
        return wait_for(lambda: self.term(name)[1] == leader and self.term(name), 10, f'{leader} to lead {name}')

    def wait_active(self, unit, states=('active',)):
        return self.sd.wait_state(unit, states, timeout=et.T(10))

    def assert_leading(self, name='web', unit='web-app.service'):
        t = self.wait_leader(NODE, name)
        self.wait_active(unit)
        self.wait_active(f'electiond-leader@{name}.target')
        # The flag holds the current term id.
        wait_for(lambda: self.flag_term(name) == self.term(name)[0], 10, 'flag file with the term id')
        return t

    def assert_not_leading(self, name='web', unit='web-app.service'):
        self.wait_active(unit, ('inactive', 'failed'))
        self.wait_active(f'electiond-leader@{name}.target', ('inactive',))
        self.assertIsNone(self.flag_term(name))

    # -- tests --

    def test_leader_unit_follows_leadership(self):
        self.add_leader_unit()
        self.write_conf('web', f'[Election]\nId={NODE}\nUnits=web-app.service\n')
        self.start_daemon()

        t1 = self.assert_leading()
        self.assertEqual(t1[2], [NODE])
        self.assertEqual(self.stops_seen(), [])

        # Another candidate (connection-bound, from this test) is anointed: demotion.
        e = self.client.election('web')
        e.enter('other')
        self.assertEqual(self.term()[1], NODE)   # entering does not move leadership
        self.wait_active('web-app.service')
        t2 = e.anoint('other')
        self.assertEqual(t2[1], 'other')
        self.assertGreater(t2[0], t1[0])
        self.assert_not_leading()
        wait_for(lambda: self.stops_seen(), 10, 'the leader unit to stop')
        self.assertEqual(self.stops_seen(), ['absent'], 'flag file must be gone before the unit stops')

        # And back: a new term, a new flag content.
        t3 = e.anoint(NODE)
        self.assertGreater(t3[0], t2[0])
        self.assert_leading()
        self.assertEqual(self.flag_term(), t3[0])

        # The daemon going away stops what only the leader may run.
        out = self.daemon.stop()
        try:
            self.wait_active('web-app.service', ('inactive', 'failed'))
        except TimeoutError:
            raise AssertionError('leader unit still running after the daemon stopped:\n' + out[-4000:] +
                                 '\nmanager:\n' + self.sd.read_log()[-3000:])
        self.assertIsNone(self.flag_term())
        self.assertEqual(self.stops_seen(), ['absent', 'absent'])

    def test_health_unit_withdraws_candidacy(self):
        self.add_leader_unit()
        self.sd.add_unit('web-health.service', """[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'test ! -e %t/unhealthy'
""")
        self.write_conf('web', f'[Election]\nUnits=web-app.service\nHealthUnit=web-health.service\n')
        self.sd.reload()
        self.sd.start_unit('web-health.service')
        self.wait_active('web-health.service')
        self.start_daemon()

        self.assert_leading()   # Id= defaults to the node name
        e = self.client.election('web')
        e.enter('backup')
        self.assertEqual(self.term()[2], [NODE, 'backup'])

        # Health check fails: node-a leaves, backup leads, our units stop.
        open(os.path.join(self.rt, 'unhealthy'), 'w').close()
        self.sd.call('RestartUnit', 'ss', ('web-health.service', 'replace'))
        self.wait_active('web-health.service', ('failed',))
        t = wait_for(lambda: self.term()[2] == ['backup'] and self.term(), 10, 'node-a to leave')
        self.assertEqual(t[1], 'backup')
        self.assert_not_leading()

        # Healthy again: node-a re-enters (behind backup), and leads once anointed.
        os.unlink(os.path.join(self.rt, 'unhealthy'))
        self.sd.call('RestartUnit', 'ss', ('web-health.service', 'replace'))
        self.wait_active('web-health.service')
        wait_for(lambda: self.term()[2] == ['backup', NODE], 10, 'node-a to re-enter')
        self.assertEqual(self.sd.active_state('web-app.service'), 'inactive')
        e.anoint(NODE)
        self.assert_leading()

    def test_failed_start_is_retried(self):
        # Fails until %t/ready exists.
        self.sd.add_unit('flaky.service', """[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'test -e %t/ready'
""")
        self.write_conf('db', f'[Election]\nUnits=flaky.service\n')
        self.start_daemon()
        self.wait_leader(NODE, 'db')
        self.wait_active('electiond-leader@db.target')
        self.wait_active('flaky.service', ('failed',))
        open(os.path.join(self.rt, 'ready'), 'w').close()
        self.wait_active('flaky.service')
        self.assertIn('Retrying to start the units of election db', self.daemon.output())

    def test_restart_after_crash(self):
        self.add_leader_unit()
        self.write_conf('web', f'[Election]\nUnits=web-app.service\n')
        self.start_daemon()
        t1 = self.assert_leading()
        pid = self.sd.main_pid('web-app.service')

        # kill -9: nobody stops the unit or removes the flag; a stale flag of an election that is
        # no longer configured lies next to it.
        self.daemon.kill()
        with open(self.flag('gone'), 'w') as f:
            f.write('7\n')
        self.assertEqual(self.flag_term(), t1[0])
        self.assertEqual(self.sd.active_state('web-app.service'), 'active')

        # The persistent candidacy survived, so the new run leads again: the unit keeps running
        # (no restart), the flag is rewritten, the stale one is gone.
        self.daemon.start()
        self.client = et.Client(self.sd)
        self.clients.append(self.client)
        self.assert_leading()
        self.assertEqual(self.sd.main_pid('web-app.service'), pid)
        self.assertIsNone(self.flag_term('gone'))
        self.assertEqual(self.stops_seen(), [])

        # Crash again, and come back as a node that must not lead (health unit failed): the
        # units of the previous run are stopped.
        self.daemon.kill()
        self.sd.add_unit('web-health.service', '[Service]\nType=oneshot\nExecStart=/bin/false\n')
        self.sd.reload()
        self.sd.start_unit('web-health.service')
        self.wait_active('web-health.service', ('failed',))
        self.write_conf('web', f'[Election]\nUnits=web-app.service\nHealthUnit=web-health.service\n')
        self.daemon.start()
        self.client = et.Client(self.sd)
        self.clients.append(self.client)
        wait_for(lambda: self.term()[2] == [], 10, 'node-a to withdraw')
        self.assert_not_leading()

    def test_unit_conditions(self):
        """What a unit can check itself: ConditionPathExists= on the flag file, and
        ExecCondition=electionctl is-leader."""
        ctl = os.path.join(os.environ.get('ELECTIOND_BUILD_ROOT', ''), 'client-lib', 'electionctl')
        if not os.access(ctl, os.X_OK):
            self.skipTest('electionctl not built')
        self.write_conf('web', '[Election]\n')
        self.sd.add_unit('by-flag.service', f"""[Unit]
ConditionPathExists={self.flag('web')}
[Service]
ExecStart=/bin/sleep 1000
""")
        self.sd.add_unit('by-ctl.service', f"""[Service]
Environment=DBUS_SYSTEM_BUS_ADDRESS=unix:path=%t/bus
ExecCondition={ctl} is-leader web --id {NODE}
ExecStart=/bin/sleep 1000
""")
        self.start_daemon()
        self.assert_leading(unit='electiond-leader@web.target')
        for unit in ('by-flag.service', 'by-ctl.service'):
            self.sd.start_unit(unit)
            self.wait_active(unit)
            self.sd.stop_unit(unit)
            self.wait_active(unit, ('inactive',))

        e = self.client.election('web')
        e.enter('other')
        e.anoint('other')
        self.assert_not_leading(unit='electiond-leader@web.target')
        # Neither starts now: the condition fails (not the unit).
        for unit in ('by-flag.service', 'by-ctl.service'):
            self.sd.wait_job(self.sd.start_unit(unit), timeout=et.T(10))
            self.assertEqual(self.sd.active_state(unit), 'inactive')
        self.assertFalse(bool(self.sd.unit_prop('by-flag.service', 'ConditionResult')))
        # (inactive after the job, where a passing condition would have left sleep running)
        self.assertIn("by-ctl.service: Skipped due to 'exec-condition'", self.sd.read_log())

    def test_bad_file_skipped(self):
        self.add_leader_unit()
        self.write_conf('web', f'[Election]\nUnits=web-app.service\n')
        self.write_conf('broken', '[Election]\nUnits=no-such-suffix\n')
        self.write_conf('typo', '[Election]\nUnit=web-app.service\n')
        self.start_daemon()
        self.assert_leading()
        out = self.daemon.output()
        self.assertIn('broken.conf', out)
        self.assertIn('typo.conf', out)
        self.assertIn('unknown key Unit=', out)
        # Neither bad file made this node a candidate anywhere.
        names = [str(n) for n, *_ in self.client.list_elections()]
        self.assertEqual(names, ['web'])


if __name__ == '__main__':
    reason = sdmanager.skip_reason()
    if reason:
        print('SKIP:', reason)
        sys.exit(sdmanager.SKIP)
    if not daemon_wires_units():
        print('SKIP: this electiond does not call the units module yet (manager wiring pending)')
        sys.exit(sdmanager.SKIP)
    unittest.main(verbosity=2)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The shipped electiond.service, hardening included, run by a real service manager (the per-test
`systemd --user` of sdmanager.py, as root): READY=1 arrives (Type=notify) with a STATUS= line,
the watchdog is pinged, the sandbox is really applied (no new privileges, seccomp, no
capabilities), the daemon serves and writes its state under ProtectSystem=strict, and SIGTERM
ends it cleanly. Test-only differences, in a drop-in or substituted: no User=/Group= (the
electiond user is not created on the test machine), ExecStart= points at the built binary with the
unit's own StateDirectory, and the bus and notify sockets (under /tmp here, hidden by PrivateTmp=)
are bound in."""

import os
import re
import shutil
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'lib'))

import sdmanager  # noqa: E402
import electiond_test as et  # noqa: E402

BUILD = os.environ.get('ELECTIOND_BUILD_ROOT', '')
ELECTIOND = os.environ.get('ELECTIOND')
UNIT = 'electiond.service'


def proc_status(pid):
    with open(f'/proc/{pid}/status') as f:
        return dict(line.rstrip('\n').split(':\t', 1) for line in f if ':\t' in line)


class ServiceTest(unittest.TestCase):
    def setUp(self):
        self.sd = sdmanager.UserManager()
        self.addCleanup(self.sd.stop)
        self.sd.start()
        with open(os.path.join(BUILD, 'systemd', UNIT)) as f:
            text = f.read()
        self.assertIn('\nUser=electiond\n', text)
        text = re.sub(r'^(User|Group)=.*\n', '', text, flags=re.M)
        text = re.sub(r'^(Requires|After)=dbus\.socket\n', '', text, flags=re.M)
        # a copy in the manager's runtime dir: the build dir may be under /tmp or /home (a CI
        # clone), which PrivateTmp=/ProtectHome= hide from the service (203/EXEC)
        os.mkdir(os.path.join(self.sd.dir, 'bin'))
        shutil.copy(ELECTIOND, os.path.join(self.sd.dir, 'bin'))
        text = re.sub(r'^ExecStart=.*$',
                      'ExecStart=%t/bin/electiond --state-dir=${STATE_DIRECTORY} --config=%t/electiond.conf',
                      text, flags=re.M)
        self.sd.add_unit(UNIT, text)
        self.sd.add_dropin(UNIT, 'test.conf', '[Service]\n'
                           'Environment=DBUS_SYSTEM_BUS_ADDRESS=unix:path=%t/bus\n'
                           'BindPaths=%t/bus %t/systemd/notify\n'
                           'BindReadOnlyPaths=%t/electiond.conf %t/bin\n')
        with open(os.path.join(self.sd.dir, 'electiond.conf'), 'w') as f:
            f.write('[Node]\nName=svc-node\n')
        self.sd.reload()

    def svc(self, prop):
        return self.sd.unit_prop(UNIT, prop, iface=sdmanager.SD_SERVICE)

    def test_hardened_service(self):
        self.sd.start_unit(UNIT)
        state = self.sd.wait_state(UNIT, ('active', 'failed'), timeout=et.T(15))
        self.assertEqual(state, 'active', self.sd.read_log()[-3000:])   # READY=1 was received
        pid = int(self.svc('MainPID'))
        self.assertGreater(pid, 0)
        self.assertEqual(self.sd.owner_pid(), pid)
        status = str(self.svc('StatusText'))
        self.assertRegex(status, r'svc-node.*(leader|quorate)', status)

        # The sandbox is in force.
        st = proc_status(pid)
        self.assertEqual(st['NoNewPrivs'], '1')
        self.assertEqual(st['Seccomp'], '2')
        self.assertEqual(int(st['CapEff'], 16), 0)
        self.assertEqual(int(st['CapBnd'], 16), 0)
        self.assertNotEqual(os.readlink(f'/proc/{pid}/ns/mnt'), os.readlink(f'/proc/{self.sd.manager_pid}/ns/mnt'))

        # It serves and persists (Raft log in StateDirectory= under ProtectSystem=strict).
        client = et.Client(self.sd)
        self.addCleanup(client.close)
        t = client.election('svc').enter('svc-node', 1)
        self.assertEqual(t, (1, 'svc-node', ['svc-node']))

        # Watchdog pings keep arriving (WatchdogSec=3s: the daemon pings at least every 1.5 s).
        first = int(self.svc('WatchdogTimestampMonotonic'))
        self.assertGreater(first, 0, 'no WATCHDOG=1 received')
        deadline = time.monotonic() + et.T(5)
        while int(self.svc('WatchdogTimestampMonotonic')) == first:
            self.assertLess(time.monotonic(), deadline, 'watchdog pings stopped')
            time.sleep(0.05)
        self.assertEqual(self.sd.active_state(UNIT), 'active')
        self.assertEqual(int(self.svc('NRestarts')), 0)

        # SIGTERM: a clean exit, not a failure.
        self.sd.stop_unit(UNIT)
        self.assertEqual(self.sd.wait_state(UNIT, ('inactive', 'failed'), timeout=et.T(15)), 'inactive')
        self.assertEqual(str(self.sd.unit_prop(UNIT, 'Result', iface=sdmanager.SD_SERVICE)), 'success')

    def test_reload(self):
        """`systemctl reload`: ExecReload= signals the daemon (allowed by the sandbox), the
        daemon's RELOADING=1 ... READY=1 bring the unit back to active with the same process, a
        new elections.d file enters, a refused key keeps its value, nothing else changes."""
        edir = os.path.join(self.sd.dir, 'elections.d')
        os.mkdir(edir)
        self.sd.add_dropin(UNIT, 'elections.conf', '[Service]\nBindReadOnlyPaths=%t/elections.d\n')
        conf = os.path.join(self.sd.dir, 'electiond.conf')
        with open(conf, 'w') as f:
            f.write(f'[Node]\nName=svc-node\nElectionsDirectory={edir}\n')
        self.sd.reload()
        self.sd.start_unit(UNIT)
        self.assertEqual(self.sd.wait_state(UNIT, ('active', 'failed'), timeout=et.T(15)), 'active',
                         self.sd.read_log()[-3000:])
        pid = self.sd.main_pid(UNIT)
        client = et.Client(self.sd)
        self.addCleanup(client.close)
        before = client.election('svc').enter('svc-node', 1)

        with open(os.path.join(edir, 'web.conf'), 'w') as f:
            f.write('[Election]\nId=web-1\n')
        with open(conf, 'w') as f:   # the same inode: the bind mount shows the new text
            f.write(f'[Node]\nName=renamed\nElectionsDirectory={edir}\nCommitTimeoutSec=2\n')
        job = str(self.sd.call('ReloadUnit', 'ss', (UNIT, 'replace')))
        self.sd.wait_job(job, timeout=et.T(15))
        et.wait_until(lambda: 'web' in [n for (n, _, _, _) in client.list_elections()] and
                      'web-1' in client.election('web').get_term()[2], 10, 'web-1 to enter after the reload')
        self.assertEqual(self.sd.wait_state(UNIT, ('active', 'failed', 'reloading'), timeout=et.T(5)), 'active')
        self.assertEqual(self.sd.main_pid(UNIT), pid)
        self.assertEqual(int(self.svc('NRestarts')), 0)
        self.assertEqual(str(client.manager_get('NodeName')), 'svc-node')   # refused: restart to change
        self.assertEqual(client.election('svc').get_term(), before)

        self.sd.stop_unit(UNIT)
        self.assertEqual(self.sd.wait_state(UNIT, ('inactive', 'failed'), timeout=et.T(15)), 'inactive')
        self.assertEqual(str(self.sd.unit_prop(UNIT, 'Result', iface=sdmanager.SD_SERVICE)), 'success')


if __name__ == '__main__':
    reason = sdmanager.skip_reason()
    if reason:
        print('SKIP:', reason)
        sys.exit(sdmanager.SKIP)
    if not ELECTIOND or not BUILD:
        print('SKIP: run through meson test')
        sys.exit(sdmanager.SKIP)
    unittest.main(verbosity=2)

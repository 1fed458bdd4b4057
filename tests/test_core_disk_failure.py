#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A failing disk under the state directory (the nemesis's LD_PRELOAD shim, fsync/write → EIO):
the daemon refuses the change it cannot store, then stops with status 1 and a clear error — no
crash (libraft crashed in the next apply, or hung in its close) — and a restart on the same state
directory, with a good disk, still has everything it acknowledged before."""

import os
import signal
import time
import unittest

import dbus

import electiond_test as et

SHIM = os.path.join(os.environ.get('ELECTIOND_BUILD_ROOT', 'build'), 'tests', 'edh-faultfs.so')


class DiskFailure(unittest.TestCase):

    def setUp(self):
        if not os.path.exists(SHIM):
            self.fail('the fault shim is not built: %s' % SHIM)
        self.bus = et.PrivateBus()
        self.addCleanup(self.bus.stop)
        self.ctl = os.path.join(et.tempfile.mkdtemp(prefix='electiond-disk-'), 'ctl')

    def test_failing_disk_stops_cleanly_and_keeps_state(self):
        d = et.Daemon(self.bus, start=False)
        self.addCleanup(d.cleanup)
        # ASan's runtime wants to come first; the shim only wraps libc calls
        d.extra_env = {'LD_PRELOAD': SHIM, 'EDH_FAULTFS_DIR': d.state_dir, 'EDH_FAULTFS_CTL': self.ctl,
                       'ASAN_OPTIONS': 'detect_leaks=0:verify_asan_link_order=0'}
        d.start()
        c = et.Client(self.bus)
        e = c.election('disk')
        self.assertEqual(e.enter('a', 1)[2], ['a'])
        self.assertEqual(e.enter('b', 1)[2], ['a', 'b'])

        with open(self.ctl, 'w') as f:
            f.write('fail\n')
        with self.assertRaises(dbus.exceptions.DBusException):
            e.enter('c', 1)
        # a second call must not crash it either: it is gone (or going) with status 1
        try:
            e.enter('d', 1)
        except dbus.exceptions.DBusException:
            pass
        et.wait_until(lambda: d.proc.poll() is not None, et.T(15), 'electiond to stop')
        out = d.output()
        self.assertEqual(d.proc.returncode, 1, out[-3000:])
        self.assertNotEqual(d.proc.returncode, -signal.SIGSEGV)
        self.assertIn('Writing the Raft log', out)
        c.close()

        os.unlink(self.ctl)
        d.extra_env = {}
        d.start()
        c = et.Client(self.bus)
        t = c.election('disk').get_term()
        self.assertEqual(list(t[2]), ['a', 'b'])
        c.close()

    def test_failing_disk_at_start_stops(self):
        """A disk that fails before the start-up entry is written: libraft never reports that
        append, and the daemon used to wait for it forever, never serving and never exiting.
        It must stop with status 1 and say why (STARTUP_COMMIT_TIMEOUT_USEC, 15 s)."""
        import subprocess
        d = et.Daemon(self.bus, start=False)
        self.addCleanup(d.cleanup)
        d.start()
        c = et.Client(self.bus)
        self.assertEqual(c.election('disk').enter('a', 1)[2], ['a'])
        c.close()
        d.stop()
        with open(self.ctl, 'w') as f:
            f.write('fail\n')
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address, LD_PRELOAD=SHIM,
                   EDH_FAULTFS_DIR=d.state_dir, EDH_FAULTFS_CTL=self.ctl,
                   ASAN_OPTIONS='detect_leaks=0:verify_asan_link_order=0')
        log = os.path.join(d.tmp, 'output.failing')
        with open(log, 'w') as out:
            p = subprocess.Popen(d.argv(), env=env, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        et.wait_until(lambda: p.poll() is not None, et.T(30), 'electiond to give up on its disk')
        with open(log, errors='replace') as f:
            text = f.read()
        self.assertEqual(p.returncode, 1, text[-3000:])
        self.assertIn('was not written to the Raft log', text)
        self.assertIsNone(self.bus.owner_pid())


if __name__ == '__main__':
    unittest.main(verbosity=2)

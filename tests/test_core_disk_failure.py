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


if __name__ == '__main__':
    unittest.main(verbosity=2)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""State restored from a Raft snapshot plus log after kill -9 (thousands of commits, so it runs
on its own with a longer timeout)."""

import glob
import os
import pwd
import unittest

import electiond_test as et

OTHER_UID = pwd.getpwnam('daemon').pw_uid


class Snapshot(et.DaemonTestCase):

    @unittest.skipIf(et.timeout_scale() > 1, 'thousands of commits: too slow under valgrind')
    def test_state_from_snapshot_after_kill9(self):
        # Enough commits for the engine to take a snapshot (every 4096 entries), then kill -9:
        # the state comes back from snapshot + log, owners and uids included.
        e = self.client.election(self.fresh_name('snap'))
        churn = self.client.election(self.fresh_name('churn'))
        e.enter('keep', 1)
        e.enter('conn', 0)
        et.run_as(self.bus, [('enter', e.name, 'np', 1)], uid=et.NOBODY)
        self.assertEqual(e.anoint('np'), (2, 'np', ['np', 'keep', 'conn']))
        # one call in flight at a time: one Raft entry each
        done = [0]

        def step(*_):
            done[0] += 1
            if done[0] < 4400:
                m, sig, args = (('Enter', 'st', ('c', et.dbus.UInt64(1))) if done[0] % 2 else ('Leave', 's', ('c',)))
                churn.call_async(m, sig, args, step, lambda exc: self.fail(str(exc)))
        step()
        et.wait_until(lambda: done[0] >= 4400, 90, 'the churn')
        snaps = glob.glob(os.path.join(self.daemon.state_dir, '**', 'snapshot-*'), recursive=True)
        self.assertTrue(snaps, 'no snapshot was taken: the test did not exercise snapshot restore')
        churn_term = churn.get_term()
        self.daemon.restart(hard=True)
        et.wait_until(lambda: 'conn' not in e.get_term()[2], 10, 'conn dropped')
        self.assertEqual(e.get_term(), (2, 'np', ['np', 'keep']))
        self.assertEqual(churn.get_term(), churn_term)
        if os.geteuid() == 0:
            # nobody's candidacy is still nobody's: another uid may not take it, nobody may leave it
            self.assertEqual(et.run_as(self.bus, [('leave', e.name, 'np')], uid=OTHER_UID), [('error', et.ERROR_ACCESS_DENIED)])
            self.assertEqual(et.run_as(self.bus, [('leave', e.name, 'np')], uid=et.NOBODY), [('ok', (3, 'keep', ['keep']))])
        else:
            e.leave('np')
        self.assertEqual(e.leave('keep'), (3, '', []))



if __name__ == '__main__':
    et.main()

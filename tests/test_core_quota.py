#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 14 §1: persistent candidacies per non-root uid are limited ([Node] MaxPersistentPerUser=,
error org.electiond.Election1.Error.QuotaExceeded; polkit org.electiond.Election1.enter-persistent
allows more; root is never limited), and an election nobody stands in is removed after
[Node] RemoveEmptyElectionsSec= (its object goes, ListElections no longer has it, and a new Enter
starts above every term id it had), unless it is configured in elections.d. Single node on a
private bus; clients run as other uids through setpriv (the tests run as root)."""

import os
import pwd
import signal
import subprocess
import unittest

import dbus

import electiond_test as et
from electiond_test import NOBODY

QUOTA_EXCEEDED = 'org.electiond.Election1.Error.QuotaExceeded'
ENTER_PERSISTENT = 'org.electiond.Election1.enter-persistent'
OTHER_UID = pwd.getpwnam('daemon').pw_uid

ROOT_ONLY = unittest.skipUnless(os.geteuid() == 0, 'needs root to run clients as other uids')


def listed(client):
    return {n: t for (n, t, _, _) in client.list_elections()}


@ROOT_ONLY
class Quota(et.DaemonTestCase):
    """MaxPersistentPerUser=2, no polkit on the bus (so nothing beyond the quota)."""
    config_extra = 'MaxPersistentPerUser=2\nRemoveEmptyElectionsSec=0\n'

    def test_nonroot_persistent_enters_stop_at_the_quota(self):
        a, b, c = self.fresh_name('a'), self.fresh_name('b'), self.fresh_name('c')
        p = et.ClientProcess(self.bus, uid=NOBODY)
        try:
            self.assertEqual(p.call('enter', a, 'n1', 1), ('ok', (1, 'n1', ['n1'])))
            self.assertEqual(p.call('enter', a, 'n2', 1), ('ok', (1, 'n1', ['n1', 'n2'])))
            # the third, in any election, is refused, and creates nothing
            self.assertEqual(p.call('enter', b, 'n3', 1), ('error', QUOTA_EXCEEDED))
            self.assertEqual(p.call('enter', a, 'n3', 1), ('error', QUOTA_EXCEEDED))
            self.assertNotIn(b, listed(self.client))
            self.assertEqual(self.client.election(a).get_term(), (1, 'n1', ['n1', 'n2']))
            # re-binding one of its own is no new one; connection-bound ones are not limited
            self.assertEqual(p.call('enter', a, 'n1', 1), ('ok', (1, 'n1', ['n1', 'n2'])))
            self.assertEqual(p.call('enter', b, 'bound', 0), ('ok', (1, 'bound', ['bound'])))
            # ... but making it persistent is one more
            self.assertEqual(p.call('enter', b, 'bound', 1), ('error', QUOTA_EXCEEDED))
            # the quota is per uid, and root has none
            self.assertEqual(et.run_as(self.bus, [('enter', c, 'd1', 1)], uid=OTHER_UID),
                             [('ok', (1, 'd1', ['d1']))])
            e = self.client.election(c)
            for i in range(4):
                e.enter(f'root{i}', 1)
            self.assertEqual(e.get_term()[2], ['d1', 'root0', 'root1', 'root2', 'root3'])
            # leaving frees a slot, for a new connection of the same uid too
            self.assertEqual(p.call('leave', a, 'n2'), ('ok', (1, 'n1', ['n1'])))
        finally:
            p.close()
        self.assertEqual(et.run_as(self.bus, [('enter', c, 'n4', 1), ('enter', c, 'n5', 1)], uid=NOBODY),
                         [('ok', (1, 'd1', ['d1', 'root0', 'root1', 'root2', 'root3', 'n4'])),
                          ('error', QUOTA_EXCEEDED)])
        for (name, ids) in ((a, ['n1']), (c, ['d1', 'root0', 'root1', 'root2', 'root3', 'n4'])):
            for i in ids:
                self.client.election(name).leave(i)


    def test_quota_counts_after_a_restart(self):
        # the count is rebuilt from the durable state: persistent candidacies survive restarts
        n = self.fresh_name()
        self.assertEqual([x[0] for x in et.run_as(self.bus, [('enter', n, 'r1', 1), ('enter', n, 'r2', 1)],
                                                  uid=OTHER_UID)], ['ok', 'ok'])
        self.daemon.restart()
        self.client.close()
        type(self).client = et.Client(self.bus)
        self.assertEqual(et.run_as(self.bus, [('enter', n, 'r3', 1)], uid=OTHER_UID), [('error', QUOTA_EXCEEDED)])
        self.assertEqual(et.run_as(self.bus, [('leave', n, 'r1'), ('enter', n, 'r3', 1)], uid=OTHER_UID),
                         [('ok', (2, 'r2', ['r2'])), ('ok', (2, 'r2', ['r2', 'r3']))])
        for i in ('r2', 'r3'):
            self.client.election(n).leave(i)


@ROOT_ONLY
class QuotaWithPolkit(et.DaemonTestCase):
    """Beyond the quota, polkit enter-persistent decides (manage does not count)."""
    config_extra = 'MaxPersistentPerUser=1\nRemoveEmptyElectionsSec=0\n'
    with_polkit = True

    def test_polkit_allows_more(self):
        n = self.fresh_name()
        self.polkit.set_allowed([et.POLKIT_ACTION])
        p = et.ClientProcess(self.bus, uid=NOBODY)
        try:
            self.assertEqual(p.call('enter', n, 'p1', 1), ('ok', (1, 'p1', ['p1'])))
            self.assertEqual(p.call('enter', n, 'p2', 1), ('error', QUOTA_EXCEEDED))
            self.polkit.set_allowed([ENTER_PERSISTENT])
            self.assertEqual(p.call('enter', n, 'p2', 1), ('ok', (1, 'p1', ['p1', 'p2'])))
            self.assertEqual(p.call('enter', n, 'p3', 1), ('ok', (1, 'p1', ['p1', 'p2', 'p3'])))
            # asked each time, never cached
            self.polkit.set_allowed([])
            self.assertEqual(p.call('enter', n, 'p4', 1), ('error', QUOTA_EXCEEDED))
        finally:
            p.close()
        for i in ('p1', 'p2', 'p3'):
            self.client.election(n).leave(i)


@ROOT_ONLY
class QuotaMessage(et.DaemonTestCase):
    config_extra = 'MaxPersistentPerUser=1\nRemoveEmptyElectionsSec=0\n'

    def test_message(self):
        # the text of the refusal, read by a client of that uid
        n = self.fresh_name()
        script = ('import dbus,sys\n'
                  'c = dbus.bus.BusConnection(sys.argv[1])\n'
                  'm = "org.electiond.Election1"\n'
                  'p = c.call_blocking(m, "/org/electiond/Election1", m + ".Manager", "GetElection", "s", (sys.argv[2],))\n'
                  'c.call_blocking(m, p, m + ".Election", "Enter", "st", ("q1", 1))\n'
                  'try:\n'
                  '    c.call_blocking(m, p, m + ".Election", "Enter", "st", ("q2", 1))\n'
                  'except dbus.exceptions.DBusException as e:\n'
                  '    print(e.get_dbus_name()); print(e.get_dbus_message())\n')
        out = subprocess.run(['setpriv', f'--reuid={NOBODY}', f'--regid={NOBODY}', '--clear-groups',
                              '/usr/bin/python3', '-c', script, self.bus.address, n],
                             capture_output=True, text=True, timeout=et.T(30))
        self.assertEqual(out.returncode, 0, out.stderr)
        name, message = out.stdout.splitlines()[:2]
        self.assertEqual(name, QUOTA_EXCEEDED)
        self.assertIn('MaxPersistentPerUser=1', message)
        self.assertIn(ENTER_PERSISTENT, message)
        self.assertIn(str(NOBODY), message)
        self.client.election(n).leave('q1')


class Collect(et.DaemonTestCase):
    """RemoveEmptyElectionsSec=0.3."""
    config_extra = 'RemoveEmptyElectionsSec=0.3\n'

    def setUp(self):
        super().setUp()
        self.removed = []
        self.rec_client = et.Client(self.bus)
        self.rec_client.conn.add_signal_receiver(
            lambda path, ifaces: self.removed.append((str(path), [str(i) for i in ifaces])),
            signal_name='InterfacesRemoved', dbus_interface=et.OBJECT_MANAGER_IFACE, path=et.MANAGER_PATH)
        self.rec_client.ping()
        self.addCleanup(self.rec_client.close)

    def gone(self, name):
        et.pump()
        return name not in listed(self.client)

    def test_empty_election_is_removed_and_comes_back_higher(self):
        n, busy = self.fresh_name('empty'), self.fresh_name('busy')
        e = self.client.election(n)
        self.assertEqual(e.enter('a', 0), (1, 'a', ['a']))
        self.assertEqual(e.enter('b', 0), (1, 'a', ['a', 'b']))
        self.assertEqual(e.anoint('b'), (2, 'b', ['b', 'a']))
        self.assertEqual(e.leave('b'), (3, 'a', ['a']))
        self.client.election(busy).enter('stay', 1)
        self.assertEqual(e.leave('a'), (3, '', []))
        self.assertIn(n, listed(self.client))
        et.wait_until(lambda: self.gone(n), 10, f'{n} to be removed')
        et.wait_until(lambda: (e.path, [et.ELECTION_IFACE]) in
                      [(p, [i for i in ifs if i == et.ELECTION_IFACE]) for (p, ifs) in self.removed],
                      5, 'InterfacesRemoved for it')
        self.assertNotIn(e.path, [str(p) for p in self.client.managed_objects()])
        self.assertNotIn(e.path, self.client.introspect(et.MANAGER_PATH + '/election'))
        # an election someone stands in stays
        self.assertIn(busy, listed(self.client))
        self.assertIn('is removed', self.daemon.output())
        # the path still answers, as for any election that does not exist
        self.assertEqual(e.get_term(), (0, '', []))
        # entered again: a new term id above every one it had
        t = e.enter('c', 0)
        self.assertEqual(t[1:], ('c', ['c']))
        self.assertGreater(t[0], 3)
        self.assertIn(n, listed(self.client))
        self.assertIn(e.path, [str(p) for p in self.client.managed_objects()])
        e.leave('c')
        et.wait_until(lambda: self.gone(n), 10, f'{n} to be removed again')
        # and once more: still higher
        self.assertGreater(e.enter('d', 0)[0], t[0])
        e.leave('d')
        self.client.election(busy).leave('stay')

    def test_left_connection_empties_and_is_removed(self):
        n = self.fresh_name()
        p = et.ClientProcess(self.bus)
        # (a new election starts above the floor that earlier removals raised: not at 1)
        r = p.call('enter', n, 'gone-soon', 0)
        self.assertEqual((r[0], r[1][1:]), ('ok', ('gone-soon', ['gone-soon'])))
        self.assertIn(n, listed(self.client))
        p.close()
        et.wait_until(lambda: self.gone(n), 10, f'{n} to be removed after its connection left')

    def test_term_floor_survives_a_restart(self):
        n = self.fresh_name()
        e = self.client.election(n)
        for i in range(3):
            e.enter(f'x{i}', 0)
            e.leave(f'x{i}')
        last = e.get_term()[0]
        et.wait_until(lambda: self.gone(n), 10, f'{n} to be removed')
        self.daemon.restart()
        self.client.close()
        type(self).client = et.Client(self.bus)
        e = self.client.election(n)
        et.wait_until(lambda: self._enter_ok(e), 10, 'the restarted daemon to take an Enter')
        self.assertGreater(e.get_term()[0], last)
        e.leave('y')

    def _enter_ok(self, e):
        try:
            e.enter('y', 0)
            return True
        except dbus.exceptions.DBusException:
            return False


class CollectConfigured(unittest.TestCase):
    """An election configured in elections.d is not removed while configured, even when empty."""

    def setUp(self):
        self.bus = et.PrivateBus()
        self.addCleanup(self.bus.stop)
        self.daemon = et.Daemon(self.bus, start=False)
        self.addCleanup(self.daemon.cleanup)
        self.edir = os.path.join(self.daemon.tmp, 'elections.d')
        os.makedirs(self.edir)
        with open(self.daemon.config_path, 'w') as f:
            f.write(f'[Node]\nName=test-node\nElectionsDirectory={self.edir}\n'
                    f'RuntimeDirectory={os.path.join(self.daemon.tmp, "run")}\nRemoveEmptyElectionsSec=0.3\n')
        with open(os.path.join(self.edir, 'cfg.conf'), 'w') as f:
            f.write('[Election]\nId=cfg-1\n')
        self.daemon.start()
        self.client = et.Client(self.bus)
        self.addCleanup(self.client.close)

    def test_configured_election_stays_until_unconfigured(self):
        cfg = self.client.election('cfg')
        et.wait_until(lambda: 'cfg-1' in cfg.get_term()[2], 10, 'the configured candidacy')
        cfg.evict('cfg-1')                                # empty, but still configured
        self.assertEqual(cfg.get_term()[2], [])
        witness = self.client.election('witness')
        witness.enter('w', 0)
        witness.leave('w')
        et.wait_until(lambda: 'witness' not in listed(self.client), 10, 'the unconfigured one to go')
        self.assertIn('cfg', listed(self.client))
        os.unlink(os.path.join(self.edir, 'cfg.conf'))
        os.kill(self.daemon.pid, signal.SIGHUP)
        et.wait_until(lambda: 'cfg' not in listed(self.client), 10, 'cfg to go once unconfigured')


if __name__ == '__main__':
    et.main()

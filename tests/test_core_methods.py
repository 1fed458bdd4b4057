#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every Manager/Election method and property, the exact election rules, and the argument errors."""

import dbus

import electiond_test as et
from electiond_test import (ERROR_INVALID_ARGS, ERROR_INVALID_ID, ERROR_INVALID_NAME,
                            ERROR_NOT_CANDIDATE, ERROR_LIMIT_EXCEEDED, ELECTION_IFACE)

BAD_STRINGS = ['\x01', 'a\nb', 'tab\there', 'x' * 256, '\x7f', 'c1\u0085']


class Methods(et.DaemonTestCase):
    node_name = 'node-α'

    def fresh(self):
        return self.client.election(self.fresh_name())

    # --- Manager ---

    def test_manager_properties(self):
        props = self.client.manager_get_all()
        self.assertEqual(str(props['NodeName']), self.node_name)
        self.assertEqual(str(self.client.manager_get('NodeName')), self.node_name)
        self.assertIsInstance(props['Version'], dbus.String)
        self.assertRegex(str(props['Version']), r'^\d+\.\d+')
        self.assertEqual(str(props['ClusterName']), '')
        self.assertEqual(bool(props['Quorate']), True)
        self.assertEqual(props['Members'].signature, '(ssss)')

    def test_watch_lease_standalone_never_ends(self):
        # standalone: the lease never ends (UINT64_MAX), so no LeaseRenewed is ever due
        got = []
        watcher = et.Client(self.bus)
        self.addCleanup(watcher.close)
        watcher.conn.add_signal_receiver(lambda t: got.append(int(t)), signal_name='LeaseRenewed',
                                         dbus_interface=et.MANAGER_IFACE, path=et.MANAGER_PATH)
        expiry = watcher.call(et.MANAGER_PATH, et.MANAGER_IFACE, 'WatchLease')
        self.assertIsInstance(expiry, dbus.UInt64)
        self.assertEqual(int(expiry), 2**64 - 1)
        # a second call from the same connection answers the same; changes elsewhere move nothing
        self.assertEqual(int(watcher.call(et.MANAGER_PATH, et.MANAGER_IFACE, 'WatchLease')), 2**64 - 1)
        e = self.fresh()
        e.enter('lw', 0)
        e.leave('lw')
        watcher.ping()
        et.pump()
        self.assertEqual(got, [])

    def test_get_election_paths(self):
        for name in ['simple', 'a-b.c', 'ünïcode', 'with space', '_under', 'é' * 127 + 'a', 'x' * 255]:
            with self.subTest(name=name):
                self.assertEqual(self.client.get_election(name), et.election_path(name))

    def test_name_round_trip(self):
        for name in ['a/b', 'ünï', '_2f', '.', ' ', 'x' * 255, 'Ünï/_x2d']:
            with self.subTest(name=name):
                e = self.client.election(name)
                self.assertEqual(e.enter('rt', 0), (1, 'rt', ['rt']))
                self.assertEqual(str(e.get('Name')), name)
                listed = {n: p for (n, _, _, p) in self.client.list_elections()}
                self.assertEqual(listed.get(name), e.path)
                e.leave('rt')

    def test_get_election_invalid_name(self):
        for name in [''] + BAD_STRINGS:
            with self.subTest(name=name):
                self.assertDBusError(ERROR_INVALID_NAME, self.client.get_election, name)

    def test_invalid_name_object_cannot_be_used(self):
        # A hand-made path that decodes to a forbidden name must not create an election.
        for name in ['x' * 256, 'a\nb', '']:
            with self.subTest(name=name):
                e = et.Election(self.client, name, path=et.election_path(name))
                with self.assertRaises(dbus.exceptions.DBusException) as cm:
                    e.enter('a')
                self.assertIn(cm.exception.get_dbus_name(),
                              (ERROR_INVALID_NAME, 'org.freedesktop.DBus.Error.UnknownObject',
                               'org.freedesktop.DBus.Error.UnknownMethod',
                               'org.freedesktop.DBus.Error.UnknownInterface'))
        self.assertNotIn('x' * 256, [n for (n, _, _, _) in self.client.list_elections()])

    def test_list_elections(self):
        untouched = self.fresh_name('untouched')
        self.client.get_election(untouched)
        e = self.fresh()
        e.enter('a', 1)
        e2 = self.fresh()
        e2.enter('b', 0)
        e2.leave('b')
        listed = {n: (t, l, p) for (n, t, l, p) in self.client.list_elections()}
        self.assertEqual(listed[e.name], (1, 'a', e.path))
        # an election with a term stays listed after its last candidate left
        self.assertEqual(listed[e2.name], (1, '', e2.path))
        self.assertNotIn(untouched, listed)
        e.leave('a')

    def test_managed_objects(self):
        e = self.fresh()
        e.enter('m1', 0)
        e.enter('m2', 0)
        objs = self.client.managed_objects()
        self.assertIn(e.path, objs)
        props = objs[e.path][ELECTION_IFACE]
        self.assertEqual(str(props['Name']), e.name)
        self.assertEqual(int(props['TermId']), 1)
        self.assertEqual(str(props['Leader']), 'm1')
        self.assertEqual([str(c) for c in props['Candidates']], ['m1', 'm2'])
        self.assertEqual(et.term_tuple(props['Term']), (1, 'm1', ['m1', 'm2']))
        self.assertTrue(bool(props['LocalLeader']))
        for path in objs:
            self.assertTrue(path.startswith(et.ELECTION_PREFIX + '/'), path)
        self.assertNotIn(self.client.get_election(self.fresh_name('untouched')), objs)

    def test_interfaces_added_once_per_new_election(self):
        added = []
        conn = self.client.conn
        match = conn.add_signal_receiver(lambda path, ifaces: added.append((str(path), dict(ifaces))),
                                         signal_name='InterfacesAdded', dbus_interface=et.OBJECT_MANAGER_IFACE,
                                         path=et.MANAGER_PATH)
        try:
            e = self.fresh()
            e.enter('ia', 0)
            e.enter('ib', 0)
            e.leave('ia')
            self.client.ping()
            et.pump()
            mine = [a for a in added if a[0] == e.path]
            self.assertEqual(len(mine), 1, added)
            props = mine[0][1][ELECTION_IFACE]
            self.assertEqual(str(props['Name']), e.name)
            self.assertEqual(et.term_tuple(props['Term']), (1, 'ia', ['ia']))
            e.leave('ib')
        finally:
            match.remove()

    # --- Election properties ---

    def test_properties_of_unknown_election(self):
        e = self.fresh()
        self.assertEqual(e.get_term(), (0, '', []))
        props = e.get_all()
        self.assertEqual(str(props['Name']), e.name)
        self.assertEqual(et.term_tuple(props['Term']), (0, '', []))
        self.assertEqual(int(props['TermId']), 0)
        self.assertEqual(str(props['Leader']), '')
        self.assertEqual(list(props['Candidates']), [])
        self.assertEqual(bool(props['LocalLeader']), False)
        self.assertEqual(props['Candidates'].signature, 's')

    def test_properties_follow_state(self):
        e = self.fresh()
        e.enter('p1', 0)
        e.enter('p2', 0)
        self.assertEqual(str(e.get('Name')), e.name)
        self.assertEqual(et.term_tuple(e.get('Term')), (1, 'p1', ['p1', 'p2']))
        self.assertEqual(int(e.get('TermId')), 1)
        self.assertEqual(str(e.get('Leader')), 'p1')
        self.assertEqual([str(c) for c in e.get('Candidates')], ['p1', 'p2'])
        self.assertTrue(bool(e.get('LocalLeader')))
        e.leave('p1')
        e.leave('p2')
        self.assertEqual(et.term_tuple(e.get('Term')), (2, '', []))
        self.assertFalse(bool(e.get('LocalLeader')))

    # --- the rules ---

    def test_enter(self):
        e = self.fresh()
        self.assertEqual(e.enter('a'), (1, 'a', ['a']))
        self.assertEqual(e.enter('b'), (1, 'a', ['a', 'b']))
        self.assertEqual(e.enter('c', 1), (1, 'a', ['a', 'b', 'c']))
        # re-Enter: no reorder, no term change
        self.assertEqual(e.enter('c'), (1, 'a', ['a', 'b', 'c']))
        self.assertEqual(e.enter('a', 1), (1, 'a', ['a', 'b', 'c']))
        self.assertEqual(e.get_term(), (1, 'a', ['a', 'b', 'c']))
        for c in 'abc':
            e.leave(c)

    def test_enter_default_id_is_node_name(self):
        e = self.fresh()
        self.assertEqual(e.enter(''), (1, self.node_name, [self.node_name]))
        self.assertEqual(e.enter(self.node_name), (1, self.node_name, [self.node_name]))
        self.assertEqual(e.enter('other'), (1, self.node_name, [self.node_name, 'other']))
        self.assertEqual(e.leave(''), (2, 'other', ['other']))
        self.assertEqual(e.enter(''), (2, 'other', ['other', self.node_name]))
        self.assertEqual(e.anoint(''), (3, self.node_name, [self.node_name, 'other']))
        self.assertEqual(e.promote('other'), (4, 'other', ['other', self.node_name]))
        self.assertEqual(e.promote(''), (5, self.node_name, [self.node_name, 'other']))
        self.assertEqual(e.evict(''), (6, 'other', ['other']))
        self.assertEqual(e.leave('other'), (6, '', []))

    def test_unicode_ids(self):
        e = self.fresh()
        ids = ['ünï', '日本', 'é' * 127 + 'a', 'y' * 255]
        for i in ids:
            e.enter(i)
        self.assertEqual(e.get_term(), (1, ids[0], ids))
        for i in ids:
            e.leave(i)

    def test_leave(self):
        e = self.fresh()
        # Leave of a non-candidate on a fresh election: term 0 back
        self.assertEqual(e.leave('ghost'), (0, '', []))
        e.enter('a')
        e.enter('b')
        e.enter('c')
        self.assertEqual(e.leave('ghost'), (1, 'a', ['a', 'b', 'c']))
        self.assertEqual(e.leave('b'), (1, 'a', ['a', 'c']))
        self.assertEqual(e.leave('a'), (2, 'c', ['c']))
        # last Leave: the term id stays, the leader is ""
        self.assertEqual(e.leave('c'), (2, '', []))
        self.assertEqual(e.leave('c'), (2, '', []))
        self.assertEqual(e.get_term(), (2, '', []))
        # the next leader gets a fresh term id
        self.assertEqual(e.enter('d'), (3, 'd', ['d']))
        e.leave('d')

    def test_anoint(self):
        e = self.fresh()
        self.assertDBusError(ERROR_NOT_CANDIDATE, e.anoint, 'ghost')
        e.enter('a')
        e.enter('b')
        e.enter('c')
        self.assertDBusError(ERROR_NOT_CANDIDATE, e.anoint, 'ghost')
        self.assertEqual(e.anoint('a'), (1, 'a', ['a', 'b', 'c']))
        self.assertEqual(e.anoint('c'), (2, 'c', ['c', 'a', 'b']))
        self.assertEqual(e.anoint('c'), (2, 'c', ['c', 'a', 'b']))
        self.assertEqual(e.anoint('b'), (3, 'b', ['b', 'c', 'a']))
        self.assertEqual(e.get_term(), (3, 'b', ['b', 'c', 'a']))
        for c in 'abc':
            e.leave(c)

    def test_promote(self):
        e = self.fresh()
        self.assertDBusError(ERROR_NOT_CANDIDATE, e.promote, 'ghost')
        e.enter('a')
        e.enter('b')
        e.enter('c')
        self.assertDBusError(ERROR_NOT_CANDIDATE, e.promote, 'ghost')
        # third -> second: reorder, same term
        self.assertEqual(e.promote('c'), (1, 'a', ['a', 'c', 'b']))
        # second -> first: new leader, term + 1
        self.assertEqual(e.promote('c'), (2, 'c', ['c', 'a', 'b']))
        # leader: no-op
        self.assertEqual(e.promote('c'), (2, 'c', ['c', 'a', 'b']))
        self.assertEqual(e.promote('a'), (3, 'a', ['a', 'c', 'b']))
        for c in 'abc':
            e.leave(c)

    def test_evict(self):
        e = self.fresh()
        self.assertDBusError(ERROR_NOT_CANDIDATE, e.evict, 'ghost')
        e.enter('a')
        e.enter('b', 1)
        e.enter('c')
        self.assertDBusError(ERROR_NOT_CANDIDATE, e.evict, 'ghost')
        self.assertEqual(e.evict('c'), (1, 'a', ['a', 'b']))
        self.assertEqual(e.evict('a'), (2, 'b', ['b']))
        self.assertEqual(e.evict('b'), (2, '', []))
        self.assertDBusError(ERROR_NOT_CANDIDATE, e.evict, 'b')
        self.assertEqual(e.get_term(), (2, '', []))

    def test_same_id_in_two_elections(self):
        e1, e2 = self.fresh(), self.fresh()
        e1.enter('x')
        e2.enter('y')
        e2.enter('x')
        e1.leave('x')
        self.assertEqual(e1.get_term(), (1, '', []))
        self.assertEqual(e2.get_term(), (1, 'y', ['y', 'x']))
        e2.leave('x')
        e2.leave('y')

    # --- errors ---

    def test_invalid_ids(self):
        e = self.fresh()
        e.enter('ok')
        calls = [('Enter', lambda i: e.enter(i, 0)), ('Leave', e.leave), ('Anoint', e.anoint),
                 ('Promote', e.promote), ('Evict', e.evict)]
        for bad in BAD_STRINGS:
            for method, fn in calls:
                with self.subTest(method=method, id=bad):
                    self.assertDBusError(ERROR_INVALID_ID, fn, bad)
        self.assertEqual(e.get_term(), (1, 'ok', ['ok']))
        e.leave('ok')

    def test_id_limits(self):
        e = self.fresh()
        self.assertEqual(e.enter('z' * 255), (1, 'z' * 255, ['z' * 255]))
        self.assertDBusError(ERROR_INVALID_ID, e.enter, 'z' * 256)
        # 255 bytes of UTF-8 is fine, 256 is not even if it is fewer characters
        self.assertDBusError(ERROR_INVALID_ID, e.enter, 'é' * 128)
        e.leave('z' * 255)

    def test_invalid_flags(self):
        e = self.fresh()
        for flags in [2, 3, 4, 8, 1 << 32, 1 << 63, (1 << 64) - 1]:
            with self.subTest(flags=flags):
                self.assertDBusError(ERROR_INVALID_ARGS, e.enter, 'f', flags)
        self.assertEqual(e.get_term(), (0, '', []))
        self.assertNotIn(e.name, [n for (n, _, _, _) in self.client.list_elections()])

    def test_properties_are_read_only(self):
        e = self.fresh()
        e.enter('ro', 0)
        for prop, value in (('TermId', dbus.UInt64(99)), ('Leader', 'evil'), ('Name', 'x'),
                            ('Candidates', dbus.Array(['evil'], signature='s'))):
            with self.subTest(prop=prop):
                with self.assertRaises(dbus.exceptions.DBusException) as cm:
                    e._call('Set', 'ssv', (ELECTION_IFACE, prop, value), et.PROPERTIES_IFACE)
                self.assertIn(cm.exception.get_dbus_name(), ('org.freedesktop.DBus.Error.PropertyReadOnly',
                                                             ERROR_INVALID_ARGS,
                                                             'org.freedesktop.DBus.Error.AccessDenied'))
        with self.assertRaises(dbus.exceptions.DBusException):
            self.client.call(et.MANAGER_PATH, et.PROPERTIES_IFACE, 'Set', 'ssv',
                             (et.MANAGER_IFACE, 'NodeName', 'evil'))
        self.assertEqual(e.get_term(), (1, 'ro', ['ro']))
        self.assertEqual(str(self.client.manager_get('NodeName')), self.node_name)
        e.leave('ro')

    def test_wrong_signature(self):
        e = self.fresh()
        with self.assertRaises(dbus.exceptions.DBusException) as cm:
            e._call('Enter', 's', ('a',))
        self.assertIn(cm.exception.get_dbus_name(), (ERROR_INVALID_ARGS,))
        self.assertEqual(e.get_term(), (0, '', []))


class Limits(et.DaemonTestCase):
    config_extra = 'MaxElections=3\nMaxCandidates=2\n'

    def test_limits(self):
        # one daemon per class, so one test walks through both limits in order
        e = [self.client.election(f'lim{i}') for i in range(4)]
        rec = et.SignalRecorder(self.bus)
        try:
            self.assertEqual(e[0].enter('a'), (1, 'a', ['a']))
            self.assertEqual(e[0].enter('b', 1), (1, 'a', ['a', 'b']))
            self.assertDBusError(ERROR_LIMIT_EXCEEDED, e[0].enter, 'c')
            self.assertDBusError(ERROR_LIMIT_EXCEEDED, e[0].enter, 'c', 1)
            # re-Enter of a candidate is not a new candidate
            self.assertEqual(e[0].enter('b', 0), (1, 'a', ['a', 'b']))
            self.assertEqual(e[0].leave('a'), (2, 'b', ['b']))
            self.assertEqual(e[0].enter('c'), (2, 'b', ['b', 'c']))
            e[1].enter('x')
            e[2].enter('y')
            self.assertDBusError(ERROR_LIMIT_EXCEEDED, e[3].enter, 'z')
            # an election that had a term still counts after its last candidate left
            e[2].leave('y')
            self.assertDBusError(ERROR_LIMIT_EXCEEDED, e[3].enter, 'z', 1)
            # the existing ones still work
            self.assertEqual(e[2].enter('y2'), (2, 'y2', ['y2']))
            rec.sync()
            n = len(rec.terms())
            self.assertEqual(n, 8)
            self.assertDBusError(ERROR_LIMIT_EXCEEDED, e[3].enter, 'z')
            self.assertDBusError(ERROR_LIMIT_EXCEEDED, e[0].enter, 'd')
            rec.sync()
            self.assertEqual(len(rec.terms()), n, 'a refused Enter emitted a signal')
            self.assertEqual(e[3].get_term(), (0, '', []))
            self.assertEqual(sorted(n for (n, _, _, _) in self.client.list_elections()), ['lim0', 'lim1', 'lim2'])
        finally:
            rec.close()


if __name__ == '__main__':
    et.main()

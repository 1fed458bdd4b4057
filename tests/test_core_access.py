#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Authorization: unprivileged callers (uid 65534) may GetTerm/Enter/Leave but not
Anoint/Promote/Evict nor re-bind another uid's id, unless polkit (python3-dbusmock's polkitd
template) authorizes org.electiond.Election1.manage. Leave of another connection's candidacy is
refused for everyone."""

import os
import pwd
import unittest

import electiond_test as et
from electiond_test import ERROR_ACCESS_DENIED as DENIED, NOBODY, POLKIT_ACTION

# another unprivileged uid that exists (dbus-daemon refuses uids without a passwd entry)
OTHER_UID = pwd.getpwnam('daemon').pw_uid


# running clients as other uids needs root (setpriv)
ROOT_ONLY = unittest.skipUnless(os.geteuid() == 0, 'needs root to run clients as other uids')


@ROOT_ONLY
class Unprivileged(et.DaemonTestCase):
    """No polkit on the bus: only uid 0 is authorized."""

    def test_open_methods(self):
        n = self.fresh_name()
        r = et.run_as(self.bus, [('enter', n, 'nb', 0), ('get_term', n), ('enter', n, 'nb2', 1),
                                 ('leave', n, 'nb'), ('leave', n, 'nb2'), ('list',)], uid=NOBODY)
        self.assertEqual(r[0], ('ok', (1, 'nb', ['nb'])))
        self.assertEqual(r[1], ('ok', (1, 'nb', ['nb'])))
        self.assertEqual(r[2], ('ok', (1, 'nb', ['nb', 'nb2'])))
        self.assertEqual(r[3], ('ok', (2, 'nb2', ['nb2'])))
        self.assertEqual(r[4], ('ok', (2, '', [])))
        self.assertEqual(r[5][0], 'ok')
        self.assertIn([n, 2, '', et.election_path(n)], r[5][1])

    def test_read_only_interfaces_open(self):
        e = self.client.election(self.fresh_name())
        e.enter('x', 0)
        props = 'org.freedesktop.DBus.Properties'
        r = et.run_as(self.bus, [
            ('call', et.MANAGER_PATH, et.OBJECT_MANAGER_IFACE, 'GetManagedObjects', '', []),
            ('call', et.MANAGER_PATH, 'org.freedesktop.DBus.Introspectable', 'Introspect', '', []),
            ('call', e.path, 'org.freedesktop.DBus.Introspectable', 'Introspect', '', []),
            ('call', et.MANAGER_PATH, props, 'GetAll', 's', [et.MANAGER_IFACE]),
            ('call', e.path, props, 'GetAll', 's', [et.ELECTION_IFACE]),
            ('call', e.path, props, 'Get', 'ss', [et.ELECTION_IFACE, 'LocalLeader']),
            ('call', et.MANAGER_PATH, et.MANAGER_IFACE, 'GetElection', 's', ['whatever']),
            ('call', et.MANAGER_PATH, 'org.freedesktop.DBus.Peer', 'Ping', '', []),
        ], uid=NOBODY)
        self.assertEqual(r, [('ok', 'ok')] * 8)
        e.leave('x')

    def test_manage_methods_denied(self):
        e = self.client.election(self.fresh_name())
        e.enter('root1', 0)
        p = et.ClientProcess(self.bus, uid=NOBODY)
        try:
            self.assertEqual(p.uid, NOBODY)
            self.assertEqual(p.call('enter', e.name, 'mine', 0)[0], 'ok')
            for op in ('anoint', 'promote', 'evict'):
                for target in ('mine', 'root1'):
                    with self.subTest(op=op, target=target):
                        self.assertEqual(p.call(op, e.name, target), ('error', DENIED))
            # even for an unknown id the answer is AccessDenied (nothing leaks, nothing changes)
            self.assertIn(p.call('evict', e.name, 'ghost'), (('error', DENIED),))
            self.assertEqual(e.get_term(), (1, 'root1', ['root1', 'mine']))
            # root may do all of it to nobody's candidacy
            self.assertEqual(e.promote('mine'), (2, 'mine', ['mine', 'root1']))
            self.assertEqual(e.anoint('root1'), (3, 'root1', ['root1', 'mine']))
            self.assertEqual(e.evict('mine'), (3, 'root1', ['root1']))
        finally:
            p.close()
        e.leave('root1')

    def test_rebind_of_other_uid_denied(self):
        e = self.client.election(self.fresh_name())
        e.enter('rootp', 1)
        e.enter('rootc', 0)
        r = et.run_as(self.bus, [('enter', e.name, 'rootp', 0), ('enter', e.name, 'rootp', 1),
                                 ('enter', e.name, 'rootc', 0), ('leave', e.name, 'rootp'),
                                 ('leave', e.name, 'rootc')], uid=NOBODY)
        self.assertEqual(r, [('error', DENIED)] * 5)
        self.assertEqual(e.get_term(), (1, 'rootp', ['rootp', 'rootc']))
        e.leave('rootp')
        e.leave('rootc')

    def test_root_may_rebind_nobodys_id(self):
        e = self.client.election(self.fresh_name())
        p = et.ClientProcess(self.bus, uid=NOBODY)
        try:
            self.assertEqual(p.call('enter', e.name, 'nb', 1)[0], 'ok')
            self.assertEqual(e.enter('nb', 0), (1, 'nb', ['nb']))
            # now it is root's and bound to our connection: nobody can no longer leave it
            self.assertEqual(p.call('leave', e.name, 'nb'), ('error', DENIED))
        finally:
            p.close()
        self.assertEqual(e.leave('nb'), (1, '', []))

    def test_leave_of_other_connections_candidacy(self):
        # same uid (root), another connection: still AccessDenied for a connection-bound one
        e = self.client.election(self.fresh_name())
        e.enter('bound', 0)
        e.enter('pers', 1)
        p = et.ClientProcess(self.bus)
        try:
            self.assertEqual(p.call('leave', e.name, 'bound'), ('error', DENIED))
            # a persistent one belongs to the uid, not the connection
            self.assertEqual(p.call('leave', e.name, 'pers'), ('ok', (1, 'bound', ['bound'])))
        finally:
            p.close()
        self.assertEqual(e.leave('bound'), (1, '', []))

    def test_nobody_persistent_is_protected_from_other_uids(self):
        e = self.client.election(self.fresh_name())
        et.run_as(self.bus, [('enter', e.name, 'np', 1)], uid=NOBODY)
        # a different unprivileged uid may not leave it
        r = et.run_as(self.bus, [('leave', e.name, 'np'), ('enter', e.name, 'np', 1)], uid=OTHER_UID)
        self.assertEqual(r, [('error', DENIED)] * 2)
        # the same uid from a new connection may
        r = et.run_as(self.bus, [('leave', e.name, 'np')], uid=NOBODY)
        self.assertEqual(r, [('ok', (1, '', []))])


@ROOT_ONLY
class WithPolkit(et.DaemonTestCase):
    with_polkit = True

    def setUp(self):
        super().setUp()
        self.polkit.set_allowed([])

    def test_refused_when_polkit_says_no(self):
        e = self.client.election(self.fresh_name())
        e.enter('r', 1)
        e.enter('s', 1)
        r = et.run_as(self.bus, [('anoint', e.name, 's'), ('promote', e.name, 's'), ('evict', e.name, 's'),
                                 ('enter', e.name, 'r', 1)], uid=NOBODY)
        self.assertEqual(r, [('error', DENIED)] * 4)
        self.assertEqual(e.get_term(), (1, 'r', ['r', 's']))
        e.leave('r')
        e.leave('s')

    def test_allowed_when_polkit_authorizes(self):
        e = self.client.election(self.fresh_name())
        e.enter('r', 1)
        e.enter('s', 1)
        e.enter('t', 1)
        self.polkit.set_allowed([POLKIT_ACTION])
        r = et.run_as(self.bus, [('anoint', e.name, 's'), ('promote', e.name, 't'), ('evict', e.name, 'r'),
                                 ('enter', e.name, 's', 1)], uid=NOBODY)
        self.assertEqual(r, [('ok', (2, 's', ['s', 'r', 't'])),
                             ('ok', (2, 's', ['s', 't', 'r'])),
                             ('ok', (2, 's', ['s', 't'])),
                             ('ok', (2, 's', ['s', 't']))])         # re-bind of root's id
        self.assertEqual(e.get_term(), (2, 's', ['s', 't']))
        # s is nobody's now (persistent): root still may leave it (uid 0 is always authorized)
        self.assertEqual(e.leave('s'), (3, 't', ['t']))
        e.leave('t')

    def test_revoked_authorization_is_not_cached(self):
        e = self.client.election(self.fresh_name())
        e.enter('r', 1)
        e.enter('s', 1)
        self.polkit.set_allowed([POLKIT_ACTION])
        p = et.ClientProcess(self.bus, uid=NOBODY)
        try:
            self.assertEqual(p.call('anoint', e.name, 's'), ('ok', (2, 's', ['s', 'r'])))
            self.polkit.set_allowed([])
            self.assertEqual(p.call('anoint', e.name, 'r'), ('error', DENIED))
        finally:
            p.close()
        e.leave('r')
        e.leave('s')

    def test_pending_polkit_check_does_not_block(self):
        # Authorization is asynchronous: while polkit sits on a check, everyone else is served.
        e = self.client.election(self.fresh_name())
        e.enter('r', 1)
        e.enter('s', 1)
        self.polkit.set_allowed([POLKIT_ACTION])
        self.bus.conn.call_blocking('org.freedesktop.PolicyKit1', '/org/freedesktop/PolicyKit1/Authority',
                                    'org.freedesktop.DBus.Mock', 'SimulateHangActions', 'as', ([POLKIT_ACTION],))
        p = et.ClientProcess(self.bus, uid=NOBODY)
        try:
            p.send('anoint', e.name, 's')
            has_hanging = lambda: bool(self.bus.conn.call_blocking(
                'org.freedesktop.PolicyKit1', '/org/freedesktop/PolicyKit1/Authority',
                'org.freedesktop.DBus.Mock', 'HaveHangingCalls', '', ()))
            et.wait_until(has_hanging, 10, 'the daemon to ask polkit')
            other = self.client.election(self.fresh_name('other'))
            self.assertEqual(other.enter('free', 0), (1, 'free', ['free']))
            self.assertEqual(e.get_term(), (1, 'r', ['r', 's']))
            self.assertFalse(p.ready())
            self.bus.conn.call_blocking('org.freedesktop.PolicyKit1', '/org/freedesktop/PolicyKit1/Authority',
                                        'org.freedesktop.DBus.Mock', 'ReleaseHangingCalls', '', ())
            self.assertEqual(p.receive(), ('ok', (2, 's', ['s', 'r'])))
            other.leave('free')
        finally:
            self.bus.conn.call_blocking('org.freedesktop.PolicyKit1', '/org/freedesktop/PolicyKit1/Authority',
                                        'org.freedesktop.DBus.Mock', 'SimulateHangActions', 'as', ([],))
            p.close()
        e.leave('r')
        e.leave('s')

    def test_polkit_is_asked_about_the_caller(self):
        e = self.client.election(self.fresh_name())
        e.enter('r', 1)
        e.enter('s', 1)
        mock = ('org.freedesktop.PolicyKit1', '/org/freedesktop/PolicyKit1/Authority', 'org.freedesktop.DBus.Mock')
        self.bus.conn.call_blocking(*mock, 'ClearCalls', '', ())
        p = et.ClientProcess(self.bus, uid=NOBODY)
        try:
            self.assertEqual(p.call('promote', e.name, 's'), ('error', DENIED))
        finally:
            p.close()
        calls = self.bus.conn.call_blocking(*mock, 'GetMethodCalls', 's', ('CheckAuthorization',))
        self.assertEqual(len(calls), 1)
        subject, action = calls[0][1][0], calls[0][1][1]
        self.assertEqual(str(subject[0]), 'system-bus-name')
        self.assertEqual(str(subject[1]['name']), p.unique_name)
        self.assertEqual(str(action), POLKIT_ACTION)
        e.leave('r')
        e.leave('s')

    def test_other_action_does_not_authorize(self):
        e = self.client.election(self.fresh_name())
        e.enter('r', 1)
        e.enter('s', 1)
        self.polkit.set_allowed(['org.example.other'])
        r = et.run_as(self.bus, [('anoint', e.name, 's')], uid=NOBODY)
        self.assertEqual(r, [('error', DENIED)])
        e.leave('r')
        e.leave('s')


if __name__ == '__main__':
    et.main()

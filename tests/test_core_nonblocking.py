#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The daemon's event loop never waits for the bus (issue 14): while the bus driver is slow to
answer the daemon's own queries about a caller (its uid, whether it is still connected), other
clients are still served. The daemon connects through a proxy (tests/lib/busproxy.py) that
holds the driver's replies to those queries back until the test releases them."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import dbus  # noqa: E402
from busproxy import BusProxy  # noqa: E402
from electiond_test import (BUS_NAME, ELECTION_IFACE, MANAGER_IFACE, MANAGER_PATH, T, Client,  # noqa: E402
                            ClientProcess, Daemon, PrivateBus, term_tuple, wait_until)


class SlowBusTest(unittest.TestCase):
    def setUp(self):
        self.bus = PrivateBus()
        self.addCleanup(self.bus.stop)
        self.proxy = BusProxy(self.bus.socket)
        self.addCleanup(self.proxy.close)
        self.daemon = Daemon(self.bus, start=False, env={'DBUS_SYSTEM_BUS_ADDRESS': self.proxy.address})
        self.daemon.connection_pid = os.getpid()   # the bus sees the proxy (this process)
        self.addCleanup(self.daemon.cleanup)
        self.addCleanup(self.proxy.release)   # before the daemon is stopped
        self.daemon.start()
        self.client = Client(self.bus)
        self.addCleanup(self.client.close)

    def test_other_clients_are_served_while_an_enter_waits_for_the_bus(self):
        path = self.client.get_election('slow')
        caller = ClientProcess(self.bus)
        self.addCleanup(caller.close)
        self.proxy.arm()
        caller.send('enter', 'slow', 'a', 0)
        # the daemon asked the driver about the new caller, and the answer is held back
        held = wait_until(self.proxy.holding, 10, "the daemon's query about the caller")
        # meanwhile another client's call is answered (a synchronous query would block the
        # daemon's whole loop until the answer comes: this would time out)
        try:
            t = term_tuple(self.client.conn.call_blocking(BUS_NAME, path, ELECTION_IFACE, 'GetTerm', '', (),
                                                          timeout=T(5)))
        except dbus.exceptions.DBusException as e:
            self.fail('GetTerm was not answered while the daemon waited for the bus (held: %s): %s'
                      % (held, e.get_dbus_name()))
        self.assertEqual(t, (0, '', []))
        self.assertTrue(self.proxy.holding(), 'the held replies went out before GetTerm was answered')
        self.assertFalse(caller.ready(), 'the Enter was answered before its caller was known')
        # once the bus answers, the Enter completes
        self.proxy.release()
        self.assertEqual(caller.receive(), ('ok', (1, 'a', ['a'])))
        self.assertEqual(self.client.election('slow').get_term(), (1, 'a', ['a']))
        # and the caller is still tracked: its candidacy goes with its connection
        caller.kill()
        wait_until(lambda: self.client.election('slow').get_term()[2] == [], 10,
                   'the candidacy of the departed caller to go')

    def test_watching_a_known_caller_does_not_block(self):
        """The caller's uid is known already (an earlier call); its first connection-bound Enter
        only has to watch its connection. That must not wait for the bus either."""
        path = self.client.get_election('watch')
        caller = ClientProcess(self.bus)
        self.addCleanup(caller.close)
        self.assertEqual(caller.call('leave', 'watch', 'a'), ('ok', (0, '', [])))   # uid learnt
        self.proxy.arm()
        caller.send('enter', 'watch', 'a', 0)
        held = wait_until(lambda: 'GetNameOwner' in self.proxy.holding() and self.proxy.holding(), 10,
                          "the daemon's check of the caller's connection")
        try:
            t = term_tuple(self.client.conn.call_blocking(BUS_NAME, path, ELECTION_IFACE, 'GetTerm', '', (),
                                                          timeout=T(5)))
        except dbus.exceptions.DBusException as e:
            self.fail('GetTerm was not answered while the daemon waited for the bus (held: %s): %s'
                      % (held, e.get_dbus_name()))
        self.assertIn(t, [(0, '', []), (1, 'a', ['a'])])
        self.assertTrue(self.proxy.holding())
        # the Enter itself need not wait for the check
        self.assertEqual(caller.receive(), ('ok', (1, 'a', ['a'])))
        self.proxy.release()
        caller.kill()
        wait_until(lambda: self.client.election('watch').get_term()[2] == [], 10,
                   'the candidacy of the departed caller to go')

    def test_watch_lease_does_not_block(self):
        """WatchLease watches its caller's connection: without waiting for the bus either."""
        path = self.client.get_election('lease')
        caller = ClientProcess(self.bus)
        self.addCleanup(caller.close)
        self.proxy.arm()
        caller.send('call', MANAGER_PATH, MANAGER_IFACE, 'WatchLease', '', [])
        held = wait_until(lambda: 'GetNameOwner' in self.proxy.holding() and self.proxy.holding(), 10,
                          "the daemon's check of the WatchLease caller's connection")
        try:
            t = term_tuple(self.client.conn.call_blocking(BUS_NAME, path, ELECTION_IFACE, 'GetTerm', '', (),
                                                          timeout=T(5)))
        except dbus.exceptions.DBusException as e:
            self.fail('GetTerm was not answered while the daemon waited for the bus (held: %s): %s'
                      % (held, e.get_dbus_name()))
        self.assertEqual(t, (0, '', []))
        self.assertEqual(caller.receive(), ('ok', 'ok'))
        self.assertTrue(self.proxy.holding())
        self.proxy.release()
        self.assertTrue(self.daemon.running())


if __name__ == '__main__':
    unittest.main(verbosity=2)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for an electiond older than WatchLease, on the bus ADDRESS: just enough of
org.electiond.Election1 for `electionctl run` (GetElection, NodeName, Enter/Leave/GetTerm,
LocalLeader, TermChanged) and no WatchLease, which dbus-python answers with UnknownMethod.
One election, NAME; this node leads it while a candidate. Prints "ready" once it owns the name.

    old_daemon_mock.py ADDRESS NAME
"""

import sys

import dbus
import dbus.bus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

BUS_NAME = 'org.electiond.Election1'
MANAGER_PATH = '/org/electiond/Election1'
MANAGER_IFACE = 'org.electiond.Election1.Manager'
ELECTION_IFACE = 'org.electiond.Election1.Election'
PROPS = 'org.freedesktop.DBus.Properties'
NODE = 'old-node'


class Manager(dbus.service.Object):
    def __init__(self, conn, election_path):
        super().__init__(conn, MANAGER_PATH)
        self.election_path = election_path

    @dbus.service.method(MANAGER_IFACE, in_signature='s', out_signature='o')
    def GetElection(self, name):
        return dbus.ObjectPath(self.election_path)

    @dbus.service.method(PROPS, in_signature='ss', out_signature='v')
    def Get(self, iface, prop):
        if prop == 'NodeName':
            return dbus.String(NODE)
        if prop == 'Quorate':
            return dbus.Boolean(True)
        raise dbus.exceptions.DBusException('no such property', name='org.freedesktop.DBus.Error.UnknownProperty')


class Election(dbus.service.Object):
    def __init__(self, conn, path):
        super().__init__(conn, path)
        self.term_id = 0
        self.candidates = []

    def term(self):
        leader = self.candidates[0] if self.candidates else ''
        return (dbus.UInt64(self.term_id), dbus.String(leader), dbus.Array(self.candidates, signature='s'))

    @dbus.service.signal(ELECTION_IFACE, signature='tsas')
    def TermChanged(self, t, s, a):
        pass

    def changed(self):
        self.TermChanged(*self.term())
        self.PropertiesChanged(ELECTION_IFACE, {'LocalLeader': self.local_leader()}, [])

    def local_leader(self):
        return dbus.Boolean(bool(self.candidates) and self.candidates[0] == NODE)

    @dbus.service.signal(PROPS, signature='sa{sv}as')
    def PropertiesChanged(self, iface, changed, invalidated):
        pass

    @dbus.service.method(ELECTION_IFACE, in_signature='', out_signature='tsas')
    def GetTerm(self):
        return self.term()

    @dbus.service.method(ELECTION_IFACE, in_signature='st', out_signature='tsas')
    def Enter(self, cid, flags):
        if cid not in self.candidates:
            self.candidates.append(str(cid))
            if len(self.candidates) == 1:
                self.term_id += 1
            self.changed()
        return self.term()

    @dbus.service.method(ELECTION_IFACE, in_signature='s', out_signature='tsas')
    def Leave(self, cid):
        if cid in self.candidates:
            led = self.candidates[0] == cid
            self.candidates.remove(cid)
            if led and self.candidates:
                self.term_id += 1
            self.changed()
        return self.term()

    @dbus.service.method(PROPS, in_signature='ss', out_signature='v')
    def Get(self, iface, prop):
        if prop == 'LocalLeader':
            return self.local_leader()
        raise dbus.exceptions.DBusException('no such property', name='org.freedesktop.DBus.Error.UnknownProperty')


def main():
    address, name = sys.argv[1], sys.argv[2]
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    conn = dbus.bus.BusConnection(address)
    path = MANAGER_PATH + '/election/' + name  # names of [A-Za-z0-9] only: sd_bus_path_encode is the identity
    keep = (Manager(conn, path), Election(conn, path),
            dbus.service.BusName(BUS_NAME, conn, do_not_queue=True))  # released when collected
    print('ready', flush=True)
    GLib.MainLoop().run()
    return keep


if __name__ == '__main__':
    main()

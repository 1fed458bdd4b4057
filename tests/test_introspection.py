#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The live introspection of the Manager and of an election object matches dbus/*.xml: the same
interfaces (ignoring org.freedesktop.DBus.*), members, argument names/types/directions,
property types/access and their EmitsChangedSignal behaviour."""

import os
import xml.etree.ElementTree as ET

import electiond_test as et

DBUS_DIR = os.path.join(et.SOURCE_ROOT, 'dbus')
EMITS = 'org.freedesktop.DBus.Property.EmitsChangedSignal'


def describe(xml_text):
    """{interface: {('method'|'signal'|'property', name): description}} for non-standard interfaces."""
    root = ET.fromstring(xml_text)
    out = {}
    for iface in root.findall('interface'):
        iname = iface.get('name')
        if iname.startswith('org.freedesktop.DBus.'):
            continue
        iface_emits = next((a.get('value') for a in iface.findall('annotation') if a.get('name') == EMITS), 'true')
        members = {}
        for m in iface.findall('method'):
            members[('method', m.get('name'))] = [
                (a.get('name'), a.get('type'), a.get('direction') or 'in') for a in m.findall('arg')]
        for s in iface.findall('signal'):
            members[('signal', s.get('name'))] = [
                (a.get('name'), a.get('type'), a.get('direction') or 'out') for a in s.findall('arg')]
        for p in iface.findall('property'):
            emits = next((a.get('value') for a in p.findall('annotation') if a.get('name') == EMITS), iface_emits)
            members[('property', p.get('name'))] = (p.get('type'), p.get('access'), emits)
        out[iname] = members
    return out


def read(name):
    with open(os.path.join(DBUS_DIR, name)) as f:
        return f.read()


class Introspection(et.DaemonTestCase):

    def compare(self, live_xml, file_xml):
        live, want = describe(live_xml), describe(file_xml)
        self.assertEqual(sorted(live), sorted(want), 'interfaces')
        for iname in want:
            self.assertEqual(sorted(live[iname]), sorted(want[iname]), f'{iname}: members')
            for key, desc in want[iname].items():
                self.assertEqual(live[iname][key], desc, f'{iname} {key[0]} {key[1]}')

    def test_manager(self):
        live = self.client.introspect(et.MANAGER_PATH)
        self.compare(live, read('org.electiond.Election1.xml'))
        ifaces = {i.get('name') for i in ET.fromstring(live).findall('interface')}
        self.assertIn('org.freedesktop.DBus.ObjectManager', ifaces)
        self.assertIn('org.freedesktop.DBus.Properties', ifaces)

    def test_election_object(self):
        e = self.client.election(self.fresh_name())
        e.enter('i', 0)
        live = self.client.introspect(e.path)
        self.compare(live, read('org.electiond.Election1.Election.xml'))
        e.leave('i')

    def test_election_object_without_term(self):
        # GetElection's path is usable before the election has ever had a term
        path = self.client.get_election(self.fresh_name())
        self.compare(self.client.introspect(path), read('org.electiond.Election1.Election.xml'))

    def test_children(self):
        e = self.client.election(self.fresh_name())
        e.enter('i', 0)
        prefix = ET.fromstring(self.client.introspect(et.ELECTION_PREFIX))
        kids = {n.get('name') for n in prefix.findall('node')}
        self.assertIn(e.path.rsplit('/', 1)[1], kids)
        top = ET.fromstring(self.client.introspect(et.MANAGER_PATH))
        self.assertIn('election', {n.get('name') for n in top.findall('node')})
        e.leave('i')

    def test_describe_catches_differences(self):
        # the comparison itself must be able to fail
        base = read('org.electiond.Election1.Election.xml')
        for mutated in (base.replace('name="Promote"', 'name="Promote2"'),
                        base.replace('<arg name="id" type="s" direction="in"/>',
                                     '<arg name="id" type="s" direction="out"/>', 1),
                        base.replace('type="(tsas)"', 'type="(tsa)"'),
                        base.replace('value="const"', 'value="true"')):
            self.assertNotEqual(mutated, base)
            with self.assertRaises(AssertionError):
                self.compare(mutated, base)


if __name__ == '__main__':
    et.main()

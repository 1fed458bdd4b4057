#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The files shipped in dbus/: well-formed (polkit against its DTD), and dbus-daemon accepts the bus
policy and enforces it: only root (and the electiond user) may own the name, everyone may call
the electiond interfaces, nothing else."""

import json
import os
import subprocess
import tempfile
import textwrap
import unittest
import xml.etree.ElementTree as ET

import dbus
import dbus.lowlevel
from gi.repository import GLib

import electiond_test as et

DBUS_DIR = os.path.join(et.SOURCE_ROOT, 'dbus')
POLICY = os.path.join(DBUS_DIR, 'org.electiond.Election1.conf')
POLKIT = os.path.join(DBUS_DIR, 'org.electiond.Election1.policy')
SERVICE = os.path.join(DBUS_DIR, 'org.electiond.Election1.service')
POLKIT_DTD = '/usr/share/polkit-1/policyconfig-1.dtd'

# A bus like Debian's system.conf: deny owning and calling by default, then our policy.
SYSTEM_LIKE = '''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:tmpdir=/tmp</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>{policy}</include>
</busconfig>
'''

# Run as nobody: try to own the name, then call a list of (interface, method) on it.
PROBE = textwrap.dedent('''
    import json, sys, dbus, dbus.bus
    conn = dbus.bus.BusConnection(sys.argv[1])
    out = {}
    try:
        out['own'] = int(conn.request_name('org.electiond.Election1', dbus.bus.NAME_FLAG_DO_NOT_QUEUE))
    except dbus.exceptions.DBusException as e:
        out['own'] = e.get_dbus_name()
    for iface, method in json.loads(sys.argv[2]):
        try:
            conn.call_blocking('org.electiond.Election1', '/org/electiond/Election1', iface, method, '', (), timeout=10)
            out[iface + '.' + method] = 'ok'
        except dbus.exceptions.DBusException as e:
            out[iface + '.' + method] = e.get_dbus_name()
    print(json.dumps(out))
''')

ALLOWED = [('org.electiond.Election1.Manager', 'ListElections'),
           ('org.electiond.Election1.Election', 'GetTerm'),
           ('org.freedesktop.DBus.Properties', 'GetAll'),
           ('org.freedesktop.DBus.Introspectable', 'Introspect'),
           ('org.freedesktop.DBus.ObjectManager', 'GetManagedObjects'),
           ('org.freedesktop.DBus.Peer', 'Ping')]
DENIED = [('org.example.NotOurs', 'Anything'),
          ('org.freedesktop.DBus.Debug.Stats', 'GetStats')]


def xmllint(*args):
    return subprocess.run(['xmllint', '--noout', '--nonet', *args], capture_output=True, text=True)


# running clients as other uids needs root (setpriv)
ROOT_ONLY = unittest.skipUnless(os.geteuid() == 0, 'needs root to run clients as other uids')


class Files(unittest.TestCase):

    def test_well_formed(self):
        for name in sorted(os.listdir(DBUS_DIR)):
            if name.endswith(('.xml', '.conf', '.policy')):
                with self.subTest(file=name):
                    r = xmllint(os.path.join(DBUS_DIR, name))
                    self.assertEqual(r.returncode, 0, r.stderr)

    def test_polkit_policy_valid(self):
        if not os.path.exists(POLKIT_DTD):
            self.skipTest('no polkit DTD installed')
        r = xmllint('--dtdvalid', POLKIT_DTD, POLKIT)
        self.assertEqual(r.returncode, 0, r.stderr)
        action = ET.parse(POLKIT).getroot().find('action')
        self.assertEqual(action.get('id'), et.POLKIT_ACTION)
        d = action.find('defaults')
        self.assertEqual((d.findtext('allow_any'), d.findtext('allow_inactive'), d.findtext('allow_active')),
                         ('no', 'no', 'auth_admin_keep'))

    def test_activation_file(self):
        kf = GLib.KeyFile()
        kf.load_from_file(SERVICE, GLib.KeyFileFlags.NONE)
        g = 'D-BUS Service'
        self.assertEqual(kf.get_string(g, 'Name'), et.BUS_NAME)
        self.assertEqual(kf.get_string(g, 'Exec'), '/usr/libexec/electiond')
        self.assertEqual(kf.get_string(g, 'User'), 'electiond')  # electiond.service's User=
        self.assertEqual(kf.get_string(g, 'SystemdService'), 'electiond.service')


@ROOT_ONLY
class BusPolicy(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix='electiond-policy-')
        conf = os.path.join(cls.tmp.name, 'system-like.conf')
        with open(conf, 'w') as f:
            f.write(SYSTEM_LIKE.format(policy=POLICY))
        cls.bus = et.PrivateBus(config_file=conf)

    @classmethod
    def tearDownClass(cls):
        cls.bus.stop()
        cls.tmp.cleanup()

    def test_policy_is_accepted_and_enforced(self):
        # root may own the name: a stand-in service answering every interface the policy opens
        conn = self.bus.connect()
        self.assertEqual(conn.request_name(et.BUS_NAME, dbus.bus.NAME_FLAG_DO_NOT_QUEUE),
                         dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER)

        def answer(conn_, msg):
            if msg.get_type() == 1 and not msg.get_no_reply():   # method call
                conn_.send_message(dbus.lowlevel.MethodReturnMessage(msg))
                return dbus.lowlevel.HANDLER_RESULT_HANDLED
            return dbus.lowlevel.HANDLER_RESULT_NOT_YET_HANDLED

        conn.add_message_filter(answer)
        try:
            p = subprocess.Popen(['setpriv', f'--reuid={et.NOBODY}', f'--regid={et.NOBODY}', '--clear-groups',
                                  '/usr/bin/python3', '-c', PROBE, self.bus.address, json.dumps(ALLOWED + DENIED)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # keep answering while nobody probes
            et.wait_until(lambda: p.poll() is not None, 60, 'the probe')
            out, err = p.communicate()
            self.assertEqual(p.returncode, 0, err)
            res = json.loads(out)
        finally:
            conn.close()
        self.assertEqual(res['own'], et.ERROR_ACCESS_DENIED)
        for iface, method in ALLOWED:
            self.assertEqual(res[iface + '.' + method], 'ok', (iface, method))
        for iface, method in DENIED:
            self.assertEqual(res[iface + '.' + method], et.ERROR_ACCESS_DENIED, (iface, method))

    def test_real_daemon_under_shipped_policy(self):
        # electiond itself on a bus that only has the shipped policy: unprivileged callers reach
        # it and get their replies, and its signals get through.
        d = et.Daemon(self.bus)
        try:
            rec = et.SignalRecorder(self.bus, path=et.election_path('policy'))
            r = et.run_as(self.bus, [('enter', 'policy', 'nb', 0), ('get_term', 'policy'), ('list',),
                                     ('anoint', 'policy', 'nb'), ('leave', 'policy', 'nb')], uid=et.NOBODY)
            self.assertEqual(r[0], ('ok', (1, 'nb', ['nb'])))
            self.assertEqual(r[1], ('ok', (1, 'nb', ['nb'])))
            self.assertEqual(r[2][0], 'ok')
            self.assertEqual(r[3], ('error', et.ERROR_ACCESS_DENIED))
            self.assertEqual(r[4], ('ok', (1, '', [])))
            rec.wait_terms(2)
            self.assertEqual(rec.terms(), [(1, 'nb', ['nb']), (1, '', [])])
            rec.close()
            d.stop()
        finally:
            d.cleanup()


if __name__ == '__main__':
    unittest.main(verbosity=2)

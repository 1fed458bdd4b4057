#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The shipped unit files: `systemd-analyze verify` accepts them (with a leader unit hanging off
the target as the README describes) and the service's offline security exposure stays "OK"."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

SRC = os.environ.get('ELECTIOND_SOURCE_ROOT',
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get('ELECTIOND_BUILD_ROOT')
ELECTIOND = os.environ.get('ELECTIOND')
MAX_EXPOSURE = 2.0   # below 2.0 systemd-analyze rates it "OK" (or better)


def service_text():
    """The configured service from the build tree, ExecStart pointed at the built binary (verify
    insists the binary exists)."""
    built = os.path.join(BUILD, 'systemd', 'electiond.service') if BUILD else None
    if built and os.path.exists(built):
        text = open(built).read()
    else:
        text = open(os.path.join(SRC, 'systemd', 'electiond.service.in')).read().replace(
            '@libexecdir@', '/usr/libexec')
    return re.sub(r'^ExecStart=.*$', f'ExecStart={ELECTIOND}', text, flags=re.M)


class UnitFilesTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='electiond-units-')
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        with open(os.path.join(self.dir, 'electiond.service'), 'w') as f:
            f.write(service_text())
        shutil.copy(os.path.join(SRC, 'systemd', 'electiond-leader@.target'), self.dir)

    def run_tool(self, *args):
        return subprocess.run(['systemd-analyze', *args], capture_output=True, text=True, timeout=60)

    def test_verify(self):
        # An instance of the template, and a leader unit as documented.
        shutil.copy(os.path.join(self.dir, 'electiond-leader@.target'),
                    os.path.join(self.dir, 'electiond-leader@web.target'))
        with open(os.path.join(self.dir, 'web-vip.service'), 'w') as f:
            f.write('[Unit]\nPartOf=electiond-leader@web.target\nConditionPathExists=/run/electiond/leader/web\n'
                    '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=electiond-leader@web.target\n')
        files = [os.path.join(self.dir, n) for n in
                 ('electiond.service', 'electiond-leader@web.target', 'web-vip.service')]
        r = self.run_tool('verify', '--man=no', *files)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), '', 'verify printed warnings')

    def test_verify_witness_template(self):
        # electiond-witness@.service: one witness per cluster (electiond(8), WITNESS)
        built = os.path.join(BUILD, 'systemd', 'electiond-witness@.service') if BUILD else None
        if built and os.path.exists(built):
            text = open(built).read()
        else:
            text = open(os.path.join(SRC, 'systemd', 'electiond-witness@.service.in')).read()
        text = re.sub(r'^ExecStart=\S+', f'ExecStart={ELECTIOND}', text, flags=re.M)
        self.assertIn('--config=/etc/electiond/witness-%i.conf --state-dir=/var/lib/electiond-witness/%i', text)
        self.assertIn('\nStateDirectory=electiond-witness/%i\n', text)
        p = os.path.join(self.dir, 'electiond-witness@a.service')
        with open(p, 'w') as f:
            f.write(text)
        r = self.run_tool('verify', '--man=no', p)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), '', 'verify printed warnings')

    def test_verify_catches_breakage(self):
        # The check above can fail: a broken directive is reported.
        p = os.path.join(self.dir, 'electiond.service')
        with open(p, 'a') as f:
            f.write('\n[Service]\nRestrictAddressFamilies=AF_BOGUS\n')
        r = self.run_tool('verify', '--man=no', p)
        self.assertTrue(r.returncode != 0 or (r.stdout + r.stderr).strip(), 'broken unit passed verify')

    def test_security_exposure(self):
        r = self.run_tool('security', '--offline=yes', '--no-pager', os.path.join(self.dir, 'electiond.service'))
        out = r.stdout + r.stderr
        m = re.search(r'Overall exposure level for electiond\.service: ([0-9.]+) (\w+)', out)
        self.assertIsNotNone(m, out)
        level = float(m.group(1))
        print(f'exposure {level} {m.group(2)}')
        self.assertLess(level, MAX_EXPOSURE, out)

    def test_service_contract(self):
        text = service_text()
        for line in ('Type=notify', 'BusName=org.electiond.Election1', 'User=electiond', 'Restart=on-failure',
                     'StateDirectory=electiond', 'RuntimeDirectory=electiond', 'ProtectSystem=strict',
                     'NoNewPrivileges=yes', 'CapabilityBoundingSet=',
                     'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK'):
            self.assertIn('\n' + line + '\n', text)
        self.assertRegex(text, r'\nWatchdogSec=\d+')
        target = open(os.path.join(SRC, 'systemd', 'electiond-leader@.target')).read()
        self.assertIn('PartOf=electiond.service', target)


if __name__ == '__main__':
    if not shutil.which('systemd-analyze') or not ELECTIOND:
        print('SKIP: systemd-analyze or ELECTIOND missing')
        sys.exit(77)
    unittest.main()

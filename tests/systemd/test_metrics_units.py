#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The metrics units: `systemd-analyze verify` accepts electiond-metrics.{service,timer,socket} and
electiond-metrics@.service, they say what the documentation promises (textfile every 15 s, Accept=yes
with the connection on stdin/stdout), and the socket-activated mode answers a real HTTP GET on
loopback when started the way the unit starts it (systemd-socket-activate --inetd --accept gives
each connection to `electionctl metrics --http` as stdin and stdout, like StandardInput=socket)."""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'lib'))
from electiond_test import DaemonTestCase, T, wait_until  # noqa: E402
from metrics_parse import parse, value  # noqa: E402

SRC = os.environ.get('ELECTIOND_SOURCE_ROOT', os.path.dirname(os.path.dirname(HERE)))
BUILD = os.environ['ELECTIOND_BUILD_ROOT']
ELECTIONCTL = os.path.join(BUILD, 'client-lib', 'electionctl')
UNITS = ('electiond-metrics.service', 'electiond-metrics@.service', 'electiond-metrics.timer',
         'electiond-metrics.socket')


def unit_text(name):
    built = os.path.join(BUILD, 'systemd', name)
    with open(built if os.path.exists(built) else os.path.join(SRC, 'systemd', name)) as f:
        text = f.read()
    # verify insists that the binary exists
    return re.sub(r'^ExecStart=\S+', f'ExecStart={ELECTIONCTL}', text, flags=re.M)


def directives(text):
    return {tuple(l.split('=', 1)) for l in text.splitlines() if '=' in l and not l.startswith('#')}


class MetricsUnitFilesTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='electiond-metrics-units-')
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        for u in UNITS:
            with open(os.path.join(self.dir, u), 'w') as f:
                f.write(unit_text(u))

    def verify(self, *names):
        return subprocess.run(['systemd-analyze', 'verify', '--man=no',
                               *[os.path.join(self.dir, n) for n in names]],
                              capture_output=True, text=True, timeout=60)

    def test_verify(self):
        if not shutil.which('systemd-analyze'):
            self.skipTest('no systemd-analyze')
        shutil.copy(os.path.join(self.dir, 'electiond-metrics@.service'),
                    os.path.join(self.dir, 'electiond-metrics@0.service'))
        r = self.verify('electiond-metrics.service', 'electiond-metrics.timer', 'electiond-metrics.socket',
                        'electiond-metrics@0.service')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), '', 'verify printed warnings')

    def test_verify_catches_breakage(self):
        if not shutil.which('systemd-analyze'):
            self.skipTest('no systemd-analyze')
        p = os.path.join(self.dir, 'electiond-metrics.socket')
        with open(p, 'a') as f:
            f.write('\n[Socket]\nAccept=maybe\n')
        r = self.verify('electiond-metrics.socket')
        self.assertTrue(r.returncode != 0 or (r.stdout + r.stderr).strip(), 'broken unit passed verify')

    def test_contract(self):
        svc = directives(unit_text('electiond-metrics.service'))
        self.assertIn(('Type', 'oneshot'), svc)
        self.assertIn(('ExecStart', f'{ELECTIONCTL} metrics '
                       '--output=/var/lib/node_exporter/textfile_collector/electiond.prom'), svc)
        timer = directives(unit_text('electiond-metrics.timer'))
        self.assertIn(('OnUnitActiveSec', '15s'), timer)
        self.assertIn(('WantedBy', 'timers.target'), timer)
        sock = directives(unit_text('electiond-metrics.socket'))
        self.assertIn(('Accept', 'yes'), sock)
        inst = directives(unit_text('electiond-metrics@.service'))
        for d in (('ExecStart', f'{ELECTIONCTL} metrics --http'), ('StandardInput', 'socket'),
                  ('StandardOutput', 'socket'), ('DynamicUser', 'yes')):
            self.assertIn(d, inst)


class SocketActivatedTest(DaemonTestCase):
    """A real HTTP client on 127.0.0.1 against `electionctl metrics --http` started per connection."""

    def setUp(self):
        super().setUp()
        if not shutil.which('systemd-socket-activate'):
            self.skipTest('no systemd-socket-activate')
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        self.port = s.getsockname()[1]
        s.close()
        self.activator = subprocess.Popen(
            ['systemd-socket-activate', '--inetd', '--accept', f'--listen=127.0.0.1:{self.port}',
             f'--setenv=DBUS_SYSTEM_BUS_ADDRESS={self.bus.address}', ELECTIONCTL, 'metrics', '--http'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop_activator)

        def listening():
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(listening, T(10), 'systemd-socket-activate listening')

    def stop_activator(self):
        self.activator.send_signal(signal.SIGTERM)
        try:
            self.activator.wait(timeout=T(10))
        except subprocess.TimeoutExpired:
            self.activator.kill()
            self.activator.wait()

    def get(self, path='/metrics', headers=None):
        c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=T(30))
        self.addCleanup(c.close)
        c.request('GET', path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheader('Content-Type'), r.read().decode()

    def test_scrape(self):
        name = self.fresh_name()
        self.client.election(name).enter('a')
        status, ctype, body = self.get()
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith('text/plain; version=0.0.4'), ctype)
        f = parse(body, openmetrics=False)
        self.assertEqual(value(f, 'electiond_election_local_leader', election=name), 1)

    def test_openmetrics_and_errors(self):
        status, ctype, body = self.get('/', {'Accept': 'application/openmetrics-text; version=1.0.0'})
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith('application/openmetrics-text'), ctype)
        parse(body)
        status, _, _ = self.get('/other')
        self.assertEqual(status, 404)


if __name__ == '__main__':
    unittest.main(verbosity=2)

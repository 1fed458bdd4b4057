#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GetMetrics() and `electionctl metrics` against a real electiond on a private bus: the text parses
as OpenMetrics (and as Prometheus text with --output), per-election series appear after Enter, term
changes move with Anoint, the commit latency histogram counts calls, --output writes atomically, and
--http answers one HTTP/1.0 request on stdin/stdout as a socket-activated unit (Accept=yes,
StandardInput=socket) would get it."""

import os
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from electiond_test import MANAGER_IFACE, MANAGER_PATH, DaemonTestCase, T, main  # noqa: E402
from test_client_common import ELECTIONCTL, client_env  # noqa: E402
from metrics_parse import ParseError, parse, value  # noqa: E402

LATENCY = 'electiond_commit_latency_seconds'


class MetricsTest(DaemonTestCase):

    def ctl(self, *args, **kw):
        r = subprocess.run([ELECTIONCTL, *args], env=client_env(self.bus), capture_output=True, text=True,
                           timeout=T(30), **kw)
        self.assertEqual(r.returncode, 0, f'electionctl {args}: {r.stdout}{r.stderr}')
        return r.stdout

    def scrape(self):
        return parse(self.ctl('metrics'))

    def test_dbus_structured(self):
        samples = self.client.call(MANAGER_PATH, MANAGER_IFACE, 'GetMetrics')
        names = {str(n) for n, _, _ in samples}
        for n in ('electiond_quorate', 'electiond_lease_renewals_total', 'electiond_step_downs_total',
                  'electiond_packets_dropped_total', LATENCY + '_bucket', 'electiond_forwarded_calls_total'):
            self.assertIn(n, names)
        quorate = [float(v) for n, _, v in samples if n == 'electiond_quorate']
        self.assertEqual(quorate, [1.0])  # standalone is always quorate
        drops = [dict(l) for n, l, _ in samples if n == 'electiond_packets_dropped_total']
        self.assertIn({'protocol': 'gossip', 'reason': 'auth'}, drops)

    def test_openmetrics_parses_and_has_families(self):
        f = self.scrape()
        self.assertEqual(f['electiond_quorate']['type'], 'gauge')
        self.assertEqual(f['electiond_lease_renewals']['type'], 'counter')
        self.assertEqual(f[LATENCY]['type'], 'histogram')
        self.assertIsNotNone(f['electiond_step_downs']['help'])
        self.assertEqual(value(f, 'electiond_packets_dropped', protocol='gossip', reason='auth'), 0)
        self.assertEqual(sum(s[2] for s in f['electiond_raft_role']['samples']), 1)

    def test_parser_rejects_garbage(self):
        # the parser in this test must be able to fail
        for bad in ('x 1\n# EOF\n', '# TYPE a gauge\na{b="c} 1\n# EOF\n', '# TYPE a counter\na 1\n# EOF\n',
                    '# TYPE a gauge\na 1\n'):
            with self.assertRaises(ParseError, msg=bad):
                parse(bad)

    def test_election_series_after_enter_and_anoint(self):
        name = self.fresh_name('db"\\')  # a quote and a backslash exercise label escaping
        e = self.client.election(name)
        e.enter('a')
        f = self.scrape()
        self.assertEqual(value(f, 'electiond_election_local_leader', election=name), 1)
        self.assertEqual(value(f, 'electiond_election_candidates', election=name), 1)
        term = value(f, 'electiond_election_term_id', election=name)
        self.assertEqual(term, e.get_term()[0])
        changes = value(f, 'electiond_election_term_changes', election=name)
        self.assertGreaterEqual(changes, 1)

        e.enter('b')
        e.anoint('b')
        f = self.scrape()
        self.assertEqual(value(f, 'electiond_election_candidates', election=name), 2)
        self.assertGreater(value(f, 'electiond_election_term_id', election=name), term)
        self.assertEqual(value(f, 'electiond_election_term_changes', election=name), changes + 1)

    def test_commit_latency_counts_calls(self):
        before = self.scrape()
        n0 = value(before, LATENCY, le='+Inf')
        e = self.client.election(self.fresh_name())
        e.enter('x')
        e.leave('x')
        after = self.scrape()
        self.assertGreaterEqual(value(after, LATENCY, le='+Inf'), n0 + 2)
        self.assertGreater([s[2] for s in after[LATENCY]['samples'] if s[0] == LATENCY + '_sum'][0], 0)

    def test_output_file_is_prometheus_text_written_atomically(self):
        d = tempfile.mkdtemp()
        self.addCleanup(lambda: subprocess.run(['rm', '-rf', d]))
        path = os.path.join(d, 'electiond.prom')
        with open(path, 'w') as old:
            old.write('stale\n')
        self.ctl('metrics', '--output', path)
        self.assertEqual(os.listdir(d), ['electiond.prom'])  # no temporary file left behind
        with open(path) as fh:
            text = fh.read()
        f = parse(text, openmetrics=False)
        self.assertNotIn('# EOF', text)
        self.assertEqual(f['electiond_lease_renewals_total']['type'], 'counter')
        self.assertEqual(value(f, 'electiond_quorate'), 1)
        # the format can be chosen
        self.ctl('metrics', '--output', path, '--format', 'openmetrics')
        with open(path) as fh:
            parse(fh.read())

    def http(self, request, half_close=False):
        """Runs `electionctl metrics --http` with one end of a socketpair as stdin and stdout."""
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        p = subprocess.Popen([ELECTIONCTL, 'metrics', '--http'], stdin=theirs, stdout=theirs,
                             stderr=subprocess.PIPE, env=client_env(self.bus))
        theirs.close()
        ours.sendall(request)
        if half_close:
            ours.shutdown(socket.SHUT_WR)
        chunks = []
        ours.settimeout(T(30))
        while True:
            b = ours.recv(65536)
            if not b:
                break
            chunks.append(b)
        p.wait(timeout=T(30))
        p.stderr.close()
        self.assertIn(p.returncode, (0, 2), 'electionctl metrics --http failed')
        head, _, body = b''.join(chunks).partition(b'\r\n\r\n')
        lines = head.decode().split('\r\n')
        headers = dict(l.split(': ', 1) for l in lines[1:])
        return lines[0], headers, body.decode()

    def test_http_get(self):
        status, headers, body = self.http(b'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertEqual(status, 'HTTP/1.0 200 OK')
        self.assertTrue(headers['Content-Type'].startswith('text/plain; version=0.0.4'))
        self.assertEqual(int(headers['Content-Length']), len(body.encode()))
        parse(body, openmetrics=False)

    def test_http_openmetrics_negotiated(self):
        status, headers, body = self.http(
            b'GET / HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n')
        self.assertEqual(status, 'HTTP/1.0 200 OK')
        self.assertTrue(headers['Content-Type'].startswith('application/openmetrics-text'))
        self.assertIn('electiond_quorate', parse(body))

    def test_http_request_line_then_eof(self):
        status, _, body = self.http(b'GET /metrics HTTP/1.0\r\n', half_close=True)
        self.assertEqual(status, 'HTTP/1.0 200 OK')
        parse(body, openmetrics=False)

    def test_http_errors(self):
        status, _, _ = self.http(b'POST /metrics HTTP/1.0\r\n\r\n')
        self.assertEqual(status, 'HTTP/1.0 405 Method Not Allowed')
        status, _, _ = self.http(b'GET /nothing HTTP/1.0\r\n\r\n')
        self.assertEqual(status, 'HTTP/1.0 404 Not Found')
        status, headers, body = self.http(b'HEAD /metrics HTTP/1.0\r\n\r\n')
        self.assertEqual(status, 'HTTP/1.0 200 OK')
        self.assertEqual(body, '')
        self.assertGreater(int(headers['Content-Length']), 0)
        status, _, _ = self.http(b'GET /metrics HTTP/1.0\r\n' + b'X: ' + b'a' * 9000 + b'\r\n\r\n')
        self.assertEqual(status, 'HTTP/1.0 431 Request Header Fields Too Large')

    def test_unprivileged_caller(self):
        # read-only and open to anyone
        r = subprocess.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ELECTIONCTL, 'metrics'],
                           env=client_env(self.bus), capture_output=True, text=True, timeout=T(30))
        self.assertEqual(r.returncode, 0, r.stderr)
        parse(r.stdout)


if __name__ == '__main__':
    main()

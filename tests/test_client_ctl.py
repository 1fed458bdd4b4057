#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""electionctl against a real electiond on a private bus: every verb, its JSON, exit codes,
messages (also in German), enter's held candidacy, and run's supervision of COMMAND."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from electiond_test import (NOBODY, ClientProcess, Daemon, DaemonTestCase, PrivateBus, T,  # noqa: E402
                            main, wait_until)
from test_client_common import ELECTIONCTL, LOCALEDIR, LineProcess, client_env  # noqa: E402

EXIT_NO, EXIT_USAGE, EXIT_NOT_RUNNING, EXIT_DENIED, EXIT_NOT_CANDIDATE = 1, 2, 3, 4, 5


def read_lines(path):
    try:
        with open(path) as f:
            return [l.split() for l in f.read().splitlines()]
    except FileNotFoundError:
        return []


class CtlTest(DaemonTestCase):

    def ctl(self, *args, env=None, uid=None, timeout=30):
        argv = [ELECTIONCTL, *args]
        if uid is not None:
            argv = ['setpriv', f'--reuid={uid}', f'--regid={uid}', '--clear-groups'] + argv
        return subprocess.run(argv, env=env or client_env(self.bus), capture_output=True, text=True,
                               timeout=T(timeout))

    def ok(self, *args, **kw):
        r = self.ctl(*args, **kw)
        self.assertEqual(r.returncode, 0, f'electionctl {args}: {r.stdout}{r.stderr}')
        return r.stdout

    def js(self, *args):
        return json.loads(self.ok('--json', *args))

    def spawn(self, *args, env=None):
        p = LineProcess([ELECTIONCTL, *args], env or client_env(self.bus))
        self.addCleanup(p.close)
        return p

    def term(self, name):
        return self.client.election(name).get_term()

    # --- simple verbs ---

    def test_help_version_usage(self):
        out = self.ok('--help')
        for verb in ('status', 'list', 'term', 'watch', 'enter', 'leave', 'anoint', 'promote', 'evict',
                     'is-leader', 'run'):
            self.assertIn(verb, out)
        self.assertRegex(self.ok('--version'), r'^electionctl \d+\.\d+')
        self.assertEqual(self.ctl().returncode, EXIT_USAGE)
        self.assertEqual(self.ctl('frobnicate').returncode, EXIT_USAGE)
        self.assertEqual(self.ctl('term').returncode, EXIT_USAGE)
        self.assertEqual(self.ctl('anoint', 'x').returncode, EXIT_USAGE)
        self.assertEqual(self.ctl('--bogus', 'list').returncode, EXIT_USAGE)

    def test_term_status_list_json(self):
        name = self.fresh_name()
        self.assertEqual(self.js('term', name), {'name': name, 'term': 0, 'leader': '', 'candidates': []})
        out = self.ok('term', name)
        self.assertIn(name, out)
        self.assertIn('(none)', out)

        t = self.js('enter', name, '--id', 'a', '--persistent')
        self.assertEqual(t, {'name': name, 'term': 1, 'leader': 'a', 'candidates': ['a']})
        self.assertEqual(self.term(name), (1, 'a', ['a']))

        st = self.js('status')
        self.assertEqual(st['node'], self.node_name)
        self.assertTrue(st['version'])
        self.assertEqual(st['cluster'], '')
        self.assertIs(st['quorate'], True)
        members = [[str(x) for x in m] for m in self.client.manager_get('Members')]
        self.assertEqual([[m['name'], m['address'], m['state'], m['role']] for m in st['members']], members)
        self.assertIn({'name': name, 'term': 1, 'leader': 'a'}, st['elections'])
        self.assertIn(self.node_name, self.ok('status'))

        lst = self.js('list')
        self.assertIn({'name': name, 'term': 1, 'leader': 'a'}, lst)
        self.assertEqual(sorted(e['name'] for e in lst), sorted(n for n, _, _, _ in self.client.list_elections()))
        self.assertRegex(self.ok('list'), rf'(?m)^{name}\s+1\s+a$')

    def test_drain_undrain_status(self):
        name = self.fresh_name()
        self.addCleanup(self.ctl, 'undrain')
        self.assertEqual(self.js('status')['drained'], [])
        self.assertEqual(self.ok('drain', name), '')
        self.assertEqual(self.js('status')['drained'], [name])
        self.assertEqual([str(x) for x in self.client.manager_get('Drained')], [name])
        self.assertIn(f'Drained: {name}', self.ok('status'))
        self.ok('drain')
        self.assertEqual(self.js('status')['drained'], ['', name])
        self.assertIn(f'Drained: all elections, {name}', self.ok('status'))
        # not root, no polkit here: denied, nothing changes
        r = self.ctl('undrain', uid=NOBODY)
        self.assertEqual(r.returncode, EXIT_DENIED, r.stdout + r.stderr)
        self.assertIn('org.electiond.Election1.drain', r.stderr)
        self.assertEqual(self.js('status')['drained'], ['', name])
        self.ok('undrain', name)
        self.assertEqual(self.js('status')['drained'], [''])
        self.ok('undrain')
        self.assertEqual(self.js('status')['drained'], [])
        self.assertNotIn('Drained:', self.ok('status'))
        r = self.ctl('drain', 'bad\x01name')
        self.assertEqual(r.returncode, EXIT_USAGE, r.stdout + r.stderr)

    def test_mutating_verbs_json(self):
        name = self.fresh_name()
        self.js('enter', name, '--id', 'a', '--persistent')
        self.assertEqual(self.js('enter', name, '--id', 'b', '--persistent')['candidates'], ['a', 'b'])
        # default id = node name
        t = self.js('enter', name, '--persistent')
        self.assertEqual(t['candidates'], ['a', 'b', self.node_name])
        self.assertEqual(self.js('anoint', name, 'b'),
                         {'name': name, 'term': 2, 'leader': 'b', 'candidates': ['b', 'a', self.node_name]})
        self.assertEqual(self.js('promote', name, self.node_name)['candidates'], ['b', self.node_name, 'a'])
        self.assertEqual(self.js('evict', name, 'b'),
                         {'name': name, 'term': 3, 'leader': self.node_name, 'candidates': [self.node_name, 'a']})
        self.assertEqual(self.js('leave', name)['candidates'], ['a'])
        self.assertEqual(self.js('leave', name, '--id', 'a'),
                         {'name': name, 'term': 4, 'leader': '', 'candidates': []})
        # human mode is quiet on success
        self.assertEqual(self.ok('enter', name, '--id', 'q', '--persistent'), '')
        self.assertEqual(self.term(name), (5, 'q', ['q']))

    def test_is_leader_exit_codes(self):
        name = self.fresh_name()
        self.assertEqual(self.ctl('is-leader', name).returncode, EXIT_NO)
        self.js('enter', name, '--persistent')
        self.js('enter', name, '--id', 'x', '--persistent')
        self.assertEqual(self.ctl('is-leader', name).returncode, 0)
        self.assertEqual(self.ctl('is-leader', name, '--id', 'x').returncode, EXIT_NO)
        self.js('anoint', name, 'x')
        self.assertEqual(self.ctl('is-leader', name, '--id', 'x').returncode, 0)
        self.assertEqual(self.ctl('is-leader', name).returncode, EXIT_NO)
        # errors are neither 0 nor 1
        self.assertEqual(self.ctl('is-leader', 'bad\x01name').returncode, EXIT_USAGE)

    def test_error_messages_and_codes(self):
        name = self.fresh_name()
        self.js('enter', name, '--id', 'a', '--persistent')
        r = self.ctl('evict', name, 'ghost')
        self.assertEqual(r.returncode, EXIT_NOT_CANDIDATE)
        self.assertIn('"ghost" is not a candidate in election', r.stderr)
        r = self.ctl('anoint', name, 'ghost')
        self.assertEqual(r.returncode, EXIT_NOT_CANDIDATE)
        r = self.ctl('term', 'bad\x01name')
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn('Invalid election name', r.stderr)
        r = self.ctl('enter', name, '--id', 'bad\x02id', '--persistent')
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn('Invalid candidate id', r.stderr)

        # Leave of a candidacy another connection holds
        holder = ClientProcess(self.bus)
        self.addCleanup(holder.close)
        self.assertEqual(holder.call('enter', name, 'held', 0)[0], 'ok')
        r = self.ctl('leave', name, '--id', 'held')
        self.assertEqual(r.returncode, EXIT_DENIED, r.stderr)
        self.assertIn('Access denied', r.stderr)
        # Unprivileged callers may not anoint/promote/evict
        for verb in ('anoint', 'promote', 'evict'):
            r = self.ctl(verb, name, 'held', uid=NOBODY)
            self.assertEqual(r.returncode, EXIT_DENIED, f'{verb}: {r.stdout}{r.stderr}')
            self.assertIn('Access denied', r.stderr)
        self.assertIn('held', self.term(name)[2])

    def test_daemon_not_running(self):
        bus = PrivateBus()
        try:
            for args in (('status',), ('term', 'x'), ('is-leader', 'x'), ('enter', 'x', '--persistent')):
                r = self.ctl(*args, env=client_env(bus))
                self.assertEqual(r.returncode, EXIT_NOT_RUNNING, f'{args}: {r.stderr}')
                self.assertIn('electiond is not running', r.stderr)
            # no bus at all
            r = self.ctl('status', env=client_env(bus, DBUS_SYSTEM_BUS_ADDRESS='unix:path=/nonexistent/bus'))
            self.assertEqual(r.returncode, EXIT_NOT_RUNNING)
        finally:
            bus.stop()

    def test_user_bus(self):
        """--user talks to the session bus (here: the private bus), ignoring the system bus."""
        env = client_env(self.bus, DBUS_SESSION_BUS_ADDRESS=self.bus.address,
                         DBUS_SYSTEM_BUS_ADDRESS='unix:path=/nonexistent/bus')
        self.assertEqual(json.loads(self.ok('--user', '--json', 'status', env=env))['node'], self.node_name)
        self.assertEqual(self.ctl('--json', 'status', env=env).returncode, EXIT_NOT_RUNNING)

    def test_german_messages(self):
        """Under a German locale electionctl speaks German (catalogue from the build tree)."""
        self.assertTrue(os.path.exists(os.path.join(LOCALEDIR, 'de', 'LC_MESSAGES', 'electiond.mo')),
                        'the German catalogue was not built')
        bus = PrivateBus()
        try:
            env = client_env(bus, LANGUAGE='de', LANG='de_DE.UTF-8', LC_ALL='C.UTF-8',
                             ELECTIONCTL_LOCALEDIR=LOCALEDIR)
            r = self.ctl('status', env=env)
            self.assertEqual(r.returncode, EXIT_NOT_RUNNING)
            self.assertIn('electiond läuft nicht', r.stderr)
            self.assertNotIn('is not running', r.stderr)
            r = self.ctl('--help', env=env)
            self.assertIn('Befehle:', r.stdout)
        finally:
            bus.stop()
        name = self.fresh_name()
        env = client_env(self.bus, LANGUAGE='de', LC_ALL='C.UTF-8', ELECTIONCTL_LOCALEDIR=LOCALEDIR)
        r = self.ctl('evict', name, 'ghost', env=env)
        self.assertEqual(r.returncode, EXIT_NOT_CANDIDATE)
        self.assertIn('ist kein Kandidat', r.stderr)

    # --- watch ---

    def test_watch_lines_and_json(self):
        name = self.fresh_name()
        e = self.client.election(name)
        pj = self.spawn('--json', 'watch', name)
        ph = self.spawn('watch', name)
        for p in (pj, ph):
            p.wait_for(lambda ls: len(ls) >= 1, 10, 'the initial term')
        expected = [e.get_term(), e.enter('a', 1), e.enter('b', 1), e.anoint('b'), e.promote('a'), e.evict('a'),
                    e.leave('b')]
        pj.wait_for(lambda ls: len(ls) >= len(expected), 10, 'all changes')
        ph.wait_for(lambda ls: len(ls) >= len(expected), 10, 'all changes')
        self.assertEqual(pj.stop(), 0)
        self.assertEqual(ph.stop(), 0)
        got = [json.loads(l) for l in pj.lines]
        self.assertEqual([(g['term'], g['leader'], g['candidates']) for g in got], expected)
        self.assertTrue(all(g['name'] == name for g in got))
        self.assertEqual(len(ph.lines), len(expected))
        self.assertEqual(ph.lines[3], 'term 2, leader b, candidates: b, a')
        self.assertEqual(ph.lines[0], 'term 0, leader (none), candidates: (none)')

    # --- enter (held) ---

    def test_enter_holds_until_interrupted(self):
        name = self.fresh_name()
        p = self.spawn('enter', name, '--id', 'holder')
        wait_until(lambda: self.term(name)[2] == ['holder'], 10, 'the candidacy')
        self.assertIsNone(p.proc.poll())
        self.assertEqual(p.stop(signal.SIGTERM), 0)
        # it left explicitly before exiting
        self.assertEqual(self.term(name)[2], [])

        p = self.spawn('--json', 'enter', name, '--id', 'holder2')
        p.wait_for(lambda ls: ls, 10, 'the JSON term')
        self.assertEqual(json.loads(p.lines[0])['candidates'], ['holder2'])
        p.stop(signal.SIGKILL)
        # killed: the daemon drops the connection-bound candidacy
        wait_until(lambda: self.term(name)[2] == [], 10, 'the candidacy of the killed enter to go')

    # --- run ---

    def run_cmd(self, name, marker, *extra, script=None):
        script = script or ('echo start $ELECTION_TERM $ELECTION_NAME $ELECTION_ID $$ >> "$MARKER"; '
                            'trap \'echo stop $$ >> "$MARKER"; exit 0\' TERM; '
                            'while :; do sleep 0.05; done')
        env = client_env(self.bus, MARKER=marker)
        return self.spawn('--stop-timeout', '3', 'run', name, *extra, '--', 'sh', '-c', script, env=env)

    def test_run_follows_leadership(self):
        name = self.fresh_name()
        e = self.client.election(name)
        e.enter('other', 1)
        marker = tempfile.mktemp(prefix='electionctl-run-')
        self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
        p = self.run_cmd(name, marker, '--id', 'r1')
        wait_until(lambda: e.get_term()[2] == ['other', 'r1'], 10, 'run to enter')
        # not the leader: COMMAND must not run. (No fixed wait for it to do the wrong thing: a
        # start before the Anoint below would be the marker's first line, with an older term.)
        self.assertEqual(read_lines(marker), [])

        t = e.anoint('r1')
        wait_until(lambda: len(read_lines(marker)) >= 1, 10, 'COMMAND to start')
        start = read_lines(marker)[0]
        self.assertEqual(start[:4], ['start', str(t[0]), name, 'r1'],
                         'COMMAND ran before its candidate led')
        self.assertEqual(len(read_lines(marker)), 1)

        # Anoint of another candidate stops it
        e.anoint('other')
        wait_until(lambda: len(read_lines(marker)) == 2, 10, 'COMMAND to stop on Anoint')
        self.assertEqual(read_lines(marker)[1], ['stop', start[4]])
        self.assertIsNone(p.proc.poll())

        # leader again: a new COMMAND with the new fencing token
        t2 = e.anoint('r1')
        wait_until(lambda: len(read_lines(marker)) == 3, 10, 'COMMAND to start again')
        self.assertEqual(read_lines(marker)[2][:2], ['start', str(t2[0])])
        self.assertGreater(t2[0], t[0])

        # Evict stops it and run ends with "not a candidate"
        e.evict('r1')
        self.assertEqual(p.wait(15), EXIT_NOT_CANDIDATE)
        lines = read_lines(marker)
        self.assertEqual(len(lines), 4)
        self.assertEqual(lines[3], ['stop', lines[2][4]])
        # never two at once: starts and stops alternate
        self.assertEqual([l[0] for l in lines], ['start', 'stop', 'start', 'stop'])
        self.assertEqual(e.get_term()[2], ['other'])

    def test_run_exit_status_and_interrupt(self):
        name = self.fresh_name()
        e = self.client.election(name)
        # COMMAND exits on its own: run leaves and passes its status on
        p = self.spawn('run', name, '--id', 'r2', '--', 'sh', '-c', 'test "$ELECTION_ID" = r2 && exit 7')
        self.assertEqual(p.wait(15), 7)
        self.assertEqual(e.get_term()[2], [])

        # interrupted while COMMAND runs: COMMAND gets SIGTERM, run leaves
        marker = tempfile.mktemp(prefix='electionctl-run-')
        self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
        p = self.run_cmd(name, marker, '--id', 'r3')
        wait_until(lambda: len(read_lines(marker)) == 1, 10, 'COMMAND to start')
        self.assertEqual(p.stop(signal.SIGTERM, 15), 0)
        self.assertEqual([l[0] for l in read_lines(marker)], ['start', 'stop'])
        self.assertEqual(e.get_term()[2], [])

        # a COMMAND that ignores SIGTERM is killed after --stop-timeout
        p = self.spawn('--stop-timeout', '0.5', 'run', name, '--id', 'r4', '--', 'sh', '-c',
                       'trap "" TERM; echo up >> "$MARKER"; while :; do sleep 0.05; done',
                       env=client_env(self.bus, MARKER=marker))
        wait_until(lambda: len(read_lines(marker)) == 3, 10, 'COMMAND to start')
        t0 = time.monotonic()
        p.send(signal.SIGTERM)
        self.assertEqual(p.wait(15), 128 + signal.SIGKILL)
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        self.assertEqual(e.get_term()[2], [])


class CtlRestartTest(DaemonTestCase):
    """electionctl across a daemon restart."""

    def test_run_stops_command_while_daemon_is_away(self):
        name = self.fresh_name()
        marker = tempfile.mktemp(prefix='electionctl-run-')
        self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
        script = ('echo start $ELECTION_TERM $$ >> "$MARKER"; trap \'echo stop $$ >> "$MARKER"; exit 0\' TERM; '
                  'while :; do sleep 0.05; done')
        p = LineProcess([ELECTIONCTL, 'run', name, '--id', 'rr', '--', 'sh', '-c', script],
                        client_env(self.bus, MARKER=marker))
        self.addCleanup(p.close)
        w = LineProcess([ELECTIONCTL, '--json', 'watch', name], client_env(self.bus))
        self.addCleanup(w.close)
        other = self.fresh_name()
        held = LineProcess([ELECTIONCTL, 'enter', other, '--id', 'held'], client_env(self.bus))
        self.addCleanup(held.close)
        wait_until(lambda: self.client.election(other).get_term()[2] == ['held'], 10, 'enter to hold')
        wait_until(lambda: len(read_lines(marker)) == 1, 10, 'COMMAND to start')
        first = int(read_lines(marker)[0][1])

        # Without the daemon leadership is unknown: COMMAND stops; after the restart run enters
        # again (its old candidacy was dropped with the old run) and starts a new COMMAND.
        self.daemon.restart(hard=True)
        wait_until(lambda: len(read_lines(marker)) == 3, 15, 'COMMAND to stop and start again')
        lines = read_lines(marker)
        self.assertEqual([l[0] for l in lines], ['start', 'stop', 'start'])
        self.assertGreater(int(lines[2][1]), first)
        self.assertEqual(self.client.election(name).get_term()[1], 'rr')
        self.assertIsNone(p.proc.poll())
        # a held enter comes back too: its old candidacy went with the old run (the term moved on)
        wait_until(lambda: self.client.election(other).get_term() == (2, 'held', ['held']), 10,
                   'enter to re-enter')
        self.assertEqual(held.stop(signal.SIGTERM), 0)
        self.assertEqual(self.client.election(other).get_term()[2], [])
        self.assertEqual(p.stop(signal.SIGTERM, 15), 0)
        self.assertEqual(self.client.election(name).get_term()[2], [])

        # watch said the daemon went away and printed the term again afterwards
        self.assertEqual(w.stop(), 0, w.stderr())
        self.assertIn('electiond went away', w.stderr())
        terms = [json.loads(l)['term'] for l in w.lines]
        self.assertEqual(terms, sorted(terms))
        self.assertIn(int(lines[2][1]), terms)


class CtlBusLossTest(unittest.TestCase):
    """watch ends with exit status 3 when the bus itself goes away."""

    def test_watch_bus_lost(self):
        bus = PrivateBus()
        daemon = None
        try:
            daemon = Daemon(bus)
            w = LineProcess([ELECTIONCTL, 'watch', 'lost'], client_env(bus))
            self.addCleanup(w.close)
            w.wait_for(lambda ls: ls, 10, 'the initial term')
            marker = tempfile.mktemp(prefix='electionctl-run-')
            self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
            r = LineProcess([ELECTIONCTL, 'run', 'lost', '--', 'sh', '-c',
                             'echo start >> "$MARKER"; trap \'echo stop >> "$MARKER"; exit 0\' TERM; '
                             'while :; do sleep 0.05; done'], client_env(bus, MARKER=marker))
            self.addCleanup(r.close)
            wait_until(lambda: read_lines(marker) == [['start']], 10, 'COMMAND to start')
            bus.proc.kill()
            self.assertEqual(w.wait(10), EXIT_NOT_RUNNING)
            self.assertIn('Lost the connection to the bus', w.stderr())
            # run stops COMMAND: leadership can no longer be known
            self.assertEqual(r.wait(10), EXIT_NOT_RUNNING)
            self.assertEqual(read_lines(marker), [['start'], ['stop']])
        finally:
            if daemon:
                daemon.kill()
                daemon.cleanup()
            bus.stop()


class CtlOldDaemonTest(unittest.TestCase):
    """run against a daemon without WatchLease (tests/lib/old_daemon_mock.py): a warning, then
    today's behaviour: COMMAND runs while LocalLeader is true and stops when the lead ends."""

    def test_run_warns_and_follows_local_leader(self):
        bus = PrivateBus()
        self.addCleanup(bus.stop)
        mock = LineProcess([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib',
                                                         'old_daemon_mock.py'), bus.address, 'old'],
                           client_env(bus))
        self.addCleanup(mock.close)
        mock.wait_for(lambda ls: 'ready' in ls, 10, 'the mock daemon')
        marker = tempfile.mktemp(prefix='electionctl-run-')
        self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
        r = LineProcess([ELECTIONCTL, 'run', 'old', '--', 'sh', '-c',
                         'echo start $ELECTION_TERM $ELECTION_ID >> "$MARKER"; '
                         'trap \'echo stop >> "$MARKER"; exit 0\' TERM; while :; do sleep 0.05; done'],
                         client_env(bus, MARKER=marker))
        self.addCleanup(r.close)
        wait_until(lambda: read_lines(marker) == [['start', '1', 'old-node']], 10, 'COMMAND to start')
        self.assertIn('electiond has no WatchLease (an older version)', r.stderr())
        self.assertEqual(r.stderr().count('WatchLease'), 1)
        self.assertEqual(r.stop(signal.SIGTERM, 15), 0)
        self.assertEqual(read_lines(marker), [['start', '1', 'old-node'], ['stop']])


class CtlLimitTest(DaemonTestCase):
    config_extra = 'MaxCandidates=1\n'

    def test_limit_exceeded(self):
        name = self.fresh_name()
        env = client_env(self.bus)
        self.assertEqual(subprocess.run([ELECTIONCTL, 'enter', name, '--id', 'a', '--persistent'],
                                        env=env).returncode, 0)
        r = subprocess.run([ELECTIONCTL, 'enter', name, '--id', 'b', '--persistent'], env=env,
                           capture_output=True, text=True, timeout=T(30))
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn('Limit exceeded', r.stderr)


@unittest.skipUnless(os.geteuid() == 0, 'needs root to run electionctl as another uid')
class CtlQuotaTest(DaemonTestCase):
    config_extra = 'MaxPersistentPerUser=1\n'

    def ctl(self, *args):
        argv = ['setpriv', f'--reuid={NOBODY}', f'--regid={NOBODY}', '--clear-groups', ELECTIONCTL, *args]
        return subprocess.run(argv, env=client_env(self.bus), capture_output=True, text=True, timeout=T(30))

    def test_quota_exceeded(self):
        name = self.fresh_name()
        self.assertEqual(self.ctl('enter', name, '--id', 'a', '--persistent').returncode, 0)
        r = self.ctl('enter', name, '--id', 'b', '--persistent')
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn('Quota exceeded', r.stderr)
        self.assertIn('org.electiond.Election1.enter-persistent', r.stderr)
        self.assertEqual(self.ctl('leave', name, '--id', 'a').returncode, 0)


if __name__ == '__main__':
    main()

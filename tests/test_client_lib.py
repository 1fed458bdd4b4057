#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""libelection against a real electiond on a private bus (the C side is tests/test-libelection.c)."""

import os
import random
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from electiond_test import NOBODY, DaemonTestCase, SignalRecorder, T, main, wait_until, wrapper_argv  # noqa: E402
from test_client_common import CAMPAIGN, TEST_LIBELECTION, LineProcess, client_env  # noqa: E402

ESHUTDOWN = 108


def events(p, who=None):
    """The watch events a test-libelection process printed: [(status, term or None)]."""
    out = []
    for j in p.json_lines():
        if 'status' in j and j.get('who') != 'll' and (who is None or j.get('who') == who):
            t = j.get('term')
            out.append((j['status'], (t[0], t[1], t[2]) if t else None))
    return out


def terms(p, who=None):
    return [t for s, t in events(p, who) if s == 0]


class LibTest(DaemonTestCase):

    def watcher(self, *args):
        p = LineProcess([TEST_LIBELECTION, 'watch', *args], client_env(self.bus))
        self.addCleanup(p.close)
        return p

    def test_calls(self):
        """Every call, sync and async, and every error name, checked inside the C program."""
        name = self.fresh_name()
        # under ELECTIOND_WRAPPER (valgrind, ...) the library is checked as well
        r = subprocess.run(wrapper_argv() + [TEST_LIBELECTION, 'calls', name, self.node_name], env=client_env(self.bus),
                           capture_output=True, text=True, timeout=T(60))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('all checks passed', r.stdout)
        # Its connection is gone: only the persistent candidacy it made is left.
        e = self.client.election(name)
        wait_until(lambda: e.get_term()[2] == ['persistent-one'], 5, 'connection-bound candidacies to go')

    def check_watch_sequence(self, seen, expected, what):
        """seen must be a contiguous tail of expected that ends with expected's last term."""
        self.assertTrue(seen, f'{what}: no terms')
        for k in range(len(expected)):
            if expected[k:] == seen:
                return k
        # find where it diverges, for a useful message
        first = seen[0]
        ks = [k for k in range(len(expected)) if expected[k] == first]
        k = ks[0] if ks else 0
        for i, (a, b) in enumerate(zip(expected[k:], seen)):
            if a != b:
                self.fail(f'{what}: mismatch at {i} after start {k}: expected {a}, saw {b} '
                          f'(seen {len(seen)}, expected {len(expected) - k})')
        self.fail(f'{what}: length differs: seen {len(seen)}, expected {len(expected) - k} from {k}')

    def test_watch_order_many_changes(self):
        """500 changes from another connection: each watcher sees the daemon's commit order, from
        its initial term on, with no gap and no duplicate, even one that subscribes mid-stream."""
        name = self.fresh_name()
        e = self.client.election(name)
        early = self.watcher(name)
        early.wait_for(lambda ls: terms(early), 10, 'the initial term')
        expected = [e.get_term()]
        self.assertEqual(terms(early), expected)

        late = self.watcher(name)  # not waited for: it subscribes while the changes run
        rng = random.Random(4711)
        ids = []
        n_changes = 0
        serial = 0
        while n_changes < 500:
            cur = expected[-1]
            op = rng.choice(['enter', 'enter', 'leave', 'anoint', 'promote', 'promote', 'evict'])
            if op == 'enter' or not cur[2]:
                serial += 1
                ids.append(f'c{serial}')
                t = e.enter(ids[-1], 1 if serial % 2 else 0)
            elif op == 'leave':
                t = e.leave(rng.choice(cur[2]))
            elif op == 'evict':
                t = e.evict(rng.choice(cur[2]))
            elif op == 'anoint':
                t = e.anoint(rng.choice(cur[2]))
            else:
                t = e.promote(rng.choice(cur[2]))
            if t != cur:
                expected.append(t)
                n_changes += 1
        marker = e.enter('marker', 1)
        expected.append(marker)

        for p, what in ((early, 'early watcher'), (late, 'late watcher')):
            p.wait_for(lambda ls: terms(p) and terms(p)[-1] == marker, 30, f'{what} to see the marker')
            k = self.check_watch_sequence(terms(p), expected, what)
            if p is early:
                self.assertEqual(k, 0)
            self.assertTrue(all(s == 0 for s, _ in events(p)))
        # term ids never decrease
        ids_seen = [t[0] for t in terms(early)]
        self.assertEqual(ids_seen, sorted(ids_seen))
        self.assertEqual(early.stop(), 0)
        self.assertEqual(late.stop(), 0)

    def test_watch_local_leader(self):
        """LocalLeader: the current value first, then each change (standalone: a local candidate leads)."""
        name = self.fresh_name()
        e = self.client.election(name)
        p = self.watcher(name)
        ll = lambda: [(j['status'], j['value']) for j in p.json_lines() if j.get('who') == 'll']  # noqa: E731
        p.wait_for(lambda ls: ll(), 10, 'the initial LocalLeader')
        self.assertEqual(ll(), [(0, 0)])
        e.enter('x', 1)
        p.wait_for(lambda ls: len(ll()) >= 2, 10, 'LocalLeader to become true')
        e.enter('y', 1)
        e.anoint('y')
        e.evict('y')
        e.evict('x')
        p.wait_for(lambda ls: len(ll()) >= 3, 10, 'LocalLeader to become false')
        # a round trip through the daemon: nothing else is on its way
        self.client.ping()
        p.wait_for(lambda ls: terms(p) and terms(p)[-1][2] == [], 10, 'the last term')
        self.assertEqual(ll(), [(0, 0), (0, 1), (0, 0)])
        self.assertEqual(p.stop(), 0)

    def test_watch_ignores_signals_from_others(self):
        """A TermChanged that another connection emits on the election's path is not delivered."""
        import dbus
        import dbus.lowlevel
        name = self.fresh_name()
        e = self.client.election(name)
        p = self.watcher(name)
        p.wait_for(lambda ls: terms(p), 10, 'the initial term')
        fake = dbus.lowlevel.SignalMessage(e.path, 'org.electiond.Election1.Election', 'TermChanged')
        fake.append(dbus.UInt64(999), 'mallory', dbus.Array(['mallory'], signature='s'), signature='tsas')
        self.client.conn.send_message(fake)
        self.client.conn.flush()
        real = e.enter('alice', 1)
        p.wait_for(lambda ls: terms(p)[-1] == real, 10, 'the real change')
        self.assertEqual(terms(p), [(0, '', []), real])
        self.assertEqual(p.stop(), 0)

    def test_watch_order_concurrent_changes(self):
        """Hundreds of changes in flight at once (the daemon batches them): the watcher sees exactly
        the TermChanged sequence the daemon emitted, in order."""
        import dbus
        name = self.fresh_name()
        e = self.client.election(name)
        rec = SignalRecorder(self.bus, e.path)
        self.addCleanup(rec.close)
        rec.sync()
        p = self.watcher(name)
        p.wait_for(lambda ls: terms(p), 10, 'the initial term')
        initial = terms(p)[0]
        rng = random.Random(99)
        done = []
        calls = [('Enter', 'st', (f'c{i}', dbus.UInt64(1))) for i in range(60)]
        calls += [('Promote', 's', (f'c{rng.randrange(60)}',)) for _ in range(240)]
        # the Enters first (they must exist before Promote), then everything else at once
        for method, sig, args in calls[:60]:
            e.call_async(method, sig, args, lambda *a: done.append(1), lambda err: done.append(err))
        wait_until(lambda: len(done) == 60, 30, 'the enters')
        # up to 100 in flight (the bus limits pending replies per connection)
        for i, (method, sig, args) in enumerate(calls[60:]):
            wait_until(lambda: len(done) >= 60 + i - 100, 30, 'a free slot')
            e.call_async(method, sig, args, lambda *a: done.append(1), lambda err: done.append(err))
        wait_until(lambda: len(done) == len(calls), 30, 'all replies')
        self.assertEqual([d for d in done if d != 1], [])
        marker = e.enter('marker', 1)
        rec.sync()
        expected = [initial] + rec.terms(e.path)
        self.assertEqual(expected[-1], marker)
        p.wait_for(lambda ls: terms(p)[-1] == marker, 30, 'the marker')
        self.assertEqual(terms(p), expected)
        self.assertGreater(len(expected), 200)
        self.assertEqual(p.stop(), 0)

    def test_two_handles_in_one_process(self):
        """Two clients (connections) in one process on one loop, each with a candidacy and a watch."""
        name = self.fresh_name()
        e = self.client.election(name)
        p = LineProcess([TEST_LIBELECTION, 'two-handles', name], client_env(self.bus))
        self.addCleanup(p.close)
        p.wait_for(lambda ls: any('ready' in l for l in ls), 10, 'ready')
        wait_until(lambda: e.get_term()[2] == ['one', 'two'], 5, 'both to enter')
        final = e.anoint('two')
        for who in ('one', 'two'):
            p.wait_for(lambda ls: terms(p, who) and terms(p, who)[-1] == final, 10, f'{who} to see the anoint')
        self.assertEqual(terms(p, 'one'), terms(p, 'two'))
        self.assertEqual(terms(p, 'one'), [(0, '', []), (1, 'one', ['one']), (1, 'one', ['one', 'two']),
                                           (2, 'two', ['two', 'one'])])
        self.assertEqual(p.stop(), 0)
        # both connections closed: both candidacies are gone
        wait_until(lambda: e.get_term()[2] == [], 5, 'the candidacies to go')

    def test_glib_helper(self):
        """A GLib main loop drives the watch and an async Enter through election-glib.h."""
        name = self.fresh_name()
        r = subprocess.run([TEST_LIBELECTION, 'glib', name], env=client_env(self.bus),
                           capture_output=True, text=True, timeout=T(60))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('[1,"glib-id",["glib-id"]]', r.stdout)

    def test_example_campaign(self):
        """client-lib/examples/campaign.c enters, prints every term, and leaves on SIGTERM."""
        name = self.fresh_name()
        e = self.client.election(name)
        e.enter('first', 1)
        p = LineProcess([CAMPAIGN, name, 'ex'], client_env(self.bus))
        self.addCleanup(p.close)
        p.wait_for(lambda ls: 'term 1 leader "first", 2 candidate(s)' in ls, 10, 'the term after entering')
        self.assertEqual(p.lines[0], 'term 1 leader "first", 1 candidate(s)')
        e.anoint('ex')
        p.wait_for(lambda ls: 'term 2 leader "ex" (that\'s us), 2 candidate(s)' in ls, 10, 'the anoint')
        self.assertEqual(p.stop(), 0)
        self.assertEqual(e.get_term()[2], ['first'])


class ReconnectTest(DaemonTestCase):
    """Daemon restarts: watchers re-deliver; only reenter handles come back."""

    def test_reconnect_after_restart(self):
        name = self.fresh_name()
        e = self.client.election(name)
        env = client_env(self.bus)
        back = LineProcess([TEST_LIBELECTION, 'watch', name, 'comes-back', 'enter-reenter'], env)
        self.addCleanup(back.close)
        gone = LineProcess([TEST_LIBELECTION, 'watch', name, 'stays-gone', 'enter'], env)
        self.addCleanup(gone.close)
        wait_until(lambda: sorted(e.get_term()[2]) == ['comes-back', 'stays-gone'], 10, 'both to enter')
        before = e.get_term()
        for p in (back, gone):
            p.wait_for(lambda ls: terms(p) and terms(p)[-1] == before, 10, 'the watchers to catch up')

        for hard in (False, True):
            n_back, n_gone = len(events(back)), len(events(gone))
            self.daemon.restart(hard=hard)
            wait_until(lambda: e.get_term()[2] == ['comes-back'], 10,
                       'the reenter handle to be the only candidate again')
            now = e.get_term()
            for p in (back, gone):
                p.wait_for(lambda ls: terms(p) and terms(p)[-1] == now, 10, 'the watch to re-deliver')
                new = events(p)[n_back if p is back else n_gone:]
                # first the daemon went away, then the current term again
                self.assertEqual(new[0], (-ESHUTDOWN, None), new)
                self.assertTrue(all(s == 0 for s, _ in new[1:]), new)
                ids = [t[0] for _, t in new[1:]]
                self.assertEqual(ids, sorted(ids))
                self.assertGreaterEqual(ids[0], before[0])
            self.assertNotIn('stays-gone', e.get_term()[2])

        self.assertEqual(back.stop(), 0)
        self.assertEqual(gone.stop(), 0)
        wait_until(lambda: e.get_term()[2] == [], 5, 'the candidacy to go with its connection')


class LeaseTest(DaemonTestCase):

    def test_watch_lease_standalone(self):
        """election_client_watch_lease() on a standalone daemon: the lease never ends."""
        r = subprocess.run([TEST_LIBELECTION, 'lease'], env=client_env(self.bus),
                           capture_output=True, text=True, timeout=T(60))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('lease 0 18446744073709551615', r.stdout)
        self.assertIn('all checks passed', r.stdout)


class LimitTest(DaemonTestCase):
    config_extra = 'MaxCandidates=2\n'

    def test_limit_exceeded(self):
        """LimitExceeded maps to -ENOSPC with its error name (client made by address)."""
        name = self.fresh_name()
        r = subprocess.run([TEST_LIBELECTION, 'limit', name], env=client_env(self.bus),
                           capture_output=True, text=True, timeout=T(60))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('all checks passed', r.stdout)


@unittest.skipUnless(os.geteuid() == 0, 'needs root to run the client as another uid')
class QuotaTest(DaemonTestCase):
    config_extra = 'MaxPersistentPerUser=1\n'

    def test_quota_exceeded(self):
        """QuotaExceeded maps to -EDQUOT with its error name."""
        name = self.fresh_name()
        r = subprocess.run(['setpriv', f'--reuid={NOBODY}', f'--regid={NOBODY}', '--clear-groups',
                            TEST_LIBELECTION, 'quota', name], env=client_env(self.bus),
                           capture_output=True, text=True, timeout=T(60))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('quota: all checks passed', r.stdout)


if __name__ == '__main__':
    main()

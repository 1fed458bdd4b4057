#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""TermChanged/PropertiesChanged: exactly one per change, none on a no-op, in commit order, also
under many concurrent calls from several connections."""

import random

import dbus

import electiond_test as et
from electiond_test import ELECTION_IFACE


def step_ok(prev, cur):
    """Whether cur can follow prev by one change of the rules; returns a reason if not."""
    (pt, pl, pc), (ct, cl, cc) = prev, cur
    if cl != (cc[0] if cc else ''):
        return f'leader {cl!r} is not candidates[0] of {cc}'
    if len(set(cc)) != len(cc):
        return f'duplicate candidates {cc}'
    if (pt, pl, pc) == (ct, cl, cc):
        return 'a signal without a change'
    leader_changed = cl != '' and cl != pl
    expected_t = pt + 1 if leader_changed else pt
    if ct != expected_t:
        return f'term {pt}->{ct} with leader {pl!r}->{cl!r}'
    return None


class Signals(et.DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.e = self.client.election(self.fresh_name())
        self.rec = et.SignalRecorder(self.bus, path=self.e.path)

    def tearDown(self):
        self.rec.close()
        super().tearDown()

    def expect(self, op, *args, changed):
        """Runs one op, then checks that exactly one TermChanged (equal to the reply) and one
        PropertiesChanged after it arrived iff changed, and nothing otherwise."""
        before = len(self.rec.events)
        reply = getattr(self.e, op)(*args)
        self.rec.sync()
        new = self.rec.events[before:]
        if not changed:
            self.assertEqual(new, [], f'{op}{args}: no-op emitted signals')
            return reply
        kinds = [ev[0] for ev in new]
        self.assertEqual(kinds, ['term', 'props'], f'{op}{args}: signals {new}')
        self.assertEqual(new[0][2], reply)
        _, path, iface, changed_props, invalidated = new[1]
        self.assertEqual(path, self.e.path)
        self.assertEqual(iface, ELECTION_IFACE)
        self.assertEqual(invalidated, [])
        t, l, c = reply
        self.assertEqual(int(changed_props['TermId']), t)
        self.assertEqual(str(changed_props['Leader']), l)
        self.assertEqual([str(x) for x in changed_props['Candidates']], c)
        self.assertEqual(et.term_tuple(changed_props['Term']), reply)
        self.assertNotIn('Name', changed_props)
        return reply

    def test_one_signal_per_change(self):
        self.expect('enter', 'a', 0, changed=True)
        self.expect('enter', 'b', 0, changed=True)
        self.expect('enter', 'c', 1, changed=True)
        self.expect('enter', 'a', 0, changed=False)        # re-bind
        self.expect('enter', 'c', 1, changed=False)
        self.expect('leave', 'ghost', changed=False)
        self.expect('anoint', 'a', changed=False)          # already leader
        self.expect('promote', 'a', changed=False)
        self.expect('promote', 'c', changed=True)          # reorder, same term
        self.assertEqual(self.e.get_term(), (1, 'a', ['a', 'c', 'b']))
        self.expect('promote', 'c', changed=True)          # new leader
        self.expect('anoint', 'b', changed=True)
        self.expect('evict', 'a', changed=True)
        self.expect('leave', 'b', changed=True)            # leader leaves
        self.expect('leave', 'c', changed=True)            # last leaves: term stays
        self.assertEqual(self.e.get_term(), (4, '', []))
        self.expect('leave', 'c', changed=False)
        for op in ('anoint', 'promote', 'evict'):
            with self.assertRaises(dbus.exceptions.DBusException):
                getattr(self.e, op)('ghost')
        with self.assertRaises(dbus.exceptions.DBusException):
            self.e.enter('bad\x01', 0)
        with self.assertRaises(dbus.exceptions.DBusException):
            self.e.enter('x', 2)
        self.rec.sync()
        self.assertEqual(len(self.rec.terms()), 9)
        self.assertEqual(len(self.rec.props()), 9)

    def test_local_leader_in_properties_changed(self):
        self.expect('enter', 'l1', 0, changed=True)
        # LocalLeader moved from false to true with the first (local) leader, and back
        changed = self.rec.props()[-1][3]
        self.assertIn('LocalLeader', changed)
        self.assertTrue(bool(changed['LocalLeader']))
        self.expect('enter', 'l2', 0, changed=True)
        self.assertTrue(bool(self.rec.props()[-1][3].get('LocalLeader', True)))
        self.expect('leave', 'l1', changed=True)
        self.expect('leave', 'l2', changed=True)
        changed = self.rec.props()[-1][3]
        self.assertIn('LocalLeader', changed)
        self.assertFalse(bool(changed['LocalLeader']))
        self.assertFalse(bool(self.e.get('LocalLeader')))

    def test_signals_only_on_their_object(self):
        other = self.client.election(self.fresh_name('other'))
        other.enter('o', 0)
        self.rec.sync()
        self.assertEqual(self.rec.events, [])
        other.leave('o')

    def run_concurrent(self, elections, connections, rounds):
        """Each connection runs Enter/Leave pairs of its own ids back-to-back (async), all
        connections at once, spread over the elections. Returns {path: [replies in order per conn]}."""
        clients = [et.Client(self.bus) for _ in range(connections)]
        errors = []
        replies = {}   # (conn, path) -> list of terms
        pending = [0]

        def chain(ci, e, k):
            if k == 2 * rounds:
                pending[0] -= 1
                return
            cid = f'c{ci}-r{k // 2}'
            method, sig, args = (('Enter', 'st', (cid, dbus.UInt64(0))) if k % 2 == 0 else ('Leave', 's', (cid,)))

            def ok(*v):
                replies.setdefault((ci, e.path), []).append(et.term_tuple(v))
                chain(ci, e, k + 1)

            def err(exc):
                errors.append(exc)
                pending[0] -= 1

            e.call_async(method, sig, args, ok, err)

        for ci, c in enumerate(clients):
            e = et.Election(c, elections[ci % len(elections)].name, path=elections[ci % len(elections)].path)
            pending[0] += 1
            chain(ci, e, 0)
        et.wait_until(lambda: pending[0] == 0, 60, 'all concurrent calls')
        for c in clients:
            c.close()
        self.assertEqual(errors, [])
        return replies

    def check_sequence(self, start, sigs):
        prev = start
        for i, cur in enumerate(sigs):
            why = step_ok(prev, cur)
            self.assertIsNone(why, f'signal #{i}: {prev} -> {cur}: {why}')
            self.assertGreaterEqual(cur[0], prev[0])
            prev = cur
        return prev

    def test_concurrent_commit_order(self):
        conns, rounds = 8, 15
        start = self.e.get_term()
        replies = self.run_concurrent([self.e], conns, rounds)
        self.rec.sync()
        sigs = self.rec.terms(self.e.path)
        # every Enter of a fresh id and every Leave of one's own id is a change
        self.assertEqual(len(sigs), 2 * conns * rounds)
        last = self.check_sequence(start, sigs)
        self.assertEqual(self.e.get_term(), last)
        self.assertEqual(last[2], [])
        # each connection's replies appear in the signal sequence, in its own order
        for (ci, _), terms in replies.items():
            self.assertEqual(len(terms), 2 * rounds)
            pos = -1
            for t in terms:
                idx = next((i for i in range(pos + 1, len(sigs)) if sigs[i] == t), None)
                self.assertIsNotNone(idx, f'conn {ci}: reply {t} is not a signalled state after #{pos}')
                pos = idx
        # PropertiesChanged follow their TermChanged one by one
        evs = [ev for ev in self.rec.events if ev[1] == self.e.path]
        self.assertEqual([ev[0] for ev in evs], ['term', 'props'] * len(sigs))
        for i in range(0, len(evs), 2):
            self.assertEqual(et.term_tuple(evs[i + 1][3]['Term']), evs[i][2])

    def test_concurrent_mixed_operations(self):
        # Several connections race Enter/Leave/Anoint/Promote/Evict over a few shared ids
        # (persistent, so any root connection may leave them). Whatever the interleaving:
        # every signal is one legal step, a term id never names two leaders, each connection's
        # replies are states of the signalled sequence in its own order, and the end is GetTerm.
        rng = random.Random(4242)
        ids = [f'm{i}' for i in range(6)]
        start = self.e.get_term()
        clients = [et.Client(self.bus) for _ in range(4)]
        replies = {ci: [] for ci in range(len(clients))}
        left = [len(clients)]
        errors = []

        def run(ci, e, k):
            if k == 40:
                left[0] -= 1
                return
            op = rng.choice(['Enter', 'Enter', 'Leave', 'Anoint', 'Promote', 'Evict'])
            cid = rng.choice(ids)
            sig, args = ('st', (cid, dbus.UInt64(1))) if op == 'Enter' else ('s', (cid,))

            def ok(*v):
                replies[ci].append(et.term_tuple(v))
                run(ci, e, k + 1)

            def err(exc):
                if exc.get_dbus_name() != et.ERROR_NOT_CANDIDATE:
                    errors.append(exc)
                run(ci, e, k + 1)

            e.call_async(op, sig, args, ok, err)

        for ci, c in enumerate(clients):
            run(ci, et.Election(c, self.e.name, path=self.e.path), 0)
        et.wait_until(lambda: left[0] == 0, 60, 'all mixed calls')
        for c in clients:
            c.close()
        self.assertEqual(errors, [])
        self.rec.sync()
        sigs = self.rec.terms(self.e.path)
        self.assertGreater(len(sigs), 20)
        last = self.check_sequence(start, sigs)
        self.assertEqual(self.e.get_term(), last)
        leaders = {}
        for t, l, _ in [start] + sigs:
            if l:
                self.assertEqual(leaders.setdefault(t, l), l, f'term {t} named two leaders')
        states = [start] + sigs
        for ci, rs in replies.items():
            pos = 0
            for r in rs:
                idx = next((i for i in range(pos, len(states)) if states[i] == r), None)
                self.assertIsNotNone(idx, f'conn {ci}: reply {r} is not a signalled state at/after #{pos}')
                pos = idx
        for cid in last[2]:
            self.e.leave(cid)

    def test_concurrent_several_elections(self):
        others = [self.client.election(self.fresh_name('multi')) for _ in range(2)]
        recs = {e.path: et.SignalRecorder(self.bus, path=e.path) for e in others}
        try:
            self.run_concurrent(others, 6, 10)
            for e in others:
                recs[e.path].sync()
                sigs = recs[e.path].terms()
                self.assertEqual(len(sigs), 2 * 3 * 10)
                last = self.check_sequence((0, '', []), sigs)
                self.assertEqual(e.get_term(), last)
        finally:
            for r in recs.values():
                r.close()


if __name__ == '__main__':
    et.main()

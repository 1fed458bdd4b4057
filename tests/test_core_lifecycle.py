#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Candidacy lifetimes: client death, persistent candidacies, daemon restarts and kill -9, and
term ids that never decrease nor get reused."""

import signal
import sys

import electiond_test as et


class ClientDeath(et.DaemonTestCase):

    def test_sigkill_of_leading_client(self):
        e = self.client.election(self.fresh_name())
        rec = et.SignalRecorder(self.bus, path=e.path)
        p = et.ClientProcess(self.bus)
        try:
            self.assertEqual(p.call('enter', e.name, 'doomed', 0), ('ok', (1, 'doomed', ['doomed'])))
            self.assertEqual(e.enter('survivor', 0), (1, 'doomed', ['doomed', 'survivor']))
            rec.sync()
            n = len(rec.terms())
            p.kill(signal.SIGKILL)
            t = rec.wait_for_term(lambda t: 'doomed' not in t[2], what='doomed to be dropped')
            self.assertEqual(t, (2, 'survivor', ['survivor']))
            rec.sync()
            self.assertEqual(len(rec.terms()), n + 1, 'exactly one TermChanged for the drop')
            self.assertEqual(e.get_term(), (2, 'survivor', ['survivor']))
            e.leave('survivor')
        finally:
            p.kill()
            rec.close()

    def test_sigkill_of_follower_client(self):
        e = self.client.election(self.fresh_name())
        e.enter('lead', 0)
        p = et.ClientProcess(self.bus)
        try:
            self.assertEqual(p.call('enter', e.name, 'f1', 0)[0], 'ok')
            self.assertEqual(p.call('enter', e.name, 'f2', 0), ('ok', (1, 'lead', ['lead', 'f1', 'f2'])))
            p.kill(signal.SIGKILL)
            et.wait_until(lambda: e.get_term() == (1, 'lead', ['lead']), 10, 'f1, f2 to be dropped')
        finally:
            p.kill()
        e.leave('lead')

    def test_client_drops_every_candidacy_it_owns(self):
        names = [self.fresh_name() for _ in range(3)]
        p = et.ClientProcess(self.bus)
        for n in names:
            self.assertEqual(p.call('enter', n, 'multi', 0)[0], 'ok')
            self.assertEqual(p.call('enter', n, 'multi2', 0)[0], 'ok')
        rec = et.SignalRecorder(self.bus)
        p.close()   # a clean exit closes the connection too
        for n in names:
            e = self.client.election(n)
            et.wait_until(lambda: e.get_term() == (1, '', []), 10, f'{n} to be emptied')
        rec.sync()
        # both candidacies of an election go in one change: one signal per election
        self.assertEqual(sorted(rec.terms()), [(1, '', [])] * 3)
        rec.close()

    def test_leave_of_one_keeps_tracking_the_others(self):
        # The connection is still tracked after it left one of its candidacies.
        e1, e2 = self.client.election(self.fresh_name()), self.client.election(self.fresh_name())
        e1.enter('anchor', 1)
        p = et.ClientProcess(self.bus)
        self.assertEqual(p.call('enter', e1.name, 'k1', 0)[0], 'ok')
        self.assertEqual(p.call('enter', e1.name, 'k2', 0)[0], 'ok')
        self.assertEqual(p.call('enter', e2.name, 'k3', 0)[0], 'ok')
        self.assertEqual(p.call('leave', e1.name, 'k1'), ('ok', (1, 'anchor', ['anchor', 'k2'])))
        self.assertEqual(p.call('leave', e2.name, 'k3'), ('ok', (1, '', [])))
        self.assertEqual(p.call('enter', e2.name, 'k3', 0), ('ok', (2, 'k3', ['k3'])))
        p.kill(signal.SIGKILL)
        et.wait_until(lambda: e1.get_term() == (1, 'anchor', ['anchor']), 10, 'k2 to go')
        et.wait_until(lambda: e2.get_term() == (2, '', []), 10, 'k3 to go')
        e1.leave('anchor')

    def test_rebound_candidacy_follows_its_new_owner(self):
        e = self.client.election(self.fresh_name())
        e.enter('anchor', 1)
        p, q = et.ClientProcess(self.bus), et.ClientProcess(self.bus)
        try:
            self.assertEqual(p.call('enter', e.name, 'x', 0)[0], 'ok')
            self.assertEqual(q.call('enter', e.name, 'x', 0), ('ok', (1, 'anchor', ['anchor', 'x'])))
            # the old owner may no longer leave it, the new one may
            self.assertEqual(p.call('leave', e.name, 'x'), ('error', et.ERROR_ACCESS_DENIED))
            q.kill(signal.SIGKILL)
            et.wait_until(lambda: e.get_term() == (1, 'anchor', ['anchor']), 10, 'x to go with q')
        finally:
            p.close()
            q.kill()
        e.leave('anchor')

    def test_persistent_rebound_to_connection_dies_with_it(self):
        e = self.client.election(self.fresh_name())
        e.enter('anchor', 1)
        p = et.ClientProcess(self.bus)
        self.assertEqual(p.call('enter', e.name, 'flip', 1)[0], 'ok')
        self.assertEqual(p.call('enter', e.name, 'flip', 0), ('ok', (1, 'anchor', ['anchor', 'flip'])))
        p.kill(signal.SIGKILL)
        et.wait_until(lambda: e.get_term() == (1, 'anchor', ['anchor']), 10, 'flip to go with its connection')
        e.leave('anchor')

    def test_persistent_survives_client_exit(self):
        e = self.client.election(self.fresh_name())
        p = et.ClientProcess(self.bus)
        self.assertEqual(p.call('enter', e.name, 'keep', 1)[0], 'ok')
        self.assertEqual(p.call('enter', e.name, 'drop', 0)[0], 'ok')
        p.kill(signal.SIGKILL)
        et.wait_until(lambda: e.get_term() == (1, 'keep', ['keep']), 10, 'drop to be dropped')
        self.assertEqual(e.leave('keep'), (1, '', []))

    def test_rebind_moves_ownership(self):
        # Enter of an id another connection (same uid) holds re-binds it to the caller.
        e = self.client.election(self.fresh_name())
        p = et.ClientProcess(self.bus)
        self.assertEqual(p.call('enter', e.name, 'moved', 0)[0], 'ok')
        self.assertEqual(e.enter('moved', 0), (1, 'moved', ['moved']))
        p.kill(signal.SIGKILL)
        # the killed process no longer owns it: our round trip proves the drop would have happened
        rec = et.SignalRecorder(self.bus, path=e.path)
        q = et.ClientProcess(self.bus)
        q.call('enter', e.name, 'probe', 0)
        q.kill()
        rec.wait_for_term(lambda t: 'probe' not in t[2] and len(rec.terms()) >= 2, what='probe dropped')
        self.assertEqual(e.get_term(), (1, 'moved', ['moved']))
        # re-bind a connection-bound one to persistent, and back
        self.assertEqual(e.enter('moved', 1), (1, 'moved', ['moved']))
        e.leave('moved')
        rec.close()

    def test_owner_gone_before_commit(self):
        # Enter from a connection that is already closed when the command commits: the candidacy
        # must not outlive it (no orphan that nobody can ever drop until a restart).
        e = self.client.election(self.fresh_name())
        e.enter('anchor', 1)
        for i in range(10):
            p = et.ClientProcess(self.bus)
            p.send('enter_and_exit', e.name, f'ghost{i}', 0)
            p.proc.wait(timeout=et.T(10))
            p.close()
        et.wait_until(lambda: e.get_term() == (1, 'anchor', ['anchor']), 10,
                      'every ghost candidacy to go')
        # many at once, in several elections
        others = [self.client.election(self.fresh_name('flood')) for _ in range(3)]
        procs = []
        for o in others:
            p = et.ClientProcess(self.bus)
            p.send('enter_and_exit', o.name, 'g', 0, 40)
            procs.append(p)
        for p in procs:
            p.proc.wait(timeout=et.T(10))
            p.close()
        for o in others:
            et.wait_until(lambda: o.get_term()[2] == [], 10, f'the flood in {o.name} to go')
        self.assertEqual(e.get_term(), (1, 'anchor', ['anchor']))
        e.leave('anchor')


class Restarts(et.DaemonTestCase):

    def test_restart_keeps_persistent_and_drops_connection_bound(self):
        a = self.client.election(self.fresh_name('a'))
        b = self.client.election(self.fresh_name('b'))
        c = self.client.election(self.fresh_name('c'))
        a.enter('pa', 1)
        a.enter('ca', 0)            # follower, connection-bound
        b.enter('cb', 0)            # leader, connection-bound
        b.enter('pb', 1)
        c.enter('cc', 0)            # the only one, connection-bound
        self.assertEqual(b.anoint('cb'), (1, 'cb', ['cb', 'pb']))
        # a persistent candidacy whose client has exited
        p = et.ClientProcess(self.bus)
        self.assertEqual(p.call('enter', a.name, 'pz', 1), ('ok', (1, 'pa', ['pa', 'ca', 'pz'])))
        p.close()
        self.daemon.restart()
        # DROP_RUN: the old run's connection-bound candidacies go, the term moves on if one led
        et.wait_until(lambda: a.get_term() == (1, 'pa', ['pa', 'pz']), 10, 'ca dropped after restart')
        et.wait_until(lambda: b.get_term() == (2, 'pb', ['pb']), 10, 'cb dropped after restart')
        et.wait_until(lambda: c.get_term() == (1, '', []), 10, 'cc dropped after restart')
        listed = {n: (t, l) for (n, t, l, _) in self.client.list_elections()}
        self.assertEqual(listed[a.name], (1, 'pa'))
        self.assertEqual(listed[b.name], (2, 'pb'))
        self.assertEqual(listed[c.name], (1, ''))
        # our connection survived the restart: it can still leave what persists
        self.assertEqual(a.leave('pz'), (1, 'pa', ['pa']))
        self.assertEqual(a.leave('pa'), (1, '', []))
        self.assertEqual(b.leave('pb'), (2, '', []))

    def test_kill9_never_decreases_or_reuses_terms(self):
        e = self.client.election(self.fresh_name())
        e.enter('p1', 1)
        e.enter('p2', 1)
        seen = e.get_term()[0]
        for i in range(4):
            # committed changes, each moving the term on, right before the kill
            for who in ('p2', 'p1'):
                t = e.anoint(who)
                self.assertGreater(t[0], seen)
                seen = t[0]
            e.enter(f'conn{i}', 0)
            t = e.anoint(f'conn{i}')    # a connection-bound leader: dropped after the restart
            self.assertEqual(t[0], seen + 1)
            seen = t[0]
            self.daemon.restart(hard=True)
            t = et.wait_until(lambda: (lambda t: t if f'conn{i}' not in t[2] else None)(e.get_term()),
                              10, f'conn{i} dropped')
            self.assertEqual(t, (seen + 1, 'p1', ['p1', 'p2']), f'round {i}')
            seen = t[0]
        t = e.anoint('p2')
        self.assertEqual(t[0], seen + 1)
        e.leave('p1')
        e.leave('p2')

    def test_acknowledged_changes_survive_kill9(self):
        # A reply means durably committed: kill -9 while calls are in flight loses none of the
        # acknowledged ones, and the term never goes below any acknowledged term.
        e = self.client.election(self.fresh_name())
        acked, failed = [], []
        conns = [et.Client(self.bus) for _ in range(4)]
        for ci, c in enumerate(conns):
            ce = et.Election(c, e.name, path=e.path)
            for k in range(60):
                cid = f'd{ci}-{k}'
                ce.call_async('Enter', 'st', (cid, et.dbus.UInt64(1)),
                              lambda *v, cid=cid: acked.append((cid, et.term_tuple(v))),
                              lambda exc: failed.append(exc))
        et.wait_until(lambda: len(acked) >= 40, 30, 'some acknowledged Enters')
        self.daemon.kill()
        et.wait_until(lambda: len(acked) + len(failed) == 240, 30, 'every call to end')
        for c in conns:
            c.close()
        print(f'kill -9 with {len(acked)} acknowledged, {len(failed)} cut off', file=sys.stderr)
        self.daemon.start()
        t = e.get_term()
        for cid, reply in acked:
            self.assertIn(cid, t[2], f'acknowledged {cid} lost by kill -9')
        self.assertGreaterEqual(t[0], max(r[0] for _, r in acked))
        self.assertEqual(t[0], 1)
        for cid in t[2]:
            e.leave(cid)

    def test_sigterm_with_calls_in_flight(self):
        # A clean shutdown with calls still pending: exit 0, nothing leaked (ASan/valgrind), and
        # whatever was acknowledged is there after the restart.
        e = self.client.election(self.fresh_name())
        acked, failed = [], []
        conns = [et.Client(self.bus) for _ in range(4)]
        for ci, c in enumerate(conns):
            ce = et.Election(c, e.name, path=e.path)
            for k in range(50):
                cid = f's{ci}-{k}'
                ce.call_async('Enter', 'st', (cid, et.dbus.UInt64(1)),
                              lambda *v, cid=cid: acked.append(cid), lambda exc: failed.append(exc))
        et.wait_until(lambda: len(acked) >= 20, 30, 'some acknowledged Enters')
        self.daemon.stop()     # asserts exit status 0 and no sanitizer report
        et.wait_until(lambda: len(acked) + len(failed) == 200, 30, 'every call to end')
        for c in conns:
            c.close()
        print(f'SIGTERM with {len(acked)} acknowledged, {len(failed)} cut off '
              f'({sorted(set(x.get_dbus_name() for x in failed))})', file=sys.stderr)
        self.daemon.start()
        t = e.get_term()
        for cid in acked:
            self.assertIn(cid, t[2])
        for cid in t[2]:
            e.leave(cid)

    def test_sigterm_restart_loop_keeps_terms(self):
        e = self.client.election(self.fresh_name())
        e.enter('q', 1)
        e.enter('r', 1)
        ids = []
        for i in range(3):
            ids.append(e.anoint('r' if i % 2 == 0 else 'q')[0])
            self.daemon.restart()
            self.assertEqual(e.get_term()[0], ids[-1])
        self.assertEqual(ids, sorted(set(ids)))
        self.assertEqual(e.anoint('q' if e.get_term()[1] == 'r' else 'r')[0], ids[-1] + 1)
        e.leave('q')
        e.leave('r')


if __name__ == '__main__':
    et.main()

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reload without a state change (SIGHUP, `systemctl reload`, electiond(8) SIGNALS): a new
elections.d file enters its candidate, a removed one leaves; a changed Units= applies without a
new term; a setting that cannot change live is refused with a logged reason and the daemon runs
on with the old value; a file that does not parse is refused whole; an unchanged reload sends no
TermChanged. Single node on a private bus (no service manager: the leader units' jobs fail and are
retried, which the candidacy does not depend on)."""

import os
import signal
import unittest

import electiond_test as et


def election_file(units='', id_='', extra=''):
    text = '[Election]\n'
    if id_:
        text += f'Id={id_}\n'
    if units:
        text += f'Units={units}\n'
    return text + extra


class Reload(unittest.TestCase):

    def setUp(self):
        self.bus = et.PrivateBus()
        self.addCleanup(self.bus.stop)
        self.daemon = et.Daemon(self.bus, start=False)
        self.addCleanup(self.daemon.cleanup)
        self.edir = os.path.join(self.daemon.tmp, 'elections.d')
        os.makedirs(self.edir)
        self.base = (f'[Node]\nName=test-node\nElectionsDirectory={self.edir}\n'
                     f'RuntimeDirectory={os.path.join(self.daemon.tmp, "run")}\n')
        self.write_config(self.base)
        self.write_election('steady', election_file(units='steady-app.service', id_='steady-1'))
        self.daemon.start()
        self.client = et.Client(self.bus)
        self.addCleanup(self.client.close)
        self.steady = self.wait_candidate('steady', 'steady-1')
        self.reloads = 0

    def write_config(self, text):
        with open(self.daemon.config_path, 'w') as f:
            f.write(text)

    def write_election(self, name, text):
        path = os.path.join(self.edir, name + '.conf')
        with open(path + '.tmp', 'w') as f:
            f.write(text)
        os.rename(path + '.tmp', path)

    def term(self, name):
        return self.client.election(name).get_term()

    def candidates(self, name):
        names = [n for (n, _, _, _) in self.client.list_elections()]
        return self.term(name)[2] if name in names else []

    def wait_candidate(self, name, id_, present=True):
        et.wait_until(lambda: (id_ in self.candidates(name)) == present, 10,
                      f'{id_} {"in" if present else "out of"} {name}')
        return self.term(name)

    def reload(self):
        """SIGHUP, then wait until the daemon logged that this reload is done."""
        self.reloads += 1
        want = self.reloads
        os.kill(self.daemon.pid, signal.SIGHUP)
        et.wait_until(lambda: self.daemon.output().count('Reload done') +
                      self.daemon.output().count('Reload refused:') >= want, 10, 'the reload to finish')
        self.assertTrue(self.daemon.running(), self.daemon.output())

    def test_elections_d_file_enters_and_leaves(self):
        rec = et.SignalRecorder(self.bus)
        self.addCleanup(rec.close)
        self.write_election('web', election_file(id_='web-1'))
        self.reload()
        t = self.wait_candidate('web', 'web-1')
        self.assertEqual(t[1], 'web-1')
        self.assertIn('Election web: candidate web-1', self.daemon.output())

        os.unlink(os.path.join(self.edir, 'web.conf'))
        self.reload()
        self.wait_candidate('web', 'web-1', present=False)
        self.assertIn('Election web: no longer configured', self.daemon.output())

        # back again: enters again
        self.write_election('web', election_file(id_='web-1'))
        self.reload()
        self.wait_candidate('web', 'web-1')
        # the election that stayed in the directory saw no term change through all of it
        rec.sync()
        self.assertEqual(rec.terms(et.election_path('steady')), [])
        self.assertEqual(self.term('steady'), self.steady)

    def test_changed_units_apply_without_a_new_term(self):
        rec = et.SignalRecorder(self.bus)
        self.addCleanup(rec.close)
        self.write_election('steady', election_file(units='steady-app.service other.service', id_='steady-1'))
        self.reload()
        et.wait_until(lambda: "Election steady: Units= changed to 'steady-app.service other.service'"
                      in self.daemon.output(), 5, 'the Units= change to be logged')
        # a changed Id= is refused, the candidacy stays
        self.write_election('steady', election_file(units='other.service', id_='steady-2'))
        self.reload()
        self.assertIn('Election steady: reload refused Id=steady-2', self.daemon.output())
        rec.sync()
        self.assertEqual(rec.terms(et.election_path('steady')), [])
        self.assertEqual(self.term('steady'), self.steady)

    def test_unchangeable_key_is_refused_and_daemon_keeps_running(self):
        self.write_config(self.base.replace('Name=test-node', 'Name=other-node') + 'CommitTimeoutSec=2\n' +
                          '[Cluster]\nLeaseSec=0.3\nNodeTimeoutSec=0.6\n')
        self.reload()
        out = self.daemon.output()
        self.assertRegex(out, r'reload refused \[Node\] Name=: .*restart')
        self.assertIn('reload applies [Node] CommitTimeoutSec=', out)
        self.assertIn('some settings refused', out)
        self.assertEqual(str(self.client.manager_get('NodeName')), 'test-node')
        # still serving: a call works and the node still owns its candidacy
        e = self.client.election('adhoc')
        self.assertEqual(e.enter('a')[1], 'a')
        self.assertEqual(self.term('steady'), self.steady)

    def test_malformed_file_is_refused_whole(self):
        rec = et.SignalRecorder(self.bus)
        self.addCleanup(rec.close)
        self.write_config(self.base + 'MaxElections=lots\n')
        self.reload()
        self.assertIn('Reload refused:', self.daemon.output())
        self.assertIn('MaxElections=lots', self.daemon.output())
        self.write_election('web', election_file(id_='web-1'))  # not read: the reload was refused
        rec.sync()
        self.assertEqual(rec.terms(), [])
        self.assertNotIn('web', [n for (n, _, _, _) in self.client.list_elections()])

    def test_unchanged_reload_sends_no_term_change(self):
        rec = et.SignalRecorder(self.bus)
        self.addCleanup(rec.close)
        adhoc = self.client.election('adhoc')
        adhoc.enter('x')
        rec.sync()
        rec.clear()
        for _ in range(3):
            self.reload()
        rec.sync()
        self.assertEqual(rec.terms(), [])
        out = self.daemon.output()
        self.assertNotIn('reload refused', out)
        self.assertIn('0 election(s) added, 0 removed, 0 with changed Units=', out)
        self.assertEqual(self.term('steady'), self.steady)
        self.daemon.stop()


if __name__ == '__main__':
    unittest.main(verbosity=2)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The daemon's command line and start-up as electiond(8) documents them: --version, --help,
exit status 1 for start-up failures and 2 for bad options, SIGINT, --user, the default node name."""

import os
import signal
import socket
import subprocess
import tempfile
import unittest

import electiond_test as et


class CommandLine(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.exe = os.environ['ELECTIOND']
        cls.tmp = tempfile.TemporaryDirectory(prefix='electiond-startup-')
        cls.bus = et.PrivateBus()

    @classmethod
    def tearDownClass(cls):
        cls.bus.stop()
        cls.tmp.cleanup()

    def run_daemon(self, *args, config=None, timeout=20):
        """Runs electiond to completion (for cases that must exit by themselves)."""
        argv = et.wrapper_argv() + [self.exe, *args]
        if config is not None:
            path = os.path.join(self.tmp.name, f'conf-{self._testMethodName}')
            with open(path, 'w') as f:
                f.write(config)
            state = tempfile.mkdtemp(dir=self.tmp.name)
            argv += ['--config', path, '--state-dir', state]
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address)
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=et.T(timeout))
        et.check_sanitizer_output(r.stdout + r.stderr)
        return r

    def test_version(self):
        r = self.run_daemon('--version')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r'\b\d+\.\d+\.\d+\b')

    def test_help(self):
        r = self.run_daemon('--help')
        self.assertEqual(r.returncode, 0, r.stderr)
        for opt in ('--config', '--state-dir', '--user', '--log-level', '--version'):
            self.assertIn(opt, r.stdout)

    def test_bad_options_exit_2(self):
        for args in (['--no-such-option'], ['--log-level=loud'], ['stray-argument']):
            with self.subTest(args=args):
                r = self.run_daemon(*args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)

    def test_missing_config_given_explicitly_exits_1(self):
        state = tempfile.mkdtemp(dir=self.tmp.name)
        r = self.run_daemon('--config', os.path.join(self.tmp.name, 'nope.conf'), '--state-dir', state)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIsNone(self.bus.name_owner())

    def test_malformed_config_exits_1_naming_the_key(self):
        r = self.run_daemon(config='[Node]\nName=x\nMaxElections=lots\n')
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        out = r.stdout + r.stderr
        self.assertIn('MaxElections', out)
        self.assertIn('lots', out)

    def test_invalid_node_name_exits_1(self):
        r = self.run_daemon(config='[Node]\nName=' + 'n' * 256 + '\n')
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)

    def test_bus_name_taken_exits_1(self):
        squatter = self.bus.connect()
        try:
            squatter.request_name(et.BUS_NAME, et.dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
            r = self.run_daemon(config='[Node]\nName=x\n')
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        finally:
            squatter.close()

    def test_sigint_is_a_clean_shutdown(self):
        d = et.Daemon(self.bus)
        try:
            d.proc.send_signal(signal.SIGINT)
            self.assertEqual(d.proc.wait(timeout=et.T(10)), 0)
            et.check_sanitizer_output(d._collect())
        finally:
            d.cleanup()

    def test_default_node_name_is_the_host_name(self):
        d = et.Daemon(self.bus, config_text='')
        try:
            c = et.Client(self.bus)
            self.assertEqual(str(c.manager_get('NodeName')), socket.gethostname())
            c.close()
            d.stop()
        finally:
            d.cleanup()

    def test_documented_keys_and_unknown_ones(self):
        # Every [Node] key of electiond.conf(5); [Cluster] without KeyFile= is standalone; unknown
        # groups and keys are warnings, not errors.
        conf = ('[Node]\nName=keys\nMaxElections=10\nMaxCandidates=5\nCommitTimeoutSec=2.5\nBogusKey=1\n'
                '[Cluster]\nName=prod\nPort=7999\n[NoSuchGroup]\nX=y\n')
        d = et.Daemon(self.bus, config_text=conf)
        try:
            c = et.Client(self.bus)
            self.assertEqual(str(c.manager_get('NodeName')), 'keys')
            self.assertEqual(str(c.manager_get('ClusterName')), '')
            self.assertTrue(bool(c.manager_get('Quorate')))
            c.close()
            out = d.stop()
            self.assertIn('BogusKey', out)
            self.assertIn('NoSuchGroup', out)
        finally:
            d.cleanup()

    def test_user_bus(self):
        session = et.PrivateBus()
        try:
            # the system bus address points at a bus where the name must NOT show up
            d = et.Daemon(session, args=['--user'],
                          env={'DBUS_SESSION_BUS_ADDRESS': session.address,
                               'DBUS_SYSTEM_BUS_ADDRESS': self.bus.address})
            try:
                self.assertIsNone(self.bus.name_owner())
                c = et.Client(session)
                e = c.election('user-bus')
                self.assertEqual(e.enter('u', 0), (1, 'u', ['u']))
                c.close()
                d.stop()
            finally:
                d.cleanup()
        finally:
            session.stop()


if __name__ == '__main__':
    unittest.main(verbosity=2)
